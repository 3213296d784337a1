package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

// Leader election: several controller processes may run, but only the holder of
// a lease in the LEADERS KV bucket runs the reconcile loop. The lease is one key
// per role whose value names the holder; the bucket's TTL (MaxAge) expires a key
// nobody renews. The holder renews with a compare-and-set on the revision it
// wrote (kv.Update); the others try kv.Create, which only succeeds once the key
// is gone: released by a stopping leader, or expired after a dead one. No clock
// is shared: a holder that cannot renew steps down one renew interval before the
// TTL can run out, so two leaders never act at once.

// Defaults for LeaseConfig.
const (
	// BucketLeaders holds one lease per elected role.
	BucketLeaders = "LEADERS"
	// LeaseController is the lease of the rollout controller.
	LeaseController = "controller"
	// DefaultLeaseTTL: a leader that dies is replaced within about TTL + Renew.
	DefaultLeaseTTL = 6 * time.Second
	// MinLeaseTTL and MaxLeaseTTL bound LeaseConfig.TTL.
	MinLeaseTTL = 500 * time.Millisecond
	MaxLeaseTTL = 5 * time.Minute
	// leaseOpTimeout bounds one bucket call (at most the renew interval).
	leaseOpTimeout = 2 * time.Second
	// leaseOpenTimeout bounds binding the bucket at Start, retries included.
	leaseOpenTimeout = time.Minute
	// maxHolderLen bounds a holder id.
	maxHolderLen = 200
)

// LeaseConfig configures one lease.
type LeaseConfig struct {
	// Name is the lease's key in BucketLeaders, one per elected role (e.g.
	// LeaseController); letters, digits, '-', '_'.
	Name string
	// Holder identifies this process in the lease (default host-pid-random).
	Holder string
	// TTL is how long a lease outlives its last renewal; it is the bucket's
	// MaxAge, so the bucket's creator sets it for every lease (default
	// DefaultLeaseTTL). A process joining an existing bucket uses the bucket's.
	TTL time.Duration
	// Renew is the renew (and, while waiting, the acquire) interval (default
	// TTL/3; at most TTL/2).
	Renew time.Duration
	// Replicas of the bucket when it must be created: 1 on one server, 3 on a
	// cluster (default 1).
	Replicas int
}

// Validate reports every problem at once.
func (c LeaseConfig) Validate() error {
	var errs []error
	if !events.ValidToken(c.Name) {
		errs = append(errs, fmt.Errorf("%w: lease name %q: want letters, digits, '-' or '_'", ErrInvalid, c.Name))
	}
	if len(c.Holder) > maxHolderLen {
		errs = append(errs, fmt.Errorf("%w: lease holder longer than %d bytes", ErrInvalid, maxHolderLen))
	}
	if c.TTL != 0 && (c.TTL < MinLeaseTTL || c.TTL > MaxLeaseTTL) {
		errs = append(errs, fmt.Errorf("%w: lease ttl %s: want %s to %s", ErrInvalid, c.TTL, MinLeaseTTL, MaxLeaseTTL))
	}
	if c.Renew < 0 || (c.Renew > 0 && c.TTL > 0 && c.Renew > c.TTL/2) {
		errs = append(errs, fmt.Errorf("%w: lease renew %s: want positive and at most half the ttl", ErrInvalid, c.Renew))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("%w: lease replicas %d: want 1-5", ErrInvalid, c.Replicas))
	}
	return errors.Join(errs...)
}

// LeaseDeps are what a Lease takes from outside.
type LeaseDeps struct {
	// JS holds the LEADERS bucket (created when missing).
	JS jetstream.JetStream
	// OnElected starts the leader's work when this process takes the lease. An
	// error releases the lease again (another process may take it).
	OnElected func(ctx context.Context) error
	// OnDemoted stops the leader's work when the lease is lost, cannot be
	// renewed in time, or is released by Stop; it returns once the work stopped.
	OnDemoted func(ctx context.Context)
	// Clock; nil is the wall clock.
	Clock clock.Clock
	// Logger; nil discards.
	Logger *slog.Logger
}

