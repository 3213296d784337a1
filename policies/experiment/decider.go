package experiment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stagegate/stagegate/policies"
)

// DefaultBuildTimeout bounds building the arms' policies of one experiment.
const DefaultBuildTimeout = 60 * time.Second

// DeciderConfig configures the Decider of one trial.
type DeciderConfig struct {
	// Trial is the trial id.
	Trial string
	// Policy is where the trial's policy comes from (data overlays are laid
	// over it).
	Policy TrialPolicy
	// MemoEntries bounds each variant's decision memo (policies.Config).
	MemoEntries int
	// BuildTimeout bounds building one experiment's arms (default 60s).
	BuildTimeout time.Duration
}

// Validate reports every problem at once.
func (c DeciderConfig) Validate() error {
	var errs []error
	if err := checkToken(c.Trial); err != nil {
		errs = append(errs, fmt.Errorf("%w: trial: %w", ErrConfig, err))
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MemoEntries < -1 || c.BuildTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: MemoEntries and BuildTimeout must not be negative (MemoEntries -1 turns the memo off)", ErrConfig))
	}
	return errors.Join(errs...)
}

// DeciderDeps are what a Decider takes from outside.
type DeciderDeps struct {
	// Base is the trial's policy decider (a *policies.Reloader): what the
	// control arm and every user outside an experiment are served.
	Base policies.Decider
	// Logger; nil discards.
	Logger *slog.Logger
}

// Decider is a trial's policy decider with its running experiment, if any: a
// user assigned to a variant arm is decided by that arm's policy, and every
// decision of a user taking part is marked with the experiment, the arm and
// the revision that decided. It implements the gateway's Decider. The
// running experiment is read with one atomic load; a stop replaces it at once.
type Decider struct {
	cfg  DeciderConfig
	base policies.Decider
	log  *slog.Logger

	active atomic.Pointer[running]

	mu       sync.Mutex
	states   map[string]*State   // the trial's experiments, from the bucket
	built    map[string]*running // by name and digest
	gen      uint64              // bumped whenever the wanted experiment changes
	lastErr  string
	building int
}

var _ policies.Decider = (*Decider)(nil)

// running is one experiment being served: its assignment and one decider per arm.
type running struct {
	name, digest string
	assign       *Assigner
	arms         []servedArm
}

type servedArm struct {
	name    string
	control bool
	d       policies.Decider
}

