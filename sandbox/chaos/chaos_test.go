//go:build chaos

package chaos

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
)

var (
	flagBin    = flag.String("chaos.bin", "", "a built stagegate binary (default: build cmd/stagegate)")
	flagReport = flag.String("chaos.report", "../../CHAOS.md", "where the report is written")
	flagRate   = flag.Int("chaos.rate", 200, "client requests per second")
	flagScale  = flag.Float64("chaos.scale", 1, "multiplies every phase's duration (e.g. 0.3 for a quick try)")
	flagKeep   = flag.Bool("chaos.keep", false, "keep the run's folder (logs, data) even when it passes")
)

// phaseLog is one phase as it ran.
type phaseLog struct {
	Name, What string
	Start, End time.Duration // since the load started
	Notes      []string
}

// run is the whole chaos run's state.
type run struct {
	t       *testing.T
	dir     string
	start   time.Time
	nats    *natsServer
	cand    *candidate
	gw, mon *proc
	ld      *loader
	admin   string // http://127.0.0.1:port
	token   string
	phases  []*phaseLog
	obs     observations
}

// observations are the facts the report states beyond the client's counts.
type observations struct {
	SpoolRecordsAtNATSDownEnd float64
	SpooledBeforeKill         float64
	SpoolRecordsBeforeKill    float64
	LostBeforeKill            float64
	GatewayDowntime           time.Duration
	ReplayedAfterRestart      float64
	FinalMetrics              map[string]float64
	CircuitOpenSeen           map[string]bool    // per candidate phase
	FallbacksDuring           map[string]float64 // per candidate phase
	RefusedByOpenCircuit      int
	CandidateCalls            map[string]uint64
	MonitorKilledAt           time.Duration
	MonitorRestartedAt        time.Duration
	DrainTime                 time.Duration
	MonitorCatchUp            time.Duration
	LoaderSkipped             uint64
}

// breakerRecovery outlasts the breaker's default cooldown (10 s) at any scale.
const breakerRecovery = 12 * time.Second

func scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * *flagScale) }

func (r *run) since() time.Duration { return time.Since(r.start).Round(10 * time.Millisecond) }

func (r *run) phase(ctx context.Context, name, what string, d time.Duration, during func()) *phaseLog {
	p := &phaseLog{Name: name, What: what, Start: r.since()}
	r.phases = append(r.phases, p)
	r.ld.setPhase(name)
	r.t.Logf("%8s  phase %s: %s", p.Start, name, what)
	end := time.Now().Add(d)
	if during != nil {
		during()
	}
	ctxSleep(ctx, time.Until(end))
	p.End = r.since()
	return p
}

func (p *phaseLog) note(format string, a ...any) {
	p.Notes = append(p.Notes, fmt.Sprintf(format, a...))
}