// LeaseStats count leadership changes.
type LeaseStats struct {
	Leader    bool      `json:"leader"`
	Elected   uint64    `json:"elected"`
	Demoted   uint64    `json:"demoted"`
	Holder    string    `json:"holder"`
	Name      string    `json:"name"`
	RenewedAt time.Time `json:"renewed_at"`
}

// Lease holds or waits for one leadership lease.
type Lease struct {
	cfg LeaseConfig
	dep LeaseDeps
	clk clock.Clock
	log *slog.Logger

	leader  atomic.Bool
	elected atomic.Uint64
	demoted atomic.Uint64

	mu      sync.Mutex
	kv      jetstream.KeyValue
	rev     uint64    // revision this process wrote, while leader
	renewed time.Time // when the last successful write was sent
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewLease validates cfg and deps; nothing runs until Start.
func NewLease(cfg LeaseConfig, deps LeaseDeps) (*Lease, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if deps.JS == nil {
		errs = append(errs, errors.New("lease: a JetStream context is required"))
	}
	if deps.OnElected == nil || deps.OnDemoted == nil {
		errs = append(errs, errors.New("lease: OnElected and OnDemoted are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Holder == "" {
		cfg.Holder = DefaultHolder()
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultLeaseTTL
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	l := &Lease{cfg: cfg, dep: deps, clk: clock.OrReal(deps.Clock), log: deps.Logger}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

// DefaultHolder is a process's holder id: host name, process id and a random
// suffix (so a restarted process never mistakes an old lease for its own).
func DefaultHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	h := fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	if len(h) > maxHolderLen {
		h = h[len(h)-maxHolderLen:]
	}
	return h
}

// openLeaders binds the LEADERS bucket, creating it with ttl when missing, and
// returns it with the TTL it actually has.
func openLeaders(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, time.Duration, error) {
	kv, err := js.KeyValue(ctx, BucketLeaders)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: BucketLeaders, Description: "Stagegate leadership leases, one key per elected role",
			History: 1, TTL: ttl, Storage: jetstream.FileStorage, Replicas: replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, BucketLeaders)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("leases bucket %s: %w", BucketLeaders, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("leases bucket %s: %w", BucketLeaders, err)
	}
	if st.TTL() <= 0 {
		return nil, 0, fmt.Errorf("leases bucket %s has no TTL: a dead leader would never be replaced; delete it", BucketLeaders)
	}
	return kv, st.TTL(), nil
}

// openPatiently binds (or creates) the bucket, retrying for up to
// leaseOpenTimeout: controllers starting together on a new cluster create it
// at once, and JetStream may leave some of those creates unanswered.
func (l *Lease) openPatiently(ctx context.Context) (jetstream.KeyValue, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, leaseOpenTimeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, leaseOpTimeout)
		kv, ttl, err := openLeaders(actx, l.dep.JS, l.cfg.TTL, l.cfg.Replicas)
		acancel()
		if err == nil {
			return kv, ttl, nil
		}
		t := time.NewTimer(leaseOpTimeout / 8)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, fmt.Errorf("%w (gave up after %s)", err, leaseOpenTimeout)
		case <-t.C:
		}
	}
}

// Start binds the bucket and runs the election until Stop. It returns before
// the first attempt; Leader reports the outcome.
func (l *Lease) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return errors.New("lease already started")
	}
	kv, ttl, err := l.openPatiently(ctx)
	if err != nil {
		return err
	}
	if ttl != l.cfg.TTL {
		l.log.Info("lease: using the bucket's ttl", "lease", l.cfg.Name, "ttl", ttl, "configured", l.cfg.TTL)
		l.cfg.TTL = ttl
	}
	if l.cfg.Renew == 0 || l.cfg.Renew > ttl/2 {
		l.cfg.Renew = ttl / 3
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l.kv, l.cancel, l.done = kv, cancel, make(chan struct{})
	go l.run(runCtx)
	return nil
}

