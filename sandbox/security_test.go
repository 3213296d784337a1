package sandbox

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
)

// call sends an admin API request with token and returns the status, body and headers.
func call(t *testing.T, client *http.Client, method, url, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, resp.Header
}

// chatAs sends one chat request with key and returns the status.
func chatAs(t *testing.T, gatewayAddr, key, user, content string) int {
	t.Helper()
	body := map[string]any{"model": "demo", "user": user, "messages": []map[string]string{{"role": "user", "content": content}}}
	status, _, _ := call(t, nil, http.MethodPost, "http://"+gatewayAddr+"/v1/chat/completions", key, body)
	return status
}

func TestAPIKeysCreatedThroughTheAdminAPIWorkAtOnce(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	base := "http://" + sb.AdminAddr()

	status, raw, _ := call(t, nil, http.MethodPost, base+"/api/v1/keys", DemoAdminKey,
		map[string]any{"trial": "demo", "tenant": "acme", "cohort": "pilot", "name": "ios app", "attributes": map[string]string{"age_band": "adult"}})
	if status != http.StatusOK {
		t.Fatalf("create: %d %s", status, raw)
	}
	var created struct {
		Key    string           `json:"key"`
		APIKey incidents.APIKey `json:"api_key"`
		Notice string           `json:"notice"`
	}
	if err := json.Unmarshal(raw, &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Key, APIKeyPrefix) || len(created.Key) != len(APIKeyPrefix)+32 ||
		!strings.HasPrefix(created.Key, created.APIKey.Prefix) || !strings.Contains(created.Notice, "only once") {
		t.Fatalf("created %+v", created)
	}
	// The change is in the hash-chained audit log, and the chain verifies.
	entries, err := sb.store.AuditEntries(context.Background(), incidents.AuditFilter{ActionPrefix: "key."})
	if err != nil || len(entries) != 1 || entries[0].Object != "key:"+created.APIKey.ID || strings.Contains(fmt.Sprint(entries[0]), created.Key) {
		t.Fatalf("audit entries %+v %v", entries, err)
	}
	if v, err := sb.store.VerifyAudit(context.Background()); err != nil || !v.OK {
		t.Fatalf("audit chain %+v %v", v, err)
	}
	// Usable at once, no restart.
	if st := chatAs(t, sb.GatewayAddr(), created.Key, "ann", "hello"); st != http.StatusOK {
		t.Fatalf("new key: %d", st)
	}
	// Stored as a hash only; listings never carry it.
	stored, err := sb.store.APIKey(context.Background(), created.APIKey.ID)
	if err != nil || stored.Hash != gateway.HashKey(created.Key) {
		t.Fatalf("stored %+v %v", stored, err)
	}
	status, raw, _ = call(t, nil, http.MethodGet, base+"/api/v1/keys?trial=demo", DemoAdminKey, nil)
	if status != 200 || strings.Contains(string(raw), created.Key) || strings.Contains(string(raw), stored.Hash) || !strings.Contains(string(raw), created.APIKey.ID) {
		t.Fatalf("list: %d %s", status, raw)
	}

	// Bad requests are refused with every reason.
	for _, body := range []any{
		map[string]any{"trial": "nope", "tenant": "acme"},
		map[string]any{"trial": "demo", "tenant": ""},
		map[string]any{"trial": "demo", "tenant": "acme", "surprise": 1},
	} {
		if status, raw, _ := call(t, nil, http.MethodPost, base+"/api/v1/keys", DemoAdminKey, body); status != http.StatusBadRequest {
			t.Errorf("create %v: %d %s", body, status, raw)
		}
	}
	if status, _, _ := call(t, nil, http.MethodPost, base+"/api/v1/keys", "wrong-token", map[string]any{"trial": "demo", "tenant": "acme"}); status != http.StatusUnauthorized {
		t.Fatalf("create without the admin token: %d", status)
	}

	// Revoked: refused at once.
	status, raw, _ = call(t, nil, http.MethodPost, base+"/api/v1/keys/"+created.APIKey.ID+"/revoke", DemoAdminKey, map[string]string{"reason": "test"})
	if status != http.StatusOK || !strings.Contains(string(raw), "revoked_at") {
		t.Fatalf("revoke: %d %s", status, raw)
	}
	if st := chatAs(t, sb.GatewayAddr(), created.Key, "ann", "hello"); st != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d", st)
	}
	if st := chatAs(t, sb.GatewayAddr(), DemoPilotKey, "ann", "hello"); st != http.StatusOK {
		t.Fatalf("configured key after the rebuild: %d", st)
	}
}

