package monitors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
)

// Defaults and bounds of IngestConfig.
const (
	DefaultIngestDurable    = "findings-ingest"
	DefaultIngestWorkers    = 2
	DefaultIngestMaxDeliver = 20
	DefaultIngestRetryDelay = 500 * time.Millisecond
	// MaxExternalExplanation bounds an external finding's explanation (code points).
	MaxExternalExplanation = 2000
	// MaxExternalSpans bounds an external finding's spans.
	MaxExternalSpans = 1000
)

// IngestConfig tunes an Ingester. Zero values take the defaults.
type IngestConfig struct {
	// Durable is the durable consumer on the FINDINGS stream. Default
	// DefaultIngestDurable. Ingesters with the same name share the work.
	Durable string
	// Workers is how many findings are handled at once. Default DefaultIngestWorkers.
	Workers int
	// AckWait bounds the handling of one finding. Default DefaultAckWait.
	AckWait time.Duration
	// MaxDeliver bounds the deliveries of one finding; a finding whose
	// interaction never reaches the store is dropped after that many tries.
	// Default DefaultIngestMaxDeliver.
	MaxDeliver int
	// RetryDelay is the redelivery delay when the interaction is not stored
	// yet or the store fails, times the delivery count. Default DefaultIngestRetryDelay.
	RetryDelay time.Duration
	// Skip lists detectors whose findings are already stored by the runner
	// (the in-process detectors); their messages are acked untouched. An
	// external monitor must not reuse these names.
	Skip []string
}

func (c IngestConfig) withDefaults() IngestConfig {
	if c.Durable == "" {
		c.Durable = DefaultIngestDurable
	}
	if c.Workers == 0 {
		c.Workers = DefaultIngestWorkers
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultIngestMaxDeliver
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultIngestRetryDelay
	}
	return c
}

// Validate reports every problem of c (after defaults) at once.
func (c IngestConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !events.ValidToken(c.Durable) {
		errs = append(errs, fmt.Errorf("%w: ingest durable %q: %w", ErrConfig, c.Durable, events.ErrInvalidToken))
	}
	if c.Workers < 1 || c.Workers > MaxWorkers {
		errs = append(errs, fmt.Errorf("%w: ingest workers %d not in [1,%d]", ErrConfig, c.Workers, MaxWorkers))
	}
	if c.AckWait < MinAckWait {
		errs = append(errs, fmt.Errorf("%w: ingest ack wait %s below %s", ErrConfig, c.AckWait, MinAckWait))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("%w: ingest max deliver %d below 1", ErrConfig, c.MaxDeliver))
	}
	if c.RetryDelay < 0 {
		errs = append(errs, fmt.Errorf("%w: ingest retry delay %s is negative", ErrConfig, c.RetryDelay))
	}
	for _, s := range c.Skip {
		if !events.ValidToken(s) {
			errs = append(errs, fmt.Errorf("%w: ingest skip %q: %w", ErrConfig, s, events.ErrInvalidToken))
		}
	}
	return errors.Join(errs...)
}

// IngestStats are an Ingester's counters.
type IngestStats struct {
	// Ingested: external findings merged into incidents.
	Ingested uint64
	// Skipped: findings of in-process detectors, acked untouched.
	Skipped uint64
	// Retried: deliveries nak'ed because the interaction was not stored yet
	// or the store failed.
	Retried uint64
	// Rejected: malformed findings, terminated.
	Rejected uint64
}

// Ingester merges findings that external monitors publish on
// stagegate.findings.<trial>.<detector> into the incident of their
// interaction, so a detector written in any language reaches the reviewers.
type Ingester struct {
	cfg   IngestConfig
	js    jetstream.JetStream
	store incidents.Store
	log   *slog.Logger

	mu      sync.Mutex
	running bool
	iter    jetstream.MessagesContext
	cancel  context.CancelFunc
	done    chan struct{}
	stopped atomic.Bool

	ingested, skipped, retried, rejected atomic.Uint64
}

