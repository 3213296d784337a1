package incidents

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// Inter-rater agreement: for the incidents sampled for a second review, how
// often the two reviewers' verdicts agree beyond chance (Cohen's kappa), per
// incident category (the first reviewer's).

// Kappa is Cohen's kappa of paired labels.
type Kappa struct {
	// N is the number of pairs; Agreed how many have the same label.
	N      int `json:"n"`
	Agreed int `json:"agreed"`
	// Observed is Agreed/N; Expected the agreement chance alone would give from
	// each rater's label frequencies.
	Observed float64 `json:"observed"`
	Expected float64 `json:"expected"`
	// Value is (Observed − Expected)/(1 − Expected). Defined is false when
	// there are no pairs or chance agreement is total (both raters used one
	// and the same label throughout), where kappa is undefined.
	Value   float64 `json:"kappa"`
	Defined bool    `json:"defined"`
}

// CohenKappa computes Cohen's kappa of pairs of labels (rater A, rater B).
func CohenKappa(pairs [][2]string) Kappa {
	k := Kappa{N: len(pairs)}
	if k.N == 0 {
		return k
	}
	a, b := map[string]int{}, map[string]int{}
	for _, p := range pairs {
		a[p[0]]++
		b[p[1]]++
		if p[0] == p[1] {
			k.Agreed++
		}
	}
	n := float64(k.N)
	k.Observed = float64(k.Agreed) / n
	for label, na := range a {
		k.Expected += float64(na) / n * float64(b[label]) / n
	}
	if k.Expected >= 1 {
		return k
	}
	k.Value = (k.Observed - k.Expected) / (1 - k.Expected)
	k.Defined = !math.IsNaN(k.Value)
	return k
}

// CategoryAgreement is the agreement on verdicts (confirmed or dismissed) for
// one category; Category "*" is all categories together.
type CategoryAgreement struct {
	Category string `json:"category"`
	Kappa
}

// sqlSelectRoundPairs pairs each second review with the first of its incident.
const sqlSelectRoundPairs = `SELECT r1.category, r1.status, r2.status FROM incident_reviews r1
	JOIN incident_reviews r2 ON r2.incident_id = r1.incident_id AND r2.round = 2
	JOIN incidents i ON i.id = r1.incident_id
	WHERE r1.round = 1 AND i.trial = ?`

// Agreement reports Cohen's kappa of first and second verdicts per category of
// trial, and over all categories ("*", first), from the second reviews done.
func (s *sqlStore) Agreement(ctx context.Context, trial string) ([]CategoryAgreement, error) {
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(sqlSelectRoundPairs), trial)
	if err != nil {
		return nil, fmt.Errorf("read verdict pairs of %s: %w", trial, err)
	}
	defer rows.Close()
	byCat := map[string][][2]string{}
	var all [][2]string
	for rows.Next() {
		var cat, a, b string
		if err := rows.Scan(&cat, &a, &b); err != nil {
			return nil, fmt.Errorf("read verdict pairs of %s: %w", trial, err)
		}
		byCat[cat] = append(byCat[cat], [2]string{a, b})
		all = append(all, [2]string{a, b})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read verdict pairs of %s: %w", trial, err)
	}
	out := []CategoryAgreement{{Category: "*", Kappa: CohenKappa(all)}}
	cats := make([]string, 0, len(byCat))
	for c := range byCat {
		cats = append(cats, c)
	}
	slices.Sort(cats)
	for _, c := range cats {
		out = append(out, CategoryAgreement{Category: c, Kappa: CohenKappa(byCat[c])})
	}
	return out, nil
}
