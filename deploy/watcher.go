package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
)

// WatcherDeps are what a Watcher takes from outside.
type WatcherDeps struct {
	// JS holds the ROLLOUTS bucket.
	JS jetstream.JetStream
	// Assigner receives the plans; the plans it holds at Start are the base
	// (configured) plans a trial returns to when its rollout is deleted.
	Assigner *Assigner
	// Logger; nil discards.
	Logger *slog.Logger
}

// Watcher turns rollout states in the ROLLOUTS bucket into the Assigner's plans,
// so every gateway follows a change within milliseconds of its write.
type Watcher struct {
	js  jetstream.JetStream
	a   *Assigner
	log *slog.Logger

	base     map[string]Plan
	revision atomic.Uint64 // last revision applied
	applied  atomic.Uint64 // states applied, for tests and metrics

	// Used by the run goroutine only (watcher_resync.go).
	kv   jetstream.KeyValue
	seen map[string]uint64 // per trial, the revision applied

	mu      sync.Mutex
	w       jetstream.KeyWatcher
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
}

// NewWatcher validates deps; nothing runs until Start.
func NewWatcher(deps WatcherDeps) (*Watcher, error) {
	var errs []error
	if deps.JS == nil {
		errs = append(errs, errors.New("rollout watcher: a JetStream context is required"))
	}
	if deps.Assigner == nil {
		errs = append(errs, errors.New("rollout watcher: an assigner is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w := &Watcher{js: deps.JS, a: deps.Assigner, log: deps.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w, nil
}

// Start watches the bucket and returns once every existing rollout has been
// applied to the Assigner (or ctx ends), so a gateway started afterwards never
// serves a stale split.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return errors.New("rollout watcher already started")
	}
	kv, err := w.js.KeyValue(ctx, events.BucketRollouts)
	if err != nil {
		return fmt.Errorf("rollouts bucket %s: %w", events.BucketRollouts, err)
	}
	w.base = map[string]Plan{}
	for _, p := range w.a.Plans() {
		w.base[p.Trial] = p
	}
	w.kv, w.seen = kv, map[string]uint64{}
	runCtx, cancel := context.WithCancel(context.Background())
	kw, err := kv.WatchAll(runCtx)
	if err != nil {
		cancel()
		return fmt.Errorf("watch %s: %w", events.BucketRollouts, err)
	}
	ready := make(chan struct{})
	w.w, w.cancel, w.done, w.started = kw, cancel, make(chan struct{}), true
	go w.run(runCtx, kw.Updates(), ready)
	timer := time.NewTimer(watcherStartTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-timer.C:
		return fmt.Errorf("rollout watcher: initial states not received within %s", watcherStartTimeout)
	case <-ctx.Done():
		return fmt.Errorf("rollout watcher: initial states: %w", ctx.Err())
	}
}

// watcherStartTimeout bounds how long Start waits for the existing rollouts.
const watcherStartTimeout = 10 * time.Second

// Applied counts the states (and deletes) applied so far.
func (w *Watcher) Applied() uint64 { return w.applied.Load() }

// Stop ends the watch.
func (w *Watcher) Stop(ctx context.Context) error {
	w.mu.Lock()
	if !w.started {
		w.mu.Unlock()
		return nil
	}
	w.started = false
	kw, cancel, done := w.w, w.cancel, w.done
	w.mu.Unlock()
	cancel()
	_ = kw.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rollout watcher stop: %w", ctx.Err())
	}
}

// Revision is the bucket revision of the last state applied.
func (w *Watcher) Revision() uint64 { return w.revision.Load() }

func (w *Watcher) run(ctx context.Context, updates <-chan jetstream.KeyValueEntry, ready chan struct{}) {
	defer close(w.done)
	resync := time.NewTicker(WatcherResync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-resync.C:
			w.resync(ctx)
		case e, ok := <-updates:
			if !ok {
				return
			}
			if e == nil { // every initial value delivered
				if ready != nil {
					close(ready)
					ready = nil
				}
				continue
			}
			if !w.stale(e) {
				w.apply(e)
			}
		}
	}
}

// apply installs the plan of one state (or the base plan after a delete). A state
// that cannot be decoded is logged and leaves the last good plan in place.
func (w *Watcher) apply(e jetstream.KeyValueEntry) {
	trial := e.Key()
	defer w.revision.Store(e.Revision())
	if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
		if p, ok := w.base[trial]; ok {
			if _, err := w.a.Update(p); err != nil {
				w.log.Error("rollout watcher: restore configured plan", "trial", trial, "err", err)
			}
		} else {
			w.a.Remove(trial)
		}
		w.applied.Add(1)
		w.log.Info("rollout removed; configured plan restored", "trial", trial)
		return
	}
	s, err := DecodeState(e.Value(), e.Revision())
	if err != nil {
		w.log.Error("rollout watcher: bad state ignored; the last good plan stays", "trial", trial, "revision", e.Revision(), "err", err)
		return
	}
	if s.Spec.Trial != trial {
		w.log.Error("rollout watcher: state under the wrong key ignored", "key", trial, "trial", s.Spec.Trial)
		return
	}
	p := s.Plan()
	changed, err := w.a.Update(p)
	if err != nil {
		w.log.Error("rollout watcher: plan rejected; the last good plan stays", "trial", trial, "err", err)
		return
	}
	w.applied.Add(1)
	if changed {
		w.log.Info("rollout plan applied", "trial", trial, "stage", p.Stage, "candidate_weight", p.CandidateWeight,
			"shadow_sample", p.ShadowSample, "status", s.Status, "revision", e.Revision())
	}
}
