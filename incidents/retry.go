package incidents

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

// Defaults for RetryConfig. With them a write keeps trying for about 4 s of
// back-off on top of SQLite's own busy_timeout per attempt.
const (
	DefaultRetryAttempts = 6
	DefaultRetryInitial  = 50 * time.Millisecond
	DefaultRetryMax      = 2 * time.Second
	// maxRetryAttempts bounds Attempts: a store that stays down is for the
	// caller (the monitors' redelivery) to wait out, not for one call.
	maxRetryAttempts = 50
)

// RetryConfig bounds the retries of RetryStore.
type RetryConfig struct {
	// Attempts is how often one call is tried, the first included (default 6).
	Attempts int
	// Initial is the wait after the first failure (default 50ms); each further
	// wait doubles, with ±20 % jitter, up to Max.
	Initial time.Duration
	// Max caps one wait (default 2s).
	Max time.Duration
}

// WithDefaults fills zero fields.
func (c RetryConfig) WithDefaults() RetryConfig {
	if c.Attempts == 0 {
		c.Attempts = DefaultRetryAttempts
	}
	if c.Initial == 0 {
		c.Initial = DefaultRetryInitial
	}
	if c.Max == 0 {
		c.Max = DefaultRetryMax
	}
	return c
}

// Validate reports every problem at once.
func (c RetryConfig) Validate() error {
	var errs []error
	if c.Attempts < 1 || c.Attempts > maxRetryAttempts {
		errs = append(errs, fmt.Errorf("%w: retry attempts %d: want 1-%d", ErrInvalid, c.Attempts, maxRetryAttempts))
	}
	if c.Initial <= 0 {
		errs = append(errs, fmt.Errorf("%w: retry initial wait %s: must be positive", ErrInvalid, c.Initial))
	}
	if c.Max < c.Initial {
		errs = append(errs, fmt.Errorf("%w: retry max wait %s: must be at least the initial wait %s", ErrInvalid, c.Max, c.Initial))
	}
	return errors.Join(errs...)
}

