package incidents

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// openTest opens the store of a test at path: a SQLite file, or, when the
// package runs on PostgreSQL (TestPackageOnPostgres), a fresh database per path.
func openTest(t *testing.T, path string, clk clock.Clock) *SQLiteStore {
	t.Helper()
	return openTarget(t, testTarget(t, path), clk)
}

func interaction(id, trial string) *events.Interaction {
	return &events.Interaction{
		Schema:       events.SchemaInteraction,
		ID:           id,
		Trial:        trial,
		Tenant:       "acme",
		User:         "u_1",
		Stage:        "canary",
		LogicalModel: "chat",
		Model:        "cand-a",
		Route:        events.RouteCandidate,
		Status:       events.StatusOK,
		HTTPStatus:   200,
		StartedAt:    t0,
		Request:      events.Request{Messages: []events.Message{{Role: "user", Content: "hello 你好"}}},
		Response:     events.Response{Content: "world"},
	}
}

func finding(in *events.Interaction, id, category, severity string, score float64) events.Finding {
	return events.Finding{
		Schema:          events.SchemaFinding,
		ID:              id,
		InteractionID:   in.ID,
		Trial:           in.Trial,
		Model:           in.Model,
		Detector:        category + "-det",
		DetectorVersion: "1.0.0",
		Category:        category,
		Severity:        severity,
		Score:           score,
		Threshold:       0.3,
		Spans:           []events.Span{{Field: "response", Start: 0, End: 5, Kind: "email"}},
		Explanation:     category + " explanation",
		CreatedAt:       t0,
	}
}

// TestStoreSuite runs the store tests on every engine: SQLite, and PostgreSQL
// when a server is reachable (skipped with a message otherwise; required under
// CI=true).
func TestStoreSuite(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, b backend)
	}{
		{"SchemaRecordedOnce", testSchemaRecordedOnce},
		{"ConcurrentOpenMigratesOnce", testConcurrentOpenMigratesOnce},
		{"RefusesNewerSchema", testRefusesNewerSchema},
		{"UpgradesOlderSchema", testUpgradesOlderSchema},
		{"RecordInteractionIsIdempotent", testRecordInteractionIsIdempotent},
		{"OpenIncidentMergesAndIsIdempotent", testOpenIncidentMergesAndIsIdempotent},
		{"OpenIncidentRejectsInvalidInput", testOpenIncidentRejectsInvalidInput},
		{"OpenIncidentConcurrentRedelivery", testOpenIncidentConcurrentRedelivery},
		{"ConcurrentFindingsOfOneIncident", testConcurrentFindingsOfOneIncident},
		{"IncidentsFiltersAndOrder", testIncidentsFiltersAndOrder},
		{"DataSurvivesReopen", testDataSurvivesReopen},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { c.run(t, b) })
		}
	})
}

// schemaRows reads the newest recorded schema version and the number of rows.
func schemaRows(t *testing.T, s *SQLStore) (version, rows int) {
	t.Helper()
	if err := s.db.QueryRow(`SELECT MAX(version), COUNT(*) FROM schema_migrations`).Scan(&version, &rows); err != nil {
		t.Fatal(err)
	}
	return version, rows
}

func testSchemaRecordedOnce(t *testing.T, b backend) {
	target := b.target(t)
	s := openTarget(t, target, clock.NewFake(t0))
	if s.Engine() != b.name {
		t.Errorf("Engine() = %q, want %q", s.Engine(), b.name)
	}
	if version, rows := schemaRows(t, s); version != len(migrations) || rows != len(migrations) {
		t.Errorf("schema_migrations: version %d rows %d, want %d", version, rows, len(migrations))
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Opening again applies nothing twice.
	s2 := openTarget(t, target, clock.NewFake(t0))
	if _, rows := schemaRows(t, s2); rows != len(migrations) {
		t.Errorf("after reopen: %d migration rows, want %d", rows, len(migrations))
	}
}

// Several processes start at once on an empty database: the migrations run
// once (PostgreSQL: under the advisory lock) and every process opens.
func testConcurrentOpenMigratesOnce(t *testing.T, b backend) {
	target := b.target(t)
	const procs = 4
	stores := make([]*SQLStore, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() { stores[i], errs[i] = Open(context.Background(), target, nil) })
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
	}
	if version, rows := schemaRows(t, stores[0]); version != len(migrations) || rows != len(migrations) {
		t.Errorf("schema_migrations after %d concurrent opens: version %d rows %d, want %d", procs, version, rows, len(migrations))
	}
}

