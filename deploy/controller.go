package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
)

// Defaults for Config.
const (
	// DefaultInterval is how often the controller reconciles every rollout.
	DefaultInterval = 500 * time.Millisecond
	// DefaultVerdictRefresh is how often an unchanged gate verdict is rewritten
	// with fresh numbers (outcome changes are written at once).
	DefaultVerdictRefresh = 5 * time.Second
	// DefaultOpTimeout bounds one bucket or store call.
	DefaultOpTimeout = 5 * time.Second
	// maxCASAttempts bounds the read-modify-write retries of one change.
	maxCASAttempts = 5
)

// Config configures the controller. The zero value takes the defaults.
type Config struct {
	// Interval between reconcile passes over every rollout (default
	// DefaultInterval). Nudge starts a pass at once.
	Interval time.Duration
	// VerdictRefresh is how often an unchanged gate verdict is rewritten to the
	// bucket with fresh numbers (default DefaultVerdictRefresh).
	VerdictRefresh time.Duration
	// HistoryLimit is how many transitions a rollout keeps (default
	// DefaultHistoryLimit).
	HistoryLimit int
	// OpTimeout bounds one bucket or store call (default DefaultOpTimeout).
	OpTimeout time.Duration
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Interval < 0 || c.VerdictRefresh < 0 || c.OpTimeout < 0 {
		errs = append(errs, errors.New("controller: interval, verdict refresh and op timeout must not be negative"))
	}
	if c.HistoryLimit < 0 || c.HistoryLimit > 10000 {
		errs = append(errs, fmt.Errorf("controller: history limit %d outside 0..10000", c.HistoryLimit))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.VerdictRefresh == 0 {
		c.VerdictRefresh = DefaultVerdictRefresh
	}
	if c.HistoryLimit == 0 {
		c.HistoryLimit = DefaultHistoryLimit
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	return c
}

// Deps are what the controller takes from outside.
type Deps struct {
	// JS holds the ROLLOUTS bucket (created by events.EnsureStreams).
	JS jetstream.JetStream
	// Evidence answers the gates' questions (the incident store).
	Evidence incidents.EvidenceSource
	// Clock; nil is the wall clock. Every time in the logic comes from it.
	Clock clock.Clock
	// Logger; nil discards.
	Logger *slog.Logger
	// OnTransition, when set, is told of every transition the controller itself
	// made (gate verdicts, elapsed pauses, the kill switch) once it is stored, so
	// they can join the audit trail; manual actions are audited where they are
	// requested.
	OnTransition func(ctx context.Context, trial string, t Transition)
}

// Controller moves rollouts through their steps. Several controllers (one per
// process) may run on one bucket: every write is a compare-and-set on the
// revision it read, so none overwrites another's change.
type Controller struct {
	cfg Config
	js  jetstream.JetStream
	ev  incidents.EvidenceSource
	clk clock.Clock
	log *slog.Logger
	on  func(ctx context.Context, trial string, t Transition)

	nudge chan struct{}

	mu      sync.Mutex
	kv      jetstream.KeyValue
	keys    map[string]struct{} // trials with a rollout, kept by the key watcher
	watch   jetstream.KeyWatcher
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
}

// New validates cfg and deps; nothing runs until Start.
func New(cfg Config, deps Deps) (*Controller, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if deps.JS == nil {
		errs = append(errs, errors.New("controller: a JetStream context is required"))
	}
	if deps.Evidence == nil {
		errs = append(errs, errors.New("controller: an evidence source (incident store) is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := &Controller{
		cfg: cfg.withDefaults(), js: deps.JS, ev: deps.Evidence, clk: clock.OrReal(deps.Clock), log: deps.Logger, on: deps.OnTransition,
		nudge: make(chan struct{}, 1), keys: map[string]struct{}{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Open binds the controller to the ROLLOUTS bucket without starting the loop, so
// manual actions and Reconcile work (tests drive it this way). Start calls it.
func (c *Controller) Open(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kv != nil {
		return nil
	}
	kv, err := c.js.KeyValue(ctx, events.BucketRollouts)
	if err != nil {
		return fmt.Errorf("rollouts bucket %s: %w", events.BucketRollouts, err)
	}
	c.kv = kv
	return nil
}

// Start opens the bucket, watches its keys and reconciles every Interval until Stop.
func (c *Controller) Start(ctx context.Context) error {
	if err := c.Open(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("controller already started")
	}
	runCtx, cancel := context.WithCancel(context.Background())
	w, err := c.kv.WatchAll(runCtx, jetstream.MetaOnly())
	if err != nil {
		cancel()
		return fmt.Errorf("watch %s: %w", events.BucketRollouts, err)
	}
	c.watch, c.cancel, c.done, c.started = w, cancel, make(chan struct{}), true
	go c.run(runCtx, w)
	return nil
}

// Stop ends the loop and waits for the pass in progress (bounded by ctx).
func (c *Controller) Stop(ctx context.Context) error {
	c.mu.Lock()
	if !c.started {
		c.mu.Unlock()
		return nil
	}
	c.started = false
	cancel, done, w := c.cancel, c.done, c.watch
	c.mu.Unlock()
	cancel()
	// The key watch is an ephemeral ordered consumer: the server may already have
	// dropped it (consumer not found), which is what stopping wants anyway.
	if err := w.Stop(); err != nil {
		c.log.Debug("controller stop: key watch", "err", err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("controller stop: %w", ctx.Err())
	}
}

// Nudge asks for a reconcile pass now (e.g. right after a reviewer confirmed an
// incident, so the kill switch acts within the second). It never blocks.
func (c *Controller) Nudge() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

func (c *Controller) run(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(c.done)
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	updates := w.Updates()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			c.trackKey(e)
			continue
		case <-t.C:
		case <-c.nudge:
		}
		c.ReconcileAll(ctx)
	}
}

// trackKey keeps the set of trials with a rollout from the key watcher.
func (c *Controller) trackKey(e jetstream.KeyValueEntry) {
	if e == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		delete(c.keys, e.Key())
	default:
		c.keys[e.Key()] = struct{}{}
	}
}

// ReconcileAll reconciles every known rollout once; errors are logged.
func (c *Controller) ReconcileAll(ctx context.Context) {
	c.mu.Lock()
	trials := make([]string, 0, len(c.keys))
	for k := range c.keys {
		trials = append(trials, k)
	}
	c.mu.Unlock()
	sort.Strings(trials)
	for _, t := range trials {
		if ctx.Err() != nil {
			return
		}
		if _, err := c.Reconcile(ctx, t); err != nil && !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
			c.log.Warn("rollout reconcile", "trial", t, "err", err)
		}
	}
}

// Reconcile runs the reconcile steps on one rollout and writes the result when
// something changed, retrying on a concurrent change. It returns the state.
func (c *Controller) Reconcile(ctx context.Context, trial string) (*State, error) {
	return c.change(ctx, trial, func(s *State) (bool, error) {
		return c.reconcile(ctx, s), nil
	})
}

// kvOrErr returns the bucket, or an error before Open.
func (c *Controller) kvOrErr() (jetstream.KeyValue, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kv == nil {
		return nil, errors.New("controller: not opened (call Open or Start)")
	}
	return c.kv, nil
}

// get reads the current state of a trial's rollout.
func (c *Controller) get(ctx context.Context, trial string) (*State, error) {
	kv, err := c.kvOrErr()
	if err != nil {
		return nil, err
	}
	if !events.ValidToken(trial) {
		return nil, fmt.Errorf("%w: trial %q", ErrInvalid, trial)
	}
	opCtx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	e, err := kv.Get(opCtx, trial)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("rollout of trial %s: %w", trial, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read rollout %s: %w", trial, err)
	}
	return DecodeState(e.Value(), e.Revision())
}

// put writes s: a create when it has no revision, else a compare-and-set on it.
func (c *Controller) put(ctx context.Context, s *State) (*State, error) {
	kv, err := c.kvOrErr()
	if err != nil {
		return nil, err
	}
	s.UpdatedAt = c.clk.Now().UTC()
	if over := len(s.History) - c.cfg.HistoryLimit; over > 0 {
		s.History = append([]Transition(nil), s.History[over:]...)
	}
	b, err := encodeState(s)
	if err != nil {
		return nil, err
	}
	opCtx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	var rev uint64
	if s.Revision == 0 {
		rev, err = kv.Create(opCtx, s.Spec.Trial, b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			err = fmt.Errorf("%w: %w", ErrConflict, err)
		}
	} else {
		rev, err = kv.Update(opCtx, s.Spec.Trial, b, s.Revision)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			err = fmt.Errorf("%w: %w", ErrConflict, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("write rollout %s: %w", s.Spec.Trial, err)
	}
	s.Revision = rev
	c.mu.Lock()
	c.keys[s.Spec.Trial] = struct{}{}
	c.mu.Unlock()
	return s, nil
}

// putNotify writes s and, once stored, tells OnTransition of the transitions
// the controller itself added after index before of the history.
func (c *Controller) putNotify(ctx context.Context, s *State, before int) (*State, error) {
	var added []Transition
	if c.on != nil && len(s.History) > before {
		added = append(added, s.History[before:]...)
	}
	out, err := c.put(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, t := range added {
		if t.Actor == ActorController {
			c.on(ctx, s.Spec.Trial, t)
		}
	}
	return out, nil
}

// change is the read-modify-write loop: fn mutates a fresh copy and says whether
// to write it; a concurrent write makes it read again and retry.
func (c *Controller) change(ctx context.Context, trial string, fn func(s *State) (bool, error)) (*State, error) {
	var lastErr error
	for range maxCASAttempts {
		s, err := c.get(ctx, trial)
		if err != nil {
			return nil, err
		}
		before := len(s.History)
		write, err := fn(s)
		if err != nil {
			return nil, err
		}
		if !write {
			return s, nil
		}
		out, err := c.putNotify(ctx, s, before)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}
