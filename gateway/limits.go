package gateway

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

// Sentinel errors of the request limits (429).
var (
	// ErrRateLimited: the API key or the user sent more requests per second
	// than the trial allows.
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrTooManyConcurrent: the API key or the user has as many requests in
	// flight as the trial allows.
	ErrTooManyConcurrent = errors.New("too many concurrent requests")
)

// OpenAI-style codes of a 429.
const (
	codeRateLimited   = "rate_limit_exceeded"
	codeConcurrent    = "concurrency_limit_exceeded"
	typeRateLimited   = "requests"
	headerRetryAfter  = "Retry-After"
	limitShards       = 64
	maxLimitsPerShard = 1 << 14
)

// Limits are a trial's hard request limits, enforced before the policy runs: a
// request over one gets 429 with an OpenAI-shaped error and Retry-After, and is
// not an interaction. Rates are token buckets (burst requests at once, then
// Rate per second); concurrency caps count requests in flight, streams until
// they end. Zero fields are no limit.
type Limits struct {
	// KeyRate is requests per second per API key.
	KeyRate float64
	// KeyBurst is how many requests a key may send at once (default: KeyRate
	// rounded up, at least 1).
	KeyBurst int
	// KeyConcurrent caps a key's requests in flight.
	KeyConcurrent int
	// UserRate is requests per second per (pseudonymous) end user.
	UserRate float64
	// UserBurst is UserRate's bucket size (default: UserRate rounded up, at least 1).
	UserBurst int
	// UserConcurrent caps a user's requests in flight.
	UserConcurrent int
}

// Validate reports every problem at once.
func (l Limits) Validate() error {
	var errs []error
	if l.KeyRate < 0 || l.UserRate < 0 || l.KeyRate > 1e9 || l.UserRate > 1e9 {
		errs = append(errs, fmt.Errorf("limits: rates must be 0-1e9 per second"))
	}
	if l.KeyBurst < 0 || l.UserBurst < 0 || l.KeyConcurrent < 0 || l.UserConcurrent < 0 {
		errs = append(errs, fmt.Errorf("limits: bursts and concurrency caps must not be negative"))
	}
	return errors.Join(errs...)
}

func (l Limits) keyLimited() bool  { return l.KeyRate > 0 || l.KeyConcurrent > 0 }
func (l Limits) userLimited() bool { return l.UserRate > 0 || l.UserConcurrent > 0 }

// LimitStats count requests refused by the limits.
type LimitStats struct {
	RateLimited      uint64 // 429 for a rate
	ConcurrentCapped uint64 // 429 for a concurrency cap
}

// LimitStats returns the counters of refused requests.
func (g *Gateway) LimitStats() LimitStats {
	return LimitStats{RateLimited: g.limits.rated.Load(), ConcurrentCapped: g.limits.capped.Load()}
}

// limiter holds one bucket per (trial, key) and per (trial, user), in shards so
// that the common path — the bucket exists — takes only a shard's read lock;
// admitting a request is then lock-free (atomic compare-and-swap).
type limiter struct {
	clk    clock.Clock
	seed   maphash.Seed
	shards [limitShards]limitShard

	rated, capped atomic.Uint64
}

type limitShard struct {
	mu sync.RWMutex
	m  map[string]*bucket
}

// bucket is a token bucket kept as a theoretical arrival time (GCRA): a request
// at now is admitted when tat - now stays within burst × interval after
// adding one interval. One int64, so admission is one compare-and-swap.
type bucket struct {
	tat      atomic.Int64 // Unix nanoseconds
	inflight atomic.Int32
}

func newLimiter(clk clock.Clock) *limiter {
	l := &limiter{clk: clk, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*bucket)
	}
	return l
}

// get returns the bucket of key, creating it.
func (l *limiter) get(key string, now int64) *bucket {
	s := &l.shards[maphash.String(l.seed, key)%limitShards]
	s.mu.RLock()
	b := s.m[key]
	s.mu.RUnlock()
	if b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.m[key]; b != nil {
		return b
	}
	if len(s.m) >= maxLimitsPerShard {
		// Idle buckets (nothing in flight, bucket full again) carry no state.
		for k, old := range s.m {
			if old.inflight.Load() == 0 && old.tat.Load() <= now {
				delete(s.m, k)
			}
		}
	}
	b = &bucket{}
	s.m[key] = b
	return b
}

