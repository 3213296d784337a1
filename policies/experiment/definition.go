package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Schema names the version of the experiment definition format.
const Schema = "stagegate.experiment.v1"

// Outcome metrics an experiment can measure. Each is a rate over a unit the
// analysis counts per arm (README.md, "For regulators", lists them).
const (
	// MetricConfirmedIncidents: answered interactions (status ok or partial)
	// with an incident a reviewer confirmed, of a category (or any) and at
	// least a severity.
	MetricConfirmedIncidents = "confirmed_incident_rate"
	// MetricDenied: requests the policy denied, of all requests.
	MetricDenied = "denied_share"
	// MetricUserReports: user-report incidents (not dismissed) per 1,000
	// answered interactions.
	MetricUserReports = "user_reports_per_1000"
	// MetricAbandonment: interactions after which the user did not come back
	// within the window, of those whose window has passed.
	MetricAbandonment = "abandonment_rate"
	// MetricRetry: interactions followed by another of the same user within
	// the window (a retry), of those whose window has passed.
	MetricRetry = "retry_rate"
	// MetricLatencyOver: answered interactions slower than threshold_ms end to
	// end.
	MetricLatencyOver = "latency_over"
)

var metrics = []string{MetricConfirmedIncidents, MetricDenied, MetricUserReports, MetricAbandonment, MetricRetry, MetricLatencyOver}

// Testing rules of the analysis.
const (
	// RuleFixedHorizon tests once, on the first minimum_sample units of every
	// arm; data before that point is shown but never tested.
	RuleFixedHorizon = "fixed_horizon"
	// RuleSequential tests at `looks` equally spaced fractions of the minimum
	// sample, spending alpha by an O'Brien-Fleming-type function.
	RuleSequential = "sequential"
)

// Defaults and bounds of a definition.
const (
	DefaultAlpha           = 0.05
	DefaultLooks           = 5
	DefaultAbandonWindow   = 30 * time.Minute
	DefaultRetryWindow     = 2 * time.Minute
	DefaultUserReportCat   = "user_report"
	DefaultEligiblePercent = 100
	MaxDefinitionBytes     = 256 << 10
	MaxArms                = 10
	MaxGuardrails          = 20
	MaxLooks               = 20
	maxOverlayBytes        = 64 << 10
	maxOverlayDepth        = 32
	maxTokenLen            = 64
	maxHypothesisLen       = 2000
	maxPlannedDuration     = 5 * 365 * 24 * time.Hour
	maxMinimumSample       = 1 << 40
	shareScale             = 10000 // assignment resolution: shares in 1/100 %
)

// Definition is one experiment (schema stagegate.experiment.v1). YAML field
// names are the contract; README.md ("For regulators") documents each.
type Definition struct {
	// Schema is "stagegate.experiment.v1" (optional; checked when present).
	Schema string `yaml:"schema" json:"schema"`
	// Name identifies the experiment (letters, digits, '-', '_'; at most 64).
	// It salts the assignment, so a new name draws new groups.
	Name string `yaml:"name" json:"name"`
	// Trial is the trial whose traffic and policy the experiment uses.
	Trial string `yaml:"trial" json:"trial"`
	// Hypothesis says in words what the experiment expects, and why.
	Hypothesis string `yaml:"hypothesis" json:"hypothesis"`
	// Eligibility selects the users who take part.
	Eligibility Eligibility `yaml:"eligibility" json:"eligibility"`
	// Arms are the groups: exactly one control (the trial's policy as it is)
	// and one or more variants.
	Arms []Arm `yaml:"arms" json:"arms"`
	// Primary is the outcome the experiment is about.
	Primary Outcome `yaml:"primary" json:"primary"`
	// Guardrails stop the experiment when a variant crosses their bound.
	Guardrails []Guardrail `yaml:"guardrails" json:"guardrails"`
	// MinimumSample is the planned sample per arm, in units of the primary
	// outcome (answered interactions for incident rates, requests for denials).
	MinimumSample int64 `yaml:"minimum_sample" json:"minimum_sample"`
	// PlannedDuration is how long the experiment may run (e.g. 14d, 36h); it
	// stops at StartedAt + PlannedDuration.
	PlannedDuration string `yaml:"planned_duration" json:"planned_duration"`
	// Analysis chooses the testing rule.
	Analysis Analysis `yaml:"analysis" json:"analysis"`

	// Planned is PlannedDuration parsed.
	Planned time.Duration `yaml:"-" json:"-"`
}

