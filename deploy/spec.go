package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stagegate/stagegate/events"
)

// Bounds and defaults of a rollout plan.
const (
	// MaxSpecBytes bounds a rollout plan file.
	MaxSpecBytes = 64 << 10
	// MaxSteps bounds the steps of a plan.
	MaxSteps = 64
	// MaxThresholds bounds the thresholds of a plan or gate.
	MaxThresholds = 32
	// MaxCohorts bounds the cohorts of a pilot step.
	MaxCohorts = 64
	// DefaultConfidence is the confidence level of a gate's Wilson bounds.
	DefaultConfidence = 0.95
	// AnyCategory in a threshold matches incidents of every category.
	AnyCategory = "*"
)

// Spec is a rollout plan as a company writes it (YAML, see examples/rollout.yaml):
// a trial's candidate and baseline and the ordered steps the candidate goes through.
type Spec struct {
	// Trial is the trial id the plan applies to.
	Trial string `yaml:"trial" json:"trial"`
	// Candidate is the model under trial.
	Candidate string `yaml:"candidate" json:"candidate"`
	// Baseline is the model everyone else gets, and everyone after an abort.
	Baseline string `yaml:"baseline" json:"baseline"`
	// FallbackToBaseline lets a request the candidate failed (error, timeout) be
	// served by the baseline (default true).
	FallbackToBaseline *bool `yaml:"fallback_to_baseline,omitempty" json:"fallback_to_baseline,omitempty"`
	// Thresholds are the default risk thresholds of every gate that sets none.
	Thresholds []Threshold `yaml:"thresholds,omitempty" json:"thresholds,omitempty"`
	// Steps run in order; each sets exactly one field.
	Steps []Step `yaml:"steps" json:"steps"`
}

// Step is one step of a plan; exactly one field is set.
type Step struct {
	// Shadow sends a copy of a sample of requests to the candidate; users only
	// ever see the baseline's answers.
	Shadow *ShadowStep `yaml:"shadow,omitempty" json:"shadow,omitempty"`
	// Canary sends a share of users to the candidate.
	Canary *CanaryStep `yaml:"canary,omitempty" json:"canary,omitempty"`
	// Pilot sends users of some cohorts to the candidate.
	Pilot *PilotStep `yaml:"pilot,omitempty" json:"pilot,omitempty"`
	// General sends every user to the candidate.
	General *GeneralStep `yaml:"general,omitempty" json:"general,omitempty"`
	// Pause waits for a duration, or until a person promotes the rollout.
	Pause *PauseStep `yaml:"pause,omitempty" json:"pause,omitempty"`
	// Gate waits until the evidence passes, and aborts the rollout when it fails.
	Gate *GateStep `yaml:"gate,omitempty" json:"gate,omitempty"`

	line int // line of the step in the YAML file, for messages
}

// ShadowStep: the candidate gets a copy of Sample percent of requests.
type ShadowStep struct {
	// Sample is the percentage of requests copied to the candidate, (0, 100].
	Sample float64 `yaml:"sample" json:"sample"`
}

// CanaryStep: Weight percent of users are served by the candidate.
type CanaryStep struct {
	// Weight is the percentage of users on the candidate, (0, 100].
	Weight float64 `yaml:"weight" json:"weight"`
}

// PilotStep: users of Cohorts are served by the candidate.
type PilotStep struct {
	// Cohorts whose users get the candidate (as set on their API keys).
	Cohorts []string `yaml:"cohorts" json:"cohorts"`
	// Weight is the percentage of those users on the candidate (default 100).
	Weight *float64 `yaml:"weight,omitempty" json:"weight,omitempty"`
}

// GeneralStep: every user is served by the candidate.
type GeneralStep struct{}

// PauseStep waits. With a Duration it continues by itself once it has passed;
// without one it waits until a person runs `stagegate rollout promote`.
type PauseStep struct {
	// Duration to wait ("30m", "24h", "7d"); empty waits for a promote.
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
}

// GateStep holds the rollout until the evidence gathered since the gate began
// passes every condition; see EvaluateGate.
type GateStep struct {
	// MinInteractions the candidate must have answered in this step.
	MinInteractions int64 `yaml:"min_interactions,omitempty" json:"min_interactions,omitempty"`
	// MinDuration the gate waits at least.
	MinDuration Duration `yaml:"min_duration,omitempty" json:"min_duration,omitempty"`
	// MaxDuration, when set, fails the gate (and aborts) if it is still
	// inconclusive after this long.
	MaxDuration Duration `yaml:"max_duration,omitempty" json:"max_duration,omitempty"`
	// Confidence of the Wilson bounds (default 0.95).
	Confidence float64 `yaml:"confidence,omitempty" json:"confidence,omitempty"`
	// Thresholds replace the plan's thresholds for this gate.
	Thresholds []Threshold `yaml:"thresholds,omitempty" json:"thresholds,omitempty"`
	// Approval requires a person (the regulator) to promote the rollout once every
	// other condition passes.
	Approval bool `yaml:"approval,omitempty" json:"approval,omitempty"`
}

