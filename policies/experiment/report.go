package experiment

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the analysis of an experiment: what a regulator reads before
// concluding it.
type Report struct {
	Experiment string    `json:"experiment"`
	Trial      string    `json:"trial"`
	Hypothesis string    `json:"hypothesis"`
	Run        Run       `json:"run"`
	PlannedEnd time.Time `json:"planned_end,omitzero"`
	AsOf       time.Time `json:"as_of"`
	// Primary is the primary outcome's label; MinimumSample the planned
	// sample per arm in its units.
	Primary       string `json:"primary"`
	MinimumSample int64  `json:"minimum_sample"`
	// Rule is the testing rule, stated plainly.
	Rule     string      `json:"rule"`
	RuleName string      `json:"rule_name"`
	Alpha    float64     `json:"alpha"`
	Arms     []ArmReport `json:"arms"`
	// Descriptive compares each variant with the control on all data so far
	// (95% Newcombe intervals); it is not a test.
	Descriptive []Comparison `json:"descriptive"`
	// Looks are the planned looks with the comparisons of those reached.
	Looks      []Look            `json:"looks"`
	Guardrails []GuardrailResult `json:"guardrails"`
	SRM        SRM               `json:"srm"`
	// DetectableDifference is the smallest absolute difference of the
	// primary rate (times its scale) the planned sample detects with 80%
	// power at the control's rate so far (0 before the control has data).
	DetectableDifference float64 `json:"detectable_difference"`
	// EffectFound: a test look showed a difference; Decided names the look.
	EffectFound bool `json:"effect_found"`
	DecidedAt   int  `json:"decided_at_look,omitempty"`
	// Winner is the arm whose policy did better on the primary outcome,
	// when there is evidence (every outcome here is better lower).
	Winner string `json:"winner,omitempty"`
	// Conclusion is one line a person can act on; it says "not enough
	// evidence" when that is the truth.
	Conclusion string `json:"conclusion"`
	// Notes are caveats (observations of unknown arms, several revisions
	// serving one arm).
	Notes []string `json:"notes,omitempty"`
}

// ArmReport is one arm's numbers.
type ArmReport struct {
	Name    string  `json:"name"`
	Control bool    `json:"control"`
	Share   float64 `json:"share"`
	// Users and Interactions recorded in this arm.
	Users        int64 `json:"users"`
	Interactions int64 `json:"interactions"`
	// PrimaryUnits is the arm's sample in the primary outcome's units.
	PrimaryUnits int64 `json:"primary_units"`
	// Revisions counts interactions by the policy revision that decided them.
	Revisions map[string]int64 `json:"revisions"`
	// Outcomes: the primary first, then each guard-rail's outcome.
	Outcomes []Stat `json:"outcomes"`
}

