package suite

import (
	"errors"
	"fmt"
	"slices"

	"github.com/stagegate/stagegate/monitors"
	"github.com/stagegate/stagegate/monitors/injection"
	"github.com/stagegate/stagegate/monitors/jailbreak"
	"github.com/stagegate/stagegate/monitors/pii"
	"github.com/stagegate/stagegate/monitors/toxicity"
	"github.com/stagegate/stagegate/monitors/unsafe"
)

// Config selects and tunes the detectors. The zero value is the default suite.
type Config struct {
	// Disable lists detector names to leave out (e.g. "toxicity").
	Disable []string `yaml:"disable"`
	// PII tunes the pii detector.
	PII pii.Config `yaml:"-"`
	// Injection tunes the injection detector.
	Injection injection.Config `yaml:"-"`
	// Jailbreak tunes the jailbreak detector.
	Jailbreak jailbreak.Config `yaml:"-"`
	// Toxicity tunes the toxicity detector.
	Toxicity toxicity.Config `yaml:"-"`
	// Unsafe tunes the unsafe_advice detector.
	Unsafe unsafe.Config `yaml:"-"`
}

// Names of the content detectors, in the order Default returns them.
var contentNames = []string{pii.Name, injection.Name, jailbreak.Name, toxicity.Name, unsafe.Name}

// Names lists every detector this suite can build.
func Names() []string { return slices.Clone(contentNames) }

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	for _, n := range c.Disable {
		if !slices.Contains(contentNames, n) {
			errs = append(errs, fmt.Errorf("%w: disable: unknown detector %q (known: %v)", ErrConfig, n, contentNames))
		}
	}
	errs = append(errs, c.PII.Validate(), c.Injection.Validate(), c.Jailbreak.Validate(), c.Toxicity.Validate(), c.Unsafe.Validate())
	return errors.Join(errs...)
}

// Default builds the enabled detectors in a fixed order.
func Default(c Config) ([]monitors.Detector, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
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
		add(pii.Name, func() (monitors.Detector, error) { return pii.New(c.PII) }),
		add(injection.Name, func() (monitors.Detector, error) { return injection.New(c.Injection) }),
		add(jailbreak.Name, func() (monitors.Detector, error) { return jailbreak.New(c.Jailbreak) }),
		add(toxicity.Name, func() (monitors.Detector, error) { return toxicity.New(c.Toxicity) }),
		add(unsafe.Name, func() (monitors.Detector, error) { return unsafe.New(c.Unsafe) }),
	)
	if err != nil {
		return nil, err
	}
	return out, nil
}
