package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/incidents"
)

func TestEvaluateGate(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	pii := []Threshold{{Category: "pii", Severity: "high", MaxRate: 0.02}}
	ev := func(n int64, confirmed ...incidents.SeverityCount) *incidents.RolloutEvidence {
		return &incidents.RolloutEvidence{Interactions: n, Confirmed: confirmed}
	}
	for _, tc := range []struct {
		name     string
		gate     GateStep
		th       []Threshold
		ev       *incidents.RolloutEvidence
		elapsed  time.Duration
		approved bool
		want     Outcome
		mention  []string
	}{
		{"clean and enough", GateStep{MinInteractions: 200, MinDuration: Duration(time.Hour)}, pii, ev(200), 2 * time.Hour, false, Pass,
			[]string{"gate passed", "0 confirmed of 200", "upper bound below max"}},
		{"too few interactions", GateStep{MinInteractions: 200}, pii, ev(150), time.Hour, false, Inconclusive,
			[]string{"150 of 200 required interactions"}},
		{"too early", GateStep{MinDuration: Duration(24 * time.Hour)}, nil, ev(10), time.Hour, false, Inconclusive,
			[]string{"1h0m0s of the minimum 1d"}},
		{"bound not low enough yet", GateStep{MinInteractions: 100}, pii, ev(150), time.Hour, false, Inconclusive,
			[]string{"0 confirmed of 150", "upper bound not below max yet"}},
		{"clearly over the bound", GateStep{MinInteractions: 100}, pii, ev(100, incidents.SeverityCount{Category: "pii", Severity: "critical", Count: 10}), time.Hour, false, Fail,
			[]string{"10 confirmed of 100", "even the lower bound is above max"}},
		{"over the bound but below min interactions", GateStep{MinInteractions: 500}, pii, ev(100, incidents.SeverityCount{Category: "pii", Severity: "high", Count: 10}), time.Hour, false, Inconclusive,
			[]string{"100 of 500"}},
		{"lower severities do not count", GateStep{}, pii, ev(400, incidents.SeverityCount{Category: "pii", Severity: "medium", Count: 50}), time.Hour, false, Pass, nil},
		{"unreviewed severe", GateStep{}, nil, &incidents.RolloutEvidence{Interactions: 10, UnresolvedSevere: 2, UnresolvedSevereIDs: []string{"inc_a", "inc_b"}}, time.Hour, false, Inconclusive,
			[]string{"2 high or critical incident(s) await review (inc_a, inc_b)"}},
		{"needs approval", GateStep{Approval: true}, nil, ev(10), time.Hour, false, Inconclusive, []string{"regulator's approval"}},
		{"approved", GateStep{Approval: true}, nil, ev(10), time.Hour, true, Pass, nil},
		{"inconclusive past max duration", GateStep{MinInteractions: 100, MaxDuration: Duration(48 * time.Hour)}, nil, ev(3), 49 * time.Hour, false, Fail,
			[]string{"still inconclusive after max_duration 2d", "3 of 100"}},
		{"no interactions", GateStep{}, pii, ev(0), time.Hour, false, Inconclusive, []string{"no interactions yet"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := GateInput{Gate: tc.gate, Thresholds: tc.th, Model: "cand", Since: t0, Now: t0.Add(tc.elapsed), Approved: tc.approved}
			v := EvaluateGate(in, tc.ev)
			if v.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s: %s", v.Outcome, tc.want, v.Summary)
			}
			for _, m := range tc.mention {
				if !strings.Contains(v.Summary, m) {
					t.Errorf("summary %q does not mention %q", v.Summary, m)
				}
			}
			// Every input number is in the verdict.
			if v.Interactions != tc.ev.Interactions || v.MinInteractions != tc.gate.MinInteractions ||
				v.Elapsed.D() != tc.elapsed || len(v.Rates) != len(tc.th) || v.UnresolvedSevere != tc.ev.UnresolvedSevere {
				t.Errorf("verdict numbers %+v", v)
			}
			for _, rc := range v.Rates {
				lo, hi := Wilson(rc.Confirmed, rc.Interactions, rc.Z)
				if rc.Lower != lo || rc.Upper != hi || rc.Confidence != 0.95 || rc.MaxRate != 0.02 {
					t.Errorf("rate check %+v cannot be recomputed", rc)
				}
			}
		})
	}
}

func TestErrorVerdict(t *testing.T) {
	v := ErrorVerdict(GateInput{Model: "cand"}, errString("database is locked"))
	if v.Outcome != Error || !strings.Contains(v.Summary, "database is locked") {
		t.Fatalf("%+v", v)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
