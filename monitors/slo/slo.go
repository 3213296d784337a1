package slo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/monitors"
)

// Identity of the detector.
const (
	Name     = "slo"
	Version  = "1.0.0"
	Category = "slo"
)

// Defaults and bounds of Config.
const (
	DefaultWindow     = 5 * time.Minute
	DefaultMinSamples = 20
	DefaultMaxSeries  = 1000
	MinWindow         = 10 * time.Second
	MaxWindow         = 24 * time.Hour
	MaxSeriesLimit    = 100000
	// threshold is the score at which a breach is reported: a breach scores
	// 0.5 at the limit and 1 at twice the limit.
	threshold = 0.5
)

// Measures, as they appear in Span.Kind-free explanations and cooldown keys.
const (
	MeasureLatency    = "latency_p95"
	MeasureFirstToken = "first_token_p95"
	MeasureErrors     = "error_rate"
	MeasureFallbacks  = "fallback_rate"
)

// Limits are a trial's service levels; a zero field is not checked.
type Limits struct {
	// LatencyP95MS bounds the 95th percentile of total latency, in ms.
	LatencyP95MS float64 `yaml:"latency_p95_ms"`
	// FirstTokenP95MS bounds the 95th percentile of time to first token of
	// streamed answers, in ms.
	FirstTokenP95MS float64 `yaml:"first_token_p95_ms"`
	// ErrorRate bounds the share of interactions that ended in an upstream
	// error or a broken stream, in [0,1].
	ErrorRate float64 `yaml:"error_rate"`
	// FallbackRate bounds the share of answers served by the baseline after
	// the candidate failed, in [0,1].
	FallbackRate float64 `yaml:"fallback_rate"`
}

func (l Limits) zero() bool { return l == Limits{} }

func (l Limits) validate(where string) []error {
	var errs []error
	if l.LatencyP95MS < 0 || l.FirstTokenP95MS < 0 {
		errs = append(errs, fmt.Errorf("slo: %s: latency limits must not be negative", where))
	}
	if l.ErrorRate < 0 || l.ErrorRate > 1 || l.FallbackRate < 0 || l.FallbackRate > 1 {
		errs = append(errs, fmt.Errorf("slo: %s: rates must be in [0,1]", where))
	}
	return errs
}

// Config tunes the detector. Zero values take the defaults.
type Config struct {
	// Window is the sliding window of each series. Default DefaultWindow.
	Window time.Duration `yaml:"window"`
	// MinSamples is how many samples a window needs before it is judged.
	// Default DefaultMinSamples.
	MinSamples int `yaml:"min_samples"`
	// Cooldown is how long a reported breach (trial, model, stage, measure)
	// stays quiet. Default: Window.
	Cooldown time.Duration `yaml:"cooldown"`
	// Limits apply to every trial without its own entry in Trials.
	Limits Limits `yaml:"limits"`
	// Trials holds per-trial limits.
	Trials map[string]Limits `yaml:"trials"`
	// MaxSeries bounds the (trial, model, stage) series kept; a new series
	// beyond it evicts the least recently used. Default DefaultMaxSeries.
	MaxSeries int `yaml:"max_series"`
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MinSamples == 0 {
		c.MinSamples = DefaultMinSamples
	}
	if c.Cooldown == 0 {
		c.Cooldown = c.Window
	}
	if c.MaxSeries == 0 {
		c.MaxSeries = DefaultMaxSeries
	}
	return c
}

// Validate reports every problem of c (after defaults) at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Window < MinWindow || c.Window > MaxWindow {
		errs = append(errs, fmt.Errorf("slo: window %s not in [%s,%s]", c.Window, MinWindow, MaxWindow))
	}
	if c.MinSamples < 1 {
		errs = append(errs, fmt.Errorf("slo: min samples %d below 1", c.MinSamples))
	}
	if c.Cooldown < 0 {
		errs = append(errs, fmt.Errorf("slo: cooldown %s is negative", c.Cooldown))
	}
	if c.MaxSeries < 1 || c.MaxSeries > MaxSeriesLimit {
		errs = append(errs, fmt.Errorf("slo: max series %d not in [1,%d]", c.MaxSeries, MaxSeriesLimit))
	}
	errs = append(errs, c.Limits.validate("limits")...)
	names := make([]string, 0, len(c.Trials))
	for name := range c.Trials {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !events.ValidToken(name) {
			errs = append(errs, fmt.Errorf("slo: trial %q: %w", name, events.ErrInvalidToken))
		}
		errs = append(errs, c.Trials[name].validate("trial "+name)...)
	}
	if c.Limits.zero() && len(c.Trials) == 0 {
		errs = append(errs, errors.New("slo: no limits configured"))
	}
	return errors.Join(errs...)
}

