package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/sandbox"
)

func TestExperimentCommands(t *testing.T) {
	sb := startDemoSandbox(t)
	admin := "--admin=http://" + sb.AdminAddr()
	t.Setenv("STAGEGATE_ADMIN_TOKEN", sandbox.DemoAdminKey)
	src, err := os.ReadFile("../../policies/experiment/testdata/notice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "notice.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(file, src, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(string(src), "planned_duration: 14d", "planned_duration: someday", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"help", []string{"experiment", "--help"}, 0, []string{"apply -f EXPERIMENT.yaml", "stop NAME --reason TEXT"}},
		{"unknown action", []string{"experiment", "explode"}, 2, []string{`unknown action "explode"`}},
		{"bad file caught locally", []string{"experiment", "apply", "-f", bad, admin}, 1, []string{"bad.yaml:35: planned_duration:", "someday"}},
		{"dry run", []string{"experiment", "apply", "-f", file, "--dry-run", admin}, 0, []string{"checked (dry run, nothing stored)", "arm notice: policy revision sha256:"}},
		{"apply", []string{"experiment", "apply", "-f", file, "--actor", "alice", admin}, 0, []string{"applied: experiment disclosure-notice of trial demo, draft revision 1", "Fixed horizon"}},
		{"apply again", []string{"experiment", "apply", "-f", file, admin}, 0, []string{"unchanged"}},
		{"stop needs a reason", []string{"experiment", "stop", "disclosure-notice", admin}, 2, []string{"--reason is required"}},
		{"start", []string{"experiment", "start", "disclosure-notice", "--actor", "alice", "--reason", "go", admin}, 0, []string{"is now RUNNING"}},
		{"report", []string{"experiment", "report", "disclosure-notice", admin}, 0, []string{"CONCLUSION:  Not enough evidence yet", "sample ratio: too few users"}},
		{"list", []string{"experiment", "list", "--trial", "demo", admin}, 0, []string{"disclosure-notice", "running"}},
		{"stop", []string{"experiment", "stop", "disclosure-notice", "--reason", "pilot over", admin}, 0, []string{"is now STOPPED"}},
		{"conclude", []string{"experiment", "conclude", "disclosure-notice", admin}, 0, []string{"is now CONCLUDED", "conclusion: Not enough evidence: stopped (by hand)"}},
		{"show", []string{"experiment", "show", "disclosure-notice", admin}, 0, []string{"CONCLUDED", "running → stopped  by", "(hand): pilot over", "definition:"}},
		{"unknown", []string{"experiment", "report", "nope", admin}, 1, []string{"not found", "HTTP 404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	code, out := runCLI("experiment", "report", "disclosure-notice", "--json", admin)
	var rep struct {
		Experiment string `json:"experiment"`
		Run        struct{ Status string }
		Conclusion string `json:"conclusion"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Experiment != "disclosure-notice" || rep.Run.Status != "concluded" || rep.Conclusion == "" {
		t.Errorf("report --json: %d %s", code, out)
	}
}
