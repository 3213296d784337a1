package incidents

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/internal/testutil"
)

// TestLockedSQLiteWritesRetryNotFail holds SQLite's write lock from another
// connection past busy_timeout: a plain write fails with SQLITE_BUSY, the same
// write through RetryStore waits and succeeds once the lock is released.
func TestLockedSQLiteWritesRetryNotFail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "locked.db")
	store, err := OpenSQLite(ctx, path, clock.NewFake(t0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rs, err := NewRetryStore(store, RetryConfig{Attempts: 4, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Another connection, as another process would, takes the write lock.
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	holder, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	t.Cleanup(func() {
		if locked {
			_, _ = holder.ExecContext(ctx, "ROLLBACK")
		}
		holder.Close()
	})

	plainDone, retryDone := make(chan error, 1), make(chan error, 1)
	go func() { plainDone <- store.RecordInteraction(ctx, interaction("i-plain", "t1")) }()
	go func() { retryDone <- rs.RecordInteraction(ctx, interaction("i-retry", "t1")) }()

	var plainErr error
	select {
	case plainErr = <-plainDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the plain write neither failed nor succeeded while the lock was held")
	}
	if plainErr == nil || !Transient(plainErr) || !strings.Contains(strings.ToLower(plainErr.Error()), "busy") {
		t.Fatalf("plain write under a held lock: %v, want SQLITE_BUSY", plainErr)
	}
	testutil.WaitFor(t, 30*time.Second, "the retrying write saw the lock", func() bool { return rs.Stats().LastError != "" })
	if _, err := holder.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	locked = false

	select {
	case err := <-retryDone:
		if err != nil {
			t.Fatalf("retrying write failed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the retrying write did not finish after the lock was released")
	}
	st := rs.Stats()
	if st.Retries < 1 || st.Recovered != 1 || st.Exhausted != 0 || !strings.Contains(strings.ToLower(st.LastError), "busy") {
		t.Fatalf("stats %+v", st)
	}
	if _, err := store.Interaction(ctx, "i-retry"); err != nil {
		t.Fatalf("the retried interaction is not stored: %v", err)
	}
}

// flaky fails its writes with err the first n times.
type flaky struct {
	Store
	n     atomic.Int32
	err   error
	calls atomic.Int32
}

func (f *flaky) RecordInteraction(context.Context, *events.Interaction) error {
	f.calls.Add(1)
	if f.n.Add(-1) >= 0 {
		return f.err
	}
	return nil
}

func TestRetryStoreBounds(t *testing.T) {
	cfg := RetryConfig{Attempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond}
	cases := []struct {
		name          string
		failures      int32
		err           error
		wantErr       bool
		wantCalls     int32
		wantExhausted uint64
	}{
		{"recovers", 2, driver.ErrBadConn, false, 3, 0},
		{"exhausted", 10, fmt.Errorf("write: %w", syscall.ECONNRESET), true, 3, 1},
		{"not transient", 10, fmt.Errorf("bad: %w", ErrInvalid), true, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &flaky{err: c.err}
			f.n.Store(c.failures)
			rs, err := NewRetryStore(f, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = rs.RecordInteraction(context.Background(), interaction("i1", "t1"))
			if (err != nil) != c.wantErr || f.calls.Load() != c.wantCalls || rs.Stats().Exhausted != c.wantExhausted {
				t.Fatalf("err %v, calls %d, stats %+v", err, f.calls.Load(), rs.Stats())
			}
			if c.wantErr && !errors.Is(err, c.err) && !errors.Is(err, errors.Unwrap(c.err)) {
				t.Fatalf("the cause is lost: %v", err)
			}
		})
	}
}

func TestRetryStoreStopsWithTheContext(t *testing.T) {
	f := &flaky{err: driver.ErrBadConn}
	f.n.Store(1000)
	rs, _ := NewRetryStore(f, RetryConfig{Attempts: 50, Initial: time.Hour, Max: time.Hour}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rs.RecordInteraction(ctx, interaction("i1", "t1")); !errors.Is(err, context.Canceled) || f.calls.Load() != 1 {
		t.Fatalf("err %v after %d calls", err, f.calls.Load())
	}
}

func TestTransient(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("x: %w", ErrInvalid), false},
		{fmt.Errorf("x: %w", ErrNotFound), false},
		{context.Canceled, false},
		{driver.ErrBadConn, true},
		{sql.ErrConnDone, true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{errors.New("syntax error"), false},
	}
	for _, c := range cases {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestRetryConfigValidate(t *testing.T) {
	err := RetryConfig{Attempts: -1, Initial: -1, Max: -2}.Validate()
	for _, want := range []string{"attempts", "initial", "max"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if _, err := NewRetryStore(nil, RetryConfig{}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil store: %v", err)
	}
}
