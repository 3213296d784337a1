package sandbox

import (
	"context"
	"net/http"
	"testing"
)

func TestPprofIsOffByDefaultAndBehindTheToken(t *testing.T) {
	get := func(sb *Sandbox, path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+sb.AdminAddr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		pprof       bool
		path, token string
		want        int
	}{
		{false, "/debug/pprof/", DemoAdminKey, http.StatusNotFound},
		{true, "/debug/pprof/", "", http.StatusUnauthorized},
		{true, "/debug/pprof/heap?debug=1", "wrong", http.StatusUnauthorized},
		{true, "/debug/pprof/", DemoAdminKey, http.StatusOK},
		{true, "/debug/pprof/heap?debug=1", DemoAdminKey, http.StatusOK},
		{true, "/debug/pprof/cmdline", DemoAdminKey, http.StatusOK},
	} {
		cfg := Demo()
		cfg.DataDir = t.TempDir()
		cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Admin.Pprof = tc.pprof
		cfg.Monitors.Disabled = true
		sb, err := New(cfg, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := get(sb, tc.path, tc.token); got != tc.want {
			t.Errorf("pprof=%v GET %s (token %q): %d, want %d", tc.pprof, tc.path, tc.token, got, tc.want)
		}
		if err := sb.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParsePprofSwitch(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte("admin:\n  pprof: true\n"))
	if err != nil || !cfg.Admin.Pprof {
		t.Fatalf("admin.pprof not read: %+v, %v", cfg.Admin, err)
	}
}
