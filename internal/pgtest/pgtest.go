// Package pgtest gives a test its own PostgreSQL database: it creates a fresh
// database (stagegate_test_<random>) on the server named by
// STAGEGATE_TEST_POSTGRES (default DefaultAdminDSN, the server this machine and
// CI run) and drops it when the test ends.
//
// When the server cannot be reached the test is skipped with a message saying
// so, except under CI=true, where PostgreSQL is part of the environment and the
// test fails instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// EnvAdminDSN names the environment variable holding the admin DSN: a
	// postgres:// URL of a role allowed to CREATE DATABASE.
	EnvAdminDSN = "STAGEGATE_TEST_POSTGRES"
	// DefaultAdminDSN is the local server (user postgres, trust auth).
	DefaultAdminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	// DBPrefix starts the name of every database a test creates.
	DBPrefix = "stagegate_test_"
	// dialTimeout bounds the reachability check.
	dialTimeout = 2 * time.Second
	// opTimeout bounds creating or dropping a database.
	opTimeout = 30 * time.Second
)

// AdminDSN is the admin DSN the tests use.
func AdminDSN() string {
	if v := strings.TrimSpace(os.Getenv(EnvAdminDSN)); v != "" {
		return v
	}
	return DefaultAdminDSN
}

// Required reports whether PostgreSQL must be available (CI=true).
func Required() bool { return os.Getenv("CI") == "true" }

// Available checks that the admin DSN's server accepts TCP connections; the
// error says why not.
func Available() error {
	u, err := url.Parse(AdminDSN())
	if err != nil {
		return fmt.Errorf("%s: %w", EnvAdminDSN, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	c, err := net.DialTimeout("tcp", host, dialTimeout)
	if err != nil {
		return err
	}
	return c.Close()
}

// Skip skips t (or fails it under CI=true) when PostgreSQL is unreachable.
func Skip(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	u, _ := url.Parse(AdminDSN())
	where := "the configured server"
	if u != nil {
		where = u.Host
	}
	if Required() {
		t.Fatalf("PostgreSQL at %s is required under CI=true but unreachable: %v (set %s)", where, err, EnvAdminDSN)
	}
	t.Skipf("SKIP PostgreSQL tests: no server at %s (%v); set %s to a postgres:// admin URL to run them", where, err, EnvAdminDSN)
}

// DSN creates a fresh, empty database for t and returns its postgres:// URL; the
// database is dropped (with its connections) when t ends. t is skipped, or
// failed under CI=true, when PostgreSQL is unreachable.
func DSN(t testing.TB) string {
	t.Helper()
	Skip(t)
	name, dsn, err := Create(context.Background())
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if err := Drop(context.Background(), name); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return dsn
}

// Create makes a database named DBPrefix plus random hex on the admin server and
// returns its name and URL. Callers outside tests drop it with Drop.
func Create(ctx context.Context) (name, dsn string, err error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	name = DBPrefix + hex.EncodeToString(b[:])
	u, err := url.Parse(AdminDSN())
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", EnvAdminDSN, err)
	}
	if err := admin(ctx, "CREATE DATABASE "+name); err != nil {
		return "", "", err
	}
	u.Path = "/" + name
	return name, u.String(), nil
}

// Drop removes a database Create made, closing its remaining connections.
func Drop(ctx context.Context, name string) error {
	if !strings.HasPrefix(name, DBPrefix) || strings.Trim(name[len(DBPrefix):], "0123456789abcdef") != "" {
		return fmt.Errorf("refusing to drop %q: not a test database", name)
	}
	return admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

// admin runs one statement on the admin DSN.
func admin(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}
