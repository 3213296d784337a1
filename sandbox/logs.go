package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grafana/loki-client-go/loki"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/trace"
)

// Defaults for LogsConfig.
const (
	DefaultLokiBuffer    = 4096
	DefaultLokiBatchWait = time.Second
)

// Log kinds: the "kind" attribute of a record, and the kind label in Loki. Only
// records that carry one of them are shipped to Loki.
const (
	LogKindDecision = "decision"
	LogKindIncident = "incident"
	LogKindRollout  = "rollout"
	LogKindAudit    = "audit"
)

// LogsConfig configures log shipping to Loki; off by default.
type LogsConfig struct {
	// LokiURL is the push endpoint, e.g. http://127.0.0.1:3100/loki/api/v1/push.
	LokiURL string `yaml:"loki_url"`
	// LokiTenant is sent as X-Scope-OrgID when set.
	LokiTenant string `yaml:"loki_tenant"`
	// Buffer bounds the lines waiting to be shipped; when Loki is slow or down,
	// further lines are dropped and counted, never blocking the caller (default 4096).
	Buffer int `yaml:"buffer"`
	// BatchWait is the longest a line waits before its batch is sent (default 1s).
	BatchWait time.Duration `yaml:"batch_wait"`
	// Decisions ships one decision log line per request (off by default: volume).
	Decisions bool `yaml:"decisions"`
}

// Validate reports every problem at once.
func (c LogsConfig) Validate() error {
	var errs []error
	if c.LokiURL != "" {
		if u, err := url.Parse(c.LokiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("logs.loki_url %q: want an http(s) URL of the push endpoint", c.LokiURL))
		}
	}
	if c.Buffer < 0 {
		errs = append(errs, fmt.Errorf("logs.buffer %d: must not be negative", c.Buffer))
	}
	return errors.Join(errs...)
}

// lokiEntry is one line on its way to Loki.
type lokiEntry struct {
	labels model.LabelSet
	at     time.Time
	line   string
}

// lokiShipper owns the Loki client behind a bounded channel: the client's Handle
// blocks while it retries a dead Loki, so callers only ever do a non-blocking send.
type lokiShipper struct {
	client  *loki.Client
	ch      chan lokiEntry
	done    chan struct{}
	closing sync.Once
	mu      sync.RWMutex
	closed  bool

	shipped, dropped atomic.Uint64
}

func newLokiShipper(c LogsConfig, log *slog.Logger) (*lokiShipper, error) {
	cfg, err := loki.NewDefaultConfig(c.LokiURL)
	if err != nil {
		return nil, fmt.Errorf("loki: %w", err)
	}
	cfg.BatchWait = c.BatchWait
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = DefaultLokiBatchWait
	}
	cfg.Timeout = 5 * time.Second
	cfg.BackoffConfig.MaxRetries = 3
	cfg.BackoffConfig.MinBackoff, cfg.BackoffConfig.MaxBackoff = 100*time.Millisecond, 2*time.Second
	cfg.ExternalLabels.LabelSet = model.LabelSet{"app": "stagegate"}
	cfg.TenantID = c.LokiTenant
	client, err := loki.NewWithLogger(cfg, kitLogger{log.With("component", "loki")})
	if err != nil {
		return nil, fmt.Errorf("loki: %w", err)
	}
	n := c.Buffer
	if n == 0 {
		n = DefaultLokiBuffer
	}
	s := &lokiShipper{client: client, ch: make(chan lokiEntry, n), done: make(chan struct{})}
	go s.run()
	return s, nil
}

func (s *lokiShipper) run() {
	defer close(s.done)
	for e := range s.ch {
		_ = s.client.Handle(e.labels, e.at, e.line)
		s.shipped.Add(1)
	}
}

// send queues a line, or drops and counts it when the buffer is full or shut.
func (s *lokiShipper) send(e lokiEntry) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.Add(1)
		return
	}
	select {
	case s.ch <- e:
	default:
		s.dropped.Add(1)
	}
}

// stop flushes what is queued (bounded by ctx) and stops the client exactly once.
func (s *lokiShipper) stop(ctx context.Context) error {
	s.closing.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.ch)
		s.mu.Unlock()
	})
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("loki: %d lines not shipped: %w", len(s.ch), ctx.Err())
	}
	stopped := make(chan struct{})
	go func() { s.client.Stop(); close(stopped) }()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("loki: final flush: %w", ctx.Err())
	}
}

// kitLogger adapts slog to the go-kit logger interface the Loki client wants.
type kitLogger struct{ l *slog.Logger }

func (k kitLogger) Log(keyvals ...any) error {
	k.l.Warn("loki client", keyvals...)
	return nil
}

// lokiHandler is a slog.Handler that ships records carrying a known "kind" to
// Loki with the fixed label set {app, trial, kind, level} — never user ids or
// other high-cardinality values as labels; they stay in the line.
type lokiHandler struct {
	s      *lokiShipper
	attrs  []slog.Attr
	groups []string
}

func (h *lokiHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *lokiHandler) Handle(ctx context.Context, r slog.Record) error {
	labels := model.LabelSet{"level": model.LabelValue(r.Level.String())}
	find := func(a slog.Attr) {
		switch a.Key {
		case "kind":
			switch v := a.Value.String(); v {
			case LogKindDecision, LogKindIncident, LogKindRollout, LogKindAudit:
				labels["kind"] = model.LabelValue(v)
			}
		case "trial":
			labels["trial"] = model.LabelValue(a.Value.String())
		}
	}
	for _, a := range h.attrs {
		find(a)
	}
	r.Attrs(func(a slog.Attr) bool { find(a); return true })
	if labels["kind"] == "" {
		return nil
	}
	var buf bytes.Buffer
	jh := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime})
	var out slog.Handler = jh.WithAttrs(h.attrs)
	for _, g := range h.groups {
		out = out.WithGroup(g)
	}
	if err := withTrace(out).Handle(ctx, r); err != nil {
		return err
	}
	h.s.send(lokiEntry{labels: labels, at: r.Time, line: string(bytes.TrimSpace(buf.Bytes()))})
	return nil
}

func (h *lokiHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lokiHandler{s: h.s, attrs: append(append([]slog.Attr{}, h.attrs...), as...), groups: h.groups}
}

func (h *lokiHandler) WithGroup(name string) slog.Handler {
	return &lokiHandler{s: h.s, attrs: h.attrs, groups: append(append([]string{}, h.groups...), name)}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{} // Loki keeps the entry's own timestamp
	}
	return a
}

// traceHandler adds the trace and span ids of the record's context, so a log
// line leads to its trace.
type traceHandler struct{ slog.Handler }

func withTrace(h slog.Handler) slog.Handler { return traceHandler{h} }

func (t traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return t.Handler.Handle(ctx, r)
}

func (t traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{t.Handler.WithAttrs(as)}
}
func (t traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{t.Handler.WithGroup(name)}
}

// teeHandler sends each record to every handler that wants it.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

// NewLogHandler is the stderr handler `stagegate` uses: JSON or text lines with
// the trace and span ids of the record's context.
func NewLogHandler(w io.Writer, level slog.Level, json bool) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if json {
		return withTrace(slog.NewJSONHandler(w, opts))
	}
	return withTrace(slog.NewTextHandler(w, opts))
}
