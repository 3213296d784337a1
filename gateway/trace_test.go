package gateway_test

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/policies"
)

func TestSpansCoverTheRequestPath(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	sub, _ := fs.Sub(policies.Builtin(), "rego/demo")
	eng, _ := policies.New(context.Background(), policies.Config{FS: sub})
	ext, _ := policies.NewExtractor(nil)
	keys, _ := gateway.NewKeys(map[string]gateway.Principal{gateway.HashKey(pilotKey): {KeyID: "k1", Trial: "demo", Tenant: "acme"}})
	rec := &recorder{}
	upstreamTraceparent := make(chan string, 1)
	cand := simUpstream(t, "cand")
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamTraceparent <- r.Header.Get("traceparent")
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/spy")
		(&httputilProxy{target: cand.BaseURL}).ServeHTTP(w, r)
	}))
	t.Cleanup(spy.Close)
	g, err := gateway.New(gateway.Config{}, gateway.Deps{
		Keys:         keys,
		Trials:       map[string]*gateway.Trial{"demo": {ID: "demo", LogicalModel: "demo", Decider: eng, Extractor: ext}},
		Upstreams:    map[string]*gateway.Upstream{"cand": {Name: "cand", BaseURL: spy.URL + "/v1"}, "base": cand},
		Assigner:     fixedAssigner{route: "candidate"},
		Publisher:    rec,
		Pseudonymize: func(tenant, user string) string { return "p_" + user },
		Tracer:       tp.Tracer("test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)

	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"secret prompt text"}]}`))
	req.Header.Set("Authorization", "Bearer "+pilotKey)
	req.Header.Set("traceparent", incoming)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	in := rec.last(t)

	byName := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byName[s.Name] = s
		if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("span %s is not in the client's trace", s.Name)
		}
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.Emit(), "secret prompt") {
				t.Errorf("span %s carries prompt text in %s", s.Name, a.Key)
			}
		}
	}
	server, decide, upstream, publish := byName["chat"], byName["policy.decide"], byName["chat cand"], byName["publish stagegate.interactions"]
	if server.SpanKind != trace.SpanKindServer || server.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("server span %+v", server)
	}
	for name, s := range map[string]tracetest.SpanStub{"decide": decide, "upstream": upstream, "publish": publish} {
		if s.Parent.SpanID() != server.SpanContext.SpanID() {
			t.Errorf("%s span is not a child of the server span", name)
		}
	}
	if upstream.SpanKind != trace.SpanKindClient || publish.SpanKind != trace.SpanKindProducer {
		t.Errorf("kinds: upstream %v publish %v", upstream.SpanKind, publish.SpanKind)
	}
	if got := <-upstreamTraceparent; !strings.Contains(got, upstream.SpanContext.SpanID().String()) {
		t.Errorf("upstream got traceparent %q, want the client span %s", got, upstream.SpanContext.SpanID())
	}
	if in.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || in.SpanID != publish.SpanContext.SpanID().String() {
		t.Errorf("interaction trace %s span %s", in.TraceID, in.SpanID)
	}
	attrs := map[string]string{}
	for _, a := range server.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	for k, want := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.request.model": "demo", "gen_ai.response.model": "cand",
		"stagegate.trial": "demo", "stagegate.decision": "allow", "stagegate.route": "candidate"} {
		if attrs[k] != want {
			t.Errorf("server span %s = %q, want %q", k, attrs[k], want)
		}
	}
}
