package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/sandbox"
)

func TestTrialCommands(t *testing.T) {
	sb := startDemoSandbox(t)
	admin := "--admin=http://" + sb.AdminAddr()
	orig, err := os.ReadFile("../../policies/trial/testdata/clinic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The gateway must be able to serve what is applied: the demo's models.
	src := strings.NewReplacer("acme-med-v2", sandbox.DemoCandidate, "acme-med-v1", sandbox.DemoBaseline).Replace(string(orig))
	dir := t.TempDir()
	unknownModels := filepath.Join(dir, "unknown-models.yaml")
	good := filepath.Join(dir, "clinic.yaml")
	changed := filepath.Join(dir, "clinic-v2.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	failingPolicy := filepath.Join(dir, "failing.yaml")
	policyDir := t.TempDir()
	writeFiles(t, policyDir, map[string]string{
		"p.rego":      "package stagegate\n\ndecision := {\"allow\": true}\n",
		"p_test.rego": "package stagegate_test\n\nimport data.stagegate\n\ntest_denies if not stagegate.decision.allow\n",
	})
	writeFiles(t, dir, map[string]string{
		"clinic.yaml":         src,
		"clinic-v2.yaml":      strings.Replace(src, "concurrent_streams: 2", "concurrent_streams: 1", 1),
		"bad.yaml":            strings.Replace(src, "  retention_days: 90", "  retention_days: 90\n  keep_forever: true", 1),
		"failing.yaml":        strings.Replace(src, "dir: builtin:standard", "dir: "+policyDir, 1),
		"unknown-models.yaml": string(orig),
	})
	t.Setenv("STAGEGATE_ADMIN_TOKEN", "")
	if code, out := runCLI("trial", "list", admin); code != 1 || !strings.Contains(out, "no admin token") {
		t.Fatalf("without a token: %d %s", code, out)
	}
	t.Setenv("STAGEGATE_ADMIN_TOKEN", sandbox.DemoAdminKey)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"empty list", []string{"trial", "list", admin}, 0, []string{"no trials applied yet"}},
		{"bad file caught locally", []string{"trial", "apply", "-f", bad, admin}, 1, []string{"bad.yaml:41: data_handling.keep_forever: unknown field"}},
		{"failing policy refused by the server", []string{"trial", "apply", "-f", failingPolicy, admin}, 1, []string{"HTTP 422", "FAIL test stagegate_test.test_denies"}},
		{"models the sandbox cannot serve", []string{"trial", "apply", "-f", unknownModels, admin}, 1, []string{"HTTP 422 trial_not_servable", `model "acme-med-v2" is neither configured nor registered`}},
		{"dry run", []string{"trial", "apply", "-f", good, "--dry-run", admin}, 0, []string{"is valid (dry run, nothing stored)", "corpus cases passed"}},
		{"apply", []string{"trial", "apply", "-f", good, "--actor", "alice@dha", "--comment", "first", admin}, 0, []string{"trial clinic-assistant revision 1 applied by alice@dha", "in service on the gateway now"}},
		{"apply again", []string{"trial", "apply", "-f", good, admin}, 0, []string{"unchanged (revision 1"}},
		{"change", []string{"trial", "apply", "-f", changed, "--actor", "bob", admin}, 0, []string{"revision 2 applied by bob"}},
		{"list", []string{"trial", "list", admin}, 0, []string{"clinic-assistant", "2025-06-01 – 2026-06-01", "bob", "Clinic appointment assistant"}},
		{"show", []string{"trial", "show", "clinic-assistant", admin}, 0, []string{"revision 2, applied", "by bob", "concurrent_streams: 1"}},
		{"show revision 1 source", []string{"trial", "show", "clinic-assistant", "--revision", "1", "--source", admin}, 0, []string{"concurrent_streams: 2"}},
		{"show json", []string{"trial", "show", "clinic-assistant", "--json", admin}, 0, []string{`"concurrent_streams": 1`}},
		{"revisions", []string{"trial", "revisions", "clinic-assistant", admin}, 0, []string{"2 ", "bob", "alice@dha", "first"}},
		{"unknown trial", []string{"trial", "show", "nope", admin}, 1, []string{"HTTP 404"}},
		{"id first", []string{"trial", "show", admin}, 2, []string{"the trial id comes first"}},
		{"no file", []string{"trial", "apply", admin}, 2, []string{"-f FILE is required"}},
		{"help", []string{"trial", "--help"}, 0, []string{"stagegate trial apply -f TRIAL.yaml"}},
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
