package monitors

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
)

// IncidentOpened is the IncidentEvent type published when an incident is created.
const IncidentOpened = "opened"

// categoryPII is the finding category whose spans are masked when the policy
// obliged redact_pii_in_storage.
const categoryPII = "pii"

// maxTermReason bounds the reason sent with a terminated (poison) message.
const maxTermReason = 200

// headerTraceState travels with traceparent (W3C trace context).
const headerTraceState = "tracestate"

// Stats are the runner's counters since New; the lead exports them as metrics.
type Stats struct {
	// Processed: interactions fully handled and acked.
	Processed uint64
	// Findings: findings reported on processed interactions.
	Findings uint64
	// IncidentsOpened: incidents this runner created.
	IncidentsOpened uint64
	// Failed: deliveries that hit a store or publish error and were nak'ed.
	Failed uint64
	// Poison: payloads that can never be processed, terminated.
	Poison uint64
	// DetectorErrors: detector calls that failed or panicked, and findings
	// dropped because a detector filled them wrongly.
	DetectorErrors uint64
	// Aggregated: interactions whose findings joined an aggregate incident
	// (Config.Burst) instead of opening their own.
	Aggregated uint64
}

// Runner consumes interactions from JetStream and runs the detectors on them.
type Runner struct {
	cfg   Config
	js    jetstream.JetStream
	store incidents.Store
	corr  incidents.Correlator // nil unless Config.Burst is set
	dets  []Detector
	clk   clock.Clock
	log   *slog.Logger
	trc   trace.Tracer

	mu      sync.Mutex
	running bool
	iter    jetstream.MessagesContext
	cancel  context.CancelFunc
	done    chan struct{}
	stopped atomic.Bool

	processed, findings, opened, failed, poison, detErrs, aggregated atomic.Uint64
}

// New validates cfg and deps and returns a stopped runner.
func New(cfg Config, deps Deps) (*Runner, error) {
	if err := errors.Join(cfg.Validate(), deps.validate()); err != nil {
		return nil, err
	}
	var corr incidents.Correlator
	if cfg.bursting() {
		c, ok := deps.Store.(incidents.Correlator)
		if !ok {
			return nil, fmt.Errorf("%w: burst grouping needs a store that implements incidents.Correlator", ErrConfig)
		}
		corr = c
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{
		cfg:   cfg.withDefaults(),
		js:    deps.JS,
		store: deps.Store,
		corr:  corr,
		dets:  append([]Detector(nil), deps.Detectors...),
		clk:   clock.OrReal(deps.Clock),
		trc:   tracerOrNoop(deps.Tracer),
		log:   log.With("component", "monitors", "durable", cfg.withDefaults().Durable),
	}, nil
}

// ConsumerConfig is the durable consumer the runner creates or updates.
func (r *Runner) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       r.cfg.Durable,
		Description:   "stagegate risk monitors",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.cfg.AckWait,
		MaxDeliver:    r.cfg.MaxDeliver,
		FilterSubject: events.SubjectInteractions + ".>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Start creates or updates the durable consumer and starts the workers. The
// workers run until Stop; ctx only bounds the start-up.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return ErrRunning
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, events.StreamInteractions, r.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", r.cfg.Durable, events.StreamInteractions, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(r.cfg.Batch))
	if err != nil {
		return fmt.Errorf("consume %s: %w", r.cfg.Durable, err)
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() { r.work(wctx, iter) })
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	r.running, r.iter, r.cancel, r.done = true, iter, cancel, done
	r.stopped.Store(false)
	r.log.Info("monitors started", "workers", r.cfg.Workers, "detectors", len(r.dets))
	return nil
}

// Stop stops fetching, lets the workers finish the messages already received and
// returns. When ctx ends first, in-flight work is cancelled (those messages are
// redelivered later) and ctx's error is returned.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return nil
	}
	r.running = false
	r.stopped.Store(true)
	r.iter.Drain()
	var err error
	select {
	case <-r.done:
	case <-ctx.Done():
		err = fmt.Errorf("stop monitors: %w", ctx.Err())
		r.iter.Stop()
		r.cancel()
		<-r.done
	}
	r.cancel()
	r.log.Info("monitors stopped")
	return err
}