// readyDetails returns the gateway's /readyz details.publish.
func (r *run) readyDetails() (map[string]float64, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(r.admin + "/readyz")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Details struct {
			Publish map[string]any `json:"publish"`
		} `json:"details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for k, v := range body.Details.Publish {
		switch x := v.(type) {
		case float64:
			out[k] = x
		case bool:
			if x {
				out[k] = 1
			} else {
				out[k] = 0
			}
		}
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestChaos(t *testing.T) {
	dir, err := os.MkdirTemp("", "stagegate-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run folder: %s", dir)
	defer func() {
		if !t.Failed() && !*flagKeep {
			_ = os.RemoveAll(dir)
		}
	}()
	bin := buildBinary(t, *flagBin, dir)
	r := &run{t: t, dir: dir, token: "chaos-admin-" + randomHex(12)}
	r.obs.CircuitOpenSeen, r.obs.FallbacksDuring = map[string]bool{}, map[string]float64{}

	r.nats = &natsServer{dir: filepath.Join(dir, "nats"), port: freePort(t)}
	r.nats.start(t)
	defer r.nats.stop()
	r.cand = startCandidate(t)
	gwPort, adminPort := freePort(t), freePort(t)
	key := "sg_live_chaos" + randomHex(16)
	sum := sha256.Sum256([]byte(key))
	cfgPath := filepath.Join(dir, "stagegate.yaml")
	cfg := fmt.Sprintf(configTemplate, filepath.Join(dir, "gateway"), gwPort, adminPort, r.nats.url(), r.cand.url, hex.EncodeToString(sum[:]))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.admin = "http://127.0.0.1:" + strconv.Itoa(adminPort)
	r.gw = &proc{name: "gateway", bin: bin, args: []string{"up", "--config", cfgPath, "--log-format", "json"},
		env: []string{"STAGEGATE_CHAOS_ADMIN=" + r.token}, logPath: filepath.Join(dir, "gateway.log")}
	r.mon = &proc{name: "monitor", bin: bin, logPath: filepath.Join(dir, "monitor.log"),
		args: []string{"monitor", "--nats", r.nats.url(), "--db", filepath.Join(dir, "monitor", "incidents.db"), "--workers", "4"}}
	r.gw.start(t)
	defer r.gw.stop(30 * time.Second)
	if err := waitHTTP(r.admin+"/healthz", 60*time.Second); err != nil {
		t.Fatalf("gateway: %v (log %s)", err, r.gw.logPath)
	}
	r.mon.start(t)
	defer r.mon.stop(30 * time.Second)

	r.ld = newLoader("http://127.0.0.1:"+strconv.Itoa(gwPort), key, *flagRate)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loadDone := make(chan struct{})
	r.start = time.Now()
	go func() { r.ld.run(ctx); close(loadDone) }()

	r.schedule(ctx)

	cancel()
	<-loadDone
	r.obs.LoaderSkipped = r.ld.skipped.Load()
	r.t.Logf("%8s  load stopped: %d requests", r.since(), len(r.ld.snapshot()))
	r.verify()
}

// schedule runs the phases in order.
func (r *run) schedule(ctx context.Context) {
	t := r.t
	r.phase(ctx, "steady", "NATS, gateway, monitor and candidate healthy", scaled(20*time.Second), nil)

	p := r.phase(ctx, "nats-down", "NATS stopped for 30 s (trial fails open): the gateway spools", scaled(30*time.Second), func() { r.nats.stop() })
	if d, err := r.readyDetails(); err == nil {
		r.obs.SpoolRecordsAtNATSDownEnd = d["spool_records"]
		p.note("spool records at the end of the outage: %.0f", d["spool_records"])
	}
	r.nats.start(t)

	p = r.phase(ctx, "nats-back", "NATS restarted on the same port and store: the spool is replayed", scaled(15*time.Second), nil)
	p.note("NATS back at %s", p.Start)

	p = r.phase(ctx, "monitor-kill", "the monitor process SIGKILLed mid-stream, restarted 5 s later", scaled(15*time.Second), func() {
		r.mon.kill()
		r.obs.MonitorKilledAt = r.since()
		go func() {
			ctxSleep(ctx, scaled(5*time.Second))
			r.mon.start(t)
			r.obs.MonitorRestartedAt = r.since()
		}()
	})
	p.note("monitor killed at %s", r.obs.MonitorKilledAt)

	p = r.phase(ctx, "gateway-kill", "NATS stopped again, then the gateway SIGKILLed with a spool on disk", scaled(10*time.Second), func() { r.nats.stop() })
	if m, err := r.readyDetails(); err == nil {
		r.obs.SpoolRecordsBeforeKill, r.obs.LostBeforeKill = m["spool_records"], m["lost"]
		p.note("spool records on disk at the kill: %.0f; lost so far: %.0f", m["spool_records"], m["lost"])
	}
	down := r.since()
	r.ld.setPhase("gateway-down")
	r.gw.kill()
	r.nats.start(t)
	r.gw.start(t)
	if err := waitHTTP(r.admin+"/healthz", 60*time.Second); err != nil {
		t.Fatalf("restarted gateway: %v", err)
	}
	r.obs.GatewayDowntime = r.since() - down
	r.phases = append(r.phases, &phaseLog{Name: "gateway-down", What: "SIGKILL until the restarted process answers (NATS restarted meanwhile)", Start: down, End: r.since()})

	p = r.phase(ctx, "gateway-restarted", "the new gateway process replays the dead one's spool", scaled(10*time.Second), nil)
	if m, err := metrics(r.admin + "/metrics"); err == nil {
		r.obs.ReplayedAfterRestart = m["stagegate_publish_replayed_total"]
		p.note("replayed by the new process so far: %.0f", r.obs.ReplayedAfterRestart)
	}

	// The breaker stays open 10 s (its default cooldown) after a fault phase:
	// a healthy period after each lets the next fault meet a closed circuit.
	for _, c := range []struct {
		mode       int32
		name, what string
		recover    bool
	}{
		{modeCut, "candidate-cut", "the candidate cuts every stream after its first chunk", false},
		{mode500, "candidate-500", "the candidate answers every call with 500", true},
		{modeHang, "candidate-hang", "the candidate accepts calls and never answers (model timeout 2 s)", false},
	} {
		before, _ := metrics(r.admin + "/metrics")
		r.cand.mode.Store(c.mode)
		stop := make(chan struct{})
		sampled := make(chan bool)
		go func() { sampled <- r.sampleBreaker(stop) }()
		p := r.phase(ctx, c.name, c.what, scaled(15*time.Second), nil)
		close(stop)
		r.obs.CircuitOpenSeen[c.name] = <-sampled
		after, _ := metrics(r.admin + "/metrics")
		r.obs.FallbacksDuring[c.name] = after["stagegate_gateway_fallbacks_total"] - before["stagegate_gateway_fallbacks_total"]
		p.note("circuit breaker of the candidate seen open: %v; fallbacks to the baseline: %.0f", r.obs.CircuitOpenSeen[c.name], r.obs.FallbacksDuring[c.name])
		if c.recover {
			r.cand.mode.Store(modeOK)
			r.phase(ctx, c.name+"-recovered", "the candidate healthy: after the breaker's cooldown its probe closes it", breakerRecovery, nil)
		}
	}
	r.cand.mode.Store(modeOK)
	r.phase(ctx, "recovered", "the candidate healthy again: the breaker's probe closes it", breakerRecovery, nil)
	r.obs.CandidateCalls = map[string]uint64{}
	for m, name := range modeNames {
		r.obs.CandidateCalls[name] = r.cand.calls[m].Load()
	}
}

// sampleBreaker reports whether the candidate's circuit was seen open before stop.
func (r *run) sampleBreaker(stop chan struct{}) bool {
	seen := false
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return seen
		case <-tick.C:
		}
		m, err := metrics(r.admin + "/metrics")
		if err != nil {
			continue
		}
		for k, v := range m {
			if strings.HasPrefix(k, "stagegate_gateway_circuit_open") && strings.Contains(k, `model="chaos-candidate"`) && v > 0 {
				seen = true
			}
		}
	}
}

// verify waits for the gateway to drain and the monitor to catch up, stops
// both gracefully, reads the streams and the store, and writes the report.
func (r *run) verify() {
	t := r.t
	drainStart := time.Now()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d, err := r.readyDetails()
		if err == nil && d["spool_records"] == 0 && d["degraded"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the gateway's spool did not drain: %v %v", d, err)
			break
		}
		ctxSleep(context.Background(), 200*time.Millisecond)
	}
	r.obs.DrainTime = time.Since(drainStart).Round(10 * time.Millisecond)
	if m, err := metrics(r.admin + "/metrics"); err == nil {
		r.obs.FinalMetrics = m
	}
	var err error
	r.obs.RefusedByOpenCircuit, err = countLines(r.gw.logPath, "falling back to the baseline", "circuit open")
	if err != nil {
		t.Errorf("gateway log: %v", err)
	}

	nc, err := nats.Connect(r.nats.url(), nats.Name("chaos-verifier"))
	if err != nil {
		t.Fatalf("verifier: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	catchStart := time.Now()
	deadline = time.Now().Add(3 * time.Minute)
	for {
		ok, state := monitorCaughtUp(ctx, js)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the monitor did not catch up: %s", state)
			break
		}
		ctxSleep(ctx, 250*time.Millisecond)
	}
	r.obs.MonitorCatchUp = time.Since(catchStart).Round(10 * time.Millisecond)
	r.gw.stop(30 * time.Second)
	r.mon.stop(30 * time.Second)

	interactions, err := readStream(ctx, js, events.StreamInteractions, true)
	if err != nil {
		t.Fatalf("read INTERACTIONS: %v", err)
	}
	findings, err := readStream(ctx, js, events.StreamFindings, false)
	if err != nil {
		t.Fatalf("read FINDINGS: %v", err)
	}
	store, err := readStore(ctx, filepath.Join(r.dir, "monitor", "incidents.db"))
	if err != nil {
		t.Fatalf("read the monitor's store: %v", err)
	}
	rep := account(r.ld.snapshot(), interactions, findings, store)
	rep.obs, rep.phases = r.obs, r.phases
	rep.rate, rep.scale = *flagRate, *flagScale
	if err := os.WriteFile(*flagReport, []byte(rep.markdown()), 0o644); err != nil {
		t.Errorf("write %s: %v", *flagReport, err)
	}
	t.Logf("report written to %s", *flagReport)
	for _, f := range rep.failures() {
		t.Error(f)
	}
}

// configTemplate is the gateway's configuration: data dir, gateway port, admin
// port, NATS URL, candidate base URL, key hash.
const configTemplate = `data_dir: %s
gateway:
  addr: 127.0.0.1:%d
  upstream_timeout: 10s
  stream_keepalive: 5s
admin:
  addr: 127.0.0.1:%d
  token_env: STAGEGATE_CHAOS_ADMIN
nats:
  url: %s
monitors:
  disabled: true
simulators:
  - name: chaos-baseline
models:
  - name: chaos-candidate
    base_url: %s
    timeout: 2s
    connect_timeout: 1s
    first_token_timeout: 1s
trials:
  - id: chaos
    logical_model: chaos
    candidate: chaos-candidate
    baseline: chaos-baseline
    stage: canary
    candidate_percent: 50
    policy: builtin:demo
    fail_mode: open
    fallback: true
keys:
  - name: chaos-client
    sha256: %s
    trial: chaos
    tenant: chaos-tenant
    cohort: pilot
`
