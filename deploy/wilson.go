package deploy

import "math"

// Wilson returns the Wilson score interval [lower, upper] of a proportion with k
// successes out of n trials at the normal quantile z (1.959964 for a two-sided 95 %
// interval):
//
//	centre = (p + z²/2n) / (1 + z²/n)
//	half   = z · sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n)
//
// with p = k/n. Unlike p ± z·sqrt(p(1−p)/n) it stays inside [0, 1] and does not
// collapse to zero width when k is 0, which is the normal case for incidents. With
// n = 0 there is no evidence and the interval is [0, 1]. k is clamped to [0, n].
func Wilson(k, n int64, z float64) (lower, upper float64) {
	if n <= 0 {
		return 0, 1
	}
	k = max(0, min(k, n))
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	denom := 1 + z2/nf
	centre := (p + z2/(2*nf)) / denom
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / denom
	lower, upper = max(0, centre-half), min(1, centre+half)
	if k == 0 {
		lower = 0 // exact: rounding can leave a tiny positive value
	}
	if k == n {
		upper = 1
	}
	return lower, upper
}

// ZForConfidence returns the two-sided normal quantile of a confidence level: the
// z with P(|Z| ≤ z) = confidence (1.959964 for 0.95, 2.575829 for 0.99). It
// solves erf(z/√2) = confidence by bisection, so it needs no table; confidence
// outside (0, 1) returns NaN.
func ZForConfidence(confidence float64) float64 {
	if !(confidence > 0 && confidence < 1) {
		return math.NaN()
	}
	lo, hi := 0.0, 40.0
	for range 200 {
		mid := (lo + hi) / 2
		if math.Erf(mid/math.Sqrt2) < confidence {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}
