package gateway_test

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/policies"
)

// TestShadowNeverTouchesTheUsersAnswer: the user's request completes while the
// shadow candidate is still stuck, and the shadow's answer (or failure) is
// published for the monitors as route "shadow".
func TestShadowNeverTouchesTheUsersAnswer(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"shadow answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }); stuck.Close() })

	sub, _ := fs.Sub(policies.Builtin(), "rego/demo")
	eng, _ := policies.New(context.Background(), policies.Config{FS: sub})
	ext, _ := policies.NewExtractor(nil)
	keys, _ := gateway.NewKeys(map[string]gateway.Principal{gateway.HashKey(pilotKey): {KeyID: "k1", Trial: "demo", Tenant: "acme"}})
	rec := &recorder{}
	g, err := gateway.New(gateway.Config{}, gateway.Deps{
		Keys:      keys,
		Trials:    map[string]*gateway.Trial{"demo": {ID: "demo", LogicalModel: "demo", Decider: eng, Extractor: ext}},
		Upstreams: map[string]*gateway.Upstream{"cand": {Name: "cand", BaseURL: stuck.URL + "/v1"}, "base": simUpstream(t, "base")},
		Assigner:  fixedAssigner{route: "baseline", shadow: "cand"}, Publisher: rec,
		Pseudonymize: func(tenant, user string) string { return "p_" + user },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)

	for _, streaming := range []bool{false, true} {
		body := `{"model":"demo","stream":false,"messages":[{"role":"user","content":"hello"}]}`
		if streaming {
			body = `{"model":"demo","stream":true,"messages":[{"role":"user","content":"hello"}]}`
		}
		resp, b := post(t, srv.URL, pilotKey, body) // returns while the shadow is stuck
		if resp.StatusCode != 200 || resp.Header.Get(gateway.HeaderModel) != "base" {
			t.Fatalf("user got %d from %s: %s", resp.StatusCode, resp.Header.Get(gateway.HeaderModel), b)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "both user interactions published", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.got) == 2
	})
	once.Do(func() { close(release) })
	testutil.WaitFor(t, 5*time.Second, "shadow interactions published", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.got) == 4
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, in := range rec.got[:2] {
		if in.Route != events.RouteBaseline || in.Model != "base" {
			t.Fatalf("user interaction %+v", in)
		}
	}
	for _, in := range rec.got[2:] {
		if in.Route != events.RouteShadow || in.Model != "cand" || in.Status != events.StatusOK || in.Response.Content != "shadow answer" {
			t.Fatalf("shadow interaction %+v", in)
		}
	}
}
