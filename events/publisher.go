package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/internal/clock"
)

// Defaults for PublisherConfig.
const (
	DefaultQueueSize     = 16384
	DefaultMaxPending    = 4096
	DefaultAckTimeout    = 5 * time.Second
	DefaultRetryInterval = 200 * time.Millisecond
	// maxRetryBackoff caps the replayer's wait while a connected server keeps
	// refusing publishes (stream full, no stream).
	maxRetryBackoff = 5 * time.Second
)

// PublisherConfig sizes the asynchronous publisher and its spool.
type PublisherConfig struct {
	// QueueSize bounds the interactions waiting to be encoded and sent. Publish never
	// blocks: when the queue is full the interaction goes straight to the spool, or,
	// without a spool, is refused with ErrQueueFull and counted as dropped.
	QueueSize int
	// MaxPending bounds JetStream publishes awaiting their acknowledgement.
	MaxPending int
	// AckTimeout is how long a publish waits for its JetStream acknowledgement
	// before the interaction is spooled (default 5s). A late acknowledgement is
	// harmless: the replay carries the same Nats-Msg-Id and is de-duplicated.
	AckTimeout time.Duration
	// RetryInterval is how often the replayer checks for NATS while it is down
	// (default 200ms); while a connected server refuses publishes the wait doubles
	// up to 5s.
	RetryInterval time.Duration
	// Spool keeps what could not be published on disk until it can be; an empty
	// Spool.Dir disables it.
	Spool SpoolConfig
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
	if c.AckTimeout < 0 {
		errs = append(errs, fmt.Errorf("publisher ack timeout %s: must not be negative", c.AckTimeout))
	}
	if c.RetryInterval < 0 {
		errs = append(errs, fmt.Errorf("publisher retry interval %s: must not be negative", c.RetryInterval))
	}
	if err := c.Spool.Validate(); err != nil {
		errs = append(errs, err)
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
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	return c
}

// PublisherDeps are what the publisher talks to.
type PublisherDeps struct {
	// JS is the JetStream context. Its connection is owned by the caller; the
	// publisher publishes through its own context on that connection, with its own
	// acknowledgement timeout and pending limit.
	JS jetstream.JetStream
	// Clock dates spooled records (for the age of the oldest); nil is the wall clock.
	Clock clock.Clock
	// Logger receives publish failures; nil discards.
	Logger *slog.Logger
}

// PublisherStats are cumulative counters and current gauges. Every interaction
// Publish accepted ends as exactly one of Published (directly), Spooled, Failed
// or Lost; every spooled one as Replayed, Failed, skipped corrupt, or still waiting
// (SpoolRecords, kept across restarts).
type PublisherStats struct {
	Enqueued   uint64 // accepted by Publish into the in-memory queue
	Published  uint64 // acknowledged by JetStream on the direct path (duplicates included)
	Duplicates uint64 // acknowledged as a duplicate of an earlier Nats-Msg-Id (direct or replay)
	Failed     uint64 // could never be published: not encodable, or rejected for good (too large)
	Dropped    uint64 // refused by Publish: publisher stopped, or queue full without a spool
	Spooled    uint64 // written to the spool: NATS down or slow, ack error or timeout, queue full, stop deadline
	Replayed   uint64 // read back from the spool and acknowledged by JetStream (duplicates included)
	Lost       uint64 // neither published nor spooled (spool full or failing): missing from the record

	QueueDepth        int           // waiting in memory now
	Degraded          bool          // NATS unavailable or the spool not yet replayed: new interactions go to the spool
	SpoolBytes        int64         // disk used by spool segments
	SpoolPendingBytes int64         // bytes of records waiting for replay
	SpoolRecords      int64         // records waiting for replay
	SpoolOldest       time.Duration // age of the oldest waiting record; 0 when none
	SpoolCorruptBytes int64         // bytes skipped as torn or corrupt since start
	SpoolFull         bool          // see Publisher.Full
}

// Publisher sends interactions to JetStream off the request path: Publish hands the
// value to a bounded queue and returns at once; one goroutine encodes and publishes
// asynchronously, another collects the acknowledgements. What cannot be published
// (NATS down or slow, a failed or missing acknowledgement, a full queue, a stop
// deadline) is appended to an on-disk spool, and a third goroutine replays the
// spool in order with the same Nats-Msg-Id once NATS accepts publishes again, so
// JetStream's de-duplication stores each interaction once.
//
// While the spool holds records (Degraded), new interactions are spooled too, so
// the stream receives them in the order they were published.
type Publisher struct {
	cfg   PublisherConfig
	js    jetstream.JetStream // the caller's
	pjs   jetstream.JetStream // publishing context
	ownJS bool
	conn  *nats.Conn
	clk   clock.Clock
	log   *slog.Logger
	q     chan *Interaction
	acks  chan pending
	spool *spool                // nil without a spool; set in Start under mu
	sp    atomic.Pointer[spool] // the same, for the lock-free readers Full and Stats

	mu      sync.RWMutex // guards closed against a concurrent Stop
	closed  bool
	started atomic.Bool
	done    chan struct{}
	abort   chan struct{} // closed when Stop's deadline passed: spool, do not wait
	aborted atomic.Bool

	replayCancel context.CancelFunc
	replayDone   chan struct{}
	stopOnce     sync.Once
	stopErr      error

	degraded atomic.Bool

	enqueued, published, duplicates, failed, dropped, spooled, replayed, lost atomic.Uint64
	unconfirmed                                                               atomic.Uint64
}

type pending struct {
	id  string
	msg *nats.Msg
	fut jetstream.PubAckFuture
}

// errNotConnected: the NATS connection is down or reconnecting.
var errNotConnected = errors.New("nats connection down")

// errStopDeadline marks publishes still unconfirmed when Stop's deadline passed.
var errStopDeadline = errors.New("not acknowledged before the stop deadline")

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
		cfg:   cfg,
		js:    deps.JS,
		pjs:   deps.JS,
		clk:   clock.OrReal(deps.Clock),
		log:   log,
		q:     make(chan *Interaction, cfg.QueueSize),
		acks:  make(chan pending, cfg.MaxPending),
		done:  make(chan struct{}),
		abort: make(chan struct{}),
	}, nil
}

