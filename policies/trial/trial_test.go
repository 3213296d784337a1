package trial

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/policies"
)

func readExample(t testing.TB) []byte {
	t.Helper()
	src, err := os.ReadFile("testdata/clinic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestParseExample(t *testing.T) {
	tr, err := Parse("clinic.yaml", readExample(t))
	if err != nil {
		t.Fatal(err)
	}
	if tr.ID != "clinic-assistant" || tr.Models.LogicalModel != "clinic" || tr.Caps.TokensPerRequest != 1024 ||
		len(tr.Participants.Cohorts) != 3 || tr.Participants.Cohorts[1].Attribute.Values[1] != "nurse" ||
		tr.Participants.Cohorts[2].Percent != 10 || tr.RiskThresholds["pii"]["high"] != 0.001 ||
		!tr.DataHandling.RedactPII || tr.Policy.FailMode != "closed" || tr.Query() != "data.stagegate.decision" {
		t.Errorf("parsed %+v", tr)
	}
	if !tr.Start.Equal(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("start %v", tr.Start)
	}
	if got := tr.Topics()["appointments"]; len(got) != 5 || got[3] != "预约" {
		t.Errorf("topics %v", got)
	}
	// The policy it names loads and decides.
	rc, err := tr.ReloaderConfig()
	if err != nil {
		t.Fatal(err)
	}
	r, err := policies.NewReloader(context.Background(), rc, policies.ReloaderDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Decide(context.Background(), policies.Input{}); err != nil {
		t.Fatal(err)
	}
}

func TestActive(t *testing.T) {
	tr, err := Parse("clinic.yaml", readExample(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{tr.Start.Add(-time.Second), "starts at 2025-06-01T00:00:00Z"},
		{tr.Start, ""},
		{tr.End.Add(-time.Second), ""},
		{tr.End, "ended at 2026-06-01T00:00:00Z"},
	} {
		err := tr.Active(tc.at)
		if tc.want == "" && err != nil || tc.want != "" && (!errors.Is(err, ErrNotActive) || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Active(%v) = %v, want %q", tc.at, err, tc.want)
		}
	}
}

// replace edits the example: the first line containing old is replaced by new.
func replace(t *testing.T, old, new string) []byte {
	t.Helper()
	src := string(readExample(t))
	if !strings.Contains(src, old) {
		t.Fatalf("example lacks %q", old)
	}
	return []byte(strings.Replace(src, old, new, 1))
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  []byte
		want []string
	}{
		{"unknown fields", append(replace(t, "caps:\n", "caps:\n  requests_per_hour: 5\n"), "colour: blue\n"...),
			[]string{"clinic.yaml:35: caps.requests_per_hour: unknown field (known here: concurrent_streams, requests_per_user_per_day, tokens_per_request)",
				"clinic.yaml:50: colour: unknown field"}},
		{"wrong types", replace(t, "  tokens_per_request: 1024", "  tokens_per_request: lots\n  concurrent_streams: [1]"),
			[]string{`clinic.yaml:36: caps.tokens_per_request: "lots": want an integer`, `clinic.yaml:37: caps.concurrent_streams: a list: want an integer`}},
		{"unknown fields and broken rules together", append(replace(t, "  tokens_per_request: 1024", "  tokens_per_request: -1"), "colour: blue\n"...),
			[]string{"clinic.yaml:36: caps.tokens_per_request: -1 is not in", "clinic.yaml:49: colour: unknown field"}},
		{"a wrong type is reported once", replace(t, "  tokens_per_request: 1024", "  tokens_per_request: lots"),
			[]string{`caps.tokens_per_request: "lots": want an integer`}},
		{"bad time", replace(t, "start: 2025-06-01T00:00:00Z", "start: next tuesday"),
			[]string{`clinic.yaml:11: start: "next tuesday" is not a time`}},
		{"unquoted number for a string", replace(t, "logical_model: clinic", "logical_model: 42"),
			[]string{`models.logical_model: "42": want a string (quote it)`}},
		{"nested wrong kind", replace(t, "  pii: {high: 0.001, critical: 0}", "  pii: high"),
			[]string{`risk_thresholds.pii: "high": want a mapping`}},
		{"duplicate key", replace(t, "title: Clinic", "id: again\ntitle: Clinic"),
			[]string{"clinic.yaml:4: id: defined twice"}},
		{"rules", replace(t, "end: 2026-06-01T00:00:00Z", "end: 2024-06-01T00:00:00Z"),
			[]string{"clinic.yaml:12: end: 2024-06-01T00:00:00Z is not after start"}},
		{"many rules at once", []byte(strings.NewReplacer(
			"id: clinic-assistant", "id: clinic assistant",
			"  contact: sandbox@dha.example", "  contact: \"\"",
			"      percent: 10", "      percent: 150",
			"  baseline: acme-med-v1", "  baseline: acme-med-v2",
			"  allowed: [appointments, opening_hours]", "  allowed: [appointments, billing]",
			"  tokens_per_request: 1024", "  tokens_per_request: -5",
			"  pii: {high: 0.001, critical: 0}", "  pii: {severe: 2}",
			"  fail_mode: closed", "  fail_mode: ajar",
			"  dir: builtin:standard", "  dir: builtin:nope",
		).Replace(string(readExample(t)))),
			[]string{
				`clinic.yaml:3: id: "clinic assistant": use letters, digits, '-' and '_' only`,
				"clinic.yaml:10: regulator.contact: required",
				"clinic.yaml:22: participants.cohorts[2].percent: 150 is not in (0, 100]",
				"clinic.yaml:26: models.baseline: must differ from the candidate",
				`clinic.yaml:28: purposes.allowed[1]: topic "billing" has no keyword list`,
				"clinic.yaml:36: caps.tokens_per_request: -5 is not in 0..16777216",
				`clinic.yaml:42: risk_thresholds.pii.severe: severity "severe"`,
				"clinic.yaml:42: risk_thresholds.pii.severe: 2 is not a rate in 0..1",
				`clinic.yaml:45: policy.dir: no built-in policy "nope"`,
				`clinic.yaml:48: policy.fail_mode: "ajar": want open or closed`,
			}},
		{"policy source", replace(t, "  dir: builtin:standard", "  bundle: ftp://x"),
			[]string{`policy.bundle: "ftp://x": want an http(s) URL`}},
		{"cohort assignment", replace(t, "      percent: 10", "      percent: 10\n      users: [a]"),
			[]string{"participants.cohorts[2]: assign users by exactly one of users, percent and attribute (got 2)"}},
		{"bad package", replace(t, "  package: stagegate", "  package: \"stage gate\""),
			[]string{`policy.package: "stage gate" is not a Rego package name`}},
		{"bad topic", replace(t, "    weapons: [build a bomb, firearm, 炸药]", "    weapons: []"),
			[]string{"clinic.yaml:33: purposes.topics.weapons: topic \"weapons\" has no keywords"}},
		{"syntax", []byte("id: x\ntitle: [unclosed\n"), []string{"did not find expected"}},
		{"empty", nil, []string{"clinic.yaml: empty"}},
		{"not a mapping", []byte("- a\n- b\n"), []string{"clinic.yaml:1: a list: want a mapping"}},
		{"two documents", append(readExample(t), []byte("---\nid: x\n")...), []string{"more than one YAML document"}},
		{"too large", make([]byte, MaxBytes+1), []string{"larger than"}},
		{"missing everything", []byte("id: x\n"), []string{"title: required", "sponsor.name: required", "start: required",
			"participants: name at least one tenant", "models.candidate: required", "policy: set dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("clinic.yaml", tc.src)
			var te *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &te) || len(te.Problems) == 0 {
				t.Fatalf("err = %v, want an *Error wrapping ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readExample(f))
	f.Add([]byte("id: x\ncaps: {tokens_per_request: 5}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("participants:\n  cohorts:\n    - {name: x, percent: .nan}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		tr, err := Parse("f.yaml", src)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || len(te.Problems) == 0 {
				t.Fatalf("error is not a trial *Error with problems: %v", err)
			}
			return
		}
		// Whatever parses is valid, and says so again.
		if ps := tr.check(); len(ps) > 0 {
			t.Fatalf("parsed but invalid: %v", ps)
		}
		if tr.ID == "" || !tr.End.After(tr.Start) {
			t.Fatalf("parsed without id or window: %+v", tr)
		}
	})
}
