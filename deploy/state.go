package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SchemaRollout identifies the JSON of a rollout state in the ROLLOUTS bucket.
const SchemaRollout = "stagegate.rollout.v1"

// Rollout statuses.
const (
	// StatusProgressing: the controller is moving through the steps.
	StatusProgressing = "progressing"
	// StatusWaiting: held by the plan itself, Message says why (a pause step, a
	// gate that is inconclusive or in error).
	StatusWaiting = "waiting"
	// StatusPaused: held by a person until `rollout resume`.
	StatusPaused = "paused"
	// StatusAborted: every user is back on the baseline; re-apply to start over.
	StatusAborted = "aborted"
	// StatusCompleted: the last step is done; traffic stays as it set it.
	StatusCompleted = "completed"
)

// Actors the controller records for what it did by itself.
const (
	// ActorController is the actor of transitions the controller made.
	ActorController = "controller"
)

// Bounds of a rollout state.
const (
	// DefaultHistoryLimit is how many transitions a state keeps (oldest dropped).
	DefaultHistoryLimit = 200
	// MaxStateBytes bounds one state's JSON (well under the NATS payload limit).
	MaxStateBytes = 512 << 10
	// MaxActorLen and MaxReasonLen bound a manual action's actor and reason.
	MaxActorLen  = 128
	MaxReasonLen = 1000
)

// Traffic is the split a rollout currently asks of the gateways.
type Traffic struct {
	// Stage names it (shadow, canary, pilot, general, aborted).
	Stage string `json:"stage"`
	// CandidateWeight is the share of eligible users on the candidate, 1/WeightScale.
	CandidateWeight int `json:"candidate_weight"`
	// ShadowSample is the share of requests copied to the candidate, 1/WeightScale.
	ShadowSample int `json:"shadow_sample"`
	// Cohorts limits the candidate to these cohorts (pilot).
	Cohorts []string `json:"cohorts,omitempty"`
}

// Transition is one change of a rollout, kept in its history.
type Transition struct {
	At time.Time `json:"at"`
	// From and To describe the step and status before and after.
	From string `json:"from"`
	To   string `json:"to"`
	// Cause says what made it happen, with the numbers (a gate verdict, a pause
	// that elapsed, a kill switch, a manual action).
	Cause string `json:"cause"`
	// Actor is who: ActorController, or the person of a manual action.
	Actor string `json:"actor"`
	// Reason is the person's stated reason of a manual action.
	Reason string `json:"reason,omitempty"`
}

// State is a rollout as it lives in the ROLLOUTS bucket under its trial id.
type State struct {
	Schema string `json:"schema"`
	// Spec is the applied plan.
	Spec Spec `json:"spec"`
	// Generation counts applies of a plan to this trial.
	Generation int64 `json:"generation"`
	// Status is one of the Status* constants; Message says why in words.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	// Step is the index of the current step; len(Spec.Steps) once completed.
	Step int `json:"step"`
	// StartedAt is when the plan was applied; StepStartedAt when the step began.
	StartedAt     time.Time `json:"started_at"`
	StepStartedAt time.Time `json:"step_started_at"`
	// Traffic is the split the gateways apply.
	Traffic Traffic `json:"traffic"`
	// Approved: a person promoted the rollout at the current step.
	Approved bool `json:"approved,omitempty"`
	// Gate is the latest verdict of the current gate step.
	Gate *Verdict `json:"gate,omitempty"`
	// History lists the transitions, oldest first (the newest DefaultHistoryLimit).
	History   []Transition `json:"history"`
	UpdatedAt time.Time    `json:"updated_at"`
	// Revision is the KV revision this state was read at (not stored).
	Revision uint64 `json:"revision,omitempty"`
}

// Trial is the trial id of the rollout.
func (s *State) Trial() string { return s.Spec.Trial }

// CurrentStep returns the current step, or nil once completed.
func (s *State) CurrentStep() *Step {
	if s.Step < 0 || s.Step >= len(s.Spec.Steps) {
		return nil
	}
	return &s.Spec.Steps[s.Step]
}

