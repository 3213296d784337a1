package experiment

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// simDef is a two-arm experiment on the confirmed-incident rate.
func simDef(tb testing.TB, rule string, minimum int64, shareB float64) *Definition {
	tb.Helper()
	looks := ""
	if rule == RuleSequential {
		looks = ", looks: 5"
	}
	return mustParse(tb, fmt.Sprintf(`name: sim
trial: t1
hypothesis: arm b lowers the confirmed-incident rate
arms:
  - {name: a, control: true, share: %g}
  - {name: b, share: %g, variant: {data: {}}}
primary: {metric: confirmed_incident_rate}
guardrails:
  - {metric: denied_share, max_increase: 0.05}
minimum_sample: %d
planned_duration: 14d
analysis: {rule: %s%s}
`, 100-shareB, shareB, minimum, rule, looks))
}

// population scripts users: their arm comes from the real assignment, each
// sends 1..maxPer interactions, and each answered interaction gets a
// confirmed incident with the user's propensity. Propensities vary between
// users when clustered (a few risky users), which is what the design effect
// must absorb.
type population struct {
	users     int
	maxPer    int
	pA, pB    float64
	clustered bool
	// risky is the share of users with 5 times the rate when clustered
	// (default 10%); heavy makes them send up to maxPer interactions while
	// the others send one.
	risky  float64
	heavy  bool
	denied float64
	// dropB drops this share of arm b's users from the record (an injected
	// sample-ratio mismatch).
	dropB float64
}

func (p population) data(def *Definition, seed uint64) *Data {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	asg := NewAssigner(def)
	d := &Data{Observations: make([]Observation, 0, p.users*(1+p.maxPer)/2)}
	at := t0
	n := 0
	prefix := "u_" + strconv.FormatUint(seed, 10) + "_"
	revs := map[string]string{"a": "rev-a", "b": "rev-b"}
	for u := range p.users {
		user := prefix + strconv.Itoa(u)
		arm := asg.ArmOf(user, "")
		if arm == "" {
			continue
		}
		if arm == "b" && r.Float64() < p.dropB {
			continue
		}
		rate := p.pA
		if arm == "b" {
			rate = p.pB
		}
		k := 1 + r.IntN(p.maxPer)
		if p.clustered {
			risky := p.risky
			if risky == 0 {
				risky = 0.1
			}
			if r.Float64() < risky {
				rate *= 5
			} else {
				rate *= (1 - 5*risky) / (1 - risky) // the mean over users stays the arm's rate
				if p.heavy {
					k = 1
				}
			}
		}
		for range k {
			n++
			at = at.Add(time.Second)
			o := Observation{InteractionID: strconv.Itoa(n), User: user, Arm: arm, VariantRevision: revs[arm],
				Status: events.StatusOK, StartedAt: at, RecordedAt: at, LatencyMS: 100}
			if r.Float64() < p.denied {
				o.Status = events.StatusDenied
			} else if r.Float64() < rate {
				d.Incidents = append(d.Incidents, Incident{InteractionID: o.InteractionID, Category: "unsafe_advice", Severity: "high", Status: incidents.StatusConfirmed})
			} else if r.IntN(50) == 0 { // a flagged answer a reviewer dismissed: never counted
				d.Incidents = append(d.Incidents, Incident{InteractionID: o.InteractionID, Category: "unsafe_advice", Severity: "high", Status: incidents.StatusDismissed})
			}
			d.Observations = append(d.Observations, o)
		}
	}
	d.AsOf = at.Add(time.Hour)
	return d
}

var runRunning = Run{Status: StatusRunning, StartedAt: t0}

