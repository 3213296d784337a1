package sandbox

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/internal/testutil"
)

// startSecondSandbox runs another sandbox the way a second `stagegate up` runs on
// a shared NATS: nats.url points at the first one's server, the pseudonymisation
// secret is shared (so a user is the same user on both gateways), its own data
// dir, and no monitors (the first sandbox's monitors review the traffic of both).
func startSecondSandbox(t *testing.T, first *Sandbox) *Sandbox {
	t.Helper()
	url := first.NATSURL()
	if url == "" {
		t.Fatal("the first sandbox does not expose its NATS")
	}
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gateway.UpstreamTimeout = 2 * time.Second
	cfg.NATS.URL = url
	cfg.SecretFile = first.secretPath()
	cfg.Monitors.Disabled = true
	cfg.Keys = first.cfg.Keys
	sb, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	return sb
}

// shot is one request of the load: which gateway, when it started, who served it.
type shot struct {
	gateway int
	start   time.Time
	status  int
	model   string
}

// TestKillSwitchAcrossTwoGateways: while two sandboxes sharing one NATS serve a
// 50% canary, a reviewer confirms a critical incident of the candidate; every
// request started more than one second later, on either gateway, is served by
// the baseline.
func TestKillSwitchAcrossTwoGateways(t *testing.T) {
	sb := startRolloutSandbox(t, rolloutOptions{natsListen: "127.0.0.1:0"})
	second := startSecondSandbox(t, sb)
	addrs := []string{sb.GatewayAddr(), second.GatewayAddr()}

	plan := "trial: demo\ncandidate: demo-candidate\nbaseline: demo-baseline\nsteps:\n  - canary: {weight: 50}\n  - pause:\n"
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": plan, "actor": "acme-ops"}, nil); code != http.StatusOK {
		t.Fatalf("apply: HTTP %d", code)
	}
	testutil.WaitFor(t, 2*time.Second, "both gateways follow the rollout", func() bool {
		p1, _ := sb.assigner.Plan(DemoTrial)
		p2, _ := second.assigner.Plan(DemoTrial)
		return p1.Stage == deploy.StageCanary && p2.Stage == deploy.StageCanary && p1.Equal(p2)
	})
	for i := range 20 { // one secret, one split: a user gets the same model on both
		u := "both-" + strconv.Itoa(i)
		if a, b := chatVia(t, addrs[0], DemoPilotKey, u, "hi", false), chatVia(t, addrs[1], DemoPilotKey, u, "hi", false); a.Model != b.Model || a.Status != http.StatusOK {
			t.Fatalf("user %s: %s (HTTP %d) on the first gateway, %s on the second", u, a.Model, a.Status, b.Model)
		}
	}

	// A candidate user's answer leaks PII through the second gateway.
	var leaker string
	for i := 0; leaker == "" && i < 100; i++ {
		u := "leaker-" + strconv.Itoa(i)
		if chatVia(t, addrs[1], DemoPilotKey, u, "hello", false).Model == DemoCandidate {
			leaker = u
		}
	}
	if s := chatVia(t, addrs[1], DemoPilotKey, leaker, "[sim:pii] the customer's card?", false); s.Status != http.StatusOK || s.Model != DemoCandidate {
		t.Fatalf("leak: HTTP %d from %s", s.Status, s.Model)
	}
	inc := waitNewIncident(t, sb, DemoCandidate, "pii", map[string]bool{})

	// Load on both gateways, from many users, until 2 s after the switch.
	var (
		mu       sync.Mutex
		shots    []shot
		deadline atomic.Int64 // unix nanos; 0 until the switch
		wg       sync.WaitGroup
	)
	for g, addr := range addrs {
		for worker := range 2 {
			wg.Go(func() {
				for i := 0; ; i++ {
					if d := deadline.Load(); d != 0 && time.Now().UnixNano() > d {
						return
					}
					start := time.Now()
					s := chatVia(t, addr, DemoPilotKey, "load-"+strconv.Itoa(worker)+"-"+strconv.Itoa(i%40), "hello", false)
					mu.Lock()
					shots = append(shots, shot{gateway: g, start: start, status: s.Status, model: s.Model})
					mu.Unlock()
				}
			})
		}
	}
	testutil.WaitFor(t, 10*time.Second, "both gateways serve the candidate before the switch", func() bool {
		mu.Lock()
		defer mu.Unlock()
		var cand [2]bool
		for _, s := range shots {
			cand[s.gateway] = cand[s.gateway] || s.model == DemoCandidate
		}
		return cand[0] && cand[1]
	})
	asked := time.Now()
	review(t, sb, inc.ID, "confirmed", "critical", "rita", "a card number")
	switched := time.Now() // the confirmation is committed: the switch
	deadline.Store(switched.Add(2 * time.Second).UnixNano())
	wg.Wait()

	cutoff := switched.Add(time.Second)
	var after [2]int
	var lastCandidate time.Time
	for _, s := range shots {
		if s.model == DemoCandidate && s.start.After(lastCandidate) {
			lastCandidate = s.start
		}
		if !s.start.After(cutoff) {
			continue
		}
		after[s.gateway]++
		if s.status != http.StatusOK || s.model != DemoBaseline {
			t.Errorf("gateway %d: request started %s after the switch: HTTP %d from %s", s.gateway+1, s.start.Sub(switched), s.status, s.model)
		}
	}
	if after[0] < 5 || after[1] < 5 {
		t.Fatalf("too few requests after the switch + 1 s to judge: %v", after)
	}
	t.Logf("%d requests; the review took %s; the last request the candidate served started %s after the confirmation; %v after the cutoff",
		len(shots), switched.Sub(asked), lastCandidate.Sub(switched), after)

	st := rolloutStatus(t, sb)
	if st.Rollout.Status != deploy.StatusAborted || !strings.Contains(st.Rollout.Message, "kill switch: 1 confirmed critical incident(s) of demo-candidate") {
		t.Fatalf("after the kill switch: %s: %s", st.Rollout.Status, st.Rollout.Message)
	}
	if p, _ := second.assigner.Plan(DemoTrial); p.Stage != deploy.StageAborted || p.CandidateWeight != 0 {
		t.Fatalf("second gateway's plan %+v", p)
	}
}
