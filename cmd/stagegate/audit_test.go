package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
)

// newDataDir makes a data dir holding an incident store with one pii incident
// of trial clinic (its answer leaks an e-mail address).
func newDataDir(t *testing.T) (string, *incidents.Incident) {
	t.Helper()
	dir := t.TempDir()
	s, err := incidents.OpenSQLite(context.Background(), filepath.Join(dir, "stagegate.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := &events.Interaction{Schema: events.SchemaInteraction, ID: "i1", Trial: "clinic", Model: "cand", Stage: "canary",
		Status: events.StatusOK, Response: events.Response{Content: "mail a@b.example"}}
	inc, _, err := s.OpenIncident(context.Background(), in, []events.Finding{{ID: "f1", InteractionID: "i1", Trial: "clinic", Model: "cand",
		Detector: "pii", Category: "pii", Severity: events.SeverityHigh, Spans: []events.Span{{Field: "response", Start: 5, End: 16, Kind: "email"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordInteraction(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	return dir, inc
}

func runCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestAuditVerifyNamesTamperedEntry(t *testing.T) {
	dir, _ := newDataDir(t)
	for _, name := range []string{"rita", "sam", "reg"} {
		if code, out := runCmd(t, "user", "add", name, "--role", "reviewer", "--trials", "clinic", "--data-dir", dir, "--actor", "admin"); code != 0 {
			t.Fatalf("user add %s: %d %s", name, code, out)
		}
	}
	code, out := runCmd(t, "audit", "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "audit trail intact: 3 entries (1-3)") {
		t.Fatalf("verify: %d %s", code, out)
	}
	// Tamper with the second stored entry, as someone with file access might.
	db, err := sql.Open("sqlite", filepath.Join(dir, "stagegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET detail = '{"role":"admin"}' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, out = runCmd(t, "audit", "verify", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "audit trail BROKEN at entry 2: entry 2 was changed after it was written") {
		t.Fatalf("tampered verify: %d %s", code, out)
	}
	code, out = runCmd(t, "audit", "verify", "--data-dir", dir, "--json")
	var v incidents.AuditVerification
	if code != 1 || json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &v) != nil || v.BrokenSeq != 2 {
		t.Errorf("json verify: %d %s", code, out)
	}
	code, out = runCmd(t, "audit", "list", "--data-dir", dir, "--action", "user.")
	if code != 0 || strings.Count(out, "user.add") != 3 {
		t.Errorf("list: %d %s", code, out)
	}
	if code, out := runCmd(t, "audit", "hold", "clinic", "--data-dir", dir, "--actor", "reg", "--reason", "inquiry 7"); code != 0 || !strings.Contains(out, "legal hold on clinic set") {
		t.Errorf("hold: %d %s", code, out)
	}
	if code, out := runCmd(t, "audit", "prune", "--data-dir", dir, "--actor", "ops"); code != 0 || !strings.Contains(out, "nothing pruned") {
		t.Errorf("prune: %d %s", code, out)
	}
	if code, out := runCmd(t, "audit", "verify", "--data-dir", t.TempDir()); code != 1 || !strings.Contains(out, "no incident store") {
		t.Errorf("missing store: %d %s", code, out)
	}
}

func TestUserCommands(t *testing.T) {
	dir, _ := newDataDir(t)
	code, out := runCmd(t, "user", "add", "rita", "--role", "reviewer", "--trials", "clinic, bank", "--data-dir", dir, "--actor", "admin")
	if code != 0 || !strings.Contains(out, "user rita added (reviewer, trials clinic, bank)") || !strings.Contains(out, "password: ") {
		t.Fatalf("add: %d %s", code, out)
	}
	pw := strings.TrimSpace(strings.SplitN(strings.SplitN(out, "password: ", 2)[1], "\n", 2)[0])
	old := stdin
	stdin = strings.NewReader("a much better passphrase\n")
	t.Cleanup(func() { stdin = old })
	if code, out := runCmd(t, "user", "add", "acme", "--role", "company", "--trials", "clinic", "--password-stdin", "--data-dir", dir, "--actor", "admin"); code != 0 || strings.Contains(out, "password:") {
		t.Fatalf("add with stdin password: %d %s", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"user", "add", "rita", "--role", "reviewer", "--data-dir", dir, "--actor", "a"}, 1, "exists already"},
		{[]string{"user", "add", "x y", "--role", "boss", "--data-dir", dir, "--actor", "a"}, 1, "role \"boss\""},
		{[]string{"user", "add", "--role", "reviewer"}, 2, "NAME is required"},
		{[]string{"user", "set", "rita", "--data-dir", dir, "--actor", "a"}, 1, "nothing to change"},
		{[]string{"user", "set", "rita", "--disable", "--data-dir", dir, "--actor", "a"}, 0, "user rita updated"},
		{[]string{"user", "list", "--data-dir", dir}, 0, "disabled"},
		{[]string{"user", "frob"}, 2, "unknown action"},
	} {
		code, out := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("%v: %d %q, want %d %q", tc.args, code, out, tc.code, tc.out)
		}
	}
	s, err := incidents.OpenSQLite(context.Background(), filepath.Join(dir, "stagegate.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Authenticate(context.Background(), "acme", "a much better passphrase", ""); err != nil {
		t.Errorf("stdin password: %v", err)
	}
	if _, err := s.Authenticate(context.Background(), "rita", pw, ""); err == nil {
		t.Error("disabled user signed in")
	}
}

func TestReportCommand(t *testing.T) {
	dir, inc := newDataDir(t)
	s, err := incidents.OpenSQLite(context.Background(), filepath.Join(dir, "stagegate.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []incidents.Action{{Kind: incidents.ActionClaim, Actor: "rita"},
		{Kind: incidents.ActionConfirm, Actor: "rita", Severity: "high", Category: "pii", Harm: incidents.HarmSerious, Reason: "real address"}} {
		if _, err := s.Act(context.Background(), inc.ID, a); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	code, out := runCmd(t, "report", "clinic", "--format", "json", "--data-dir", dir)
	var rep incidents.Report
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("json report: %d %.300s", code, out)
	}
	// One confirmed of one answered interaction: Wilson 95 % lower bound 0.2065.
	if len(rep.Drafts) != 1 || len(rep.Rates) != 2 || rep.Rates[0].Lower < 0.206 || rep.Rates[0].Lower > 0.207 || !rep.Audit.OK {
		t.Errorf("report %+v", rep)
	}
	file := filepath.Join(t.TempDir(), "r.csv")
	if code, out := runCmd(t, "report", "clinic", "--format", "csv", "--out", file, "--data-dir", dir); code != 0 || !strings.Contains(out, "written to") {
		t.Errorf("csv to file: %d %s", code, out)
	}
	if code, out := runCmd(t, "report", "clinic", "--format", "pdf", "--data-dir", dir); code != 1 || !strings.Contains(out, "want html, json or csv") {
		t.Errorf("pdf: %d %s", code, out)
	}
	if code, out := runCmd(t, "report", "clinic", "--data-dir", dir); code != 0 || !strings.Contains(out, "Art. 73") || !strings.Contains(out, "<!doctype html>") {
		t.Errorf("html: %d", code)
	}
}
