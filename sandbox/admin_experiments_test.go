package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/testutil"
)

// experimentAdmin sends a request with the demo admin token and decodes the JSON answer.
func experimentAdmin(t *testing.T, sb *Sandbox, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, "http://"+sb.AdminAddr()+path, rd)
	req.Header.Set("Authorization", "Bearer "+DemoAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %s", method, path, out)
	}
	return resp.StatusCode, m
}

// experimentChat sends one chat request of a demo pilot user and returns the
// interaction id and the answer text.
func experimentChat(t *testing.T, sb *Sandbox, user string) (string, string) {
	t.Helper()
	body := fmt.Sprintf(`{"model":"demo","user":%q,"messages":[{"role":"user","content":"When is the pharmacy open?"}]}`, user)
	req, _ := http.NewRequest(http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+DemoPilotKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat as %s: %d %s", user, resp.StatusCode, raw)
	}
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Choices) == 0 {
		t.Fatalf("chat answer %s: %v", raw, err)
	}
	return resp.Header.Get("X-Stagegate-Interaction"), out.Choices[0].Message.Content
}

func TestAdminExperiments(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	src, err := os.ReadFile("../policies/experiment/testdata/notice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := string(src)

	// Invalid: every problem with its line and field.
	bad := strings.Replace(strings.Replace(def, "minimum_sample: 2000", "minimum_sample: 0", 1), "hypothesis:", "colour: red\nhypothesis:", 1)
	status, body := experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments", map[string]any{"definition": bad, "file": "notice.yaml"})
	if status != http.StatusBadRequest || body["error"].(map[string]any)["code"] != "invalid_experiment" {
		t.Fatalf("invalid: %d %v", status, body)
	}
	if ps := mustJSON(t, body["error"].(map[string]any)["problems"]); !strings.Contains(ps, `"field":"colour","file":"notice.yaml","line":7`) || !strings.Contains(ps, `"field":"minimum_sample","file":"notice.yaml","line":35`) {
		t.Errorf("problems %s", ps)
	}
	// A trial that does not run experiments.
	status, _ = experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments", map[string]any{"definition": strings.Replace(def, "trial: demo", "trial: other", 1)})
	if status != http.StatusNotFound {
		t.Errorf("unknown trial: %d", status)
	}
	status, body = experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments", map[string]any{"definition": def, "dry_run": true})
	if status != http.StatusOK || body["dry_run"] != true || len(body["variants"].([]any)) != 1 {
		t.Fatalf("dry run: %d %v", status, body)
	}
	status, body = experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments", map[string]any{"definition": def, "actor": "alice@dha"})
	if status != http.StatusOK || body["created"] != true {
		t.Fatalf("apply: %d %v", status, body)
	}
	status, body = experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments/disclosure-notice/start", map[string]any{"actor": "alice@dha", "reason": "board approval 12"})
	if status != http.StatusOK || body["experiment"].(map[string]any)["status"] != "running" {
		t.Fatalf("start: %d %v", status, body)
	}
	// Users of both arms: the notice arm's answers carry the notice.
	testutil.WaitFor(t, 10*time.Second, "the gateway serves the experiment", func() bool {
		st := sb.expParts.deciders["demo"].Status()
		return st.Experiment == "disclosure-notice"
	})
	notices, plain := 0, 0
	var ids []string
	for i := range 16 {
		id, answer := experimentChat(t, sb, fmt.Sprintf("pilot-user-%d", i))
		ids = append(ids, id)
		if strings.Contains(answer, "You are talking to an AI system") {
			notices++
		} else {
			plain++
		}
	}
	if notices == 0 || plain == 0 {
		t.Fatalf("answers with the notice %d, without %d: want both arms", notices, plain)
	}
	// Recorded with the experiment's marks.
	testutil.WaitFor(t, 15*time.Second, "interactions stored", func() bool {
		var in struct {
			Decision struct{ Experiment, Arm, VariantRevision string } `json:"decision"`
		}
		for _, id := range ids {
			if admin(t, sb, "/api/v1/interactions/"+id, &in) != http.StatusOK || in.Decision.Experiment != "disclosure-notice" || in.Decision.Arm == "" {
				return false
			}
		}
		return true
	})
	status, body = experimentAdmin(t, sb, http.MethodGet, "/api/v1/experiments/disclosure-notice/report", nil)
	if status != http.StatusOK {
		t.Fatalf("report: %d %v", status, body)
	}
	rep := body["report"].(map[string]any)
	arms := rep["arms"].([]any)
	if len(arms) != 2 || arms[0].(map[string]any)["interactions"].(float64)+arms[1].(map[string]any)["interactions"].(float64) != 16 ||
		!strings.HasPrefix(rep["conclusion"].(string), "Not enough evidence yet") || !strings.Contains(rep["rule"].(string), "no peeking") {
		t.Errorf("report %s", mustJSON(t, rep))
	}
	// The console's trial page shows the analysis.
	req, _ := http.NewRequest(http.MethodGet, "http://"+sb.AdminAddr()+"/console/trials/demo", nil)
	req.Header.Set("Authorization", "Bearer "+DemoAdminKey)
	page, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(html), "Policy experiments") || !strings.Contains(string(html), "disclosure-notice") ||
		!strings.Contains(string(html), "Not enough evidence yet") {
		t.Errorf("console trial page: %d, experiments panel missing", page.StatusCode)
	}
	// Stop needs a reason; conclude needs a stop.
	if status, _ = experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments/disclosure-notice/conclude", map[string]any{}); status != http.StatusConflict {
		t.Errorf("conclude while running: %d", status)
	}
	if status, _ = experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments/disclosure-notice/stop", map[string]any{"actor": "alice"}); status != http.StatusBadRequest {
		t.Errorf("stop without a reason: %d", status)
	}
	status, _ = experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments/disclosure-notice/stop", map[string]any{"actor": "alice", "reason": "enough for a pilot"})
	if status != http.StatusOK {
		t.Fatalf("stop: %d", status)
	}
	testutil.WaitFor(t, time.Second, "every user back on the control policy", func() bool {
		return sb.expParts.deciders["demo"].Status().Experiment == ""
	})
	for i := range 4 {
		if _, answer := experimentChat(t, sb, fmt.Sprintf("pilot-user-%d", i)); strings.Contains(answer, "You are talking to an AI system") {
			t.Errorf("notice after the stop: %q", answer)
		}
	}
	status, body = experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments/disclosure-notice/conclude", map[string]any{"actor": "alice", "reason": "read it"})
	if status != http.StatusOK || body["experiment"].(map[string]any)["status"] != "concluded" || body["report"] == nil {
		t.Fatalf("conclude: %d %v", status, body)
	}
	status, body = experimentAdmin(t, sb, http.MethodGet, "/api/v1/experiments/disclosure-notice", nil)
	if status != http.StatusOK || len(body["transitions"].([]any)) != 3 || body["definition"] == nil {
		t.Errorf("get: %d %v", status, body)
	}
	if status, body = experimentAdmin(t, sb, http.MethodGet, "/api/v1/experiments?trial=demo", nil); status != http.StatusOK || body["count"].(float64) != 1 {
		t.Errorf("list: %d %v", status, body)
	}
	if status, _ = experimentAdmin(t, sb, http.MethodGet, "/api/v1/experiments/nope", nil); status != http.StatusNotFound {
		t.Errorf("unknown experiment: %d", status)
	}
	if status, _ = experimentAdmin(t, sb, http.MethodPost, "/api/v1/experiments/disclosure-notice/explode", map[string]any{}); status != http.StatusNotFound {
		t.Errorf("unknown action: %d", status)
	}
}
