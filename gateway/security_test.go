package gateway_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/policies"
)

func TestSetKeysTakesEffectWithoutRestart(t *testing.T) {
	rig := newFaultRig(t, gateway.Config{}, false, simUpstream(t, "cand"), simUpstream(t, "base"))
	body := `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`
	if resp, b := post(t, rig.srv.URL, "sg-new", body); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown key: %d %s", resp.StatusCode, b)
	}
	keys, err := gateway.NewKeys(map[string]gateway.Principal{gateway.HashKey("sg-new"): {KeyID: "k-new", Trial: "demo", Tenant: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rig.gw.SetKeys(keys); err != nil {
		t.Fatal(err)
	}
	if resp, b := post(t, rig.srv.URL, "sg-new", body); resp.StatusCode != 200 {
		t.Fatalf("new key after SetKeys: %d %s", resp.StatusCode, b)
	}
	if resp, _ := post(t, rig.srv.URL, pilotKey, body); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a key left out of the new table (revoked) still works: %d", resp.StatusCode)
	}
	if rig.gw.SetKeys(nil) == nil {
		t.Fatal("SetKeys(nil) accepted")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns their
// paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stagegate-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// startedGateway runs a gateway on its own loopback listener (Start), as the
// sandbox does, rather than behind httptest.
func startedGateway(t *testing.T, cfg gateway.Config) *gateway.Gateway {
	t.Helper()
	sub, _ := fs.Sub(policies.Builtin(), "rego/demo")
	eng, err := policies.New(context.Background(), policies.Config{FS: sub})
	if err != nil {
		t.Fatal(err)
	}
	ext, _ := policies.NewExtractor(nil)
	keys, _ := gateway.NewKeys(map[string]gateway.Principal{gateway.HashKey(pilotKey): {KeyID: "k1", Trial: "demo", Tenant: "acme"}})
	cfg.Addr = "127.0.0.1:0"
	g, err := gateway.New(cfg, gateway.Deps{
		Keys:      keys,
		Trials:    map[string]*gateway.Trial{"demo": {ID: "demo", LogicalModel: "demo", Decider: eng, Extractor: ext}},
		Upstreams: map[string]*gateway.Upstream{"cand": simUpstream(t, "cand"), "base": simUpstream(t, "base")},
		Assigner:  fixedAssigner{route: "candidate"}, Publisher: &recorder{},
		Pseudonymize: func(tenant, user string) string { return "p_" + user },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop(context.Background()) })
	return g
}

func TestGatewayServesTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	g := startedGateway(t, gateway.Config{TLSCertFile: certFile, TLSKeyFile: keyFile})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	req, _ := http.NewRequest(http.MethodPost, "https://"+g.Addr()+"/v1/chat/completions",
		strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+pilotKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("https: %d, tls %+v", resp.StatusCode, resp.TLS)
	}
	// Plain HTTP to the TLS port gets no answer it could mistake for one.
	if resp, err := http.Get("http://" + g.Addr() + "/v1/models"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}
}

func TestTLSConfigErrors(t *testing.T) {
	if err := (gateway.Config{TLSCertFile: "c.pem"}).WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("cert without key: %v", err)
	}
	if _, err := gateway.ServerTLS(filepath.Join(t.TempDir(), "missing.pem"), "k.pem"); err == nil {
		t.Fatal("missing files accepted")
	}
	if c, err := gateway.ServerTLS("", ""); c != nil || err != nil {
		t.Fatalf("no TLS: %v %v", c, err)
	}
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	g := startedGateway(t, gateway.Config{MaxHeaderBytes: 4096})
	req, _ := http.NewRequest(http.MethodGet, "http://"+g.Addr()+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+pilotKey)
	req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB header with a 4 KiB cap: %d", resp.StatusCode)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:80": true, "[::1]:80": true, "localhost:1": true, ":8080": false, "0.0.0.0:1": false, "10.0.0.1:1": false, "bad": false} {
		if got := gateway.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// A client that sends its headers and then trickles the body gets 408 once
// BodyReadTimeout passes, rather than holding the connection for as long as
// it likes; a body that arrives in time is served.
func TestSlowBodyTimesOut(t *testing.T) {
	g := startedGateway(t, gateway.Config{BodyReadTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		pilotKey, len(body), body[:10]) // the rest never comes
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(raw), "request_timeout") {
		t.Fatalf("slow body: %d %s", resp.StatusCode, raw)
	}
	// A body that arrives in time is served, and an answer that streams for
	// longer than the body timeout is not cut.
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.Addr()+"/v1/chat/completions",
		strings.NewReader(`{"model":"demo","stream":true,"messages":[{"role":"user","content":"[sim:gap=150ms] [sim:tokens=5] hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+pilotKey)
	ok, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	streamed, _ := io.ReadAll(ok.Body)
	ok.Body.Close()
	if ok.StatusCode != 200 || !strings.Contains(string(streamed), "[DONE]") {
		t.Fatalf("stream after the body deadline: %d %s", ok.StatusCode, streamed)
	}
}
