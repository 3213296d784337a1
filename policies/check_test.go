package policies

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/fstest"
)

// The corpora in testdata/ hold for the built-in policies they are named after,
// run exactly as `stagegate policy test` runs them (Rego tests included).
func TestCorpusFiles(t *testing.T) {
	files, err := fs.Glob(LoadDir("testdata"), "*"+CorpusSuffix)
	if err != nil || len(files) < 2 {
		t.Fatalf("corpus files %v, %v", files, err)
	}
	for _, f := range files {
		root := strings.TrimSuffix(path.Base(f), CorpusSuffix)
		t.Run(root, func(t *testing.T) {
			cases, err := LoadCorpus(LoadDir("testdata"), f)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := fs.Sub(Builtin(), "rego/"+root)
			if err != nil {
				t.Fatal(err)
			}
			_, rep, err := Check(context.Background(), CheckConfig{Config: Config{FS: sub}, Corpus: cases})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.WriteText(&out, false)
			if rep.Err() != nil || len(rep.Cases) != len(cases)+1 || len(rep.Tests) == 0 {
				t.Errorf("%d cases, %d tests:\n%s", len(rep.Cases), len(rep.Tests), out.String())
			}
		})
	}
}

func TestCheckReportsFailures(t *testing.T) {
	root := fstest.MapFS{
		"p.rego":      {Data: []byte("package stagegate\n\ndefault decision := {\"allow\": true}\n\ndecision := {\"allow\": false, \"reasons\": [{\"code\": \"no\"}]} if input.trial == \"x\"\n")},
		"p_test.rego": {Data: []byte("package stagegate_test\n\nimport data.stagegate\n\ntest_ok if stagegate.decision.allow\n\ntest_broken if not stagegate.decision.allow\n\ntodo_test_later if false\n")},
		"own.corpus.yaml": {Data: []byte(`cases:
  - name: x is denied
    input: {trial: x}
    expect: {allow: false, reasons: [{code: no}]}
  - name: wrong on purpose
    input: {trial: y}
    expect: {allow: false, reasons: [{code: nope, message_contains: z}], route: baseline}
`)},
	}
	extra, err := ParseCorpus("extra.yaml", []byte("cases:\n  - name: extra passes\n    expect: {allow: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	eng, rep, err := Check(context.Background(), CheckConfig{Config: Config{FS: root}, Corpus: extra})
	if err != nil {
		t.Fatal(err)
	}
	if eng == nil || rep.Revision != eng.Revision() {
		t.Fatal("Check did not return the checked engine")
	}
	if got := rep.Failures(); got != 2 || len(rep.Tests) != 3 || len(rep.Cases) != 4 {
		t.Fatalf("failures %d, tests %d, cases %d; want 2, 3, 4", got, len(rep.Tests), len(rep.Cases))
	}
	if err := rep.Err(); !errors.Is(err, ErrCheck) || Code(err) != CodeCheck {
		t.Errorf("Err() = %v", err)
	}
	var out bytes.Buffer
	rep.WriteText(&out, true)
	for _, want := range []string{
		"FAIL  test stagegate_test.test_broken  p_test.rego:7",
		"PASS  test stagegate_test.test_ok",
		"SKIP  test stagegate_test.todo_test_later",
		"FAIL  case own.corpus.yaml:5 (wrong on purpose)",
		`allow = true, want false`,
		`reasons = [], want [nope (containing "z")]`,
		`route = "", want "baseline"`,
		"PASS  case extra.yaml:2 (extra passes)",
		"FAILED: revision sha256:",
		"PASS  case (built-in) the decision is defined for an empty input",
		"Rego tests 2/3 passed, corpus cases 3/4 passed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	_, rep, err = Check(context.Background(), CheckConfig{Config: Config{FS: root}, Run: "^x is"})
	if err != nil || len(rep.Cases) != 1 || len(rep.Tests) != 0 || rep.Failures() != 0 {
		t.Errorf("Run filter: %v, %+v", err, rep)
	}
}

func TestCheckCannotCheck(t *testing.T) {
	for name, root := range map[string]fstest.MapFS{
		"broken rego":   {"p.rego": {Data: []byte("package stagegate\n\ndecision := {")}},
		"broken corpus": {"p.rego": {Data: []byte("package stagegate\n\ndecision := {\"allow\": true}\n")}, "c.corpus.yaml": {Data: []byte("cases: [{name: a}]")}},
		"no rule":       {"p.rego": {Data: []byte("package other\n\nx := 1\n")}},
	} {
		if _, _, err := Check(context.Background(), CheckConfig{Config: Config{FS: root}}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Compiles, but gives no well-formed decision for the empty input.
	for name, root := range map[string]fstest.MapFS{
		"undefined":   {"p.rego": {Data: []byte("package stagegate\n\ndecision := {\"allow\": true} if input.trial == \"x\"\n")}},
		"wrong shape": {"p.rego": {Data: []byte("package stagegate\n\ndecision := {\"allow\": \"yes\"}\n")}},
	} {
		_, rep, err := Check(context.Background(), CheckConfig{Config: Config{FS: root}})
		if err != nil || rep.Failures() != 1 || !strings.Contains(strings.Join(rep.Cases[0].Problems, ""), "decision failed") {
			t.Errorf("%s: %v, %+v", name, err, rep)
		}
	}
}

func TestParseCorpusErrors(t *testing.T) {
	src := `base:
  trial: demo
  bogus_top: 1
cases:
  - name: fine
    expect: {allow: true}
  - input: {signals: {topics: weapons}}
    expect: {allow: maybe, colour: red, reasons: [{message: x}], obligations: {max_tokens: lots}}
  - name: unknown key
    expekt: {}
  - just a string
unknown: 1
`
	_, err := ParseCorpus("bad.yaml", []byte(src))
	if !errors.Is(err, ErrInput) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		`bad.yaml:2: base: json: unknown field "bogus_top"`,
		`bad.yaml:7: cases[1].name: required`,
		`bad.yaml:8: cases[1].expect.allow: want true or false`,
		`bad.yaml:8: cases[1].expect: unknown field "colour"`,
		`bad.yaml:8: cases[1].expect.reasons[0].code: required`,
		`bad.yaml:8: cases[1].expect.obligations.max_tokens: want an integer`,
		`bad.yaml:10: cases[2]: unknown field "expekt"`,
		`bad.yaml:9: cases[2].expect: required`,
		`bad.yaml:11: cases[3]: want a mapping`,
		`bad.yaml:12: unknown field "unknown"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for name, src := range map[string]string{
		"empty":       "",
		"not a map":   "- 1\n",
		"no cases":    "base: {}\n",
		"bad yaml":    "cases: [\n",
		"deep":        "cases:\n  - name: x\n    expect: {}\n    input: " + strings.Repeat("{a: ", 40) + strings.Repeat("}", 40) + "\n",
		"wrong input": "cases:\n  - name: x\n    expect: {}\n    input: {request: {max_tokens: 1.5}}\n",
	} {
		if _, err := ParseCorpus(name, []byte(src)); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", name, err)
		}
	}
}

func TestParseCorpusMergesBase(t *testing.T) {
	cases, err := ParseCorpus("m.yaml", []byte(`base:
  trial: demo
  time: 2025-06-01T12:00:00Z
  caller: {tenant: acme, attributes: {a: "1"}}
  signals: {topics: [x]}
cases:
  - name: merged
    input: {caller: {cohort: pilot, attributes: {b: "2"}}, signals: {topics: []}}
    expect: {allow: true, reasons: [], obligations: {notice: "n", log_level: info, redact_pii_in_storage: false}, fail_mode: closed}
`))
	if err != nil {
		t.Fatal(err)
	}
	in := cases[0].Input
	if in.Trial != "demo" || in.Time != "2025-06-01T12:00:00Z" || in.Caller.Tenant != "acme" || in.Caller.Cohort != "pilot" ||
		in.Caller.Attributes["a"] != "1" || in.Caller.Attributes["b"] != "2" || len(in.Signals.Topics) != 0 {
		t.Errorf("merged input %+v", in)
	}
	e := cases[0].Expect
	if e.Reasons == nil || len(e.Reasons) != 0 || *e.Notice != "n" || *e.FailMode != "closed" || *e.RedactPIIInStorage {
		t.Errorf("expectation %+v", e)
	}
}

func FuzzParseCorpus(f *testing.F) {
	for _, name := range []string{"demo.corpus.yaml", "standard.corpus.yaml"} {
		src, err := fs.ReadFile(LoadDir("testdata"), name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("cases: [{name: a, expect: {allow: true}, input: &x {trial: *x}}]"))
	f.Fuzz(func(t *testing.T, src []byte) {
		cases, err := ParseCorpus("f.yaml", src)
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("error without ErrInput: %v", err)
			}
			return
		}
		for _, c := range cases {
			if c.Name == "" || c.Line <= 0 {
				t.Fatalf("case without name or line: %+v", c)
			}
		}
	})
}
