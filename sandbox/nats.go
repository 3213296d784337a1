package sandbox

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Defaults for the embedded nats-server.
const (
	DefaultMaxStoreBytes  = 1 << 30
	DefaultMaxMemoryBytes = 64 << 20
	natsReadyTimeout      = 15 * time.Second
)

// startNATS starts the embedded nats-server with JetStream on disk under the data
// dir and connects to it in-process. With listen empty no TCP port is opened.
func startNATS(dataDir, listen string, maxStore int64) (*server.Server, *nats.Conn, error) {
	if maxStore <= 0 {
		maxStore = DefaultMaxStoreBytes
	}
	opts := &server.Options{
		ServerName:         "stagegate",
		JetStream:          true,
		StoreDir:           filepath.Join(dataDir, "jetstream"),
		JetStreamMaxStore:  maxStore,
		JetStreamMaxMemory: DefaultMaxMemoryBytes,
		NoLog:              true,
		NoSigs:             true, // the sandbox owns signal handling
		DontListen:         listen == "",
	}
	if listen != "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, nil, fmt.Errorf("nats listen %q: %w", listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, nil, fmt.Errorf("nats listen %q: bad port", listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT // "host:0" picks a free port, as for the other listeners
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(natsReadyTimeout) {
		ns.Shutdown()
		return nil, nil, fmt.Errorf("nats server not ready within %s", natsReadyTimeout)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("stagegate-up"), nats.MaxReconnects(-1))
	if err != nil {
		ns.Shutdown()
		return nil, nil, fmt.Errorf("nats connect: %w", err)
	}
	return ns, nc, nil
}
