package deploy

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

// The re-read applies a state the watch has not delivered (as when the server
// serving the watch died), and neither path ever applies an older state.
func TestWatcherResyncCatchesUpAndNeverGoesBack(t *testing.T) {
	e := newEnv(t, clock.NewFake(t0))
	ctx := context.Background()
	c := e.controller(t, e.js, Config{})
	st, err := c.Apply(ctx, mustSpec(t, "trial: t7\ncandidate: cand\nbaseline: base\nsteps: [{canary: {weight: 25}}, {pause: {}}]\n"), "ops", "")
	if err != nil {
		t.Fatal(err)
	}
	kv, err := e.js.KeyValue(ctx, events.BucketRollouts)
	if err != nil {
		t.Fatal(err)
	}
	old, err := kv.Get(ctx, "t7")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := NewAssigner([]Plan{{Trial: "t7", Candidate: "cand", Baseline: "base", Stage: StageCanary, CandidateWeight: 5000}})
	// A watcher whose watch never runs: only resync feeds it.
	w := &Watcher{a: a, log: slog.New(slog.DiscardHandler), kv: kv, seen: map[string]uint64{"t7": 0}}
	w.resync(ctx)
	if p, _ := a.Plan("t7"); p.CandidateWeight != 2500 || w.seen["t7"] != st.Revision {
		t.Fatalf("after the first resync: %+v, seen %d want %d", p, w.seen["t7"], st.Revision)
	}
	if _, err := c.Abort(ctx, "t7", "rita", "kill switch"); err != nil {
		t.Fatal(err)
	}
	w.resync(ctx)
	if p, _ := a.Plan("t7"); p.Stage != StageAborted || p.CandidateWeight != 0 {
		t.Fatalf("resync missed the abort: %+v", p)
	}
	// The watch delivering the old state late changes nothing.
	if !w.stale(old) {
		t.Fatal("an older revision is not stale")
	}
	if p, _ := a.Plan("t7"); p.Stage != StageAborted {
		t.Fatalf("went back: %+v", p)
	}
}
