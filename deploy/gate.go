package deploy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
)

// Outcome is what a gate concluded.
type Outcome string

// Gate outcomes.
const (
	// Pass: every condition holds; the rollout moves on.
	Pass Outcome = "pass"
	// Fail: the evidence shows the candidate is over a threshold (or the gate
	// stayed inconclusive past max_duration); the rollout aborts to the baseline.
	Fail Outcome = "fail"
	// Inconclusive: not enough evidence yet, incidents await review, or approval is
	// missing; the rollout waits and says why.
	Inconclusive Outcome = "inconclusive"
	// Error: the evidence could not be read; the rollout waits.
	Error Outcome = "error"
)

// RateCheck is one threshold's evaluation, with every number needed to recompute it.
type RateCheck struct {
	// Category and Severity (this severity or worse) of the counted incidents.
	Category string `json:"category"`
	Severity string `json:"severity"`
	// Confirmed incidents out of Interactions answered by the candidate.
	Confirmed    int64 `json:"confirmed"`
	Interactions int64 `json:"interactions"`
	// Rate is Confirmed/Interactions; Lower and Upper the Wilson bounds at
	// Confidence (normal quantile Z).
	Rate       float64 `json:"rate"`
	Lower      float64 `json:"lower"`
	Upper      float64 `json:"upper"`
	Confidence float64 `json:"confidence"`
	Z          float64 `json:"z"`
	// MaxRate is the threshold the upper bound must stay below.
	MaxRate float64 `json:"max_rate"`
	Outcome Outcome `json:"outcome"`
	// Explanation says it in words, with the numbers.
	Explanation string `json:"explanation"`
}

// Verdict is a gate's evaluation. It lists every input number, so a reviewer can
// check the outcome by hand.
type Verdict struct {
	Outcome Outcome `json:"outcome"`
	// Summary is one sentence; Reasons lists every condition not (yet) met.
	Summary string   `json:"summary"`
	Reasons []string `json:"reasons,omitempty"`
	// Model is the candidate; Since the start of the evidence window (the step's start).
	Model       string    `json:"model"`
	Since       time.Time `json:"since"`
	EvaluatedAt time.Time `json:"evaluated_at"`
	// Interactions the candidate answered since Since, against MinInteractions.
	Interactions    int64 `json:"interactions"`
	MinInteractions int64 `json:"min_interactions"`
	// Elapsed time in the step, against MinDuration and MaxDuration (0: none).
	Elapsed     Duration `json:"elapsed"`
	MinDuration Duration `json:"min_duration"`
	MaxDuration Duration `json:"max_duration,omitempty"`
	// Rates has one check per threshold.
	Rates []RateCheck `json:"rates"`
	// UnresolvedSevere high or critical incidents of the candidate await review.
	UnresolvedSevere    int64    `json:"unresolved_severe"`
	UnresolvedSevereIDs []string `json:"unresolved_severe_ids,omitempty"`
	// ApprovalRequired and Approved: the regulator's promote.
	ApprovalRequired bool `json:"approval_required"`
	Approved         bool `json:"approved"`
	// Error is the evidence read failure of an Error outcome.
	Error string `json:"error,omitempty"`
}

// GateInput is what EvaluateGate needs besides the evidence.
type GateInput struct {
	// Gate is the step's gate; Thresholds the thresholds it applies.
	Gate       GateStep
	Thresholds []Threshold
	// Model is the candidate; Since the start of the step; Now the current time.
	Model string
	Since time.Time
	Now   time.Time
	// Approved is true once a person promoted the rollout at this gate.
	Approved bool
}

// ErrorVerdict is the verdict of a gate whose evidence could not be read.
func ErrorVerdict(in GateInput, err error) Verdict {
	return Verdict{
		Outcome: Error, Summary: "gate error: the evidence could not be read: " + err.Error(),
		Model: in.Model, Since: in.Since, EvaluatedAt: in.Now, Error: err.Error(),
		MinInteractions: in.Gate.MinInteractions, MinDuration: in.Gate.MinDuration, MaxDuration: in.Gate.MaxDuration,
		ApprovalRequired: in.Gate.Approval, Approved: in.Approved, Rates: []RateCheck{},
	}
}

