package experiment

import (
	"math"

	"github.com/stagegate/stagegate/deploy"
)

// This file holds the statistics the analysis uses, each stated so a reader
// can check it by hand. Rates get Wilson score intervals (deploy.Wilson, the
// same as the rollout gates); a difference of two rates gets Newcombe's
// hybrid score interval built from the two Wilson intervals.

// normalCDF is Φ(x).
func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// zTwoSided is the z with P(|Z| ≤ z) = 1 − alpha.
func zTwoSided(alpha float64) float64 { return deploy.ZForConfidence(1 - alpha) }

// Newcombe returns the two-sided interval, at the normal quantile z, of
// p1 − p2 with p1 = k1/n1 and p2 = k2/n2 (Newcombe 1998, method 10: the
// hybrid score interval). With [l1, u1] and [l2, u2] the Wilson intervals of
// the two rates at z and d = p1 − p2:
//
//	lower = d − sqrt((p1 − l1)² + (u2 − p2)²)
//	upper = d + sqrt((u1 − p1)² + (p2 − l2)²)
//
// It stays inside [−1, 1] and behaves well for rates near 0, where the
// simple Wald interval is too narrow. An empty group gives [−1, 1].
func Newcombe(k1, n1, k2, n2 int64, z float64) (diff, lower, upper float64) {
	if n1 <= 0 || n2 <= 0 {
		return 0, -1, 1
	}
	k1, k2 = max(0, min(k1, n1)), max(0, min(k2, n2))
	p1, p2 := float64(k1)/float64(n1), float64(k2)/float64(n2)
	l1, u1 := deploy.Wilson(k1, n1, z)
	l2, u2 := deploy.Wilson(k2, n2, z)
	d := p1 - p2
	lower = d - math.Sqrt((p1-l1)*(p1-l1)+(u2-p2)*(u2-p2))
	upper = d + math.Sqrt((u1-p1)*(u1-p1)+(p2-l2)*(p2-l2))
	return d, max(-1, lower), min(1, upper)
}

// ChiSquareP is the upper tail P(X ≥ x) of a chi-square variable with df
// degrees of freedom: Q(df/2, x/2), the regularized upper incomplete gamma
// function.
func ChiSquareP(x float64, df int) float64 {
	if df <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return gammaQ(float64(df)/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function Q(a, x), by its
// power series for x < a+1 and by its continued fraction (modified Lentz)
// otherwise.
func gammaQ(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	front := math.Exp(-x + a*math.Log(x) - lg)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-15 {
				break
			}
		}
		return max(0, min(1, 1-sum*front))
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return max(0, min(1, front*h))
}

// obfSpent is the alpha an O'Brien-Fleming-type spending function (Lan and
// DeMets 1983) has spent by information fraction t in (0, 1]:
//
//	α(t) = 2 − 2·Φ(z_{1−α/2} / √t)
//
// It spends almost nothing early and reaches α at t = 1.
func obfSpent(alpha, t float64) float64 {
	if t <= 0 {
		return 0
	}
	if t >= 1 {
		return alpha
	}
	return 2 - 2*normalCDF(zTwoSided(alpha)/math.Sqrt(t))
}

// designEffect is how much clustering by user inflates the variance of a
// rate, so intervals count effective units rather than raw ones: the ratio of
// the cluster-robust variance of the ratio estimate p = Σk/Σn,
//
//	V = G/(G−1) · Σ(k_g − p·n_g)² / N²
//
// (G users with units, N units), to the binomial p(1−p)/N. It is at least 1 (never
// narrower than the binomial), and 1 when it cannot be estimated.
func designEffect(perUser [][2]int64, k, n int64) float64 {
	if n <= 0 || k <= 0 || k >= n {
		return 1
	}
	p := float64(k) / float64(n)
	var ss float64
	g := 0
	for _, c := range perUser {
		if c[1] == 0 {
			continue // a user without units here
		}
		g++
		r := float64(c[0]) - p*float64(c[1])
		ss += r * r
	}
	if g < 2 {
		return 1
	}
	nf := float64(n)
	v := float64(g) / float64(g-1) * ss / (nf * nf)
	vb := p * (1 - p) / nf
	if vb <= 0 || math.IsNaN(v) {
		return 1
	}
	return max(1, v/vb)
}

// effective divides counts by a design effect (rounded), keeping n ≥ 1 when
// there was any unit.
func effective(k, n int64, deff float64) (int64, int64) {
	if deff <= 1 || n == 0 {
		return k, n
	}
	ne := max(1, int64(math.Round(float64(n)/deff)))
	ke := min(ne, int64(math.Round(float64(k)/deff)))
	return ke, ne
}
