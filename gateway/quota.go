package gateway

import (
	"hash/maphash"
	"sync"
	"time"
)

// Caps are a trial's per-user limits, counted by the gateway. The policy sees
// the result as the fact caller.over_quota and decides what follows (deny, or
// keep the user on the baseline); TokensPerRequest caps max_tokens directly.
type Caps struct {
	// RequestsPerUserPerDay counts requests per pseudonymous user per UTC day; 0: no cap.
	RequestsPerUserPerDay int
	// ConcurrentStreams caps a user's open streams; 0: no cap.
	ConcurrentStreams int
	// TokensPerRequest caps max_tokens of every request; 0: no cap.
	TokensPerRequest int
}

func (c Caps) counted() bool { return c.RequestsPerUserPerDay > 0 || c.ConcurrentStreams > 0 }

// quotaShards spreads users over independently locked shards, so concurrent
// requests of different users rarely meet on a lock.
const quotaShards = 64

// maxUsersPerShard bounds memory: past it, entries of earlier days are swept.
const maxUsersPerShard = 1 << 14

type quotas struct {
	seed   maphash.Seed
	shards [quotaShards]quotaShard
}

type quotaShard struct {
	mu sync.Mutex
	m  map[string]*userQuota
}

type userQuota struct {
	day      int64 // UTC day the count belongs to
	requests int
	streams  int
}

func newQuotas() *quotas {
	q := &quotas{seed: maphash.MakeSeed()}
	for i := range q.shards {
		q.shards[i].m = make(map[string]*userQuota)
	}
	return q
}

func utcDay(t time.Time) int64 { return t.Unix() / 86400 }

func (q *quotas) shard(key string) *quotaShard {
	return &q.shards[maphash.String(q.seed, key)%quotaShards]
}

// over reports whether this request would exceed a cap.
func (q *quotas) over(key string, now time.Time, caps Caps, stream bool) bool {
	if !caps.counted() {
		return false
	}
	s := q.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.m[key]
	if u == nil || u.day != utcDay(now) && u.streams == 0 {
		return false
	}
	if caps.RequestsPerUserPerDay > 0 && u.day == utcDay(now) && u.requests >= caps.RequestsPerUserPerDay {
		return true
	}
	return stream && caps.ConcurrentStreams > 0 && u.streams >= caps.ConcurrentStreams
}

// admit counts an admitted request; release must be called when a stream ends.
func (q *quotas) admit(key string, now time.Time, caps Caps, stream bool) (release func()) {
	if !caps.counted() {
		return func() {}
	}
	s := q.shard(key)
	day := utcDay(now)
	s.mu.Lock()
	u := s.m[key]
	if u == nil {
		if len(s.m) >= maxUsersPerShard {
			s.sweep(day)
		}
		u = &userQuota{day: day}
		s.m[key] = u
	}
	if u.day != day {
		u.day, u.requests = day, 0
	}
	u.requests++
	if stream {
		u.streams++
	}
	s.mu.Unlock()
	if !stream {
		return func() {}
	}
	return func() {
		s.mu.Lock()
		u.streams--
		s.mu.Unlock()
	}
}

// sweep drops users with no open stream whose count is from an earlier day.
func (s *quotaShard) sweep(day int64) {
	for k, u := range s.m {
		if u.day != day && u.streams == 0 {
			delete(s.m, k)
		}
	}
}
