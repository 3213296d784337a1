//go:build cluster

package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/pgtest"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/sandbox"
)

// Timing of the run.
const (
	loadFor       = 15 * time.Second
	killNATSAt    = 3 * time.Second
	killMonitorAt = 6 * time.Second
	killLeaderAt  = 9 * time.Second
	leaseTTL      = 3 * time.Second
	// takeoverWithin: the lease TTL, one acquire interval, and room for a
	// JetStream leader election on the cluster that just lost a node.
	takeoverWithin = leaseTTL + leaseTTL/3 + 4*time.Second
	// settleWithin: a killed monitor's unacknowledged messages come back after
	// the consumer's ack wait (30 s).
	settleWithin = 90 * time.Second
	// requestEvery paces each load worker.
	requestEvery = 40 * time.Millisecond
	loadWorkers  = 3 // per gateway
)

// shot is one request of the load.
type shot struct {
	gateway     int
	status      int
	interaction string
	model       string
	pii         bool
}

// TestCluster: a 3-node NATS cluster and two gateways, two monitors, two
// controllers and a console as separate processes on PostgreSQL. Load goes
// through both gateways while one NATS node, one monitor and the leading
// controller are killed (SIGKILL). Then: no request failed, every answered
// interaction is in the store and in the stream exactly once, every leak has
// exactly one incident, the other controller took over, and a reviewer's
// confirmation in the console switches both gateways to the baseline within 1 s.
func TestCluster(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	stagegateBin, natsnodeBin := buildBinaries(t, dir)

	// NATS: three nodes, each routed to the other two.
	cport := freePorts(t, 3)
	var nodes []*proc
	var urls []string
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", cport[j]))
			}
		}
		n := startProc(t, dir, fmt.Sprintf("nats-%d", i+1), natsnodeBin, "--name", fmt.Sprintf("n%d", i+1),
			"--cluster", fmt.Sprintf("127.0.0.1:%d", cport[i]), "--routes", strings.Join(routes, ","),
			"--store-dir", filepath.Join(dir, fmt.Sprintf("js-%d", i+1)))
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		urls = append(urls, "nats://"+field(n.waitLine(t, "ready", 30*time.Second), "ready"))
	}
	natsURL := strings.Join(urls, ",")
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	// The cluster elects its JetStream meta leader; then the streams exist with
	// 3 replicas before any role starts.
	testutil.WaitFor(t, time.Minute, "JetStream cluster ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return events.EnsureStreams(ctx, js, events.StreamOptions{Replicas: 3}) == nil
	})

	cfgPath := writeConfig(t, dir, natsURL, dsn)
	role := func(name, cmd string, extra ...string) *proc {
		args := append([]string{cmd, "--config", cfgPath, "--data-dir", filepath.Join(dir, name),
			"--admin-addr", "127.0.0.1:0", "--log-level", "warn"}, extra...)
		return startProc(t, dir, name, stagegateBin, args...)
	}
	gws := []*proc{
		role("gateway-1", "gateway", "--addr", "127.0.0.1:0"),
		role("gateway-2", "gateway", "--addr", "127.0.0.1:0"),
	}
	mons := []*proc{role("monitor-1", "monitor"), role("monitor-2", "monitor")}
	ctls := []*proc{
		role("controller-1", "controller", "--holder", "controller-1", "--lease-ttl", leaseTTL.String()),
		role("controller-2", "controller", "--holder", "controller-2", "--lease-ttl", leaseTTL.String()),
	}
	console := role("console", "console")
	var gwAddrs []string
	for _, g := range gws {
		gwAddrs = append(gwAddrs, field(g.waitLine(t, "running", time.Minute), "gateway"))
	}
	for _, p := range append(append(mons, ctls...), console) {
		p.waitLine(t, "running", time.Minute)
	}
	consoleAdmin := field(console.waitLine(t, "running", time.Second), "admin")

	// Streams and buckets are replicated on the cluster.
	for _, name := range []string{events.StreamInteractions, events.StreamFindings, "KV_" + events.BucketRollouts, "KV_" + deploy.BucketLeaders} {
		st, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, info.Config.Replicas)
		}
	}

	// A 50% canary, applied through the console.
	plan := "trial: demo\ncandidate: demo-candidate\nbaseline: demo-baseline\nsteps:\n  - canary: {weight: 50}\n  - pause:\n"
	if code, body := post(t, consoleAdmin, "/api/v1/rollouts", map[string]string{"plan": plan, "actor": "cluster-test"}); code != http.StatusOK {
		t.Fatalf("apply rollout: HTTP %d %s", code, body)
	}
	// Every request is recorded: its interaction must reach the store.
	var (
		mu    sync.Mutex
		shots []shot
	)
	record := func(s shot) {
		mu.Lock()
		shots = append(shots, s)
		mu.Unlock()
	}
	testutil.WaitFor(t, 10*time.Second, "both gateways serve the canary", func() bool {
		for _, a := range gwAddrs {
			s := chat(a, "probe", "hello")
			if s.status != -1 {
				record(s)
			}
			if s.status != http.StatusOK || s.model == "" {
				return false
			}
		}
		return true
	})

	// Load through both gateways; kill a NATS node, a monitor and the leader.
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g, addr := range gwAddrs {
		for w := range loadWorkers {
			wg.Go(func() {
				tick := time.NewTicker(requestEvery)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					user := fmt.Sprintf("u-%d-%d-%d", g, w, i%25)
					content, pii := "hello", i%5 == 0
					if pii {
						content = "[sim:pii] who is on call?"
					}
					s := chat(addr, user, content)
					s.gateway, s.pii = g, pii
					record(s)
				}
			})
		}
	}
	began := time.Now()
	at := func(d time.Duration) { <-time.After(time.Until(began.Add(d))) } // the schedule of the kills

	at(killNATSAt)
	nodes[2].kill(t)
	t.Logf("%s: killed NATS node n3", time.Since(began).Round(time.Millisecond))

	at(killMonitorAt)
	mons[0].kill(t)
	t.Logf("%s: killed monitor-1", time.Since(began).Round(time.Millisecond))

	at(killLeaderAt)
	// The lease may be between holders for a moment after the NATS node went
	// (a leader that could not renew steps down before the other acquires).
	var leader string
	testutil.WaitFor(t, takeoverWithin, "a controller holds the lease", func() bool {
		leader = holder(t, js)
		return leader != ""
	})
	var survivor string
	switch leader {
	case "controller-1":
		ctls[0].kill(t)
		survivor = "controller-2"
	case "controller-2":
		ctls[1].kill(t)
		survivor = "controller-1"
	default:
		t.Fatalf("no controller leads (lease holder %q)", leader)
	}
	killed := time.Now()
	t.Logf("%s: killed the leader %s", time.Since(began).Round(time.Millisecond), leader)
	testutil.WaitFor(t, takeoverWithin, survivor+" takes over the lease", func() bool { return holder(t, js) == survivor })
	t.Logf("controller failover: %s leads %s after %s died", survivor, time.Since(killed).Round(time.Millisecond), leader)

	at(loadFor)
	stopLoad()
	wg.Wait()

	// The kill switch: a reviewer confirms a critical leak of the candidate.
	user := ""
	for i := 0; user == "" && i < 200; i++ {
		u := "ks-" + strconv.Itoa(i)
		s := chat(gwAddrs[0], u, "hello")
		record(s)
		if s.model == sandbox.DemoCandidate {
			user = u
		}
	}
	if user == "" {
		t.Fatal("no user on the candidate")
	}
	leak := chat(gwAddrs[0], user, "[sim:pii] the customer's card?")
	leak.pii = true
	record(leak)
	if leak.status != http.StatusOK || leak.model != sandbox.DemoCandidate {
		t.Fatalf("leak: HTTP %d from %s", leak.status, leak.model)
	}
	incID := incidents.IncidentID(leak.interaction)
	testutil.WaitFor(t, settleWithin, "the leak's incident", func() bool {
		code, _ := get(consoleAdmin, "/api/v1/incidents/"+incID)
		return code == http.StatusOK
	})
	for _, a := range gwAddrs {
		if s := chat(a, user, "hello"); s.model != sandbox.DemoCandidate {
			t.Fatalf("before the switch %s serves %s to %s", a, s.model, user)
		} else {
			record(s)
		}
	}
	confirmed := time.Now()
	if code, body := post(t, consoleAdmin, "/api/v1/incidents/"+incID+"/review",
		map[string]string{"status": "confirmed", "severity": "critical", "actor": "rita", "reason": "a card number"}); code != http.StatusOK {
		t.Fatalf("review: HTTP %d %s", code, body)
	}
	switched := make([]time.Duration, len(gwAddrs))
	for i, a := range gwAddrs {
		testutil.WaitFor(t, 5*time.Second, "gateway "+strconv.Itoa(i+1)+" serves the baseline", func() bool {
			s := chat(a, user, "hello")
			record(s)
			return s.model == sandbox.DemoBaseline
		})
		switched[i] = time.Since(confirmed)
	}
	t.Logf("kill switch: gateways on the baseline %v after the confirmation", switched)
	for i, d := range switched {
		if d > time.Second {
			t.Errorf("kill switch reached gateway %d after %s, want within 1s", i+1, d)
		}
	}

	// Nothing lost, nothing twice.
	mu.Lock()
	all := append([]shot(nil), shots...)
	mu.Unlock()
	answered, leaks, failed := map[string]bool{}, map[string]bool{}, 0
	for _, s := range all {
		if s.status != http.StatusOK || s.interaction == "" {
			failed++
			continue
		}
		answered[s.interaction] = true
		if s.pii {
			leaks[s.interaction] = true
		}
	}
	t.Logf("%d requests: %d answered (%d leaks), %d failed", len(all), len(answered), len(leaks), failed)
	if failed > 0 {
		t.Errorf("%d requests failed while a NATS node, a monitor and the leader died", failed)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored map[string]bool
	var incidentsOf map[string]int
	testutil.WaitFor(t, settleWithin, "every answered interaction stored and every leak an incident", func() bool {
		stored = ids(t, conn, `SELECT id FROM interactions`)
		incidentsOf = counts(t, conn, `SELECT interaction_id, COUNT(*) FROM incidents GROUP BY interaction_id`)
		for id := range answered {
			if !stored[id] {
				return false
			}
		}
		for id := range leaks {
			if incidentsOf[id] == 0 {
				return false
			}
		}
		return true
	})
	for id, n := range incidentsOf {
		if n != 1 {
			t.Errorf("interaction %s has %d incidents", id, n)
		}
		if !leaks[id] {
			t.Errorf("incident for interaction %s, which leaked nothing", id)
		}
	}
	var findings, distinct int
	if err := conn.QueryRow(context.Background(), `SELECT COUNT(*), COUNT(DISTINCT id) FROM findings`).Scan(&findings, &distinct); err != nil {
		t.Fatal(err)
	}
	if findings != distinct {
		t.Errorf("%d findings rows, %d distinct", findings, distinct)
	}
	st, err := js.Stream(context.Background(), events.StreamInteractions)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Every request, answered or refused, publishes its interaction once.
	if int(info.State.Msgs) != len(answered)+failed {
		t.Errorf("INTERACTIONS holds %d messages, want %d (one per request)", info.State.Msgs, len(answered)+failed)
	}
	t.Logf("store: %d interactions, %d incidents; stream: %d messages on %d replicas", len(stored), len(incidentsOf), info.State.Msgs, info.Config.Replicas)
	for _, p := range []*proc{gws[0], gws[1], mons[1], console} {
		if !p.alive() {
			t.Errorf("%s died during the run", p.name)
		}
	}
}

