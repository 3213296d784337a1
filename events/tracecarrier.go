package events

import "github.com/nats-io/nats.go"

// HeaderCarrier adapts NATS message headers to OpenTelemetry's TextMapCarrier
// with the exact lowercase keys of W3C trace context (traceparent, tracestate);
// http.Header's canonicalisation would write Traceparent instead.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set replaces key's value.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header keys.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