// interval and burst of a rate: the time one request uses up, and the bucket size.
func rateParams(rate float64, burst int) (interval, size int64) {
	interval = int64(float64(time.Second) / rate)
	if interval < 1 {
		interval = 1
	}
	if burst <= 0 {
		burst = max(1, int(rate+0.999999))
	}
	return interval, int64(burst)
}

// take admits one request at now, or returns how long until one would be.
func (b *bucket) take(now, interval, size int64) (retry time.Duration, ok bool) {
	for {
		tat := b.tat.Load()
		next := max(tat, now) + interval
		if over := next - now - size*interval; over > 0 {
			return time.Duration(over), false
		}
		if b.tat.CompareAndSwap(tat, next) {
			return 0, true
		}
	}
}

// enter takes a concurrency slot when fewer than limit are held.
func (b *bucket) enter(limit int) bool {
	for {
		n := b.inflight.Load()
		if int(n) >= limit {
			return false
		}
		if b.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// hold is what an admitted request holds until it ends.
type hold struct {
	key, user *bucket // nil when not holding a slot
}

func (h *hold) release() {
	if h.key != nil {
		h.key.inflight.Add(-1)
		h.key = nil
	}
	if h.user != nil {
		h.user.inflight.Add(-1)
		h.user = nil
	}
}

// admit checks one bucket: the concurrency cap first (so a refused request
// spends no rate), then the rate. It returns the bucket when a slot was taken.
func (l *limiter) admit(w http.ResponseWriter, key, who string, rate float64, burst, concurrent int) (*bucket, error) {
	now := l.clk.Now().UnixNano()
	b := l.get(key, now)
	if concurrent > 0 && !b.enter(concurrent) {
		l.capped.Add(1)
		w.Header().Set(headerRetryAfter, "1")
		return nil, &HTTPError{Status: http.StatusTooManyRequests, Type: typeRateLimited, Code: codeConcurrent,
			Err: fmt.Errorf("%w: at most %d requests in flight per %s; retry when one has finished", ErrTooManyConcurrent, concurrent, who)}
	}
	if rate > 0 {
		interval, size := rateParams(rate, burst)
		if wait, ok := b.take(now, interval, size); !ok {
			if concurrent > 0 {
				b.inflight.Add(-1)
			}
			l.rated.Add(1)
			secs := int64((wait + time.Second - 1) / time.Second)
			w.Header().Set(headerRetryAfter, strconv.FormatInt(max(secs, 1), 10))
			return nil, &HTTPError{Status: http.StatusTooManyRequests, Type: typeRateLimited, Code: codeRateLimited,
				Err: fmt.Errorf("%w: at most %s requests per second per %s; retry after %s", ErrRateLimited,
					strconv.FormatFloat(rate, 'f', -1, 64), who, wait.Round(time.Millisecond))}
		}
	}
	if concurrent > 0 {
		return b, nil
	}
	return nil, nil
}

// limitKey applies the trial's per-key limits right after authentication,
// before the body is read.
func (g *Gateway) limitKey(x *exchange) error {
	l := x.trial.Limits
	if !l.keyLimited() {
		return nil
	}
	b, err := g.limits.admit(x.w, x.trial.ID+"\x00k\x00"+x.principal.KeyID, "API key", l.KeyRate, l.KeyBurst, l.KeyConcurrent)
	x.held.key = b
	return err
}

// limitUser applies the trial's per-user limits once the (pseudonymous) user
// is known.
func (g *Gateway) limitUser(x *exchange) error {
	l := x.trial.Limits
	if !l.userLimited() {
		return nil
	}
	b, err := g.limits.admit(x.w, x.trial.ID+"\x00u\x00"+x.user, "user", l.UserRate, l.UserBurst, l.UserConcurrent)
	x.held.user = b
	return err
}
