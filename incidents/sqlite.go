package incidents

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go driver "sqlite"

	"github.com/stagegate/stagegate/internal/clock"
)

// SQLite connection settings (INTEGRATION.md §6). The _pragma entries run on every
// new pool connection; _txlock=immediate makes every transaction take the write
// lock at BEGIN, so read-then-write transactions never fail on lock upgrade.
const (
	// SQLiteMaxOpenConns bounds the connection pool (readers run in parallel under WAL).
	SQLiteMaxOpenConns = 8
	// sqliteFileMode: the file holds prompts and answers, so only the owner reads it.
	sqliteFileMode = 0o600

	// sqliteParams: busy_timeout is how long (ms) a writer waits for the lock
	// before SQLITE_BUSY. It comes first, so that switching a new file to WAL
	// waits too when several processes open it at once.
	sqliteParams = "?_pragma=busy_timeout(5000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(ON)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_txlock=immediate"
)

// SQLiteStore is the embedded Store: one SQLite file in WAL mode. Several
// processes may share the file; writers serialise on SQLite's lock. It is the
// SQLStore that OpenSQLite returns (the name predates PostgreSQL support).
type SQLiteStore = SQLStore

// OpenSQLite opens (creating when missing, with mode 0600) the SQLite database at
// path and brings its schema to the newest version. A nil clk means the wall clock.
func OpenSQLite(ctx context.Context, path string, clk clock.Clock) (*SQLiteStore, error) {
	if err := checkSQLitePath(path); err != nil {
		return nil, err
	}
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", path+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(SQLiteMaxOpenConns)
	db.SetMaxIdleConns(SQLiteMaxOpenConns)
	s := &SQLStore{
		sqlStore: sqlStore{db: db, st: newStatements(sqliteDialect), clk: clock.OrReal(clk)},
		engine:   EngineSQLite,
		path:     path,
	}
	if err := s.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// sqliteOpenAttempts bounds prepare's attempts: switching a new file to WAL
// can answer SQLITE_BUSY at once, without waiting busy_timeout, when several
// processes open it together.
const sqliteOpenAttempts = 20

// prepare checks the settings and migrates, trying again while the file is
// busy with another process doing the same.
func (s *SQLiteStore) prepare(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := s.check(ctx)
		if err == nil {
			if err = s.migrate(ctx); err != nil {
				err = fmt.Errorf("sqlite %s: %w", s.path, err)
			}
		}
		if err == nil || attempt == sqliteOpenAttempts || !Transient(err) {
			return err
		}
		t := time.NewTimer(time.Duration(attempt) * 10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// check verifies the connection settings took effect.
func (s *SQLiteStore) check(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("open sqlite %s: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("open sqlite %s: journal_mode is %q, want wal", s.path, mode)
	}
	return nil
}

// checkSQLitePath rejects what cannot be a plain database file name: the driver
// treats the first '?' as the start of its parameters, and an in-memory database
// would be a different one on every pool connection.
func checkSQLitePath(path string) error {
	var errs []error
	switch {
	case path == "":
		errs = append(errs, fmt.Errorf("%w: sqlite path is empty", ErrInvalid))
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		errs = append(errs, fmt.Errorf("%w: sqlite path %q must be a plain file name", ErrInvalid, path))
	}
	if strings.ContainsAny(path, "?\x00") {
		errs = append(errs, fmt.Errorf("%w: sqlite path %q contains '?' or NUL", ErrInvalid, path))
	}
	return errors.Join(errs...)
}

// createPrivate creates the database file with mode 0600 before SQLite opens it
// (SQLite gives its -wal and -shm files the same mode), and tightens an existing
// file's mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, sqliteFileMode)
	if err != nil {
		return fmt.Errorf("create sqlite file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create sqlite file: %w", err)
	}
	if err := os.Chmod(path, sqliteFileMode); err != nil {
		return fmt.Errorf("chmod sqlite file: %w", err)
	}
	return nil
}