// A database left at schema version 4 by an older binary (the tables of
// migrations 5-7 absent) is brought to the newest version on open, keeping its
// data, and each applied migration is recorded.
func testUpgradesOlderSchema(t *testing.T, b backend) {
	ctx := context.Background()
	target := b.target(t)
	s := openTarget(t, target, clock.NewFake(t0))
	if err := s.RecordInteraction(ctx, interaction("i-old", "t1")); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`DROP TABLE experiment_transitions`, `DROP TABLE experiments`, `DROP TABLE api_keys`,
		`DROP TABLE burst_members`, `DROP TABLE burst_windows`, `DELETE FROM schema_migrations WHERE version > 4`} {
		if _, err := s.db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	s.Close()
	s2 := openTarget(t, target, clock.NewFake(t0))
	if version, rows := schemaRows(t, s2); version != len(migrations) || rows != len(migrations) {
		t.Errorf("after upgrade: version %d rows %d, want %d", version, rows, len(migrations))
	}
	if _, err := s2.Interaction(ctx, "i-old"); err != nil {
		t.Errorf("interaction stored before the upgrade: %v", err)
	}
	for _, table := range []string{"burst_windows", "burst_members", "api_keys", "experiments", "experiment_transitions"} {
		var n int
		if err := s2.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Errorf("table %s after upgrade: %v", table, err)
		}
	}
}

func testRefusesNewerSchema(t *testing.T, b backend) {
	target := b.target(t)
	s := openTarget(t, target, nil)
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := Open(context.Background(), target, nil); !errors.Is(err, ErrSchemaVersion) {
		if err == nil {
			s2.Close()
		}
		t.Errorf("Open on newer schema = %v, want ErrSchemaVersion", err)
	}
}

func testRecordInteractionIsIdempotent(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.open(t, clock.NewFake(t0))

	in := interaction("i1", "t1")
	if err := s.RecordInteraction(ctx, in); err != nil {
		t.Fatal(err)
	}
	again := *in
	again.Response.Content = "changed on redelivery"
	if err := s.RecordInteraction(ctx, &again); err != nil {
		t.Fatalf("second RecordInteraction: %v", err)
	}
	got, err := s.Interaction(ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Response.Content != "world" || got.Request.Messages[0].Content != "hello 你好" || !got.StartedAt.Equal(t0) {
		t.Errorf("stored interaction = %+v, want the first copy", got)
	}
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM interactions`).Scan(&n); err != nil || n != 1 {
		t.Errorf("interactions rows = %d (%v), want 1", n, err)
	}
	if _, err := s.Interaction(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Interaction(nope) = %v, want ErrNotFound", err)
	}
	if err := s.RecordInteraction(ctx, &events.Interaction{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("RecordInteraction(empty id) = %v, want ErrInvalid", err)
	}
	if err := s.RecordInteraction(ctx, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("RecordInteraction(nil) = %v, want ErrInvalid", err)
	}
}

func testOpenIncidentMergesAndIsIdempotent(t *testing.T, b backend) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	s := b.open(t, clk)
	in := interaction("i1", "t1")

	first := []events.Finding{
		finding(in, "f-pii", "pii", events.SeverityMedium, 0.6),
		finding(in, "f-inj", "prompt_injection", events.SeverityHigh, 0.9),
	}
	inc, created, err := s.OpenIncident(ctx, in, first)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("first OpenIncident: created = false")
	}
	if inc.ID != IncidentID("i1") || inc.InteractionID != "i1" || inc.Trial != "t1" || inc.Model != "cand-a" {
		t.Errorf("incident identity = %+v", inc)
	}
	if inc.Category != "prompt_injection" || inc.Severity != events.SeverityHigh || inc.Status != StatusOpen {
		t.Errorf("category/severity/status = %s/%s/%s, want prompt_injection/high/open", inc.Category, inc.Severity, inc.Status)
	}
	if inc.Title != "prompt_injection: prompt_injection explanation (+1 more)" {
		t.Errorf("title = %q", inc.Title)
	}
	if len(inc.Findings) != 2 || !inc.CreatedAt.Equal(t0) {
		t.Errorf("findings = %d, created_at = %v", len(inc.Findings), inc.CreatedAt)
	}

	// Redelivery: same findings again, in another order.
	clk.Advance(time.Minute)
	again, created, err := s.OpenIncident(ctx, in, []events.Finding{first[1], first[0]})
	if err != nil {
		t.Fatal(err)
	}
	if created || again.ID != inc.ID || len(again.Findings) != 2 || !again.UpdatedAt.Equal(t0) {
		t.Errorf("redelivery: created=%v id=%s findings=%d updated=%v; want same incident untouched",
			created, again.ID, len(again.Findings), again.UpdatedAt)
	}

	// A later detector adds a critical finding: it joins the same incident and wins.
	clk.Advance(time.Minute)
	crit := finding(in, "f-tox", "toxicity", events.SeverityCritical, 0.99)
	merged, created, err := s.OpenIncident(ctx, in, []events.Finding{first[0], crit})
	if err != nil {
		t.Fatal(err)
	}
	if created || len(merged.Findings) != 3 || merged.Severity != events.SeverityCritical || merged.Category != "toxicity" {
		t.Errorf("merge: created=%v findings=%d %s/%s", created, len(merged.Findings), merged.Category, merged.Severity)
	}
	if !merged.UpdatedAt.Equal(t0.Add(2*time.Minute)) || !merged.CreatedAt.Equal(t0) {
		t.Errorf("merge times: created %v updated %v", merged.CreatedAt, merged.UpdatedAt)
	}

	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM findings`).Scan(&n); err != nil || n != 3 {
		t.Errorf("findings rows = %d (%v), want 3", n, err)
	}
	got, err := s.Incident(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Severity != events.SeverityCritical || len(got.Findings) != 3 || got.Findings[0].Spans[0].Kind != "email" {
		t.Errorf("Incident() = %+v", got)
	}
	if _, err := s.Incident(ctx, "inc_missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Incident(missing) = %v, want ErrNotFound", err)
	}
}

