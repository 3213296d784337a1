package experiment

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/policies"
)

const noticeText = "You are talking to an AI system. It can be wrong."

// demoPolicy is the built-in demo policy as a trial policy and a base decider.
func demoPolicy(tb testing.TB) (TrialPolicy, *policies.Reloader) {
	tb.Helper()
	sub, err := fs.Sub(policies.Builtin(), policies.DemoPolicy)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := policies.NewReloader(context.Background(), policies.ReloaderConfig{FS: sub}, policies.ReloaderDeps{})
	if err != nil {
		tb.Fatal(err)
	}
	return TrialPolicy{FS: sub}, r
}

func demoDecider(tb testing.TB) (*Decider, *policies.Reloader) {
	tb.Helper()
	tp, base := demoPolicy(tb)
	d, err := NewDecider(DeciderConfig{Trial: "demo", Policy: tp}, DeciderDeps{Base: base})
	if err != nil {
		tb.Fatal(err)
	}
	return d, base
}

func input(user, cohort string) policies.Input {
	return policies.Input{Trial: "demo", Stage: "canary", Time: "2026-03-02T09:00:00Z",
		Request: policies.RequestFacts{Model: "demo", MessageCount: 1, Roles: []string{"user"}, EstimatedPromptTokens: 12},
		Caller:  policies.Caller{Tenant: "acme", User: user, Cohort: cohort}, Signals: policies.Signals{Language: "en"}}
}

// usersOf finds n users of an arm of a definition.
func usersOf(def *Definition, arm, cohort string, n int) []string {
	a := NewAssigner(def)
	var out []string
	for i := 0; len(out) < n; i++ {
		if u := fmt.Sprintf("u_%06d", i); a.ArmOf(u, cohort) == arm {
			out = append(out, u)
		}
	}
	return out
}

func runningState(tb testing.TB, src []byte) *State {
	tb.Helper()
	def, err := Parse("x.yaml", src)
	if err != nil {
		tb.Fatal(err)
	}
	return &State{Schema: SchemaState, Name: def.Name, Trial: def.Trial, Status: StatusRunning, Digest: "sha256:test", Source: string(src), StartedAt: t0}
}

func TestDeciderServesArms(t *testing.T) {
	ctx := context.Background()
	d, base := demoDecider(t)
	src := readExample(t)
	def := mustParse(t, string(src))
	ctrl, treat := usersOf(def, "control", "pilot", 20), usersOf(def, "notice", "pilot", 20)

	// No experiment: the trial's policy, unmarked.
	dec, err := d.Decide(ctx, input(treat[0], "pilot"))
	if err != nil || dec.Experiment != "" || dec.Obligations.Notice != "" || dec.Revision != base.Engine().Revision() {
		t.Fatalf("before: %+v %v", dec, err)
	}
	done := d.Apply(ctx, def.Name, runningState(t, src))
	if done == nil {
		t.Fatal("nothing to build")
	}
	<-done
	if st := d.Status(); st.Experiment != "disclosure-notice" || st.LastError != "" || st.Building {
		t.Fatalf("status %+v", st)
	}
	variantRev := d.Arms()["notice"]
	if variantRev == "" || variantRev == base.Engine().Revision() || d.Arms()["control"] != base.Engine().Revision() {
		t.Fatalf("arms %v", d.Arms())
	}
	for _, u := range treat {
		dec, err := d.Decide(ctx, input(u, "pilot"))
		if err != nil || dec.Experiment != "disclosure-notice" || dec.Arm != "notice" || dec.VariantRevision != variantRev ||
			dec.Revision != variantRev || dec.Obligations.Notice != noticeText || !dec.Allow || dec.Obligations.MaxTokens != 512 {
			t.Fatalf("notice arm user %s: %+v %v", u, dec, err)
		}
	}
	for _, u := range ctrl {
		dec, err := d.Decide(ctx, input(u, "pilot"))
		if err != nil || dec.Arm != "control" || dec.VariantRevision != base.Engine().Revision() || dec.Obligations.Notice != "" {
			t.Fatalf("control user %s: %+v %v", u, dec, err)
		}
	}
	// A cohort outside the experiment: the trial's policy, unmarked.
	if dec, _ := d.Decide(ctx, input(treat[0], "public")); dec.Experiment != "" || dec.Obligations.Notice != "" {
		t.Errorf("ineligible cohort: %+v", dec)
	}
	// The same denial rules hold in the variant (the overlay changes only the notice).
	in := input(treat[0], "pilot")
	in.Signals.Topics = []string{"weapons"}
	if dec, _ := d.Decide(ctx, in); dec.Allow || dec.Arm != "notice" {
		t.Errorf("denied topic in the variant: %+v", dec)
	}

	// Stopped: every user back on the control policy before Apply returns.
	stopped := *runningState(t, src)
	stopped.Status, stopped.Source = StatusStopped, ""
	if d.Apply(ctx, def.Name, &stopped) != nil {
		t.Error("a stop had something to build")
	}
	for _, u := range append(treat, ctrl...) {
		if dec, _ := d.Decide(ctx, input(u, "pilot")); dec.Experiment != "" || dec.Obligations.Notice != "" {
			t.Fatalf("after the stop, user %s: %+v", u, dec)
		}
	}
	// Running again (same digest): served from the built arms at once.
	if d.Apply(ctx, def.Name, runningState(t, src)) != nil {
		t.Error("rebuilt an experiment already built")
	}
	if dec, _ := d.Decide(ctx, input(treat[0], "pilot")); dec.Arm != "notice" {
		t.Errorf("running again: %+v", dec)
	}
	// Deleted key: gone.
	d.Apply(ctx, def.Name, nil)
	if d.Status().Experiment != "" {
		t.Errorf("after delete: %+v", d.Status())
	}
}

