package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/sandbox"
	"github.com/stagegate/stagegate/sandbox/sim"
)

// startDemoSandbox runs the demo sandbox in-process on random ports.
func startDemoSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	cfg := sandbox.Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	sb, err := sandbox.New(cfg, sandbox.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	return sb
}

func runCLI(args ...string) (int, string) {
	var out bytes.Buffer
	code := run(context.Background(), args, &out, &out)
	return code, out.String()
}

func TestRolloutAndModelCommands(t *testing.T) {
	sb := startDemoSandbox(t)
	admin := "--admin=http://" + sb.AdminAddr()
	t.Setenv("STAGEGATE_ADMIN_TOKEN", "")
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(plan, []byte("trial: demo\ncandidate: demo-candidate\nbaseline: demo-baseline\nsteps:\n  - canary: {weight: 10}\n  - pause:\n  - general:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badPlan := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badPlan, []byte("trial: demo\ncandidate: demo-candidate\nbaseline: demo-baseline\nsteps:\n  - canary: {weight: 10, extra: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(sandbox.DemoAdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out := runCLI("rollout", "status", "demo", admin)
	if code != 1 || !strings.Contains(out, "no admin token: set $STAGEGATE_ADMIN_TOKEN") {
		t.Fatalf("without a token: %d %s", code, out)
	}
	t.Setenv("STAGEGATE_ADMIN_TOKEN", sandbox.DemoAdminKey)

	m, err := sim.New(sim.Config{Models: []string{"acme-7b"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })

	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"help", []string{"rollout", "--help"}, 0, []string{"apply -f PLAN.yaml"}},
		{"unknown action", []string{"rollout", "explode"}, 2, []string{`unknown rollout action "explode"`}},
		{"status needs a trial", []string{"rollout", "status", admin}, 2, []string{"usage: stagegate rollout status TRIAL"}},
		{"bad plan caught locally", []string{"rollout", "apply", "-f", badPlan, admin}, 1, []string{"line 5", "extra"}},
		{"no rollout yet", []string{"rollout", "status", "demo", admin}, 1, []string{"HTTP 404"}},
		{"apply", []string{"rollout", "apply", "-f", plan, "--actor", "acme-ops", "--reason", "launch", admin}, 0,
			[]string{"applied: rollout of trial demo, generation 1", "WAITING", "paused until a person promotes", "canary: 10% of users on the candidate", "▶ 2. pause until promoted"}},
		{"promote needs a reason", []string{"rollout", "promote", "demo", "--actor", "reg", admin}, 1, []string{"reason is required"}},
		{"pause", []string{"rollout", "pause", "demo", "--actor", "ana", "--reason", "holiday", admin}, 0, []string{"PAUSED", "paused by hand [ana: holiday]"}},
		{"resume", []string{"rollout", "resume", "demo", "--actor", "ana", "--reason", "back", admin}, 0, []string{"WAITING"}},
		{"promote", []string{"rollout", "promote", "demo", "--actor", "reg", "--reason", "looks fine", "--token-file", tokenFile, admin}, 0,
			[]string{"COMPLETED", "general: 100% of users on the candidate", "pause ended: promoted by hand [reg: looks fine]"}},
		{"status", []string{"rollout", "status", "demo", admin}, 0, []string{"history (newest last):", "plan applied (generation 1) [acme-ops: launch]"}},
		{"status json", []string{"rollout", "status", "demo", "--json", admin}, 0, []string{`"status": "completed"`}},
		{"list", []string{"rollout", "list", admin}, 0, []string{"demo", "completed"}},
		{"abort", []string{"rollout", "abort", "demo", "--actor", "reg", "--reason", "complaints", admin}, 0, []string{"ABORTED", "aborted: everyone on demo-baseline"}},
		{"abort twice", []string{"rollout", "abort", "demo", "--actor", "reg", "--reason", "again", admin}, 1, []string{"already aborted", "HTTP 409"}},
		{"model add", []string{"model", "add", "--name", "acme-7b", "--base-url", m.URL(), "--actor", "acme-ops", admin}, 0,
			[]string{"all checks passed", "registered model acme-7b"}},
		{"model add failing check", []string{"model", "add", "--name", "acme-13b", "--base-url", m.URL(), "--actor", "acme-ops", admin}, 1,
			[]string{"CHECK FAILED", `but not "acme-13b"`, "was not registered"}},
		{"model add bad flags", []string{"model", "add", "--name", "a b", "--base-url", "x", admin}, 1, []string{"name", "base_url"}},
		{"model list", []string{"model", "list", admin}, 0, []string{"demo-candidate", "configuration", "acme-7b", "registered"}},
	} {
		code, out := runCLI(tc.args...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d:\n%s", tc.name, code, tc.code, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out)
			}
		}
	}
}