func testOpenIncidentRejectsInvalidInput(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.open(t, nil)
	in := interaction("i1", "t1")
	other := interaction("i2", "t1")
	tests := []struct {
		name string
		in   *events.Interaction
		fs   []events.Finding
	}{
		{"nil interaction", nil, []events.Finding{finding(in, "f", "pii", "low", 0.5)}},
		{"no findings", in, nil},
		{"other interaction", in, []events.Finding{finding(other, "f", "pii", "low", 0.5)}},
		{"bad severity", in, []events.Finding{finding(in, "f", "pii", "urgent", 0.5)}},
		{"empty finding id", in, []events.Finding{finding(in, "", "pii", "low", 0.5)}},
		{"too many", in, make([]events.Finding, MaxFindings+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.OpenIncident(ctx, tt.in, tt.fs); !errors.Is(err, ErrInvalid) {
				t.Errorf("OpenIncident = %v, want ErrInvalid", err)
			}
		})
	}
	if got, err := s.Incidents(ctx, Filter{}); err != nil || len(got) != 0 {
		t.Errorf("after rejected calls: %d incidents (%v), want 0", len(got), err)
	}
}

// Eight workers (on two store handles, as two processes would) handle the same
// interaction at once: exactly one of them creates the incident.
func testOpenIncidentConcurrentRedelivery(t *testing.T, b backend) {
	ctx := context.Background()
	target := b.target(t)
	stores := []*SQLStore{openTarget(t, target, nil), openTarget(t, target, nil)}
	in := interaction("i-race", "t1")
	fs := []events.Finding{
		finding(in, "f1", "pii", events.SeverityHigh, 0.9),
		finding(in, "f2", "prompt_injection", events.SeverityLow, 0.4),
	}

	const workers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		ids     = map[string]bool{}
		errs    []error
	)
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			s := stores[w%len(stores)]
			if err := s.RecordInteraction(ctx, in); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			inc, c, err := s.OpenIncident(ctx, in, fs)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if c {
				created++
			}
			ids[inc.ID] = true
			if len(inc.Findings) != 2 {
				errs = append(errs, fmt.Errorf("worker %d saw %d findings", w, len(inc.Findings)))
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errors.Join(errs...))
	}
	if created != 1 || len(ids) != 1 {
		t.Errorf("created=%d distinct ids=%d, want 1 and 1", created, len(ids))
	}
	list, err := stores[0].Incidents(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || len(list[0].Findings) != 2 {
		t.Errorf("Incidents = %d (findings %v), want 1 with 2 findings", len(list), list)
	}
}