func TestDeciderVariantThatCannotBuild(t *testing.T) {
	ctx := context.Background()
	d, _ := demoDecider(t)
	src := strings.Replace(string(readExample(t)), "      data:                    # a data overlay on the trial's policy\n        notice: \"You are talking to an AI system. It can be wrong.\"",
		"      dir: builtin:nope", 1)
	<-d.Apply(ctx, "disclosure-notice", runningState(t, []byte(src)))
	st := d.Status()
	if st.Experiment != "" || !strings.Contains(st.LastError, "no built-in policy") {
		t.Fatalf("status %+v", st)
	}
	def := mustParse(t, src)
	if dec, _ := d.Decide(ctx, input(usersOf(def, "notice", "pilot", 1)[0], "pilot")); dec.Experiment != "" {
		t.Errorf("served an experiment that did not build: %+v", dec)
	}
}

func TestOverlayMergesIntoDataFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("policy.rego", `package stagegate
decision := {"allow": true, "obligations": {"notice": sprintf("%v-%v-%v", [data.cfg.x, data.y, data.cfg.deep.z])}}
`)
	write("data.json", `{"y": 1}`)
	write("cfg/data.json", `{"x": 1, "deep": {"z": 1, "keep": true}}`)
	write("policy_test.rego", "package stagegate\ntest_x if data.cfg.x == 1\n")
	tp := TrialPolicy{Dir: dir}
	ctx := context.Background()
	notice := func(v *Variant) (string, string) {
		e, err := BuildVariant(ctx, tp, v, -1)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := e.Decide(ctx, policies.Input{})
		if err != nil {
			t.Fatal(err)
		}
		return dec.Obligations.Notice, e.Revision()
	}
	baseEngine, err := policies.New(ctx, policies.Config{FS: policies.LoadDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	got, rev := notice(&Variant{Data: map[string]any{}})
	if got != "1-1-1" || rev != baseEngine.Revision() {
		t.Errorf("empty overlay: %q %s, want the base policy itself (%s)", got, rev, baseEngine.Revision())
	}
	got, rev = notice(&Variant{Data: map[string]any{"y": 3, "cfg": map[string]any{"x": 2, "deep": map[string]any{"z": "zz"}}}})
	if got != "2-3-zz" || rev == baseEngine.Revision() {
		t.Errorf("overlay: %q %s", got, rev)
	}
	// A new key lands in the root data document.
	e, err := BuildVariant(ctx, tp, &Variant{Data: map[string]any{"notice": "hello"}}, -1)
	if err != nil || e.Revision() == baseEngine.Revision() {
		t.Fatalf("new key: %v", err)
	}
	// A folder variant.
	if _, err := BuildVariant(ctx, tp, &Variant{Dir: "builtin:standard"}, -1); err != nil {
		t.Errorf("builtin:standard: %v", err)
	}
	if _, err := BuildVariant(ctx, tp, &Variant{Dir: filepath.Join(dir, "missing")}, -1); err == nil {
		t.Error("missing folder built")
	}
}

func TestDecodeState(t *testing.T) {
	ok := runningState(t, readExample(t))
	raw, err := EncodeState(ok)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := DecodeState(raw); err != nil || s.Name != "disclosure-notice" || s.Status != StatusRunning {
		t.Errorf("round trip %+v %v", s, err)
	}
	for _, bad := range []string{`{}`, `not json`, `{"schema":"stagegate.experiment.state.v1","name":"x","trial":"t","status":"running"}`,
		`{"schema":"stagegate.experiment.state.v1","name":"x y","trial":"t","status":"paused"}`} {
		if _, err := DecodeState([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// BenchmarkDecideWrapper measures what the wrapper adds to a decision: the
// assignment hash and the marks, over a base decider that costs nothing.
func BenchmarkDecideWrapper(b *testing.B) {
	src := readExample(b)
	def := mustParse(b, string(src))
	base := constDecider{}
	r := &running{name: def.Name, digest: "d", assign: NewAssigner(def), arms: []servedArm{{name: "control", control: true, d: base}, {name: "notice", d: base}}}
	d, err := NewDecider(DeciderConfig{Trial: "demo", Policy: TrialPolicy{Dir: "."}}, DeciderDeps{Base: base})
	if err != nil {
		b.Fatal(err)
	}
	d.active.Store(r)
	in := input("u_3f9a1c0b5e2d7a8c9b0d1e2f", "pilot")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideNoExperiment is the wrapper with nothing running: one atomic load.
func BenchmarkDecideNoExperiment(b *testing.B) {
	d, err := NewDecider(DeciderConfig{Trial: "demo", Policy: TrialPolicy{Dir: "."}}, DeciderDeps{Base: constDecider{}})
	if err != nil {
		b.Fatal(err)
	}
	in := input("u_3f9a1c0b5e2d7a8c9b0d1e2f", "pilot")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

type constDecider struct{}

func (constDecider) Decide(context.Context, policies.Input) (policies.Decision, error) {
	return policies.Decision{Allow: true, Revision: "sha256:const"}, nil
}
