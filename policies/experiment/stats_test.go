package experiment

import (
	"math"
	"testing"
)

func TestNewcombeKnownValues(t *testing.T) {
	// Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10
	// (hybrid score interval), 95%.
	z := zTwoSided(0.05)
	for _, tc := range []struct {
		k1, n1, k2, n2 int64
		lo, hi         float64
	}{
		{56, 70, 48, 80, 0.0524, 0.3339},
		{9, 10, 3, 10, 0.1705, 0.8090},
		{6, 7, 2, 7, 0.0582, 0.8062},
		{5, 56, 0, 29, -0.0381, 0.1926},
		{0, 10, 0, 20, -0.1611, 0.2775},
		{0, 10, 0, 10, -0.2775, 0.2775},
		{10, 10, 0, 20, 0.6791, 1.0000},
		{10, 10, 0, 10, 0.6075, 1.0000},
	} {
		_, lo, hi := Newcombe(tc.k1, tc.n1, tc.k2, tc.n2, z)
		if math.Abs(lo-tc.lo) > 0.00006 || math.Abs(hi-tc.hi) > 0.00006 {
			t.Errorf("Newcombe(%d/%d − %d/%d) = [%.4f, %.4f], want [%.4f, %.4f]", tc.k1, tc.n1, tc.k2, tc.n2, lo, hi, tc.lo, tc.hi)
		}
	}
	if d, lo, hi := Newcombe(1, 0, 1, 5, z); d != 0 || lo != -1 || hi != 1 {
		t.Errorf("empty group: %v [%v, %v]", d, lo, hi)
	}
}

func TestChiSquareP(t *testing.T) {
	for _, tc := range []struct {
		x    float64
		df   int
		want float64
	}{
		{3.841459, 1, 0.05}, {10.827566, 1, 0.001}, {5.991465, 2, 0.05}, {7.814728, 3, 0.05},
		{18.307038, 10, 0.05}, {0.454936, 1, 0.5}, {1.386294, 2, 0.5}, {0, 3, 1},
	} {
		if got := ChiSquareP(tc.x, tc.df); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("ChiSquareP(%v, %d) = %.8f, want %v", tc.x, tc.df, got, tc.want)
		}
	}
	if !math.IsNaN(ChiSquareP(1, 0)) {
		t.Error("df 0 gives a p-value")
	}
}

func TestOBFSpending(t *testing.T) {
	if got := obfSpent(0.05, 1); got != 0.05 {
		t.Errorf("α(1) = %v", got)
	}
	if got := obfSpent(0.05, 0.5); math.Abs(got-0.005575) > 2e-6 {
		t.Errorf("α(0.5) = %v, want 0.005575", got)
	}
	prev := 0.0
	for i := 1; i <= 10; i++ {
		a := obfSpent(0.05, float64(i)/10)
		if a <= prev {
			t.Errorf("α(%v) = %v not above %v", float64(i)/10, a, prev)
		}
		prev = a
	}
	var total float64
	for _, lk := range plannedLooks(&Definition{MinimumSample: 1000, Arms: make([]Arm, 3), Analysis: Analysis{Alpha: 0.05, Looks: 5, Rule: RuleSequential}}) {
		total += lk.Alpha
	}
	if math.Abs(total-0.025) > 1e-12 { // two variants: half of α each, summed over looks
		t.Errorf("alpha over the looks of one variant sums to %v, want 0.025", total)
	}
}

func TestDesignEffect(t *testing.T) {
	// Independent units (one per user): 1.
	per := make([][2]int64, 1000)
	for i := range per {
		per[i] = [2]int64{int64(i % 10 / 9), 1}
	}
	if d := designEffect(per, 100, 1000); math.Abs(d-1) > 0.01 {
		t.Errorf("independent: %v", d)
	}
	// 100 users of 10 units, 10 of them always succeed: about 10.
	per = make([][2]int64, 101) // one user without units: not counted
	for i := range 100 {
		k := int64(0)
		if i < 10 {
			k = 10
		}
		per[i] = [2]int64{k, 10}
	}
	if d := designEffect(per, 100, 1000); math.Abs(d-10.1) > 0.05 {
		t.Errorf("clustered: %v, want about 10.1", d)
	}
	if k, n := effective(100, 1000, 10); k != 10 || n != 100 {
		t.Errorf("effective %d/%d", k, n)
	}
}

func TestConfText(t *testing.T) {
	for _, tc := range []struct {
		conf float64
		want string
	}{{0.95, "95"}, {1 - 0.00193, "99.81"}, {1 - 1.173e-05, "99.9988"}, {0.975, "97.5"}, {1, "100"}} {
		if got := confText(tc.conf); got != tc.want {
			t.Errorf("confText(%v) = %q, want %q", tc.conf, got, tc.want)
		}
	}
}
