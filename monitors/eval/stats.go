package eval

import (
	"crypto/sha256"
	"math"
	"math/rand/v2"
	"slices"
)

// Split halves.
const (
	SplitTune   = "tune"
	SplitReport = "report"
)

// Split assigns a row to the tune or the report half: the low bit of the first
// byte of SHA-256(id). It is deterministic and independent of the content.
func Split(id string) string {
	if sha256.Sum256([]byte(id))[0]&1 == 0 {
		return SplitTune
	}
	return SplitReport
}

// z95 is the normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson returns the 95% Wilson score interval of k successes in n trials.
func Wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	p := float64(k) / float64(n)
	nn := float64(n)
	z2 := z95 * z95
	den := 1 + z2/nn
	center := (p + z2/(2*nn)) / den
	half := z95 / den * math.Sqrt(p*(1-p)/nn+z2/(4*nn*nn))
	return max(0, center-half), min(1, center+half)
}

// Confusion counts binary outcomes.
type Confusion struct {
	TP, FP, FN, TN int
}

// Add counts one row.
func (c *Confusion) Add(positive, predicted bool) {
	switch {
	case positive && predicted:
		c.TP++
	case positive:
		c.FN++
	case predicted:
		c.FP++
	default:
		c.TN++
	}
}

// Precision is TP/(TP+FP); ok is false without predictions.
func (c Confusion) Precision() (float64, bool) { return ratio(c.TP, c.TP+c.FP) }

// Recall is TP/(TP+FN); ok is false without positives.
func (c Confusion) Recall() (float64, bool) { return ratio(c.TP, c.TP+c.FN) }

// FPR is FP/(FP+TN); ok is false without negatives.
func (c Confusion) FPR() (float64, bool) { return ratio(c.FP, c.FP+c.TN) }

// F1 is the harmonic mean of precision and recall.
func (c Confusion) F1() (float64, bool) {
	if 2*c.TP+c.FP+c.FN == 0 {
		return 0, false
	}
	return 2 * float64(c.TP) / float64(2*c.TP+c.FP+c.FN), true
}

func ratio(a, b int) (float64, bool) {
	if b == 0 {
		return 0, false
	}
	return float64(a) / float64(b), true
}

// bootstrapRounds and bootstrapSeed make the F1 interval reproducible.
const (
	bootstrapRounds = 2000
	bootstrapSeed   = 20240601
)

// F1Interval is a percentile bootstrap 95% interval of F1 over the rows that
// c counts (resampling rows with replacement).
func F1Interval(c Confusion) (lo, hi float64) {
	n := c.TP + c.FP + c.FN + c.TN
	if n == 0 || c.TP+c.FP+c.FN == 0 {
		return 0, 1
	}
	r := rand.New(rand.NewPCG(bootstrapSeed, uint64(n)))
	f1s := make([]float64, bootstrapRounds)
	for i := range f1s {
		var b Confusion
		for range n {
			x := r.IntN(n)
			switch {
			case x < c.TP:
				b.TP++
			case x < c.TP+c.FP:
				b.FP++
			case x < c.TP+c.FP+c.FN:
				b.FN++
			default:
				b.TN++
			}
		}
		f, _ := b.F1()
		f1s[i] = f
	}
	slices.Sort(f1s)
	return f1s[bootstrapRounds*25/1000], f1s[bootstrapRounds*975/1000-1]
}

// Percentile returns the p-th percentile (0..100) of xs by the nearest-rank
// method; xs is sorted in place.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	rank := int(math.Ceil(p / 100 * float64(len(xs))))
	return xs[min(max(rank, 1), len(xs))-1]
}