// NewDecider validates cfg and deps; until an experiment runs it is the base.
func NewDecider(cfg DeciderConfig, deps DeciderDeps) (*Decider, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if deps.Base == nil {
		errs = append(errs, fmt.Errorf("%w: a base decider (the trial's policy) is required", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.BuildTimeout == 0 {
		cfg.BuildTimeout = DefaultBuildTimeout
	}
	d := &Decider{cfg: cfg, base: deps.Base, log: deps.Logger, states: map[string]*State{}, built: map[string]*running{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// Trial is the trial the decider serves.
func (d *Decider) Trial() string { return d.cfg.Trial }

// Decide decides with the policy of the user's arm when an experiment runs
// and the user takes part, marking the decision; with the trial's policy
// otherwise.
func (d *Decider) Decide(ctx context.Context, in policies.Input) (policies.Decision, error) {
	r := d.active.Load()
	if r == nil {
		return d.base.Decide(ctx, in)
	}
	i := r.assign.Assign(in.Caller.User, in.Caller.Cohort)
	if i < 0 {
		return d.base.Decide(ctx, in)
	}
	arm := &r.arms[i]
	dec, err := arm.d.Decide(ctx, in)
	if err != nil {
		return dec, err
	}
	dec.Experiment, dec.Arm, dec.VariantRevision = r.name, arm.name, dec.Revision
	return dec, nil
}

// DeciderStatus says what a decider serves.
type DeciderStatus struct {
	Trial string `json:"trial"`
	// Experiment is the running experiment served ("" for none).
	Experiment string `json:"experiment,omitempty"`
	// Building is true while an experiment's arms are being built (users
	// are served the control policy meanwhile).
	Building bool `json:"building,omitempty"`
	// LastError is the last build failure (users stay on the control policy).
	LastError string `json:"last_error,omitempty"`
}

// Status reports what the decider serves.
func (d *Decider) Status() DeciderStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := DeciderStatus{Trial: d.cfg.Trial, Building: d.building > 0, LastError: d.lastErr}
	if r := d.active.Load(); r != nil {
		s.Experiment = r.name
	}
	return s
}

// Apply takes one experiment state of the decider's trial (nil with the name
// of a deleted key). A change away from a running experiment takes effect
// before Apply returns; a newly running one is built in the background, and
// the returned channel (nil when there is nothing to build) closes when it is
// in service or has failed.
func (d *Decider) Apply(ctx context.Context, name string, s *State) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s == nil {
		delete(d.states, name)
	} else {
		d.states[name] = s
	}
	want := d.wanted()
	cur := d.active.Load()
	if want == nil {
		if cur != nil {
			d.active.Store(nil)
			d.log.Info("experiment no longer running: every user on the control policy", "trial", d.cfg.Trial, "experiment", cur.name)
		}
		d.gen++
		return nil
	}
	key := want.Name + "\x00" + want.Digest
	if cur != nil && cur.name == want.Name && cur.digest == want.Digest {
		return nil
	}
	// Until the wanted experiment is built, nobody is served another one.
	d.active.Store(nil)
	d.gen++
	if r, ok := d.built[key]; ok {
		d.active.Store(r)
		return nil
	}
	gen := d.gen
	done := make(chan struct{})
	d.building++
	go func() {
		defer close(done)
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.BuildTimeout)
		r, err := d.build(bctx, want)
		cancel()
		d.mu.Lock()
		defer d.mu.Unlock()
		d.building--
		if err != nil {
			d.lastErr = err.Error()
			d.log.Error("experiment cannot be served here: its users stay on the control policy", "trial", d.cfg.Trial, "experiment", want.Name, "err", err)
			return
		}
		d.lastErr = ""
		d.built[key] = r
		if d.gen == gen {
			d.active.Store(r)
			d.log.Info("experiment in service", "trial", d.cfg.Trial, "experiment", want.Name, "arms", len(r.arms))
		}
	}()
	return done
}

// wanted is the running experiment of the trial: the earliest started, should
// the bucket ever hold two (the store allows one per trial).
func (d *Decider) wanted() *State {
	var best *State
	for _, s := range d.states {
		if s.Status != StatusRunning {
			continue
		}
		if best == nil || s.StartedAt.Before(best.StartedAt) || s.StartedAt.Equal(best.StartedAt) && s.Name < best.Name {
			best = s
		}
	}
	return best
}

// build parses a running state's definition and builds every arm's policy.
func (d *Decider) build(ctx context.Context, s *State) (*running, error) {
	def, err := Parse(s.Name+".yaml", []byte(s.Source))
	if err != nil {
		return nil, err
	}
	if def.Name != s.Name || def.Trial != d.cfg.Trial {
		return nil, fmt.Errorf("%w: state %s of trial %s holds the definition of %s in trial %s", ErrState, s.Name, s.Trial, def.Name, def.Trial)
	}
	return buildRunning(ctx, def, s.Digest, d.cfg.Policy, d.base, d.cfg.MemoEntries)
}

// buildRunning builds the served form of a definition.
func buildRunning(ctx context.Context, def *Definition, digest string, tp TrialPolicy, base policies.Decider, memo int) (*running, error) {
	r := &running{name: def.Name, digest: digest, assign: NewAssigner(def)}
	for i := range def.Arms {
		a := &def.Arms[i]
		if a.Control {
			r.arms = append(r.arms, servedArm{name: a.Name, control: true, d: base})
			continue
		}
		e, err := BuildVariant(ctx, tp, a.Variant, memo)
		if err != nil {
			return nil, fmt.Errorf("arm %s: %w", a.Name, err)
		}
		r.arms = append(r.arms, servedArm{name: a.Name, d: e})
	}
	return r, nil
}

// Arms lists the arms served now with the revision each is served ("" when
// no experiment runs).
func (d *Decider) Arms() map[string]string {
	r := d.active.Load()
	if r == nil {
		return nil
	}
	out := make(map[string]string, len(r.arms))
	for _, a := range r.arms {
		rev := ""
		if e, ok := a.d.(interface{ Revision() string }); ok {
			rev = e.Revision()
		} else if e, ok := a.d.(interface{ Engine() *policies.Engine }); ok && e.Engine() != nil {
			rev = e.Engine().Revision()
		}
		out[a.name] = rev
	}
	return out
}
