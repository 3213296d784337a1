package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// discardExporter drops spans after the SDK has built and batched them, so the
// benchmark counts everything tracing costs in the process except the network.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

var _ sdktrace.SpanExporter = discardExporter{}

// BenchmarkTracing compares one plain request through the gateway with tracing
// off (the no-op tracer, the default) and on (the OpenTelemetry SDK, every trace
// sampled, spans batched to an exporter).
func BenchmarkTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		var tracer trace.Tracer
		if on {
			name = "on"
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tracer = tp.Tracer("bench")
		}
		b.Run(name, func(b *testing.B) {
			g, _ := benchGatewayTraced(b, tracer)
			body := []byte(`{"model":"demo","user":"alice","messages":[{"role":"user","content":"What are the opening hours of the central library?"}]}`)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+pilotKey)
				rec := httptest.NewRecorder()
				g.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
