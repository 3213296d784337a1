package incidents

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// The schema is a sequence of SQL files embedded in the binary, applied in
// order on start (store.go, migrate) under the dialect's migration lock and
// recorded in schema_migrations. File NNNN_name.sql brings the schema to
// version NNNN; numbers start at 1 and have no gaps. Statements are written in
// the subset SQLite and PostgreSQL share (see sql.go) and end with ";" at the
// end of a line; "--" starts a comment line. Never edit a released migration:
// add a new file with the next number.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one parsed migration file.
type migration struct {
	// Version the schema is at after this migration (the file's number).
	Version int
	// Name is the file name, for errors.
	Name string
	// Statements run in order, in the migration transaction.
	Statements []string
}

// migrations are the embedded migrations, parsed once at start; a malformed
// file is a build mistake caught by every test of the package.
var migrations = mustLoadMigrations(migrationFiles, "migrations")

func mustLoadMigrations(fsys fs.FS, dir string) []migration {
	ms, err := loadMigrations(fsys, dir)
	if err != nil {
		panic(err)
	}
	return ms
}

// loadMigrations reads and checks every *.sql file of dir: names NNNN_name.sql
// numbered 1, 2, 3, ... without gaps or duplicates, each with at least one
// statement. Every problem is reported at once.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var (
		out  []migration
		errs []error
	)
	for _, e := range entries { // ReadDir sorts by name
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			continue
		}
		num, _, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 || v < 1 {
			errs = append(errs, fmt.Errorf("migration %s: name must be NNNN_name.sql with NNNN from 0001", name))
			continue
		}
		if want := len(out) + 1; v != want {
			errs = append(errs, fmt.Errorf("migration %s: version %d, want %d (no gaps or duplicates)", name, v, want))
		}
		src, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("migration %s: %w", name, err))
			continue
		}
		stmts, err := splitStatements(string(src))
		if err != nil {
			errs = append(errs, fmt.Errorf("migration %s: %w", name, err))
		}
		out = append(out, migration{Version: v, Name: name, Statements: stmts})
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no migrations"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// splitStatements splits a migration file into statements: "--" comment lines
// are dropped and a statement ends with ";" at the end of a line. The schema
// holds no string literal spanning a line end, so this needs no SQL parser.
func splitStatements(src string) ([]string, error) {
	var (
		stmts []string
		cur   strings.Builder
	)
	for line := range strings.Lines(src) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(t, ";") {
			s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			if s == "" {
				return nil, errors.New(`empty statement (a lone ";")`)
			}
			stmts = append(stmts, s)
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		return nil, fmt.Errorf("statement without a closing \";\": %.60q", rest)
	}
	if len(stmts) == 0 {
		return nil, errors.New("no statements")
	}
	return stmts, nil
}
