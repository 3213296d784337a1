package sandbox

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
)

// startExposed runs the demo sandbox with its NATS on a random loopback port and
// no monitors of its own.
func startExposed(t *testing.T) *Sandbox {
	t.Helper()
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Monitors.Disabled = true
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

// piiRequest sends a request whose answer leaks personal data and returns its
// interaction id.
func piiRequest(t *testing.T, gatewayAddr string) string {
	t.Helper()
	body := `{"model":"demo","user":"bob","messages":[{"role":"user","content":"[sim:pii] who is on call?"}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+gatewayAddr+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+DemoPilotKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gateway answered %d: %s", resp.StatusCode, b)
	}
	return resp.Header.Get("X-Stagegate-Interaction")
}

func TestMonitorRoleAgainstAnExposedSandbox(t *testing.T) {
	sb := startExposed(t)
	url := sb.NATSURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") || strings.HasSuffix(url, ":4222") {
		t.Fatalf("NATSURL %q: want the bound random loopback port", url)
	}
	m, err := NewMonitor(MonitorConfig{NATSURL: url, DBPath: filepath.Join(t.TempDir(), "mon", "incidents.db"), Workers: 2}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	if err := m.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}

	id := piiRequest(t, sb.GatewayAddr())
	var got []incidents.Incident
	testutil.WaitFor(t, 15*time.Second, "an incident in the monitor's store", func() bool {
		got, err = m.Store().Incidents(context.Background(), incidents.Filter{})
		return err == nil && len(got) > 0
	})
	if got[0].InteractionID != id || got[0].Category != "pii" {
		t.Fatalf("incident %+v; want category pii for interaction %s", got[0], id)
	}
	// The counters move after the store and the ack.
	testutil.WaitFor(t, 15*time.Second, "the runner counts the interaction and the incident", func() bool {
		st := m.Stats()
		return st.Processed >= 1 && st.IncidentsOpened == 1
	})
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.Store() != nil {
		t.Error("store still open after Stop")
	}
}

func TestMonitorConfigReportsEveryProblem(t *testing.T) {
	_, err := NewMonitor(MonitorConfig{NATSURL: "http://x:1,nats://", NATSCreds: "/does/not/exist.creds", Workers: -1, Replicas: 9, StartTimeout: -time.Second}, Deps{})
	if err == nil {
		t.Fatal("accepted a bad configuration")
	}
	for _, want := range []string{`scheme "http"`, `"nats://"`, "nats creds", "workers -1", "replicas 9", "start timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestMonitorGivesUpWhenNATSNeverComes(t *testing.T) {
	m, err := NewMonitor(MonitorConfig{NATSURL: "nats://127.0.0.1:1", DBPath: filepath.Join(t.TempDir(), "x.db"), StartTimeout: 700 * time.Millisecond}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = m.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "streams not available") {
		t.Fatalf("Start = %v; want a timeout naming the streams", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Start took %s with a 700ms start timeout", d)
	}
}
