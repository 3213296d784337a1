package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for PublisherConfig.
const (
	DefaultQueueSize  = 16384
	DefaultMaxPending = 4096
)

// PublisherConfig sizes the asynchronous publisher.
type PublisherConfig struct {
	// QueueSize bounds the interactions waiting to be encoded and sent. Publish never
	// blocks: when the queue is full the interaction is refused with ErrQueueFull and
	// counted as dropped (a durable spool takes over in a later release).
	QueueSize int
	// MaxPending bounds JetStream publishes awaiting their acknowledgement.
	MaxPending int
}

// Validate reports every problem at once.
func (c PublisherConfig) Validate() error {
	var errs []error
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("publisher queue size %d: must not be negative", c.QueueSize))
	}
	if c.MaxPending < 0 {
		errs = append(errs, fmt.Errorf("publisher max pending %d: must not be negative", c.MaxPending))
	}
	return errors.Join(errs...)
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	return c
}

// PublisherDeps are what the publisher talks to.
type PublisherDeps struct {
	// JS is the JetStream context. Its connection is owned by the caller.
	JS jetstream.JetStream
	// Logger receives publish failures; nil discards.
	Logger *slog.Logger
}

// PublisherStats are cumulative counters, read without locks.
type PublisherStats struct {
	Enqueued   uint64 // accepted by Publish
	Published  uint64 // acknowledged by JetStream (duplicates included)
	Duplicates uint64 // acknowledged as a duplicate of an earlier Nats-Msg-Id
	Failed     uint64 // publish attempts that failed for good
	Dropped    uint64 // refused because the queue was full or the publisher stopped
	QueueDepth int    // waiting to be sent now
}

// Publisher sends interactions to JetStream off the request path: Publish hands the
// value to a bounded queue and returns at once; one goroutine encodes and publishes
// asynchronously, another collects the acknowledgements.
type Publisher struct {
	cfg  PublisherConfig
	js   jetstream.JetStream
	log  *slog.Logger
	q    chan *Interaction
	acks chan pending

	mu      sync.RWMutex // guards closed against a concurrent Stop
	closed  bool
	started atomic.Bool
	done    chan struct{}

	enqueued, published, duplicates, failed, dropped atomic.Uint64
}

type pending struct {
	id  string
	fut jetstream.PubAckFuture
}

// NewPublisher validates the configuration.
func NewPublisher(cfg PublisherConfig, deps PublisherDeps) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JS == nil {
		return nil, errors.New("publisher: jetstream is required")
	}
	cfg = cfg.withDefaults()
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{
		cfg:  cfg,
		js:   deps.JS,
		log:  log,
		q:    make(chan *Interaction, cfg.QueueSize),
		acks: make(chan pending, cfg.MaxPending),
		done: make(chan struct{}),
	}, nil
}

// Start runs the publishing goroutines until Stop.
func (p *Publisher) Start(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("publisher already started")
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.sendLoop() }()
	go func() { defer wg.Done(); p.ackLoop() }()
	go func() { wg.Wait(); close(p.done) }()
	return nil
}

// Publish queues one interaction. It never blocks and never waits on NATS; the
// caller must not modify in afterwards.
func (p *Publisher) Publish(in *Interaction) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.dropped.Add(1)
		return ErrClosed
	}
	select {
	case p.q <- in:
		p.enqueued.Add(1)
		return nil
	default:
		p.dropped.Add(1)
		return ErrQueueFull
	}
}

// Stop refuses new interactions, sends everything queued, and waits for the
// acknowledgements until ctx ends.
func (p *Publisher) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.q)
	}
	p.mu.Unlock()
	if !p.started.Load() {
		return nil
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publisher stop: %d interactions not confirmed: %w", len(p.q)+len(p.acks), ctx.Err())
	}
}

// Stats returns the counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Enqueued:   p.enqueued.Load(),
		Published:  p.published.Load(),
		Duplicates: p.duplicates.Load(),
		Failed:     p.failed.Load(),
		Dropped:    p.dropped.Load(),
		QueueDepth: len(p.q),
	}
}

func (p *Publisher) sendLoop() {
	defer close(p.acks)
	for in := range p.q {
		msg, err := InteractionMsg(in)
		if err != nil {
			p.failed.Add(1)
			p.log.Error("encode interaction", "interaction", in.ID, "err", err)
			continue
		}
		fut, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(in.ID))
		if err != nil {
			p.failed.Add(1)
			p.log.Error("publish interaction", "interaction", in.ID, "err", err)
			continue
		}
		p.acks <- pending{id: in.ID, fut: fut}
	}
}

func (p *Publisher) ackLoop() {
	for pa := range p.acks {
		select {
		case ack := <-pa.fut.Ok():
			p.published.Add(1)
			if ack.Duplicate {
				p.duplicates.Add(1)
			}
		case err := <-pa.fut.Err():
			p.failed.Add(1)
			p.log.Error("publish interaction not acknowledged", "interaction", pa.id, "err", err)
		}
	}
}

// InteractionMsg encodes an interaction as the NATS message of the contract:
// subject stagegate.interactions.<trial>.<model>, Nats-Msg-Id and traceparent headers.
func InteractionMsg(in *Interaction) (*nats.Msg, error) {
	in.Schema = SchemaInteraction
	data, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode interaction: %w", err)
	}
	model := in.Model
	if model == "" {
		model = "none" // denied before a model was chosen
	}
	msg := nats.NewMsg(InteractionSubject(in.Trial, model))
	msg.Data = data
	msg.Header.Set(HeaderMsgID, in.ID)
	msg.Header.Set(HeaderSchema, SchemaInteraction)
	if tp := TraceParent(in.TraceID); tp != "" {
		msg.Header.Set(HeaderTraceParent, tp)
	}
	return msg, nil
}

// TraceParent builds a W3C traceparent for a 32-hex-digit trace id, with a span id
// derived from it; "" when the id is not well formed.
func TraceParent(traceID string) string {
	if len(traceID) != 32 {
		return ""
	}
	for i := 0; i < len(traceID); i++ {
		c := traceID[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return "00-" + traceID + "-" + traceID[:16] + "-01"
}
