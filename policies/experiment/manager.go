package experiment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/policies"
)

// Defaults for Config.
const (
	// DefaultInterval is how often the manager reconciles: bucket in step
	// with the store, planned ends, guard-rails.
	DefaultInterval = time.Second
	// DefaultOpTimeout bounds one reconcile pass.
	DefaultOpTimeout = 30 * time.Second
	// DefaultReadOverlap is how far back an incremental read of recorded
	// interactions starts before the newest one already read, so rows stored
	// with a slightly older time are not missed (they are de-duplicated).
	DefaultReadOverlap = 10 * time.Second
	// ActorController names the manager in transitions it makes by itself.
	ActorController = "controller"
)

// Config configures the manager. The zero value takes the defaults.
type Config struct {
	// Interval between reconcile passes (default DefaultInterval).
	Interval time.Duration
	// OpTimeout bounds one reconcile pass (default DefaultOpTimeout).
	OpTimeout time.Duration
	// ReadOverlap of incremental reads (default DefaultReadOverlap).
	ReadOverlap time.Duration
	// Replicas of the EXPERIMENTS bucket (default 1).
	Replicas int
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Interval < 0 || c.OpTimeout < 0 || c.ReadOverlap < 0 {
		errs = append(errs, fmt.Errorf("%w: interval, op timeout and read overlap must not be negative", ErrConfig))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("%w: replicas %d outside 0..5", ErrConfig, c.Replicas))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.ReadOverlap == 0 {
		c.ReadOverlap = DefaultReadOverlap
	}
	return c
}

// Deps are what the manager takes from outside.
type Deps struct {
	// JS holds the EXPERIMENTS bucket (created by Open).
	JS jetstream.JetStream
	// Store persists experiments and answers the analysis.
	Store incidents.ExperimentStore
	// Trials returns the policy of a trial that runs experiments; false for
	// a trial that does not exist or does not run experiments.
	Trials func(trial string) (TrialPolicy, bool)
	// Clock; nil is the wall clock.
	Clock clock.Clock
	// Logger; nil discards.
	Logger *slog.Logger
}

// Manager runs the lifecycle of experiments: apply a definition (a draft),
// start, stop (by hand, by a guard-rail, at the planned end), conclude; each
// transition is persisted and audited by the store and written to the
// EXPERIMENTS bucket, which every gateway's Watcher follows.
type Manager struct {
	cfg    Config
	js     jetstream.JetStream
	store  incidents.ExperimentStore
	trials func(string) (TrialPolicy, bool)
	clk    clock.Clock
	log    *slog.Logger

	mu     sync.Mutex // one action or reconcile pass at a time
	kv     jetstream.KeyValue
	synced map[string]string // name → status and update time last written to the bucket
	caches map[string]*obsCache
	defs   map[string]*Definition // parsed definitions by digest

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	nudge  chan struct{}
}

// obsCache holds an experiment's observations read so far.
type obsCache struct {
	startedAt time.Time
	obs       map[string]Observation
	cursor    time.Time
}

