package deploy

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/stagegate/stagegate/events"
)

// Stages a trial's candidate moves through. StageAborted is the stage of a rolled
// back trial: every user is on the baseline and the candidate gets nothing.
const (
	StageShadow  = "shadow"
	StageCanary  = "canary"
	StagePilot   = "pilot"
	StageGeneral = "general"
	StageAborted = "aborted"
)

// WeightScale is the resolution of a candidate weight or shadow sample:
// 10000 = 100.00 %.
const WeightScale = 10000

// maxCohortLen bounds one cohort name of a plan.
const maxCohortLen = 64

// Plan is the current traffic split of one trial, what every gateway needs to
// route a request.
type Plan struct {
	// Trial is the trial id.
	Trial string
	// Candidate is the model under trial.
	Candidate string
	// Baseline is the model users get when not assigned to the candidate.
	Baseline string
	// Stage names the current traffic stage (shadow, canary, pilot, general, aborted).
	Stage string
	// CandidateWeight is the share of eligible users sent to the candidate, in
	// 1/WeightScale (5000 = 50 %).
	CandidateWeight int
	// Cohorts, when not empty, limits the candidate to users of these cohorts
	// (pilot stage); everyone else gets the baseline.
	Cohorts []string
	// ShadowSample is the share of baseline-served requests whose copy also goes to
	// the candidate, in 1/WeightScale. Shadow answers are monitored, never shown.
	ShadowSample int
	// Fallback lets a request the candidate failed (error or timeout) be served by
	// the baseline instead.
	Fallback bool
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
	case StageAborted:
		if p.CandidateWeight != 0 || p.ShadowSample != 0 {
			errs = append(errs, fmt.Errorf("trial %s: an aborted plan sends nothing to the candidate", p.Trial))
		}
	default:
		errs = append(errs, fmt.Errorf("trial %s: stage %q: want shadow, canary, pilot, general or aborted", p.Trial, p.Stage))
	}
	if p.CandidateWeight < 0 || p.CandidateWeight > WeightScale {
		errs = append(errs, fmt.Errorf("trial %s: candidate weight %d outside 0..%d", p.Trial, p.CandidateWeight, WeightScale))
	}
	if p.ShadowSample < 0 || p.ShadowSample > WeightScale {
		errs = append(errs, fmt.Errorf("trial %s: shadow sample %d outside 0..%d", p.Trial, p.ShadowSample, WeightScale))
	}
	for i, c := range p.Cohorts {
		if c == "" || len(c) > maxCohortLen {
			errs = append(errs, fmt.Errorf("trial %s: cohort %d must be 1-%d bytes", p.Trial, i, maxCohortLen))
		}
	}
	return errors.Join(errs...)
}

// Equal reports whether two plans route every request the same way.
func (p Plan) Equal(q Plan) bool {
	return p.Trial == q.Trial && p.Candidate == q.Candidate && p.Baseline == q.Baseline &&
		p.Stage == q.Stage && p.CandidateWeight == q.CandidateWeight && p.ShadowSample == q.ShadowSample &&
		p.Fallback == q.Fallback && slices.Equal(p.Cohorts, q.Cohorts)
}

// eligible reports whether a user of cohort may be sent to the candidate.
func (p *Plan) eligible(cohort string) bool {
	return len(p.Cohorts) == 0 || slices.Contains(p.Cohorts, cohort)
}

// Assignment is where one request of one user goes.
type Assignment struct {
	Model string // concrete model name
	Route string // events.RouteCandidate or events.RouteBaseline
	Stage string
}

// RequestAssignment is Assignment plus what the gateway does around the call.
type RequestAssignment struct {
	Assignment
	// Shadow names the candidate when this request also gets a shadow copy sent to
	// it (asynchronously; its answer is published, never returned); "" for none.
	Shadow string
	// Fallback names the baseline when a candidate error or timeout may be retried
	// on it; "" when there is no fallback (baseline-served, or disabled by the plan).
	Fallback string
}

// Assigner maps (trial, user) to a model. Assignment is sticky: the same
// pseudonymous user of a trial lands in the same bucket for as long as the weight
// keeps them eligible, so nobody flips between models within a stage. Plans are
// swapped atomically (copy on write); Assign takes no lock and allocates nothing.
type Assigner struct {
	plans atomic.Pointer[map[string]Plan]
	mu    sync.Mutex // serialises writers
}

// NewAssigner validates and installs the plans.
func NewAssigner(plans []Plan) (*Assigner, error) {
	a := &Assigner{}
	empty := map[string]Plan{}
	a.plans.Store(&empty)
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
		p.Cohorts = slices.Clone(p.Cohorts)
		m[p.Trial] = p
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.mu.Lock()
	a.plans.Store(&m)
	a.mu.Unlock()
	return nil
}