// Start opens the spool (checking it, truncating a torn tail) and runs the
// publishing goroutines until Stop. Records left by an earlier run are replayed
// before new interactions.
func (p *Publisher) Start(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("publisher already started")
	}
	if nc := p.js.Conn(); nc != nil {
		// An own context: its acknowledgement timeout fails futures that would
		// otherwise wait forever on a dead connection, and keeps their count apart.
		pjs, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(p.cfg.AckTimeout),
			jetstream.WithPublishAsyncMaxPending(p.cfg.MaxPending))
		if err != nil {
			p.started.Store(false)
			return fmt.Errorf("publisher: %w", err)
		}
		p.pjs, p.ownJS, p.conn = pjs, true, nc
	}
	if p.cfg.Spool.Dir != "" {
		sp, err := openSpool(p.cfg.Spool, p.clk, p.log)
		if err != nil {
			p.started.Store(false)
			return fmt.Errorf("publisher: %w", err)
		}
		p.mu.Lock()
		p.spool = sp
		p.mu.Unlock()
		p.sp.Store(sp)
		if st := sp.stats(); st.records > 0 {
			p.degraded.Store(true)
			p.log.Warn("spooled interactions from an earlier run will be replayed",
				"records", st.records, "bytes", st.pendingBytes, "oldest", st.oldest)
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.sendLoop() }()
	go func() { defer wg.Done(); p.ackLoop() }()
	go func() { wg.Wait(); close(p.done) }()
	if p.spool != nil {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		p.replayCancel, p.replayDone = cancel, make(chan struct{})
		go p.replayLoop(rctx)
	}
	return nil
}

// Publish queues one interaction. It never blocks and never waits on NATS; the
// caller must not modify in afterwards. With a spool and a full queue it appends
// the interaction to the spool (a write, no flush). It returns ErrSpoolFull when
// the interaction is lost because NATS is down and the spool is full (counted in
// Lost), ErrClosed after Stop, and ErrQueueFull when the queue is full and there
// is no spool.
func (p *Publisher) Publish(in *Interaction) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.dropped.Add(1)
		return ErrClosed
	}
	if p.spool != nil && p.spool.full.Load() && !p.connected() {
		p.lose(in.ID, ErrSpoolFull)
		return ErrSpoolFull
	}
	select {
	case p.q <- in:
		p.enqueued.Add(1)
		return nil
	default:
	}
	if p.spool == nil {
		p.dropped.Add(1)
		return ErrQueueFull
	}
	msg, err := InteractionMsg(in)
	if err != nil {
		p.failed.Add(1)
		return err
	}
	if err := p.toSpool(msg, in.ID); err != nil {
		p.lose(in.ID, err)
		return err
	}
	return nil
}

