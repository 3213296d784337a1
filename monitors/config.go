package monitors

import (
	"go.opentelemetry.io/otel/trace"

	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
)

// Defaults and bounds of Config.
const (
	DefaultDurable    = "monitors"
	DefaultWorkers    = 4
	DefaultBatch      = 8
	DefaultAckWait    = 30 * time.Second
	DefaultMaxDeliver = 5
	DefaultRetryDelay = time.Second

	MaxWorkers = 256
	MaxBatch   = 1024
	MinAckWait = 100 * time.Millisecond
)

// Config tunes a Runner. Zero values take the defaults above.
type Config struct {
	// Durable is the durable consumer name on the INTERACTIONS stream. Runners
	// (in any number of processes) with the same name share the work; each name
	// sees every interaction once. Default DefaultDurable.
	Durable string
	// Workers is how many interactions are processed at once. Default DefaultWorkers.
	Workers int
	// Batch is how many messages one pull request asks for (the client-side
	// buffer). Keep it small: the ack deadline runs while a message waits in it.
	// Default DefaultBatch.
	Batch int
	// AckWait is how long the server waits for an ack before redelivering; it
	// also bounds the processing of one message. Default DefaultAckWait.
	AckWait time.Duration
	// MaxDeliver is how often a message is delivered before the server gives up
	// on it; -1 means never give up. Together with RetryDelay it bounds how long a
	// store or NATS outage may last before interactions are dropped unprocessed.
	// Default DefaultMaxDeliver.
	MaxDeliver int
	// RetryDelay is the redelivery delay after a store or publish error,
	// multiplied by the delivery count (linear backoff). Default DefaultRetryDelay.
	RetryDelay time.Duration
	// Burst groups repeated findings of one category from one model or one
	// user into one aggregate incident per window instead of an incident each
	// (incidents.BurstRule). The zero value turns grouping off; DefaultBurst is
	// a reasonable setting. The store must implement incidents.Correlator.
	Burst incidents.BurstRule
}

// DefaultBurst opens incidents for the first five interactions of a category
// from one model or user in ten minutes and groups the rest into one aggregate
// incident that keeps up to 100 findings as evidence.
var DefaultBurst = incidents.BurstRule{Window: 10 * time.Minute, Threshold: 5, MaxFindings: 100}

// bursting reports whether grouping is on.
func (c Config) bursting() bool { return c.Burst != (incidents.BurstRule{}) }

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	return c
}

// Validate reports every problem of c (after defaults) at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !events.ValidToken(c.Durable) {
		errs = append(errs, fmt.Errorf("%w: durable %q: %w", ErrConfig, c.Durable, events.ErrInvalidToken))
	}
	if c.Workers < 1 || c.Workers > MaxWorkers {
		errs = append(errs, fmt.Errorf("%w: workers %d not in [1,%d]", ErrConfig, c.Workers, MaxWorkers))
	}
	if c.Batch < 1 || c.Batch > MaxBatch {
		errs = append(errs, fmt.Errorf("%w: batch %d not in [1,%d]", ErrConfig, c.Batch, MaxBatch))
	}
	if c.AckWait < MinAckWait {
		errs = append(errs, fmt.Errorf("%w: ack wait %s below %s", ErrConfig, c.AckWait, MinAckWait))
	}
	if c.MaxDeliver < 1 && c.MaxDeliver != -1 {
		errs = append(errs, fmt.Errorf("%w: max deliver %d: want -1 (unlimited) or at least 1", ErrConfig, c.MaxDeliver))
	}
	if c.RetryDelay < 0 {
		errs = append(errs, fmt.Errorf("%w: retry delay %s is negative", ErrConfig, c.RetryDelay))
	}
	if c.bursting() {
		if err := c.Burst.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrConfig, err))
		}
	}
	return errors.Join(errs...)
}

// Deps are the parts a Runner works with.
type Deps struct {
	// JS reads the INTERACTIONS stream and publishes findings and incident
	// events. The streams must exist (events.EnsureStreams).
	JS jetstream.JetStream
	// Store records interactions and incidents.
	Store incidents.Store
	// Detectors run on every interaction, in this order. Names must be unique
	// subject tokens.
	Detectors []Detector
	// Clock stamps findings; nil means the wall clock.
	Clock clock.Clock
	// Logger; nil discards logs.
	Logger *slog.Logger
	// Tracer joins each message's trace (from its traceparent header) with a
	// consumer span, a span per detector and one for recording the incident; nil
	// is the no-op tracer.
	Tracer trace.Tracer
}

// validate reports every problem of d at once.
func (d Deps) validate() error {
	var errs []error
	if d.JS == nil {
		errs = append(errs, fmt.Errorf("%w: JS is nil", ErrConfig))
	}
	if d.Store == nil {
		errs = append(errs, fmt.Errorf("%w: Store is nil", ErrConfig))
	}
	if len(d.Detectors) == 0 {
		errs = append(errs, fmt.Errorf("%w: no detectors", ErrConfig))
	}
	seen := make(map[string]bool, len(d.Detectors))
	for i, det := range d.Detectors {
		if det == nil {
			errs = append(errs, fmt.Errorf("%w: detector %d is nil", ErrConfig, i))
			continue
		}
		name := det.Name()
		if err := events.CheckToken("detector name", name); err != nil {
			errs = append(errs, fmt.Errorf("%w: detector %d: %w", ErrConfig, i, err))
		}
		if det.Version() == "" {
			errs = append(errs, fmt.Errorf("%w: detector %q has no version", ErrConfig, name))
		}
		if seen[name] {
			errs = append(errs, fmt.Errorf("%w: detector %q listed twice", ErrConfig, name))
		}
		seen[name] = true
	}
	return errors.Join(errs...)
}
