package gateway

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CertReloadInterval is how often, at most, a TLS handshake checks whether the
// certificate or key file changed on disk.
const CertReloadInterval = 5 * time.Second

// ServerTLS loads a certificate and its key (PEM files) into a server TLS
// configuration: TLS 1.2 at least, HTTP/2 and HTTP/1.1 offered. Both files
// empty means no TLS (nil, nil); one without the other is an error. A renewed
// certificate (files rewritten, e.g. by an ACME client or cert-manager) is
// picked up by new connections within CertReloadInterval, without a restart;
// a pair that does not load (half written, mismatched) keeps the previous one
// serving.
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: set both the certificate and the key file, or neither")
	}
	cr, err := newCertReloader(certFile, keyFile, CertReloadInterval)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cr.get,
		NextProtos:     []string{"h2", "http/1.1"},
	}, nil
}

// certReloader serves the newest loadable certificate of a file pair.
type certReloader struct {
	certFile, keyFile string
	every             time.Duration

	cur     atomic.Pointer[tls.Certificate]
	mu      sync.Mutex // one reload at a time
	checked time.Time  // wall clock: file times are wall clock too
	stamp   string     // hash of the pair last loaded
}

func newCertReloader(certFile, keyFile string, every time.Duration) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, every: every}
	stamp, _ := c.fileStamp()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	c.cur.Store(&cert)
	c.stamp, c.checked = stamp, time.Now()
	return c, nil
}

// fileStamp identifies the current contents of the pair: a hash of both files
// (small, read at most every c.every), since a rewrite can keep the size and
// land in the same file-time tick.
func (c *certReloader) fileStamp() (string, error) {
	h := sha256.New()
	for _, f := range []string{c.certFile, c.keyFile} {
		raw, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(raw)
		h.Write([]byte{0})
	}
	return string(h.Sum(nil)), nil
}

// get is tls.Config.GetCertificate: the current certificate, reloaded first
// when the files changed since the last check (at most every c.every).
func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= c.every {
		c.checked = now
		if stamp, err := c.fileStamp(); err == nil && stamp != c.stamp {
			if cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile); err == nil {
				c.cur.Store(&cert)
				c.stamp = stamp
			} // else keep serving the last good pair and try again next time
		}
	}
	return c.cur.Load(), nil
}

// IsLoopback reports whether a listen address (host:port) only accepts
// connections from this machine; an empty host ("all interfaces") is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
