package sim

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/internal/clock"
)

// Defaults and bounds for Config and for request directives.
const (
	// DefaultAddr listens on a random loopback port.
	DefaultAddr = "127.0.0.1:0"
	// DefaultModel is the model id served when Config.Models is empty.
	DefaultModel = "sim"
	// DefaultMaxBodyBytes bounds a request body (4 MiB).
	DefaultMaxBodyBytes int64 = 4 << 20
	// MaxBodyBytesLimit is the largest MaxBodyBytes a Config may set (1 GiB).
	MaxBodyBytesLimit int64 = 1 << 30
	// MaxDuration bounds Config.Delay and the slow and gap directives.
	MaxDuration = 10 * time.Minute
	// MaxTokens bounds the tokens directive.
	MaxTokens = 100000
	// MaxModelIDBytes bounds a model id, configured or named in a request.
	MaxModelIDBytes = 256
	// MaxFixedAnswerBytes bounds Config.FixedAnswer (1 MiB).
	MaxFixedAnswerBytes = 1 << 20
)

// Config configures the simulator. The zero value is usable: it serves model "sim"
// on a random loopback port.
type Config struct {
	// Addr is the TCP listen address for Start; default DefaultAddr.
	Addr string
	// Models are the ids listed by GET /v1/models; default {DefaultModel}. A request
	// naming any model is answered and the name is echoed in "model"; a request
	// naming none is answered as Models[0].
	Models []string
	// FixedAnswer, when set, is the answer to every request without a content
	// directive (pii, unsafe, tokens); benchmarks use it for a constant response size.
	FixedAnswer string
	// Delay is an extra wait before the first token of every answer (and before a
	// scripted error), on top of any slow directive; 0 to MaxDuration.
	Delay time.Duration
	// MaxBodyBytes bounds a request body; larger bodies get 413. Default
	// DefaultMaxBodyBytes, at most MaxBodyBytesLimit.
	MaxBodyBytes int64
	// Clock gives the "created" timestamp of answers; nil means the wall clock.
	Clock clock.Clock
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("addr %q: %w", c.Addr, err))
		}
	}
	seen := make(map[string]bool, len(c.Models))
	for i, m := range c.Models {
		if err := validModelID(m); err != nil {
			errs = append(errs, fmt.Errorf("models[%d] %q: %w", i, m, err))
			continue
		}
		if seen[m] {
			errs = append(errs, fmt.Errorf("models[%d] %q: listed twice", i, m))
		}
		seen[m] = true
	}
	if len(c.FixedAnswer) > MaxFixedAnswerBytes {
		errs = append(errs, fmt.Errorf("fixed answer: %d bytes, at most %d", len(c.FixedAnswer), MaxFixedAnswerBytes))
	} else if !utf8.ValidString(c.FixedAnswer) {
		errs = append(errs, errors.New("fixed answer: not valid UTF-8"))
	}
	if c.Delay < 0 || c.Delay > MaxDuration {
		errs = append(errs, fmt.Errorf("delay %s: must be between 0 and %s", c.Delay, MaxDuration))
	}
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > MaxBodyBytesLimit {
		errs = append(errs, fmt.Errorf("max body bytes %d: must be between 0 (default) and %d", c.MaxBodyBytes, MaxBodyBytesLimit))
	}
	return errors.Join(errs...)
}

func validModelID(m string) error {
	switch {
	case m == "":
		return errors.New("empty")
	case len(m) > MaxModelIDBytes:
		return fmt.Errorf("%d bytes, at most %d", len(m), MaxModelIDBytes)
	case !utf8.ValidString(m):
		return errors.New("not valid UTF-8")
	case strings.ContainsFunc(m, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("contains whitespace or control characters")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if len(c.Models) == 0 {
		c.Models = []string{DefaultModel}
	} else {
		c.Models = append([]string(nil), c.Models...)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	c.Clock = clock.OrReal(c.Clock)
	return c
}
