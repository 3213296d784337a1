package sandbox

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/policies"
)

// secondGateway is another gateway instance, as a second `stagegate up` would run
// it against a shared NATS: its own connection over TCP, its own assigner kept
// current by its own rollout watcher, its own publisher, the same keys, models,
// policy and pseudonymisation secret.
type secondGateway struct {
	gw       *gateway.Gateway
	assigner *deploy.Assigner
}

func startSecondGateway(t *testing.T, sb *Sandbox) *secondGateway {
	t.Helper()
	ctx := context.Background()
	url := sb.NATSURL()
	if url == "" {
		t.Fatal("the first sandbox does not expose its NATS")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	tc := sb.cfg.Trials[0]
	assigner, err := deploy.NewAssigner([]deploy.Plan{{Trial: tc.ID, Candidate: tc.Candidate, Baseline: tc.Baseline, Stage: tc.Stage,
		CandidateWeight: int(tc.CandidatePercent * deploy.WeightScale / 100)}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := deploy.NewWatcher(deploy.WatcherDeps{JS: js, Assigner: assigner})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	pub, err := events.NewPublisher(events.PublisherConfig{Spool: events.SpoolConfig{Dir: t.TempDir()}}, events.PublisherDeps{JS: js})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Stop(context.Background()) })
	pfs, err := policyFS(tc.Policy)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policies.New(ctx, policies.Config{FS: pfs, Query: tc.Query})
	if err != nil {
		t.Fatal(err)
	}
	ext, err := policies.NewExtractor(policies.Topics(tc.Topics))
	if err != nil {
		t.Fatal(err)
	}
	byHash := map[string]gateway.Principal{}
	for _, k := range sb.cfg.Keys {
		byHash[k.SHA256] = gateway.Principal{KeyID: k.Name, Trial: k.Trial, Tenant: k.Tenant, Cohort: k.Cohort}
	}
	keys, err := gateway.NewKeys(byHash)
	if err != nil {
		t.Fatal(err)
	}
	ups := map[string]*gateway.Upstream{}
	for i, sc := range sb.cfg.Simulators {
		ups[sc.Name] = &gateway.Upstream{Name: sc.Name, BaseURL: sb.sims[i].URL()}
	}
	secret, err := loadSecret(filepath.Join(sb.cfg.DataDir, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Addr: "127.0.0.1:0", UpstreamTimeout: 2 * time.Second}, gateway.Deps{
		Keys: keys, Upstreams: ups, Assigner: assignerAdapter{assigner}, Publisher: pub, Pseudonymize: pseudonymizer(secret),
		Trials: map[string]*gateway.Trial{tc.ID: {ID: tc.ID, LogicalModel: tc.LogicalModel, FailMode: tc.FailMode, Fallback: tc.Fallback,
			Decider: eng, Extractor: ext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Stop(context.Background()) })
	return &secondGateway{gw: gw, assigner: assigner}
}

// shot is one request of the load: which gateway, when it started, who served it.
type shot struct {
	gateway int
	start   time.Time
	status  int
	model   string
}

// TestKillSwitchAcrossTwoGateways: while two gateway instances sharing one NATS
// serve a 50% canary, a reviewer confirms a critical incident of the candidate;
// every request started more than one second later, on either gateway, is
// served by the baseline.
func TestKillSwitchAcrossTwoGateways(t *testing.T) {
	sb := startRolloutSandbox(t, rolloutOptions{natsListen: "127.0.0.1:0"})
	second := startSecondGateway(t, sb)
	addrs := []string{sb.GatewayAddr(), second.gw.Addr()}

	plan := "trial: demo\ncandidate: demo-candidate\nbaseline: demo-baseline\nsteps:\n  - canary: {weight: 50}\n  - pause:\n"
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": plan, "actor": "acme-ops"}, nil); code != http.StatusOK {
		t.Fatalf("apply: HTTP %d", code)
	}
	testutil.WaitFor(t, 2*time.Second, "both gateways follow the rollout", func() bool {
		p1, _ := sb.assigner.Plan(DemoTrial)
		p2, _ := second.assigner.Plan(DemoTrial)
		return p1.Stage == deploy.StageCanary && p2.Stage == deploy.StageCanary && p1.Equal(p2)
	})

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
