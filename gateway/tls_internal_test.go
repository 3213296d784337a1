package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair writes a self-signed certificate with serial n and its key.
func writePair(t *testing.T, certFile, keyFile string, n int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "stagegate-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func serial(t *testing.T, c *certReloader) int64 {
	t.Helper()
	cert, err := c.get(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// A renewed certificate is served without a restart; a broken write keeps the
// last good pair serving; checks are rate-limited by the interval.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, certFile, keyFile, 1)
	c, err := newCertReloader(certFile, keyFile, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s := serial(t, c); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	writePair(t, certFile, keyFile, 2)
	if s := serial(t, c); s != 2 {
		t.Fatalf("after renewal: serial %d, want 2", s)
	}
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nhalf written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := serial(t, c); s != 2 {
		t.Fatalf("after a broken write: serial %d, want the last good 2", s)
	}
	writePair(t, certFile, keyFile, 3)
	if s := serial(t, c); s != 3 {
		t.Fatalf("after the next good write: serial %d, want 3", s)
	}
	// With an interval, a change is not looked for on every handshake.
	slow, err := newCertReloader(certFile, keyFile, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, certFile, keyFile, 4)
	if s := serial(t, slow); s != 3 {
		t.Fatalf("within the interval: serial %d, want 3", s)
	}
	if _, err := newCertReloader(filepath.Join(dir, "missing.pem"), keyFile, 0); err == nil {
		t.Fatal("a missing certificate was accepted")
	}
}
