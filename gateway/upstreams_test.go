package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/internal/testutil"
)

// fixedAnswer is an OpenAI-compatible model that always answers content.
func fixedAnswer(t *testing.T, name, content string) *gateway.Upstream {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","object":"chat.completion","model":"`+name+`","choices":[{"index":0,"message":{"role":"assistant","content":"`+content+`"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}))
	t.Cleanup(srv.Close)
	return &gateway.Upstream{Name: name, BaseURL: srv.URL + "/v1"}
}

const helloBody = `{"model":"demo","messages":[{"role":"user","content":"hello"}]}`

func TestSetUpstreamAddsReplacesAndRemovesWhileServing(t *testing.T) {
	rig := newFaultRig(t, gateway.Config{}, false, fixedAnswer(t, "cand", "v1"), simUpstream(t, "base"))
	if resp, body := post(t, rig.srv.URL, pilotKey, helloBody); resp.StatusCode != 200 || !strings.Contains(body, `"v1"`) {
		t.Fatalf("v1: %d %s", resp.StatusCode, body)
	}
	if !rig.gw.RemoveUpstream("cand") || rig.gw.RemoveUpstream("cand") {
		t.Fatal("remove reports existence wrongly")
	}
	if resp, body := post(t, rig.srv.URL, pilotKey, helloBody); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "cand is not configured") {
		t.Fatalf("removed model: %d %s", resp.StatusCode, body)
	}
	v2 := fixedAnswer(t, "cand", "v2")
	v2.MaxConcurrency = 7
	if err := rig.gw.SetUpstream(v2); err != nil {
		t.Fatal(err)
	}
	v2.BaseURL = "http://changed.invalid/v1" // the gateway keeps its own copy
	if resp, body := post(t, rig.srv.URL, pilotKey, helloBody); resp.StatusCode != 200 || !strings.Contains(body, `"v2"`) {
		t.Fatalf("v2: %d %s", resp.StatusCode, body)
	}
	if u, ok := rig.gw.Upstream("cand"); !ok || u.MaxConcurrency != 7 || strings.Contains(u.BaseURL, "changed") {
		t.Fatalf("Upstream(cand) = %+v, %v", u, ok)
	}
	if _, ok := rig.gw.Breakers()["cand"]; !ok {
		t.Fatal("the new model has no circuit breaker")
	}

	// Replacing the model while requests run: every request is answered by one
	// version or the other, never fails (run with -race).
	v3 := fixedAnswer(t, "cand", "v3")
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for range 4 {
		wg.Go(func() {
			for range 20 {
				resp, body := post(t, rig.srv.URL, pilotKey, helloBody)
				if resp.StatusCode != 200 || !(strings.Contains(body, `"v2"`) || strings.Contains(body, `"v3"`)) {
					errs <- body
				}
			}
		})
	}
	for i := range 50 {
		u := v2
		if i%2 == 1 {
			u = v3
		}
		if err := rig.gw.SetUpstream(u); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("request during replacement: %s", e)
	}
}

func TestSetUpstreamValidates(t *testing.T) {
	rig := newFaultRig(t, gateway.Config{}, false, simUpstream(t, "cand"), simUpstream(t, "base"))
	for _, tc := range []struct {
		name string
		u    *gateway.Upstream
		want string
	}{
		{"nil", nil, "nil"},
		{"no name", &gateway.Upstream{BaseURL: "http://x/v1"}, "no name"},
		{"bad url", &gateway.Upstream{Name: "m", BaseURL: "ftp://x/v1"}, "not an http(s) URL"},
		{"negative", &gateway.Upstream{Name: "m", BaseURL: "http://x/v1", MaxConcurrency: -1}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rig.gw.SetUpstream(tc.u)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, ok := rig.gw.Upstream("m"); ok {
		t.Fatal("an invalid model was installed")
	}
}

// TestMaxConcurrencyFallsBackToBaseline: a candidate at its maximum concurrency
// refuses the next call, which the baseline serves; the slot is freed when the
// held answer is done.
func TestMaxConcurrencyFallsBackToBaseline(t *testing.T) {
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	var once sync.Once
	held := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"held"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }); held.Close() })
	cand := &gateway.Upstream{Name: "cand", BaseURL: held.URL + "/v1", MaxConcurrency: 1}
	rig := newFaultRig(t, gateway.Config{}, true, cand, simUpstream(t, "base"))

	first := make(chan string, 1)
	go func() {
		resp, body := post(t, rig.srv.URL, pilotKey, helloBody)
		first <- resp.Header.Get(gateway.HeaderModel) + " " + body
	}()
	<-arrived // the candidate's only slot is taken
	resp, body := post(t, rig.srv.URL, pilotKey, helloBody)
	if resp.StatusCode != 200 || resp.Header.Get(gateway.HeaderModel) != "base" {
		t.Fatalf("second request: %d from %s: %s", resp.StatusCode, resp.Header.Get(gateway.HeaderModel), body)
	}
	if in := rig.rec.last(t); in.FallbackFrom != "cand" || rig.gw.Stats().Fallbacks != 1 {
		t.Fatalf("fallback not recorded: %+v, %+v", in, rig.gw.Stats())
	}
	once.Do(func() { close(release) })
	if got := <-first; !strings.HasPrefix(got, "cand ") || !strings.Contains(got, "held") {
		t.Fatalf("first request: %s", got)
	}
	testutil.WaitFor(t, 5*time.Second, "the slot is free again", func() bool {
		resp, _ := post(t, rig.srv.URL, pilotKey, helloBody)
		return resp.Header.Get(gateway.HeaderModel) == "cand"
	})
}
