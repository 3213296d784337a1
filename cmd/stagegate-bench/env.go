package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
)

// The fixed answer of both simulators and the delay of the slow one.
const (
	fixedAnswer = "The central library is open from ten to four on public holidays; the reading room stays closed."
	slowDelay   = time.Second
	// Logical models of the generated trials; the simulators echo any name.
	modelFast = "bench"
	modelSlow = "bench-slow"
	// users is how many distinct end users the requests rotate through.
	users = 1024
)

// The cases, in the order each round runs them.
const (
	caseDirect = iota
	caseProxy
	caseGateway
	caseSplit
	numCases
)

var caseNames = [numCases]string{"a direct", "b proxy", "c stagegate", "d stagegate + monitor proc"}

// env is every process under test, started once and shared by all rounds.
type env struct {
	dir        string
	bin, self  string
	adminToken string
	log        io.Writer

	mu    sync.Mutex
	procs []*proc

	simFast, simSlow, proxyFast, proxySlow, gwC, gwD, monD *proc
	adminC, adminD                                         string // admin API base URLs
	natsD                                                  string
	targets                                                [numCases][2]*target // [case][slow]
	chk                                                    *checker
	bodies                                                 [2]bodies // [slow]
	nc                                                     *nats.Conn
	interactions                                           jetstream.Consumer
}

var (
	reSimReady   = regexp.MustCompile(`simulator listening on (http://\S+)`)
	reProxyReady = regexp.MustCompile(`proxy listening on (http://\S+)`)
	reGateway    = regexp.MustCompile(`gateway:\s+(http://\S+)/v1`)
	reAdmin      = regexp.MustCompile(`admin API:\s+(http://\S+)`)
	reMonitor    = regexp.MustCompile(`monitor running`)
)

const readyTimeout = 60 * time.Second

