package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// ServerTLS loads a certificate and its key (PEM files) into a server TLS
// configuration: TLS 1.2 at least, HTTP/2 and HTTP/1.1 offered. Both files
// empty means no TLS (nil, nil); one without the other is an error.
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: set both the certificate and the key file, or neither")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
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
