package deploy

import (
	"errors"
	"fmt"
	"hash/fnv"
	"sync/atomic"

	"github.com/stagegate/stagegate/events"
)

// Stages a trial's candidate moves through.
const (
	StageShadow  = "shadow"
	StageCanary  = "canary"
	StagePilot   = "pilot"
	StageGeneral = "general"
)

// WeightScale is the resolution of a candidate weight: 10000 = 100.00 %.
const WeightScale = 10000

// Plan is the current rollout state of one trial.
type Plan struct {
	// Trial is the trial id.
	Trial string
	// Candidate is the model under trial.
	Candidate string
	// Baseline is the model users get when not assigned to the candidate.
	Baseline string
	// Stage names the current step (shadow, canary, pilot, general).
	Stage string
	// CandidateWeight is the share of users sent to the candidate, in 1/WeightScale
	// (5000 = 50 %).
	CandidateWeight int
}

// Validate reports every problem at once.
func (p Plan) Validate() error {
	var errs []error
	if err := events.CheckToken("trial", p.Trial); err != nil {
		errs = append(errs, err)
	}
	if err := events.CheckToken("candidate model", p.Candidate); err != nil {
		errs = append(errs, err)
	}
	if err := events.CheckToken("baseline model", p.Baseline); err != nil {
		errs = append(errs, err)
	}
	switch p.Stage {
	case StageShadow, StageCanary, StagePilot, StageGeneral:
	default:
		errs = append(errs, fmt.Errorf("trial %s: stage %q: want shadow, canary, pilot or general", p.Trial, p.Stage))
	}
	if p.CandidateWeight < 0 || p.CandidateWeight > WeightScale {
		errs = append(errs, fmt.Errorf("trial %s: candidate weight %d outside 0..%d", p.Trial, p.CandidateWeight, WeightScale))
	}
	return errors.Join(errs...)
}

// Assignment is where one request of one user goes.
type Assignment struct {
	Model string // concrete model name
	Route string // events.RouteCandidate or events.RouteBaseline
	Stage string
}

// Assigner maps (trial, user) to a model. Assignment is sticky: the same
// pseudonymous user of a trial lands in the same bucket for as long as the weight
// keeps them eligible, so nobody flips between models within a stage. Plans are
// swapped atomically; Assign takes no lock.
type Assigner struct {
	plans atomic.Pointer[map[string]Plan]
}

// NewAssigner validates and installs the plans.
func NewAssigner(plans []Plan) (*Assigner, error) {
	a := &Assigner{}
	if err := a.SetPlans(plans); err != nil {
		return nil, err
	}
	return a, nil
}

// SetPlans replaces every plan at once.
func (a *Assigner) SetPlans(plans []Plan) error {
	m := make(map[string]Plan, len(plans))
	var errs []error
	for _, p := range plans {
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := m[p.Trial]; dup {
			errs = append(errs, fmt.Errorf("trial %s: more than one plan", p.Trial))
		}
		m[p.Trial] = p
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.plans.Store(&m)
	return nil
}

// Plan returns the current plan of a trial.
func (a *Assigner) Plan(trial string) (Plan, bool) {
	p, ok := (*a.plans.Load())[trial]
	return p, ok
}

// Assign returns the model that serves user in trial; ok is false for an unknown trial.
func (a *Assigner) Assign(trial, user string) (Assignment, bool) {
	p, ok := (*a.plans.Load())[trial]
	if !ok {
		return Assignment{}, false
	}
	if Bucket(trial, user) < p.CandidateWeight {
		return Assignment{Model: p.Candidate, Route: events.RouteCandidate, Stage: p.Stage}, true
	}
	return Assignment{Model: p.Baseline, Route: events.RouteBaseline, Stage: p.Stage}, true
}

// Bucket places a user of a trial in [0, WeightScale) by a hash of both, so a user's
// bucket differs between trials but never changes within one.
func Bucket(trial, user string) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(trial))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(user))
	return int(h.Sum64() % WeightScale)
}

// Route returns the model behind a route of a trial's plan.
func (a *Assigner) Route(trial, route string) (string, bool) {
	p, ok := (*a.plans.Load())[trial]
	if !ok {
		return "", false
	}
	switch route {
	case events.RouteCandidate:
		return p.Candidate, true
	case events.RouteBaseline:
		return p.Baseline, true
	}
	return "", false
}
