package experiment

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readExample(tb testing.TB) []byte {
	tb.Helper()
	src, err := os.ReadFile("testdata/notice.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return src
}

func mustParse(tb testing.TB, src string) *Definition {
	tb.Helper()
	d, err := Parse("x.yaml", []byte(src))
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestParseExample(t *testing.T) {
	d, err := Parse("notice.yaml", readExample(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "disclosure-notice" || d.Trial != "demo" || len(d.Arms) != 2 || d.Control().Name != "control" ||
		d.Arm("notice").Variant.Data["notice"] == nil || d.MinimumSample != 2000 || d.Planned != 14*24*time.Hour ||
		d.Analysis.Rule != RuleFixedHorizon || d.Analysis.Looks != 1 || d.Analysis.Alpha != 0.05 ||
		d.Primary.Label() != "confirmed_incident_rate" || len(d.Guardrails) != 3 || *d.Guardrails[1].MaxCount != 0 ||
		d.Guardrails[2].WindowDuration() != 30*time.Minute || d.Eligibility.Cohorts[0] != "pilot" {
		t.Errorf("parsed %+v", d)
	}
	if !strings.Contains(RuleStatement(d), "no peeking") {
		t.Errorf("rule statement %q", RuleStatement(d))
	}
}

func TestParseProblems(t *testing.T) {
	base := string(readExample(t))
	for _, tc := range []struct {
		name string
		edit func(string) string
		want []string // "line:field:message fragment"
	}{
		{"unknown field", func(s string) string { return strings.Replace(s, "hypothesis:", "colour: red\nhypothesis:", 1) },
			[]string{"7:colour:unknown field"}},
		{"wrong type", func(s string) string { return strings.Replace(s, "minimum_sample: 2000", "minimum_sample: lots", 1) },
			[]string{"34::cannot unmarshal !!str `lots` into int64"}},
		{"shares and control", func(s string) string {
			return strings.Replace(strings.Replace(s, "    share: 50\n  - name: notice", "    share: 40\n  - name: notice", 1), "    control: true ", "    control: false", 1)
		}, []string{"13:arms:exactly one arm must be the control", "13:arms:shares add up to 90%", "14:arms[0].variant:required for a non-control arm"}},
		{"variant both", func(s string) string {
			return strings.Replace(s, "      data:                    # a data overlay on the trial's policy", "      dir: builtin:standard\n      data:", 1)
		}, []string{"19:arms[1].variant:set dir or data, not both"}},
		{"guard-rail bounds", func(s string) string {
			return strings.Replace(s, "    max_increase: 0.02 ", "    max: 0.5\n    max_increase: 0.02 ", 1)
		}, []string{"26:guardrails[0]:exactly one of max"}},
		{"metric and window", func(s string) string {
			return strings.Replace(strings.Replace(s, "metric: confirmed_incident_rate\n  category", "metric: happiness\n  category", 1), "window: 30m", "window: soon", 1)
		}, []string{"23:primary.metric:\"happiness\"", "32:guardrails[2].window:\"soon\""}},
		{"rule and duration", func(s string) string {
			return strings.Replace(strings.Replace(s, "planned_duration: 14d", "planned_duration: forever", 1), "rule: fixed_horizon", "rule: vibes", 1)
		}, []string{"35:planned_duration:forever", "38:analysis.rule:\"vibes\""}},
		{"missing hypothesis and name", func(s string) string {
			s = strings.Replace(s, "name: disclosure-notice\n", "", 1)
			i := strings.Index(s, "hypothesis:")
			j := strings.Index(s, "eligibility:")
			return s[:i] + s[j:]
		}, []string{":name:required", ":hypothesis:required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("notice.yaml", []byte(tc.edit(base)))
			var pe *Error
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want an *Error", err)
			}
			if len(pe.Problems) != len(tc.want) {
				t.Fatalf("problems %v, want %d", pe.Problems, len(tc.want))
			}
			for i, w := range tc.want {
				p := pe.Problems[i]
				parts := strings.SplitN(w, ":", 3)
				if parts[0] != "" && parts[0] != strconv.Itoa(p.Line) || p.Field != parts[1] || !strings.Contains(p.Message, parts[2]) || p.File != "notice.yaml" {
					t.Errorf("problem %d = %s, want %s", i, p, w)
				}
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"14d", 14 * 24 * time.Hour, true}, {"36h", 36 * time.Hour, true}, {"1d12h", 36 * time.Hour, true},
		{"90m", 90 * time.Minute, true}, {"d", 0, false}, {"-1h", 0, false}, {"3x", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readExample(f))
	f.Add([]byte("name: x\narms: [{name: a, share: 100, control: true}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("arms:\n  - {name: x, share: .nan}\n"))
	f.Add([]byte("arms:\n  - variant: {data: {a: {b: {c: [1, {d: e}]}}}}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		d, err := Parse("f.yaml", src)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("error is not an *Error with problems: %v", err)
			}
			return
		}
		// Whatever parses is valid, and says so again.
		if ps := d.check(); len(ps) > 0 {
			t.Fatalf("parsed but invalid: %v", ps)
		}
		if d.Control() == nil || len(d.Arms) < 2 || d.Planned <= 0 {
			t.Fatalf("parsed without control or duration: %+v", d)
		}
		cohort := ""
		if len(d.Eligibility.Cohorts) > 0 {
			cohort = d.Eligibility.Cohorts[0]
		}
		if i := NewAssigner(d).Assign("u_1", cohort); i >= len(d.Arms) {
			t.Fatalf("assigned arm %d of %d", i, len(d.Arms))
		}
	})
}