// writeConfig writes the demo trial as a configuration file for the cluster:
// fail-open (an outage never fails a request), replicas 3, PostgreSQL, one
// secret for both gateways.
func writeConfig(t *testing.T, dir, natsURL, dsn string) string {
	t.Helper()
	cfg := sandbox.Demo()
	cfg.Trials[0].FailMode = policies.FailOpen
	cfg.NATS.URL, cfg.NATS.Replicas = natsURL, 3
	cfg.DB, cfg.SecretFile = dsn, filepath.Join(dir, "secret")
	cfg.Gateway.UpstreamTimeout = 10 * time.Second
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "stagegate.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.Load(path); err != nil {
		t.Fatalf("the generated configuration does not load: %v", err)
	}
	return path
}

var client = &http.Client{Timeout: 15 * time.Second}

// chat sends one chat request as user to a gateway.
func chat(addr, user, content string) shot {
	b, _ := json.Marshal(map[string]any{"model": sandbox.DemoTrial, "user": user,
		"messages": []map[string]string{{"role": "user", "content": content}}})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+sandbox.DemoPilotKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return shot{status: -1}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return shot{status: resp.StatusCode, interaction: resp.Header.Get(gateway.HeaderInteraction), model: resp.Header.Get(gateway.HeaderModel)}
}

// post sends JSON to an admin API with the demo admin token.
func post(t *testing.T, addr, path string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+sandbox.DemoAdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// get reads an admin API path with the demo admin token.
func get(addr, path string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+sandbox.DemoAdminKey)
	resp, err := client.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// holder is the controller lease's holder.
func holder(t *testing.T, js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h, err := deploy.LeaseHolder(ctx, js, deploy.LeaseController)
	if err != nil {
		return ""
	}
	return h
}

func ids(t *testing.T, conn *pgx.Conn, q string) map[string]bool {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	return out
}

func counts(t *testing.T, conn *pgx.Conn, q string) map[string]int {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	return out
}