// New validates cfg and deps; Open (or Start) binds the bucket.
func New(cfg Config, deps Deps) (*Manager, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if deps.JS == nil {
		errs = append(errs, fmt.Errorf("%w: a JetStream context is required", ErrConfig))
	}
	if deps.Store == nil {
		errs = append(errs, fmt.Errorf("%w: an experiment store is required", ErrConfig))
	}
	if deps.Trials == nil {
		errs = append(errs, fmt.Errorf("%w: a trial lookup is required", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg.withDefaults(), js: deps.JS, store: deps.Store, trials: deps.Trials, clk: clock.OrReal(deps.Clock), log: deps.Logger,
		synced: map[string]string{}, caches: map[string]*obsCache{}, defs: map[string]*Definition{}, nudge: make(chan struct{}, 1),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// Open creates the bucket if needed and binds the manager to it, without the
// loop (tests drive Reconcile themselves). Start calls it.
func (m *Manager) Open(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kv != nil {
		return nil
	}
	kv, err := EnsureBucket(ctx, m.js, m.cfg.Replicas)
	if err != nil {
		return err
	}
	m.kv = kv
	return nil
}

// Start opens the bucket and reconciles every Interval until Stop.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.Open(ctx); err != nil {
		return err
	}
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.done != nil {
		return errors.New("experiment manager already started")
	}
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go m.loop(runCtx, m.done)
	return nil
}

// Stop ends the loop and waits for the pass in progress (bounded by ctx).
func (m *Manager) Stop(ctx context.Context) error {
	m.runMu.Lock()
	cancel, done := m.cancel, m.done
	m.cancel, m.done = nil, nil
	m.runMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("experiment manager stop: %w", ctx.Err())
	}
}

// Nudge asks for a reconcile pass now (e.g. after a reviewer confirmed an
// incident). It never blocks.
func (m *Manager) Nudge() {
	select {
	case m.nudge <- struct{}{}:
	default:
	}
}

func (m *Manager) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		pass, cancel := context.WithTimeout(ctx, m.cfg.OpTimeout)
		if err := m.Reconcile(pass); err != nil && ctx.Err() == nil {
			m.log.Error("experiment reconcile", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.nudge:
		}
	}
}

// Applied is the answer to Apply.
type Applied struct {
	Experiment incidents.Experiment `json:"experiment"`
	// Created is false when the same definition was applied before.
	Created bool `json:"created"`
	DryRun  bool `json:"dry_run"`
	// Definition as parsed, with defaults.
	Definition *Definition `json:"definition"`
	// Variants are the checks of the variant arms' policies.
	Variants []VariantCheck `json:"variants"`
	// Rule is the testing rule stated plainly.
	Rule string `json:"rule"`
}

// VariantCheck is the compile and test result of one variant's policy.
type VariantCheck struct {
	Arm      string `json:"arm"`
	Revision string `json:"revision"`
	Tests    int    `json:"tests"`
	Cases    int    `json:"cases"`
	Failures int    `json:"failures"`
	// Problem names the first failing tests or cases (informational: a data
	// overlay may change what a corpus case expects on purpose).
	Problem string `json:"problem,omitempty"`
}