// Update installs or replaces the plan of one trial, leaving the others as they are.
// It reports whether anything changed.
func (a *Assigner) Update(p Plan) (bool, error) {
	if err := p.Validate(); err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := *a.plans.Load()
	if old, ok := cur[p.Trial]; ok && old.Equal(p) {
		return false, nil
	}
	next := make(map[string]Plan, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	p.Cohorts = slices.Clone(p.Cohorts)
	next[p.Trial] = p
	a.plans.Store(&next)
	return true, nil
}

// Remove drops the plan of a trial; its requests then find no plan.
func (a *Assigner) Remove(trial string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := *a.plans.Load()
	if _, ok := cur[trial]; !ok {
		return
	}
	next := make(map[string]Plan, len(cur))
	for k, v := range cur {
		if k != trial {
			next[k] = v
		}
	}
	a.plans.Store(&next)
}

// Plans returns a copy of every plan, sorted by trial.
func (a *Assigner) Plans() []Plan {
	m := *a.plans.Load()
	out := make([]Plan, 0, len(m))
	for _, p := range m {
		p.Cohorts = slices.Clone(p.Cohorts)
		out = append(out, p)
	}
	slices.SortFunc(out, func(x, y Plan) int {
		switch {
		case x.Trial < y.Trial:
			return -1
		case x.Trial > y.Trial:
			return 1
		}
		return 0
	})
	return out
}

// Plan returns the current plan of a trial.
func (a *Assigner) Plan(trial string) (Plan, bool) {
	p, ok := (*a.plans.Load())[trial]
	return p, ok
}

// Assign returns the model that serves user in trial; ok is false for an unknown
// trial. A plan limited to cohorts sends this cohort-less call to the baseline;
// gateways that know the caller's cohort use AssignRequest.
func (a *Assigner) Assign(trial, user string) (Assignment, bool) {
	p, ok := (*a.plans.Load())[trial]
	if !ok {
		return Assignment{}, false
	}
	if len(p.Cohorts) == 0 && Bucket(trial, user) < p.CandidateWeight {
		return Assignment{Model: p.Candidate, Route: events.RouteCandidate, Stage: p.Stage}, true
	}
	return Assignment{Model: p.Baseline, Route: events.RouteBaseline, Stage: p.Stage}, true
}

// AssignRequest returns where one request goes: the sticky model of (trial, user,
// cohort), whether the request also gets a shadow copy to the candidate (sampled
// deterministically by requestID, so a retry of the same request decides the same
// way), and whether a candidate failure may fall back to the baseline.
func (a *Assigner) AssignRequest(trial, user, cohort, requestID string) (RequestAssignment, bool) {
	p, ok := (*a.plans.Load())[trial]
	if !ok {
		return RequestAssignment{}, false
	}
	var r RequestAssignment
	r.Stage = p.Stage
	if p.CandidateWeight > 0 && p.eligible(cohort) && Bucket(trial, user) < p.CandidateWeight {
		r.Model, r.Route = p.Candidate, events.RouteCandidate
		if p.Fallback {
			r.Fallback = p.Baseline
		}
		return r, true
	}
	r.Model, r.Route = p.Baseline, events.RouteBaseline
	if p.ShadowSample > 0 && ShadowBucket(trial, requestID) < p.ShadowSample {
		r.Shadow = p.Candidate
	}
	return r, true
}

// FNV-1a, 64 bit, computed inline so hashing allocates nothing.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

func fnvByte(h uint64, b byte) uint64 {
	h ^= uint64(b)
	return h * fnvPrime64
}

// Bucket places a user of a trial in [0, WeightScale) by a hash (FNV-1a of trial,
// NUL, user), so a user's bucket differs between trials but never changes within
// one. A user is on the candidate when their bucket is below the weight, so raising
// the weight only ever adds users.
func Bucket(trial, user string) int {
	h := fnvString(fnvOffset64, trial)
	h = fnvByte(h, 0)
	h = fnvString(h, user)
	return int(h % WeightScale)
}

// ShadowBucket places a request in [0, WeightScale) for shadow sampling, by a hash
// independent of Bucket (so shadow copies are not drawn from one group of users).
func ShadowBucket(trial, requestID string) int {
	h := fnvString(fnvOffset64, "shadow")
	h = fnvByte(h, 0)
	h = fnvString(h, trial)
	h = fnvByte(h, 0)
	h = fnvString(h, requestID)
	return int(h % WeightScale)
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
