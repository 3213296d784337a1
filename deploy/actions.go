package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Manual actions. Each is recorded in the rollout's history with its actor and
// reason, and written with a compare-and-set like every controller change.

// Apply starts spec on its trial at step 0: a new rollout, or a restart of an
// existing one (its history is kept, its generation counts up). Steps that only
// set traffic take effect at once.
func (c *Controller) Apply(ctx context.Context, spec Spec, actor, reason string) (*State, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	if err := checkActor(actor, reason, false); err != nil {
		return nil, err
	}
	var lastErr error
	for range maxCASAttempts {
		s, err := c.get(ctx, spec.Trial)
		from := "no rollout"
		switch {
		case errors.Is(err, ErrNotFound):
			s = &State{}
		case err != nil:
			return nil, err
		default:
			from = s.label()
		}
		before := len(s.History)
		now := c.clk.Now().UTC()
		s.Generation++
		s.Spec = spec
		s.Status, s.Message, s.Step = StatusProgressing, "", 0
		s.StartedAt, s.StepStartedAt = now, now
		s.Traffic, s.Approved, s.Gate = initialTraffic(), false, nil
		r := &pass{s: s, now: now}
		r.record(from, fmt.Sprintf("plan applied (generation %d)", s.Generation), actor, reason)
		c.reconcile(ctx, s)
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

// Abort sends every user of the trial back to the baseline at once.
func (c *Controller) Abort(ctx context.Context, trial, actor, reason string) (*State, error) {
	if err := checkActor(actor, reason, true); err != nil {
		return nil, err
	}
	return c.change(ctx, trial, func(s *State) (bool, error) {
		if s.Status == StatusAborted {
			return false, fmt.Errorf("%w: the rollout of %s is already aborted", ErrAction, trial)
		}
		r := &pass{s: s, now: c.clk.Now().UTC()}
		r.abort("aborted by hand; every user is back on "+s.Spec.Baseline, actor, reason)
		return true, nil
	})
}

// Pause holds the rollout at its current step until Resume; traffic stays as it
// is, and the kill switch still acts.
func (c *Controller) Pause(ctx context.Context, trial, actor, reason string) (*State, error) {
	if err := checkActor(actor, reason, true); err != nil {
		return nil, err
	}
	return c.change(ctx, trial, func(s *State) (bool, error) {
		if s.Status != StatusProgressing && s.Status != StatusWaiting {
			return false, fmt.Errorf("%w: the rollout of %s is %s; only a progressing or waiting rollout can be paused", ErrAction, trial, s.Status)
		}
		r := &pass{s: s, now: c.clk.Now().UTC()}
		from := s.label()
		s.Status, s.Message = StatusPaused, "paused by "+actor
		r.record(from, "paused by hand", actor, reason)
		return true, nil
	})
}

// Resume continues a paused rollout from where it stopped.
func (c *Controller) Resume(ctx context.Context, trial, actor, reason string) (*State, error) {
	if err := checkActor(actor, reason, true); err != nil {
		return nil, err
	}
	return c.change(ctx, trial, func(s *State) (bool, error) {
		if s.Status != StatusPaused {
			return false, fmt.Errorf("%w: the rollout of %s is %s, not paused", ErrAction, trial, s.Status)
		}
		r := &pass{s: s, now: c.clk.Now().UTC()}
		from := s.label()
		s.Status, s.Message = StatusProgressing, ""
		r.record(from, "resumed by hand", actor, reason)
		c.reconcile(ctx, s)
		return true, nil
	})
}

// Promote is a person's go-ahead at the current step: it ends a pause step, or
// gives the approval a gate asks for (the gate's other conditions must still
// hold: evidence cannot be overruled by hand; abort or apply a new plan instead).
func (c *Controller) Promote(ctx context.Context, trial, actor, reason string) (*State, error) {
	if err := checkActor(actor, reason, true); err != nil {
		return nil, err
	}
	return c.change(ctx, trial, func(s *State) (bool, error) {
		if s.Status != StatusProgressing && s.Status != StatusWaiting {
			return false, fmt.Errorf("%w: the rollout of %s is %s; only a progressing or waiting rollout can be promoted", ErrAction, trial, s.Status)
		}
		st := s.CurrentStep()
		r := &pass{s: s, now: c.clk.Now().UTC()}
		switch {
		case st != nil && st.Kind() == KindPause:
			r.advance("pause ended: promoted by hand", actor, reason)
		case st != nil && st.Kind() == KindGate && st.Gate.Approval && !s.Approved:
			from := s.label()
			s.Approved = true
			r.record(from, "approval given at the gate", actor, reason)
		case st != nil && st.Kind() == KindGate && st.Gate.Approval:
			return false, fmt.Errorf("%w: the gate of %s is already approved; it moves on when its evidence passes: %s", ErrAction, trial, s.Message)
		case st != nil && st.Kind() == KindGate:
			return false, fmt.Errorf("%w: the gate of %s does not ask for approval; it moves on when its evidence passes: %s", ErrAction, trial, s.Message)
		default:
			return false, fmt.Errorf("%w: nothing to promote at %s", ErrAction, s.label())
		}
		c.reconcile(ctx, s)
		return true, nil
	})
}

// Status returns the rollout of a trial; at a gate step, Gate holds a verdict
// evaluated now (live numbers), not the last one written.
func (c *Controller) Status(ctx context.Context, trial string) (*State, error) {
	s, err := c.get(ctx, trial)
	if err != nil {
		return nil, err
	}
	if st := s.CurrentStep(); st != nil && st.Kind() == KindGate && s.Status != StatusAborted {
		v := c.evaluate(ctx, s, st.Gate, c.clk.Now().UTC())
		s.Gate = &v
		if s.Status == StatusWaiting && (v.Outcome == Inconclusive || v.Outcome == Error) {
			s.Message = v.Summary
		}
	}
	return s, nil
}

// List returns every rollout, sorted by trial.
func (c *Controller) List(ctx context.Context) ([]*State, error) {
	kv, err := c.kvOrErr()
	if err != nil {
		return nil, err
	}
	opCtx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	lister, err := kv.ListKeys(opCtx)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	seen := map[string]bool{}
	var keys []string
	for k := range lister.Keys() {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if err := opCtx.Err(); err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	sort.Strings(keys)
	out := make([]*State, 0, len(keys))
	for _, k := range keys {
		s, err := c.get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
