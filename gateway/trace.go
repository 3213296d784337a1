package gateway

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing: one server span per request with the GenAI semantic-convention
// attributes and Stagegate's own, child spans for the policy decision, the
// upstream call (a client span with the first token as an event) and the hand-off
// to the publisher (a producer span whose context travels in the NATS headers, so
// the monitors' spans join the trace). With no tracer configured the no-op tracer
// costs next to nothing. Prompt and response text never go into spans.

// Stagegate's span attributes.
const (
	AttrTrial    = attribute.Key("stagegate.trial")
	AttrStage    = attribute.Key("stagegate.stage")
	AttrDecision = attribute.Key("stagegate.decision")
	AttrRoute    = attribute.Key("stagegate.route")
	AttrStatus   = attribute.Key("stagegate.status")
	AttrFallback = attribute.Key("stagegate.fallback_from")
)

var traceContext = propagation.TraceContext{}

func tracerOrNoop(t trace.Tracer) trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return t
}

// startServerSpan honours an incoming W3C traceparent and opens the request span.
func (g *Gateway) startServerSpan(r *http.Request) (context.Context, trace.Span) {
	ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return g.tracer.Start(ctx, "chat", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.GenAIOperationNameChat))
}

// endServerSpan records the outcome on the request span.
func endServerSpan(span trace.Span, x *exchange, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	in := x.in
	decision := "allow"
	if !in.Decision.Allow {
		decision = "deny"
	}
	span.SetAttributes(
		AttrTrial.String(in.Trial), AttrStage.String(in.Stage), AttrDecision.String(decision),
		AttrRoute.String(in.Route), AttrStatus.String(in.Status),
		semconv.GenAIRequestModel(in.LogicalModel), semconv.GenAIResponseModel(in.Model),
		semconv.GenAIUsageInputTokens(in.Response.Usage.PromptTokens),
		semconv.GenAIUsageOutputTokens(in.Response.Usage.CompletionTokens),
		attribute.Int("http.response.status_code", in.HTTPStatus),
	)
	if in.FallbackFrom != "" {
		span.SetAttributes(AttrFallback.String(in.FallbackFrom))
	}
	if in.Response.FinishReason != "" {
		span.SetAttributes(semconv.GenAIResponseFinishReasons(in.Response.FinishReason))
	}
	if err != nil && in.HTTPStatus >= 500 {
		span.SetStatus(codes.Error, in.Status)
	}
	span.End()
}
