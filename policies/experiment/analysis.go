package experiment

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
)

// Analysis constants.
const (
	// SRMThreshold: a sample-ratio mismatch is flagged when the chi-square
	// test of users per arm against the planned shares gives p below it (a
	// strict level: an SRM is a broken experiment, not a finding).
	SRMThreshold = 0.001
	// srmMinExpected is the smallest expected count per arm the chi-square
	// approximation is trusted with.
	srmMinExpected = 5
	// descriptiveZ is the normal quantile of the 95% intervals shown.
	descriptiveZ = 1.959963984540054
	// powerZ is the one-sided normal quantile of 80% power, for the
	// detectable difference.
	powerZ = 0.8416212335729143
)

// Observation is one recorded interaction of an experiment; Incident one
// incident on a trial's interaction (both as the incident store reads them).
type (
	Observation = incidents.ExperimentObservation
	Incident    = incidents.ExperimentIncident
)

// Data is what an analysis reads.
type Data struct {
	// Observations are the experiment's interactions (any order).
	Observations []Observation
	// Incidents are the trial's incidents since the experiment started.
	Incidents []Incident
	// AsOf is the end of the data: the stop time, or now while running.
	AsOf time.Time
}

// Run is where the experiment stands in its lifecycle.
type Run struct {
	Status     string    `json:"status"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	StoppedAt  time.Time `json:"stopped_at,omitzero"`
	StopCause  string    `json:"stop_cause,omitempty"`
	StopReason string    `json:"stop_reason,omitempty"`
}

// unit is one observation as the analysis sees it.
type unit struct {
	obs      *Observation
	user     int           // index of the user within the arm
	next     time.Duration // to the same user's next interaction; -1 for none
	incident []Incident
}

// armData is the observations of one arm in time order.
type armData struct {
	name    string
	control bool
	share   float64
	units   []unit
	users   map[string]int // user → index
	revs    map[string]int64
}

// counts is an outcome's count over some units, with per-user counts (by
// user index: successes, units) for the design effect.
type counts struct {
	k, n    int64
	perUser [][2]int64
}

// judge says whether a unit counts for an outcome (in the denominator) and
// whether it is a success (in the numerator).
func judge(o *Outcome, u *unit, asOf time.Time) (in, hit bool) {
	served := u.obs.Status == events.StatusOK || u.obs.Status == events.StatusPartial
	switch o.Metric {
	case MetricConfirmedIncidents:
		if !served {
			return false, false
		}
		floor := events.SeverityRank(o.MinSeverity)
		for _, inc := range u.incident {
			if inc.Status == incidents.StatusConfirmed && (o.Category == "*" || inc.Category == o.Category) && events.SeverityRank(inc.Severity) >= floor {
				return true, true
			}
		}
		return true, false
	case MetricDenied:
		return true, u.obs.Status == events.StatusDenied
	case MetricUserReports:
		if !served {
			return false, false
		}
		for _, inc := range u.incident {
			if inc.Category == o.Category && inc.Status != incidents.StatusDismissed {
				return true, true
			}
		}
		return true, false
	case MetricAbandonment, MetricRetry:
		w := o.window
		if u.obs.StartedAt.Add(w).After(asOf) {
			return false, false // the window has not passed yet
		}
		back := u.next >= 0 && u.next <= w
		if o.Metric == MetricRetry {
			return true, back
		}
		return true, !back
	case MetricLatencyOver:
		return served, served && u.obs.LatencyMS > o.ThresholdMS
	}
	return false, false
}

// count counts an outcome over units, stopping after limit units in the
// denominator (0: all).
func count(o *Outcome, a *armData, asOf time.Time, limit int64) counts {
	c := counts{perUser: make([][2]int64, len(a.users))}
	for i := range a.units {
		u := &a.units[i]
		in, hit := judge(o, u, asOf)
		if !in {
			continue
		}
		c.perUser[u.user][1]++
		c.n++
		if hit {
			c.perUser[u.user][0]++
			c.k++
		}
		if limit > 0 && c.n == limit {
			break
		}
	}
	return c
}

// Stat is one outcome of one arm.
type Stat struct {
	Metric string `json:"metric"`
	Label  string `json:"label"`
	// Successes of Units (e.g. confirmed incidents of answered interactions).
	Successes int64 `json:"successes"`
	Units     int64 `json:"units"`
	// Rate is Successes/Units, Lower and Upper its 95% Wilson interval on the
	// effective sample (Units / DesignEffect); all times Scale.
	Rate  float64 `json:"rate"`
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	Scale float64 `json:"scale"`
	// DesignEffect is the variance inflation from users' repeated
	// interactions (1: none).
	DesignEffect float64 `json:"design_effect"`
}

func stat(o *Outcome, c counts) Stat {
	s := Stat{Metric: o.Metric, Label: o.Label(), Successes: c.k, Units: c.n, Scale: o.scale(), DesignEffect: designEffect(c.perUser, c.k, c.n)}
	ke, ne := effective(c.k, c.n, s.DesignEffect)
	lo, hi := deploy.Wilson(ke, ne, descriptiveZ)
	if c.n > 0 {
		s.Rate = float64(c.k) / float64(c.n) * s.Scale
	}
	s.Lower, s.Upper = lo*s.Scale, hi*s.Scale
	return s
}

// Comparison is a variant's outcome against the control's.
type Comparison struct {
	Arm     string `json:"arm"`
	Control string `json:"control"`
	Metric  string `json:"metric"`
	// Look is the look this comparison belongs to (0: descriptive, on all
	// data so far, not a test).
	Look int `json:"look"`
	// VariantUnits and ControlUnits are the arms' samples compared.
	VariantUnits int64 `json:"variant_units"`
	ControlUnits int64 `json:"control_units"`
	// VariantRate and ControlRate, and Difference = variant − control with
	// its Newcombe interval at Confidence; all times Scale.
	VariantRate float64 `json:"variant_rate"`
	ControlRate float64 `json:"control_rate"`
	Difference  float64 `json:"difference"`
	Lower       float64 `json:"lower"`
	Upper       float64 `json:"upper"`
	Confidence  float64 `json:"confidence"`
	Scale       float64 `json:"scale"`
	// Alpha is the two-sided level this look tests at (0 when descriptive).
	Alpha float64 `json:"alpha,omitempty"`
	// Significant: the interval excludes 0 at a test look.
	Significant bool `json:"significant"`
}

// compare compares two arms' counts at the two-sided level alpha.
func compare(o *Outcome, variant, control string, cv, cc counts, look int, alpha float64) Comparison {
	z := descriptiveZ
	if alpha > 0 {
		z = zTwoSided(alpha)
	}
	kv, nv := effective(cv.k, cv.n, designEffect(cv.perUser, cv.k, cv.n))
	kc, nc := effective(cc.k, cc.n, designEffect(cc.perUser, cc.k, cc.n))
	_, lo, hi := Newcombe(kv, nv, kc, nc, z)
	sc := o.scale()
	c := Comparison{
		Arm: variant, Control: control, Metric: o.Metric, Look: look, VariantUnits: cv.n, ControlUnits: cc.n,
		Confidence: 1 - alpha, Scale: sc, Alpha: alpha, Lower: lo * sc, Upper: hi * sc,
	}
	if alpha == 0 {
		c.Confidence = 0.95
	}
	if cv.n > 0 {
		c.VariantRate = float64(cv.k) / float64(cv.n) * sc
	}
	if cc.n > 0 {
		c.ControlRate = float64(cc.k) / float64(cc.n) * sc
	}
	c.Difference = c.VariantRate - c.ControlRate
	c.Significant = alpha > 0 && cv.n > 0 && cc.n > 0 && (lo > 0 || hi < 0)
	return c
}

// prepare groups observations by arm in time order and joins the incidents.
func prepare(def *Definition, data *Data) (arms []*armData, unknown int) {
	byInteraction := map[string][]Incident{}
	for _, inc := range data.Incidents {
		byInteraction[inc.InteractionID] = append(byInteraction[inc.InteractionID], inc)
	}
	index := map[string]*armData{}
	for _, a := range def.Arms {
		ad := &armData{name: a.Name, control: a.Control, share: a.Share, users: map[string]int{}, revs: map[string]int64{}}
		arms = append(arms, ad)
		index[a.Name] = ad
	}
	for i := range data.Observations {
		o := &data.Observations[i]
		ad := index[o.Arm]
		if ad == nil {
			unknown++
			continue
		}
		ui, ok := ad.users[o.User]
		if !ok {
			ui = len(ad.users)
			ad.users[o.User] = ui
		}
		ad.units = append(ad.units, unit{obs: o, user: ui, next: -1, incident: byInteraction[o.InteractionID]})
		ad.revs[o.VariantRevision]++
	}
	for _, ad := range arms {
		slices.SortFunc(ad.units, func(a, b unit) int {
			if c := a.obs.StartedAt.Compare(b.obs.StartedAt); c != 0 {
				return c
			}
			return cmp.Compare(a.obs.InteractionID, b.obs.InteractionID)
		})
		last := make([]int, len(ad.users))
		for i := range last {
			last[i] = -1
		}
		for i := range ad.units {
			u := ad.units[i].user
			if j := last[u]; j >= 0 {
				ad.units[j].next = ad.units[i].obs.StartedAt.Sub(ad.units[j].obs.StartedAt)
			}
			last[u] = i
		}
	}
	return arms, unknown
}

// SRM is the sample-ratio check: users per arm against the planned shares.
type SRM struct {
	Users    map[string]int64   `json:"users"`
	Expected map[string]float64 `json:"expected"`
	// ChiSquare with DF degrees of freedom, and its p-value.
	ChiSquare float64 `json:"chi_square"`
	DF        int     `json:"df"`
	PValue    float64 `json:"p_value"`
	// Tested is false while too few users took part to test.
	Tested bool `json:"tested"`
	// Flagged: p < SRMThreshold; the arms are not comparable.
	Flagged bool `json:"flagged"`
}

func checkSRM(arms []*armData) SRM {
	s := SRM{Users: map[string]int64{}, Expected: map[string]float64{}, DF: len(arms) - 1, PValue: 1}
	var total int64
	for _, a := range arms {
		s.Users[a.name] = int64(len(a.users))
		total += int64(len(a.users))
	}
	minExp := math.Inf(1)
	for _, a := range arms {
		e := float64(total) * a.share / 100
		s.Expected[a.name] = e
		minExp = min(minExp, e)
		if e > 0 {
			d := float64(s.Users[a.name]) - e
			s.ChiSquare += d * d / e
		}
	}
	if total == 0 || minExp < srmMinExpected {
		return s
	}
	s.Tested = true
	s.PValue = ChiSquareP(s.ChiSquare, s.DF)
	s.Flagged = s.PValue < SRMThreshold
	return s
}

// GuardrailResult is one guard-rail of one variant arm.
type GuardrailResult struct {
	Index int    `json:"index"`
	Label string `json:"label"`
	Arm   string `json:"arm"`
	// Bound says which bound and its value: "max 0.05", "max_increase 0.02",
	// "max_count 0".
	Bound string `json:"bound"`
	// Value is what was compared with the bound (the Wilson or Newcombe
	// lower bound, or the count), with the numbers behind it in Detail.
	Value   float64 `json:"value"`
	Detail  string  `json:"detail"`
	Crossed bool    `json:"crossed"`
}

func checkGuardrails(def *Definition, arms []*armData, asOf time.Time) []GuardrailResult {
	var out []GuardrailResult
	var control *armData
	for _, a := range arms {
		if a.control {
			control = a
		}
	}
	for gi := range def.Guardrails {
		g := &def.Guardrails[gi]
		o := &g.Outcome
		var cc counts
		if g.MaxIncrease != nil && control != nil {
			cc = count(o, control, asOf, 0)
		}
		for _, a := range arms {
			if a.control {
				continue
			}
			cv := count(o, a, asOf, 0)
			r := GuardrailResult{Index: gi, Label: o.Label(), Arm: a.name}
			switch {
			case g.MaxCount != nil:
				r.Bound = fmt.Sprintf("max_count %d", *g.MaxCount)
				r.Value = float64(cv.k)
				r.Detail = fmt.Sprintf("%d of %d", cv.k, cv.n)
				r.Crossed = cv.k > *g.MaxCount
			case g.Max != nil:
				s := stat(o, cv)
				r.Bound = fmt.Sprintf("max %g", *g.Max)
				r.Value = s.Lower
				r.Detail = fmt.Sprintf("%d of %d = %.4g, 95%% Wilson [%.4g, %.4g]", cv.k, cv.n, s.Rate, s.Lower, s.Upper)
				r.Crossed = cv.n > 0 && s.Lower > *g.Max
			case g.MaxIncrease != nil:
				c := compare(o, a.name, control.name, cv, cc, 0, 0)
				r.Bound = fmt.Sprintf("max_increase %g", *g.MaxIncrease)
				r.Value = c.Lower
				r.Detail = fmt.Sprintf("%s %d/%d − %s %d/%d = %+.4g, 95%% Newcombe [%+.4g, %+.4g]",
					a.name, cv.k, cv.n, control.name, cc.k, cc.n, c.Difference, c.Lower, c.Upper)
				r.Crossed = cv.n > 0 && cc.n > 0 && c.Lower > *g.MaxIncrease
			}
			out = append(out, r)
		}
	}
	return out
}

// Crossed returns the guard-rails crossed, or nil.
func (r *Report) Crossed() []GuardrailResult {
	var out []GuardrailResult
	for _, g := range r.Guardrails {
		if g.Crossed {
			out = append(out, g)
		}
	}
	return out
}

// Look is one planned look of the test.
type Look struct {
	Number int `json:"number"`
	// Units is the sample per arm the look needs; Reached whether every arm
	// has it.
	Units   int64 `json:"units"`
	Reached bool  `json:"reached"`
	// Alpha is the two-sided level of each variant's test at this look.
	Alpha       float64      `json:"alpha"`
	Comparisons []Comparison `json:"comparisons,omitempty"`
}

// plannedLooks lays out the looks of the rule, with the level of each.
func plannedLooks(def *Definition) []Look {
	k := def.Analysis.Looks
	variants := float64(len(def.Arms) - 1)
	looks := make([]Look, k)
	for j := 1; j <= k; j++ {
		t, prev := float64(j)/float64(k), float64(j-1)/float64(k)
		a := def.Analysis.Alpha
		if k > 1 {
			a = obfSpent(def.Analysis.Alpha, t) - obfSpent(def.Analysis.Alpha, prev)
		}
		looks[j-1] = Look{Number: j, Units: int64(math.Ceil(t * float64(def.MinimumSample))), Alpha: a / variants}
	}
	return looks
}

// RuleStatement states the testing rule of a definition plainly.
func RuleStatement(def *Definition) string {
	variants := len(def.Arms) - 1
	split := ""
	if variants > 1 {
		split = fmt.Sprintf(" (split equally between %d variants, Bonferroni: %.4g each)", variants, def.Analysis.Alpha/float64(variants))
	}
	if def.Analysis.Rule == RuleSequential {
		return fmt.Sprintf("Sequential, %d looks at equal fractions of the minimum sample of %s units per arm; overall two-sided α = %g%s, "+
			"spent by an O'Brien-Fleming-type function (Lan-DeMets); each look tests at the alpha it spends, so the total "+
			"type I error stays at most α (conservatively). The first look whose interval excludes zero (no difference) decides; "+
			"looking more often than planned changes nothing, because each look only ever sees its own first units.",
			def.Analysis.Looks, thousands(def.MinimumSample), def.Analysis.Alpha, split)
	}
	return fmt.Sprintf("Fixed horizon: one two-sided test of each variant against the control at α = %g%s, on the first %s units "+
		"of every arm. Numbers before every arm has them are descriptive, never tested (no peeking), and units after them "+
		"are not part of the test.", def.Analysis.Alpha, split, thousands(def.MinimumSample))
}