func TestSimulatedEffectFoundAtPlannedSample(t *testing.T) {
	def := simDef(t, RuleFixedHorizon, 2000, 50)
	pop := population{users: 4600, maxPer: 1, pA: 0.06, pB: 0.03}
	rep := Analyze(def, runRunning, pop.data(def, 1))
	if !rep.Looks[0].Reached || !rep.EffectFound || rep.Winner != "b" || rep.DecidedAt != 1 {
		t.Fatalf("effect not found: %s\n%+v", rep.Conclusion, rep.Looks)
	}
	c := rep.Looks[0].Comparisons[0]
	if c.VariantUnits != 2000 || c.ControlUnits != 2000 || c.Difference >= 0 || c.Upper >= 0 {
		t.Errorf("comparison %+v", c)
	}
	if !strings.HasPrefix(rep.Conclusion, "b lowers confirmed_incident_rate against a by ") || !strings.Contains(rep.Conclusion, "look 1 of 1, 2,000 answered interactions per arm") {
		t.Errorf("conclusion %q", rep.Conclusion)
	}
	if rep.SRM.Flagged || !rep.SRM.Tested {
		t.Errorf("SRM %+v", rep.SRM)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "CONCLUSION:  b lowers") || !strings.Contains(text.String(), "DIFFERENCE") {
		t.Errorf("text report:\n%s", text.String())
	}

	// Power over seeds: the planned sample was sized for it (≈99%).
	found := 0
	const reps = 100
	for seed := uint64(100); seed < 100+reps; seed++ {
		if Analyze(def, runRunning, pop.data(def, seed)).EffectFound {
			found++
		}
	}
	if found < 90 {
		t.Errorf("effect found in %d of %d simulated experiments, want at least 90", found, reps)
	}
}

func TestInterimIsNotATest(t *testing.T) {
	def := simDef(t, RuleFixedHorizon, 2000, 50)
	rep := Analyze(def, runRunning, population{users: 1000, maxPer: 1, pA: 0.06, pB: 0.01}.data(def, 7))
	if rep.Looks[0].Reached || rep.EffectFound || len(rep.Looks[0].Comparisons) != 0 {
		t.Fatalf("tested before the planned sample: %+v", rep.Looks)
	}
	if !strings.HasPrefix(rep.Conclusion, "Not enough evidence yet:") || !strings.Contains(rep.Conclusion, "of 2,000 answered interactions in the smallest arm") {
		t.Errorf("conclusion %q", rep.Conclusion)
	}
	// The descriptive interval is shown all the same, and is plainly labelled.
	if len(rep.Descriptive) != 1 || rep.Descriptive[0].Look != 0 || rep.Descriptive[0].Significant {
		t.Errorf("descriptive %+v", rep.Descriptive)
	}
	// Stopped early by hand: still not enough evidence, and it says why.
	stopped := Run{Status: StatusStopped, StartedAt: t0, StoppedAt: t0.Add(time.Hour), StopCause: StopByHand, StopReason: "budget"}
	rep = Analyze(def, stopped, population{users: 1000, maxPer: 1, pA: 0.06, pB: 0.01}.data(def, 7))
	if !strings.HasPrefix(rep.Conclusion, "Not enough evidence: stopped (by hand)") {
		t.Errorf("conclusion %q", rep.Conclusion)
	}
}

// binomialUpper is the smallest c with P(X > c) < tail for X ~ Bin(n, p).
func binomialUpper(n int, p, tail float64) int {
	cdf := 0.0
	for c := 0; c <= n; c++ {
		lg1, _ := math.Lgamma(float64(n + 1))
		lg2, _ := math.Lgamma(float64(c + 1))
		lg3, _ := math.Lgamma(float64(n - c + 1))
		cdf += math.Exp(lg1 - lg2 - lg3 + float64(c)*math.Log(p) + float64(n-c)*math.Log1p(-p))
		if 1-cdf < tail {
			return c
		}
	}
	return n
}