// Eligibility selects users.
type Eligibility struct {
	// Cohorts limits the experiment to users of these cohorts (empty: all).
	Cohorts []string `yaml:"cohorts" json:"cohorts,omitempty"`
	// Percent of the eligible users in the experiment (default 100); the
	// others are served the control policy and not counted.
	Percent float64 `yaml:"percent" json:"percent"`
}

// Arm is one group of users.
type Arm struct {
	// Name of the arm (a token), recorded with every decision.
	Name string `yaml:"name" json:"name"`
	// Share of the experiment's users in this arm, in percent; shares add up
	// to 100.
	Share float64 `yaml:"share" json:"share"`
	// Control marks the arm served the trial's policy unchanged.
	Control bool `yaml:"control" json:"control,omitempty"`
	// Variant is the policy a non-control arm is served.
	Variant *Variant `yaml:"variant" json:"variant,omitempty"`
}

// Variant is a policy revision: exactly one of Dir and Data.
type Variant struct {
	// Dir is a whole policy folder (a revision) on the sandbox host, or
	// builtin:<name>.
	Dir string `yaml:"dir" json:"dir,omitempty"`
	// Data is a data overlay on the trial's policy: merged over its data
	// documents (a value here replaces the same key there; objects merge).
	// An empty object is the trial's policy itself (an A/A experiment).
	Data map[string]any `yaml:"data" json:"data,omitempty"`
}

// Outcome is a metric with its parameters.
type Outcome struct {
	// Metric is one of the Metric* names.
	Metric string `yaml:"metric" json:"metric"`
	// Category of incidents counted (incident metrics): a category, or "*"
	// (default) for any; user_reports_per_1000 defaults to user_report.
	Category string `yaml:"category" json:"category,omitempty"`
	// MinSeverity of confirmed incidents counted (default low: all).
	MinSeverity string `yaml:"min_severity" json:"min_severity,omitempty"`
	// Window of abandonment_rate (default 30m) and retry_rate (default 2m).
	Window string `yaml:"window" json:"window,omitempty"`
	// ThresholdMS of latency_over (required there).
	ThresholdMS float64 `yaml:"threshold_ms" json:"threshold_ms,omitempty"`

	window time.Duration
}

// Guardrail bounds an outcome of every variant arm: exactly one of Max,
// MaxIncrease and MaxCount.
type Guardrail struct {
	Outcome `yaml:",inline"`
	// Max bounds the variant's rate (a fraction; per 1,000 for user reports):
	// crossed when its 95% Wilson lower bound is above Max.
	Max *float64 `yaml:"max" json:"max,omitempty"`
	// MaxIncrease bounds the variant's rate minus the control's: crossed when
	// the 95% Newcombe lower bound of the difference is above it.
	MaxIncrease *float64 `yaml:"max_increase" json:"max_increase,omitempty"`
	// MaxCount bounds the count itself (e.g. 0 confirmed critical incidents):
	// crossed as soon as a variant arm has more.
	MaxCount *int64 `yaml:"max_count" json:"max_count,omitempty"`
}

// Analysis is the testing rule.
type Analysis struct {
	// Alpha is the two-sided type I error rate of the whole experiment
	// (default 0.05), split equally between variants when there are several.
	Alpha float64 `yaml:"alpha" json:"alpha"`
	// Rule is fixed_horizon (default) or sequential.
	Rule string `yaml:"rule" json:"rule"`
	// Looks is the number of equally spaced looks of the sequential rule
	// (default 5; the last at the minimum sample).
	Looks int `yaml:"looks" json:"looks,omitempty"`
}

