package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/sandbox"
)

// TestMonitorCommand runs `stagegate monitor` in-process against a sandbox whose
// NATS listens on a random loopback port and which runs no monitors itself.
func TestMonitorCommand(t *testing.T) {
	cfg := sandbox.Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Monitors.Disabled = true
	sb, err := sandbox.New(cfg, sandbox.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })

	db := filepath.Join(t.TempDir(), "monitor", "stagegate.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"monitor", "--nats", sb.NATSURL(), "--db", db, "--workers", "2", "--log-level", "warn"}, &out, &errOut)
	}()
	testutil.WaitFor(t, 30*time.Second, "the monitor announces itself", func() bool {
		select {
		case code := <-done:
			t.Fatalf("monitor exited with %d: %s", code, errOut.String())
		default:
		}
		return strings.Contains(out.String(), "monitor running")
	})

	body := `{"model":"demo","user":"bob","messages":[{"role":"user","content":"[sim:pii] who is on call?"}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sandbox.DemoPilotKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Stagegate-Interaction")

	// The monitor's own store (SQLite in WAL mode takes a second reader).
	store, err := incidents.OpenSQLite(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var got []incidents.Incident
	testutil.WaitFor(t, 15*time.Second, "an incident in the monitor's store", func() bool {
		got, err = store.Incidents(context.Background(), incidents.Filter{})
		return err == nil && len(got) > 0
	})
	if got[0].InteractionID != id || got[0].Category != "pii" {
		t.Fatalf("incident %+v; want category pii for %s", got[0], id)
	}

	cancel() // as SIGTERM would
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("monitor exited with %d after shutdown: %s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("monitor did not shut down")
	}
}

func TestMonitorCommandRejectsBadFlags(t *testing.T) {
	var out, errOut syncBuffer
	code := run(context.Background(), []string{"monitor", "--nats", "http://nope", "--workers", "-3"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "scheme") || !strings.Contains(errOut.String(), "workers -3") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}
