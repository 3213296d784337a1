package sandbox

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/policies"
)

// tcpNATS starts a JetStream server on a loopback TCP port (0: a free one)
// storing in dir.
func tcpNATS(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{ServerName: "ext", Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 1 << 30, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// TestExternalNATSOutageLosesNothing runs the sandbox against an external
// NATS (nats.url), stops NATS while a fail-open trial serves, and restarts it
// on the same port and store: every request is answered, and every answered
// interaction is in INTERACTIONS exactly once.
func TestExternalNATSOutageLosesNothing(t *testing.T) {
	natsDir := t.TempDir()
	ns := tcpNATS(t, natsDir, 0)
	port := ns.Addr().(*net.TCPAddr).Port
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.NATS.URL = ns.ClientURL()
	cfg.Monitors.Disabled = true
	cfg.Trials[0].FailMode = policies.FailOpen
	sb, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	if sb.ns != nil {
		t.Fatal("an embedded server was started although nats.url is set")
	}

	var ids []string
	send := func(n int) {
		for range n {
			body := map[string]any{"model": "demo", "user": "ann", "messages": []map[string]string{{"role": "user", "content": "hello"}}}
			st, raw, h := call(t, nil, http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions", DemoPilotKey, body)
			if st != http.StatusOK {
				t.Fatalf("request: %d %s", st, raw)
			}
			ids = append(ids, h.Get("X-Stagegate-Interaction"))
		}
	}
	send(5)
	ns.Shutdown()
	ns.WaitForShutdown()
	testutil.WaitFor(t, 10*time.Second, "the gateway sees NATS down", func() bool { return !sb.nc.IsConnected() })
	send(20)
	testutil.WaitFor(t, 10*time.Second, "the interactions served while NATS is down spooled", func() bool {
		return sb.publisher.Stats().SpoolRecords >= 20
	})
	if st := sb.publisher.Stats(); st.Lost != 0 {
		t.Fatalf("while NATS is down: %+v", st)
	}
	tcpNATS(t, natsDir, port)
	// Stop the sandbox before this server (cleanups run last-in first-out).
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	testutil.WaitFor(t, 30*time.Second, "the spool replayed", func() bool {
		st := sb.publisher.Stats()
		return !st.Degraded && st.SpoolRecords == 0
	})
	send(5)

	nc, err := nats.Connect(cfg.NATS.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	seen := map[string]int{}
	testutil.WaitFor(t, 10*time.Second, "every interaction in INTERACTIONS", func() bool {
		cons, err := js.OrderedConsumer(context.Background(), events.StreamInteractions, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return false
		}
		seen = map[string]int{}
		for {
			m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
			if err != nil {
				break
			}
			seen[m.Headers().Get(nats.MsgIdHdr)]++
		}
		return len(seen) >= len(ids)
	})
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("interaction %s is in INTERACTIONS %d times", id, seen[id])
		}
	}
}
