package incidents

import (
	"context"
	"net/url"
	"strings"

	"github.com/stagegate/stagegate/internal/clock"
)

// Engines a SQLStore runs on.
const (
	// EngineSQLite is the embedded engine: one local file (OpenSQLite).
	EngineSQLite = "sqlite"
	// EnginePostgres is PostgreSQL, for many processes at scale (OpenPostgres).
	EnginePostgres = "postgres"
)

// SQLStore is the Store on a SQL engine, SQLite or PostgreSQL: every store
// method (incidents, review workflow, users, audit, trials, reports, rollout
// evidence) is the same SQL behind a small dialect layer (sql.go). Open,
// OpenSQLite and OpenPostgres return one.
type SQLStore struct {
	sqlStore
	engine string
	path   string // SQLite only
}

var _ Store = (*SQLStore)(nil)

// Engine is EngineSQLite or EnginePostgres.
func (s *SQLStore) Engine() string { return s.engine }

// Path is the SQLite database file ("" on PostgreSQL).
func (s *SQLStore) Path() string { return s.path }

// IsPostgresDSN reports whether target names a PostgreSQL database
// (postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgresDSN(target string) bool {
	t := strings.ToLower(target)
	return strings.HasPrefix(t, "postgres://") || strings.HasPrefix(t, "postgresql://")
}

// Open opens the store target names: a postgres:// or postgresql:// URL opens
// PostgreSQL (OpenPostgres), anything else is a SQLite file path (OpenSQLite).
// Either way the schema is brought to the newest version. A nil clk means the
// wall clock.
func Open(ctx context.Context, target string, clk clock.Clock) (*SQLStore, error) {
	if IsPostgresDSN(target) {
		return OpenPostgres(ctx, target, clk)
	}
	return OpenSQLite(ctx, target, clk)
}

// RedactDSN returns target fit for logs and errors: a URL's password and any
// query parameter named like one (password, sslpassword) become "xxxxx" and the
// fragment is dropped; a SQLite path is returned as it is.
func RedactDSN(target string) string {
	if !IsPostgresDSN(target) {
		return target
	}
	u, err := url.Parse(target)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	u.Fragment, u.RawFragment = "", ""
	q, err := url.ParseQuery(u.RawQuery)
	switch {
	case err != nil:
		u.RawQuery = "(unparsable query)"
	default:
		masked := false
		for k := range q { // password, sslpassword, ...
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
				masked = true
			}
		}
		if masked {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}
