package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/policies"
)

// postTrial POSTs a trial apply request with the demo admin token.
func postTrial(t *testing.T, sb *Sandbox, body any) (int, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+sb.AdminAddr()+"/api/v1/trials", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+DemoAdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("answer is not JSON: %s", out)
	}
	return resp.StatusCode, m
}

func TestAdminTrials(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	src, err := os.ReadFile("../policies/trial/testdata/clinic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The gateway must be able to serve what is applied: the demo's models.
	def := strings.NewReplacer("acme-med-v2", DemoCandidate, "acme-med-v1", DemoBaseline).Replace(string(src))

	// Invalid: every problem, with line and field.
	bad := strings.Replace(strings.Replace(def, "  tokens_per_request: 1024", "  tokens_per_request: -1", 1), "title:", "colour: red\ntitle:", 1)
	status, body := postTrial(t, sb, map[string]any{"definition": bad, "file": "clinic.yaml", "actor": "alice"})
	if status != http.StatusBadRequest {
		t.Fatalf("invalid trial: %d %v", status, body)
	}
	problems := body["error"].(map[string]any)["problems"].([]any)
	if len(problems) != 2 || !strings.Contains(mustJSON(t, problems), `"field":"colour"`) || !strings.Contains(mustJSON(t, problems), `"line":37`) {
		t.Errorf("problems %s", mustJSON(t, problems))
	}
	// A policy folder that does not compile is refused before anything is stored.
	broken := t.TempDir()
	if err := os.WriteFile(broken+"/p.rego", []byte("package stagegate\n\ndecision := {"), 0o600); err != nil {
		t.Fatal(err)
	}
	status, body = postTrial(t, sb, map[string]any{"definition": strings.Replace(def, "dir: builtin:standard", "dir: "+broken, 1)})
	if status != http.StatusUnprocessableEntity || !strings.Contains(mustJSON(t, body), "policy_compile") {
		t.Errorf("broken policy: %d %v", status, body)
	}
	// Dry run: checked, not stored.
	status, body = postTrial(t, sb, map[string]any{"definition": def, "dry_run": true})
	if status != http.StatusOK || body["revision"] != nil {
		t.Errorf("dry run: %d %v", status, body)
	}
	if admin(t, sb, "/api/v1/trials/clinic-assistant", nil) != http.StatusNotFound {
		t.Error("a dry run stored the trial")
	}
	// Apply, re-apply unchanged, apply a change.
	status, body = postTrial(t, sb, map[string]any{"definition": def, "actor": "alice@dha", "comment": "first"})
	if status != http.StatusOK || body["created"] != true || body["revision"].(map[string]any)["revision"].(float64) != 1 || body["policy_check"].(map[string]any)["tests"].(float64) == 0 {
		t.Fatalf("apply: %d %v", status, body)
	}
	status, body = postTrial(t, sb, map[string]any{"definition": def, "actor": "bob"})
	if status != http.StatusOK || body["created"] != false {
		t.Errorf("re-apply: %d %v", status, body)
	}
	changed := strings.Replace(def, "requests_per_user_per_day: 200", "requests_per_user_per_day: 100", 1)
	status, body = postTrial(t, sb, map[string]any{"definition": changed, "actor": "bob", "comment": "halve the cap"})
	if status != http.StatusOK || body["created"] != true {
		t.Errorf("change: %d", status)
	}

	var list struct {
		Trials []struct {
			Trial     string `json:"trial"`
			Revision  int    `json:"revision"`
			CreatedBy string `json:"created_by"`
			Title     string `json:"title"`
		} `json:"trials"`
	}
	if admin(t, sb, "/api/v1/trials", &list) != http.StatusOK || len(list.Trials) != 1 || list.Trials[0].Revision != 2 ||
		list.Trials[0].CreatedBy != "bob" || !strings.HasPrefix(list.Trials[0].Title, "Clinic") {
		t.Errorf("list %+v", list)
	}
	var show struct {
		Revision struct {
			Revision int    `json:"revision"`
			Source   string `json:"source"`
		} `json:"revision"`
		Definition struct {
			Caps struct {
				RequestsPerUserPerDay int `json:"requests_per_user_per_day"`
			} `json:"caps"`
		} `json:"definition"`
	}
	if admin(t, sb, "/api/v1/trials/clinic-assistant", &show) != http.StatusOK || show.Revision.Revision != 2 ||
		show.Definition.Caps.RequestsPerUserPerDay != 100 || show.Revision.Source != changed {
		t.Errorf("show %+v", show)
	}
	if admin(t, sb, "/api/v1/trials/clinic-assistant?revision=1", &show) != http.StatusOK || show.Definition.Caps.RequestsPerUserPerDay != 200 {
		t.Errorf("show revision 1 %+v", show)
	}
	var hist struct {
		Revisions []struct {
			Revision  int    `json:"revision"`
			CreatedBy string `json:"created_by"`
			Comment   string `json:"comment"`
		} `json:"revisions"`
	}
	if admin(t, sb, "/api/v1/trials/clinic-assistant/revisions", &hist) != http.StatusOK || len(hist.Revisions) != 2 ||
		hist.Revisions[0].Comment != "halve the cap" || hist.Revisions[1].CreatedBy != "alice@dha" {
		t.Errorf("history %+v", hist)
	}
	for path, want := range map[string]int{
		"/api/v1/trials/nope":                        http.StatusNotFound,
		"/api/v1/trials/nope/revisions":              http.StatusNotFound,
		"/api/v1/trials/clinic-assistant?revision=x": http.StatusBadRequest,
		"/api/v1/trials/clinic-assistant?revision=9": http.StatusNotFound,
	} {
		if got := admin(t, sb, path, nil); got != want {
			t.Errorf("%s: %d, want %d", path, got, want)
		}
	}
	// Unknown JSON fields are refused; so is a missing token.
	if status, _ := postTrial(t, sb, map[string]any{"definition": def, "author": "x"}); status != http.StatusBadRequest {
		t.Errorf("unknown field: %d", status)
	}
	resp, err := http.Post("http://"+sb.AdminAddr()+"/api/v1/trials", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
}

func TestAdminPolicyStatus(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/p.rego", []byte("package stagegate\n\ndecision := {\"allow\": true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := policies.NewReloader(context.Background(), policies.ReloaderConfig{Dir: dir}, policies.ReloaderDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/p.rego", []byte("package stagegate\n\ndecision := {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reload(context.Background()); err == nil {
		t.Fatal("a broken revision went in")
	}
	a := &adminServer{tokenHash: sha256.Sum256([]byte(DemoAdminKey))}
	mux := http.NewServeMux()
	a.policyStatusRoutes(mux, func() map[string]policies.ReloadStatus { return map[string]policies.ReloadStatus{"demo": r.Status()} })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+DemoAdminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/api/v1/policies"); code != http.StatusOK || !strings.Contains(body, `"unhealthy":1`) || !strings.Contains(body, `"last_error_code":"policy_compile"`) {
		t.Errorf("all: %d %s", code, body)
	}
	if code, body := get("/api/v1/policies/demo"); code != http.StatusOK || !strings.Contains(body, `"healthy":false`) || !strings.Contains(body, r.Engine().Revision()) {
		t.Errorf("one: %d %s", code, body)
	}
	if code, _ := get("/api/v1/policies/nope"); code != http.StatusNotFound {
		t.Errorf("unknown trial: %d", code)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
