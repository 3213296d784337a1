package gateway

import (
	"hash/maphash"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

func TestBucketIsGCRA(t *testing.T) {
	var b bucket
	interval, size := rateParams(10, 3) // 100ms per request, 3 at once
	now := int64(time.Hour)
	for i := range 3 {
		if _, ok := b.take(now, interval, size); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	wait, ok := b.take(now, interval, size)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("fourth: ok=%v wait=%s, want refused for 100ms", ok, wait)
	}
	if _, ok := b.take(now+int64(100*time.Millisecond), interval, size); !ok {
		t.Fatal("refused after one interval")
	}
	// A long idle period refills the bucket only up to its size.
	now += int64(time.Minute)
	n := 0
	for {
		if _, ok := b.take(now, interval, size); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("after idling, %d admitted at once, want 3", n)
	}
}

func TestRateParamsDefaults(t *testing.T) {
	cases := []struct {
		rate         float64
		burst        int
		wantInterval time.Duration
		wantSize     int64
	}{
		{1, 0, time.Second, 1},
		{2.5, 0, 400 * time.Millisecond, 3},
		{0.5, 0, 2 * time.Second, 1},
		{100, 7, 10 * time.Millisecond, 7},
	}
	for _, c := range cases {
		i, s := rateParams(c.rate, c.burst)
		if time.Duration(i) != c.wantInterval || s != c.wantSize {
			t.Errorf("rateParams(%v, %d) = %s, %d; want %s, %d", c.rate, c.burst, time.Duration(i), s, c.wantInterval, c.wantSize)
		}
	}
}

// TestConcurrencyNeverExceedsTheCap hammers one bucket from many goroutines.
func TestConcurrencyNeverExceedsTheCap(t *testing.T) {
	var b bucket
	const limit = 3
	var inside, peak atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 2000 {
				if !b.enter(limit) {
					continue
				}
				n := inside.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				inside.Add(-1)
				b.inflight.Add(-1)
			}
		})
	}
	wg.Wait()
	if peak.Load() > limit || peak.Load() == 0 || b.inflight.Load() != 0 {
		t.Fatalf("peak %d (cap %d), left in flight %d", peak.Load(), limit, b.inflight.Load())
	}
}

func TestIdleBucketsAreSwept(t *testing.T) {
	l := newLimiter(clock.NewFake(time.Unix(1000, 0)))
	now := time.Unix(1000, 0).UnixNano()
	sh := &l.shards[maphash.String(l.seed, "newcomer")%limitShards]
	// A full shard: idle buckets, one with a request in flight, one still refilling.
	for i := range maxLimitsPerShard - 2 {
		sh.m["idle"+strconv.Itoa(i)] = &bucket{}
	}
	held, busy := &bucket{}, &bucket{}
	held.inflight.Store(1)
	busy.tat.Store(now + int64(time.Second))
	sh.m["held"], sh.m["busy"] = held, busy

	l.get("newcomer", now)
	if len(sh.m) != 3 || sh.m["held"] != held || sh.m["busy"] != busy || sh.m["newcomer"] == nil {
		t.Fatalf("after the sweep the shard holds %d buckets", len(sh.m))
	}
}

// BenchmarkLimiterAdmit is the per-request cost of a key rate limit and
// concurrency cap (bucket found, slot taken and given back), in parallel.
func BenchmarkLimiterAdmit(b *testing.B) {
	l := newLimiter(clock.Real{})
	w := httptest.NewRecorder()
	b.ReportAllocs()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		key := "demo\x00k\x00key-" + strconv.FormatUint(next.Add(1)%8, 10)
		for pb.Next() {
			bk, err := l.admit(w, key, "API key", 1e9, 1<<20, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			h := hold{key: bk}
			h.release()
		}
	})
}

// BenchmarkBucketTake is one token-bucket admission, single goroutine.
func BenchmarkBucketTake(b *testing.B) {
	var bk bucket
	interval, size := rateParams(1e9, 1<<30)
	now := time.Now().UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		now += interval
		if _, ok := bk.take(now, interval, size); !ok {
			b.Fatal("refused")
		}
	}
}
