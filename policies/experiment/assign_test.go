package experiment

import (
	"fmt"
	"math"
	"testing"

	"github.com/stagegate/stagegate/deploy"
)

func threeArms(tb testing.TB) *Definition {
	tb.Helper()
	return mustParse(tb, `name: three
trial: t1
hypothesis: h
eligibility: {cohorts: [pilot, public], percent: 60}
arms:
  - {name: a, control: true, share: 50}
  - {name: b, share: 30, variant: {data: {}}}
  - {name: c, share: 20, variant: {data: {}}}
primary: {metric: denied_share}
minimum_sample: 10
planned_duration: 1d
`)
}

func TestAssignmentSplitAndStickiness(t *testing.T) {
	def := threeArms(t)
	a := NewAssigner(def)
	const users = 20000
	got := map[string]int{}
	for i := range users {
		u := fmt.Sprintf("u_%06x", i*7919)
		arm := a.ArmOf(u, "pilot")
		got[arm]++
		for range 3 {
			if again := a.ArmOf(u, "pilot"); again != arm {
				t.Fatalf("user %s moved from %q to %q", u, arm, again)
			}
		}
		if a.ArmOf(u, "internal") != "" {
			t.Fatalf("user of a cohort outside the experiment assigned")
		}
	}
	in := users - got[""]
	// 60% eligible; within them 50/30/20. Tolerance ±1.5 points (about 4 sd).
	for _, tc := range []struct {
		arm  string
		want float64
		of   int
	}{{"", 0.40, users}, {"a", 0.50, in}, {"b", 0.30, in}, {"c", 0.20, in}} {
		share := float64(got[tc.arm]) / float64(tc.of)
		if math.Abs(share-tc.want) > 0.015 {
			t.Errorf("arm %q: %.4f of users, want %.2f ± 0.015", tc.arm, share, tc.want)
		}
	}
	if a.ArmOf("", "pilot") != "" {
		t.Error("a request without a user id was assigned")
	}
	// A different experiment name draws different groups.
	other := *def
	other.Name = "three-again"
	b := NewAssigner(&other)
	same := 0
	for i := range 2000 {
		u := fmt.Sprintf("u_%d", i)
		if a.ArmOf(u, "pilot") == b.ArmOf(u, "pilot") {
			same++
		}
	}
	// Independent draws agree with probability .4² + .6²·(.5² + .3² + .2²)
	// = 0.2968: about 594 of 2000, sd 20.
	if same < 520 || same > 670 {
		t.Errorf("%d of 2000 users in the same arm of two experiments, want about 594", same)
	}
}

// TestAssignmentIndependentOfRollout: whether a user is on the candidate
// model (deploy.Bucket below a 50% weight) says nothing about their arm. A
// chi-square test of independence on the 2×2 table must not reject.
func TestAssignmentIndependentOfRollout(t *testing.T) {
	def := mustParse(t, `name: indep
trial: demo
hypothesis: h
arms:
  - {name: a, control: true, share: 50}
  - {name: b, share: 50, variant: {data: {}}}
primary: {metric: denied_share}
minimum_sample: 10
planned_duration: 1d
`)
	a := NewAssigner(def)
	var table [2][2]float64
	const users = 40000
	for i := range users {
		u := fmt.Sprintf("u_%024x", i)
		cand := 0
		if deploy.Bucket(def.Trial, u) < deploy.WeightScale/2 {
			cand = 1
		}
		table[cand][a.Assign(u, "")]++
	}
	var chi float64
	for r := range 2 {
		for c := range 2 {
			row, col := table[r][0]+table[r][1], table[0][c]+table[1][c]
			e := row * col / users
			chi += (table[r][c] - e) * (table[r][c] - e) / e
		}
	}
	if p := ChiSquareP(chi, 1); p < 0.001 {
		t.Errorf("arm depends on the rollout bucket: table %v, chi-square %.2f, p %.2g", table, chi, p)
	}
}

func BenchmarkAssign(b *testing.B) {
	a := NewAssigner(threeArms(b))
	b.ReportAllocs()
	for b.Loop() {
		_ = a.Assign("u_3f9a1c0b5e2d7a8c9b0d1e2f", "pilot")
	}
}