// Threshold bounds the confirmed-incident rate of one category at or above one
// severity: the upper confidence bound must stay below MaxRate.
type Threshold struct {
	// Category of incidents (pii, unsafe_advice, ...) or "*" for every category.
	Category string `yaml:"category" json:"category"`
	// Severity: incidents of this severity or worse count (default low: all).
	Severity string `yaml:"severity,omitempty" json:"severity,omitempty"`
	// MaxRate is the bound, a fraction of the candidate's interactions in (0, 1).
	MaxRate float64 `yaml:"max_rate" json:"max_rate"`
}

// Duration is a time.Duration written as "90s", "24h" or "7d" in YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration, with whole days as "Nd".
func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// ParseDuration parses a Go duration or a whole number of days ("7d").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("duration %q: want a whole number of days from 0 to 3650", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 90s, 30m, 24h or 7d", s)
	}
	return Duration(d), nil
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a string like 24h or 7d", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like 24h")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Step kinds, as Kind returns them.
const (
	KindShadow  = "shadow"
	KindCanary  = "canary"
	KindPilot   = "pilot"
	KindGeneral = "general"
	KindPause   = "pause"
	KindGate    = "gate"
)

// Kind names the one field a step sets ("" when it sets none or several).
func (s Step) Kind() string {
	kind, n := "", 0
	for _, k := range []struct {
		set  bool
		name string
	}{
		{s.Shadow != nil, KindShadow}, {s.Canary != nil, KindCanary}, {s.Pilot != nil, KindPilot},
		{s.General != nil, KindGeneral}, {s.Pause != nil, KindPause}, {s.Gate != nil, KindGate},
	} {
		if k.set {
			kind, n = k.name, n+1
		}
	}
	if n != 1 {
		return ""
	}
	return kind
}

// String describes a step in a few words ("canary 10%", "gate", "pause 24h").
func (s Step) String() string {
	switch s.Kind() {
	case KindShadow:
		return "shadow " + pct(s.Shadow.Sample) + " of requests"
	case KindCanary:
		return "canary " + pct(s.Canary.Weight) + " of users"
	case KindPilot:
		w := "100"
		if s.Pilot.Weight != nil {
			w = strconv.FormatFloat(*s.Pilot.Weight, 'f', -1, 64)
		}
		return "pilot " + w + "% of cohorts " + strings.Join(s.Pilot.Cohorts, ",")
	case KindGeneral:
		return "general (100% of users)"
	case KindPause:
		if s.Pause.Duration == 0 {
			return "pause until promoted"
		}
		return "pause " + s.Pause.Duration.String()
	case KindGate:
		return "gate"
	}
	return "invalid step"
}

func pct(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) + "%" }

// toScale converts a percentage to 1/WeightScale, rounding to the nearest unit.
func toScale(percent float64) int {
	return int(math.Round(percent * WeightScale / 100))
}

// Fallback reports the effective fallback_to_baseline (default true).
func (s *Spec) Fallback() bool { return s.FallbackToBaseline == nil || *s.FallbackToBaseline }

// GateThresholds returns the thresholds a gate applies: its own, or the plan's.
func (s *Spec) GateThresholds(g *GateStep) []Threshold {
	if len(g.Thresholds) > 0 {
		return g.Thresholds
	}
	return s.Thresholds
}

// ParseSpec decodes a rollout plan from YAML, rejecting unknown fields, and
// validates it; name is used in error messages, which carry line numbers.
func ParseSpec(name string, raw []byte) (Spec, error) {
	if len(raw) > MaxSpecBytes {
		return Spec{}, fmt.Errorf("%w: %s: larger than %d bytes", ErrInvalidSpec, name, MaxSpecBytes)
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return Spec{}, fmt.Errorf("%w: %s: the file is empty", ErrInvalidSpec, name)
		}
		return Spec{}, fmt.Errorf("%w: %s: %s", ErrInvalidSpec, name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Spec{}, fmt.Errorf("%w: %s: want exactly one YAML document", ErrInvalidSpec, name)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return Spec{}, fmt.Errorf("%w: %s: %s", ErrInvalidSpec, name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	annotateSteps(&root, s.Steps)
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("%w: %s:\n%w", ErrInvalidSpec, name, err)
	}
	return s, nil
}

// annotateSteps records each step's line, and turns "general:" and "pause:"
// written without a value into empty steps (the decoder leaves them nil).
func annotateSteps(root *yaml.Node, steps []Step) {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return
	}
	var seq *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "steps" {
			seq = doc.Content[i+1]
		}
	}
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return
	}
	for i, item := range seq.Content {
		if i >= len(steps) {
			return
		}
		steps[i].line = item.Line
		if item.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(item.Content); j += 2 {
			if item.Content[j+1].Tag != "!!null" {
				continue
			}
			switch item.Content[j].Value {
			case KindGeneral:
				steps[i].General = &GeneralStep{}
			case KindPause:
				steps[i].Pause = &PauseStep{}
			}
		}
	}
}

