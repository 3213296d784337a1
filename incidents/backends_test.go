package incidents

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/internal/pgtest"
)

// envTestEngine, set to "postgres", makes openTest give every test of the
// package a PostgreSQL database instead of its SQLite file.
const envTestEngine = "STAGEGATE_TEST_ENGINE"

// onPostgres reports whether this test process runs the package on PostgreSQL.
func onPostgres() bool { return os.Getenv(envTestEngine) == EnginePostgres }

// backend is an engine the store suite runs on.
type backend struct {
	name string
	// target returns a fresh, empty database for t: a SQLite file path or a
	// PostgreSQL URL. It skips t (or fails it under CI=true) when the engine is
	// unavailable.
	target func(t *testing.T) string
}

// backends are the engines every suite test runs on.
var backends = []backend{
	{EngineSQLite, func(t *testing.T) string { return filepath.Join(t.TempDir(), "stagegate.db") }},
	{EnginePostgres, func(t *testing.T) string { return pgtest.DSN(t) }},
}

// forEachBackend runs fn as a subtest per engine.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// open opens a fresh database of b for t.
func (b backend) open(t *testing.T, clk clock.Clock) *SQLStore {
	t.Helper()
	return openTarget(t, b.target(t), clk)
}

// openTarget opens target (path or DSN) and closes it when t ends.
func openTarget(t *testing.T, target string, clk clock.Clock) *SQLStore {
	t.Helper()
	s, err := Open(context.Background(), target, clk)
	if err != nil {
		t.Fatalf("Open(%s): %v", RedactDSN(target), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pgByPath maps a test's SQLite path to the PostgreSQL database standing in for
// it, so a test opening one path twice (two processes) shares one database.
var pgByPath = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// testTarget is path, or under STAGEGATE_TEST_ENGINE=postgres the database
// standing in for it.
func testTarget(t *testing.T, path string) string {
	t.Helper()
	if !onPostgres() {
		return path
	}
	pgByPath.Lock()
	defer pgByPath.Unlock()
	if dsn, ok := pgByPath.m[path]; ok {
		return dsn
	}
	dsn := pgtest.DSN(t)
	pgByPath.m[path] = dsn
	t.Cleanup(func() {
		pgByPath.Lock()
		delete(pgByPath.m, path)
		pgByPath.Unlock()
	})
	return dsn
}

// TestPackageOnPostgres runs every test of this package again in a child
// process whose openTest hands out PostgreSQL databases, so every migration and
// query the package holds — the review workflow, users, audit, trials, reports,
// bursts, rollout evidence — is exercised on both engines.
func TestPackageOnPostgres(t *testing.T) {
	if onPostgres() {
		t.Skip("already running on PostgreSQL")
	}
	pgtest.Skip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.count=1", "-test.run=^(Test|Example)", "-test.skip=^(TestStoreSuite|TestPackageOnPostgres)$", "-test.v")
	cmd.Env = append(os.Environ(), envTestEngine+"="+EnginePostgres)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	passed, skipped := strings.Count(out.String(), "--- PASS"), strings.Count(out.String(), "--- SKIP")
	if err != nil {
		t.Fatalf("package tests on PostgreSQL failed: %v\n%s", err, failures(out.String()))
	}
	if passed == 0 {
		t.Fatalf("package tests on PostgreSQL ran nothing:\n%s", out.String())
	}
	t.Logf("package tests on PostgreSQL: %d passed, %d skipped", passed, skipped)
}

// failures keeps the lines of a verbose test log that explain failures.
func failures(log string) string {
	var b strings.Builder
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "=== RUN") || strings.HasPrefix(strings.TrimSpace(l), "--- PASS") {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}
