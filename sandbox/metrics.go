package sandbox

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsRegistry exposes the components' counters in Prometheus text format
// through the OpenTelemetry metrics SDK. Counters are read from each component's
// Stats when scraped, so the request path pays nothing for them.
type metricsRegistry struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

func newMetrics(s *Sandbox) (*metricsRegistry, error) {
	reg := prometheus.NewRegistry() // its own registry: no stray global metrics
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	m := mp.Meter("github.com/stagegate/stagegate/sandbox")

	type counter struct {
		name, desc string
		read       func() int64
	}
	counters := []counter{
		{"stagegate.gateway.requests", "Chat completion requests received.", func() int64 { return int64(s.gw.Stats().Requests) }},
		{"stagegate.gateway.responses.ok", "Requests answered successfully.", func() int64 { return int64(s.gw.Stats().OK) }},
		{"stagegate.gateway.denied", "Requests denied by policy.", func() int64 { return int64(s.gw.Stats().Denied) }},
		{"stagegate.gateway.client_errors", "Requests refused for bad input or credentials.", func() int64 { return int64(s.gw.Stats().ClientErrors) }},
		{"stagegate.gateway.upstream_errors", "Requests that failed upstream.", func() int64 { return int64(s.gw.Stats().UpstreamErrors) }},
		{"stagegate.gateway.streams", "Streaming requests.", func() int64 { return int64(s.gw.Stats().Streams) }},
		{"stagegate.publish.enqueued", "Interactions queued for publishing.", func() int64 { return int64(s.publisher.Stats().Enqueued) }},
		{"stagegate.publish.published", "Interactions acknowledged by JetStream.", func() int64 { return int64(s.publisher.Stats().Published) }},
		{"stagegate.publish.failures", "Interactions whose publish failed.", func() int64 { return int64(s.publisher.Stats().Failed) }},
		{"stagegate.publish.dropped", "Interactions refused by a full or stopped queue.", func() int64 { return int64(s.publisher.Stats().Dropped) }},
	}
	if s.runner != nil {
		counters = append(counters,
			counter{"stagegate.monitor.processed", "Interactions processed by monitors.", func() int64 { return int64(s.runner.Stats().Processed) }},
			counter{"stagegate.monitor.findings", "Findings reported by detectors.", func() int64 { return int64(s.runner.Stats().Findings) }},
			counter{"stagegate.monitor.incidents_opened", "Incidents opened.", func() int64 { return int64(s.runner.Stats().IncidentsOpened) }},
			counter{"stagegate.monitor.failures", "Messages whose processing failed (redelivered).", func() int64 { return int64(s.runner.Stats().Failed) }},
			counter{"stagegate.monitor.poison", "Malformed messages terminated.", func() int64 { return int64(s.runner.Stats().Poison) }},
		)
	}
	for _, c := range counters {
		read := c.read
		if _, err := m.Int64ObservableCounter(c.name, metric.WithDescription(c.desc),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(read())
				return nil
			})); err != nil {
			return nil, fmt.Errorf("metric %s: %w", c.name, err)
		}
	}
	if _, err := m.Int64ObservableGauge("stagegate.publish.queue_depth", metric.WithDescription("Interactions waiting to be published."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(s.publisher.Stats().QueueDepth))
			return nil
		})); err != nil {
		return nil, err
	}
	return &metricsRegistry{provider: mp, handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, nil
}