// Detectors in different processes report different findings of one existing
// incident at once: every finding joins it, the worst one wins, and no
// transaction fails (on PostgreSQL the row lock must not deadlock with the
// foreign-key checks of the finding inserts).
func testConcurrentFindingsOfOneIncident(t *testing.T, b backend) {
	ctx := context.Background()
	target := b.target(t)
	stores := []*SQLStore{openTarget(t, target, nil), openTarget(t, target, nil)}
	in := interaction("i-many", "t1")
	if _, _, err := stores[0].OpenIncident(ctx, in, []events.Finding{finding(in, "f-0", "pii", events.SeverityLow, 0.1)}); err != nil {
		t.Fatal(err)
	}
	const workers = 12
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			sev := events.SeverityMedium
			if w == workers-1 {
				sev = events.SeverityCritical
			}
			f := finding(in, fmt.Sprintf("f-%d", w+1), fmt.Sprintf("cat%d", w), sev, 0.5)
			_, _, errs[w] = stores[w%len(stores)].OpenIncident(ctx, in, []events.Finding{f})
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent OpenIncident: %v", err)
	}
	got, err := stores[1].Incident(ctx, IncidentID(in.ID))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) != workers+1 || got.Severity != events.SeverityCritical || got.Category != fmt.Sprintf("cat%d", workers-1) {
		t.Errorf("incident after concurrent findings: %d findings, %s/%s; want %d, cat%d/critical",
			len(got.Findings), got.Category, got.Severity, workers+1, workers-1)
	}
}