func (e *env) start(name, bin string, args ...string) (*proc, error) {
	p, err := startProc(name, bin, args, nil)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// startEnv starts the simulators, the proxies, both gateways and the monitor
// process, and checks one answer through every target.
func startEnv(ctx context.Context, dir, bin, self string, log io.Writer, dupWindow time.Duration) (_ *env, err error) {
	e := &env{dir: dir, bin: bin, self: self, log: log, chk: &checker{answer: fixedAnswer}}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	e.adminToken = "sg-bench-admin-" + hex.EncodeToString(tok[:])

	urls := map[*proc]string{}
	var simArgs = func(delay time.Duration) []string {
		return []string{"sim", "--addr", "127.0.0.1:0", "--model", "sim", "--answer", fixedAnswer, "--delay", delay.String()}
	}
	if e.simFast, err = e.start("simulator", bin, simArgs(0)...); err != nil {
		return nil, err
	}
	if e.simSlow, err = e.start("simulator (1 s)", bin, simArgs(slowDelay)...); err != nil {
		return nil, err
	}
	for _, p := range []*proc{e.simFast, e.simSlow} {
		m, err := p.waitLine(reSimReady, readyTimeout)
		if err != nil {
			return nil, err
		}
		urls[p] = strings.TrimSuffix(m[1], "/v1")
	}
	if err := e.calibrate(ctx, urls[e.simFast]); err != nil {
		return nil, err
	}
	if e.proxyFast, err = e.start("proxy", self, "proxy", "--listen", "127.0.0.1:0", "--target", urls[e.simFast]); err != nil {
		return nil, err
	}
	if e.proxySlow, err = e.start("proxy (1 s)", self, "proxy", "--listen", "127.0.0.1:0", "--target", urls[e.simSlow]); err != nil {
		return nil, err
	}
	for _, p := range []*proc{e.proxyFast, e.proxySlow} {
		m, err := p.waitLine(reProxyReady, readyTimeout)
		if err != nil {
			return nil, err
		}
		urls[p] = m[1]
	}

	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	e.natsD = "nats://127.0.0.1:" + strconv.Itoa(natsPort)
	keys := [2]string{"sg-bench-fast-" + hex.EncodeToString(tok[:4]), "sg-bench-slow-" + hex.EncodeToString(tok[4:8])}
	gw := map[*proc]string{}
	for _, g := range []struct {
		name string
		p    **proc
		dir  string
		nats string
	}{{"stagegate (c)", &e.gwC, "c", ""}, {"stagegate (d)", &e.gwD, "d", "127.0.0.1:" + strconv.Itoa(natsPort)}} {
		cfgPath := filepath.Join(dir, g.dir+".yaml")
		if err := os.WriteFile(cfgPath, []byte(gatewayConfig(filepath.Join(dir, g.dir), g.nats, e.adminToken, keys, urls[e.simFast], urls[e.simSlow], dupWindow)), 0o600); err != nil {
			return nil, err
		}
		if *g.p, err = e.start(g.name, bin, "up", "--config", cfgPath, "--log-level", "warn"); err != nil {
			return nil, err
		}
	}
	for _, g := range []struct {
		p     *proc
		admin *string
	}{{e.gwC, &e.adminC}, {e.gwD, &e.adminD}} {
		m, err := g.p.waitLine(reGateway, readyTimeout)
		if err != nil {
			return nil, err
		}
		gw[g.p] = m[1] + "/v1/chat/completions"
		a, err := g.p.waitLine(reAdmin, readyTimeout)
		if err != nil {
			return nil, err
		}
		*g.admin = a[1]
	}
	if e.monD, err = e.start("monitor (d)", bin, "monitor", "--nats", e.natsD, "--db", filepath.Join(dir, "d-monitor", "stagegate.db"), "--workers", "4", "--log-level", "warn"); err != nil {
		return nil, err
	}
	if _, err := e.monD.waitLine(reMonitor, readyTimeout); err != nil {
		return nil, err
	}
	if err := e.connectNATS(ctx); err != nil {
		return nil, err
	}

	for slow, sim := range []*proc{e.simFast, e.simSlow} {
		proxy := []*proc{e.proxyFast, e.proxySlow}[slow]
		e.targets[caseDirect][slow] = &target{url: urls[sim] + "/v1/chat/completions", key: keys[slow], client: newClient()}
		e.targets[caseProxy][slow] = &target{url: urls[proxy] + "/v1/chat/completions", key: keys[slow], client: newClient()}
		e.targets[caseGateway][slow] = &target{url: gw[e.gwC], key: keys[slow], wantHeader: "X-Stagegate-Interaction", client: newClient()}
		e.targets[caseSplit][slow] = &target{url: gw[e.gwD], key: keys[slow], wantHeader: "X-Stagegate-Interaction", client: newClient()}
	}
	e.bodies = [2]bodies{makeBodies(modelFast, users), makeBodies(modelSlow, users)}

	// One checked answer, plain and streamed, through every target.
	var wg sync.WaitGroup
	errs := make([]error, 0, 16)
	var emu sync.Mutex
	for c := range numCases {
		for slow := range 2 {
			for _, stream := range []bool{false, true} {
				wg.Go(func() {
					t := e.targets[c][slow]
					rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					defer cancel()
					if _, _, err := t.do(rctx, e.bodies[slow].pick(stream, 0), stream, e.chk, time.Now()); err != nil {
						emu.Lock()
						errs = append(errs, fmt.Errorf("%s (slow=%v stream=%v): %w", caseNames[c], slow == 1, stream, err))
						emu.Unlock()
					}
				})
			}
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("smoke requests failed:\n%w", err)
	}
	return e, nil
}

// calibrate reads the simulator's fixed answer directly, plain and streamed; the
// stream's chunks become the reference every other answer is compared with.
func (e *env) calibrate(ctx context.Context, simURL string) error {
	t := &target{url: simURL + "/v1/chat/completions", key: "x", client: newClient()}
	b := makeBodies(modelFast, 1)
	if _, _, err := t.do(ctx, b.plain[0], false, e.chk, time.Now()); err != nil {
		return fmt.Errorf("simulator calibration: %w", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(string(b.stream[0])))
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("simulator calibration: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var deltas []string
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		var a chatAnswer
		if err := json.Unmarshal([]byte(d), &a); err != nil {
			return fmt.Errorf("simulator calibration: %w", err)
		}
		if len(a.Choices) == 1 && a.Choices[0].Delta != nil && a.Choices[0].Delta.Content != nil && *a.Choices[0].Delta.Content != "" {
			deltas = append(deltas, *a.Choices[0].Delta.Content)
		}
	}
	if strings.Join(deltas, "") != fixedAnswer || len(deltas) < 3 {
		return fmt.Errorf("simulator calibration: streamed chunks %q do not make the fixed answer", deltas)
	}
	e.chk.deltas = deltas
	return nil
}

// gatewayConfig is the generated configuration of a gateway under test: two
// trials (fast and 1 s answers), each routing half its users to a candidate and
// half to a baseline (both the same simulator), under the built-in demo policy.
func gatewayConfig(dataDir, natsListen, adminToken string, keys [2]string, fastURL, slowURL string, dupWindow time.Duration) string {
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	var b strings.Builder
	fmt.Fprintf(&b, "# generated by stagegate-bench\ndata_dir: %q\n", dataDir)
	b.WriteString("gateway: {addr: \"127.0.0.1:0\", upstream_timeout: 30s}\n")
	fmt.Fprintf(&b, "admin: {addr: \"127.0.0.1:0\", token_sha256: %q, pprof: true}\n", hash(adminToken))
	dup := ""
	if dupWindow > 0 {
		dup = fmt.Sprintf(", duplicate_window: %s", dupWindow)
	}
	if natsListen != "" {
		fmt.Fprintf(&b, "nats: {listen: %q, max_store_bytes: 8589934592%s}\nmonitors: {disabled: true}\n", natsListen, dup)
	} else {
		fmt.Fprintf(&b, "nats: {max_store_bytes: 8589934592%s}\nmonitors: {workers: 4}\n", dup)
	}
	b.WriteString("models:\n")
	for _, m := range []struct{ name, url string }{{"fast-candidate", fastURL}, {"fast-baseline", fastURL}, {"slow-candidate", slowURL}, {"slow-baseline", slowURL}} {
		fmt.Fprintf(&b, "  - {name: %s, base_url: %q}\n", m.name, m.url+"/v1")
	}
	b.WriteString("trials:\n")
	for _, t := range []struct{ id, prefix string }{{modelFast, "fast"}, {modelSlow, "slow"}} {
		fmt.Fprintf(&b, "  - id: %s\n    logical_model: %s\n    candidate: %s-candidate\n    baseline: %s-baseline\n", t.id, t.id, t.prefix, t.prefix)
		b.WriteString("    candidate_percent: 50\n    policy: builtin:demo\n    fail_mode: closed\n")
		b.WriteString("    topics: {weapons: [build a bomb, make a weapon, 制造炸弹], medical_dosing: [insulin dose, overdose, dosage, 剂量]}\n")
	}
	b.WriteString("keys:\n")
	for i, t := range []string{modelFast, modelSlow} {
		fmt.Fprintf(&b, "  - {name: bench-%d, sha256: %q, trial: %s, tenant: bench-tenant, cohort: pilot}\n", i, hash(keys[i]), t)
	}
	return b.String()
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// connectNATS watches the consumer of the separate monitor process in (d).
func (e *env) connectNATS(ctx context.Context) error {
	nc, err := nats.Connect(e.natsD, nats.Name("stagegate-bench"))
	if err != nil {
		return fmt.Errorf("nats %s: %w", e.natsD, err)
	}
	e.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, events.StreamInteractions, "monitors")
	if err != nil {
		return fmt.Errorf("monitor consumer: %w", err)
	}
	e.interactions = cons
	return nil
}

// serverProc returns the processes whose CPU and memory a case is charged: the server
// itself, and for (d) the monitor process separately.
func (e *env) serverProc(c int, slow bool) (main, monitor *proc) {
	s := 0
	if slow {
		s = 1
	}
	switch c {
	case caseDirect:
		return []*proc{e.simFast, e.simSlow}[s], nil
	case caseProxy:
		return []*proc{e.proxyFast, e.proxySlow}[s], nil
	case caseGateway:
		return e.gwC, nil
	default:
		return e.gwD, e.monD
	}
}

// metrics reads the Prometheus counters of a gateway's admin API.
func metrics(ctx context.Context, admin string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "stagegate_") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// drain waits until every interaction a gateway answered is published and
// processed by its monitors, so the next window starts quiet and this one's
// CPU includes the monitoring of its requests. It returns the publish losses.
func (e *env) drain(ctx context.Context, c int, timeout time.Duration) (lost float64, err error) {
	if c != caseGateway && c != caseSplit {
		return 0, nil
	}
	admin := e.adminC
	if c == caseSplit {
		admin = e.adminD
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		m, err := metrics(ctx, admin)
		if err == nil {
			lost = m["stagegate_publish_dropped_total"] + m["stagegate_publish_failures_total"]
			req, pub := m["stagegate_gateway_requests_total"], m["stagegate_publish_published_total"]
			if pub+lost >= req {
				if c == caseGateway && m["stagegate_monitor_processed_total"] >= pub {
					return lost, nil
				}
				if c == caseSplit {
					info, ierr := e.interactions.Info(ctx)
					if ierr == nil && info.NumPending == 0 && info.NumAckPending == 0 {
						return lost, nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return lost, fmt.Errorf("%s: monitors did not catch up within %s", caseNames[c], timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop ends every process, newest first.
func (e *env) stop() {
	if e.nc != nil {
		e.nc.Close()
	}
	for _, c := range e.targets {
		for _, t := range c {
			if t != nil {
				t.client.CloseIdleConnections()
			}
		}
	}
	e.mu.Lock()
	procs := e.procs
	e.procs = nil
	e.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(40 * time.Second); err != nil {
			fmt.Fprintf(e.log, "warning: %v\n", err)
		} else if tail := procs[i].stderrTail(); tail != "" {
			fmt.Fprintf(e.log, "%s wrote to stderr:\n%s\n", procs[i].name, tail)
		}
	}
}

// buildStagegate compiles the stagegate binary into dir.
func buildStagegate(ctx context.Context, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go on PATH to build stagegate (or pass --stagegate): %w", err)
	}
	out := filepath.Join(dir, "stagegate")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/stagegate/stagegate/cmd/stagegate")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build stagegate: %w: %s", err, b)
	}
	return out, nil
}
