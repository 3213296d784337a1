package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/sandbox/sim"
)

// discard is a Publisher that only counts, so the benchmark measures the gateway
// and not a bus.
type discard struct{ n atomic.Uint64 }

func (d *discard) Publish(*events.Interaction) error { d.n.Add(1); return nil }
func (d *discard) Full() bool                        { return false }

// benchGateway is the gateway with the demo policy (real OPA), a real extractor
// and a simulator upstream on loopback HTTP answering a fixed text.
func benchGateway(b *testing.B) (*gateway.Gateway, *discard) {
	b.Helper()
	return benchGatewayTraced(b, nil)
}

// benchGatewayTraced is benchGateway with a tracer (nil: the no-op default).
func benchGatewayTraced(b *testing.B, tracer trace.Tracer) (*gateway.Gateway, *discard) {
	b.Helper()
	s, err := sim.New(sim.Config{Models: []string{"cand", "base"}, FixedAnswer: "The central library is open from ten to four on public holidays."})
	if err != nil {
		b.Fatal(err)
	}
	up := httptest.NewServer(s.Handler())
	b.Cleanup(up.Close)
	sub, err := fs.Sub(policies.Builtin(), "rego/demo")
	if err != nil {
		b.Fatal(err)
	}
	eng, err := policies.New(context.Background(), policies.Config{FS: sub})
	if err != nil {
		b.Fatal(err)
	}
	ext, err := policies.NewExtractor(policies.Topics{"weapons": {"build a bomb", "make a weapon"}, "medical_dosing": {"insulin dose", "dosage"}})
	if err != nil {
		b.Fatal(err)
	}
	keys, err := gateway.NewKeys(map[string]gateway.Principal{gateway.HashKey(pilotKey): {KeyID: "k1", Trial: "demo", Tenant: "acme", Cohort: "pilot"}})
	if err != nil {
		b.Fatal(err)
	}
	pub := &discard{}
	g, err := gateway.New(gateway.Config{}, gateway.Deps{
		Keys:      keys,
		Trials:    map[string]*gateway.Trial{"demo": {ID: "demo", LogicalModel: "demo", Decider: eng, Extractor: ext}},
		Upstreams: map[string]*gateway.Upstream{"cand": {Name: "cand", BaseURL: up.URL + "/v1"}, "base": {Name: "base", BaseURL: up.URL + "/v1"}},
		Assigner:  fixedAssigner{route: "candidate"}, Publisher: pub,
		Pseudonymize: func(tenant, user string) string { return "p_" + tenant + "_" + user },
		Tracer:       tracer,
	})
	if err != nil {
		b.Fatal(err)
	}
	return g, pub
}

// BenchmarkServeHTTP is one whole chat request through the gateway's handler:
// authenticate, decode, signals, OPA decision, assignment, the upstream call to
// a simulator on loopback, the answer, and the hand-off to the publisher. The
// client side is an in-memory recorder; the simulator's own cost is included.
func BenchmarkServeHTTP(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := "plain"
		if stream {
			name = "stream"
		}
		b.Run(name, func(b *testing.B) {
			g, pub := benchGateway(b)
			bodies := make([][]byte, 64)
			for i := range bodies {
				bodies[i] = fmt.Appendf(nil, `{"model":"demo","user":"user-%d","max_tokens":256,"stream":%t,"messages":[`+
					`{"role":"system","content":"You are a concise assistant for a municipal services pilot."},`+
					`{"role":"user","content":"What are the opening hours of the central library on public holidays?"}]}`, i, stream)
			}
			want := `"chat.completion"`
			if stream {
				want = "data: [DONE]"
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Authorization", "Bearer "+pilotKey)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				g.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
					b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
				}
				i++
			}
			b.StopTimer()
			if pub.n.Load() < uint64(i) {
				b.Fatalf("%d interactions published for %d requests", pub.n.Load(), i)
			}
		})
	}
}

// BenchmarkServeHTTPParallel is the same plain request from GOMAXPROCS
// goroutines, as a loaded gateway serves them.
func BenchmarkServeHTTPParallel(b *testing.B) {
	g, _ := benchGateway(b)
	body := []byte(`{"model":"demo","user":"alice","messages":[{"role":"user","content":"What are the opening hours of the central library?"}]}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+pilotKey)
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d: %s", rec.Code, rec.Body.String())
				return
			}
			_, _ = io.Copy(io.Discard, rec.Body)
		}
	})
}

// BenchmarkServeHTTPCohorts is the plain request on a trial applied with
// participants (tenants, keys) and three cohort rules (a user list, a key
// attribute, a percentage), the last one taking the user: every step of the
// participant check and the cohort assignment runs.
func BenchmarkServeHTTPCohorts(b *testing.B) {
	g, _ := benchGateway(b)
	cur, _ := g.Trial("demo")
	t := *cur
	t.Tenants, t.Keys = []string{"other", "acme"}, []string{"k0", "k1"}
	t.Cohorts = []gateway.CohortRule{
		{Name: "internal", Users: map[string]bool{"p_acme_staff": true}},
		{Name: "clinicians", Attribute: "role", Values: []string{"clinician"}},
		{Name: "everyone", From: 0, To: gateway.CohortScale},
	}
	if err := g.SetTrial(&t); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"model":"demo","user":"alice","max_tokens":256,"messages":[{"role":"user","content":"What are the opening hours of the central library?"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+pilotKey)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}