// TestAAFalsePositiveRate is a statistical test of the analysis itself: over
// many seeded A/A experiments (identical variants), a difference is found at
// no more than the stated error rate, within the binomial bound; and the
// sample-ratio check fires no more than its own level. Users send several
// interactions each and some are riskier than others.
func TestAAFalsePositiveRate(t *testing.T) {
	const reps = 400
	for _, rule := range []string{RuleFixedHorizon, RuleSequential} {
		t.Run(rule, func(t *testing.T) {
			def := simDef(t, rule, 500, 50)
			pop := population{users: 760, maxPer: 3, pA: 0.05, pB: 0.05, clustered: true}
			fp, srm, reached := 0, 0, 0
			for seed := uint64(1); seed <= reps; seed++ {
				rep := Analyze(def, runRunning, pop.data(def, seed))
				if rep.Looks[len(rep.Looks)-1].Reached {
					reached++
				}
				if rep.EffectFound {
					fp++
				}
				if rep.SRM.Flagged {
					srm++
				}
			}
			if reached < reps*9/10 {
				t.Fatalf("the planned sample was reached in only %d of %d runs", reached, reps)
			}
			bound := binomialUpper(reps, def.Analysis.Alpha, 0.001)
			t.Logf("%s: %d of %d A/A experiments found a difference (α = %g, bound %d); SRM flagged %d", rule, fp, reps, def.Analysis.Alpha, bound, srm)
			if fp > bound {
				t.Errorf("%d of %d A/A experiments found a difference: above the binomial bound %d for α = %g", fp, reps, bound, def.Analysis.Alpha)
			}
			if b := binomialUpper(reps, SRMThreshold, 0.001); srm > b {
				t.Errorf("SRM flagged in %d of %d correct experiments, bound %d", srm, reps, b)
			}
		})
	}
}

// TestDesignEffectKeepsErrorRate: when a few risky users send most of the
// interactions, units are not independent and the plain binomial interval is
// too narrow; the A/A false-positive rate of a naive analysis rises well above
// α, while the report's (design effect) stays within the bound.
func TestDesignEffectKeepsErrorRate(t *testing.T) {
	const reps = 400
	def := simDef(t, RuleFixedHorizon, 500, 50)
	pop := population{users: 720, maxPer: 40, pA: 0.05, pB: 0.05, clustered: true, risky: 0.1, heavy: true}
	z := zTwoSided(def.Analysis.Alpha)
	fp, naive := 0, 0
	for seed := uint64(1); seed <= reps; seed++ {
		d := pop.data(def, seed)
		rep := Analyze(def, runRunning, d)
		if !rep.Looks[0].Reached {
			t.Fatalf("seed %d: planned sample not reached", seed)
		}
		if rep.EffectFound {
			fp++
		}
		arms, _ := prepare(def, d)
		ca := count(&def.Primary, arms[0], d.AsOf, def.MinimumSample)
		cb := count(&def.Primary, arms[1], d.AsOf, def.MinimumSample)
		if _, lo, hi := Newcombe(cb.k, cb.n, ca.k, ca.n, z); lo > 0 || hi < 0 {
			naive++
		}
	}
	bound := binomialUpper(reps, def.Analysis.Alpha, 0.001)
	t.Logf("A/A with heavy risky users: report %d of %d, naive binomial %d of %d (bound %d)", fp, reps, naive, reps, bound)
	if fp > bound {
		t.Errorf("report found a difference in %d of %d A/A experiments, above the bound %d", fp, reps, bound)
	}
	if naive <= bound {
		t.Errorf("the naive analysis stayed within the bound (%d of %d): the population does not exercise clustering", naive, reps)
	}
}

func TestSampleRatioMismatchFlagged(t *testing.T) {
	def := simDef(t, RuleFixedHorizon, 1000, 50)
	// 15% of arm b's users never reach the record (say, a gateway that
	// fails them before recording): the arms stop being comparable.
	rep := Analyze(def, runRunning, population{users: 4000, maxPer: 1, pA: 0.05, pB: 0.05, dropB: 0.15}.data(def, 11))
	if !rep.SRM.Tested || !rep.SRM.Flagged || rep.SRM.PValue >= SRMThreshold {
		t.Fatalf("SRM not flagged: %+v", rep.SRM)
	}
	if rep.EffectFound || !strings.HasPrefix(rep.Conclusion, "Not enough evidence: sample-ratio mismatch") {
		t.Errorf("conclusion %q", rep.Conclusion)
	}
	// Unequal planned shares are not a mismatch.
	def = simDef(t, RuleFixedHorizon, 500, 20)
	rep = Analyze(def, runRunning, population{users: 4000, maxPer: 1, pA: 0.05, pB: 0.05}.data(def, 11))
	if rep.SRM.Flagged || rep.Arms[1].Users > rep.Arms[0].Users/3 {
		t.Errorf("80/20 split flagged or wrong: %+v", rep.SRM)
	}
}

