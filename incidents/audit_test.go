package incidents

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

func appendN(t *testing.T, s *SQLiteStore, clk *clock.Fake, trial string, n int) {
	t.Helper()
	for i := range n {
		clk.Advance(time.Minute)
		if _, err := s.Audit(context.Background(), AuditRecord{Actor: "rita", Action: "key.add", Object: fmt.Sprintf("key:k%d", i),
			Trial: trial, Reason: "onboarding", Detail: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
}

func verify(t *testing.T, s *SQLiteStore) AuditVerification {
	t.Helper()
	v, err := s.VerifyAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAuditChainVerifiesAndNamesTamperedEntry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tamper  string // SQL run against the stored log
		want    int64
		problem string
	}{
		{"content changed", `UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`, 3, "changed after it was written"},
		{"detail changed", `UPDATE audit_log SET detail = '{"i":99}' WHERE seq = 4`, 4, "changed after it was written"},
		{"time changed", `UPDATE audit_log SET at = at + 1 WHERE seq = 2`, 2, "changed after it was written"},
		{"entry removed", `DELETE FROM audit_log WHERE seq = 3`, 3, "entry 3 is missing"},
		{"tail removed", `DELETE FROM audit_log WHERE seq >= 4`, 4, "removed from the end"},
		{"rehashed replacement", "", 4, "does not link to entry 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			s := openTest(t, filepath.Join(t.TempDir(), "a.db"), clk)
			appendN(t, s, clk, "t1", 5)
			if v := verify(t, s); !v.OK || v.Entries != 5 || v.FirstSeq != 1 || v.LastSeq != 5 || v.HeadHash == auditGenesis {
				t.Fatalf("intact chain: %+v", v)
			}
			if tc.tamper != "" {
				if _, err := s.db.Exec(tc.tamper); err != nil {
					t.Fatal(err)
				}
			} else {
				// A careful forger rewrites entry 3 and recomputes its hash: entry 3
				// checks out alone, but entry 4 no longer links to it.
				e, err := scanAudit(s.db.QueryRow(`SELECT ` + auditColumns + ` FROM audit_log WHERE seq = 3`))
				if err != nil {
					t.Fatal(err)
				}
				e.Actor = "mallory"
				if _, err := s.db.Exec(s.st.d.bind(`UPDATE audit_log SET actor = ?, hash = ? WHERE seq = 3`), e.Actor, e.computeHash(newHash())); err != nil {
					t.Fatal(err)
				}
			}
			v := verify(t, s)
			if v.OK || v.BrokenSeq != tc.want || !strings.Contains(v.Problem, tc.problem) {
				t.Fatalf("tampered chain: %+v, want entry %d (%s)", v, tc.want, tc.problem)
			}
		})
	}
}

func TestAuditConcurrentAppendsStayChained(t *testing.T) {
	clk := clock.NewFake(t0)
	path := filepath.Join(t.TempDir(), "c.db")
	s1 := openTest(t, path, clk)
	s2 := openTest(t, path, clk) // a second process on the same file
	var wg sync.WaitGroup
	for w, s := range []*SQLiteStore{s1, s2, s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := s.Audit(context.Background(), AuditRecord{Actor: "w", Action: "login", Object: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if v := verify(t, s1); !v.OK || v.Entries != 100 {
		t.Fatalf("after concurrent appends: %+v", v)
	}
}

func TestAuditRecordValidation(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "v.db"), clock.NewFake(t0))
	_, err := s.Audit(context.Background(), AuditRecord{Action: "Bad Action", Trial: "a b", Object: strings.Repeat("x", 300)})
	for _, want := range []string{"actor", "action", "trial", "object"} {
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not mention %s", err, want)
		}
	}
	if _, err := s.Audit(context.Background(), AuditRecord{Actor: "x", Action: "a", Detail: make(chan int)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unencodable detail: %v", err)
	}
}

func TestAuditRetentionAndLegalHold(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), clk)
	ctx := context.Background()
	// Trial "long" keeps a year through its definition; "short" the default 180 days.
	if _, _, err := s.PutTrialRevision(ctx, "long", "reg", "", []byte("id: long\ndata_handling:\n  retention_days: 365\n")); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, clk, "short", 3) // seq 1-3
	appendN(t, s, clk, "long", 2)  // seq 4-5
	appendN(t, s, clk, "short", 2) // seq 6-7

	prune := func() AuditPrune {
		t.Helper()
		p, err := s.PruneAudit(ctx, "ops")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := prune(); p.Removed != 0 || !strings.Contains(p.Why, "retention") {
		t.Errorf("nothing old yet: %+v", p)
	}
	clk.Advance(181 * 24 * time.Hour)
	// A legal hold on "short" keeps everything from its first entry on.
	if err := s.SetLegalHold(ctx, "short", true, "reg", "litigation 2026-17"); err != nil {
		t.Fatal(err)
	}
	if p := prune(); p.Removed != 0 || p.StoppedAt != 1 || !strings.Contains(p.Why, "legal hold") {
		t.Errorf("under hold: %+v", p)
	}
	if err := s.SetLegalHold(ctx, "short", false, "reg", "case closed"); err != nil {
		t.Fatal(err)
	}
	// Lifted: the three old "short" entries go; the "long" ones keep a year and
	// stop the prefix there.
	p := prune()
	if p.Removed != 3 || p.Through != 3 || p.StoppedAt != 4 {
		t.Fatalf("after hold lifted: %+v", p)
	}
	v := verify(t, s)
	if !v.OK || v.PrunedThrough != 3 || v.FirstSeq != 4 {
		t.Fatalf("chain after pruning: %+v", v)
	}
	// The first kept entry must still link to the anchor: replacing it breaks it.
	if _, err := s.db.Exec(s.st.d.bind(`UPDATE audit_head SET pruned_hash = ? WHERE id = 1`), auditGenesis); err != nil {
		t.Fatal(err)
	}
	if v := verify(t, s); v.OK || v.BrokenSeq != 4 {
		t.Errorf("forged anchor: %+v", v)
	}
	if err := s.SetLegalHold(ctx, "no such", true, "reg", "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad trial: %v", err)
	}
	if err := s.SetLegalHold(ctx, HoldAll, true, "reg", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("hold without reason: %v", err)
	}
}

func TestAuditEntriesFilter(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "f.db"), clk)
	appendN(t, s, clk, "t1", 3)
	appendN(t, s, clk, "t2", 2)
	got, err := s.AuditEntries(context.Background(), AuditFilter{Trial: "t1", Limit: 2})
	if err != nil || len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 2 {
		t.Fatalf("t1 page: %+v, %v", got, err)
	}
	got, err = s.AuditEntries(context.Background(), AuditFilter{ActionPrefix: "key.", BeforeSeq: 2})
	if err != nil || len(got) != 1 || got[0].Seq != 1 || string(got[0].Detail) != `{"i":0}` {
		t.Fatalf("before 2: %+v, %v", got, err)
	}
}

func newHash() hash.Hash { return sha256.New() }

func BenchmarkAuditAppend(b *testing.B) {
	s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "b.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec := AuditRecord{Actor: "rita", Action: "incident.confirm", Object: "incident:inc_1", Trial: "t1", Reason: "r", Detail: map[string]any{"to": "confirmed"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Audit(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
}