// NewIngester validates cfg and returns a stopped ingester. deps.Detectors and
// deps.Clock are not used.
func NewIngester(cfg IngestConfig, deps Deps) (*Ingester, error) {
	var errs []error
	errs = append(errs, cfg.Validate())
	if deps.JS == nil {
		errs = append(errs, fmt.Errorf("%w: JS is nil", ErrConfig))
	}
	if deps.Store == nil {
		errs = append(errs, fmt.Errorf("%w: Store is nil", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Ingester{cfg: cfg, js: deps.JS, store: deps.Store,
		log: log.With("component", "findings-ingest", "durable", cfg.Durable)}, nil
}

// ConsumerConfig is the durable consumer the ingester creates or updates.
func (g *Ingester) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       g.cfg.Durable,
		Description:   "stagegate: external findings into incidents",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       g.cfg.AckWait,
		MaxDeliver:    g.cfg.MaxDeliver,
		FilterSubject: events.SubjectFindings + ".>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Start creates the consumer and starts the workers; ctx bounds the start-up.
func (g *Ingester) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running {
		return ErrRunning
	}
	cons, err := g.js.CreateOrUpdateConsumer(ctx, events.StreamFindings, g.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", g.cfg.Durable, events.StreamFindings, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(DefaultBatch))
	if err != nil {
		return fmt.Errorf("consume %s: %w", g.cfg.Durable, err)
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range g.cfg.Workers {
		wg.Go(func() { g.work(wctx, iter) })
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	g.running, g.iter, g.cancel, g.done = true, iter, cancel, done
	g.stopped.Store(false)
	return nil
}

// Stop stops fetching and waits for the findings in hand (or ctx).
func (g *Ingester) Stop(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.running {
		return nil
	}
	g.running = false
	g.stopped.Store(true)
	g.iter.Drain()
	var err error
	select {
	case <-g.done:
	case <-ctx.Done():
		err = fmt.Errorf("stop findings ingest: %w", ctx.Err())
		g.iter.Stop()
		g.cancel()
		<-g.done
	}
	g.cancel()
	return err
}

// Stats returns the counters.
func (g *Ingester) Stats() IngestStats {
	return IngestStats{Ingested: g.ingested.Load(), Skipped: g.skipped.Load(), Retried: g.retried.Load(), Rejected: g.rejected.Load()}
}

func (g *Ingester) work(ctx context.Context, iter jetstream.MessagesContext) {
	for {
		m, err := iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				if !g.stopped.Load() && ctx.Err() == nil {
					g.log.Error("findings consumer closed while running", "err", err)
				}
				return
			}
			g.log.Warn("fetch findings", "err", err)
			continue
		}
		g.handle(ctx, m)
	}
}

// handle merges one external finding: decode → check → wait for the
// interaction → open or merge the incident → announce → ack.
func (g *Ingester) handle(ctx context.Context, m jetstream.Msg) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.AckWait)
	defer cancel()
	var delivered uint64 = 1
	if md, err := m.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	// stagegate.findings.<trial>.<detector>
	parts := strings.Split(m.Subject(), ".")
	if len(parts) != 4 {
		g.reject(m, fmt.Errorf("subject %q is not %s.<trial>.<detector>", m.Subject(), events.SubjectFindings))
		return
	}
	if slices.Contains(g.cfg.Skip, parts[3]) {
		g.skipped.Add(1)
		_ = m.Ack()
		return
	}
	f, err := events.DecodeFinding(m.Data())
	if err == nil {
		err = checkExternal(f, parts[2], parts[3])
	}
	if err != nil {
		g.reject(m, err)
		return
	}
	in, err := g.store.Interaction(ctx, f.InteractionID)
	if err != nil {
		// Not recorded yet (the runner works in parallel) or a store error.
		g.retry(m, delivered, fmt.Errorf("interaction %s: %w", f.InteractionID, err))
		return
	}
	if in.Trial != f.Trial {
		g.reject(m, fmt.Errorf("finding %s names trial %q, its interaction is in %q", f.ID, f.Trial, in.Trial))
		return
	}
	inc, created, err := g.store.OpenIncident(ctx, in, []events.Finding{*f})
	if err != nil {
		if errors.Is(err, incidents.ErrInvalid) {
			g.reject(m, err)
			return
		}
		g.retry(m, delivered, err)
		return
	}
	if created || delivered > 1 {
		if err := announceOpened(ctx, g.js, in.Trial, inc, traceHeaders(m)); err != nil {
			g.retry(m, delivered, err)
			return
		}
	}
	if err := m.DoubleAck(ctx); err != nil {
		g.log.Warn("ack finding", "err", err)
	}
	g.ingested.Add(1)
}

// checkExternal applies the contract's bounds beyond DecodeFinding.
func checkExternal(f *events.Finding, trial, detector string) error {
	var errs []error
	if f.Trial != trial || f.Detector != detector {
		errs = append(errs, fmt.Errorf("%w: trial/detector %s/%s do not match the subject %s/%s", events.ErrPayload, f.Trial, f.Detector, trial, detector))
	}
	if len(f.ID) > incidents.MaxIDLen || len(f.InteractionID) > incidents.MaxIDLen {
		errs = append(errs, fmt.Errorf("%w: ids longer than %d bytes", events.ErrPayload, incidents.MaxIDLen))
	}
	if utf8.RuneCountInString(f.Explanation) > MaxExternalExplanation {
		errs = append(errs, fmt.Errorf("%w: explanation longer than %d code points", events.ErrPayload, MaxExternalExplanation))
	}
	if len(f.Spans) > MaxExternalSpans {
		errs = append(errs, fmt.Errorf("%w: %d spans (max %d)", events.ErrPayload, len(f.Spans), MaxExternalSpans))
	}
	if f.Threshold < 0 || f.Threshold > 1 {
		errs = append(errs, fmt.Errorf("%w: threshold %v outside [0,1]", events.ErrPayload, f.Threshold))
	}
	return errors.Join(errs...)
}

func (g *Ingester) reject(m jetstream.Msg, cause error) {
	g.rejected.Add(1)
	g.log.Error("external finding rejected", "subject", m.Subject(), "err", cause)
	reason := "rejected: " + cause.Error()
	if len(reason) > maxTermReason {
		reason = strings.ToValidUTF8(reason[:maxTermReason], "")
	}
	if err := m.TermWithReason(reason); err != nil {
		g.log.Warn("terminate finding", "err", err)
	}
}

func (g *Ingester) retry(m jetstream.Msg, delivered uint64, cause error) {
	g.retried.Add(1)
	if delivered >= uint64(g.cfg.MaxDeliver) {
		g.log.Error("external finding dropped after its last delivery", "subject", m.Subject(), "err", cause)
	} else {
		g.log.Debug("external finding will be redelivered", "subject", m.Subject(), "err", cause)
	}
	if err := m.NakWithDelay(min(g.cfg.RetryDelay*time.Duration(delivered), g.cfg.AckWait)); err != nil {
		g.log.Warn("nak finding", "err", err)
	}
}