// Full reports whether an interaction served now could end up lost: the spool is
// (nearly) full, or, without a spool, the queue is. A fail-closed trial answers
// 503 instead of serving; it is one atomic load, cheap enough for every request.
func (p *Publisher) Full() bool {
	if sp := p.sp.Load(); sp != nil {
		return sp.full.Load()
	}
	return len(p.q) == cap(p.q)
}

// Stop refuses new interactions and sends everything queued, waiting for the
// acknowledgements until ctx ends. Whatever is still unacknowledged then goes to
// the spool, which is flushed and closed: a stop while NATS is down loses
// nothing, and the next Start replays it. Without a spool the unconfirmed
// interactions are reported in the error.
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
	p.stopOnce.Do(func() { p.stopErr = p.shutdown(ctx) })
	return p.stopErr
}

func (p *Publisher) shutdown(ctx context.Context) error {
	var errs []error
	select {
	case <-p.done:
	case <-ctx.Done():
		// Spooling is local disk work: everything left is written, then we return.
		p.aborted.Store(true)
		close(p.abort)
		<-p.done
	}
	if p.replayCancel != nil {
		p.replayCancel()
		<-p.replayDone
	}
	if n := p.unconfirmed.Load(); n > 0 && p.spool == nil {
		errs = append(errs, fmt.Errorf("publisher stop: %d interactions not confirmed: %w", n, ctx.Err()))
	}
	if p.spool != nil {
		if err := p.spool.close(); err != nil {
			errs = append(errs, fmt.Errorf("publisher stop: %w", err))
		}
	}
	if p.ownJS {
		p.pjs.CleanupPublisher()
	}
	return errors.Join(errs...)
}

// Stats returns the counters and the spool's state.
func (p *Publisher) Stats() PublisherStats {
	st := PublisherStats{
		Enqueued:   p.enqueued.Load(),
		Published:  p.published.Load(),
		Duplicates: p.duplicates.Load(),
		Failed:     p.failed.Load(),
		Dropped:    p.dropped.Load(),
		Spooled:    p.spooled.Load(),
		Replayed:   p.replayed.Load(),
		Lost:       p.lost.Load(),
		QueueDepth: len(p.q),
		Degraded:   p.degraded.Load(),
	}
	if sp := p.sp.Load(); sp != nil {
		ss := sp.stats()
		st.SpoolBytes, st.SpoolPendingBytes, st.SpoolRecords = ss.bytes, ss.pendingBytes, ss.records
		st.SpoolOldest, st.SpoolCorruptBytes, st.SpoolFull = ss.oldest, ss.corrupt, sp.full.Load()
	}
	return st
}

func (p *Publisher) connected() bool {
	return p.conn == nil || p.conn.Status() == nats.CONNECTED
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
		p.send(msg, in.ID)
	}
}

// send publishes one message asynchronously, or spools it when NATS is known to
// be unavailable, the spool is being replayed, or Stop's deadline passed.
func (p *Publisher) send(msg *nats.Msg, id string) {
	if p.spool == nil && p.aborted.Load() {
		// Stop's deadline passed and there is nowhere to keep it: do not wait on NATS.
		p.unconfirmed.Add(1)
		p.failed.Add(1)
		return
	}
	if p.spool != nil && !p.degraded.Load() && !p.connected() {
		p.enterDegraded(errNotConnected)
	}
	if p.spool != nil && (p.degraded.Load() || p.aborted.Load()) {
		err := p.toSpool(msg, id)
		if err == nil {
			return
		}
		if p.aborted.Load() || !p.connected() {
			p.lose(id, err)
			return
		}
		// The spool is full or failing but NATS is up: publish out of order
		// rather than lose the interaction.
	}
	fut, err := p.pjs.PublishMsgAsync(msg, jetstream.WithMsgID(id))
	if err != nil {
		p.unpublished(msg, id, err)
		return
	}
	p.acks <- pending{id: id, msg: msg, fut: fut}
}

func (p *Publisher) ackLoop() {
	for pa := range p.acks {
		select {
		case ack := <-pa.fut.Ok():
			p.acked(ack, &p.published)
		case err := <-pa.fut.Err():
			p.unpublished(pa.msg, pa.id, err)
		case <-p.abort:
			select {
			case ack := <-pa.fut.Ok():
				p.acked(ack, &p.published)
			default:
				p.unconfirmed.Add(1)
				p.unpublished(pa.msg, pa.id, errStopDeadline)
			}
		}
	}
}

