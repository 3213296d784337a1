package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Defaults for TelemetryConfig.
const (
	DefaultServiceName = "stagegate"
	DefaultSampleRatio = 1.0
)

// TelemetryConfig configures trace export. With no OTLP endpoint tracing is off
// and costs nothing (the no-op tracer).
type TelemetryConfig struct {
	// OTLPEndpoint is the collector's URL, e.g. http://127.0.0.1:4318 (OTLP/HTTP)
	// or grpc://127.0.0.1:4317 (OTLP/gRPC). Empty: tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Insecure sends without TLS (a collector on loopback or in the same pod).
	Insecure bool `yaml:"insecure"`
	// ServiceName is the service.name resource attribute (default "stagegate").
	ServiceName string `yaml:"service_name"`
	// SampleRatio of new traces to record, 0..1 (default 1); traces a client
	// started are sampled as the client decided.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// Validate reports every problem at once.
func (c TelemetryConfig) Validate() error {
	var errs []error
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "grpc") {
			errs = append(errs, fmt.Errorf("telemetry.otlp_endpoint %q: want http(s)://host:port or grpc://host:port", c.OTLPEndpoint))
		}
	}
	if c.SampleRatio != nil && (*c.SampleRatio < 0 || *c.SampleRatio > 1) {
		errs = append(errs, fmt.Errorf("telemetry.sample_ratio %v: want 0..1", *c.SampleRatio))
	}
	return errors.Join(errs...)
}

// tracing is the process's tracer provider, or nil when tracing is off.
type tracing struct {
	provider *sdktrace.TracerProvider
}

// newTracing builds the OTLP exporter and provider; it does not connect until
// spans are exported, so a missing collector never blocks start-up.
func newTracing(ctx context.Context, c TelemetryConfig) (*tracing, error) {
	if c.OTLPEndpoint == "" {
		return &tracing{}, nil
	}
	u, err := url.Parse(c.OTLPEndpoint)
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if u.Scheme == "grpc" {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(u.Host)}
		if c.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(c.OTLPEndpoint + "/v1/traces")}
		if c.Insecure || u.Scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	name := c.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	ratio := DefaultSampleRatio
	if c.SampleRatio != nil {
		ratio = *c.SampleRatio
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
	)
	return &tracing{provider: tp}, nil
}

// tracer returns a named tracer, or nil (no-op) when tracing is off.
func (t *tracing) tracer(name string) trace.Tracer {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Tracer(name)
}

// shutdown flushes spans still buffered.
func (t *tracing) shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}