// Stats returns the counters.
func (r *Runner) Stats() Stats {
	return Stats{
		Processed:       r.processed.Load(),
		Findings:        r.findings.Load(),
		IncidentsOpened: r.opened.Load(),
		Failed:          r.failed.Load(),
		Poison:          r.poison.Load(),
		DetectorErrors:  r.detErrs.Load(),
		Aggregated:      r.aggregated.Load(),
	}
}

// work is one worker: it takes messages until the iterator closes.
func (r *Runner) work(ctx context.Context, iter jetstream.MessagesContext) {
	for {
		m, err := iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				if !r.stopped.Load() {
					r.log.Error("interaction consumer closed while running; restart the runner", "err", err)
				}
				return
			}
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("fetch interactions", "err", err)
			continue
		}
		r.handle(ctx, m)
	}
}

// handle processes one message in the order that loses and duplicates nothing:
// decode → detect → record → publish findings → open incident → announce → ack.
func (r *Runner) handle(ctx context.Context, m jetstream.Msg) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckWait)
	defer cancel()
	var delivered uint64 = 1
	var seq uint64
	if md, err := m.Metadata(); err == nil {
		delivered, seq = md.NumDelivered, md.Sequence.Stream
	}
	log := r.log.With("subject", m.Subject(), "seq", seq, "delivered", delivered)
	// Join the trace the gateway started: its publish span is this span's parent.
	ctx = propagation.TraceContext{}.Extract(ctx, events.HeaderCarrier(m.Headers()))
	ctx, span := r.trc.Start(ctx, "process "+events.SubjectInteractions, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.Int64("messaging.message.delivery_count", int64(delivered))))
	defer span.End()

	in, err := events.DecodeInteraction(m.Data())
	if err != nil {
		r.terminate(m, log, err)
		return
	}
	log = log.With("interaction", in.ID, "trial", in.Trial)

	span.SetAttributes(attribute.String("stagegate.trial", in.Trial), attribute.String("stagegate.interaction", in.ID))
	findings, detectorFailed := r.detect(ctx, log, in)

	pctx, pspan := r.trc.Start(ctx, "incident.record")
	created, err := r.persist(pctx, m, in, findings, detectorFailed, delivered > 1)
	pspan.SetAttributes(attribute.Int("stagegate.findings", len(findings)), attribute.Bool("stagegate.incident.created", created))
	if err != nil {
		pspan.SetStatus(codes.Error, err.Error())
	}
	pspan.End()
	if err != nil {
		if errors.Is(err, incidents.ErrInvalid) {
			r.terminate(m, log, err) // the store will never accept it
			return
		}
		r.retry(m, log, delivered, err)
		return
	}
	if err := m.DoubleAck(ctx); err != nil {
		// Everything is stored; a redelivery finds it all in place.
		log.Warn("ack interaction", "err", err)
	}
	r.findings.Add(uint64(len(findings)))
	if created {
		r.opened.Add(1)
	}
	// Last, so whoever sees an interaction counted as processed also sees its
	// findings and incident counted.
	r.processed.Add(1)
}