// EvaluateGate decides a gate from the evidence gathered since the step began:
//
//   - each threshold: with k confirmed incidents (of the category, at or above the
//     severity) in n candidate interactions, the Wilson interval [lower, upper] at
//     the gate's confidence. upper < max_rate passes; once n ≥ min_interactions,
//     lower > max_rate fails (the rate is above the bound even at its most
//     favourable); anything else is inconclusive (more evidence needed);
//   - n ≥ min_interactions and time in step ≥ min_duration;
//   - no high or critical incident of the candidate awaiting review;
//   - the regulator's approval, when the gate asks for it.
//
// Any failing threshold fails the gate; all conditions met passes it; otherwise
// it is inconclusive, and fails once max_duration (when set) has passed.
func EvaluateGate(in GateInput, ev *incidents.RolloutEvidence) Verdict {
	g := in.Gate
	conf := g.Confidence
	if conf == 0 {
		conf = DefaultConfidence
	}
	z := ZForConfidence(conf)
	elapsed := max(0, in.Now.Sub(in.Since))
	v := Verdict{
		Model: in.Model, Since: in.Since, EvaluatedAt: in.Now,
		Interactions: ev.Interactions, MinInteractions: g.MinInteractions,
		Elapsed: Duration(elapsed.Truncate(time.Second)), MinDuration: g.MinDuration, MaxDuration: g.MaxDuration,
		UnresolvedSevere: ev.UnresolvedSevere, UnresolvedSevereIDs: ev.UnresolvedSevereIDs,
		ApprovalRequired: g.Approval, Approved: in.Approved, Rates: []RateCheck{},
	}
	enough := ev.Interactions >= g.MinInteractions
	var failed []string
	for _, t := range in.Thresholds {
		rc := rateCheck(t, ev, conf, z, enough)
		v.Rates = append(v.Rates, rc)
		switch rc.Outcome {
		case Fail:
			failed = append(failed, rc.Explanation)
		case Inconclusive:
			v.Reasons = append(v.Reasons, rc.Explanation)
		}
	}
	if len(failed) > 0 {
		v.Outcome, v.Reasons = Fail, failed
		v.Summary = "gate failed: " + strings.Join(failed, "; ")
		return v
	}
	if !enough {
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d of %d required interactions so far", ev.Interactions, g.MinInteractions))
	}
	if elapsed < g.MinDuration.D() {
		v.Reasons = append(v.Reasons, fmt.Sprintf("%s of the minimum %s in this step have passed", Duration(elapsed.Truncate(time.Second)), g.MinDuration))
	}
	if ev.UnresolvedSevere > 0 {
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d high or critical incident(s) await review (%s)", ev.UnresolvedSevere, strings.Join(ev.UnresolvedSevereIDs, ", ")))
	}
	if len(v.Reasons) == 0 && g.Approval && !in.Approved {
		v.Reasons = append(v.Reasons, "every condition holds; waiting for the regulator's approval (stagegate rollout promote)")
	}
	if len(v.Reasons) == 0 {
		v.Outcome = Pass
		v.Summary = fmt.Sprintf("gate passed: %d interactions over %s", ev.Interactions, v.Elapsed)
		for _, rc := range v.Rates {
			v.Summary += "; " + rc.Explanation
		}
		return v
	}
	if g.MaxDuration > 0 && elapsed >= g.MaxDuration.D() {
		v.Outcome = Fail
		v.Summary = fmt.Sprintf("gate failed: still inconclusive after max_duration %s: %s", g.MaxDuration, strings.Join(v.Reasons, "; "))
		return v
	}
	v.Outcome = Inconclusive
	v.Summary = "gate inconclusive: " + strings.Join(v.Reasons, "; ")
	return v
}

// rateCheck evaluates one threshold; enough says min_interactions is reached.
func rateCheck(t Threshold, ev *incidents.RolloutEvidence, conf, z float64, enough bool) RateCheck {
	sev := t.minSeverity()
	k, n := ev.ConfirmedAtLeast(t.Category, sev), ev.Interactions
	lo, hi := Wilson(k, n, z)
	rc := RateCheck{
		Category: t.Category, Severity: sev, Confirmed: k, Interactions: n,
		Lower: lo, Upper: hi, Confidence: conf, Z: z, MaxRate: t.MaxRate,
	}
	if n > 0 {
		rc.Rate = float64(k) / float64(n)
	}
	what := fmt.Sprintf("%s incidents (%s or worse): %d confirmed of %d interactions (rate %s, %s%% Wilson bounds %s..%s, max %s)",
		t.Category, sev, k, n, fnum(rc.Rate), fnum(conf*100), fnum(lo), fnum(hi), fnum(t.MaxRate))
	switch {
	case n > 0 && hi < t.MaxRate:
		rc.Outcome, rc.Explanation = Pass, what+": upper bound below max"
	case enough && n > 0 && lo > t.MaxRate:
		rc.Outcome, rc.Explanation = Fail, what+": even the lower bound is above max"
	case n == 0:
		rc.Outcome, rc.Explanation = Inconclusive, what+": no interactions yet"
	default:
		rc.Outcome, rc.Explanation = Inconclusive, what+": upper bound not below max yet"
	}
	return rc
}

// fnum formats a number with at most 4 decimals.
func fnum(f float64) string {
	s := strconv.FormatFloat(f, 'f', 4, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// criticalSeverity is the severity whose confirmation trips the kill switch.
const criticalSeverity = events.SeverityCritical
