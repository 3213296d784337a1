package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stagegate/stagegate/internal/testutil"
)

// TestOneTraceFromRequestToIncident: a streamed [sim:pii] request yields one trace
// whose spans cover gateway, policy, upstream, publish, monitor, detectors and the
// incident, parented correctly across the NATS hop.
func TestOneTraceFromRequestToIncident(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	sb, err := New(cfg, Deps{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sb.Stop(context.Background())

	client := sdkClient(sb)
	stream := client.Chat.Completions.NewStreaming(context.Background(), chat("[sim:pii] who is on call?"))
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	byName := map[string]tracetest.SpanStub{}
	// A span is exported when it ends; the consumer's process span ends after the
	// incident it recorded, so wait for both.
	testutil.WaitFor(t, 10*time.Second, "incident.record and process spans", func() bool {
		for _, s := range exp.GetSpans() {
			byName[s.Name] = s
		}
		_, rec := byName["incident.record"]
		_, proc := byName["process stagegate.interactions"]
		return rec && proc
	})
	server := byName["chat"]
	trace := server.SpanContext.TraceID()
	var model string
	for name := range byName {
		if m, ok := strings.CutPrefix(name, "chat demo-"); ok {
			model = "chat demo-" + m
		}
	}
	for _, name := range []string{"chat", "policy.decide", model, "publish stagegate.interactions", "process stagegate.interactions", "detector pii", "incident.record"} {
		s, ok := byName[name]
		if !ok {
			t.Fatalf("no span %q; have %v", name, keys(byName))
		}
		if s.SpanContext.TraceID() != trace {
			t.Errorf("span %q is in another trace", name)
		}
	}
	parent := func(child, want string) {
		if byName[child].Parent.SpanID() != byName[want].SpanContext.SpanID() {
			t.Errorf("%q is not a child of %q", child, want)
		}
	}
	parent("publish stagegate.interactions", "chat")
	parent("process stagegate.interactions", "publish stagegate.interactions") // across NATS
	parent("detector pii", "process stagegate.interactions")
	parent("incident.record", "process stagegate.interactions")
	for _, s := range byName {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.Emit(), "who is on call") {
				t.Errorf("span %s carries prompt text", s.Name)
			}
		}
	}
}

func keys(m map[string]tracetest.SpanStub) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
