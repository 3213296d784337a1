package gateway

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults for Config.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMaxResponseBytes  = 16 << 20
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultUpstreamTimeout   = 120 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultBodyReadTimeout   = 30 * time.Second
)

// Config of the gateway listener and request bounds.
type Config struct {
	// Addr is the listen address; loopback by default. Port 0 picks a free port.
	Addr string
	// MaxBodyBytes caps a request body; larger bodies get 413.
	MaxBodyBytes int64
	// MaxResponseBytes caps a non-streaming upstream answer; larger ones fail with 502.
	MaxResponseBytes int64
	// MaxHeaderBytes caps the request header block.
	MaxHeaderBytes int
	// UpstreamTimeout bounds one upstream call end to end (per model it can be lower).
	UpstreamTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration
	// BodyReadTimeout bounds reading a request's body once its headers are in,
	// so a client trickling bytes cannot hold a connection and a goroutine
	// (408 request_timeout). It does not bound the answer, which may stream.
	BodyReadTimeout time.Duration
	// StreamKeepAlive: when a streaming request's model has not answered for this
	// long, the gateway starts the event stream and sends an SSE comment at this
	// interval so clients and proxies do not give up. Negative disables it.
	StreamKeepAlive time.Duration
	// TLSCertFile and TLSKeyFile (PEM) serve HTTPS instead of HTTP; both or
	// neither. Off by default: the default listener is loopback only.
	TLSCertFile, TLSKeyFile string
}

// WithDefaults fills zero fields with the defaults.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.StreamKeepAlive == 0 {
		c.StreamKeepAlive = DefaultStreamKeepAlive
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("gateway addr %q: %w", c.Addr, err))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("gateway max body bytes %d: must be at least 1024", c.MaxBodyBytes))
	}
	if c.MaxResponseBytes < 1024 {
		errs = append(errs, fmt.Errorf("gateway max response bytes %d: must be at least 1024", c.MaxResponseBytes))
	}
	if c.MaxHeaderBytes < 4096 {
		errs = append(errs, fmt.Errorf("gateway max header bytes %d: must be at least 4096", c.MaxHeaderBytes))
	}
	if c.UpstreamTimeout <= 0 {
		errs = append(errs, fmt.Errorf("gateway upstream timeout %s: must be positive", c.UpstreamTimeout))
	}
	if c.BodyReadTimeout < 0 {
		errs = append(errs, fmt.Errorf("gateway body read timeout %s: must not be negative", c.BodyReadTimeout))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("gateway tls: set both the certificate and the key file, or neither"))
	}
	return errors.Join(errs...)
}