// Analyze computes the report of an experiment from its data.
func Analyze(def *Definition, run Run, data *Data) *Report {
	asOf := data.AsOf
	arms, unknown := prepare(def, data)
	rep := &Report{
		Experiment: def.Name, Trial: def.Trial, Hypothesis: strings.TrimSpace(def.Hypothesis), Run: run, AsOf: asOf,
		Primary: def.Primary.Label(), MinimumSample: def.MinimumSample, Rule: RuleStatement(def), RuleName: def.Analysis.Rule,
		Alpha: def.Analysis.Alpha, Descriptive: []Comparison{}, Guardrails: []GuardrailResult{},
	}
	if !run.StartedAt.IsZero() {
		rep.PlannedEnd = run.StartedAt.Add(def.Planned)
	}
	if unknown > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d interactions name an arm this definition does not have; they are left out", unknown))
	}
	outcomes := []*Outcome{&def.Primary}
	seen := map[string]bool{def.Primary.Label(): true}
	for i := range def.Guardrails {
		if o := &def.Guardrails[i].Outcome; !seen[o.Label()] {
			seen[o.Label()] = true
			outcomes = append(outcomes, o)
		}
	}
	var control *armData
	primary := map[string]counts{}
	for _, a := range arms {
		ar := ArmReport{Name: a.name, Control: a.control, Share: a.share, Users: int64(len(a.users)), Interactions: int64(len(a.units)), Revisions: a.revs}
		for _, o := range outcomes {
			c := count(o, a, asOf, 0)
			if o == &def.Primary {
				primary[a.name] = c
				ar.PrimaryUnits = c.n
			}
			ar.Outcomes = append(ar.Outcomes, stat(o, c))
		}
		if len(a.revs) > 1 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("arm %s was decided by %d policy revisions (%s): a change of the trial's policy during the experiment touches this arm", a.name, len(a.revs), strings.Join(slices.Sorted(maps.Keys(a.revs)), ", ")))
		}
		rep.Arms = append(rep.Arms, ar)
		if a.control {
			control = a
		}
	}
	rep.SRM = checkSRM(arms)
	rep.Guardrails = checkGuardrails(def, arms, asOf)
	if control == nil {
		rep.Conclusion = "Not enough evidence: the definition has no control arm."
		return rep
	}
	for _, a := range arms {
		if !a.control {
			rep.Descriptive = append(rep.Descriptive, compare(&def.Primary, a.name, control.name, primary[a.name], primary[control.name], 0, 0))
		}
	}
	// The looks: each on the first Units units of every arm.
	rep.Looks = plannedLooks(def)
	for i := range rep.Looks {
		lk := &rep.Looks[i]
		lk.Reached = true
		for _, a := range arms {
			if primary[a.name].n < lk.Units {
				lk.Reached = false
			}
		}
		if !lk.Reached {
			continue
		}
		cc := count(&def.Primary, control, asOf, lk.Units)
		for _, a := range arms {
			if a.control {
				continue
			}
			c := compare(&def.Primary, a.name, control.name, count(&def.Primary, a, asOf, lk.Units), cc, lk.Number, lk.Alpha)
			lk.Comparisons = append(lk.Comparisons, c)
			if c.Significant && !rep.EffectFound {
				rep.EffectFound, rep.DecidedAt = true, lk.Number
			}
		}
		if rep.EffectFound {
			break
		}
	}
	if c := primary[control.name]; c.n > 0 {
		p := float64(c.k) / float64(c.n)
		if p == 0 {
			p = 1 / float64(def.MinimumSample)
		}
		variants := float64(len(def.Arms) - 1)
		rep.DetectableDifference = (zTwoSided(def.Analysis.Alpha/variants) + powerZ) * math.Sqrt(2*p*(1-p)/float64(def.MinimumSample)) * def.Primary.scale()
	}
	rep.Conclusion = conclude(def, rep)
	return rep
}