func TestGuardrails(t *testing.T) {
	def := mustParse(t, `name: g
trial: t1
hypothesis: h
arms:
  - {name: a, control: true, share: 50}
  - {name: b, share: 50, variant: {data: {}}}
primary: {metric: confirmed_incident_rate}
guardrails:
  - {metric: denied_share, max_increase: 0.05}
  - {metric: confirmed_incident_rate, min_severity: critical, max_count: 0}
  - {metric: latency_over, threshold_ms: 500, max: 0.5}
minimum_sample: 100
planned_duration: 1d
`)
	data := population{users: 400, maxPer: 1, pA: 0.01, pB: 0.01}.data(def, 5)
	rep := Analyze(def, runRunning, data)
	if len(rep.Crossed()) != 0 || len(rep.Guardrails) != 3 {
		t.Fatalf("guard-rails %+v", rep.Guardrails)
	}
	// Arm b denies a third of its requests: the increase guard-rail crosses.
	for i := range data.Observations {
		if o := &data.Observations[i]; o.Arm == "b" && i%3 == 0 {
			o.Status = events.StatusDenied
		}
	}
	// One confirmed critical incident in arm b: the count guard-rail crosses.
	for _, o := range data.Observations {
		if o.Arm == "b" && o.Status == events.StatusOK {
			data.Incidents = append(data.Incidents, Incident{InteractionID: o.InteractionID, Category: "self_harm", Severity: "critical", Status: incidents.StatusConfirmed})
			break
		}
	}
	rep = Analyze(def, runRunning, data)
	crossed := rep.Crossed()
	if len(crossed) != 2 || crossed[0].Index != 0 || crossed[1].Index != 1 || crossed[1].Value != 1 || !strings.Contains(crossed[0].Detail, "Newcombe") {
		t.Errorf("crossed %+v", crossed)
	}
}

func TestAbandonmentAndRetry(t *testing.T) {
	def := mustParse(t, `name: ab
trial: t1
hypothesis: h
arms:
  - {name: a, control: true, share: 50}
  - {name: b, share: 50, variant: {data: {}}}
primary: {metric: abandonment_rate, window: 10m}
guardrails:
  - {metric: retry_rate, window: 2m, max: 1}
minimum_sample: 1
planned_duration: 1d
`)
	asg := NewAssigner(def)
	var userA string
	for i := 0; userA == ""; i++ {
		if u := fmt.Sprintf("u%d", i); asg.ArmOf(u, "") == "a" {
			userA = u
		}
	}
	obs := func(id string, at time.Duration) Observation {
		return Observation{InteractionID: id, User: userA, Arm: "a", Status: events.StatusOK, StartedAt: t0.Add(at)}
	}
	// At 0, back at 1m (a retry, not abandoned); at 1m, back at 30m (not a
	// retry, abandoned: more than 10m); at 30m, never back (abandoned); at
	// 55m, its 10m window still open at AsOf: not counted for abandonment
	// (its 2m retry window has closed: counted, no retry).
	data := &Data{AsOf: t0.Add(60 * time.Minute), Observations: []Observation{obs("i3", 30*time.Minute), obs("i1", 0), obs("i2", time.Minute), obs("i4", 55*time.Minute)}}
	rep := Analyze(def, runRunning, data)
	ab, re := rep.Arms[0].Outcomes[0], rep.Arms[0].Outcomes[1]
	if ab.Units != 3 || ab.Successes != 2 || re.Units != 4 || re.Successes != 1 {
		t.Errorf("abandonment %d/%d, retry %d/%d", ab.Successes, ab.Units, re.Successes, re.Units)
	}
}
