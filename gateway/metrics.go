package gateway

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// requestMetrics are the gateway's OpenTelemetry instruments. Attribute sets are
// cached per (trial, model, stage, status), so recording allocates nothing once a
// combination has been seen.
type requestMetrics struct {
	duration   metric.Float64Histogram // whole request, seconds
	added      metric.Float64Histogram // gateway's own share: total minus upstream, seconds
	ttft       metric.Float64Histogram // streams: time to first token, seconds
	policyEval metric.Float64Histogram // policy decision, seconds
	decisions  metric.Int64Counter     // by outcome

	sets sync.Map // labelKey -> metric.MeasurementOption
}

type labelKey struct{ trial, model, stage, status string }

// Latency buckets from 0.1 ms to 2 min: the gateway's own overhead lives at the
// low end, model answers at the high end.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

func newRequestMetrics(m metric.Meter) (*requestMetrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("")
	}
	var rm requestMetrics
	var err error
	hist := func(name, desc string) metric.Float64Histogram {
		if err != nil {
			return nil
		}
		var h metric.Float64Histogram
		h, err = m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(latencyBuckets...))
		return h
	}
	rm.duration = hist("stagegate.gateway.request.duration", "Chat request duration at the gateway, by trial, model, stage and status.")
	rm.added = hist("stagegate.gateway.added_latency", "Latency the gateway adds: request duration minus the upstream call.")
	rm.ttft = hist("stagegate.gateway.time_to_first_token", "Streams: time from request to the first chunk.")
	rm.policyEval = hist("stagegate.policy.eval.duration", "Policy decision time.")
	if err != nil {
		return nil, fmt.Errorf("gateway metrics: %w", err)
	}
	if rm.decisions, err = m.Int64Counter("stagegate.policy.decisions", metric.WithDescription("Policy decisions by trial and outcome.")); err != nil {
		return nil, fmt.Errorf("gateway metrics: %w", err)
	}
	return &rm, nil
}

func (rm *requestMetrics) attrs(k labelKey) metric.MeasurementOption {
	if v, ok := rm.sets.Load(k); ok {
		return v.(metric.MeasurementOption)
	}
	opt := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("trial", k.trial), attribute.String("model", k.model),
		attribute.String("stage", k.stage), attribute.String("status", k.status)))
	rm.sets.Store(k, opt)
	return opt
}

// record notes one finished request.
func (rm *requestMetrics) record(ctx context.Context, x *exchange) {
	in := x.in
	if in.Trial == "" {
		return // never reached a trial: no labels worth keeping
	}
	decision := "allow"
	if !in.Decision.Allow {
		decision = "deny"
	}
	if in.Status == "" {
		return
	}
	opt := rm.attrs(labelKey{in.Trial, in.Model, in.Stage, in.Status})
	total := in.Latency.TotalMS / 1000
	rm.duration.Record(ctx, total, opt)
	if added := total - in.Latency.UpstreamMS/1000; added >= 0 {
		rm.added.Record(ctx, added, opt)
	}
	if in.Latency.FirstTokenMS > 0 {
		rm.ttft.Record(ctx, in.Latency.FirstTokenMS/1000, opt)
	}
	dopt := rm.attrs(labelKey{trial: in.Trial, status: decision})
	rm.decisions.Add(ctx, 1, dopt)
	rm.policyEval.Record(ctx, float64(in.Decision.EvalMicros)/1e6, dopt)
}
