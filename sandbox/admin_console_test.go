package sandbox

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestConsoleMountedOnAdminAddress checks the console and the review API are
// served next to the admin API, with the admin token acting as the admin role.
func TestConsoleMountedOnAdminAddress(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	base := "http://" + sb.AdminAddr()
	get := func(path, token string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	if code, h, body := get("/console/login", ""); code != 200 || !strings.Contains(body, `id="login-form"`) || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("login page: %d %q", code, h.Get("X-Frame-Options"))
	}
	if code, h, _ := get("/console/", ""); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login") {
		t.Errorf("queue without a session: %d %s", code, h.Get("Location"))
	}
	if code, _, _ := get("/api/v1/review/incidents", ""); code != http.StatusUnauthorized {
		t.Errorf("review API without credentials: %d", code)
	}
	if code, _, body := get("/api/v1/review/incidents", DemoAdminKey); code != 200 || !strings.Contains(body, `"items":[]`) {
		t.Errorf("review API with the admin token: %d %s", code, body)
	}
	// The admin API itself is unchanged.
	if code, _, _ := get("/api/v1/incidents", DemoAdminKey); code != 200 {
		t.Errorf("admin API: %d", code)
	}
}
