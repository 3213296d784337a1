package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestNoSecretsInLogs runs a whole session — pilot requests with configured and
// created keys, wrong keys, a failing model, streams, PII prompts, admin calls
// with right and wrong tokens, key creation and revocation — with every
// component logging at debug level, then greps the logs for any key, token,
// raw user id or prompt PII. None may appear. The interactions on the bus must
// not hold a key or a raw user id either.
func TestNoSecretsInLogs(t *testing.T) {
	var logs syncBuffer
	log := slog.New(NewLogHandler(&logs, slog.LevelDebug, true))
	pilotKey := "sg_live_cfg" + randomHex(t, 16)
	adminToken := "admin-" + randomHex(t, 16)
	wrongKey := "sg_live_wrong" + randomHex(t, 16)
	wrongToken := "admin-wrong-" + randomHex(t, 16)
	// Several users, so some land on the candidate and its failures log a fallback
	// (the assignment depends on the random pseudonymisation secret).
	users := []string{"raw-user-" + randomHex(t, 6), "raw.user+" + randomHex(t, 4) + "@example.org",
		"raw-user-" + randomHex(t, 6), "raw-user-" + randomHex(t, 6), "raw-user-" + randomHex(t, 6), "raw-user-" + randomHex(t, 6)}
	email := "jane." + randomHex(t, 4) + "@example.org"
	const card = "4111 1111 1111 1111"

	cfg := Demo()
	cfg.Demo, cfg.adminToken = false, ""
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gateway.UpstreamTimeout = 5 * time.Second
	cfg.Admin = AdminConfig{Addr: "127.0.0.1:0", TokenEnv: "SG_TEST_ADMIN"}
	cfg.Keys = []KeyConfig{{Name: "cfg-key", SHA256: gateway.HashKey(pilotKey), Trial: DemoTrial, Tenant: "acme", Cohort: "pilot"}}
	env := func(k string) string {
		if k == "SG_TEST_ADMIN" {
			return adminToken
		}
		return ""
	}
	sb, err := New(cfg, Deps{Logger: log, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = sb.Stop(context.Background())
		}
	})
	gw, adm := "http://"+sb.GatewayAddr(), "http://"+sb.AdminAddr()

	// A key created through the admin API.
	status, raw, _ := call(t, nil, http.MethodPost, adm+"/api/v1/keys", adminToken, map[string]any{"trial": DemoTrial, "tenant": "acme"})
	if status != 200 {
		t.Fatalf("create key: %d %s", status, raw)
	}
	var created struct {
		Key    string `json:"key"`
		APIKey struct {
			ID string `json:"id"`
		} `json:"api_key"`
	}
	_ = json.Unmarshal(raw, &created)

	ids := []string{}
	send := func(key, user, content string, stream bool, want int) {
		t.Helper()
		body := map[string]any{"model": DemoTrial, "user": user, "stream": stream, "messages": []map[string]string{{"role": "user", "content": content}}}
		st, b, h := call(t, nil, http.MethodPost, gw+"/v1/chat/completions", key, body)
		if st != want {
			t.Fatalf("%q as %s: %d %s", content, user, st, b)
		}
		if st == 200 {
			ids = append(ids, h.Get(gateway.HeaderInteraction))
		}
	}
	pii := "My email is " + email + " and my card is " + card + ". [sim:pii] who is on call?"
	for _, u := range users {
		send(pilotKey, u, pii, false, 200)
		send(created.Key, u, pii, true, 200)
		send(wrongKey, u, pii, false, http.StatusUnauthorized)
	}
	send(pilotKey, "", "no user id at all", false, 200)
	// The failures come last: repeated failures open a model's circuit breaker,
	// after which the successful requests above would be refused with 503.
	for _, u := range users {
		st, b, _ := call(t, nil, http.MethodPost, gw+"/v1/chat/completions", pilotKey, map[string]any{"model": DemoTrial, "user": u,
			"messages": []map[string]string{{"role": "user", "content": "[sim:error=500] please fail " + pii}}})
		if st != http.StatusBadGateway && st != http.StatusServiceUnavailable { // both models fail, or a circuit is open: logged errors
			t.Fatalf("failing request as %s: %d %s", u, st, b)
		}
	}
	for _, tok := range []string{adminToken, wrongToken} {
		call(t, nil, http.MethodGet, adm+"/api/v1/incidents", tok, nil)
		call(t, nil, http.MethodGet, adm+"/api/v1/keys", tok, nil)
	}
	if st, raw, _ := call(t, nil, http.MethodPost, adm+"/api/v1/keys/"+created.APIKey.ID+"/revoke", adminToken, nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, raw)
	}
	send(created.Key, users[0], "after revocation", false, http.StatusUnauthorized)
	testutil.WaitFor(t, 30*time.Second, "the monitors to open incidents for the PII answers", func() bool {
		list, err := sb.store.Incidents(context.Background(), incidents.Filter{Trial: DemoTrial})
		return err == nil && len(list) >= 2
	})

	// What went onto the bus: no key, no raw user id.
	cons, err := sb.js.OrderedConsumer(context.Background(), events.StreamInteractions, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var bus strings.Builder
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(500 * time.Millisecond))
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || err != nil {
			break
		}
		bus.Write(m.Data())
		bus.WriteByte('\n')
	}
	stopped = true
	if err := sb.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	out := logs.String()
	for _, want := range []string{"trial loaded", "api key created", "api key revoked", "monitors stopped"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the log does not look like a whole session (no %q):\n%s", want, out)
		}
	}
	secrets := map[string]string{
		"configured pilot key": pilotKey, "created key": created.Key, "wrong key": wrongKey,
		"admin token": adminToken, "wrong admin token": wrongToken, "prompt e-mail": email,
		"prompt card": card, "card digits": strings.ReplaceAll(card, " ", ""),
		"configured key hash": gateway.HashKey(pilotKey), "created key hash": gateway.HashKey(created.Key),
	}
	for i, u := range users {
		secrets["raw user id "+string(rune('0'+i))] = u
	}
	for what, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log holds the %s", what)
		}
	}
	if bus.Len() == 0 || strings.Count(bus.String(), "\n") < len(ids) {
		t.Fatalf("%d interactions on the bus, %d answered", strings.Count(bus.String(), "\n"), len(ids))
	}
	for _, s := range []string{pilotKey, created.Key, wrongKey, adminToken, users[0], users[1]} {
		if strings.Contains(bus.String(), s) {
			t.Errorf("an interaction on the bus holds %q", s)
		}
	}
}