// Detector checks service levels. It is safe for concurrent use.
type Detector struct {
	cfg Config
	clk clock.Clock

	mu     sync.Mutex
	series map[string]*series
	tick   uint64 // LRU clock
}

var _ monitors.Detector = (*Detector)(nil)

// New validates cfg and returns a detector; a nil clk is the wall clock.
func New(cfg Config, clk clock.Clock) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{cfg: cfg.withDefaults(), clk: clock.OrReal(clk), series: map[string]*series{}}, nil
}

// Name is "slo".
func (d *Detector) Name() string { return Name }

// Version is the detector version.
func (d *Detector) Version() string { return Version }

// limits returns the limits of a trial.
func (d *Detector) limits(trial string) Limits {
	if l, ok := d.cfg.Trials[trial]; ok {
		return l
	}
	return d.cfg.Limits
}

// Detect adds the interaction's sample and reports any measure of its series
// that breaks the trial's limit.
func (d *Detector) Detect(ctx context.Context, in *events.Interaction) ([]events.Finding, error) {
	if in == nil {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lim := d.limits(in.Trial)
	if lim.zero() {
		return nil, nil
	}
	model := in.Model
	if model == "" {
		model = in.LogicalModel
	}
	key := in.Trial + "\x00" + model + "\x00" + in.Stage
	now := d.clk.Now()
	s := d.get(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(now, d.cfg.Window, in)
	w := s.window(now, d.cfg.Window)
	if w.n < d.cfg.MinSamples {
		return nil, nil
	}
	var out []events.Finding
	check := func(measure string, observed, limit float64, unit string, n int) {
		if limit <= 0 || observed <= limit || n < d.cfg.MinSamples {
			return
		}
		if last, ok := s.reported[measure]; ok && now.Sub(last) < d.cfg.Cooldown {
			return
		}
		s.reported[measure] = now
		score := min(1, threshold+threshold*(observed-limit)/limit)
		sev := events.SeverityMedium
		if observed >= 2*limit {
			sev = events.SeverityHigh
		}
		out = append(out, events.Finding{
			Detector: Name, DetectorVersion: Version, Category: Category, Severity: sev,
			Score: score, Threshold: threshold, Spans: []events.Span{},
			Explanation: fmt.Sprintf("%s %s over the last %s (%d samples) exceeds the limit %s for model %s at stage %s",
				strings.ReplaceAll(measure, "_", " "), format(observed, unit), d.cfg.Window, n, format(limit, unit), model, stageName(in.Stage)),
		})
	}
	check(MeasureLatency, w.lat.quantile(0.95), lim.LatencyP95MS, "ms", w.n)
	check(MeasureFirstToken, w.ttft.quantile(0.95), lim.FirstTokenP95MS, "ms", w.ttft.count())
	check(MeasureErrors, float64(w.errs)/float64(w.n), lim.ErrorRate, "rate", w.n)
	check(MeasureFallbacks, float64(w.fallbacks)/float64(w.n), lim.FallbackRate, "rate", w.n)
	return out, nil
}

func stageName(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func format(v float64, unit string) string {
	if unit == "rate" {
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// get returns the series of key, creating it and evicting the least recently
// used one beyond MaxSeries.
func (d *Detector) get(key string) *series {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tick++
	if s, ok := d.series[key]; ok {
		s.used = d.tick
		return s
	}
	if len(d.series) >= d.cfg.MaxSeries {
		var oldest string
		var at uint64 = math.MaxUint64
		for k, s := range d.series {
			if s.used < at {
				oldest, at = k, s.used
			}
		}
		delete(d.series, oldest)
	}
	s := &series{used: d.tick, reported: map[string]time.Time{}}
	d.series[key] = s
	return s
}
