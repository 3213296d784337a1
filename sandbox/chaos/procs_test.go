//go:build chaos

package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stagegate/stagegate/sandbox/sim"
)

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// natsServer is a JetStream server on a fixed loopback port and store dir, so
// it can be stopped and started again as the same server (INTEGRATION.md §1).
type natsServer struct {
	dir  string
	port int

	mu sync.Mutex
	ns *server.Server
}

func (n *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *natsServer) start(t *testing.T) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "chaos", Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir,
		JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 4 << 30, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats server not ready")
	}
	n.mu.Lock()
	n.ns = ns
	n.mu.Unlock()
}

func (n *natsServer) stop() {
	n.mu.Lock()
	ns := n.ns
	n.ns = nil
	n.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Candidate fault modes.
const (
	modeOK int32 = iota
	mode500
	modeHang
	modeCut
)

var modeNames = map[int32]string{modeOK: "ok", mode500: "500", modeHang: "hang", modeCut: "cut"}

// candidate is the model under trial: the simulator, unless a fault mode is set.
type candidate struct {
	srv   *http.Server
	url   string
	mode  atomic.Int32
	calls [4]atomic.Uint64 // per mode
}

func startCandidate(t *testing.T) *candidate {
	t.Helper()
	s, err := sim.New(sim.Config{Models: []string{"chaos-candidate"}})
	if err != nil {
		t.Fatal(err)
	}
	c := &candidate{}
	h := s.Handler()
	c.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := c.mode.Load()
		if r.Method == http.MethodPost {
			c.calls[m].Add(1)
		}
		switch m {
		case mode500:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":{"message":"chaos: internal error","type":"server_error","code":"chaos"}}`)
		case modeHang:
			<-r.Context().Done() // until the gateway gives up
		case modeCut:
			raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			var req struct{ Stream bool }
			_ = json.Unmarshal(raw, &req)
			if !req.Stream {
				r.Body = io.NopCloser(strings.NewReader(string(raw)))
				h.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"id\":\"chatcmpl-cut\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"The answer is\"}}]}\n\n")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection mid-stream
		default:
			h.ServeHTTP(w, r)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.url = "http://" + ln.Addr().String() + "/v1"
	go func() { _ = c.srv.Serve(ln) }()
	t.Cleanup(func() { _ = c.srv.Close() })
	return c
}

// proc is a stagegate child process with its output in a log file.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.runs++
	p.mu.Unlock()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

// stop sends SIGTERM (a graceful stop) and waits, killing it after timeout.
func (p *proc) stop(timeout time.Duration) {
	if !p.signal(syscall.SIGTERM, timeout) {
		p.kill()
	}
}

func (p *proc) signal(sig syscall.Signal, timeout time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		return true
	case <-time.After(timeout):
		return false
	}
}

// waitHTTP polls url until it answers 200 or the deadline passes.
func waitHTTP(url string, deadline time.Duration) error {
	end := time.Now().Add(deadline)
	client := &http.Client{Timeout: time.Second}
	wait := 20 * time.Millisecond
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s not answering 200 within %s (last error %v)", url, deadline, err)
		}
		time.Sleep(wait) // polling a child process's port: there is nothing to wait on in-process
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// buildBinary builds cmd/stagegate into dir unless bin names a built one.
func buildBinary(t *testing.T, bin, dir string) string {
	t.Helper()
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("-chaos.bin: %v", err)
		}
		return bin
	}
	out := filepath.Join(dir, "stagegate")
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", out, "../../cmd/stagegate")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build stagegate: %v\n%s", err, msg)
	}
	return out
}

// metrics scrapes a Prometheus text page into name{labels} -> value.
func metrics(url string) (map[string]float64, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[simplifyMetric(line[:i])] = v
	}
	return out, sc.Err()
}

// simplifyMetric drops the otel_scope_* labels, keeping name{other labels}.
func simplifyMetric(s string) string {
	name, labels, ok := strings.Cut(s, "{")
	if !ok {
		return s
	}
	labels = strings.TrimSuffix(labels, "}")
	var keep []string
	for _, l := range strings.Split(labels, ",") {
		if l != "" && !strings.HasPrefix(l, "otel_scope_") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return name
	}
	return name + "{" + strings.Join(keep, ",") + "}"
}

// countLines counts the lines of a log file holding every one of subs.
func countLines(path string, subs ...string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	n := 0
outer:
	for sc.Scan() {
		line := sc.Text()
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue outer
			}
		}
		n++
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	return n, nil
}

// ctxSleep waits d of the schedule, or until ctx ends.
func ctxSleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