// Validate reports every problem of a plan at once.
func (s *Spec) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, f := range []struct{ what, v string }{{"trial", s.Trial}, {"candidate", s.Candidate}, {"baseline", s.Baseline}} {
		if !events.ValidToken(f.v) {
			add("%s %q: want 1-64 letters, digits, '-' or '_'", f.what, f.v)
		}
	}
	if s.Candidate != "" && s.Candidate == s.Baseline {
		add("candidate and baseline are both %q: they must differ", s.Candidate)
	}
	errs = append(errs, validateThresholds("thresholds", s.Thresholds)...)
	switch {
	case len(s.Steps) == 0:
		add("steps: at least one step is required")
	case len(s.Steps) > MaxSteps:
		add("steps: %d steps, at most %d", len(s.Steps), MaxSteps)
	}
	for i := range s.Steps {
		if i >= MaxSteps {
			break
		}
		errs = append(errs, s.Steps[i].validate(stepWhere(i, s.Steps[i].line))...)
	}
	return errors.Join(errs...)
}

func stepWhere(i, line int) string {
	if line > 0 {
		return fmt.Sprintf("steps[%d] (line %d)", i, line)
	}
	return fmt.Sprintf("steps[%d]", i)
}

func (st *Step) validate(where string) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(where+": "+format, a...)) }
	percent := func(field string, p float64) {
		if math.IsNaN(p) || p <= 0 || p > 100 {
			add("%s %v: want a percentage above 0 and at most 100", field, p)
		} else if toScale(p) == 0 {
			add("%s %v: below the resolution of 0.01%%", field, p)
		}
	}
	switch st.Kind() {
	case "":
		add("set exactly one of shadow, canary, pilot, general, pause, gate")
	case KindShadow:
		percent("shadow.sample", st.Shadow.Sample)
	case KindCanary:
		percent("canary.weight", st.Canary.Weight)
	case KindPilot:
		if len(st.Pilot.Cohorts) == 0 || len(st.Pilot.Cohorts) > MaxCohorts {
			add("pilot.cohorts: list 1 to %d cohorts", MaxCohorts)
		}
		seen := map[string]bool{}
		for j, c := range st.Pilot.Cohorts {
			if c == "" || len(c) > maxCohortLen {
				add("pilot.cohorts[%d]: must be 1-%d bytes", j, maxCohortLen)
			}
			if seen[c] {
				add("pilot.cohorts[%d] %q: listed twice", j, c)
			}
			seen[c] = true
		}
		if st.Pilot.Weight != nil {
			percent("pilot.weight", *st.Pilot.Weight)
		}
	case KindPause:
		if st.Pause.Duration < 0 {
			add("pause.duration: must not be negative")
		}
	case KindGate:
		g := st.Gate
		if g.MinInteractions < 0 {
			add("gate.min_interactions: must not be negative")
		}
		if g.MinDuration < 0 || g.MaxDuration < 0 {
			add("gate.min_duration and gate.max_duration: must not be negative")
		}
		if g.MaxDuration > 0 && g.MaxDuration <= g.MinDuration {
			add("gate.max_duration %s: must be longer than min_duration %s", g.MaxDuration, g.MinDuration)
		}
		if g.Confidence != 0 && (math.IsNaN(g.Confidence) || g.Confidence < 0.5 || g.Confidence > 0.9999) {
			add("gate.confidence %v: want a level from 0.5 to 0.9999 (default 0.95)", g.Confidence)
		}
		for _, e := range validateThresholds("gate.thresholds", g.Thresholds) {
			errs = append(errs, fmt.Errorf("%s: %w", where, e))
		}
	}
	return errs
}

func validateThresholds(field string, ts []Threshold) []error {
	var errs []error
	if len(ts) > MaxThresholds {
		return []error{fmt.Errorf("%s: %d thresholds, at most %d", field, len(ts), MaxThresholds)}
	}
	seen := map[[2]string]bool{}
	for i, t := range ts {
		if t.Category != AnyCategory && !events.ValidToken(t.Category) {
			errs = append(errs, fmt.Errorf("%s[%d].category %q: want a category name or \"*\"", field, i, t.Category))
		}
		if t.Severity != "" && events.SeverityRank(t.Severity) == 0 {
			errs = append(errs, fmt.Errorf("%s[%d].severity %q: want low, medium, high or critical", field, i, t.Severity))
		}
		if math.IsNaN(t.MaxRate) || t.MaxRate <= 0 || t.MaxRate >= 1 {
			errs = append(errs, fmt.Errorf("%s[%d].max_rate %v: want a fraction above 0 and below 1 (0.01 = 1%%)", field, i, t.MaxRate))
		}
		key := [2]string{t.Category, t.minSeverity()}
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s[%d]: category %s at severity %s listed twice", field, i, key[0], key[1]))
		}
		seen[key] = true
	}
	return errs
}

// minSeverity is the threshold's severity, low when unset.
func (t Threshold) minSeverity() string {
	if t.Severity == "" {
		return events.SeverityLow
	}
	return t.Severity
}
