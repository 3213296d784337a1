package sandbox

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/pgtest"
	"github.com/stagegate/stagegate/internal/testutil"
)

// startSharedNATS runs a JetStream server on a loopback port, as the NATS a
// deployment's processes share, and returns its URL.
func startSharedNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "shared", Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 1 << 30, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// sharedStore is PostgreSQL when a server is reachable (required under
// CI=true), else one SQLite file the processes share.
func sharedStore(t *testing.T) string {
	t.Helper()
	if err := pgtest.Available(); err == nil || pgtest.Required() {
		return pgtest.DSN(t)
	}
	t.Log("PostgreSQL unreachable: the roles share a SQLite file instead")
	return filepath.Join(t.TempDir(), "shared.db")
}

// startRole runs one role of the demo configuration on random loopback ports.
func startRole(t *testing.T, role, natsURL, db, secret string, opts RoleOptions) *Sandbox {
	t.Helper()
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gateway.UpstreamTimeout = 2 * time.Second
	cfg.NATS.URL, cfg.DB, cfg.SecretFile = natsURL, db, secret
	sb, err := NewRole(role, cfg, opts, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatalf("start %s: %v", role, err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	return sb
}

// Six processes' worth of roles on one NATS and one store: two gateways, a
// monitor, two controllers and a console. Each runs only its part; every
// interaction through either gateway is recorded once and each leak makes one
// incident; one controller leads and the other takes over when it stops; a
// reviewer's confirmation in the console switches both gateways to the
// baseline within a second.
func TestRolesOnSharedNATSAndStore(t *testing.T) {
	url, db := startSharedNATS(t), sharedStore(t)
	secret := filepath.Join(t.TempDir(), "secret")
	gw1 := startRole(t, RoleGateway, url, db, secret, RoleOptions{})
	gw2 := startRole(t, RoleGateway, url, db, secret, RoleOptions{})
	mon := startRole(t, RoleMonitor, url, db, secret, RoleOptions{})
	ctl1 := startRole(t, RoleController, url, db, secret, RoleOptions{LeaseTTL: time.Second, Holder: "ctl-1"})
	ctl2 := startRole(t, RoleController, url, db, secret, RoleOptions{LeaseTTL: time.Second, Holder: "ctl-2"})
	con := startRole(t, RoleConsole, url, db, secret, RoleOptions{})

	t.Run("each role runs its part", func(t *testing.T) {
		for _, c := range []struct {
			sb                    *Sandbox
			gateway, monitor, ctl bool
		}{{gw1, true, false, false}, {gw2, true, false, false}, {mon, false, true, false}, {ctl1, false, false, true}, {con, false, false, false}} {
			if (c.sb.gw != nil) != c.gateway || (c.sb.runner != nil) != c.monitor || (c.sb.lease != nil) != c.ctl || c.sb.ns != nil {
				t.Errorf("%s: gateway %v monitor %v lease %v embedded nats %v", c.sb.Role(), c.sb.gw != nil, c.sb.runner != nil, c.sb.lease != nil, c.sb.ns != nil)
			}
			if code := admin(t, c.sb, "/readyz", nil); code != http.StatusOK {
				t.Errorf("%s: /readyz HTTP %d", c.sb.Role(), code)
			}
			if c.sb.store.Engine() != engineOf(db) {
				t.Errorf("%s: store engine %s", c.sb.Role(), c.sb.store.Engine())
			}
		}
	})

	t.Run("interactions through both gateways are recorded once", func(t *testing.T) {
		var ids []string
		for i := range 6 {
			addr := []string{gw1.GatewayAddr(), gw2.GatewayAddr()}[i%2]
			s := chatVia(t, addr, DemoPilotKey, "user-"+strconv.Itoa(i), "[sim:pii] who is on call?", false)
			if s.Status != http.StatusOK || s.Interaction == "" {
				t.Fatalf("chat via %s: HTTP %d", addr, s.Status)
			}
			ids = append(ids, s.Interaction)
		}
		for _, id := range ids {
			testutil.WaitFor(t, 15*time.Second, "interaction "+id+" recorded and its incident opened", func() bool {
				var l incidentList
				admin(t, con, "/api/v1/incidents?limit=1000", &l)
				n := 0
				for _, inc := range l.Incidents {
					if inc.InteractionID == id {
						n++
					}
				}
				return n == 1 && admin(t, con, "/api/v1/interactions/"+id, nil) == http.StatusOK
			})
		}
	})

	t.Run("controller failover", func(t *testing.T) {
		testutil.WaitFor(t, 5*time.Second, "one controller leads", func() bool { return ctl1.Leading() != ctl2.Leading() })
		leader, follower := ctl1, ctl2
		if ctl2.Leading() {
			leader, follower = ctl2, ctl1
		}
		if gw1.Leading() || con.Leading() || mon.Leading() {
			t.Error("a role other than controller leads")
		}
		if err := leader.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		testutil.WaitFor(t, 3*time.Second, "the other controller takes over", follower.Leading)
		t.Logf("takeover after a stop: %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("kill switch reaches both gateways within 1s", func(t *testing.T) {
		plan := "trial: demo\ncandidate: demo-candidate\nbaseline: demo-baseline\nsteps:\n  - canary: {weight: 50}\n  - pause:\n"
		if code := rolloutPost(t, con, "/api/v1/rollouts", map[string]string{"plan": plan, "actor": "acme-ops"}, nil); code != http.StatusOK {
			t.Fatalf("apply through the console role: HTTP %d", code)
		}
		testutil.WaitFor(t, 3*time.Second, "both gateways follow the rollout", func() bool {
			p1, _ := gw1.assigner.Plan(DemoTrial)
			p2, _ := gw2.assigner.Plan(DemoTrial)
			return p1.Stage == deploy.StageCanary && p2.Stage == deploy.StageCanary
		})
		seen := map[string]bool{}
		var l incidentList
		admin(t, con, "/api/v1/incidents?limit=1000", &l)
		for _, inc := range l.Incidents {
			seen[inc.ID] = true
		}
		var leaker string
		for i := 0; leaker == "" && i < 100; i++ {
			if u := "leaker-" + strconv.Itoa(i); chatVia(t, gw2.GatewayAddr(), DemoPilotKey, u, "hello", false).Model == DemoCandidate {
				leaker = u
			}
		}
		if s := chatVia(t, gw2.GatewayAddr(), DemoPilotKey, leaker, "[sim:pii] the card?", false); s.Model != DemoCandidate {
			t.Fatalf("leak served by %q", s.Model)
		}
		inc := waitNewIncident(t, con, DemoCandidate, "pii", seen)
		confirmed := time.Now()
		review(t, con, inc.ID, "confirmed", "critical", "rita", "a card number")
		testutil.WaitFor(t, time.Second, "both gateways abort the candidate", func() bool {
			p1, _ := gw1.assigner.Plan(DemoTrial)
			p2, _ := gw2.assigner.Plan(DemoTrial)
			return p1.Stage == deploy.StageAborted && p2.Stage == deploy.StageAborted
		})
		t.Logf("kill switch reached both gateways %s after the confirmation", time.Since(confirmed).Round(time.Millisecond))
	})
}

// engineOf is the engine a store target names.
func engineOf(target string) string {
	if strings.HasPrefix(target, "postgres://") {
		return "postgres"
	}
	return "sqlite"
}

func TestNewRoleValidates(t *testing.T) {
	cfg := Demo()
	tests := []struct {
		name string
		role string
		mod  func(c *Config)
		opts RoleOptions
		want []string
	}{
		{"unknown role", "router", func(c *Config) { c.NATS.URL = "nats://127.0.0.1:4222" }, RoleOptions{}, []string{`role "router"`}},
		{"no shared nats", RoleGateway, func(c *Config) {}, RoleOptions{}, []string{"nats.url"}},
		{"lease ttl", RoleController, func(c *Config) { c.NATS.URL = "nats://127.0.0.1:4222" }, RoleOptions{LeaseTTL: time.Millisecond}, []string{"lease ttl"}},
		{"duplicate window", RoleGateway, func(c *Config) { c.NATS.URL = "nats://127.0.0.1:4222"; c.NATS.DuplicateWindow = -time.Second }, RoleOptions{}, []string{"nats.duplicate_window -1s"}},
		{"replicas without a cluster", RoleGateway, func(c *Config) { c.NATS.URL = ""; c.NATS.Replicas = 3 }, RoleOptions{}, []string{"nats.url"}},
		{"bad db and tls", RoleMonitor, func(c *Config) {
			c.NATS.URL, c.DB, c.NATS.TLSCertFile, c.NATS.Replicas = "nats://127.0.0.1:4222", "postgresql:/x", "/nonexistent.pem", 9
		}, RoleOptions{}, []string{"db ", "tls_cert_file and tls_key_file", "nats.tls_cert_file", "nats.replicas 9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.mod(&c)
			_, err := NewRole(tt.role, c, tt.opts, Deps{})
			if err == nil {
				t.Fatal("NewRole succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	c := cfg
	c.NATS.URL = "nats://127.0.0.1:4222"
	for _, role := range Roles {
		sb, err := NewRole(role, c, RoleOptions{}, Deps{})
		if err != nil || sb.Role() != role {
			t.Errorf("NewRole(%s) = %v, %v", role, sb, err)
		}
	}
	if sb, err := New(cfg, Deps{}); err != nil || sb.Role() != RoleAll || !sb.runs(RoleGateway) || !sb.runs(RoleController) {
		t.Errorf("up: role %v runs everything: %v", sb, err)
	}
	if err := errors.Join(c.scaleProblems()...); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// The standalone monitor (stagegate monitor without --config) records into
// PostgreSQL when --db is a postgres:// URL.
func TestStandaloneMonitorOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	m, err := NewMonitor(MonitorConfig{NATSURL: startSharedNATS(t), DBPath: dsn, StartTimeout: 30 * time.Second}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	st, ok := m.Store().(*incidents.SQLStore)
	if !ok || st.Engine() != incidents.EnginePostgres {
		t.Fatalf("monitor store %T, want a PostgreSQL SQLStore", m.Store())
	}
	if err := st.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
