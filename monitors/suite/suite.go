package suite

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"

	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/monitors"
	"github.com/stagegate/stagegate/monitors/injection"
	"github.com/stagegate/stagegate/monitors/jailbreak"
	"github.com/stagegate/stagegate/monitors/judge"
	"github.com/stagegate/stagegate/monitors/pii"
	"github.com/stagegate/stagegate/monitors/slo"
	"github.com/stagegate/stagegate/monitors/toxicity"
	"github.com/stagegate/stagegate/monitors/unsafe"
)

// Config selects and tunes the detectors; the zero value is the default
// suite. It is meant to be the sandbox's `monitors.detectors:` YAML section.
type Config struct {
	// Disable lists content detectors to leave out (e.g. "toxicity").
	Disable []string `yaml:"disable"`
	// Thresholds overrides the reporting threshold of content detectors, by
	// name (e.g. {"toxicity": 0.5}).
	Thresholds map[string]float64 `yaml:"thresholds"`
	// SLO turns the slo detector on with these limits; nil leaves it off.
	SLO *slo.Config `yaml:"slo"`
	// Judge turns the llm_judge detector on; nil (the default) leaves it off.
	Judge *judge.Config `yaml:"judge"`
	// JudgeAPIKeyEnv names the environment variable holding the judge's API
	// key (looked up by the caller into Deps.JudgeAPIKey).
	JudgeAPIKeyEnv string `yaml:"judge_api_key_env"`
}

// Deps are what the optional detectors take from outside.
type Deps struct {
	// Clock drives the slo windows; nil is the wall clock.
	Clock clock.Clock
	// HTTP is the judge's client; nil makes one with the judge's timeout.
	HTTP *http.Client
	// JudgeAPIKey is sent to the judge as a bearer token when set.
	JudgeAPIKey string
}

// contentNames are the content detectors, in the order Default returns them.
var contentNames = []string{pii.Name, injection.Name, jailbreak.Name, toxicity.Name, unsafe.Name}

// Names lists the content detectors (on by default).
func Names() []string { return slices.Clone(contentNames) }

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	for _, n := range c.Disable {
		if !slices.Contains(contentNames, n) {
			errs = append(errs, fmt.Errorf("%w: disable: unknown detector %q (known: %v)", ErrConfig, n, contentNames))
		}
	}
	names := make([]string, 0, len(c.Thresholds))
	for n := range c.Thresholds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !slices.Contains(contentNames, n) {
			errs = append(errs, fmt.Errorf("%w: thresholds: unknown detector %q", ErrConfig, n))
		}
		if v := c.Thresholds[n]; v <= 0 || v > 1 {
			errs = append(errs, fmt.Errorf("%w: thresholds: %s = %v not in (0,1]", ErrConfig, n, v))
		}
	}
	if c.SLO != nil {
		errs = append(errs, c.SLO.Validate())
	}
	if c.Judge != nil {
		errs = append(errs, c.Judge.Validate())
	}
	return errors.Join(errs...)
}

// Default builds the enabled detectors in a fixed order: the content
// detectors, then slo and llm_judge when configured.
func Default(c Config, deps Deps) ([]monitors.Detector, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	th := c.Thresholds
	var out []monitors.Detector
	add := func(name string, mk func() (monitors.Detector, error)) error {
		if slices.Contains(c.Disable, name) {
			return nil
		}
		d, err := mk()
		if err != nil {
			return fmt.Errorf("detector %s: %w", name, err)
		}
		out = append(out, d)
		return nil
	}
	err := errors.Join(
		add(pii.Name, func() (monitors.Detector, error) { return pii.New(pii.Config{Threshold: th[pii.Name]}) }),
		add(injection.Name, func() (monitors.Detector, error) {
			return injection.New(injection.Config{Threshold: th[injection.Name]})
		}),
		add(jailbreak.Name, func() (monitors.Detector, error) {
			return jailbreak.New(jailbreak.Config{Threshold: th[jailbreak.Name]})
		}),
		add(toxicity.Name, func() (monitors.Detector, error) {
			return toxicity.New(toxicity.Config{Threshold: th[toxicity.Name]})
		}),
		add(unsafe.Name, func() (monitors.Detector, error) { return unsafe.New(unsafe.Config{Threshold: th[unsafe.Name]}) }),
	)
	if err != nil {
		return nil, err
	}
	if c.SLO != nil {
		d, err := slo.New(*c.SLO, deps.Clock)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if c.Judge != nil {
		d, err := judge.New(*c.Judge, judge.Deps{HTTP: deps.HTTP, APIKey: deps.JudgeAPIKey})
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