// conclude writes the one-line conclusion.
func conclude(def *Definition, rep *Report) string {
	var prefix string
	if rep.Run.StopCause == StopByRule {
		prefix = "Stopped by a guard-rail (" + rep.Run.StopReason + "). "
	}
	if rep.SRM.Flagged {
		return prefix + fmt.Sprintf("Not enough evidence: sample-ratio mismatch (users per arm %s against shares %s, chi-square p = %.2g): "+
			"the assignment or the recording is broken, so the arms are not comparable; find the cause before reading any effect.",
			formatUsers(rep), formatShares(def), rep.SRM.PValue)
	}
	unit := unitName(&def.Primary)
	if rep.EffectFound {
		lk := rep.Looks[rep.DecidedAt-1]
		var parts []string
		lowest, best := math.Inf(1), ""
		for _, c := range lk.Comparisons {
			if !c.Significant {
				continue
			}
			verb := "lowers"
			if c.Difference > 0 {
				verb = "raises"
			}
			parts = append(parts, fmt.Sprintf("%s %s %s against %s by %s (%s%% CI %s to %s)", c.Arm, verb, rep.Primary, c.Control,
				num(math.Abs(c.Difference), c.Scale), confText(c.Confidence), signed(c.Lower, c.Scale), signed(c.Upper, c.Scale)))
			if c.Difference < lowest {
				lowest, best = c.Difference, c.Arm
			}
		}
		if lowest < 0 {
			rep.Winner = best
		} else {
			rep.Winner = lk.Comparisons[0].Control
		}
		return prefix + strings.Join(parts, "; ") + fmt.Sprintf(" — %s test at look %d of %d, %s %s per arm, α = %g.",
			strings.ReplaceAll(def.Analysis.Rule, "_", "-"), lk.Number, len(rep.Looks), thousands(lk.Units), unit, def.Analysis.Alpha)
	}
	minN := int64(math.MaxInt64)
	for _, a := range rep.Arms {
		minN = min(minN, a.PrimaryUnits)
	}
	final := rep.Looks[len(rep.Looks)-1]
	if final.Reached {
		var diffs []string
		for _, c := range final.Comparisons {
			diffs = append(diffs, fmt.Sprintf("%s − %s %s, %s%% CI %s to %s", c.Arm, c.Control, signed(c.Difference, c.Scale), confText(c.Confidence), signed(c.Lower, c.Scale), signed(c.Upper, c.Scale)))
		}
		return prefix + fmt.Sprintf("Not enough evidence of a difference in %s at the planned sample of %s %s per arm (%s); a difference smaller than about %s could not be detected.",
			rep.Primary, thousands(def.MinimumSample), unit, strings.Join(diffs, "; "), num(rep.DetectableDifference, 1))
	}
	if rep.Run.Status == StatusStopped || rep.Run.Status == StatusConcluded {
		return prefix + fmt.Sprintf("Not enough evidence: stopped (%s) with %s of the planned %s %s in the smallest arm; no test was run.",
			stopCauseText(rep.Run.StopCause), thousands(minN), thousands(def.MinimumSample), unit)
	}
	return prefix + fmt.Sprintf("Not enough evidence yet: %s of %s %s in the smallest arm; the %s test runs at the planned sample, and the numbers until then are descriptive only.",
		thousands(minN), thousands(def.MinimumSample), unit, strings.ReplaceAll(def.Analysis.Rule, "_", "-"))
}

