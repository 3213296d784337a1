package experiment

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
)

// rig is one sandbox's worth of experiment parts on a real embedded
// JetStream and a real SQLite store: a manager, and a gateway-side watcher
// with the demo trial's decider.
type rig struct {
	js      jetstream.JetStream
	store   *incidents.SQLiteStore
	mgr     *Manager
	watcher *Watcher
	dec     *Decider
	seq     atomic.Int64
}

func newRig(t *testing.T, interval time.Duration) *rig {
	t.Helper()
	_, nc := testutil.JetStream(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := incidents.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	tp, _ := demoPolicy(t)
	dec, _ := demoDecider(t)
	w, err := NewWatcher(WatcherDeps{JS: js})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(dec); err != nil {
		t.Fatal(err)
	}
	mgr, err := New(Config{Interval: interval}, Deps{JS: js, Store: store, Trials: func(id string) (TrialPolicy, bool) { return tp, id == "demo" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := mgr.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return &rig{js: js, store: store, mgr: mgr, watcher: w, dec: dec}
}

// serve decides a request of user and records its interaction as the
// gateway would publish it and the monitors store it.
func (r *rig) serve(t *testing.T, user string, at time.Time) *events.Interaction {
	t.Helper()
	d, err := r.dec.Decide(context.Background(), input(user, "pilot"))
	if err != nil {
		t.Fatal(err)
	}
	in := &events.Interaction{
		Schema: events.SchemaInteraction, ID: fmt.Sprintf("int_%06d", r.seq.Add(1)), Trial: "demo", Tenant: "acme", User: user,
		Cohort: "pilot", Stage: "canary", LogicalModel: "demo", Model: "demo-candidate", Route: events.RouteCandidate,
		Status: events.StatusOK, HTTPStatus: 200, StartedAt: at, Latency: events.Latency{TotalMS: 80},
		Decision: events.Decision{Allow: d.Allow, PolicyRevision: d.Revision, Input: d.Input, InputHash: d.InputHash,
			Experiment: d.Experiment, Arm: d.Arm, VariantRevision: d.VariantRevision,
			Obligations: events.Obligations{Notice: d.Obligations.Notice, MaxTokens: d.Obligations.MaxTokens}},
	}
	if !d.Allow {
		in.Status, in.HTTPStatus = events.StatusDenied, 403
	}
	if err := r.store.RecordInteraction(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	return in
}

// confirm opens an incident on an interaction and has a reviewer confirm it.
func (r *rig) confirm(t *testing.T, in *events.Interaction, category, severity string) {
	t.Helper()
	ctx := context.Background()
	f := events.Finding{Schema: events.SchemaFinding, ID: "f_" + in.ID, InteractionID: in.ID, Trial: in.Trial, Model: in.Model,
		Detector: "test", DetectorVersion: "1", Category: category, Severity: severity, Score: 0.9, Threshold: 0.5, CreatedAt: in.StartedAt}
	inc, _, err := r.store.OpenIncident(ctx, in, []events.Finding{f})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.Review(ctx, inc.ID, incidents.Verdict{Status: incidents.StatusConfirmed, Severity: severity, Actor: "rita", Reason: "checked"}); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycleThroughTheBucket(t *testing.T) {
	r := newRig(t, time.Hour) // the test drives Reconcile
	ctx := context.Background()
	src := readExample(t)
	def := mustParse(t, string(src))

	// Problems come back with lines; an unknown trial is refused.
	if _, err := r.mgr.Apply(ctx, "n.yaml", []byte(strings.Replace(string(src), "minimum_sample: 2000", "minimum_sample: -1", 1)), "alice", false); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "n.yaml:34: minimum_sample") {
		t.Errorf("invalid: %v", err)
	}
	if _, err := r.mgr.Apply(ctx, "n.yaml", []byte(strings.Replace(string(src), "trial: demo", "trial: other", 1)), "alice", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown trial: %v", err)
	}
	dry, err := r.mgr.Apply(ctx, "notice.yaml", src, "alice", true)
	if err != nil || !dry.DryRun || len(dry.Variants) != 1 || dry.Variants[0].Revision == "" || dry.Experiment.Name != "" {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if _, _, err := r.mgr.Get(ctx, def.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("a dry run stored the experiment: %v", err)
	}
	ap, err := r.mgr.Apply(ctx, "notice.yaml", src, "alice", false)
	if err != nil || !ap.Created || ap.Experiment.Status != StatusDraft {
		t.Fatalf("apply: %+v %v", ap, err)
	}
	// Draft: nobody is in the experiment.
	treat := usersOf(def, "notice", "pilot", 10)
	if d, _ := r.dec.Decide(ctx, input(treat[0], "pilot")); d.Experiment != "" {
		t.Fatalf("a draft served: %+v", d)
	}
	if _, err := r.mgr.StartExperiment(ctx, def.Name, "alice", "approved by the board"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "gateway serves the started experiment", func() bool {
		d, _ := r.dec.Decide(ctx, input(treat[0], "pilot"))
		return d.Arm == "notice" && d.Obligations.Notice == noticeText
	})
	if _, err := r.mgr.Apply(ctx, "notice.yaml", append(src, []byte("# changed\n")...), "alice", false); !errors.Is(err, ErrConflict) {
		t.Errorf("re-apply while running: %v", err)
	}
	if _, _, err := r.mgr.ConcludeExperiment(ctx, def.Name, "alice", ""); !errors.Is(err, ErrTransition) {
		t.Errorf("conclude while running: %v", err)
	}
	// Traffic: the report sees it per arm.
	at := time.Now().UTC()
	for i, u := range usersOf(def, "control", "pilot", 30) {
		r.serve(t, u, at.Add(time.Duration(i)*time.Millisecond))
	}
	for i, u := range treat {
		r.serve(t, u, at.Add(time.Duration(i)*time.Millisecond))
	}
	rep, err := r.mgr.Report(ctx, def.Name)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Arms[0].Interactions != 30 || rep.Arms[1].Interactions != 10 || rep.Arms[1].Revisions[ap.Variants[0].Revision] != 10 ||
		!strings.HasPrefix(rep.Conclusion, "Not enough evidence yet") {
		t.Errorf("report: %+v / %s", rep.Arms, rep.Conclusion)
	}
	// Stop by hand needs a reason; then everyone is on the control policy.
	if _, err := r.mgr.StopExperiment(ctx, def.Name, "alice", " "); err == nil {
		t.Error("stopped without a reason")
	}
	if _, err := r.mgr.StopExperiment(ctx, def.Name, "alice", "the board changed its mind"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Second, "every user back on the control policy", func() bool {
		d, _ := r.dec.Decide(ctx, input(treat[0], "pilot"))
		return d.Experiment == "" && d.Obligations.Notice == ""
	})
	rec, rep, err := r.mgr.ConcludeExperiment(ctx, def.Name, "alice", "read the report")
	if err != nil || rec.Status != StatusConcluded || rec.Conclusion != rep.Conclusion || !strings.HasPrefix(rec.Conclusion, "Not enough evidence: stopped (by hand)") {
		t.Fatalf("conclude: %+v %v", rec, err)
	}
	_, hist, err := r.mgr.Get(ctx, def.Name)
	if err != nil || len(hist) != 3 || hist[1].Cause != StopByHand || hist[1].Reason != "the board changed its mind" {
		t.Errorf("history %+v %v", hist, err)
	}
	// The bucket holds the concluded state (no definition).
	kv, err := r.js.KeyValue(ctx, BucketExperiments)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, def.Name)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := DecodeState(e.Value()); err != nil || s.Status != StatusConcluded || s.Source != "" {
		t.Errorf("bucket state %+v %v", s, err)
	}
}

// TestGuardrailStopsWithinASecond: a confirmed critical incident in the
// variant arm crosses a guard-rail; the manager's loop stops the experiment
// and every gateway serves every user the control policy within a second.
func TestGuardrailStopsWithinASecond(t *testing.T) {
	r := newRig(t, 100*time.Millisecond)
	ctx := context.Background()
	src := readExample(t)
	def := mustParse(t, string(src))
	if _, err := r.mgr.Apply(ctx, "notice.yaml", src, "alice", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.mgr.StartExperiment(ctx, def.Name, "alice", "go"); err != nil {
		t.Fatal(err)
	}
	// A second gateway started while the experiment runs serves it at once.
	second, _ := demoDecider(t)
	w2, err := NewWatcher(WatcherDeps{JS: r.js})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Add(second); err != nil {
		t.Fatal(err)
	}
	if err := w2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w2.Stop(context.Background()) })
	treat := usersOf(def, "notice", "pilot", 20)
	if d, _ := second.Decide(ctx, input(treat[0], "pilot")); d.Arm != "notice" {
		t.Fatalf("second gateway after Start: %+v", d)
	}
	testutil.WaitFor(t, 10*time.Second, "first gateway serves the experiment", func() bool {
		d, _ := r.dec.Decide(ctx, input(treat[0], "pilot"))
		return d.Arm == "notice"
	})
	if err := r.mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.mgr.Stop(context.Background()) })

	at := time.Now().UTC()
	var served []*events.Interaction
	for i, u := range treat {
		served = append(served, r.serve(t, u, at.Add(time.Duration(i)*time.Millisecond)))
	}
	// Ordinary traffic does not cross anything.
	if err := r.mgr.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := r.dec.Decide(ctx, input(treat[0], "pilot")); d.Arm != "notice" {
		t.Fatalf("stopped without a crossing: %+v", d)
	}
	r.confirm(t, served[3], "self_harm", events.SeverityCritical)
	crossed := time.Now()
	testutil.WaitFor(t, time.Second, "every user of both gateways back on the control policy within a second", func() bool {
		for _, d := range []*Decider{r.dec, second} {
			for _, u := range treat {
				if dec, _ := d.Decide(ctx, input(u, "pilot")); dec.Experiment != "" || dec.Obligations.Notice != "" {
					return false
				}
			}
		}
		return true
	})
	t.Logf("back on control %s after the confirmation", time.Since(crossed).Round(time.Millisecond))
	rec, err := r.store.Experiment(ctx, def.Name)
	if err != nil || rec.Status != StatusStopped || rec.StopCause != StopByRule || rec.StoppedBy != ActorController ||
		!strings.Contains(rec.StopReason, "guard-rail 2 confirmed_incident_rate (≥ critical), arm notice, max_count 0: 1 of 20") {
		t.Fatalf("stored %+v %v", rec, err)
	}
	rep, err := r.mgr.Report(ctx, def.Name)
	// The conclusion names the guard-rail that stopped it. (Whether the report's own
	// recomputation also marks it crossed depends on whether the confirmation's
	// timestamp falls inside the stopped experiment's window — a known race, see
	// the closing note — so it is not asserted here.)
	if err != nil || !strings.HasPrefix(rep.Conclusion, "Stopped by a guard-rail (guard-rail 2") {
		t.Errorf("report after the stop: %s (%d crossed) %v", rep.Conclusion, len(rep.Crossed()), err)
	}
	audit, err := r.store.AuditEntries(ctx, incidents.AuditFilter{ActionPrefix: "experiment.stop"})
	if err != nil || len(audit) != 1 || audit[0].Actor != ActorController || !strings.Contains(string(audit[0].Detail), "max_count") {
		t.Errorf("audit %+v %v", audit, err)
	}
}

func TestPlannedEndStops(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := context.Background()
	src := []byte(strings.Replace(string(readExample(t)), "planned_duration: 14d", "planned_duration: 1ms", 1))
	if _, err := r.mgr.Apply(ctx, "notice.yaml", src, "alice", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.mgr.StartExperiment(ctx, "disclosure-notice", "alice", ""); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "planned end reached", func() bool {
		_ = r.mgr.Reconcile(ctx)
		rec, err := r.store.Experiment(ctx, "disclosure-notice")
		return err == nil && rec.Status == StatusStopped && rec.StopCause == StopPlannedEnd
	})
}
