package policies

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

// policyFS builds a policy root from file contents.
func policyFS(files map[string]string) fs.FS {
	m := fstest.MapFS{}
	for name, src := range files {
		m[name] = &fstest.MapFile{Data: []byte(src)}
	}
	return m
}

func mustEngine(t *testing.T, files map[string]string) *Engine {
	t.Helper()
	e, err := New(context.Background(), Config{FS: policyFS(files)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func TestDecideDemoPolicy(t *testing.T) {
	e := demoEngine(t)
	base := realisticInput()
	with := func(f func(*Input)) Input {
		in := base
		in.Signals.Topics = slices.Clone(base.Signals.Topics)
		in.Signals.PIITypes = slices.Clone(base.Signals.PIITypes)
		f(&in)
		return in
	}
	tests := []struct {
		name string
		in   Input
		want Decision
	}{
		{
			name: "allowed, capped, redacted",
			in:   base,
			want: Decision{Allow: true, Reasons: []Reason{}, FailMode: FailClosed,
				Obligations: Obligations{RedactPIIInStorage: true, MaxTokens: 512, LogLevel: "info"}},
		},
		{
			name: "denied topic",
			in:   with(func(in *Input) { in.Signals.Topics = []string{"medical_dosing", "travel"} }),
			want: Decision{Allow: false, FailMode: FailClosed,
				Reasons:     []Reason{{Code: "topic_denied", Message: "requests about medical_dosing are not allowed in this trial"}},
				Obligations: Obligations{RedactPIIInStorage: true, MaxTokens: 512, LogLevel: "info"}},
		},
		{
			name: "two denied topics, sorted reasons",
			in:   with(func(in *Input) { in.Signals.Topics = []string{"weapons", "medical_dosing"} }),
			want: Decision{Allow: false, FailMode: FailClosed,
				Reasons: []Reason{
					{Code: "topic_denied", Message: "requests about medical_dosing are not allowed in this trial"},
					{Code: "topic_denied", Message: "requests about weapons are not allowed in this trial"},
				},
				Obligations: Obligations{RedactPIIInStorage: true, MaxTokens: 512, LogLevel: "info"}},
		},
		{
			name: "smaller request keeps its max_tokens, no pii",
			in: with(func(in *Input) {
				in.Request.MaxTokens = 100
				in.Signals.PIITypes = nil
			}),
			want: Decision{Allow: true, Reasons: []Reason{}, FailMode: FailClosed,
				Obligations: Obligations{MaxTokens: 100, LogLevel: "info"}},
		},
		{
			name: "no max_tokens in the request gets the cap",
			in:   with(func(in *Input) { in.Request.MaxTokens = 0 }),
			want: Decision{Allow: true, Reasons: []Reason{}, FailMode: FailClosed,
				Obligations: Obligations{RedactPIIInStorage: true, MaxTokens: 512, LogLevel: "info"}},
		},
		{
			name: "zero input is still decided",
			in:   Input{},
			want: Decision{Allow: true, Reasons: []Reason{}, FailMode: FailClosed,
				Obligations: Obligations{MaxTokens: 512, LogLevel: "info"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.Decide(context.Background(), tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got.Revision != e.Revision() || got.EvalMicros < 0 {
				t.Errorf("Revision %q (engine %q), EvalMicros %d", got.Revision, e.Revision(), got.EvalMicros)
			}
			got.Revision, got.EvalMicros = "", 0
			if !decisionsEqual(got, tc.want) {
				t.Errorf("Decide =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func decisionsEqual(a, b Decision) bool {
	return a.Allow == b.Allow && slices.Equal(a.Reasons, b.Reasons) && a.Route == b.Route &&
		a.Obligations == b.Obligations && a.FailMode == b.FailMode &&
		a.Revision == b.Revision && a.EvalMicros == b.EvalMicros
}

// steppingClock advances by step on every reading.
type steppingClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

var _ clock.Clock = (*steppingClock)(nil)

func TestDecideMeasuresWithTheClock(t *testing.T) {
	e, err := New(context.Background(), Config{FS: demoFS(t), Clock: &steppingClock{step: 250 * time.Microsecond}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(context.Background(), realisticInput())
	if err != nil {
		t.Fatal(err)
	}
	if d.EvalMicros != 250 {
		t.Errorf("EvalMicros = %d, want 250", d.EvalMicros)
	}
}

func TestRevision(t *testing.T) {
	a := demoEngine(t)
	b := demoEngine(t)
	if a.Revision() != b.Revision() {
		t.Errorf("same files, different revisions: %s %s", a.Revision(), b.Revision())
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{16}$`).MatchString(a.Revision()) {
		t.Errorf("revision %q has the wrong form", a.Revision())
	}
	const policy = "package stagegate\n\ndecision := {\"allow\": true}\n"
	p1 := mustEngine(t, map[string]string{"p.rego": policy, "data.json": `{"x": 1}`})
	p2 := mustEngine(t, map[string]string{"p.rego": policy, "data.json": `{"x": 2}`})
	p3 := mustEngine(t, map[string]string{"p.rego": policy, "data.json": `{"x": 1}`, "p_test.rego": "package t\n\ntest_x if true\n"})
	p4 := mustEngine(t, map[string]string{"q.rego": policy, "data.json": `{"x": 1}`})
	if p1.Revision() == p2.Revision() {
		t.Error("changing data.json kept the revision")
	}
	if p1.Revision() != p3.Revision() {
		t.Error("adding a test file changed the revision")
	}
	if p1.Revision() == p4.Revision() {
		t.Error("renaming a module kept the revision")
	}
}

func TestNewBrokenRegoNamesFileAndLine(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{
			name:  "parse error",
			files: map[string]string{"rules/policy.rego": "package stagegate\n\ndecision := {\n  \"allow\": true,\n"},
			want:  "rules/policy.rego:5: rego_parse_error",
		},
		{
			name: "compile error: unsafe variable",
			files: map[string]string{"policy.rego": "package stagegate\n\ndecision := {\"allow\": true}\n\n" +
				"x if {\n  y > 1\n}\n"},
			want: "policy.rego:6",
		},
		{
			name: "type error",
			files: map[string]string{"policy.rego": "package stagegate\n\n" +
				"decision := {\"allow\": count(1)}\n"},
			want: "policy.rego:3",
		},
		{
			name: "rego v0 syntax is refused",
			files: map[string]string{"policy.rego": "package stagegate\n\n" +
				"decision = {\"allow\": true} { true }\n"},
			want: "policy.rego:3",
		},
		{
			name: "nondeterministic builtin",
			files: map[string]string{"policy.rego": "package stagegate\n\n" +
				"decision := {\"allow\": true, \"route\": r}\n\nr := \"candidate\" if time.now_ns() > 0\n"},
			want: "policy.rego:5: " + nondeterministicCode + ": builtin time.now_ns is not allowed",
		},
		{
			name: "nondeterministic builtin as a statement",
			files: map[string]string{"policy.rego": "package stagegate\n\n" +
				"decision := {\"allow\": true} if {\n  http.send({\"method\": \"GET\", \"url\": \"http://x\"})\n}\n"},
			want: "policy.rego:4: " + nondeterministicCode + ": builtin http.send",
		},
		{
			name:  "broken data file",
			files: map[string]string{"policy.rego": "package stagegate\n\ndecision := {\"allow\": true}\n", "a/data.json": `{"x": `},
			want:  "a/data.json: invalid JSON",
		},
		{
			name:  "data file not an object",
			files: map[string]string{"policy.rego": "package stagegate\n\ndecision := {\"allow\": true}\n", "data.json": `[1]`},
			want:  "data.json: a data file must hold a JSON object",
		},
		{
			name: "conflicting data files",
			files: map[string]string{"policy.rego": "package stagegate\n\ndecision := {\"allow\": true}\n",
				"data.json": `{"a": {"b": 1}}`, "a/data.json": `{"b": 2}`},
			want: "data.a.b is defined by more than one data file",
		},
		{
			name:  "no modules",
			files: map[string]string{"data.json": `{}`, "README.md": "# nothing"},
			want:  "no policy modules",
		},
		{
			name:  "query matches no rule",
			files: map[string]string{"policy.rego": "package other\n\ndecision := {\"allow\": true}\n"},
			want:  "query data.stagegate.decision matches no rule",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), Config{FS: policyFS(tc.files)})
			if !errors.Is(err, ErrCompile) || Code(err) != CodeCompile {
				t.Fatalf("err = %v, want ErrCompile", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q:\n%v", tc.want, err)
			}
		})
	}
}

func TestNewReportsEveryBrokenFile(t *testing.T) {
	_, err := New(context.Background(), Config{FS: policyFS(map[string]string{
		"a.rego": "package stagegate\n\ndecision := {\n",
		"b.rego": "package stagegate\n\nx := \n",
	})})
	if !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), "a.rego:") || !strings.Contains(err.Error(), "b.rego:") {
		t.Errorf("err = %v, want both files named", err)
	}
}

func TestNewLayoutAndSkippedFiles(t *testing.T) {
	e := mustEngine(t, map[string]string{
		"policy.rego": `package stagegate

decision := {
	"allow": data.root_flag,
	"route": data.trial.routes.default,
	"obligations": {"max_tokens": data.trial.routes.cap, "notice": data.trial.extra.notice},
}
`,
		"data.json":               `{"root_flag": true}`,
		"trial/routes/data.json":  `{"default": "baseline"}`,
		"trial/routes/more.json":  `{"cap": 64}`,
		"trial/extra/notice.json": `{"notice": "trial model"}`,
		// Never read: a broken test file, hidden files and folders, other files.
		"policy_test.rego":      "package broken {{{",
		".hidden.rego":          "package broken {{{",
		".git/config.json":      "not json",
		"notes/README.md":       "# notes",
		"trial/routes/x.rego~":  "garbage",
		"trial/extra/data.yaml": "not: read",
	})
	d, err := e.Decide(context.Background(), Input{})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow || d.Route != RouteBaseline || d.Obligations.MaxTokens != 64 || d.Obligations.Notice != "trial model" {
		t.Errorf("Decide = %+v", d)
	}
}

func TestNewBoundsFiles(t *testing.T) {
	big := strings.Repeat(" ", MaxPolicyFileBytes+1)
	_, err := New(context.Background(), Config{FS: policyFS(map[string]string{
		"policy.rego": "package stagegate\n\ndecision := {\"allow\": true}\n",
		"data.json":   "{}" + big,
	})})
	if !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v, want a size error", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{FS: demoFS(t)}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	err := Config{Query: "input.x"}.Validate()
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "FS is required") || !strings.Contains(err.Error(), "not a reference into data") {
		t.Errorf("err = %v, want both problems", err)
	}
	for _, q := range []string{"data.x[y]", "data", "data.stagegate.decision == true", "1"} {
		if err := (Config{FS: demoFS(t), Query: q}).Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("Query %q: err = %v, want ErrConfig", q, err)
		}
	}
	if _, err := New(context.Background(), Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("New(zero) = %v, want ErrConfig", err)
	}
}

func TestCustomQuery(t *testing.T) {
	e, err := New(context.Background(), Config{
		FS:    policyFS(map[string]string{"p.rego": "package trials.alpha\n\nverdict := {\"allow\": input.caller.tenant == \"acme\"}\n"}),
		Query: "data.trials.alpha.verdict",
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Query() != "data.trials.alpha.verdict" {
		t.Errorf("Query = %q", e.Query())
	}
	for tenant, want := range map[string]bool{"acme": true, "other": false} {
		d, err := e.Decide(context.Background(), Input{Caller: Caller{Tenant: tenant}})
		if err != nil || d.Allow != want {
			t.Errorf("tenant %s: %+v, %v; want allow=%v", tenant, d, err, want)
		}
	}
}

func TestDecideUndefined(t *testing.T) {
	e := mustEngine(t, map[string]string{"p.rego": `package stagegate

decision := {"allow": true} if input.trial == "demo"
`})
	_, err := e.Decide(context.Background(), Input{Trial: "other"})
	if !errors.Is(err, ErrUndefined) || Code(err) != CodeUndefined {
		t.Fatalf("err = %v, want ErrUndefined", err)
	}
	if d, err := e.Decide(context.Background(), Input{Trial: "demo"}); err != nil || !d.Allow {
		t.Errorf("defined case: %+v, %v", d, err)
	}
}

func TestDecideWrongShape(t *testing.T) {
	tests := []struct{ decision, want string }{
		{`true`, "got boolean, want an object"},
		{`{"allowed": true}`, `unknown key "allowed"`},
		{`{"route": "candidate"}`, `missing required key "allow"`},
		{`{"allow": "yes"}`, "decision.allow: got string, want a boolean"},
		{`{"allow": true, "route": "canary"}`, `decision.route: "canary" is not one of`},
		{`{"allow": true, "fail_mode": "maybe"}`, `decision.fail_mode: "maybe" is not`},
		{`{"allow": true, "reasons": "no"}`, "decision.reasons: got string, want an array"},
		{`{"allow": true, "reasons": [{"message": "m"}]}`, `decision.reasons[0]: missing required key "code"`},
		{`{"allow": true, "obligations": {"max_tokens": -1}}`, "decision.obligations.max_tokens: -1 is not an integer"},
		{`{"allow": true, "obligations": {"max_tokens": 1.5}}`, "decision.obligations.max_tokens: 1.5 is not an integer"},
		{`{"allow": true, "obligations": {"log_level": "loud"}}`, `decision.obligations.log_level: "loud"`},
		{`{"allow": true, "obligations": {"redact": true}}`, `decision.obligations: unknown key "redact"`},
	}
	for _, tc := range tests {
		t.Run(tc.decision, func(t *testing.T) {
			e := mustEngine(t, map[string]string{"p.rego": "package stagegate\n\ndecision := " + tc.decision + "\n"})
			_, err := e.Decide(context.Background(), Input{})
			if !errors.Is(err, ErrDecisionShape) || Code(err) != CodeDecisionShape {
				t.Fatalf("err = %v, want ErrDecisionShape", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestDecideReasonsFromAPartialSet(t *testing.T) {
	e := mustEngine(t, map[string]string{"p.rego": `package stagegate

decision := {"allow": count(reasons) == 0, "reasons": reasons}

reasons contains {"code": "b", "message": "second"} if input.caller.over_quota
reasons contains {"code": "a", "message": "first"} if input.caller.over_quota
`})
	d, err := e.Decide(context.Background(), Input{Caller: Caller{OverQuota: true}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Reason{{"a", "first"}, {"b", "second"}}; d.Allow || !slices.Equal(d.Reasons, want) {
		t.Errorf("Decide = %+v, want reasons %v", d, want)
	}
}

func TestDecideEvalErrors(t *testing.T) {
	e := mustEngine(t, map[string]string{"p.rego": `package stagegate

decision := {"allow": true, "route": route}

route := "candidate" if input.trial == "demo"
route := "baseline" if input.stage == "canary"
`})
	_, err := e.Decide(context.Background(), Input{Trial: "demo", Stage: "canary"})
	if !errors.Is(err, ErrEval) || Code(err) != CodeEval {
		t.Errorf("conflict: err = %v, want ErrEval", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = demoEngine(t).Decide(ctx, realisticInput())
	if !errors.Is(err, ErrEval) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want ErrEval and context.Canceled", err)
	}
}

func TestDecideConcurrent(t *testing.T) {
	e := demoEngine(t)
	const workers, per = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*per)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				in := realisticInput()
				deny := (w+i)%2 == 0
				if deny {
					in.Signals.Topics = []string{"weapons"}
				}
				in.Request.MaxTokens = 10 + i
				d, err := e.Decide(context.Background(), in)
				switch {
				case err != nil:
					errs <- err
				case d.Allow == deny:
					errs <- fmt.Errorf("worker %d call %d: allow=%v", w, i, d.Allow)
				case d.Obligations.MaxTokens != 10+i:
					errs <- fmt.Errorf("worker %d call %d: max_tokens=%d", w, i, d.Obligations.MaxTokens)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCodeOfForeignErrors(t *testing.T) {
	if Code(nil) != "" || Code(errors.New("x")) != "" {
		t.Error("Code of a foreign error is not empty")
	}
	if Code(fmt.Errorf("wrapped: %w", ErrUndefined)) != CodeUndefined {
		t.Error("Code does not see through wrapping")
	}
}

func TestLoadDirAndBuiltin(t *testing.T) {
	disk, err := New(context.Background(), Config{FS: LoadDir("rego/demo")})
	if err != nil {
		t.Fatal(err)
	}
	if disk.Revision() != demoEngine(t).Revision() {
		t.Error("the embedded demo policy differs from rego/demo on disk")
	}
}
