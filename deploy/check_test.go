package deploy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/sandbox/sim"
)

func startSim(t *testing.T, models ...string) string {
	t.Helper()
	srv, err := sim.New(sim.Config{Models: models})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return srv.URL()
}

func TestCheckModel(t *testing.T) {
	ctx := context.Background()
	good := startSim(t, "pilot-7b")
	other := startSim(t, "something-else", "another")
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer right-key" {
			http.Error(w, `{"error":{"message":"bad key"}}`, http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"data":[]}`))
	}))
	t.Cleanup(refusing.Close)

	for _, tc := range []struct {
		name, url, key, model string
		ok                    bool
		failed                map[string]string // check name → words its detail must contain
	}{
		{"conforming simulator", good, "sk-test", "pilot-7b", true, nil},
		{"model not listed", other, "", "pilot-7b", false, map[string]string{
			CheckList: `lists 2 model(s) ("something-else", "another") but not "pilot-7b"`}},
		{"nothing listening", "http://127.0.0.1:1/v1", "sk-secret-123", "pilot-7b", false, map[string]string{
			CheckList: "could not reach GET http://127.0.0.1:1/v1/models", CheckCompletion: "skipped", CheckStream: "skipped"}},
		{"wrong key", refusing.URL + "/v1", "wrong-key", "m", false, map[string]string{
			CheckList: "HTTP 401: the server refused the credentials", CheckCompletion: "HTTP 401", CheckStream: "HTTP 401"}},
		{"base URL without /v1", strings.TrimSuffix(good, "/v1"), "", "pilot-7b", false, map[string]string{
			CheckList: "HTTP 404: the base URL is probably wrong (it should end in /v1)", CheckCompletion: "HTTP 404", CheckStream: "HTTP 404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := CheckModel(ctx, tc.url, tc.key, tc.model)
			if rep.OK != tc.ok || (err == nil) != tc.ok {
				t.Fatalf("ok %v err %v, want ok %v:\n%s", rep.OK, err, tc.ok, rep)
			}
			if err != nil && !errors.Is(err, ErrCheckFailed) {
				t.Fatalf("error does not wrap ErrCheckFailed: %v", err)
			}
			if len(rep.Steps) != 3 {
				t.Fatalf("%d steps", len(rep.Steps))
			}
			for _, s := range rep.Steps {
				want, failed := tc.failed[s.Name]
				if s.OK == failed {
					t.Errorf("%s: ok %v (%s)", s.Name, s.OK, s.Detail)
				}
				if failed && !strings.Contains(s.Detail, want) {
					t.Errorf("%s: detail %q does not say %q", s.Name, s.Detail, want)
				}
				if tc.key != "" && strings.Contains(s.Detail, tc.key) {
					t.Errorf("%s: the API key leaked into the report", s.Name)
				}
			}
			if tc.ok && (!strings.Contains(rep.Steps[2].Detail, "ending in [DONE]") || !strings.Contains(rep.String(), "all checks passed")) {
				t.Errorf("report:\n%s", rep)
			}
		})
	}
}

func TestModelSpecValidateAndKeyReference(t *testing.T) {
	err := ModelSpec{Name: "a b", BaseURL: "ftp://x", APIKeyEnv: "1BAD", APIKeyFile: "/k", Timeout: -1, MaxConcurrency: -2}.Validate()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"name", "base_url", "not both", "api_key_env", "timeout", "max_concurrency"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %q", err, want)
		}
	}
	if err := (ModelSpec{Name: "m", BaseURL: "https://user:pw@api.example.com/v1"}).Validate(); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("credentials in URL: %v", err)
	}

	env := map[string]string{"PILOT_KEY": "sk-env"}
	m := ModelSpec{Name: "m", BaseURL: "https://api.example.com/v1", APIKeyEnv: "PILOT_KEY"}
	if k, err := m.APIKey(func(n string) string { return env[n] }); err != nil || k != "sk-env" {
		t.Fatalf("env key %q %v", k, err)
	}
	m.APIKeyEnv = "MISSING"
	if _, err := m.APIKey(func(n string) string { return env[n] }); err == nil || !strings.Contains(err.Error(), "MISSING is empty") {
		t.Fatalf("missing env: %v", err)
	}
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("sk-file\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.APIKeyEnv, m.APIKeyFile = "", path
	if k, err := m.APIKey(nil); err != nil || k != "sk-file" {
		t.Fatalf("file key %q %v", k, err)
	}
	m.APIKeyFile = path + ".missing"
	if _, err := m.APIKey(nil); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestModelsRegistry(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	r, err := OpenModels(ctx, e.js, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Put(ctx, ModelSpec{Name: "bad name"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid put: %v", err)
	}
	for _, n := range []string{"zeta", "alpha"} {
		if _, err := r.Put(ctx, ModelSpec{Name: n, BaseURL: "http://127.0.0.1:9/v1", APIKeyEnv: "K", AddedBy: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.Get(ctx, "alpha")
	if err != nil || got.APIKeyEnv != "K" || got.AddedAt.IsZero() || got.Model() != "alpha" {
		t.Fatalf("get %+v %v", got, err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "zeta" {
		t.Fatalf("list %+v %v", list, err)
	}
	if err := r.Delete(ctx, "zeta"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "zeta"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted model: %v", err)
	}
	if list, _ := r.List(ctx); len(list) != 1 {
		t.Fatalf("after delete %d models", len(list))
	}
}
