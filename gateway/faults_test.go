package gateway_test

import (
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/sandbox/sim"
)

// faultRig is a gateway whose candidate and baseline are set by the test.
type faultRig struct {
	srv *httptest.Server
	gw  *gateway.Gateway
	rec *recorder
}

func newFaultRig(t *testing.T, cfg gateway.Config, fallback bool, cand, base *gateway.Upstream) *faultRig {
	t.Helper()
	sub, _ := fs.Sub(policies.Builtin(), "rego/demo")
	eng, err := policies.New(context.Background(), policies.Config{FS: sub})
	if err != nil {
		t.Fatal(err)
	}
	ext, _ := policies.NewExtractor(nil)
	keys, _ := gateway.NewKeys(map[string]gateway.Principal{gateway.HashKey(pilotKey): {KeyID: "k1", Trial: "demo", Tenant: "acme"}})
	rec := &recorder{}
	g, err := gateway.New(cfg, gateway.Deps{
		Keys:      keys,
		Trials:    map[string]*gateway.Trial{"demo": {ID: "demo", LogicalModel: "demo", Decider: eng, Extractor: ext, Fallback: fallback}},
		Upstreams: map[string]*gateway.Upstream{"cand": cand, "base": base},
		Assigner:  fixedAssigner{route: "candidate"}, Publisher: rec,
		Pseudonymize: func(tenant, user string) string { return "p_" + user },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return &faultRig{srv: srv, gw: g, rec: rec}
}

// simUpstream serves the simulator on a random port.
func simUpstream(t *testing.T, name string) *gateway.Upstream {
	t.Helper()
	s, err := sim.New(sim.Config{Models: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &gateway.Upstream{Name: name, BaseURL: srv.URL + "/v1"}
}

// deadUpstream points at a port nobody listens on.
func deadUpstream(t *testing.T, name string) *gateway.Upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &gateway.Upstream{Name: name, BaseURL: "http://" + addr + "/v1", ConnectTimeout: time.Second}
}

func TestFallbackToBaselineWhenCandidateIsDown(t *testing.T) {
	rig := newFaultRig(t, gateway.Config{}, true, deadUpstream(t, "cand"), simUpstream(t, "base"))
	resp, body := post(t, rig.srv.URL, pilotKey, `{"model":"demo","messages":[{"role":"user","content":"hello"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get(gateway.HeaderModel) != "base" {
		t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get(gateway.HeaderModel), body)
	}
	in := rig.rec.last(t)
	if in.Status != events.StatusOK || in.Model != "base" || in.Route != events.RouteBaseline || in.FallbackFrom != "cand" {
		t.Fatalf("recorded %+v", in)
	}
	if rig.gw.Stats().Fallbacks != 1 {
		t.Fatalf("fallbacks %d", rig.gw.Stats().Fallbacks)
	}
}

func TestCircuitOpensAfterRepeatedFailures(t *testing.T) {
	cand := deadUpstream(t, "cand")
	cand.BreakerFailures, cand.BreakerCooldown = 3, time.Hour
	rig := newFaultRig(t, gateway.Config{}, false, cand, simUpstream(t, "base"))
	codes := map[int]int{}
	for range 4 {
		resp, _ := post(t, rig.srv.URL, pilotKey, `{"model":"demo","messages":[{"role":"user","content":"hello"}]}`)
		codes[resp.StatusCode]++
	}
	// Each request tries twice (one safe retry on a refused connection): the
	// breaker opens during the second request, and the rest fail fast with 503.
	if codes[http.StatusBadGateway] != 2 || codes[http.StatusServiceUnavailable] != 2 {
		t.Fatalf("status counts %v", codes)
	}
	_, body := post(t, rig.srv.URL, pilotKey, `{"model":"demo","messages":[{"role":"user","content":"hello"}]}`)
	if !strings.Contains(body, `"code":"model_unavailable"`) {
		t.Fatalf("open circuit answered %s", body)
	}
	if st := rig.gw.Breakers()["cand"]; st.State != gateway.BreakerOpen || st.Opened != 1 {
		t.Fatalf("breaker %+v", st)
	}
}

func TestStreamKeepAliveWhileTheModelIsSlow(t *testing.T) {
	rig := newFaultRig(t, gateway.Config{StreamKeepAlive: 50 * time.Millisecond}, false, simUpstream(t, "cand"), simUpstream(t, "base"))
	resp, body := post(t, rig.srv.URL, pilotKey, `{"model":"demo","stream":true,"messages":[{"role":"user","content":"[sim:slow=400ms] [sim:tokens=3]"}]}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, ": keep-alive\n\n") || !strings.Contains(body, "data: [DONE]") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if n := strings.Count(body, ": keep-alive"); n < 2 {
		t.Fatalf("%d keep-alive comments in %q", n, body)
	}
	if in := rig.rec.last(t); in.Status != events.StatusOK || in.Response.Content == "" {
		t.Fatalf("recorded %+v", in)
	}
}

func TestErrorAfterKeepAliveIsAnErrorEvent(t *testing.T) {
	rig := newFaultRig(t, gateway.Config{StreamKeepAlive: 50 * time.Millisecond}, false, simUpstream(t, "cand"), simUpstream(t, "base"))
	resp, body := post(t, rig.srv.URL, pilotKey, `{"model":"demo","stream":true,"messages":[{"role":"user","content":"[sim:slow=300ms] [sim:error=503]"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(body, ": keep-alive") || !strings.Contains(body, `data: {"error":`) || !strings.Contains(body, `"code":"upstream_error"`) {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if in := rig.rec.last(t); in.Status != events.StatusUpstreamError {
		t.Fatalf("recorded status %s", in.Status)
	}
}

func TestFirstTokenTimeoutCutsASilentStream(t *testing.T) {
	// A model that sends its headers, then nothing.
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(silent.Close)
	cand := &gateway.Upstream{Name: "cand", BaseURL: silent.URL + "/v1", FirstTokenTimeout: 200 * time.Millisecond}
	rig := newFaultRig(t, gateway.Config{StreamKeepAlive: -1}, false, cand, simUpstream(t, "base"))
	start := time.Now()
	resp, body := post(t, rig.srv.URL, pilotKey, `{"model":"demo","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(body, "no first token in time") || time.Since(start) > 5*time.Second {
		t.Fatalf("%d %q after %s", resp.StatusCode, body, time.Since(start))
	}
	if in := rig.rec.last(t); in.Status != events.StatusPartial {
		t.Fatalf("recorded status %s", in.Status)
	}
}

func TestClientDisconnectCancelsTheUpstreamCall(t *testing.T) {
	cancelled, arrived := make(chan struct{}), make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		// Read the body, as a real model server does: net/http notices a closed
		// connection only once the request body is consumed.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		close(cancelled)
	}))
	t.Cleanup(hang.Close)
	rig := newFaultRig(t, gateway.Config{}, false, &gateway.Upstream{Name: "cand", BaseURL: hang.URL + "/v1"}, simUpstream(t, "base"))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rig.srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+pilotKey)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-arrived:
		cancel() // the client goes away while the model is still thinking
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the model")
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call was not cancelled when the client went away")
	}
	if in := rig.rec.last(t); in.Status != events.StatusClientClosed {
		t.Fatalf("recorded status %s", in.Status)
	}
}

func TestFullRecordingFailsClosedTrialsOnly(t *testing.T) {
	rig := newFaultRig(t, gateway.Config{}, false, simUpstream(t, "cand"), simUpstream(t, "base"))
	rig.rec.mu.Lock()
	rig.rec.full = true
	rig.rec.mu.Unlock()
	resp, body := post(t, rig.srv.URL, pilotKey, `{"model":"demo","messages":[{"role":"user","content":"hello"}]}`)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"recording_unavailable"`) {
		t.Fatalf("fail-closed trial with a full spool: %d %s", resp.StatusCode, body)
	}
}
