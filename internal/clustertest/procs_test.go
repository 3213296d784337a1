//go:build cluster

package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one child process: its stdout lines are kept for waitLine, its
// stderr goes to a log file shown when the test fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string

	mu    sync.Mutex
	lines []string
	done  chan struct{}
	err   error
}

// startProc runs bin with args; the process is stopped when the test ends.
func startProc(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = logf
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s (exit %v), last lines of its log:\n%s", name, p.err, tail(p.log, 25))
		}
	})
	return p
}

// waitLine waits for a stdout line containing part and returns it.
func (p *proc) waitLine(t *testing.T, part string, within time.Duration) string {
	t.Helper()
	end := time.Now().Add(within)
	for time.Now().Before(end) {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.Contains(l, part) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, part, tail(p.log, 30))
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not print %q within %s:\n%s", p.name, part, within, tail(p.log, 30))
	return ""
}

// kill ends the process at once (SIGKILL): nothing is flushed or released.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// stop asks the process to stop (SIGTERM) and kills it after 20 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// alive reports whether the process still runs.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts reserves n loopback ports (released just before use).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// buildBinaries builds stagegate and stagegate-natsnode into dir.
func buildBinaries(t *testing.T, dir string) (stagegate, natsnode string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	stagegate, natsnode = filepath.Join(dir, "stagegate"), filepath.Join(dir, "stagegate-natsnode")
	for bin, pkg := range map[string]string{stagegate: "./cmd/stagegate", natsnode: "./cmd/stagegate-natsnode"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, stderr.String())
		}
	}
	return stagegate, natsnode
}

// field returns the host:port of the URL after key in a line such as
// "stagegate gateway running: admin http://h:p, gateway http://h:p/v1".
func field(line, key string) string {
	for rest := line; ; {
		i := strings.Index(rest, key+" ")
		if i < 0 {
			return ""
		}
		rest = rest[i+len(key)+1:]
		if strings.HasPrefix(rest, "http://") || strings.HasPrefix(rest, "nats://") {
			u, _, _ := strings.Cut(rest, " ")
			u = strings.TrimSuffix(strings.TrimSuffix(u, ","), "/v1")
			return strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "nats://")
		}
	}
}
