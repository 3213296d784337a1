package deploy

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseSpecExample(t *testing.T) {
	raw, err := os.ReadFile("testdata/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSpec("rollout.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{}
	for _, st := range s.Steps {
		kinds = append(kinds, st.Kind())
	}
	if got := strings.Join(kinds, ","); got != "shadow,gate,canary,gate,pilot,pause,general" {
		t.Fatalf("kinds %s", got)
	}
	g := s.Steps[3].Gate
	if g.MinInteractions != 100 || g.MinDuration.D() != 48*time.Hour || g.MaxDuration.D() != 14*24*time.Hour || !g.Approval {
		t.Fatalf("gate %+v", g)
	}
	if s.Steps[1].Gate.MinDuration.D() != 24*time.Hour || len(s.GateThresholds(s.Steps[1].Gate)) != 2 {
		t.Fatalf("gate 1 %+v", s.Steps[1].Gate)
	}
	if s.Steps[6].General == nil || s.Steps[5].Pause.Duration.D() != 48*time.Hour || !s.Fallback() {
		t.Fatalf("steps %+v", s.Steps)
	}
	if s.Steps[2].line != 15 {
		t.Fatalf("canary step line %d, want 15", s.Steps[2].line)
	}
	tr, ok := trafficOf(&s.Steps[0])
	if !ok || tr.ShadowSample != 2000 || tr.CandidateWeight != 0 {
		t.Fatalf("shadow traffic %+v", tr)
	}
	tr, _ = trafficOf(&s.Steps[4])
	if tr.CandidateWeight != WeightScale || len(tr.Cohorts) != 1 || tr.Stage != StagePilot {
		t.Fatalf("pilot traffic %+v", tr)
	}
}

func TestParseSpecErrors(t *testing.T) {
	base := "trial: t1\ncandidate: c\nbaseline: b\n"
	for _, tc := range []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"empty"}},
		{"unknown top-level field", base + "stpes: []\n", []string{"line 4", "stpes"}},
		{"unknown step field", base + "steps:\n  - canary: {weight: 10, wieght: 3}\n", []string{"line 5", "wieght"}},
		{"two fields in a step", base + "steps:\n  - canary: {weight: 10}\n    general: {}\n", []string{"steps[0] (line 5)", "exactly one"}},
		{"no field in a step", base + "steps:\n  - {}\n", []string{"steps[0] (line 5)", "exactly one"}},
		{"no steps", base, []string{"at least one step"}},
		{"weight out of range", base + "steps:\n  - general: {}\n  - canary: {weight: 150}\n", []string{"steps[1] (line 6)", "canary.weight 150"}},
		{"bad names", "trial: a.b\ncandidate: x\nbaseline: x\nsteps: [general: {}]\n", []string{"trial \"a.b\"", "must differ"}},
		{"bad gate", base + "steps:\n  - gate: {min_interactions: -1, min_duration: 2h, max_duration: 1h, confidence: 2, thresholds: [{category: pii, max_rate: 5}]}\n",
			[]string{"min_interactions", "max_duration 1h", "confidence 2", "max_rate 5"}},
		{"bad duration", base + "steps:\n  - pause: {duration: soon}\n", []string{"line 5", "duration \"soon\""}},
		{"pilot without cohorts", base + "steps:\n  - pilot: {cohorts: []}\n", []string{"pilot.cohorts"}},
		{"two documents", base + "steps: [general: {}]\n---\ntrial: x\n", []string{"one YAML document"}},
		{"wrong type", base + "steps:\n  - canary: {weight: lots}\n", []string{"line 5"}},
		{"duplicate threshold", base + "thresholds: [{category: pii, max_rate: 0.1}, {category: pii, severity: low, max_rate: 0.2}]\nsteps: [general: {}]\n", []string{"listed twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("plan.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("want error")
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error %v does not wrap ErrInvalidSpec", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseSpecNullSteps(t *testing.T) {
	s, err := ParseSpec("p", []byte("trial: t\ncandidate: c\nbaseline: b\nsteps:\n  - pause:\n  - general:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Steps[0].Pause == nil || s.Steps[0].Pause.Duration != 0 || s.Steps[1].General == nil {
		t.Fatalf("steps %+v", s.Steps)
	}
	if s.Steps[0].String() != "pause until promoted" {
		t.Fatalf("pause step reads %q", s.Steps[0].String())
	}
}

func TestParseSpecTooLarge(t *testing.T) {
	if _, err := ParseSpec("p", make([]byte, MaxSpecBytes+1)); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("err %v", err)
	}
}

func TestDurationRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		out  string
	}{{"7d", 7 * 24 * time.Hour, "7d"}, {"36h", 36 * time.Hour, "36h0m0s"}, {"90s", 90 * time.Second, "1m30s"}, {"48h", 48 * time.Hour, "2d"}} {
		d, err := ParseDuration(tc.in)
		if err != nil || d.D() != tc.want || d.String() != tc.out {
			t.Errorf("%s: %v %v %q", tc.in, d.D(), err, d.String())
		}
		b, _ := d.MarshalJSON()
		var back Duration
		if err := back.UnmarshalJSON(b); err != nil || back != d {
			t.Errorf("%s: JSON round trip %s → %v %v", tc.in, b, back, err)
		}
	}
	for _, bad := range []string{"", "x", "1.5d", "-1d", "9999d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	if raw, err := os.ReadFile("testdata/rollout.yaml"); err == nil {
		f.Add(raw)
	}
	f.Add([]byte("trial: t\ncandidate: c\nbaseline: b\nsteps: [general: {}]\n"))
	f.Add([]byte("trial: t\nsteps:\n  - pause:\n  - gate: {thresholds: [{category: '*', max_rate: 0.1}]}\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("steps: [{shadow: {sample: .NaN}}]"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseSpec("fuzz", raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error does not wrap ErrInvalidSpec: %v", err)
			}
			return
		}
		// A plan that parses is valid, every step has exactly one kind, and its
		// traffic steps make valid plans.
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed plan does not validate: %v", err)
		}
		for i := range s.Steps {
			if s.Steps[i].Kind() == "" {
				t.Fatalf("step %d has no kind", i)
			}
			if tr, ok := trafficOf(&s.Steps[i]); ok {
				st := State{Spec: s, Traffic: tr, Status: StatusProgressing}
				if err := st.Plan().Validate(); err != nil {
					t.Fatalf("step %d makes an invalid plan: %v", i, err)
				}
			}
		}
	})
}
