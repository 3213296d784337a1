package deploy

import (
	"fmt"
	"strings"
	"testing"
)

func TestAssignSplitAndStickiness(t *testing.T) {
	for _, weight := range []int{0, 1000, 5000, 10000} {
		a, err := NewAssigner([]Plan{{Trial: "t1", Candidate: "cand", Baseline: "base", Stage: StageCanary, CandidateWeight: weight}})
		if err != nil {
			t.Fatal(err)
		}
		const users = 10000
		cand := 0
		for i := range users {
			u := fmt.Sprintf("user-%d", i)
			first, ok := a.Assign("t1", u)
			if !ok {
				t.Fatal("trial not found")
			}
			for range 3 {
				if again, _ := a.Assign("t1", u); again != first {
					t.Fatalf("user %s flipped from %v to %v", u, first, again)
				}
			}
			if first.Route == "candidate" {
				cand++
			}
		}
		got := float64(cand) / users
		want := float64(weight) / WeightScale
		if got < want-0.01 || got > want+0.01 {
			t.Errorf("weight %d: %.4f of users on the candidate, want %.4f ± 0.01", weight, got, want)
		}
	}
}

func TestPlanValidateReportsEverything(t *testing.T) {
	err := Plan{Trial: "bad trial", Candidate: "", Baseline: "b", Stage: "nope", CandidateWeight: 20000}.Validate()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"trial", "candidate model", "stage", "weight"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestAssignUnknownTrial(t *testing.T) {
	a, _ := NewAssigner(nil)
	if _, ok := a.Assign("nope", "u"); ok {
		t.Fatal("unknown trial assigned")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
func BenchmarkAssign(b *testing.B) {
	a, _ := NewAssigner([]Plan{{Trial: "t1", Candidate: "cand", Baseline: "base", Stage: StageCanary, CandidateWeight: 5000}})
	b.ReportAllocs()
	for b.Loop() {
		a.Assign("t1", "3f2a9c0d1e4b5a6c")
	}
}
