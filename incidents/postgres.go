package incidents

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // pgx's database/sql driver, so the generic sqlStore runs on it

	"github.com/stagegate/stagegate/internal/clock"
)

// PostgreSQL connection settings.
const (
	// PostgresMaxOpenConns bounds one process's connection pool. Size the server's
	// max_connections for (monitors + consoles + controllers) × this, plus headroom.
	PostgresMaxOpenConns = 16
	// PostgresMaxIdleConns connections stay open between bursts.
	PostgresMaxIdleConns = 4
	// PostgresConnMaxLifetime recycles connections, so a fail-over or a
	// connection pooler's rebalancing reaches every process.
	PostgresConnMaxLifetime = 30 * time.Minute
	// PostgresMinServerVersion is the oldest server accepted (server_version_num):
	// ON CONFLICT, FOR NO KEY UPDATE and jsonb all predate it.
	PostgresMinServerVersion = 120000
	// postgresConnectTimeout bounds connecting when the DSN sets no connect_timeout.
	postgresConnectTimeout = 10 * time.Second
	// postgresMigrationLockKey is the pg_advisory_lock key held while migrating:
	// the first 8 bytes of SHA-256("stagegate.incidents.migrations"), top bit cleared.
	postgresMigrationLockKey = 0x0cf0cd73b5245f9f
)

// postgresDialect renders "?" as $1, $2, ... and locks the row a read-then-write
// transaction reads. FOR NO KEY UPDATE (not FOR UPDATE) does not conflict with
// the KEY SHARE lock a foreign-key check takes, so two transactions that both
// inserted a finding of one incident and then lock it wait for each other
// instead of deadlocking.
var postgresDialect = dialect{
	name:             EnginePostgres,
	numbered:         true,
	forUpdate:        " FOR NO KEY UPDATE",
	lockMigrations:   "SELECT pg_advisory_lock(" + strconv.FormatInt(postgresMigrationLockKey, 10) + ")",
	unlockMigrations: "SELECT pg_advisory_unlock(" + strconv.FormatInt(postgresMigrationLockKey, 10) + ")",
	retryable:        postgresRetryable,
}

// PostgreSQL error codes after which a transaction is run again.
const (
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

// postgresRetryable reports a transaction the server aborted so that another
// could proceed; running it again is safe.
func postgresRetryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == pgSerializationFailure || pe.Code == pgDeadlockDetected
}

// OpenPostgres connects to the PostgreSQL database named by dsn (a postgres://
// or postgresql:// URL, or libpq key=value settings), checks the server and
// brings the schema to the newest version. Several processes may open one
// database at once: the migrations run under an advisory lock, so each is
// applied exactly once, and every write is a transaction safe under concurrent
// writers. A nil clk means the wall clock. Errors never include the password.
func OpenPostgres(ctx context.Context, dsn string, clk clock.Clock) (*SQLStore, error) {
	name := RedactDSN(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors already mask the password.
		return nil, fmt.Errorf("%w: postgres dsn %s: %w", ErrInvalid, name, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = postgresConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(PostgresMaxOpenConns)
	db.SetMaxIdleConns(PostgresMaxIdleConns)
	db.SetConnMaxLifetime(PostgresConnMaxLifetime)
	s := &SQLStore{
		sqlStore: sqlStore{db: db, st: newStatements(postgresDialect), clk: clock.OrReal(clk)},
		engine:   EnginePostgres,
	}
	if err := checkPostgres(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres %s: %w", name, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres %s: %w", name, err)
	}
	return s, nil
}

// checkPostgres connects and verifies the server is new enough.
func checkPostgres(ctx context.Context, db *sql.DB) error {
	var raw string
	if err := db.QueryRowContext(ctx, "SHOW server_version_num").Scan(&raw); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	v, err := strconv.Atoi(raw)
	if err != nil {
		return fmt.Errorf("server_version_num %q: %w", raw, err)
	}
	if v < PostgresMinServerVersion {
		return fmt.Errorf("server version %d is older than %d", v, PostgresMinServerVersion)
	}
	return nil
}