// Plan is the traffic split the gateways apply for this rollout.
func (s *State) Plan() Plan {
	p := Plan{
		Trial: s.Spec.Trial, Candidate: s.Spec.Candidate, Baseline: s.Spec.Baseline,
		Stage: s.Traffic.Stage, CandidateWeight: s.Traffic.CandidateWeight,
		ShadowSample: s.Traffic.ShadowSample, Cohorts: slices.Clone(s.Traffic.Cohorts),
		Fallback: s.Spec.Fallback(),
	}
	if s.Status == StatusAborted {
		p.Stage, p.CandidateWeight, p.ShadowSample, p.Cohorts = StageAborted, 0, 0, nil
	}
	return p
}

// label describes the rollout's position for a transition: "step 2/5 canary 10%
// of users (progressing)".
func (s *State) label() string {
	where := "completed"
	if st := s.CurrentStep(); st != nil {
		where = "step " + strconv.Itoa(s.Step+1) + "/" + strconv.Itoa(len(s.Spec.Steps)) + " " + st.String()
	}
	return where + " (" + s.Status + ")"
}

// initialTraffic is the split before any traffic step: everyone on the baseline.
func initialTraffic() Traffic { return Traffic{Stage: StageShadow} }

// trafficOf is the split a traffic step sets (ok is false for pause and gate).
func trafficOf(st *Step) (Traffic, bool) {
	switch st.Kind() {
	case KindShadow:
		return Traffic{Stage: StageShadow, ShadowSample: toScale(st.Shadow.Sample)}, true
	case KindCanary:
		return Traffic{Stage: StageCanary, CandidateWeight: toScale(st.Canary.Weight)}, true
	case KindPilot:
		w := WeightScale
		if st.Pilot.Weight != nil {
			w = toScale(*st.Pilot.Weight)
		}
		return Traffic{Stage: StagePilot, CandidateWeight: w, Cohorts: slices.Clone(st.Pilot.Cohorts)}, true
	case KindGeneral:
		return Traffic{Stage: StageGeneral, CandidateWeight: WeightScale}, true
	}
	return Traffic{}, false
}

// encodeState marshals a state for the bucket (without its read revision).
func encodeState(s *State) ([]byte, error) {
	c := *s
	c.Revision = 0
	c.Schema = SchemaRollout
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode rollout %s: %w", s.Spec.Trial, err)
	}
	if len(b) > MaxStateBytes {
		return nil, fmt.Errorf("rollout %s: state is %d bytes (max %d)", s.Spec.Trial, len(b), MaxStateBytes)
	}
	return b, nil
}

// DecodeState reads a state from the bucket, checking its schema and plan.
func DecodeState(b []byte, revision uint64) (*State, error) {
	if len(b) > MaxStateBytes {
		return nil, fmt.Errorf("rollout state of %d bytes (max %d)", len(b), MaxStateBytes)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode rollout state: %w", err)
	}
	if s.Schema != SchemaRollout {
		return nil, fmt.Errorf("rollout state schema %q, want %s", s.Schema, SchemaRollout)
	}
	var errs []error
	if err := s.Spec.Validate(); err != nil {
		errs = append(errs, err)
	}
	if s.Step < 0 || s.Step > len(s.Spec.Steps) {
		errs = append(errs, fmt.Errorf("step %d outside 0..%d", s.Step, len(s.Spec.Steps)))
	}
	switch s.Status {
	case StatusProgressing, StatusWaiting, StatusPaused, StatusAborted, StatusCompleted:
	default:
		errs = append(errs, fmt.Errorf("status %q", s.Status))
	}
	if err := s.Plan().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("rollout state of %s: %w", s.Spec.Trial, err)
	}
	s.Revision = revision
	return &s, nil
}

// checkActor validates the actor and reason of a manual action.
func checkActor(actor, reason string, needReason bool) error {
	var errs []error
	if strings.TrimSpace(actor) == "" || len(actor) > MaxActorLen {
		errs = append(errs, fmt.Errorf("%w: actor is required (who does this, 1-%d bytes)", ErrInvalid, MaxActorLen))
	}
	if needReason && strings.TrimSpace(reason) == "" {
		errs = append(errs, fmt.Errorf("%w: reason is required (why, in a few words)", ErrInvalid))
	}
	if len(reason) > MaxReasonLen {
		errs = append(errs, fmt.Errorf("%w: reason is longer than %d bytes", ErrInvalid, MaxReasonLen))
	}
	return errors.Join(errs...)
}