// detect runs every detector and completes their findings. A failing detector is
// logged and counted; the others still run.
func (r *Runner) detect(ctx context.Context, log *slog.Logger, in *events.Interaction) (out []events.Finding, failed bool) {
	model := in.Model
	if model == "" {
		model = in.LogicalModel
	}
	now := r.clk.Now().UTC()
	for _, d := range r.dets {
		name, version := d.Name(), d.Version()
		dctx, dspan := r.trc.Start(ctx, "detector "+name, trace.WithAttributes(attribute.String("gen_ai.evaluation.name", name)))
		fs, err := runDetector(dctx, d, in)
		dspan.SetAttributes(attribute.Int("stagegate.findings", len(fs)))
		if err != nil {
			dspan.SetStatus(codes.Error, err.Error())
		}
		dspan.End()
		if err != nil {
			failed = true
			r.detErrs.Add(1)
			log.Error("detector failed", "detector", name, "err", err)
			continue
		}
		for i := range fs {
			f := fs[i]
			if events.SeverityRank(f.Severity) == 0 || f.Category == "" {
				r.detErrs.Add(1)
				log.Error("detector returned an invalid finding", "detector", name, "index", i,
					"severity", f.Severity, "category", f.Category)
				continue
			}
			if len(out) >= incidents.MaxFindings {
				r.detErrs.Add(1)
				log.Error("too many findings; dropping the rest", "detector", name, "max", incidents.MaxFindings)
				break
			}
			f.Schema = events.SchemaFinding
			f.ID = FindingID(in.ID, name, version, i)
			f.InteractionID = in.ID
			f.Trial = in.Trial
			f.Model = model
			f.Detector = name
			f.DetectorVersion = version
			f.Score = min(max(f.Score, 0), 1)
			f.CreatedAt = now
			out = append(out, f)
		}
	}
	return out, failed
}

// runDetector calls d.Detect, turning a panic into an error.
func runDetector(ctx context.Context, d Detector, in *events.Interaction) (fs []events.Finding, err error) {
	defer func() {
		if p := recover(); p != nil {
			fs, err = nil, fmt.Errorf("%w: %v", ErrDetectorPanic, p)
		}
	}()
	return d.Detect(ctx, in)
}

// persist records the interaction, publishes the findings, opens the incident and
// announces it. created reports whether this call created the incident.
func (r *Runner) persist(ctx context.Context, m jetstream.Msg, in *events.Interaction, findings []events.Finding, detectorFailed, redelivered bool) (created bool, err error) {
	rec := in
	if in.Decision.Obligations.RedactPIIInStorage {
		rec = incidents.Redact(in, r.redactionSpans(in, findings, detectorFailed))
	}
	if err := r.store.RecordInteraction(ctx, rec); err != nil {
		return false, fmt.Errorf("record interaction: %w", err)
	}
	if len(findings) == 0 {
		return false, nil
	}
	trace := traceHeaders(m)
	for i := range findings {
		f := &findings[i]
		if err := r.publish(ctx, events.FindingSubject(in.Trial, f.Detector), f.ID, events.SchemaFinding, f, trace); err != nil {
			return false, fmt.Errorf("publish finding %s: %w", f.ID, err)
		}
	}
	individual := findings
	var aggregates []incidents.AggregateResult
	if r.corr != nil {
		routing, err := r.corr.Correlate(ctx, in, findings, r.cfg.Burst)
		if err != nil {
			return false, fmt.Errorf("correlate: %w", err)
		}
		individual, aggregates = routing.Individual, routing.Aggregates
	}
	if len(individual) > 0 {
		inc, made, err := r.store.OpenIncident(ctx, in, individual)
		if err != nil {
			return false, fmt.Errorf("open incident: %w", err)
		}
		// Announce on creation, and again on any redelivery: an earlier delivery
		// may have created the incident and then failed before its event was
		// acked. The event's Nats-Msg-Id makes the repeat a no-op on the stream.
		if made || redelivered {
			if err := r.announce(ctx, in.Trial, inc, trace); err != nil {
				return made, err
			}
		}
		created = made
	}
	for _, a := range aggregates {
		if a.Created || redelivered {
			if err := r.announce(ctx, in.Trial, a.Incident, trace); err != nil {
				return created || a.Created, err
			}
		}
		created = created || a.Created
	}
	if len(aggregates) > 0 {
		r.aggregated.Add(1)
	}
	return created, nil
}

// announce publishes the "opened" event of inc.
func (r *Runner) announce(ctx context.Context, trial string, inc *incidents.Incident, trace nats.Header) error {
	return announceOpened(ctx, r.js, trial, inc, trace)
}

