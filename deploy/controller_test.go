package deploy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/internal/testutil"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// env is a real embedded JetStream with the streams and bucket, and a real SQLite store.
type env struct {
	ns    *server.Server
	js    jetstream.JetStream
	store *incidents.SQLiteStore
	clk   clock.Clock
	seq   atomic.Int64
}

func newEnv(t *testing.T, clk clock.Clock) *env {
	t.Helper()
	ns, nc := testutil.JetStream(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := events.EnsureStreams(ctx, js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	store, err := incidents.OpenSQLite(ctx, filepath.Join(t.TempDir(), "stagegate.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &env{ns: ns, js: js, store: store, clk: clk}
}

// conn opens another client connection (as a second process would have).
func (e *env) conn(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(e.ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (e *env) controller(t *testing.T, js jetstream.JetStream, cfg Config) *Controller {
	t.Helper()
	c, err := New(cfg, Deps{JS: js, Evidence: e.store, Clock: e.clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// traffic records n answered interactions of model at the clock's time.
func (e *env) traffic(t *testing.T, trial, model string, n int) {
	t.Helper()
	for range n {
		id := fmt.Sprintf("int_%06d", e.seq.Add(1))
		in := &events.Interaction{Schema: events.SchemaInteraction, ID: id, Trial: trial, Tenant: "acme", User: "u_" + id,
			Model: model, LogicalModel: trial, Route: events.RouteCandidate, Status: events.StatusOK, HTTPStatus: 200,
			StartedAt: e.clk.Now(), Request: events.Request{Messages: []events.Message{{Role: "user", Content: "hi"}}}}
		if err := e.store.RecordInteraction(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
}

// incident records one flagged interaction of model and returns its incident id.
func (e *env) incident(t *testing.T, trial, model, category, severity string) string {
	t.Helper()
	id := fmt.Sprintf("int_%06d", e.seq.Add(1))
	in := &events.Interaction{Schema: events.SchemaInteraction, ID: id, Trial: trial, Tenant: "acme", User: "u_x",
		Model: model, LogicalModel: trial, Status: events.StatusOK, StartedAt: e.clk.Now()}
	f := events.Finding{Schema: events.SchemaFinding, ID: "f_" + id, InteractionID: id, Trial: trial, Model: model,
		Detector: "test", DetectorVersion: "1", Category: category, Severity: severity, Score: 0.9, CreatedAt: e.clk.Now()}
	if err := e.store.RecordInteraction(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	inc, _, err := e.store.OpenIncident(context.Background(), in, []events.Finding{f})
	if err != nil {
		t.Fatal(err)
	}
	return inc.ID
}

func (e *env) review(t *testing.T, id, status, severity string) {
	t.Helper()
	if _, err := e.store.Review(context.Background(), id, incidents.Verdict{Status: status, Severity: severity, Actor: "rita", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
}

func mustSpec(t *testing.T, yaml string) Spec {
	t.Helper()
	s, err := ParseSpec("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const scriptedPlan = `
trial: t1
candidate: cand
baseline: base
thresholds: [{category: pii, severity: high, max_rate: 0.05}]
steps:
  - shadow: {sample: 20}
  - gate: {min_interactions: 50, min_duration: 1d}
  - canary: {weight: 10}
  - gate: {min_interactions: 100, min_duration: 2d, approval: true}
  - pilot: {cohorts: [beta]}
  - pause: {duration: 48h}
  - general:
`

func TestScriptedRolloutThroughEveryStage(t *testing.T) {
	clk := clock.NewFake(t0)
	e := newEnv(t, clk)
	c := e.controller(t, e.js, Config{})
	ctx := context.Background()

	s, err := c.Apply(ctx, mustSpec(t, scriptedPlan), "acme-ops", "first rollout")
	if err != nil {
		t.Fatal(err)
	}
	if s.Step != 1 || s.Status != StatusWaiting || s.Traffic.Stage != StageShadow || s.Traffic.ShadowSample != 2000 || s.Traffic.CandidateWeight != 0 {
		t.Fatalf("after apply: step %d %s %+v", s.Step, s.Status, s.Traffic)
	}

	// Shadow traffic with one serious PII incident nobody has reviewed yet.
	clk.Advance(time.Hour)
	e.traffic(t, "t1", "cand", 100)
	e.traffic(t, "t1", "base", 400) // the baseline's answers never count for the candidate
	inc := e.incident(t, "t1", "cand", "pii", events.SeverityHigh)
	clk.Advance(24 * time.Hour)
	s = reconcile(t, c, "t1")
	if s.Status != StatusWaiting || !strings.Contains(s.Message, "await review ("+inc+")") {
		t.Fatalf("unreviewed incident: %s: %s", s.Status, s.Message)
	}
	if s.Gate == nil || s.Gate.Outcome != Inconclusive || s.Gate.UnresolvedSevere != 1 || s.Gate.Interactions != 101 {
		t.Fatalf("gate verdict %+v", s.Gate)
	}

	// The reviewer dismisses it: 0 confirmed of 101, upper bound 0.0366 < 0.05.
	e.review(t, inc, incidents.StatusDismissed, "")
	s = reconcile(t, c, "t1")
	if s.Step != 3 || s.Status != StatusWaiting || s.Traffic.Stage != StageCanary || s.Traffic.CandidateWeight != 1000 {
		t.Fatalf("after shadow gate: step %d %s %+v: %s", s.Step, s.Status, s.Traffic, s.Message)
	}
	passed := s.History[len(s.History)-3]
	if !strings.Contains(passed.Cause, "gate passed") || !strings.Contains(passed.Cause, "0 confirmed of 101") || passed.Actor != ActorController {
		t.Fatalf("gate pass transition %+v", passed)
	}

	// Canary: two days and 150 answers later, only the regulator's approval is missing.
	clk.Advance(49 * time.Hour)
	e.traffic(t, "t1", "cand", 150)
	s = reconcile(t, c, "t1")
	if s.Step != 3 || !strings.Contains(s.Message, "waiting for the regulator's approval") {
		t.Fatalf("canary gate: step %d: %s", s.Step, s.Message)
	}
	if _, err := c.Promote(ctx, "t1", "", "x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("promote without actor: %v", err)
	}
	s, err = c.Promote(ctx, "t1", "regulator-ana", "report reviewed")
	if err != nil {
		t.Fatal(err)
	}
	if s.Step != 5 || s.Traffic.Stage != StagePilot || s.Traffic.Cohorts[0] != "beta" || s.Status != StatusWaiting ||
		!strings.Contains(s.Message, "pausing for 2d") {
		t.Fatalf("after approval: step %d %s %+v: %s", s.Step, s.Status, s.Traffic, s.Message)
	}

	// The pause runs out: general, completed.
	clk.Advance(47 * time.Hour)
	if s = reconcile(t, c, "t1"); s.Step != 5 {
		t.Fatalf("pause ended early: step %d", s.Step)
	}
	clk.Advance(time.Hour)
	s = reconcile(t, c, "t1")
	if s.Status != StatusCompleted || s.Traffic.Stage != StageGeneral || s.Traffic.CandidateWeight != WeightScale {
		t.Fatalf("end: %s %+v", s.Status, s.Traffic)
	}
	p := s.Plan()
	if p.Stage != StageGeneral || p.CandidateWeight != WeightScale || !p.Fallback {
		t.Fatalf("plan %+v", p)
	}

	// The history tells the whole story, in order, with causes and actors.
	want := []struct{ to, cause, actor string }{
		{"step 1/7 shadow", "plan applied (generation 1)", "acme-ops"},
		{"step 2/7 gate (progressing)", "traffic set: shadow 20%", ActorController},
		{"step 2/7 gate (waiting)", "gate inconclusive", ActorController},
		{"step 3/7 canary", "gate passed", ActorController},
		{"step 4/7 gate (progressing)", "traffic set: canary 10%", ActorController},
		{"step 4/7 gate (waiting)", "gate inconclusive", ActorController},
		{"step 4/7 gate (waiting)", "approval given at the gate", "regulator-ana"},
		{"step 5/7 pilot", "gate passed", ActorController},
		{"step 6/7 pause 2d (progressing)", "traffic set: pilot 100% of cohorts beta", ActorController},
		{"step 6/7 pause 2d (waiting)", "pausing for 2d", ActorController},
		{"step 7/7 general", "pause of 2d elapsed", ActorController},
		{"completed (completed)", "traffic set: general", ActorController},
	}
	if len(s.History) != len(want) {
		for _, h := range s.History {
			t.Logf("%s → %s: %s [%s]", h.From, h.To, h.Cause, h.Actor)
		}
		t.Fatalf("%d transitions, want %d", len(s.History), len(want))
	}
	for i, w := range want {
		h := s.History[i]
		if !strings.Contains(h.To, w.to) || !strings.Contains(h.Cause, w.cause) || h.Actor != w.actor {
			t.Errorf("transition %d = %s → %s: %s [%s]; want to %q cause %q actor %q", i, h.From, h.To, h.Cause, h.Actor, w.to, w.cause, w.actor)
		}
	}
	if s.History[6].Reason != "report reviewed" || !s.History[10].At.Equal(t0.Add(122*time.Hour)) {
		t.Errorf("reason %q, pause end at %v", s.History[6].Reason, s.History[10].At)
	}
}

func reconcile(t *testing.T, c *Controller, trial string) *State {
	t.Helper()
	s, err := c.Reconcile(context.Background(), trial)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGateFailAbortsToBaseline(t *testing.T) {
	clk := clock.NewFake(t0)
	e := newEnv(t, clk)
	c := e.controller(t, e.js, Config{})
	ctx := context.Background()
	if _, err := c.Apply(ctx, mustSpec(t, `
trial: t2
candidate: cand
baseline: base
steps:
  - canary: {weight: 50}
  - gate: {min_interactions: 40, thresholds: [{category: pii, severity: high, max_rate: 0.05}]}
  - general:
`), "ops", ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	e.traffic(t, "t2", "cand", 30)
	for range 10 {
		e.review(t, e.incident(t, "t2", "cand", "pii", events.SeverityHigh), incidents.StatusConfirmed, "")
	}
	s := reconcile(t, c, "t2")
	if s.Status != StatusAborted || s.Traffic.Stage != StageAborted {
		t.Fatalf("status %s traffic %+v: %s", s.Status, s.Traffic, s.Message)
	}
	// 10 of 40: Wilson 95% lower bound 0.1419 > 0.05.
	if s.Gate == nil || s.Gate.Outcome != Fail || len(s.Gate.Rates) != 1 || s.Gate.Rates[0].Confirmed != 10 || s.Gate.Rates[0].Interactions != 40 {
		t.Fatalf("verdict %+v", s.Gate)
	}
	last := s.History[len(s.History)-1]
	if !strings.Contains(last.Cause, "gate failed") || !strings.Contains(last.Cause, "10 confirmed of 40") || !strings.Contains(last.Cause, "back on base") {
		t.Fatalf("abort transition %+v", last)
	}
	p := s.Plan()
	if p.Stage != StageAborted || p.CandidateWeight != 0 || p.ShadowSample != 0 {
		t.Fatalf("plan %+v", p)
	}
	// Nothing moves an aborted rollout but a new plan.
	clk.Advance(time.Hour)
	if s2 := reconcile(t, c, "t2"); s2.Revision != s.Revision {
		t.Fatal("aborted rollout was rewritten")
	}
}

func TestKillSwitchReachesAnotherConnectionWithinOneSecond(t *testing.T) {
	e := newEnv(t, clock.Real{})
	ctx := context.Background()
	c := e.controller(t, e.js, Config{Interval: time.Hour}) // only Nudge drives it
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })

	// A gateway in another process: its own connection, assigner and watcher.
	a, _ := NewAssigner([]Plan{{Trial: "t3", Candidate: "cand", Baseline: "base", Stage: StageCanary}})
	w, err := NewWatcher(WatcherDeps{JS: e.conn(t), Assigner: a})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })

	if _, err := c.Apply(ctx, mustSpec(t, "trial: t3\ncandidate: cand\nbaseline: base\nsteps: [{general: {}}]\n"), "ops", ""); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Second, "gateway sees general", func() bool {
		p, _ := a.Plan("t3")
		return p.Stage == StageGeneral && p.CandidateWeight == WeightScale
	})

	inc := e.incident(t, "t3", "cand", "unsafe_advice", events.SeverityHigh)
	e.review(t, inc, incidents.StatusConfirmed, events.SeverityCritical) // the reviewer raises it to critical
	confirmed := time.Now()
	c.Nudge()
	testutil.WaitFor(t, time.Second, "gateway on another connection back on the baseline", func() bool {
		p, _ := a.Plan("t3")
		return p.Stage == StageAborted
	})
	t.Logf("kill switch reached the other connection in %s", time.Since(confirmed))
	for i := range 10000 {
		if r, _ := a.AssignRequest("t3", fmt.Sprint("u", i), "", "r"); r.Model != "base" || r.Shadow != "" {
			t.Fatalf("user %d still served by %+v after the kill switch", i, r)
		}
	}
	s, err := c.Status(ctx, "t3")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusAborted || !strings.Contains(s.Message, "kill switch: 1 confirmed critical incident(s) of cand") {
		t.Fatalf("status %s: %s", s.Status, s.Message)
	}
}

func TestManualActionsRecordWhoAndWhy(t *testing.T) {
	clk := clock.NewFake(t0)
	e := newEnv(t, clk)
	c := e.controller(t, e.js, Config{})
	ctx := context.Background()
	spec := mustSpec(t, "trial: t4\ncandidate: cand\nbaseline: base\nsteps:\n  - canary: {weight: 5}\n  - pause:\n  - general:\n")
	if _, err := c.Apply(ctx, spec, "ops", "go"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		do     func() (*State, error)
		err    error
		status string
	}{
		{"resume when not paused", func() (*State, error) { return c.Resume(ctx, "t4", "ana", "why not") }, ErrAction, ""},
		{"pause without reason", func() (*State, error) { return c.Pause(ctx, "t4", "ana", "") }, ErrInvalid, ""},
		{"pause", func() (*State, error) { return c.Pause(ctx, "t4", "ana", "holiday") }, nil, StatusPaused},
		{"promote while paused", func() (*State, error) { return c.Promote(ctx, "t4", "ana", "x") }, ErrAction, ""},
		{"resume", func() (*State, error) { return c.Resume(ctx, "t4", "ana", "back") }, nil, StatusWaiting},
		{"promote past the pause", func() (*State, error) { return c.Promote(ctx, "t4", "reg", "ok") }, nil, StatusCompleted},
		{"abort a completed rollout", func() (*State, error) { return c.Abort(ctx, "t4", "reg", "complaints") }, nil, StatusAborted},
		{"abort twice", func() (*State, error) { return c.Abort(ctx, "t4", "reg", "again") }, ErrAction, ""},
		{"unknown trial", func() (*State, error) { return c.Pause(ctx, "nope", "ana", "x") }, ErrNotFound, ""},
	}
	for _, st := range steps {
		clk.Advance(time.Minute)
		s, err := st.do()
		if st.err != nil {
			if !errors.Is(err, st.err) {
				t.Fatalf("%s: err %v, want %v", st.name, err, st.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if s.Status != st.status {
			t.Fatalf("%s: status %s, want %s", st.name, s.Status, st.status)
		}
	}
	s, _ := c.Status(ctx, "t4")
	var manual []string
	for _, h := range s.History {
		if h.Actor != ActorController {
			manual = append(manual, h.Actor+":"+h.Cause+":"+h.Reason)
		}
	}
	want := "ops:plan applied (generation 1):go|ana:paused by hand:holiday|ana:resumed by hand:back|reg:pause ended: promoted by hand:ok|reg:aborted by hand; every user is back on base:complaints"
	if got := strings.Join(manual, "|"); got != want {
		t.Fatalf("manual transitions\n got %s\nwant %s", got, want)
	}
	// Applying again starts over and keeps the history.
	s, err := c.Apply(ctx, spec, "ops", "second try")
	if err != nil {
		t.Fatal(err)
	}
	if s.Generation != 2 || s.Status != StatusWaiting || s.Step != 1 || len(s.History) <= 5 {
		t.Fatalf("re-apply: gen %d %s step %d history %d", s.Generation, s.Status, s.Step, len(s.History))
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].Trial() != "t4" {
		t.Fatalf("list %v %v", list, err)
	}
}

func TestConcurrentControllersNeverClobber(t *testing.T) {
	clk := clock.NewFake(t0)
	e := newEnv(t, clk)
	ctx := context.Background()
	a := e.controller(t, e.js, Config{})
	b := e.controller(t, e.conn(t), Config{})
	if _, err := a.Apply(ctx, mustSpec(t, "trial: t5\ncandidate: cand\nbaseline: base\nsteps:\n  - canary: {weight: 5}\n  - pause: {duration: 1h}\n  - general:\n"), "ops", ""); err != nil {
		t.Fatal(err)
	}
	// A stale write loses: b read revision r, a wrote r+1.
	stale, err := b.get(ctx, "t5")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Pause(ctx, "t5", "ana", "hold"); err != nil {
		t.Fatal(err)
	}
	stale.Status = StatusAborted
	if _, err := b.put(ctx, stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale write: %v, want ErrConflict", err)
	}
	if _, err := b.Resume(ctx, "t5", "bob", "go on"); err != nil {
		t.Fatal(err)
	}
	// Both reconcile at the same time, many times: the pause ends exactly once.
	clk.Advance(2 * time.Hour)
	done := make(chan struct{})
	for _, c := range []*Controller{a, b} {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 20 {
				_, _ = c.Reconcile(ctx, "t5")
			}
		}()
	}
	<-done
	<-done
	s, err := a.Status(ctx, "t5")
	if err != nil {
		t.Fatal(err)
	}
	ended := 0
	for _, h := range s.History {
		if strings.Contains(h.Cause, "pause of 1h0m0s elapsed") {
			ended++
		}
	}
	if s.Status != StatusCompleted || ended != 1 {
		t.Fatalf("status %s, pause ended %d times", s.Status, ended)
	}
}

func TestWatcherAppliesExistingStatesDeletesAndIgnoresGarbage(t *testing.T) {
	clk := clock.NewFake(t0)
	e := newEnv(t, clk)
	ctx := context.Background()
	c := e.controller(t, e.js, Config{})
	if _, err := c.Apply(ctx, mustSpec(t, "trial: t6\ncandidate: cand\nbaseline: base\nsteps: [{canary: {weight: 25}}]\n"), "ops", ""); err != nil {
		t.Fatal(err)
	}
	configured := Plan{Trial: "t6", Candidate: "cand", Baseline: "base", Stage: StageCanary, CandidateWeight: 5000}
	a, _ := NewAssigner([]Plan{configured})
	w, err := NewWatcher(WatcherDeps{JS: e.conn(t), Assigner: a})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	// Start returns only once the existing rollout is applied.
	if p, _ := a.Plan("t6"); p.CandidateWeight != 2500 {
		t.Fatalf("after Start: %+v", p)
	}
	kv, err := e.js.KeyValue(ctx, events.BucketRollouts)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "t6", []byte(`{"schema":"stagegate.rollout.v1","spec":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Second, "garbage seen", func() bool { return w.Revision() >= rev })
	if p, _ := a.Plan("t6"); p.CandidateWeight != 2500 {
		t.Fatalf("garbage replaced the plan: %+v", p)
	}
	if err := kv.Delete(ctx, "t6"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Second, "configured plan restored", func() bool {
		p, _ := a.Plan("t6")
		return p.Equal(configured)
	})
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{Interval: -1, HistoryLimit: -1}, Deps{})
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"negative", "history limit", "JetStream", "evidence"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %q", err, want)
		}
	}
	if _, err := NewWatcher(WatcherDeps{}); err == nil || !strings.Contains(err.Error(), "assigner") {
		t.Errorf("watcher: %v", err)
	}
}
