package gateway

import (
	"sync"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

// Defaults for a model's circuit breaker.
const (
	DefaultBreakerFailures = 5                // consecutive failures that open the circuit
	DefaultBreakerCooldown = 10 * time.Second // how long it stays open before one probe
)

// Breaker states.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// breaker is a per-model circuit breaker: after Failures consecutive failures it
// opens and refuses calls for Cooldown, then lets one probe through (half-open);
// the probe's success closes it, its failure opens it again. Failures are
// connection errors, timeouts and 5xx/429 answers — signs the model is unwell, not
// that a request was bad.
type breaker struct {
	failures int
	cooldown time.Duration
	clk      clock.Clock

	mu       sync.Mutex
	state    string
	consec   int
	openedAt time.Time
	probing  bool
	opened   uint64 // times the circuit opened
}

func newBreaker(failures int, cooldown time.Duration, clk clock.Clock) *breaker {
	if failures <= 0 {
		failures = DefaultBreakerFailures
	}
	if cooldown <= 0 {
		cooldown = DefaultBreakerCooldown
	}
	return &breaker{failures: failures, cooldown: cooldown, clk: clk, state: BreakerClosed}
}

// allow reports whether a call may go to the model now. In half-open state only
// one probe is in flight at a time.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if b.clk.Now().Sub(b.openedAt) < b.cooldown {
			return false
		}
		b.state, b.probing = BreakerHalfOpen, true
		return true
	default: // half-open
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
}

// record reports a call's outcome.
func (b *breaker) record(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.state, b.consec, b.probing = BreakerClosed, 0, false
		return
	}
	b.consec++
	if b.state == BreakerHalfOpen || b.consec >= b.failures {
		if b.state != BreakerOpen {
			b.opened++
		}
		b.state, b.openedAt, b.probing = BreakerOpen, b.clk.Now(), false
	}
}

// release ends a call that says nothing of the model's health (the client went
// away), so a half-open breaker can probe again.
func (b *breaker) release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// snapshot returns the state and how often the circuit opened.
func (b *breaker) snapshot() (string, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.opened
}
