package deploy

import (
	"fmt"
	"testing"

	"github.com/stagegate/stagegate/events"
)

func plan(stage string, weight, shadow int, cohorts ...string) Plan {
	return Plan{Trial: "t1", Candidate: "cand", Baseline: "base", Stage: stage, CandidateWeight: weight,
		ShadowSample: shadow, Cohorts: cohorts, Fallback: true}
}

func TestAssignRequestSplitStickinessAndGrowth(t *testing.T) {
	const users = 10000
	a, err := NewAssigner([]Plan{plan(StageCanary, 1000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	onCandidate := map[string]bool{}
	for i := range users {
		u := fmt.Sprintf("u_%08x", i*2654435761)
		first, ok := a.AssignRequest("t1", u, "", fmt.Sprintf("req-%d-0", i))
		if !ok {
			t.Fatal("trial not found")
		}
		// The same user keeps the same model on every request of the step.
		for r := 1; r <= 3; r++ {
			again, _ := a.AssignRequest("t1", u, "", fmt.Sprintf("req-%d-%d", i, r))
			if again.Assignment != first.Assignment {
				t.Fatalf("user %s flipped from %+v to %+v", u, first.Assignment, again.Assignment)
			}
		}
		if first.Route == events.RouteCandidate {
			onCandidate[u] = true
			if first.Model != "cand" || first.Fallback != "base" || first.Shadow != "" {
				t.Fatalf("candidate assignment %+v", first)
			}
		} else if first.Model != "base" || first.Fallback != "" {
			t.Fatalf("baseline assignment %+v", first)
		}
	}
	if got := float64(len(onCandidate)) / users; got < 0.09 || got > 0.11 {
		t.Fatalf("%.4f of users on the candidate at 10%%, want 0.10 ± 0.01", got)
	}
	// Growing to 50%: everyone who had the candidate keeps it.
	if _, err := a.Update(plan(StageCanary, 5000, 0)); err != nil {
		t.Fatal(err)
	}
	grown := 0
	for i := range users {
		u := fmt.Sprintf("u_%08x", i*2654435761)
		r, _ := a.AssignRequest("t1", u, "", "x")
		if r.Route == events.RouteCandidate {
			grown++
		} else if onCandidate[u] {
			t.Fatalf("user %s lost the candidate when the weight grew", u)
		}
	}
	if got := float64(grown) / users; got < 0.49 || got > 0.51 {
		t.Fatalf("%.4f at 50%%", got)
	}
}

func TestAssignRequestCohortsShadowAndFallback(t *testing.T) {
	a, err := NewAssigner([]Plan{plan(StagePilot, WeightScale, 0, "beta", "staff")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cohort, route string
	}{{"beta", events.RouteCandidate}, {"staff", events.RouteCandidate}, {"public", events.RouteBaseline}, {"", events.RouteBaseline}} {
		r, _ := a.AssignRequest("t1", "u1", tc.cohort, "r1")
		if r.Route != tc.route {
			t.Errorf("cohort %q: route %s, want %s", tc.cohort, r.Route, tc.route)
		}
	}
	if r, _ := a.Assign("t1", "u1"); r.Route != events.RouteBaseline {
		t.Errorf("cohort-less Assign on a cohort plan went to %s", r.Route)
	}

	// Shadow: nobody is served by the candidate; 20% of requests are copied to it,
	// the same request id always decides the same way.
	if _, err := a.Update(plan(StageShadow, 0, 2000)); err != nil {
		t.Fatal(err)
	}
	const reqs = 10000
	shadowed := 0
	for i := range reqs {
		id := fmt.Sprintf("int_%d", i)
		r, _ := a.AssignRequest("t1", fmt.Sprintf("u%d", i%97), "", id)
		if r.Route != events.RouteBaseline || r.Model != "base" {
			t.Fatalf("shadow stage served %+v", r)
		}
		if r.Shadow != "" {
			shadowed++
			if r.Shadow != "cand" {
				t.Fatalf("shadow copy to %q", r.Shadow)
			}
		}
		again, _ := a.AssignRequest("t1", "someone-else", "", id)
		if (again.Shadow != "") != (r.Shadow != "") {
			t.Fatalf("request %s sampled differently on a second ask", id)
		}
	}
	if got := float64(shadowed) / reqs; got < 0.19 || got > 0.21 {
		t.Fatalf("%.4f of requests shadowed at 20%%", got)
	}

	// Fallback off; aborted plans send nothing to the candidate.
	p := plan(StageGeneral, WeightScale, 0)
	p.Fallback = false
	if _, err := a.Update(p); err != nil {
		t.Fatal(err)
	}
	if r, _ := a.AssignRequest("t1", "u1", "", "r"); r.Route != events.RouteCandidate || r.Fallback != "" {
		t.Fatalf("general without fallback %+v", r)
	}
	if _, err := a.Update(plan(StageAborted, 0, 0)); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if r, _ := a.AssignRequest("t1", fmt.Sprint(i), "", fmt.Sprint(i)); r.Route != events.RouteBaseline || r.Shadow != "" || r.Stage != StageAborted {
			t.Fatalf("aborted plan served %+v", r)
		}
	}
	if _, err := a.Update(plan(StageAborted, 10, 0)); err == nil {
		t.Fatal("an aborted plan with weight was accepted")
	}
}

func TestAssignerUpdateRemovePlans(t *testing.T) {
	a, _ := NewAssigner([]Plan{plan(StageCanary, 100, 0)})
	changed, err := a.Update(plan(StageCanary, 100, 0))
	if err != nil || changed {
		t.Fatalf("same plan: changed %v err %v", changed, err)
	}
	other := plan(StageGeneral, WeightScale, 0)
	other.Trial = "t0"
	if changed, _ := a.Update(other); !changed {
		t.Fatal("new trial not reported as a change")
	}
	ps := a.Plans()
	if len(ps) != 2 || ps[0].Trial != "t0" || ps[1].Trial != "t1" {
		t.Fatalf("plans %+v", ps)
	}
	a.Remove("t0")
	if _, ok := a.Plan("t0"); ok {
		t.Fatal("removed plan still there")
	}
	if _, ok := a.AssignRequest("t0", "u", "", "r"); ok {
		t.Fatal("removed trial still assigned")
	}
}

func TestAssignRequestAllocatesNothing(t *testing.T) {
	a, _ := NewAssigner([]Plan{plan(StagePilot, 5000, 1000, "beta")})
	if n := testing.AllocsPerRun(1000, func() { a.AssignRequest("t1", "3f2a9c0d1e4b5a6c", "beta", "int_0123456789") }); n != 0 {
		t.Fatalf("AssignRequest allocates %v times", n)
	}
}

func BenchmarkAssignRequest(b *testing.B) {
	a, _ := NewAssigner([]Plan{plan(StageCanary, 1000, 2000)})
	b.ReportAllocs()
	for b.Loop() {
		a.AssignRequest("t1", "3f2a9c0d1e4b5a6c", "pilot", "int_0123456789abcdef")
	}
}