// Apply checks a definition (every problem with its line, as an *Error), that
// its trial runs experiments, and that every variant's policy compiles (its
// tests and corpus are run and reported), then stores it as a draft unless
// dryRun. A started experiment's definition is fixed (ErrConflict).
func (m *Manager) Apply(ctx context.Context, file string, src []byte, actor string, dryRun bool) (*Applied, error) {
	def, err := Parse(file, src)
	if err != nil {
		return nil, err
	}
	tp, ok := m.trials(def.Trial)
	if !ok {
		return nil, fmt.Errorf("%w: trial %s is not running here with experiments enabled (set experiments: true on the trial in the sandbox configuration)", ErrNotFound, def.Trial)
	}
	out := &Applied{Definition: def, DryRun: dryRun, Rule: RuleStatement(def), Variants: []VariantCheck{}}
	for i := range def.Arms {
		a := &def.Arms[i]
		if a.Control {
			continue
		}
		fsys, err := VariantFS(tp, a.Variant)
		if err != nil {
			return nil, fmt.Errorf("arm %s: %w", a.Name, err)
		}
		_, rep, err := policies.Check(ctx, policies.CheckConfig{Config: policies.Config{FS: fsys, Query: tp.Query}})
		if err != nil {
			return nil, fmt.Errorf("%w: arm %s: %w", ErrVariant, a.Name, err)
		}
		vc := VariantCheck{Arm: a.Name, Revision: rep.Revision, Tests: len(rep.Tests), Cases: len(rep.Cases), Failures: rep.Failures()}
		if err := rep.Err(); err != nil {
			vc.Problem = err.Error()
		}
		out.Variants = append(out.Variants, vc)
	}
	if dryRun {
		return out, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, created, err := m.store.PutExperiment(ctx, def.Name, def.Trial, actor, src)
	if err != nil {
		return nil, storeErr(err)
	}
	out.Experiment, out.Created = rec, created
	m.publishLocked(ctx, &rec)
	return out, nil
}

// StartExperiment moves a draft to running: from now on its users are served
// their arms' policies on every gateway.
func (m *Manager) StartExperiment(ctx context.Context, name, actor, reason string) (incidents.Experiment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.store.Experiment(ctx, name)
	if err != nil {
		return rec, storeErr(err)
	}
	def, err := m.definition(&rec)
	if err != nil {
		return rec, err
	}
	tp, ok := m.trials(def.Trial)
	if !ok {
		return rec, fmt.Errorf("%w: trial %s is not running here with experiments enabled", ErrNotFound, def.Trial)
	}
	// Every variant must build before anyone is assigned to it.
	for i := range def.Arms {
		if a := &def.Arms[i]; !a.Control {
			if _, err := BuildVariant(ctx, tp, a.Variant, -1); err != nil {
				return rec, fmt.Errorf("arm %s: %w", a.Name, err)
			}
		}
	}
	return m.transitionLocked(ctx, incidents.ExperimentChange{Name: name, From: StatusDraft, To: StatusRunning, Actor: actor, Reason: reason})
}

// StopExperiment stops a running experiment by hand; the reason is required.
// Every user is back on the control policy within the bucket's propagation.
func (m *Manager) StopExperiment(ctx context.Context, name, actor, reason string) (incidents.Experiment, error) {
	if strings.TrimSpace(reason) == "" {
		return incidents.Experiment{}, fmt.Errorf("%w: a reason is required to stop an experiment by hand", incidents.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.transitionLocked(ctx, incidents.ExperimentChange{Name: name, From: StatusRunning, To: StatusStopped, Actor: actor, Cause: StopByHand, Reason: reason})
}

// ConcludeExperiment concludes a stopped experiment, storing the report's
// conclusion as it reads now; the report is returned.
func (m *Manager) ConcludeExperiment(ctx context.Context, name, actor, reason string) (incidents.Experiment, *Report, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.store.Experiment(ctx, name)
	if err != nil {
		return rec, nil, storeErr(err)
	}
	if rec.Status != StatusStopped {
		return rec, nil, fmt.Errorf("%w: experiment %s is %s; stop it before concluding", ErrTransition, name, rec.Status)
	}
	rep, err := m.reportLocked(ctx, &rec)
	if err != nil {
		return rec, nil, err
	}
	conclusion := rep.Conclusion
	if len(conclusion) > incidents.MaxExperimentConclusion {
		conclusion = conclusion[:incidents.MaxExperimentConclusion]
	}
	rec, err = m.transitionLocked(ctx, incidents.ExperimentChange{Name: name, From: StatusStopped, To: StatusConcluded, Actor: actor, Reason: reason,
		Conclusion: conclusion, Detail: map[string]any{"winner": rep.Winner, "effect_found": rep.EffectFound}})
	if err != nil {
		return rec, nil, err
	}
	delete(m.caches, name)
	rep.Run.Status = rec.Status
	return rec, rep, nil
}

// Get returns an experiment with its transitions.
func (m *Manager) Get(ctx context.Context, name string) (incidents.Experiment, []incidents.ExperimentTransition, error) {
	rec, err := m.store.Experiment(ctx, name)
	if err != nil {
		return rec, nil, storeErr(err)
	}
	hist, err := m.store.ExperimentTransitions(ctx, name)
	if err != nil {
		return rec, nil, storeErr(err)
	}
	return rec, hist, nil
}

// List returns the experiments of a trial ("" for all).
func (m *Manager) List(ctx context.Context, trial string) ([]incidents.Experiment, error) {
	list, err := m.store.Experiments(ctx, trial)
	return list, storeErr(err)
}

// Report analyses an experiment on the data recorded so far.
func (m *Manager) Report(ctx context.Context, name string) (*Report, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.store.Experiment(ctx, name)
	if err != nil {
		return nil, storeErr(err)
	}
	return m.reportLocked(ctx, &rec)
}

func (m *Manager) reportLocked(ctx context.Context, rec *incidents.Experiment) (*Report, error) {
	def, err := m.definition(rec)
	if err != nil {
		return nil, err
	}
	run := Run{Status: rec.Status, StartedAt: rec.StartedAt, StoppedAt: rec.StoppedAt, StopCause: rec.StopCause, StopReason: rec.StopReason}
	if rec.Status == StatusDraft {
		return Analyze(def, run, &Data{AsOf: m.clk.Now().UTC()}), nil
	}
	data, err := m.data(ctx, rec)
	if err != nil {
		return nil, err
	}
	return Analyze(def, run, data), nil
}

// Reconcile is one pass: write to the bucket what changed in the store, stop
// running experiments at their planned end, and stop any whose guard-rail a
// variant crossed. It is what the loop runs every Interval.
func (m *Manager) Reconcile(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kv == nil {
		return errors.New("experiment manager: not open")
	}
	list, err := m.store.Experiments(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	for i := range list {
		rec := list[i]
		if rec.Status == StatusRunning {
			err := m.checkRunningLocked(ctx, &rec)
			if errors.Is(err, ErrTransition) {
				// Another manager (another process) moved it first: follow.
				if full, gerr := m.store.Experiment(ctx, rec.Name); gerr == nil {
					m.publishLocked(ctx, &full)
					err = nil
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("experiment %s: %w", rec.Name, err))
			}
			continue
		}
		if m.synced[rec.Name] != syncKey(&rec) {
			full, err := m.store.Experiment(ctx, rec.Name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			m.publishLocked(ctx, &full)
		}
	}
	return errors.Join(errs...)
}

// checkRunningLocked stops a running experiment at its planned end or on a
// crossed guard-rail, and otherwise keeps its bucket state current.
func (m *Manager) checkRunningLocked(ctx context.Context, listed *incidents.Experiment) error {
	rec, err := m.store.Experiment(ctx, listed.Name)
	if err != nil {
		return err
	}
	if rec.Status != StatusRunning {
		m.publishLocked(ctx, &rec)
		return nil
	}
	if m.synced[rec.Name] != syncKey(&rec) {
		m.publishLocked(ctx, &rec)
	}
	def, err := m.definition(&rec)
	if err != nil {
		return err
	}
	now := m.clk.Now().UTC()
	if end := rec.StartedAt.Add(def.Planned); !now.Before(end) {
		_, err := m.transitionLocked(ctx, incidents.ExperimentChange{Name: rec.Name, From: StatusRunning, To: StatusStopped, Actor: ActorController,
			Cause: StopPlannedEnd, Reason: "the planned duration of " + def.PlannedDuration + " ended at " + end.Format(time.RFC3339)})
		return err
	}
	if len(def.Guardrails) == 0 {
		return nil
	}
	data, err := m.data(ctx, &rec)
	if err != nil {
		return err
	}
	arms, _ := prepare(def, data)
	var crossed []GuardrailResult
	for _, g := range checkGuardrails(def, arms, data.AsOf) {
		if g.Crossed {
			crossed = append(crossed, g)
		}
	}
	if len(crossed) == 0 {
		return nil
	}
	parts := make([]string, len(crossed))
	for i, g := range crossed {
		parts[i] = fmt.Sprintf("guard-rail %d %s, arm %s, %s: %s", g.Index+1, g.Label, g.Arm, g.Bound, g.Detail)
	}
	reason := strings.Join(parts, "; ")
	if len(reason) > 1900 {
		reason = reason[:1900] + "…"
	}
	m.log.Warn("experiment stopped by a guard-rail: every user back on the control policy", "experiment", rec.Name, "trial", rec.Trial, "why", reason)
	_, err = m.transitionLocked(ctx, incidents.ExperimentChange{Name: rec.Name, From: StatusRunning, To: StatusStopped, Actor: ActorController,
		Cause: StopByRule, Reason: reason, Detail: crossed})
	return err
}

// transitionLocked applies a change in the store, then writes the new state
// to the bucket (a failed write is retried by the next reconcile pass).
func (m *Manager) transitionLocked(ctx context.Context, ch incidents.ExperimentChange) (incidents.Experiment, error) {
	rec, err := m.store.TransitionExperiment(ctx, ch)
	if err != nil {
		return rec, storeErr(err)
	}
	m.publishLocked(ctx, &rec)
	m.log.Info("experiment transition", "experiment", rec.Name, "trial", rec.Trial, "from", ch.From, "to", ch.To, "actor", ch.Actor, "cause", ch.Cause, "reason", ch.Reason)
	return rec, nil
}

// publishLocked writes an experiment's state to the bucket.
func (m *Manager) publishLocked(ctx context.Context, rec *incidents.Experiment) {
	if m.kv == nil {
		return
	}
	if rec.Source == "" && rec.Status == StatusRunning {
		full, err := m.store.Experiment(ctx, rec.Name)
		if err != nil {
			m.log.Error("experiment state not written; retried next pass", "experiment", rec.Name, "err", err)
			return
		}
		rec = &full
	}
	st := StateOf(rec)
	raw, err := EncodeState(&st)
	if err != nil {
		m.log.Error("experiment state not written", "experiment", rec.Name, "err", err)
		return
	}
	if _, err := m.kv.Put(ctx, rec.Name, raw); err != nil {
		delete(m.synced, rec.Name)
		m.log.Error("experiment state not written; retried next pass", "experiment", rec.Name, "err", err)
		return
	}
	m.synced[rec.Name] = syncKey(rec)
}

func syncKey(rec *incidents.Experiment) string {
	return rec.Status + "@" + rec.UpdatedAt.Format(time.RFC3339Nano)
}

// definition parses a stored definition once per digest.
func (m *Manager) definition(rec *incidents.Experiment) (*Definition, error) {
	if d, ok := m.defs[rec.Digest]; ok {
		return d, nil
	}
	src := rec.Source
	if src == "" {
		return nil, fmt.Errorf("experiment %s: definition not loaded", rec.Name)
	}
	d, err := Parse(rec.Name+".yaml", []byte(src))
	if err != nil {
		return nil, fmt.Errorf("stored definition of %s no longer parses: %w", rec.Name, err)
	}
	m.defs[rec.Digest] = d
	return d, nil
}

// data reads what an experiment recorded: interactions incrementally (new
// rows since the last read, with an overlap), incidents afresh (reviews
// change their status).
func (m *Manager) data(ctx context.Context, rec *incidents.Experiment) (*Data, error) {
	asOf := m.clk.Now().UTC()
	if !rec.StoppedAt.IsZero() {
		asOf = rec.StoppedAt
	}
	c := m.caches[rec.Name]
	if c == nil || !c.startedAt.Equal(rec.StartedAt) {
		c = &obsCache{startedAt: rec.StartedAt, obs: map[string]Observation{}}
		m.caches[rec.Name] = c
	}
	q := incidents.ObservationQuery{Trial: rec.Trial, Experiment: rec.Name, From: rec.StartedAt, To: rec.StoppedAt}
	if !c.cursor.IsZero() {
		q.RecordedSince = c.cursor.Add(-m.cfg.ReadOverlap)
	}
	rows, err := m.store.ExperimentObservations(ctx, q)
	if err != nil {
		return nil, storeErr(err)
	}
	for _, o := range rows {
		c.obs[o.InteractionID] = o
		if o.RecordedAt.After(c.cursor) {
			c.cursor = o.RecordedAt
		}
	}
	incs, err := m.store.ExperimentIncidents(ctx, rec.Trial, rec.StartedAt)
	if err != nil {
		return nil, storeErr(err)
	}
	d := &Data{AsOf: asOf, Incidents: incs, Observations: make([]Observation, 0, len(c.obs))}
	for _, o := range c.obs {
		if rec.StoppedAt.IsZero() || o.StartedAt.Before(rec.StoppedAt) {
			d.Observations = append(d.Observations, o)
		}
	}
	return d, nil
}

// storeErr maps the store's sentinels onto this package's.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, incidents.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, incidents.ErrTransition):
		return fmt.Errorf("%w: %w", ErrTransition, err)
	case errors.Is(err, incidents.ErrConflict):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}
