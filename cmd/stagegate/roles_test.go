package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/sandbox"
)

// TestRoleCommands runs `stagegate gateway`, `monitor --config`, `controller`
// and `console` in-process against one NATS server and one SQLite file, sends a
// request through the gateway, and stops them as SIGTERM would.
func TestRoleCommands(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true, JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(ns.Shutdown)
	dir := t.TempDir()
	cfg := sandbox.Demo()
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "stagegate.yaml")
	if err := os.WriteFile(conf, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", conf, "--nats", ns.ClientURL(), "--db", filepath.Join(dir, "shared.db"),
		"--admin-addr", "127.0.0.1:0", "--log-level", "warn"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type proc struct {
		out, errOut syncBuffer
		done        chan int
	}
	start := func(role string, extra ...string) *proc {
		p := &proc{done: make(chan int, 1)}
		args := append(append([]string{role}, common...), "--data-dir", filepath.Join(dir, role))
		go func() { p.done <- run(ctx, append(args, extra...), &p.out, &p.errOut) }()
		testutil.WaitFor(t, 30*time.Second, role+" announces itself", func() bool {
			select {
			case code := <-p.done:
				t.Fatalf("%s exited with %d: %s", role, code, p.errOut.String())
			default:
			}
			return strings.Contains(p.out.String(), "running")
		})
		return p
	}
	gw := start("gateway", "--addr", "127.0.0.1:0", "--secret-file", filepath.Join(dir, "secret"))
	procs := []*proc{gw, start("monitor"), start("controller", "--holder", "c1", "--lease-ttl", "2s"), start("console")}

	line := gw.out.String()
	_, addr, _ := strings.Cut(line, "gateway http://")
	addr, _, _ = strings.Cut(addr, "/v1")
	body := `{"model":"demo","user":"bob","messages":[{"role":"user","content":"hello"}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sandbox.DemoPilotKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Stagegate-Interaction") == "" {
		t.Fatalf("chat through the gateway role: HTTP %d", resp.StatusCode)
	}

	cancel()
	for i, p := range procs {
		select {
		case code := <-p.done:
			if code != 0 {
				t.Errorf("process %d exited with %d: %s", i, code, p.errOut.String())
			}
		case <-time.After(45 * time.Second):
			t.Fatalf("process %d did not stop", i)
		}
	}
}

func TestRoleCommandsRejectBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gateway"}, "nats.url"},
		{[]string{"controller", "--nats", "nats://127.0.0.1:1", "--lease-ttl", "1ms"}, "lease ttl"},
		{[]string{"console", "--nats", "nats://127.0.0.1:1", "--replicas", "9"}, "nats.replicas 9"},
		{[]string{"gateway", "--nats", "nats://127.0.0.1:1", "--db", "postgresql:/broken"}, "db "},
		{[]string{"monitor", "--config", "/does/not/exist.yaml"}, "no such file"},
	} {
		var out, errOut syncBuffer
		if code := run(context.Background(), tc.args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want exit 1 mentioning %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}
