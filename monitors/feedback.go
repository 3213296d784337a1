package monitors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
)

// Pilot-user reports become incidents: a durable consumer on the FEEDBACK stream
// turns each report into a user_report finding on its interaction and opens (or
// joins) that interaction's incident — idempotent under redelivery, since the
// finding id is the report's id.

// Defaults for the feedback consumer.
const (
	DefaultFeedbackDurable = "feedback"
	// feedbackWaitDeliveries: a report can overtake its interaction on the way to
	// the store; it is retried this many times before it is given up as pointing
	// at an interaction that does not exist.
	feedbackWaitDeliveries = 20
	feedbackRetryDelay     = 500 * time.Millisecond
	maxExplanationRunes    = 300
)

// FeedbackRunner consumes pilot-user reports.
type FeedbackRunner struct {
	js    jetstream.JetStream
	store incidents.Store
	clk   clock.Clock
	log   *slog.Logger

	mu   sync.Mutex
	cc   jetstream.ConsumeContext
	done chan struct{}

	processed, opened, unknown atomic.Uint64
}

// FeedbackStats are the consumer's counters.
type FeedbackStats struct {
	Processed uint64 // reports turned into findings
	Opened    uint64 // reports that opened a new incident
	Unknown   uint64 // reports about interactions that never reached the store
}

// NewFeedbackRunner validates deps (JS and Store are required).
func NewFeedbackRunner(deps Deps) (*FeedbackRunner, error) {
	if deps.JS == nil || deps.Store == nil {
		return nil, fmt.Errorf("%w: feedback runner needs JetStream and a store", ErrConfig)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FeedbackRunner{js: deps.JS, store: deps.Store, clk: clock.OrReal(deps.Clock), log: log.With("component", "feedback")}, nil
}

// Start creates the durable consumer and processes reports until Stop.
func (f *FeedbackRunner) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cc != nil {
		return ErrRunning
	}
	cons, err := f.js.CreateOrUpdateConsumer(ctx, events.StreamFeedback, jetstream.ConsumerConfig{
		Durable: DefaultFeedbackDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		FilterSubject: events.SubjectFeedback + ".>",
	})
	if err != nil {
		return fmt.Errorf("feedback consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { f.handle(m) })
	if err != nil {
		return fmt.Errorf("feedback consume: %w", err)
	}
	f.cc = cc
	return nil
}

// Stop stops consuming; a report in flight is finished.
func (f *FeedbackRunner) Stop(ctx context.Context) error {
	f.mu.Lock()
	cc := f.cc
	f.cc = nil
	f.mu.Unlock()
	if cc == nil {
		return nil
	}
	cc.Drain()
	select {
	case <-cc.Closed():
		return nil
	case <-ctx.Done():
		cc.Stop()
		return ctx.Err()
	}
}

// Stats returns the counters.
func (f *FeedbackRunner) Stats() FeedbackStats {
	return FeedbackStats{Processed: f.processed.Load(), Opened: f.opened.Load(), Unknown: f.unknown.Load()}
}

func (f *FeedbackRunner) handle(m jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fb, err := events.DecodeFeedback(m.Data())
	if err != nil {
		f.log.Error("malformed feedback terminated", "err", err)
		_ = m.TermWithReason("malformed feedback")
		return
	}
	var delivered uint64 = 1
	if md, err := m.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	in, err := f.store.Interaction(ctx, fb.InteractionID)
	if errors.Is(err, incidents.ErrNotFound) && delivered < feedbackWaitDeliveries {
		_ = m.NakWithDelay(feedbackRetryDelay) // the interaction may still be on its way
		return
	}
	if errors.Is(err, incidents.ErrNotFound) || (err == nil && in.Trial != fb.Trial) {
		f.unknown.Add(1)
		f.log.Warn("feedback about an unknown interaction", "feedback", fb.ID, "interaction", fb.InteractionID, "trial", fb.Trial)
		_ = m.TermWithReason("unknown interaction")
		return
	}
	if err != nil {
		_ = m.NakWithDelay(feedbackRetryDelay)
		return
	}
	finding := userReportFinding(fb, in, f.clk.Now().UTC())
	_, created, err := f.store.OpenIncident(ctx, in, []events.Finding{finding})
	if err != nil {
		f.log.Error("open user-report incident", "feedback", fb.ID, "err", err)
		_ = m.NakWithDelay(feedbackRetryDelay)
		return
	}
	f.processed.Add(1)
	if created {
		f.opened.Add(1)
	}
	f.log.Info("user report recorded", "kind", "incident", "trial", fb.Trial, "feedback", fb.ID, "interaction", fb.InteractionID, "created", created)
	_ = m.DoubleAck(ctx)
}

// userReportFinding turns a report into a finding; a privacy or harm report rates
// higher than a wrong answer.
func userReportFinding(fb *events.Feedback, in *events.Interaction, now time.Time) events.Finding {
	sev := events.SeverityMedium
	if fb.Category == "harmful" || fb.Category == "privacy" {
		sev = events.SeverityHigh
	}
	expl := "pilot user reported the answer as " + fb.Category
	if fb.Comment != "" {
		c := []rune(fb.Comment)
		if len(c) > maxExplanationRunes {
			c = append(c[:maxExplanationRunes], '…')
		}
		expl += ": " + string(c)
	}
	model := in.Model
	if model == "" {
		model = in.LogicalModel
	}
	return events.Finding{
		Schema: events.SchemaFinding, ID: "fnd_" + fb.ID, InteractionID: in.ID, Trial: in.Trial, Model: model,
		Detector: "user_report", DetectorVersion: "1.0.0", Category: events.CategoryUserReport, Severity: sev,
		Score: 1, Threshold: 1, Spans: []events.Span{}, Explanation: expl, CreatedAt: now,
	}
}