// RetryStats are RetryStore's counters and its last transient failure.
type RetryStats struct {
	// Retries counts attempts repeated after a transient failure.
	Retries uint64 `json:"retries"`
	// Recovered counts calls that succeeded after at least one retry.
	Recovered uint64 `json:"recovered"`
	// Exhausted counts calls that still failed transiently after every attempt
	// (the caller sees the error; the monitors redeliver the message).
	Exhausted uint64 `json:"exhausted"`
	// LastError is the newest transient failure ("" when none), and LastErrorAt when.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// RetryStore wraps a Store so that its writes — RecordInteraction,
// OpenIncident and Correlate, all idempotent — are retried with exponential
// back-off when the engine fails transiently: SQLite busy or locked (another
// process or connection holds the write lock past busy_timeout), or a
// PostgreSQL connection that dropped. Other errors (invalid input, not found)
// return at once. Reads and the other methods pass through unchanged.
type RetryStore struct {
	Store
	cfg  RetryConfig
	clk  clock.Clock
	corr Correlator // the wrapped store's, or nil

	retries, recovered, exhausted atomic.Uint64
	last                          atomic.Pointer[lastFailure]
}

type lastFailure struct {
	msg string
	at  time.Time
}

var (
	_ Store      = (*RetryStore)(nil)
	_ Correlator = (*RetryStore)(nil)
)

// NewRetryStore wraps s. A nil clk means the wall clock (it only dates
// LastErrorAt; the waits are real time).
func NewRetryStore(s Store, cfg RetryConfig, clk clock.Clock) (*RetryStore, error) {
	cfg = cfg.WithDefaults()
	var errs []error
	if s == nil {
		errs = append(errs, fmt.Errorf("%w: retry store: the wrapped store is nil", ErrInvalid))
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &RetryStore{Store: s, cfg: cfg, clk: clock.OrReal(clk)}
	r.corr, _ = s.(Correlator)
	return r, nil
}

// Unwrap returns the wrapped store.
func (r *RetryStore) Unwrap() Store { return r.Store }

// Stats returns the counters and the last transient failure.
func (r *RetryStore) Stats() RetryStats {
	st := RetryStats{Retries: r.retries.Load(), Recovered: r.recovered.Load(), Exhausted: r.exhausted.Load()}
	if l := r.last.Load(); l != nil {
		st.LastError, st.LastErrorAt = l.msg, l.at
	}
	return st
}

// RecordInteraction implements Store with retries.
func (r *RetryStore) RecordInteraction(ctx context.Context, in *events.Interaction) error {
	return r.do(ctx, func() error { return r.Store.RecordInteraction(ctx, in) })
}

// OpenIncident implements Store with retries.
func (r *RetryStore) OpenIncident(ctx context.Context, in *events.Interaction, findings []events.Finding) (*Incident, bool, error) {
	var (
		inc     *Incident
		created bool
	)
	err := r.do(ctx, func() error {
		var err error
		inc, created, err = r.Store.OpenIncident(ctx, in, findings)
		return err
	})
	return inc, created, err
}

// Correlate implements Correlator with retries; a wrapped store that does not
// correlate fails with ErrInvalid.
func (r *RetryStore) Correlate(ctx context.Context, in *events.Interaction, findings []events.Finding, rule BurstRule) (Routing, error) {
	if r.corr == nil {
		return Routing{}, fmt.Errorf("%w: the store does not group bursts", ErrInvalid)
	}
	var out Routing
	err := r.do(ctx, func() error {
		var err error
		out, err = r.corr.Correlate(ctx, in, findings, rule)
		return err
	})
	return out, err
}

// do runs fn until it succeeds, fails for good, the attempts are spent or ctx ends.
func (r *RetryStore) do(ctx context.Context, fn func() error) error {
	wait := r.cfg.Initial
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				r.recovered.Add(1)
			}
			return nil
		}
		if !Transient(err) {
			return err
		}
		r.last.Store(&lastFailure{msg: err.Error(), at: r.clk.Now()})
		if attempt >= r.cfg.Attempts {
			r.exhausted.Add(1)
			return fmt.Errorf("after %d attempts: %w", attempt, err)
		}
		if !sleepCtx(ctx, jitter(wait)) {
			r.exhausted.Add(1)
			return errors.Join(err, ctx.Err())
		}
		r.retries.Add(1)
		wait = min(2*wait, r.cfg.Max)
	}
}

// jitter spreads d by ±20 %, so processes that failed together do not retry together.
func jitter(d time.Duration) time.Duration {
	return d - d/5 + time.Duration(rand.Int64N(int64(2*d/5)+1))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// PostgreSQL error classes and codes worth another try.
const (
	pgClassConnection     = "08"    // connection exception
	pgAdminShutdown       = "57P01" // the server is shutting down or restarting
	pgCrashShutdown       = "57P02"
	pgCannotConnectNow    = "57P03"
	pgTooManyConnections  = "53300"
	pgSerializationRetry  = "40001"
	pgDeadlockRetry       = "40P01"
	pgLockNotAvailable    = "55P03"
	pgClassConnectionSize = 2
)

// Transient reports whether err is a store failure that may pass on its own:
// SQLite busy or locked, a dropped or refused database connection, a
// PostgreSQL restart, deadlock or serialization failure. Invalid input,
// not-found and conflicts are not transient.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // extended codes keep the primary code in the low byte
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) >= pgClassConnectionSize && pe.Code[:pgClassConnectionSize] == pgClassConnection:
			return true
		case pe.Code == pgAdminShutdown, pe.Code == pgCrashShutdown, pe.Code == pgCannotConnectNow, pe.Code == pgTooManyConnections,
			pe.Code == pgSerializationRetry, pe.Code == pgDeadlockRetry, pe.Code == pgLockNotAvailable:
			return true
		}
		return false
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &ne)
}
