package sandbox

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/stagegate/stagegate/gateway"
)

// Security settings of the listeners: TLS, header limits, and the response
// headers of the admin API.

// adminSecurityHeaders are set on every admin API answer before its handler
// runs; a handler serving HTML (the console) sets its own policy over them.
var adminSecurityHeaders = map[string]string{
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'",
	"Referrer-Policy":              "no-referrer",
	"Cache-Control":                "no-store",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Cross-Origin-Opener-Policy":   "same-origin",
}

// hstsValue asks browsers to keep to HTTPS for a year once they saw it.
const hstsValue = "max-age=31536000"

// securityHeaders wraps the admin handler: JSON answers must never be sniffed
// as HTML, framed, cached or leak their URL in a Referer. Over TLS it adds HSTS.
func securityHeaders(next http.Handler, tls bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range adminSecurityHeaders {
			h.Set(k, v)
		}
		if tls {
			h.Set("Strict-Transport-Security", hstsValue)
		}
		next.ServeHTTP(w, r)
	})
}

// securityProblems checks the TLS, NATS and header settings (part of Validate).
func (c Config) securityProblems() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, l := range []struct{ name, cert, key string }{
		{"gateway", c.Gateway.TLSCertFile, c.Gateway.TLSKeyFile},
		{"admin", c.Admin.TLSCertFile, c.Admin.TLSKeyFile},
	} {
		if (l.cert == "") != (l.key == "") {
			add("%s: set both tls_cert_file and tls_key_file, or neither", l.name)
		}
	}
	if c.Gateway.MaxHeaderBytes != 0 && c.Gateway.MaxHeaderBytes < 4096 {
		add("gateway.max_header_bytes %d: want at least 4096", c.Gateway.MaxHeaderBytes)
	}
	if c.Gateway.TrialRefresh < 0 {
		add("gateway.trial_refresh %s: must not be negative", c.Gateway.TrialRefresh)
	}
	if c.Gateway.KeyRefresh < 0 {
		add("gateway.key_refresh %s: must not be negative", c.Gateway.KeyRefresh)
	}
	if c.NATS.URL != "" {
		if c.NATS.Listen != "" {
			add("nats: set url (an external server) or listen (the embedded one), not both")
		}
		for _, u := range strings.Split(c.NATS.URL, ",") {
			scheme, rest, ok := strings.Cut(strings.TrimSpace(u), "://")
			if !ok || rest == "" || (scheme != "nats" && scheme != "tls" && scheme != "ws" && scheme != "wss") {
				add("nats.url %q: want nats://host:port (or tls, ws, wss)", u)
			}
		}
	}
	if c.NATS.Creds != "" {
		if c.NATS.URL == "" {
			add("nats.creds: only used with nats.url")
		} else if st, err := os.Stat(c.NATS.Creds); err != nil {
			add("nats.creds: %v", err)
		} else if st.IsDir() {
			add("nats.creds %s: is a folder", c.NATS.Creds)
		}
	}
	return errs
}

// warnCleartext logs listeners reachable beyond this machine without TLS.
func (s *Sandbox) warnCleartext() {
	if s.cfg.Admin.TLSCertFile == "" && !gateway.IsLoopback(s.cfg.Admin.Addr) {
		s.log.Warn("the admin API listens beyond loopback without TLS: the admin token crosses the network in clear text", "addr", s.cfg.Admin.Addr)
	}
}
