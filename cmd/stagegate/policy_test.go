package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/policies"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPolicyTestCommand(t *testing.T) {
	failing := t.TempDir()
	writeFiles(t, failing, map[string]string{
		"p.rego":          "package stagegate\n\ndecision := {\"allow\": true}\n",
		"p_test.rego":     "package stagegate_test\n\nimport data.stagegate\n\ntest_denies if not stagegate.decision.allow\n",
		"own.corpus.yaml": "cases:\n  - name: weapons refused\n    input: {signals: {topics: [weapons]}}\n    expect: {allow: false}\n",
	})
	broken := t.TempDir()
	writeFiles(t, broken, map[string]string{"p.rego": "package stagegate\n\ndecision := {\n"})
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"standard with its corpus", []string{"policy", "test", "builtin:standard", "--corpus", "../../policies/testdata/standard.corpus.yaml", "-v"},
			0, []string{"PASS  test stagegate_test.test_denies_weapons_like_the_demo", "PASS  case ../../policies/testdata/standard.corpus.yaml:", "ok: revision sha256:"}},
		{"the demo folder on disk", []string{"policy", "test", "-v", "../../policies/rego/demo"}, 0, []string{"Rego tests 13/13 passed"}},
		{"failures", []string{"policy", "test", failing}, 1, []string{
			"FAIL  test stagegate_test.test_denies", "FAIL  case own.corpus.yaml:2 (weapons refused)", "allow = true, want false", "2 of 3 tests and cases failed"}},
		{"json", []string{"policy", "test", failing, "--json"}, 1, []string{`"where": "own.corpus.yaml:2 (weapons refused)"`}},
		{"broken rego", []string{"policy", "test", broken}, 1, []string{"p.rego:4"}},
		{"no folder", []string{"policy", "test"}, 2, []string{"want exactly one policy folder"}},
		{"missing folder", []string{"policy", "test", "/does/not/exist"}, 1, []string{"no such file"}},
		{"unknown builtin", []string{"policy", "test", "builtin:nope"}, 1, []string{`no built-in policy "nope"`}},
		{"unknown action", []string{"policy", "frob"}, 2, []string{`unknown action "frob"`}},
		{"help", []string{"policy", "--help"}, 0, []string{"stagegate policy replay --trial ID"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// recordDemoTraffic lays out a data dir as the sandbox does and records n
// interactions of the demo trial, decided by the demo policy and recorded as
// the gateway records them (decision input and hash included).
func recordDemoTraffic(t *testing.T, n int) string {
	t.Helper()
	dataDir := t.TempDir()
	ns, nc := testutil.JetStreamAt(t, filepath.Join(dataDir, "jetstream"))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := events.EnsureStreams(ctx, js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	sub, err := fs.Sub(policies.Builtin(), policies.DemoPolicy)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policies.New(ctx, policies.Config{FS: sub})
	if err != nil {
		t.Fatal(err)
	}
	topics := [][]string{nil, nil, {"travel"}, {"weapons"}, {"medical_dosing"}}
	for i := range n {
		in := policies.Input{Trial: "demo", Stage: "canary", Time: time.Now().UTC().Truncate(time.Minute).Format(time.RFC3339),
			Request: policies.RequestFacts{Model: "demo", MaxTokens: 100 * (i % 8), MessageCount: 1, Roles: []string{"user"}},
			Caller:  policies.Caller{Tenant: "demo-company", User: fmt.Sprintf("u_%d", i), Cohort: "pilot"},
			Signals: policies.Signals{Topics: topics[i%len(topics)], Language: "en"}}
		d, err := eng.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		rec := events.Interaction{Schema: events.SchemaInteraction, ID: fmt.Sprintf("int_%06d", i), Trial: "demo", Tenant: "demo-company",
			User: in.Caller.User, LogicalModel: "demo", Model: "demo-candidate", Status: events.StatusOK, HTTPStatus: 200, StartedAt: time.Now(),
			Decision: events.Decision{Allow: d.Allow, Route: d.Route, PolicyRevision: d.Revision, Input: d.Input, InputHash: d.InputHash,
				Obligations: events.Obligations{RedactPIIInStorage: d.Obligations.RedactPIIInStorage, MaxTokens: d.Obligations.MaxTokens, Notice: d.Obligations.Notice}}}
		for _, r := range d.Reasons {
			rec.Decision.Reasons = append(rec.Decision.Reasons, events.Reason{Code: r.Code, Message: r.Message})
		}
		raw, _ := json.Marshal(rec)
		if _, err := js.Publish(ctx, events.InteractionSubject("demo", "demo-candidate"), raw); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()
	return dataDir
}

func TestPolicyReplayCommand(t *testing.T) {
	dataDir := recordDemoTraffic(t, 100)
	// The candidate: the demo policy allowing weapons and capping at 256.
	cand := t.TempDir()
	for _, name := range []string{"policy.rego", "data.json"} {
		src, err := os.ReadFile(filepath.Join("../../policies/rego/demo", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, cand, map[string]string{name: string(src)})
	}
	writeFiles(t, cand, map[string]string{"data.json": `{"denied_topics": ["medical_dosing"], "max_tokens": 256}`})

	code, out := runCLI("policy", "replay", "--trial", "demo", "--policy", "builtin:demo", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "0 of 100 replayed decisions would change") {
		t.Errorf("same revision: exit %d\n%s", code, out)
	}
	code, out = runCLI("policy", "replay", "--trial", "demo", "--policy", cand, "--data-dir", dataDir, "--since", "7d")
	for _, w := range []string{"denied → allowed", "20 ", "topic_denied 20", "obligations changed", "int_000003"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("candidate: exit %d, output lacks %q:\n%s", code, w, out)
		}
	}
	code, out = runCLI("policy", "replay", "--trial", "demo", "--policy", cand, "--data-dir", dataDir, "--json")
	var rep struct {
		Trial    string `json:"trial"`
		Replayed int    `json:"replayed"`
		Changes  []struct {
			Kind  string `json:"kind"`
			Count int    `json:"count"`
		} `json:"changes"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Trial != "demo" || rep.Replayed != 100 || len(rep.Changes) == 0 || rep.Changes[0].Kind != "denied_to_allowed" {
		t.Errorf("json: exit %d %+v\n%s", code, rep, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"policy", "replay", "--policy", cand}, 2, "--trial and --policy are required"},
		{[]string{"policy", "replay", "--trial", "demo", "--policy", cand, "--since", "soon"}, 1, "want a duration"},
		{[]string{"policy", "replay", "--trial", "demo", "--policy", cand, "--data-dir", t.TempDir()}, 1, "no INTERACTIONS stream"},
		{[]string{"policy", "replay", "--trial", "demo", "--policy", cand, "--data-dir", dataDir, "--nats", "nats://x"}, 1, "not both"},
	} {
		if code, out := runCLI(tc.args...); code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
}
