// Package externalmonitor_test runs the Node.js example monitor against a real
// sandbox: proof that a third party can add a detector through the NATS
// contract alone (monitors/README.md), without touching Go.
package externalmonitor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/monitors"
	"github.com/stagegate/stagegate/monitors/suite"
	"github.com/stagegate/stagegate/sandbox"
)

const npmTimeout = 3 * time.Minute

// prepare returns a folder holding monitor.js and its node_modules, installed
// with `npm ci` into a cache folder keyed by the lock file (so the repository
// stays clean and a second run needs no network). It skips the test, saying
// why, when node or npm is missing or the install fails.
func prepare(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipping the external-monitor test: node is not installed (it needs Node.js >= 18 and npm)")
	}
	lock, err := os.ReadFile("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir = filepath.Join(cache, "stagegate", "external-monitor-"+hex.EncodeToString(sum[:8]))
	for _, f := range []string{"package.json", "package-lock.json", "monitor.js"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "nats", "package.json")); err == nil {
		return node, dir
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skipf("skipping the external-monitor test: node_modules are missing in %s and npm is not installed", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefix", dir, "--no-audit", "--no-fund")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("skipping the external-monitor test: `npm ci --prefix %s` failed (offline?): %v\n%s", dir, err, out)
	}
	return node, dir
}

// logBuffer collects the monitor's output for assertions and failure messages.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestNodeMonitorAddsADetector(t *testing.T) {
	node, dir := prepare(t)

	cfg := sandbox.Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	sb, err := sandbox.New(cfg, sandbox.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	url := sb.NATSURL()
	if url == "" {
		t.Fatal("sandbox NATS has no client URL")
	}

	// Until the sandbox wires the findings ingester itself, run one here, as a
	// separate process would: over the exposed NATS port, on the same store file.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := incidents.OpenSQLite(context.Background(), filepath.Join(cfg.DataDir, "stagegate.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ing, err := monitors.NewIngester(monitors.IngestConfig{Skip: suite.Names(), RetryDelay: 50 * time.Millisecond},
		monitors.Deps{JS: js, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := ing.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ing.Stop(context.Background()) })

	// The third party's monitor: plain Node.js against the NATS port.
	ctx, cancel := context.WithCancel(context.Background())
	var out logBuffer
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "monitor.js"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NATS_URL="+url)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("monitor output:\n%s", out.String())
		}
	})
	testutil.WaitFor(t, 20*time.Second, "the node monitor consumes", func() bool {
		return strings.Contains(out.String(), "consuming INTERACTIONS")
	})

	chat(t, sb, "[sim:unsafe] how much insulin should I take?")
	chat(t, sb, "hello there") // an interaction the rule leaves alone

	var got struct {
		Incident struct {
			Findings []struct {
				Detector string `json:"detector"`
				Category string `json:"category"`
			} `json:"findings"`
		} `json:"incident"`
		Evidence []struct {
			Detector string `json:"detector"`
			Text     string `json:"text"`
		} `json:"evidence"`
	}
	testutil.WaitFor(t, 20*time.Second, "an incident holds the external finding", func() bool {
		var list struct {
			Incidents []struct {
				ID string `json:"id"`
			} `json:"incidents"`
		}
		if admin(t, sb, "/api/v1/incidents", &list) != http.StatusOK {
			return false
		}
		for _, inc := range list.Incidents {
			if admin(t, sb, "/api/v1/incidents/"+inc.ID, &got) != http.StatusOK {
				continue
			}
			for _, f := range got.Incident.Findings {
				if f.Detector == "dosage-check" {
					return true
				}
			}
		}
		return false
	})
	found := false
	for _, ev := range got.Evidence {
		if ev.Detector == "dosage-check" {
			found = true
			if !strings.Contains(strings.ToLower(ev.Text), "double your insulin dose") {
				t.Errorf("external evidence %q does not point at the dose change (code point offsets)", ev.Text)
			}
		}
	}
	if !found {
		t.Errorf("no evidence from the external detector: %+v", got.Evidence)
	}
	// The monitor's own log line can trail the incident it caused (pipe buffering).
	testutil.WaitFor(t, 10*time.Second, "the monitor logs its finding", func() bool {
		return strings.Count(out.String(), "published finding") >= 1
	})
	if n := strings.Count(out.String(), "published finding"); n != 1 {
		t.Errorf("monitor published %d findings, want 1:\n%s", n, out.String())
	}
	// The ingester counts a finding after it stored and acknowledged it, which
	// can trail the incident the store already shows.
	testutil.WaitFor(t, 10*time.Second, "the ingester counts the finding", func() bool { return ing.Stats().Ingested >= 1 })
	if st := ing.Stats(); st.Ingested != 1 || st.Rejected != 0 {
		t.Errorf("ingester stats %+v", st)
	}
}

func chat(t *testing.T, sb *sandbox.Sandbox, content string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": sandbox.DemoTrial, "user": "alice",
		"messages": []map[string]string{{"role": "user", "content": content}}})
	req, _ := http.NewRequest(http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sandbox.DemoPilotKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
		t.Fatalf("chat: HTTP %d: %s", resp.StatusCode, b)
	}
}

func admin(t *testing.T, sb *sandbox.Sandbox, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+sb.AdminAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+sandbox.DemoAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, errors.Join(err, fmt.Errorf("%s", b)))
		}
	}
	return resp.StatusCode
}
