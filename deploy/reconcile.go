package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stagegate/stagegate/incidents"
)

// pass is one reconcile of one rollout: the state being changed, the time of the
// pass, and whether the change must be written.
type pass struct {
	s     *State
	now   time.Time
	dirty bool
}

// reconcile runs the reconcile steps in order; each returns true when it ended the
// pass. It reports whether s changed enough to be written.
func (c *Controller) reconcile(ctx context.Context, s *State) bool {
	r := &pass{s: s, now: c.clk.Now().UTC()}
	switch {
	case reconcileAborted(r):
	case c.reconcileKillSwitch(ctx, r):
	case reconcilePaused(r):
	case reconcileCompleted(r):
	default:
		c.reconcileSteps(ctx, r)
	}
	return r.dirty
}

// reconcileAborted: an aborted rollout stays so until a plan is applied again.
func reconcileAborted(r *pass) bool { return r.s.Status == StatusAborted }

// reconcileKillSwitch aborts the rollout when a reviewer confirmed a critical
// incident of the candidate since the plan was applied, whatever the step.
func (c *Controller) reconcileKillSwitch(ctx context.Context, r *pass) bool {
	s := r.s
	ev, err := c.evidence(ctx, s.Spec.Trial, s.Spec.Candidate, s.StartedAt)
	if err != nil {
		c.log.Warn("rollout kill switch: evidence unavailable", "trial", s.Spec.Trial, "err", err)
		return false
	}
	n := ev.ConfirmedAtLeast(AnyCategory, criticalSeverity)
	if n == 0 {
		return false
	}
	r.abort(fmt.Sprintf("kill switch: %d confirmed critical incident(s) of %s since the plan was applied at %s; every user is back on %s",
		n, s.Spec.Candidate, s.StartedAt.Format(time.RFC3339), s.Spec.Baseline), ActorController, "")
	return true
}

// reconcilePaused: a rollout a person paused waits for resume (the kill switch
// above still applies).
func reconcilePaused(r *pass) bool { return r.s.Status == StatusPaused }

// reconcileCompleted: the last step is done; nothing moves any more.
func reconcileCompleted(r *pass) bool { return r.s.Status == StatusCompleted }

// reconcileSteps walks the steps from the current one: traffic steps take effect
// and move on at once; a pause or a gate holds the rollout until it is satisfied.
func (c *Controller) reconcileSteps(ctx context.Context, r *pass) {
	s := r.s
	for range len(s.Spec.Steps) + 1 {
		st := s.CurrentStep()
		if st == nil {
			r.complete()
			return
		}
		switch st.Kind() {
		case KindShadow, KindCanary, KindPilot, KindGeneral:
			s.Traffic, _ = trafficOf(st)
			r.advance("traffic set: "+st.String(), ActorController, "")
		case KindPause:
			if !reconcilePause(r, st.Pause) {
				return
			}
		case KindGate:
			if !c.reconcileGate(ctx, r, st.Gate) {
				return
			}
		default:
			r.wait(fmt.Sprintf("step %d is invalid; apply a corrected plan", s.Step+1))
			return
		}
	}
}

// reconcilePause moves on once a timed pause has elapsed or a person approved;
// it returns false while the rollout must wait.
func reconcilePause(r *pass, p *PauseStep) bool {
	s := r.s
	if s.Approved {
		r.advance("pause ended: promoted by hand", ActorController, "")
		return true
	}
	if p.Duration <= 0 {
		r.wait("paused until a person promotes the rollout (stagegate rollout promote)")
		return false
	}
	until := s.StepStartedAt.Add(p.Duration.D())
	if !r.now.Before(until) {
		r.advance(fmt.Sprintf("pause of %s elapsed", p.Duration), ActorController, "")
		return true
	}
	r.wait(fmt.Sprintf("pausing for %s, until %s", p.Duration, until.Format(time.RFC3339)))
	return false
}

// reconcileGate evaluates the gate on the evidence since the step began: Pass
// moves on (true), Fail aborts, Inconclusive and Error wait and say why.
func (c *Controller) reconcileGate(ctx context.Context, r *pass, g *GateStep) bool {
	s := r.s
	v := c.evaluate(ctx, s, g, r.now)
	prev := s.Gate
	switch v.Outcome {
	case Pass:
		r.advance(v.Summary, ActorController, "")
		return true
	case Fail:
		s.Gate = &v
		r.abort(v.Summary+"; every user is back on "+s.Spec.Baseline, ActorController, "")
		return false
	}
	s.Gate = &v
	if prev == nil || prev.Outcome != v.Outcome || reasonShape(prev.Reasons) != reasonShape(v.Reasons) ||
		r.now.Sub(prev.EvaluatedAt) >= c.cfg.VerdictRefresh {
		r.dirty = true
	}
	r.wait(v.Summary)
	return false
}

// evaluate reads the evidence of the current step and decides gate g.
func (c *Controller) evaluate(ctx context.Context, s *State, g *GateStep, now time.Time) Verdict {
	in := GateInput{
		Gate: *g, Thresholds: s.Spec.GateThresholds(g), Model: s.Spec.Candidate,
		Since: s.StepStartedAt, Now: now, Approved: s.Approved,
	}
	ev, err := c.evidence(ctx, s.Spec.Trial, s.Spec.Candidate, s.StepStartedAt)
	if err != nil {
		return ErrorVerdict(in, err)
	}
	return EvaluateGate(in, ev)
}

func (c *Controller) evidence(ctx context.Context, trial, model string, since time.Time) (*incidents.RolloutEvidence, error) {
	opCtx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	return c.ev.RolloutEvidence(opCtx, trial, model, since)
}

// record appends a transition from the position described by from to the current one.
func (r *pass) record(from, cause, actor, reason string) {
	r.s.History = append(r.s.History, Transition{At: r.now, From: from, To: r.s.label(), Cause: cause, Actor: actor, Reason: reason})
	r.dirty = true
}

// advance moves to the next step.
func (r *pass) advance(cause, actor, reason string) {
	s := r.s
	from := s.label()
	s.Step++
	s.StepStartedAt, s.Approved, s.Gate = r.now, false, nil
	s.Status, s.Message = StatusProgressing, ""
	if s.Step >= len(s.Spec.Steps) {
		s.Step = len(s.Spec.Steps)
		s.Status, s.Message = StatusCompleted, "every step is done"
	}
	r.record(from, cause, actor, reason)
}

// complete marks a rollout past its last step as completed.
func (r *pass) complete() {
	if r.s.Status == StatusCompleted {
		return
	}
	from := r.s.label()
	r.s.Status, r.s.Message = StatusCompleted, "every step is done"
	r.record(from, "every step is done", ActorController, "")
}

// wait holds the rollout at the current step with a message saying why.
func (r *pass) wait(msg string) {
	s := r.s
	if s.Status == StatusWaiting {
		s.Message = msg
		return
	}
	from := s.label()
	s.Status, s.Message = StatusWaiting, msg
	r.record(from, msg, ActorController, "")
}

// abort sends every user back to the baseline.
func (r *pass) abort(cause, actor, reason string) {
	s := r.s
	from := s.label()
	s.Status, s.Message = StatusAborted, cause
	s.Traffic = Traffic{Stage: StageAborted}
	r.record(from, cause, actor, reason)
}

// reasonShape is the gist of a verdict's reasons without their numbers: a new kind
// of reason is written at once, a count that moved waits for the verdict refresh.
func reasonShape(reasons []string) string {
	var b strings.Builder
	for _, r := range reasons {
		for _, c := range r {
			if c < '0' || c > '9' {
				b.WriteRune(c)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