// WindowDuration is the outcome's window with its default.
func (o *Outcome) WindowDuration() time.Duration { return o.window }

// Control returns the control arm.
func (d *Definition) Control() *Arm {
	for i := range d.Arms {
		if d.Arms[i].Control {
			return &d.Arms[i]
		}
	}
	return nil
}

// Arm returns the arm named name.
func (d *Definition) Arm(name string) *Arm {
	for i := range d.Arms {
		if d.Arms[i].Name == name {
			return &d.Arms[i]
		}
	}
	return nil
}

// WithDefaults fills unset fields.
func (d Definition) WithDefaults() Definition {
	if d.Schema == "" {
		d.Schema = Schema
	}
	if d.Eligibility.Percent == 0 {
		d.Eligibility.Percent = DefaultEligiblePercent
	}
	if d.Analysis.Alpha == 0 {
		d.Analysis.Alpha = DefaultAlpha
	}
	if d.Analysis.Rule == "" {
		d.Analysis.Rule = RuleFixedHorizon
	}
	if d.Analysis.Rule == RuleSequential && d.Analysis.Looks == 0 {
		d.Analysis.Looks = DefaultLooks
	}
	if d.Analysis.Rule == RuleFixedHorizon && d.Analysis.Looks == 0 {
		d.Analysis.Looks = 1
	}
	if pd, err := ParseDuration(d.PlannedDuration); err == nil && d.PlannedDuration != "" {
		d.Planned = pd
	}
	d.Primary = d.Primary.withDefaults()
	d.Guardrails = slices.Clone(d.Guardrails)
	for i := range d.Guardrails {
		d.Guardrails[i].Outcome = d.Guardrails[i].Outcome.withDefaults()
	}
	return d
}

func (o Outcome) withDefaults() Outcome {
	switch o.Metric {
	case MetricConfirmedIncidents:
		if o.Category == "" {
			o.Category = "*"
		}
		if o.MinSeverity == "" {
			o.MinSeverity = "low"
		}
	case MetricUserReports:
		if o.Category == "" {
			o.Category = DefaultUserReportCat
		}
	case MetricAbandonment:
		o.window = DefaultAbandonWindow
	case MetricRetry:
		o.window = DefaultRetryWindow
	}
	if o.Window != "" {
		if w, err := ParseDuration(o.Window); err == nil {
			o.window = w
		}
	}
	return o
}

// Label names the outcome for people: "confirmed_incident_rate (pii, ≥ high)".
func (o *Outcome) Label() string {
	var parts []string
	switch o.Metric {
	case MetricConfirmedIncidents:
		if o.Category != "*" {
			parts = append(parts, o.Category)
		}
		if o.MinSeverity != "" && o.MinSeverity != "low" {
			parts = append(parts, "≥ "+o.MinSeverity)
		}
	case MetricUserReports:
		if o.Category != DefaultUserReportCat {
			parts = append(parts, o.Category)
		}
	case MetricAbandonment, MetricRetry:
		parts = append(parts, "window "+o.window.String())
	case MetricLatencyOver:
		parts = append(parts, strconv.FormatFloat(o.ThresholdMS, 'f', -1, 64)+" ms")
	}
	if len(parts) == 0 {
		return o.Metric
	}
	return o.Metric + " (" + strings.Join(parts, ", ") + ")"
}

// scale is what a rate is multiplied by for people (1,000 for user reports).
func (o *Outcome) scale() float64 {
	if o.Metric == MetricUserReports {
		return 1000
	}
	return 1
}

// ParseDuration reads a duration with a day unit as well: 14d, 36h, 90m, 1d12h.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	days := time.Duration(0)
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("%q: want a duration such as 14d, 36h or 90m", s)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration such as 14d, 36h or 90m", s)
	}
	return days + d, nil
}

// Problem is one thing wrong with a definition.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`            // 0 when unknown
	Field   string `json:"field,omitempty"` // dotted path, e.g. arms[1].share
	Message string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error lists every problem of a definition, in file order; it wraps ErrInvalid.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return ErrInvalid.Error() + ":\n" + strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// yamlLine matches the "line N: " prefix of yaml.v3's errors.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// unknownField rewrites yaml.v3's "field x not found in type y".
var unknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// Parse decodes and validates a definition; name is the file name used in
// messages. Unknown fields, values of the wrong type and broken rules are all
// reported at once in an *Error, each with its line and field.
func Parse(name string, src []byte) (*Definition, error) {
	fail := func(ps ...Problem) (*Definition, error) {
		for i := range ps {
			ps[i].File = name
		}
		slices.SortStableFunc(ps, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &Error{Problems: ps}
	}
	if len(src) > MaxDefinitionBytes {
		return fail(Problem{Message: fmt.Sprintf("larger than %d bytes", MaxDefinitionBytes)})
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(Problem{Message: "empty: an experiment definition is a YAML mapping (see README.md, For regulators)"})
		}
		return fail(yamlProblems(err)...)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fail(Problem{Line: extra.Line, Message: "holds more than one YAML document"})
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return fail(Problem{Line: root.Line, Message: "an experiment definition is a YAML mapping"})
	}
	var d Definition
	var ps []Problem
	strict := yaml.NewDecoder(bytes.NewReader(src))
	strict.KnownFields(true)
	if err := strict.Decode(&d); err != nil {
		// Unknown fields and wrong types: yaml.v3 decodes the rest, so the
		// rules are checked too and every problem is reported at once.
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return fail(yamlProblems(err)...)
		}
		ps = yamlProblems(err)
	}
	lines := map[string]int{}
	indexLines(root.Content[0], "", lines, 0)
	d = d.WithDefaults()
	reported := map[int]bool{}
	for _, p := range ps {
		reported[p.Line] = true
	}
	for _, p := range d.check() {
		line := lineOf(lines, p.path, root.Content[0].Line)
		if !reported[line] { // a value already reported as the wrong type
			ps = append(ps, Problem{Line: line, Field: p.path, Message: p.msg})
		}
	}
	if len(ps) > 0 {
		return fail(ps...)
	}
	return &d, nil
}

// yamlProblems turns a yaml.v3 error (a *yaml.TypeError lists several) into
// problems with lines.
func yamlProblems(err error) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	ps := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		p := Problem{Message: strings.TrimPrefix(m, "yaml: ")}
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			p.Line, _ = strconv.Atoi(sub[1])
			p.Message = sub[2]
		}
		if sub := unknownField.FindStringSubmatch(p.Message); sub != nil {
			p.Field, p.Message = sub[1], "unknown field"
		}
		ps = append(ps, p)
	}
	return ps
}

// indexLines records the line of every field path of the document.
func indexLines(n *yaml.Node, path string, lines map[string]int, depth int) {
	if depth > maxOverlayDepth+8 {
		return
	}
	if path != "" {
		if _, ok := lines[path]; !ok {
			lines[path] = n.Line
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			lines[p] = k.Line
			indexLines(v, p, lines, depth+1)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			indexLines(item, fmt.Sprintf("%s[%d]", path, i), lines, depth+1)
		}
	}
}