// confText writes a confidence level in percent with as many decimals as
// its alpha needs: 95, 99.81, 99.9988.
func confText(conf float64) string {
	a := (1 - conf) * 100
	if a <= 0 {
		return "100"
	}
	dec := max(0, int(math.Ceil(-math.Log10(a)))+1)
	s := strconv.FormatFloat(conf*100, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func stopCauseText(c string) string {
	switch c {
	case StopByRule:
		return "by a guard-rail"
	case StopByHand:
		return "by hand"
	case StopPlannedEnd:
		return "at the planned end"
	}
	return "stopped"
}

// unitName names the units of an outcome's sample.
func unitName(o *Outcome) string {
	switch o.Metric {
	case MetricDenied:
		return "requests"
	case MetricAbandonment, MetricRetry:
		return "interactions with a closed window"
	}
	return "answered interactions"
}

func formatUsers(rep *Report) string {
	parts := make([]string, 0, len(rep.Arms))
	for _, a := range rep.Arms {
		parts = append(parts, fmt.Sprintf("%s %s", a.Name, thousands(a.Users)))
	}
	return strings.Join(parts, ", ")
}

func formatShares(def *Definition) string {
	parts := make([]string, 0, len(def.Arms))
	for _, a := range def.Arms {
		parts = append(parts, fmt.Sprintf("%g%%", a.Share))
	}
	return strings.Join(parts, "/")
}

// num renders a rate (already times scale): percentage points for fractions,
// per 1,000 otherwise.
func num(v, scale float64) string {
	if scale == 1 {
		return strconv.FormatFloat(v*100, 'f', 2, 64) + " points"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " per 1,000"
}

func signed(v, scale float64) string {
	if scale == 1 {
		return fmt.Sprintf("%+.2f", v*100)
	}
	return fmt.Sprintf("%+.2f", v)
}

func rate(v, scale float64) string {
	if scale == 1 {
		return fmt.Sprintf("%.2f%%", v*100)
	}
	return fmt.Sprintf("%.2f/1000", v)
}

// WriteText writes the report for a person.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "experiment %s (trial %s): %s", r.Experiment, r.Trial, strings.ToUpper(r.Run.Status))
	if r.Run.StopCause != "" {
		fmt.Fprintf(&b, " — %s: %s", stopCauseText(r.Run.StopCause), r.Run.StopReason)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "hypothesis:  %s\n", r.Hypothesis)
	if !r.Run.StartedAt.IsZero() {
		fmt.Fprintf(&b, "ran:         %s to %s (planned end %s)\n", r.Run.StartedAt.Format(time.RFC3339), r.AsOf.Format(time.RFC3339), r.PlannedEnd.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "primary:     %s; planned sample %s per arm\n", r.Primary, thousands(r.MinimumSample))
	fmt.Fprintf(&b, "rule:        %s\n\n", r.Rule)
	fmt.Fprintf(&b, "CONCLUSION:  %s\n\n", r.Conclusion)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "arm\tshare\tusers\tinteractions\toutcome\tsuccesses/units\trate\t95% CI\tdesign effect")
	for _, a := range r.Arms {
		name := a.Name
		if a.Control {
			name += " (control)"
		}
		for i, s := range a.Outcomes {
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%g%%\t%s\t%s\t", name, a.Share, thousands(a.Users), thousands(a.Interactions))
			} else {
				fmt.Fprint(tw, "\t\t\t\t")
			}
			fmt.Fprintf(tw, "%s\t%s/%s\t%s\t[%s, %s]\t%.2f\n", s.Label, thousands(s.Successes), thousands(s.Units),
				rate(s.Rate, s.Scale), rate(s.Lower, s.Scale), rate(s.Upper, s.Scale), s.DesignEffect)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\ndifferences on all data so far (descriptive, 95% Newcombe; not a test):\n")
	for _, c := range r.Descriptive {
		fmt.Fprintf(&b, "  %s − %s: %s (CI %s to %s)\n", c.Arm, c.Control, signed(c.Difference, c.Scale), signed(c.Lower, c.Scale), signed(c.Upper, c.Scale))
	}
	b.WriteString("\nlooks:\n")
	for _, lk := range r.Looks {
		state := "not reached"
		if lk.Reached {
			state = "reached"
		}
		fmt.Fprintf(&b, "  %d. at %s per arm, α %.4g: %s\n", lk.Number, thousands(lk.Units), lk.Alpha, state)
		for _, c := range lk.Comparisons {
			verdict := "no difference shown"
			if c.Significant {
				verdict = "DIFFERENCE"
			}
			fmt.Fprintf(&b, "       %s − %s: %s (%s%% CI %s to %s) → %s\n", c.Arm, c.Control, signed(c.Difference, c.Scale),
				confText(c.Confidence), signed(c.Lower, c.Scale), signed(c.Upper, c.Scale), verdict)
		}
	}
	if r.DetectableDifference > 0 {
		fmt.Fprintf(&b, "  detectable at the planned sample (80%% power, control rate so far): about %s\n", num(r.DetectableDifference, 1))
	}
	b.WriteString("\nsample ratio: ")
	switch {
	case !r.SRM.Tested:
		b.WriteString("too few users to test yet\n")
	case r.SRM.Flagged:
		fmt.Fprintf(&b, "MISMATCH (chi-square %.2f, df %d, p = %.2g < %g): users per arm do not match the shares\n", r.SRM.ChiSquare, r.SRM.DF, r.SRM.PValue, SRMThreshold)
	default:
		fmt.Fprintf(&b, "ok (chi-square %.2f, df %d, p = %.2g)\n", r.SRM.ChiSquare, r.SRM.DF, r.SRM.PValue)
	}
	if len(r.Guardrails) > 0 {
		b.WriteString("\nguard-rails (all data so far):\n")
		for _, g := range r.Guardrails {
			state := "ok"
			if g.Crossed {
				state = "CROSSED"
			}
			fmt.Fprintf(&b, "  %s, arm %s, %s: %s → %s\n", g.Label, g.Arm, g.Bound, g.Detail, state)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// thousands writes n with thousands separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