func TestKeysFromAnotherProcessArePolled(t *testing.T) {
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gateway.KeyRefresh = 20 * time.Millisecond
	sb, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	// Another process's admin API writes the store directly.
	other, err := incidents.OpenSQLite(context.Background(), filepath.Join(cfg.DataDir, "stagegate.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	key, id, prefix, err := newAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.CreateAPIKey(context.Background(), incidents.APIKey{ID: id, Prefix: prefix, Hash: gateway.HashKey(key), Trial: "demo", Tenant: "acme", CreatedBy: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the gateway accepts a key stored by another process", func() bool {
		return chatAs(t, sb.GatewayAddr(), key, "ann", "hi") == http.StatusOK
	})
	if _, err := other.RevokeAPIKey(context.Background(), id, "elsewhere", ""); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the gateway refuses a key revoked by another process", func() bool {
		return chatAs(t, sb.GatewayAddr(), key, "ann", "hi") == http.StatusUnauthorized
	})
}

func TestNewAPIKeysAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		key, id, prefix, err := newAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if seen[key] || seen[id] || !strings.HasPrefix(key, prefix) || len(prefix) != len(APIKeyPrefix)+keyHintLen || strings.ContainsAny(key[len(APIKeyPrefix):], "=ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("key %q id %q prefix %q", key, id, prefix)
		}
		seen[key], seen[id] = true, true
	}
}

func TestAdminAnswersCarrySecurityHeaders(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	for _, path := range []string{"/healthz", "/api/v1/incidents", "/nope"} {
		_, _, h := call(t, nil, http.MethodGet, "http://"+sb.AdminAddr()+path, DemoAdminKey, nil)
		for name, want := range adminSecurityHeaders {
			if got := h.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", path, name, got, want)
			}
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain HTTP", path)
		}
	}
}

func TestReadyzReportsStoreSpoolAndKeys(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	var ready struct {
		Ready   bool              `json:"ready"`
		Checks  map[string]string `json:"checks"`
		Details map[string]json.RawMessage
	}
	if st := admin(t, sb, "/readyz", &ready); st != 200 || !ready.Ready || ready.Checks["store"] != "ok" || ready.Checks["spool"] != "ok" {
		t.Fatalf("readyz: %d %+v", st, ready)
	}
	for _, k := range []string{"store_writes", "publish", "api_keys"} {
		if len(ready.Details[k]) == 0 {
			t.Errorf("readyz details miss %s: %+v", k, ready.Details)
		}
	}
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "stagegate-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

func TestBothListenersServeTLS(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t)
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gateway.TLSCertFile, cfg.Gateway.TLSKeyFile = certFile, keyFile
	cfg.Admin.TLSCertFile, cfg.Admin.TLSKeyFile = certFile, keyFile
	sb, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	status, raw, h := call(t, client, http.MethodGet, "https://"+sb.AdminAddr()+"/api/v1/incidents", DemoAdminKey, nil)
	if status != 200 || h.Get("Strict-Transport-Security") != hstsValue {
		t.Fatalf("admin over TLS: %d %s %v", status, raw, h)
	}
	body := map[string]any{"model": "demo", "messages": []map[string]string{{"role": "user", "content": "hi"}}}
	if status, raw, _ := call(t, client, http.MethodPost, "https://"+sb.GatewayAddr()+"/v1/chat/completions", DemoPilotKey, body); status != 200 {
		t.Fatalf("gateway over TLS: %d %s", status, raw)
	}
}

func TestSecurityConfigProblems(t *testing.T) {
	cfg := Demo()
	cfg.Gateway.TLSCertFile = "c.pem"
	cfg.Admin.TLSKeyFile = "k.pem"
	cfg.Gateway.MaxHeaderBytes = 100
	cfg.NATS.URL, cfg.NATS.Listen = "http://x", "127.0.0.1:0"
	cfg.NATS.Creds = filepath.Join(t.TempDir(), "missing.creds")
	cfg.Trials[0].Limits.KeyRate = -1
	err := cfg.WithDefaults().Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"gateway: set both", "admin: set both", "max_header_bytes", "not both", "nats.url", "nats.creds", "rates"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}
