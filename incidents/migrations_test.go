package incidents

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

var updateMigrations = flag.Bool("update", false, "rewrite testdata/migrations.sum from the embedded migrations")

// TestReleasedMigrationsUnchanged: a released migration may never change (a
// database that applied it would silently differ from a new one). The SHA-256
// of every migration file is pinned in testdata/migrations.sum; adding a file
// needs -update, editing a pinned one fails here.
func TestReleasedMigrationsUnchanged(t *testing.T) {
	var b strings.Builder
	for _, m := range migrations {
		src, err := fs.ReadFile(migrationFiles, "migrations/"+m.Name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(src)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), m.Name)
	}
	golden := filepath.Join("testdata", "migrations.sum")
	if *updateMigrations {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestReleasedMigrationsUnchanged -update after adding a migration)", err)
	}
	pinned := strings.Split(strings.TrimSpace(string(want)), "\n")
	have := strings.Split(strings.TrimSpace(b.String()), "\n")
	for i, line := range pinned {
		if i >= len(have) {
			t.Errorf("released migration removed: %s", line)
			continue
		}
		if have[i] != line {
			t.Errorf("released migration changed: have %q, pinned %q; add a new migration instead", have[i], line)
		}
	}
	if len(have) > len(pinned) {
		t.Errorf("%d new migration(s) not pinned; run with -update: %v", len(have)-len(pinned), have[len(pinned):])
	}
}

// TestMigrationsEmbedded: the schema comes from the embedded files, in order,
// each table created by the migration that introduced it.
func TestMigrationsEmbedded(t *testing.T) {
	want := map[int]string{
		1: "CREATE TABLE IF NOT EXISTS interactions", 2: "CREATE TABLE IF NOT EXISTS incident_transitions",
		3: "CREATE TABLE IF NOT EXISTS trial_revisions", 4: "CREATE TABLE IF NOT EXISTS trial_rules",
		5: "CREATE TABLE IF NOT EXISTS burst_windows", 6: "CREATE TABLE IF NOT EXISTS api_keys",
		7: "CREATE TABLE IF NOT EXISTS experiments",
	}
	if len(migrations) < len(want) {
		t.Fatalf("%d migrations, want at least %d", len(migrations), len(want))
	}
	for i, m := range migrations {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d", i+1, m.Version)
		}
		if w, ok := want[m.Version]; ok && !strings.HasPrefix(m.Statements[0], w) {
			t.Errorf("migration %s starts %.60q, want %q", m.Name, m.Statements[0], w)
		}
		for _, s := range m.Statements {
			if strings.HasSuffix(s, ";") || strings.Contains(s, "--") {
				t.Errorf("migration %s: statement not cleaned: %.80q", m.Name, s)
			}
		}
	}
}

func TestLoadMigrationsRejects(t *testing.T) {
	ok := &fstest.MapFile{Data: []byte("-- a comment\nCREATE TABLE a (x TEXT);\n")}
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  []string
	}{
		{"gap", fstest.MapFS{"m/0001_a.sql": ok, "m/0003_c.sql": ok}, []string{"0003_c.sql: version 3, want 2"}},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": ok, "m/0001_b.sql": ok}, []string{"0001_b.sql: version 1, want 2"}},
		{"bad name", fstest.MapFS{"m/1_a.sql": ok, "m/0001-b.sql": ok}, []string{"1_a.sql: name must be", "0001-b.sql: name must be"}},
		{"zero", fstest.MapFS{"m/0000_a.sql": ok}, []string{"0000_a.sql: name must be"}},
		{"unterminated", fstest.MapFS{"m/0001_a.sql": {Data: []byte("CREATE TABLE a (x TEXT)\n")}}, []string{`without a closing ";"`}},
		{"empty", fstest.MapFS{"m/0001_a.sql": {Data: []byte("-- only a comment\n\n")}}, []string{"0001_a.sql: no statements"}},
		{"none", fstest.MapFS{"m/README": {Data: []byte("x")}}, []string{"no migrations"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadMigrations(tc.files, "m")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	ms, err := loadMigrations(fstest.MapFS{"m/0001_a.sql": ok, "m/0002_b.sql": {Data: []byte("CREATE TABLE b (\n  x TEXT\n);\nCREATE INDEX bx ON b (x);")}, "m/notes.txt": {Data: []byte("x")}}, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || len(ms[1].Statements) != 2 || ms[1].Statements[1] != "CREATE INDEX bx ON b (x)" {
		t.Fatalf("parsed %+v", ms)
	}
}

func FuzzSplitStatements(f *testing.F) {
	for _, m := range migrations {
		src, _ := fs.ReadFile(migrationFiles, "migrations/"+m.Name)
		f.Add(string(src))
	}
	f.Add("-- x\n;\n")
	f.Fuzz(func(t *testing.T, src string) {
		stmts, err := splitStatements(src)
		if err != nil {
			return
		}
		if len(stmts) == 0 {
			t.Fatal("no statements and no error")
		}
		for _, s := range stmts {
			if s == "" || s != strings.TrimSpace(s) {
				t.Fatalf("statement %q is empty or untrimmed", s)
			}
			for line := range strings.Lines(s) {
				if strings.HasPrefix(strings.TrimSpace(line), "--") {
					t.Fatalf("comment line kept in %q", s)
				}
			}
		}
	})
}
