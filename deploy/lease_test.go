package deploy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/internal/testutil"
)

// candidate is one controller process in the election tests: its own NATS
// connection, a real Controller whose loop runs only while it leads, and a
// lease.
type candidate struct {
	name  string
	nc    *nats.Conn
	ctrl  *Controller
	lease *Lease
}

// leaders counts the candidates whose controller loop runs, and remembers the
// most ever seen at once.
type leaders struct {
	mu     sync.Mutex
	now    int
	most   int
	active map[string]bool
}

func (l *leaders) set(name string, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active[name] == on {
		return
	}
	l.active[name] = on
	if on {
		l.now++
	} else {
		l.now--
	}
	l.most = max(l.most, l.now)
}

func (l *leaders) who() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for n, on := range l.active {
		if on {
			out = append(out, n)
		}
	}
	return out
}

func newCandidate(t *testing.T, e *env, name string, ttl time.Duration, track *leaders) *candidate {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(e.ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := New(Config{Interval: 50 * time.Millisecond}, Deps{JS: js, Evidence: e.store, Clock: e.clk})
	if err != nil {
		t.Fatal(err)
	}
	c := &candidate{name: name, nc: nc, ctrl: ctrl}
	c.lease, err = NewLease(LeaseConfig{Name: LeaseController, Holder: name, TTL: ttl}, LeaseDeps{
		JS: js,
		OnElected: func(ctx context.Context) error {
			if err := ctrl.Start(ctx); err != nil {
				return err
			}
			track.set(name, true)
			return nil
		},
		OnDemoted: func(ctx context.Context) {
			track.set(name, false)
			stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := ctrl.Stop(stopCtx); err != nil {
				t.Errorf("%s: stop controller: %v", name, err)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.lease.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.lease.Stop(context.Background()) })
	return c
}

// Two controllers on one JetStream: exactly one leads; when the leader dies
// without releasing (its connection is cut), the other takes over within the
// lease TTL plus a renew interval, and the two never lead at once.
func TestLeaseFailoverWhenLeaderDies(t *testing.T) {
	e := newEnv(t, nil)
	const ttl = time.Second
	track := &leaders{active: map[string]bool{}}
	a := newCandidate(t, e, "ctrl-a", ttl, track)
	testutil.WaitFor(t, 3*time.Second, "ctrl-a elected", a.lease.Leader)
	b := newCandidate(t, e, "ctrl-b", ttl, track)

	// b keeps waiting while a renews, for several TTLs.
	deadline := time.Now().Add(3 * ttl)
	testutil.WaitFor(t, 5*ttl, "three TTLs pass", func() bool { return time.Now().After(deadline) })
	if b.lease.Leader() || !a.lease.Leader() {
		t.Fatalf("while a renews: a leader=%v, b leader=%v", a.lease.Leader(), b.lease.Leader())
	}
	if holder, err := LeaseHolder(context.Background(), e.js, LeaseController); err != nil || holder != "ctrl-a" {
		t.Fatalf("LeaseHolder = %q, %v; want ctrl-a", holder, err)
	}

	// Kill a: its connection goes away without releasing the lease.
	killed := time.Now()
	a.nc.Close()
	takeover := ttl + ttl/3 + time.Second // TTL, one acquire interval, slack
	testutil.WaitFor(t, takeover, "ctrl-b takes over after ctrl-a died", b.lease.Leader)
	took := time.Since(killed)
	testutil.WaitFor(t, 2*ttl, "ctrl-a steps down when it cannot renew", func() bool { return !a.lease.Leader() })
	if took < ttl-ttl/3 {
		t.Errorf("ctrl-b took over after %s, before ctrl-a's lease (ttl %s) could have expired", took, ttl)
	}
	if holder, _ := LeaseHolder(context.Background(), e.js, LeaseController); holder != "ctrl-b" {
		t.Errorf("LeaseHolder = %q, want ctrl-b", holder)
	}
	track.mu.Lock()
	most := track.most
	track.mu.Unlock()
	if most != 1 {
		t.Errorf("%d controllers led at once, want 1", most)
	}
	testutil.WaitFor(t, 2*time.Second, "ctrl-b's controller running", func() bool { return fmt.Sprint(track.who()) == "[ctrl-b]" })
	if s := a.lease.Stats(); s.Elected != 1 || s.Demoted != 1 {
		t.Errorf("ctrl-a stats = %+v, want elected 1, demoted 1", s)
	}
	t.Logf("failover took %s (ttl %s)", took.Round(time.Millisecond), ttl)
}

// A leader that stops releases the lease: the next takes over within about
// one renew interval, long before the TTL.
func TestLeaseReleasedOnStop(t *testing.T) {
	e := newEnv(t, nil)
	const ttl = 3 * time.Second
	track := &leaders{active: map[string]bool{}}
	a := newCandidate(t, e, "ctrl-a", ttl, track)
	testutil.WaitFor(t, 3*time.Second, "ctrl-a elected", a.lease.Leader)
	b := newCandidate(t, e, "ctrl-b", ttl, track)

	stopped := time.Now()
	if err := a.lease.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.lease.Leader() {
		t.Error("ctrl-a still leader after Stop")
	}
	testutil.WaitFor(t, ttl/3+time.Second, "ctrl-b takes over after the release", b.lease.Leader)
	if took := time.Since(stopped); took >= ttl {
		t.Errorf("takeover after release took %s, want less than the ttl %s", took, ttl)
	}
	// The lease is won first; the controller it runs starts just after.
	testutil.WaitFor(t, 2*time.Second, "ctrl-b's controller running", func() bool { return fmt.Sprint(track.who()) == "[ctrl-b]" })
}

// A controller whose start fails releases the lease instead of holding it idle.
func TestLeaseReleasedWhenStartFails(t *testing.T) {
	e := newEnv(t, nil)
	var calls atomic.Int32
	l, err := NewLease(LeaseConfig{Name: "flaky", Holder: "h1", TTL: time.Minute}, LeaseDeps{
		JS: e.js,
		OnElected: func(context.Context) error {
			calls.Add(1)
			return errors.New("boom")
		},
		OnDemoted: func(context.Context) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Stop(context.Background()) })
	testutil.WaitFor(t, 3*time.Second, "start attempted", func() bool { return calls.Load() >= 1 })
	testutil.WaitFor(t, 3*time.Second, "lease released", func() bool {
		h, err := LeaseHolder(context.Background(), e.js, "flaky")
		return err == nil && h == "" && !l.Leader()
	})
}

func TestLeaseConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  LeaseConfig
		ok   bool
	}{
		{"defaults", LeaseConfig{Name: LeaseController}, true},
		{"full", LeaseConfig{Name: "controller", Holder: "h", TTL: 10 * time.Second, Renew: 2 * time.Second, Replicas: 3}, true},
		{"bad name", LeaseConfig{Name: "a.b"}, false},
		{"no name", LeaseConfig{}, false},
		{"ttl too short", LeaseConfig{Name: "c", TTL: time.Millisecond}, false},
		{"renew over half the ttl", LeaseConfig{Name: "c", TTL: 4 * time.Second, Renew: 3 * time.Second}, false},
		{"replicas", LeaseConfig{Name: "c", Replicas: 7}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
	if _, err := NewLease(LeaseConfig{Name: "c"}, LeaseDeps{}); err == nil {
		t.Error("NewLease without JS and hooks succeeded")
	}
}
