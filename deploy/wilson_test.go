package deploy

import (
	"math"
	"testing"
)

func TestWilsonKnownValues(t *testing.T) {
	z := ZForConfidence(0.95)
	// Cross-checked by hand (z = 1.959964, z² = 3.841459):
	//   0/100: k = 0 reduces the formula to upper = (z²/n)/(1 + z²/n)
	//          = 0.0384146/1.0384146 = 0.036993.
	//   5/100: p = 0.05, denominator 1 + z²/n = 1.0384146;
	//          centre = (0.05 + 0.0192073)/1.0384146 = 0.066647;
	//          half = 1.959964·sqrt(0.000475 + 0.0000960)/1.0384146
	//               = 1.959964·0.0238964/1.0384146 = 0.045103;
	//          interval [0.021544, 0.111750], the published Wilson interval of 5/100.
	for _, tc := range []struct {
		k, n         int64
		lower, upper float64
	}{
		{0, 100, 0, 0.0370},
		{5, 100, 0.0215, 0.1118},
		{1, 10, 0.0179, 0.4042},
		{10, 10, 0.7225, 1},
		{50, 100, 0.4038, 0.5962},
		{3, 300, 0.0034, 0.0290},
		{0, 1000, 0, 0.0038},
		{0, 380, 0, 0.0100},
		{0, 0, 0, 1},      // no evidence
		{7, 5, 0.5655, 1}, // k clamped to n
	} {
		lo, hi := Wilson(tc.k, tc.n, z)
		if math.Abs(lo-tc.lower) > 0.00005 || math.Abs(hi-tc.upper) > 0.00005 {
			t.Errorf("Wilson(%d, %d) = [%.5f, %.5f], want [%.4f, %.4f]", tc.k, tc.n, lo, hi, tc.lower, tc.upper)
		}
		if lo < 0 || hi > 1 || lo > hi {
			t.Errorf("Wilson(%d, %d) = [%v, %v] not an interval in [0, 1]", tc.k, tc.n, lo, hi)
		}
	}
}

func TestZForConfidence(t *testing.T) {
	for _, tc := range []struct{ conf, z float64 }{
		{0.90, 1.644854}, {0.95, 1.959964}, {0.99, 2.575829}, {0.999, 3.290527},
	} {
		if got := ZForConfidence(tc.conf); math.Abs(got-tc.z) > 1e-6 {
			t.Errorf("z(%v) = %.7f, want %.6f", tc.conf, got, tc.z)
		}
	}
	for _, bad := range []float64{0, 1, -0.5, math.NaN()} {
		if !math.IsNaN(ZForConfidence(bad)) {
			t.Errorf("z(%v) should be NaN", bad)
		}
	}
}

func TestWilsonMonotone(t *testing.T) {
	z := ZForConfidence(0.95)
	// More incidents in the same traffic never lowers the bound; more traffic with
	// no incidents never raises it.
	prev := -1.0
	for k := int64(0); k <= 50; k++ {
		_, hi := Wilson(k, 50, z)
		if hi < prev {
			t.Fatalf("upper bound fell from %v to %v at k=%d", prev, hi, k)
		}
		prev = hi
	}
	prev = 2
	for n := int64(1); n <= 2000; n += 7 {
		_, hi := Wilson(0, n, z)
		if hi > prev {
			t.Fatalf("upper bound rose from %v to %v at n=%d", prev, hi, n)
		}
		prev = hi
	}
}