func (p *Publisher) acked(ack *jetstream.PubAck, n *atomic.Uint64) {
	n.Add(1)
	if ack.Duplicate {
		p.duplicates.Add(1)
	}
}

// unpublished handles a publish that failed or was not acknowledged: rejected
// for good, it is counted as failed; otherwise it goes to the spool.
func (p *Publisher) unpublished(msg *nats.Msg, id string, cause error) {
	if permanent(cause) || p.spool == nil {
		p.failed.Add(1)
		p.log.Error("publish interaction failed", "interaction", id, "err", cause)
		return
	}
	p.enterDegraded(cause)
	if err := p.toSpool(msg, id); err != nil {
		p.lose(id, fmt.Errorf("%w (after: %v)", err, cause))
	}
}

func (p *Publisher) toSpool(msg *nats.Msg, id string) error {
	if err := p.spool.append(msg, id); err != nil {
		return err
	}
	p.spooled.Add(1)
	return nil
}

// lose counts and logs an interaction that is missing from the record for good.
func (p *Publisher) lose(id string, err error) {
	n := p.lost.Add(1)
	p.log.Error("INTERACTION LOST: neither published nor spooled", "interaction", id, "lost_total", n, "err", err)
}

func (p *Publisher) enterDegraded(cause error) {
	if p.degraded.CompareAndSwap(false, true) {
		p.log.Warn("NATS is not accepting interactions; spooling them to disk", "err", cause)
	}
}

// permanent reports a rejection that no retry can fix.
func permanent(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, ErrPayloadTooLarge) || errors.Is(err, ErrPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// replayLoop sends the spooled records in order with a synchronous publish each,
// carrying the original Nats-Msg-Id, and leaves the degraded state once the
// spool is empty.
func (p *Publisher) replayLoop(ctx context.Context) {
	defer close(p.replayDone)
	wait := p.cfg.RetryInterval
	var buf []byte
	for {
		if !p.connected() {
			wait = p.cfg.RetryInterval
			if !sleepCtx(ctx, wait) {
				return
			}
			continue
		}
		rec, pos, ok, err := p.spool.next(&buf)
		if err != nil {
			p.log.Error("spool read failed", "err", err)
			if !sleepCtx(ctx, maxRetryBackoff) {
				return
			}
			continue
		}
		if !ok {
			p.spool.isEmpty(func() {
				if p.degraded.CompareAndSwap(true, false) {
					p.log.Info("spool replayed; publishing directly again", "replayed_total", p.replayed.Load())
				}
			})
			select {
			case <-p.spool.notify:
				continue
			case <-ctx.Done():
				return
			}
		}
		pctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
		ack, err := p.pjs.PublishMsg(pctx, rec.msg(), jetstream.WithMsgID(rec.id))
		cancel()
		switch {
		case err == nil:
			wait = p.cfg.RetryInterval
			p.acked(ack, &p.replayed)
		case ctx.Err() != nil:
			return // stopping: the record stays spooled
		case permanent(err):
			p.failed.Add(1)
			p.log.Error("spooled interaction rejected for good; skipped", "interaction", rec.id, "err", err)
		default:
			p.enterDegraded(err)
			if !sleepCtx(ctx, wait) {
				return
			}
			wait = min(2*wait, maxRetryBackoff)
			continue
		}
		if err := p.spool.commit(pos); err != nil {
			p.log.Error("spool commit failed", "err", err)
		}
	}
}

// sleepCtx waits d, or returns false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
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
	if tp := TraceParentSpan(in.TraceID, in.SpanID); tp != "" {
		msg.Header.Set(HeaderTraceParent, tp)
	}
	return msg, nil
}

// TraceParent builds a W3C traceparent for a 32-hex-digit trace id, with a span id
// derived from it; "" when the id is not well formed.
func TraceParent(traceID string) string { return TraceParentSpan(traceID, "") }

// TraceParentSpan builds a W3C traceparent naming spanID (16 hex digits) as the
// parent; with spanID empty or malformed, a span id derived from the trace id.
func TraceParentSpan(traceID, spanID string) string {
	if len(traceID) != 32 || !lowerHex(traceID) {
		return ""
	}
	if len(spanID) != 16 || !lowerHex(spanID) || spanID == "0000000000000000" {
		spanID = traceID[:16]
	}
	return "00-" + traceID + "-" + spanID + "-01"
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
