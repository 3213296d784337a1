package experiment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// watcherStartTimeout bounds how long Start waits for the existing states and
// the build of the experiments running now.
const watcherStartTimeout = 30 * time.Second

// WatcherDeps are what a Watcher takes from outside.
type WatcherDeps struct {
	// JS holds the EXPERIMENTS bucket (created if missing).
	JS jetstream.JetStream
	// Logger; nil discards.
	Logger *slog.Logger
}

// Watcher turns the experiment states in the EXPERIMENTS bucket into the
// running experiments of its trials' Deciders, so every gateway follows a
// start or a stop within milliseconds of its write.
type Watcher struct {
	js  jetstream.JetStream
	log *slog.Logger

	applied atomic.Uint64

	mu       sync.Mutex
	deciders map[string]*Decider // by trial
	w        jetstream.KeyWatcher
	cancel   context.CancelFunc
	done     chan struct{}
	started  bool
}

// NewWatcher validates deps; add deciders, then Start.
func NewWatcher(deps WatcherDeps) (*Watcher, error) {
	if deps.JS == nil {
		return nil, fmt.Errorf("%w: experiment watcher: a JetStream context is required", ErrConfig)
	}
	w := &Watcher{js: deps.JS, log: deps.Logger, deciders: map[string]*Decider{}}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w, nil
}

// Add registers the decider of a trial; before Start only.
func (w *Watcher) Add(d *Decider) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return errors.New("experiment watcher: add deciders before Start")
	}
	if _, dup := w.deciders[d.Trial()]; dup {
		return fmt.Errorf("%w: experiment watcher: trial %s added twice", ErrConfig, d.Trial())
	}
	w.deciders[d.Trial()] = d
	return nil
}

// Applied counts the states applied so far.
func (w *Watcher) Applied() uint64 { return w.applied.Load() }

// Start watches the bucket and returns once every existing state is applied
// and the experiments running now are built (or ctx ends), so a gateway
// started during an experiment serves its arms from its first request.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("experiment watcher already started")
	}
	kv, err := EnsureBucket(ctx, w.js, 0)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	kw, err := kv.WatchAll(runCtx)
	if err != nil {
		w.mu.Unlock()
		cancel()
		return fmt.Errorf("watch %s: %w", BucketExperiments, err)
	}
	ready := make(chan []<-chan struct{}, 1)
	w.w, w.cancel, w.done, w.started = kw, cancel, make(chan struct{}), true
	w.mu.Unlock() // apply takes it to find a trial's decider
	go w.run(runCtx, kw.Updates(), ready)
	timer := time.NewTimer(watcherStartTimeout)
	defer timer.Stop()
	select {
	case builds := <-ready:
		for _, b := range builds {
			select {
			case <-b:
			case <-timer.C:
				return fmt.Errorf("experiment watcher: running experiments not built within %s", watcherStartTimeout)
			case <-ctx.Done():
				return fmt.Errorf("experiment watcher: %w", ctx.Err())
			}
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("experiment watcher: initial states not received within %s", watcherStartTimeout)
	case <-ctx.Done():
		return fmt.Errorf("experiment watcher: initial states: %w", ctx.Err())
	}
}

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
		return fmt.Errorf("experiment watcher stop: %w", ctx.Err())
	}
}

func (w *Watcher) run(ctx context.Context, updates <-chan jetstream.KeyValueEntry, ready chan<- []<-chan struct{}) {
	defer close(w.done)
	var initial []<-chan struct{}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-updates:
			if !ok {
				return
			}
			if e == nil { // every existing value delivered
				if ready != nil {
					ready <- initial
					ready, initial = nil, nil
				}
				continue
			}
			if b := w.apply(ctx, e); b != nil && ready != nil {
				initial = append(initial, b)
			}
		}
	}
}

// apply hands one entry to the decider of its trial. A deleted key is given
// to every decider (its trial is no longer known); a state that cannot be
// decoded is logged and ignored.
func (w *Watcher) apply(ctx context.Context, e jetstream.KeyValueEntry) <-chan struct{} {
	defer w.applied.Add(1)
	name := e.Key()
	if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
		w.mu.Lock()
		ds := make([]*Decider, 0, len(w.deciders))
		for _, d := range w.deciders {
			ds = append(ds, d)
		}
		w.mu.Unlock()
		for _, d := range ds {
			d.Apply(ctx, name, nil)
		}
		return nil
	}
	s, err := DecodeState(e.Value())
	if err != nil {
		w.log.Error("experiment watcher: bad state ignored", "key", name, "revision", e.Revision(), "err", err)
		return nil
	}
	if s.Name != name {
		w.log.Error("experiment watcher: state under the wrong key ignored", "key", name, "name", s.Name)
		return nil
	}
	w.mu.Lock()
	d := w.deciders[s.Trial]
	w.mu.Unlock()
	if d == nil {
		return nil // a trial this gateway does not serve, or without experiments
	}
	return d.Apply(ctx, name, s)
}