// Stop ends the election; a leader stops its work (OnDemoted) and releases the
// lease, so another process takes over within one renew interval.
func (l *Lease) Stop(ctx context.Context) error {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("lease stop: %w", ctx.Err())
	}
	if l.leader.Load() {
		l.demote(ctx, "stopping")
		return l.release(ctx)
	}
	return nil
}

// Leader reports whether this process holds the lease.
func (l *Lease) Leader() bool { return l.leader.Load() }

// Stats reports the lease's state and counters.
func (l *Lease) Stats() LeaseStats {
	l.mu.Lock()
	renewed := l.renewed
	l.mu.Unlock()
	return LeaseStats{Leader: l.leader.Load(), Elected: l.elected.Load(), Demoted: l.demoted.Load(),
		Holder: l.cfg.Holder, Name: l.cfg.Name, RenewedAt: renewed}
}

// Config returns the effective configuration (the bucket's TTL after Start).
func (l *Lease) Config() LeaseConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

func (l *Lease) run(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.cfg.Renew)
	defer t.Stop()
	for {
		l.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step renews the lease when this process holds it, else tries to take it.
func (l *Lease) step(ctx context.Context) {
	opCtx, cancel := context.WithTimeout(ctx, min(leaseOpTimeout, l.cfg.Renew))
	defer cancel()
	sent := l.clk.Now()
	if l.leader.Load() {
		l.mu.Lock()
		rev := l.rev
		l.mu.Unlock()
		newRev, err := l.kv.Update(opCtx, l.cfg.Name, []byte(l.cfg.Holder), rev)
		switch {
		case err == nil:
			l.mu.Lock()
			l.rev, l.renewed = newRev, sent
			l.mu.Unlock()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
			l.demote(ctx, "lease lost: "+err.Error())
		default:
			l.mu.Lock()
			since := sent.Sub(l.renewed)
			l.mu.Unlock()
			// Step down one renew interval before the lease can expire, so the
			// next leader never overlaps this one.
			if since >= l.cfg.TTL-l.cfg.Renew {
				l.demote(ctx, fmt.Sprintf("lease not renewed for %s: %v", since.Round(time.Millisecond), err))
			} else {
				l.log.Warn("lease renew failed; retrying", "lease", l.cfg.Name, "err", err)
			}
		}
		return
	}
	rev, err := l.kv.Create(opCtx, l.cfg.Name, []byte(l.cfg.Holder))
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			l.log.Debug("lease acquire", "lease", l.cfg.Name, "err", err)
		}
		return
	}
	l.mu.Lock()
	l.rev, l.renewed = rev, sent
	l.mu.Unlock()
	l.leader.Store(true)
	l.elected.Add(1)
	l.log.Info("elected leader", "lease", l.cfg.Name, "holder", l.cfg.Holder)
	if err := l.dep.OnElected(ctx); err != nil {
		l.log.Error("leader failed to start; releasing the lease", "lease", l.cfg.Name, "err", err)
		l.demote(ctx, "start failed")
		_ = l.release(ctx)
	}
}

// demote stops the leader's work.
func (l *Lease) demote(ctx context.Context, why string) {
	if !l.leader.CompareAndSwap(true, false) {
		return
	}
	l.demoted.Add(1)
	l.log.Warn("leadership ended", "lease", l.cfg.Name, "holder", l.cfg.Holder, "why", why)
	l.dep.OnDemoted(context.WithoutCancel(ctx))
}

// release deletes the lease if it is still the revision this process wrote.
func (l *Lease) release(ctx context.Context) error {
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseOpTimeout)
	defer cancel()
	err := l.kv.Delete(opCtx, l.cfg.Name, jetstream.LastRevision(rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("release lease %s: %w", l.cfg.Name, err)
	}
	return nil
}

// LeaseHolder returns the current holder of lease name, or "" when nobody
// holds it.
func LeaseHolder(ctx context.Context, js jetstream.JetStream, name string) (string, error) {
	kv, err := js.KeyValue(ctx, BucketLeaders)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("leases bucket %s: %w", BucketLeaders, err)
	}
	e, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease %s: %w", name, err)
	}
	return string(e.Value()), nil
}