// announceOpened publishes the "opened" event of inc on stagegate.incidents.<trial>.
func announceOpened(ctx context.Context, js jetstream.JetStream, trial string, inc *incidents.Incident, trace nats.Header) error {
	ev := events.IncidentEvent{
		Schema:     events.SchemaIncident,
		ID:         inc.ID + ":" + IncidentOpened,
		IncidentID: inc.ID,
		Trial:      inc.Trial,
		Model:      inc.Model,
		Type:       IncidentOpened,
		Status:     inc.Status,
		Severity:   inc.Severity,
		Category:   inc.Category,
		At:         inc.CreatedAt,
	}
	if err := publishJSON(ctx, js, events.IncidentSubject(trial), ev.ID, events.SchemaIncident, &ev, trace); err != nil {
		return fmt.Errorf("publish incident event %s: %w", ev.ID, err)
	}
	return nil
}

// redactionSpans are the spans to mask in storage: those of pii findings, or every
// text in full when a detector failed (the pii detector may be the one that did,
// and storing unredacted text against the policy is worse than losing evidence).
func (r *Runner) redactionSpans(in *events.Interaction, findings []events.Finding, detectorFailed bool) []events.Span {
	var spans []events.Span
	if detectorFailed {
		for i, msg := range in.Request.Messages {
			spans = append(spans, events.Span{Field: "prompt", Message: i, End: utf8.RuneCountInString(msg.Content)})
		}
		return append(spans, events.Span{Field: "response", End: utf8.RuneCountInString(in.Response.Content)})
	}
	for i := range findings {
		if findings[i].Category == categoryPII {
			spans = append(spans, findings[i].Spans...)
		}
	}
	return spans
}

// publish sends v as JSON with a Nats-Msg-Id and the trace headers, and waits
// for the stream's ack.
func (r *Runner) publish(ctx context.Context, subject, msgID, schema string, v any, trace nats.Header) error {
	return publishJSON(ctx, r.js, subject, msgID, schema, v, trace)
}

// publishJSON is Runner.publish on any JetStream context.
func publishJSON(ctx context.Context, js jetstream.JetStream, subject, msgID, schema string, v any, trace nats.Header) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	for k, vs := range trace {
		msg.Header[k] = vs
	}
	msg.Header.Set(events.HeaderSchema, schema)
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID)); err != nil {
		return err
	}
	return nil
}

// traceHeaders copies the W3C trace context of the incoming message.
func traceHeaders(m jetstream.Msg) nats.Header {
	in := m.Headers()
	if in == nil {
		return nil
	}
	var out nats.Header
	for _, k := range []string{events.HeaderTraceParent, headerTraceState} {
		if v := in.Get(k); v != "" {
			if out == nil {
				out = nats.Header{}
			}
			out[k] = []string{v}
		}
	}
	return out
}

// terminate stops redelivery of a message that can never be processed.
func (r *Runner) terminate(m jetstream.Msg, log *slog.Logger, cause error) {
	r.poison.Add(1)
	log.Error("poison interaction terminated", "err", cause)
	reason := "poison: " + cause.Error()
	if len(reason) > maxTermReason {
		reason = strings.ToValidUTF8(reason[:maxTermReason], "")
	}
	if err := m.TermWithReason(reason); err != nil {
		log.Warn("terminate poison interaction", "err", err)
	}
}

// retry asks for redelivery after a delay that grows with the delivery count.
func (r *Runner) retry(m jetstream.Msg, log *slog.Logger, delivered uint64, cause error) {
	r.failed.Add(1)
	if r.cfg.MaxDeliver > 0 && delivered >= uint64(r.cfg.MaxDeliver) {
		log.Error("interaction failed on its last delivery; the server drops it", "err", cause)
	} else {
		log.Warn("interaction failed; will be redelivered", "err", cause)
	}
	delay := min(r.cfg.RetryDelay*time.Duration(delivered), r.cfg.AckWait)
	if err := m.NakWithDelay(delay); err != nil {
		log.Warn("nak interaction", "err", err)
	}
}

func tracerOrNoop(t trace.Tracer) trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return t
}
