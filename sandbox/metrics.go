package sandbox

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/monitors"
	"github.com/stagegate/stagegate/policies"
)

// metricsRegistry exposes the components' counters in Prometheus text format
// through the OpenTelemetry metrics SDK. Counters are read from each component's
// Stats when scraped, so the request path pays nothing for them.
type metricsRegistry struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

// newMetricsRegistry builds the meter provider that components record into and
// /metrics exposes.
func newMetricsRegistry() (*metricsRegistry, error) {
	reg := prometheus.NewRegistry() // its own registry: no stray global metrics
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return &metricsRegistry{provider: mp, handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, nil
}

// meter returns a named meter.
func (r *metricsRegistry) meter(name string) metric.Meter { return r.provider.Meter(name) }

// observe registers the counters read from components' Stats at scrape time.
func (r *metricsRegistry) observe(s *Sandbox) error {
	m := r.meter("github.com/stagegate/stagegate/sandbox")

	type counter struct {
		name, desc string
		read       func() int64
	}
	var counters []counter
	if s.gw != nil && s.publisher != nil { // not in the monitor, controller and console roles (roles.go)
		counters = append(counters, []counter{
			{"stagegate.gateway.requests", "Chat completion requests received.", func() int64 { return int64(s.gw.Stats().Requests) }},
			{"stagegate.gateway.responses.ok", "Requests answered successfully.", func() int64 { return int64(s.gw.Stats().OK) }},
			{"stagegate.gateway.denied", "Requests denied by policy.", func() int64 { return int64(s.gw.Stats().Denied) }},
			{"stagegate.gateway.client_errors", "Requests refused for bad input or credentials.", func() int64 { return int64(s.gw.Stats().ClientErrors) }},
			{"stagegate.gateway.upstream_errors", "Requests that failed upstream.", func() int64 { return int64(s.gw.Stats().UpstreamErrors) }},
			{"stagegate.gateway.streams", "Streaming requests.", func() int64 { return int64(s.gw.Stats().Streams) }},
			{"stagegate.gateway.fallbacks", "Requests the baseline served after the candidate failed.", func() int64 { return int64(s.gw.Stats().Fallbacks) }},
			{"stagegate.gateway.shadows_skipped", "Shadow copies not sent because too many were in flight.", func() int64 { return int64(s.gw.Stats().ShadowsSkipped) }},
			{"stagegate.publish.enqueued", "Interactions queued for publishing.", func() int64 { return int64(s.publisher.Stats().Enqueued) }},
			{"stagegate.publish.published", "Interactions acknowledged by JetStream.", func() int64 { return int64(s.publisher.Stats().Published) }},
			{"stagegate.publish.failures", "Interactions whose publish failed.", func() int64 { return int64(s.publisher.Stats().Failed) }},
			{"stagegate.publish.dropped", "Interactions refused by a full or stopped queue.", func() int64 { return int64(s.publisher.Stats().Dropped) }},
			{"stagegate.publish.spooled", "Interactions written to the on-disk spool.", func() int64 { return int64(s.publisher.Stats().Spooled) }},
			{"stagegate.publish.replayed", "Spooled interactions replayed to JetStream.", func() int64 { return int64(s.publisher.Stats().Replayed) }},
			{"stagegate.publish.lost", "Interactions lost: NATS down and the spool full (fail-open trials).", func() int64 { return int64(s.publisher.Stats().Lost) }},
		}...)
	}
	if s.loki != nil {
		counters = append(counters,
			counter{"stagegate.logs.loki.shipped", "Log lines handed to the Loki client.", func() int64 { return int64(s.loki.shipped.Load()) }},
			counter{"stagegate.logs.loki.dropped", "Log lines dropped because Loki was slow or down.", func() int64 { return int64(s.loki.dropped.Load()) }},
		)
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
			return fmt.Errorf("metric %s: %w", c.name, err)
		}
	}
	if _, err := m.Int64ObservableGauge("stagegate.publish.queue_depth", metric.WithDescription("Interactions waiting to be published."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			if s.publisher == nil {
				return nil
			}
			o.Observe(int64(s.publisher.Stats().QueueDepth))
			return nil
		})); err != nil {
		return err
	}
	gauges := []struct {
		name, unit, desc string
		read             func() float64
	}{
		{"stagegate.publish.spool.size", "By", "Bytes in the publish spool.", func() float64 { return float64(s.publisher.Stats().SpoolBytes) }},
		{"stagegate.publish.spool.records", "", "Interactions waiting in the publish spool.", func() float64 { return float64(s.publisher.Stats().SpoolRecords) }},
		{"stagegate.publish.spool.oldest_age", "s", "Age of the oldest spooled interaction.", func() float64 { return s.publisher.Stats().SpoolOldest.Seconds() }},
		{"stagegate.publish.degraded", "", "1 while interactions go through the spool instead of straight to JetStream.", func() float64 { return b2f(s.publisher.Stats().Degraded) }},
		{"stagegate.publish.spool.full", "", "1 when the spool is full.", func() float64 { return b2f(s.publisher.Stats().SpoolFull) }},
	}
	for _, g := range gauges {
		read := g.read
		if _, err := m.Float64ObservableGauge(g.name, metric.WithUnit(g.unit), metric.WithDescription(g.desc),
			metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
				if s.publisher == nil {
					return nil
				}
				o.Observe(read())
				return nil
			})); err != nil {
			return fmt.Errorf("metric %s: %w", g.name, err)
		}
	}
	// Policy engines, per trial: memo hits and misses, fresh evaluations, reloads,
	// refused revisions, and whether the last candidate revision was good.
	policyCounters := []struct {
		name, desc string
		read       func(policies.ReloadStatus) int64
	}{
		{"stagegate.policy.memo.hits", "Decisions served from the memo.", func(st policies.ReloadStatus) int64 { return int64(st.Engine.Hits) }},
		{"stagegate.policy.memo.misses", "Decisions not in the memo.", func(st policies.ReloadStatus) int64 { return int64(st.Engine.Misses) }},
		{"stagegate.policy.evaluations", "Fresh OPA evaluations.", func(st policies.ReloadStatus) int64 { return int64(st.Engine.Evaluations) }},
		{"stagegate.policy.reloads", "Policy revisions put into service after the first.", func(st policies.ReloadStatus) int64 { return int64(st.Reloads) }},
		{"stagegate.policy.reload_failures", "Candidate policy revisions refused (the last good one kept serving).", func(st policies.ReloadStatus) int64 { return int64(st.Failures) }},
	}
	for _, c := range policyCounters {
		read := c.read
		if _, err := m.Int64ObservableCounter(c.name, metric.WithDescription(c.desc),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				for trial, st := range s.policyStatuses() {
					o.Observe(read(st), metric.WithAttributes(attribute.String("trial", trial)))
				}
				return nil
			})); err != nil {
			return fmt.Errorf("metric %s: %w", c.name, err)
		}
	}
	// Per-trial gauges: the policy's health and the applied trial definitions
	// (trials_live.go): which stored revision each trial serves, and whether a
	// newer one was refused.
	trialGauges := []struct {
		name, desc string
		read       func() map[string]int64
	}{
		{"stagegate.policy.healthy", "0 while a trial's newest policy revision was refused and the previous one serves.", func() map[string]int64 {
			out := map[string]int64{}
			for trial, st := range s.policyStatuses() {
				out[trial] = oneIf(st.Healthy)
			}
			return out
		}},
		{"stagegate.trial.definition_revision", "The stored trial definition revision in service (0: the trial comes from the configuration).", func() map[string]int64 {
			out := map[string]int64{}
			for trial, st := range s.live.states() {
				out[trial] = int64(st.revision)
			}
			return out
		}},
		{"stagegate.trial.definition_refused", "1 while a trial's newest stored definition cannot be put into service and the previous one serves.", func() map[string]int64 {
			out := map[string]int64{}
			for trial, st := range s.live.states() {
				out[trial] = oneIf(st.refused)
			}
			return out
		}},
	}
	for _, g := range trialGauges {
		read := g.read
		if _, err := m.Int64ObservableGauge(g.name, metric.WithDescription(g.desc),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				for trial, v := range read() {
					o.Observe(v, metric.WithAttributes(attribute.String("trial", trial)))
				}
				return nil
			})); err != nil {
			return fmt.Errorf("metric %s: %w", g.name, err)
		}
	}

	// Monitor lag: what the monitors' durable consumer has yet to process, as
	// JetStream counts it (works for monitors in other processes too).
	if _, err := m.Int64ObservableGauge("stagegate.monitor.lag", metric.WithUnit("{message}"),
		metric.WithDescription("Interactions not yet processed by the monitors (JetStream consumer pending + unacknowledged)."),
		metric.WithInt64Callback(func(ctx context.Context, o metric.Int64Observer) error {
			cons, err := s.js.Consumer(ctx, events.StreamInteractions, monitors.DefaultDurable)
			if err != nil {
				return nil // no monitors have attached yet
			}
			info, err := cons.Info(ctx)
			if err != nil {
				return nil
			}
			o.Observe(int64(info.NumPending) + int64(info.NumAckPending))
			return nil
		})); err != nil {
		return err
	}
	if _, err := m.Int64ObservableGauge("stagegate.gateway.circuit_open", metric.WithDescription("1 when a model's circuit breaker is open or half-open."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			if s.gw == nil {
				return nil
			}
			for name, b := range s.gw.Breakers() {
				o.Observe(oneIf(b.State != gateway.BreakerClosed), metric.WithAttributes(attribute.String("model", name)))
			}
			return nil
		})); err != nil {
		return err
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// oneIf is 1 for true, 0 for false (gauges of a state).
func oneIf(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