func testIncidentsFiltersAndOrder(t *testing.T, b backend) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	s := b.open(t, clk)

	// i0..i5, one minute apart; trials alternate, categories in thirds.
	cats := []string{"pii", "pii", "toxicity", "toxicity", "prompt_injection", "prompt_injection"}
	for i, cat := range cats {
		in := interaction(fmt.Sprintf("i%d", i), []string{"ta", "tb"}[i%2])
		if _, _, err := s.OpenIncident(ctx, in, []events.Finding{finding(in, fmt.Sprintf("f%d", i), cat, events.SeverityMedium, 0.5)}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	// Set a status directly, bypassing the workflow.
	if _, err := s.db.Exec(s.st.d.bind(`UPDATE incidents SET status = ? WHERE interaction_id IN ('i1', 'i4')`), StatusConfirmed); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		f    Filter
		want []string // interaction ids, newest first
	}{
		{"all", Filter{}, []string{"i5", "i4", "i3", "i2", "i1", "i0"}},
		{"trial", Filter{Trial: "ta"}, []string{"i4", "i2", "i0"}},
		{"status", Filter{Status: StatusConfirmed}, []string{"i4", "i1"}},
		{"category", Filter{Category: "toxicity"}, []string{"i3", "i2"}},
		{"trial+category", Filter{Trial: "tb", Category: "pii"}, []string{"i1"}},
		{"trial+status+category", Filter{Trial: "ta", Status: StatusOpen, Category: "prompt_injection"}, nil},
		{"limit", Filter{Limit: 2}, []string{"i5", "i4"}},
		{"limit above max is clamped", Filter{Limit: MaxLimit + 5}, []string{"i5", "i4", "i3", "i2", "i1", "i0"}},
		{"unknown trial", Filter{Trial: "zz"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Incidents(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, inc := range got {
				ids = append(ids, inc.InteractionID)
				if len(inc.Findings) != 1 || inc.Findings[0].InteractionID != inc.InteractionID {
					t.Errorf("%s: findings %+v", inc.ID, inc.Findings)
				}
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}

	for _, bad := range []Filter{{Status: "closed"}, {Limit: -1}, {Trial: string(make([]byte, 100))}} {
		if _, err := s.Incidents(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Incidents(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func testDataSurvivesReopen(t *testing.T, b backend) {
	ctx := context.Background()
	target := b.target(t)
	s, err := Open(ctx, target, clock.NewFake(t0))
	if err != nil {
		t.Fatal(err)
	}
	in := interaction("i-keep", "t1")
	if err := s.RecordInteraction(ctx, in); err != nil {
		t.Fatal(err)
	}
	inc, _, err := s.OpenIncident(ctx, in, []events.Finding{finding(in, "f1", "pii", events.SeverityHigh, 0.9)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openTarget(t, target, clock.NewFake(t0.Add(time.Hour)))
	got, err := s2.Incident(ctx, inc.ID)
	if err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if got.Severity != events.SeverityHigh || len(got.Findings) != 1 || !got.CreatedAt.Equal(t0) {
		t.Errorf("after reopen: %+v", got)
	}
	if _, err := s2.Interaction(ctx, "i-keep"); err != nil {
		t.Errorf("interaction after reopen: %v", err)
	}
	// Redelivery after a restart still converges on the same incident.
	if _, created, err := s2.OpenIncident(ctx, in, []events.Finding{finding(in, "f1", "pii", events.SeverityHigh, 0.9)}); err != nil || created {
		t.Errorf("redelivery after reopen: created=%v err=%v", created, err)
	}
}

// SQLite specifics: the file and its WAL are private, the per-connection
// pragmas took effect, and paths SQLite would misread are refused.
func TestOpenSQLiteCreatesPrivateFileWithPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "incidents.db")
	s, err := OpenSQLite(context.Background(), path, clock.NewFake(t0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path || s.Engine() != EngineSQLite {
		t.Errorf("Path() = %q, Engine() = %q", s.Path(), s.Engine())
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %o, want 600", got)
	}
	// A write creates the -wal file; it must not be world-readable either.
	if err := s.RecordInteraction(context.Background(), interaction("i1", "t1")); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{"-wal", "-shm"} {
		st, err := os.Stat(path + side)
		if err != nil {
			t.Fatalf("WAL mode should have created %s: %v", side, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s mode = %o, want no group/other bits", side, st.Mode().Perm())
		}
	}
	var fk, busy int
	if err := s.db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if fk != 1 || busy != 5000 {
		t.Errorf("foreign_keys=%d busy_timeout=%d, want 1 and 5000", fk, busy)
	}
}

func TestOpenSQLiteRejectsBadPaths(t *testing.T) {
	ctx := context.Background()
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "a?b.db")} {
		if _, err := OpenSQLite(ctx, p, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("OpenSQLite(%q) = %v, want ErrInvalid", p, err)
		}
	}
}

func TestWorstAndTitle(t *testing.T) {
	in := interaction("i1", "t1")
	tests := []struct {
		name      string
		fs        []events.Finding
		wantCat   string
		wantTitle string
	}{
		{"single", []events.Finding{finding(in, "a", "pii", "low", 0.4)}, "pii", "pii: pii explanation"},
		{"severity beats score", []events.Finding{
			finding(in, "a", "pii", "high", 0.7), finding(in, "b", "toxicity", "medium", 0.99),
		}, "pii", "pii: pii explanation (+1 more)"},
		{"score breaks tie", []events.Finding{
			finding(in, "a", "pii", "high", 0.7), finding(in, "b", "toxicity", "high", 0.8),
		}, "toxicity", "toxicity: toxicity explanation (+1 more)"},
		{"id breaks full tie", []events.Finding{
			finding(in, "b", "toxicity", "high", 0.8), finding(in, "a", "pii", "high", 0.8),
		}, "pii", "pii: pii explanation (+1 more)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inc Incident
			summarize(&inc, tt.fs)
			if inc.Category != tt.wantCat || inc.Title != tt.wantTitle {
				t.Errorf("got %s %q, want %s %q", inc.Category, inc.Title, tt.wantCat, tt.wantTitle)
			}
		})
	}
	long := finding(in, "a", "pii", "low", 0.4)
	long.Explanation = string(make([]rune, 500))
	var inc Incident
	summarize(&inc, []events.Finding{long})
	if n := len([]rune(inc.Title)); n != MaxTitleRunes {
		t.Errorf("long title has %d code points, want %d", n, MaxTitleRunes)
	}
}

func TestIncidentIDIsDeterministic(t *testing.T) {
	a, b := IncidentID("x"), IncidentID("x")
	if a != b || a == IncidentID("y") || len(a) != len("inc_")+20 {
		t.Errorf("IncidentID: %q %q %q", a, b, IncidentID("y"))
	}
}

func BenchmarkOpenIncident(b *testing.B) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in := interaction(fmt.Sprintf("i%d", i), "t1")
		i++
		if err := s.RecordInteraction(ctx, in); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.OpenIncident(ctx, in, []events.Finding{finding(in, in.ID+"-f", "pii", "high", 0.9)}); err != nil {
			b.Fatal(err)
		}
	}
}
