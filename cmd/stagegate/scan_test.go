package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScanCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "a.jsonl")
	if err := os.WriteFile(good, []byte(`{"id":"x1","prompt":"You are a complete idiot","response":""}`+"\n"+
		`{"id":"x2","prompt":"what is 2+2?","response":"4"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "b.jsonl")
	if err := os.WriteFile(bad, []byte("{oops\n"+`{"id":"y1","response":"mail a@b.io"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"scan", good, bad}, &out, &errOut)
	if code != 1 {
		t.Errorf("exit %d, want 1 after a bad line", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (the bad one skipped):\n%s", len(lines), out.String())
	}
	var first struct {
		ID       string `json:"id"`
		Findings []struct {
			Detector, Category string
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.ID != "x1" || len(first.Findings) != 1 || first.Findings[0].Category != "toxicity" {
		t.Errorf("first line %s (%v)", lines[0], err)
	}
	if !strings.Contains(errOut.String(), "b.jsonl:1:") || !strings.Contains(errOut.String(), "rejected: 1 of 4") {
		t.Errorf("stderr = %q", errOut.String())
	}

	// --only restricts the detectors; --help documents the offsets.
	out.Reset()
	if code := run(context.Background(), []string{"scan", "--only", "pii", good}, &out, &errOut); code != 0 {
		t.Errorf("--only pii: exit %d: %s", code, errOut.String())
	}
	if strings.Contains(out.String(), "toxicity") {
		t.Errorf("--only pii ran toxicity: %s", out.String())
	}
	var help bytes.Buffer
	if code := run(context.Background(), []string{"scan", "--help"}, &help, &help); code != 0 || !strings.Contains(help.String(), "Unicode code points") {
		t.Errorf("help (exit %d) does not explain the offsets:\n%s", code, help.String())
	}
	if code := run(context.Background(), []string{"scan", "--only", "nope"}, &out, &errOut); code != 2 {
		t.Errorf("unknown detector: exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"scan", filepath.Join(dir, "missing.jsonl")}, &out, &errOut); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}