// lineOf is the line of path, or of its nearest parent that has one.
func lineOf(lines map[string]int, path string, fallback int) int {
	for p := path; p != ""; {
		if l, ok := lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return fallback
}

// problem is one rule broken at a field path.
type problem struct {
	path, msg string
}

// check lists every rule d breaks; d has its defaults.
func (d *Definition) check() []problem {
	var ps []problem
	add := func(path, format string, args ...any) { ps = append(ps, problem{path, fmt.Sprintf(format, args...)}) }
	if d.Schema != Schema {
		add("schema", "%q: want %q", d.Schema, Schema)
	}
	if err := checkToken(d.Name); err != nil {
		add("name", "%v", err)
	}
	if err := checkToken(d.Trial); err != nil {
		add("trial", "%v", err)
	}
	if strings.TrimSpace(d.Hypothesis) == "" {
		add("hypothesis", "required: say in words what the experiment expects to change, and why")
	} else if len(d.Hypothesis) > maxHypothesisLen {
		add("hypothesis", "longer than %d bytes", maxHypothesisLen)
	}
	for i, c := range d.Eligibility.Cohorts {
		if err := checkToken(c); err != nil {
			add(fmt.Sprintf("eligibility.cohorts[%d]", i), "%v", err)
		}
	}
	if p := d.Eligibility.Percent; !(p > 0 && p <= 100) {
		add("eligibility.percent", "%v is not in (0, 100]", p)
	}
	d.checkArms(add)
	checkOutcome("primary", &d.Primary, add)
	if len(d.Guardrails) > MaxGuardrails {
		add("guardrails", "more than %d guard-rails", MaxGuardrails)
	}
	for i := range d.Guardrails {
		g := &d.Guardrails[i]
		at := fmt.Sprintf("guardrails[%d]", i)
		checkOutcome(at, &g.Outcome, add)
		bounds := 0
		if g.Max != nil {
			bounds++
			if v := *g.Max; !(v >= 0) || math.IsInf(v, 0) || (g.Metric != MetricUserReports && v > 1) {
				add(at+".max", "%v is not a rate in 0..1 (per 1,000 for user reports)", v)
			}
		}
		if g.MaxIncrease != nil {
			bounds++
			if v := *g.MaxIncrease; !(v >= 0) || math.IsInf(v, 0) || (g.Metric != MetricUserReports && v > 1) {
				add(at+".max_increase", "%v is not an increase in 0..1 (per 1,000 for user reports)", v)
			}
		}
		if g.MaxCount != nil {
			bounds++
			if *g.MaxCount < 0 {
				add(at+".max_count", "%d is negative", *g.MaxCount)
			}
		}
		if bounds != 1 {
			add(at, "set exactly one of max, max_increase and max_count (got %d)", bounds)
		}
	}
	if d.MinimumSample <= 0 || d.MinimumSample > maxMinimumSample {
		add("minimum_sample", "%d: required, the planned sample per arm (1..%d)", d.MinimumSample, int64(maxMinimumSample))
	}
	if d.PlannedDuration == "" {
		add("planned_duration", "required, e.g. 14d or 36h")
	} else if pd, err := ParseDuration(d.PlannedDuration); err != nil {
		add("planned_duration", "%v", err)
	} else if pd <= 0 || pd > maxPlannedDuration {
		add("planned_duration", "%s is not in (0, 5 years]", d.PlannedDuration)
	}
	a := d.Analysis
	if !(a.Alpha > 0 && a.Alpha < 0.5) {
		add("analysis.alpha", "%v is not in (0, 0.5)", a.Alpha)
	}
	switch a.Rule {
	case RuleFixedHorizon:
		if a.Looks != 1 {
			add("analysis.looks", "the fixed-horizon rule has exactly one look (at the minimum sample); use rule: sequential for more")
		}
	case RuleSequential:
		if a.Looks < 2 || a.Looks > MaxLooks {
			add("analysis.looks", "%d is not in 2..%d", a.Looks, MaxLooks)
		}
	default:
		add("analysis.rule", "%q: want fixed_horizon or sequential", a.Rule)
	}
	return ps
}

func (d *Definition) checkArms(add func(path, format string, args ...any)) {
	if len(d.Arms) < 2 || len(d.Arms) > MaxArms {
		add("arms", "want 2..%d arms, one of them the control (got %d)", MaxArms, len(d.Arms))
	}
	names := map[string]bool{}
	controls := 0
	total := 0
	for i := range d.Arms {
		a := &d.Arms[i]
		at := fmt.Sprintf("arms[%d]", i)
		if err := checkToken(a.Name); err != nil {
			add(at+".name", "%v", err)
		} else if names[a.Name] {
			add(at+".name", "arm %q defined twice", a.Name)
		}
		names[a.Name] = true
		if !(a.Share > 0 && a.Share <= 100) {
			add(at+".share", "%v is not a percentage in (0, 100]", a.Share)
		} else if units := a.Share * shareScale / 100; units != math.Trunc(units) {
			add(at+".share", "%v: use at most two decimals", a.Share)
		} else {
			total += int(units)
		}
		if a.Control {
			controls++
			if a.Variant != nil {
				add(at+".variant", "the control arm is served the trial's policy as it is; it has no variant")
			}
			continue
		}
		if a.Variant == nil {
			add(at+".variant", "required for a non-control arm: dir (a policy folder) or data (an overlay)")
			continue
		}
		v := a.Variant
		switch {
		case v.Dir != "" && v.Data != nil:
			add(at+".variant", "set dir or data, not both")
		case v.Dir == "" && v.Data == nil:
			add(at+".variant", "set dir (a policy folder or builtin:<name>) or data (an overlay on the trial's policy)")
		case v.Data != nil:
			raw, err := json.Marshal(v.Data)
			switch {
			case err != nil:
				add(at+".variant.data", "cannot be written as JSON: %v", err)
			case len(raw) > maxOverlayBytes:
				add(at+".variant.data", "larger than %d bytes as JSON", maxOverlayBytes)
			case depth(v.Data, 0) > maxOverlayDepth:
				add(at+".variant.data", "nested deeper than %d", maxOverlayDepth)
			}
		}
	}
	if controls != 1 && len(d.Arms) > 0 {
		add("arms", "exactly one arm must be the control (control: true); got %d", controls)
	}
	if len(d.Arms) >= 2 && total != shareScale && total > 0 {
		add("arms", "shares add up to %v%%, want 100%%", float64(total)*100/shareScale)
	}
}

func checkOutcome(at string, o *Outcome, add func(path, format string, args ...any)) {
	if !slices.Contains(metrics, o.Metric) {
		add(at+".metric", "%q: want one of %s", o.Metric, strings.Join(metrics, ", "))
		return
	}
	incident := o.Metric == MetricConfirmedIncidents || o.Metric == MetricUserReports
	if o.Category != "" && !incident {
		add(at+".category", "only incident metrics (%s, %s) take a category", MetricConfirmedIncidents, MetricUserReports)
	} else if o.Category != "" && o.Category != "*" {
		if err := checkToken(o.Category); err != nil {
			add(at+".category", "%v", err)
		}
	}
	if o.MinSeverity != "" {
		if o.Metric != MetricConfirmedIncidents {
			add(at+".min_severity", "only %s takes a minimum severity", MetricConfirmedIncidents)
		} else if !slices.Contains([]string{"low", "medium", "high", "critical"}, o.MinSeverity) {
			add(at+".min_severity", "%q: want low, medium, high or critical", o.MinSeverity)
		}
	}
	if o.Window != "" {
		if o.Metric != MetricAbandonment && o.Metric != MetricRetry {
			add(at+".window", "only %s and %s take a window", MetricAbandonment, MetricRetry)
		} else if w, err := ParseDuration(o.Window); err != nil {
			add(at+".window", "%v", err)
		} else if w <= 0 || w > 30*24*time.Hour {
			add(at+".window", "%s is not in (0, 30d]", o.Window)
		}
	}
	if o.Metric == MetricLatencyOver {
		if !(o.ThresholdMS > 0 && o.ThresholdMS < 3600e3) {
			add(at+".threshold_ms", "%v: required for latency_over, in (0, 3600000)", o.ThresholdMS)
		}
	} else if o.ThresholdMS != 0 {
		add(at+".threshold_ms", "only latency_over takes a threshold")
	}
}

// depth is the nesting depth of a decoded YAML/JSON value.
func depth(v any, d int) int {
	if d > maxOverlayDepth {
		return d
	}
	best := d
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			best = max(best, depth(e, d+1))
		}
	case []any:
		for _, e := range x {
			best = max(best, depth(e, d+1))
		}
	}
	return best
}

// checkToken accepts 1..64 letters, digits, '-' and '_'.
func checkToken(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > maxTokenLen {
		return fmt.Errorf("%q is longer than %d characters", s, maxTokenLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%q: use letters, digits, '-' and '_' only", s)
		}
	}
	return nil
}
