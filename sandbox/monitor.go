package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/monitors"
)

// Defaults for MonitorConfig.
const (
	DefaultMonitorNATSURL      = "nats://127.0.0.1:4223"
	DefaultMonitorDB           = "./.stagegate-monitor/stagegate.db"
	DefaultMonitorStartTimeout = 2 * time.Minute
	// monitorRetryEvery is the pause between attempts to reach NATS and the streams.
	monitorRetryEvery = 250 * time.Millisecond
	// monitorAttemptTimeout bounds one attempt to ensure the streams.
	monitorAttemptTimeout = 5 * time.Second
)

// MonitorConfig configures the monitor role: the monitor runner alone, in its own
// process, against an external NATS (e.g. a sandbox started with nats.listen), with
// its own incident store.
type MonitorConfig struct {
	// NATSURL is the NATS server to connect to; several URLs are comma-separated.
	// Default DefaultMonitorNATSURL.
	NATSURL string
	// NATSCreds is a NATS credentials file (user JWT and NKey seed); empty connects
	// without credentials.
	NATSCreds string
	// DBPath is the incident store: a SQLite file (its directory is created,
	// 0700) or a postgres:// URL shared with the other processes. Default
	// DefaultMonitorDB.
	DBPath string
	// NATSTLS are the client TLS settings: CA file, and certificate and key
	// files for servers that require a client certificate (optional).
	NATSTLS NATSConfig
	// Workers is the number of interactions processed at once (default
	// monitors.DefaultWorkers).
	Workers int
	// Replicas of the streams when they do not exist yet: 1 on a single server, 3 on
	// a cluster (default 1).
	Replicas int
	// StartTimeout bounds the wait for NATS and the streams at start (default
	// DefaultMonitorStartTimeout).
	StartTimeout time.Duration
}

// WithDefaults fills unset fields.
func (c MonitorConfig) WithDefaults() MonitorConfig {
	if c.NATSURL == "" {
		c.NATSURL = DefaultMonitorNATSURL
	}
	if c.DBPath == "" {
		c.DBPath = DefaultMonitorDB
	}
	if c.Workers == 0 {
		c.Workers = monitors.DefaultWorkers
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultMonitorStartTimeout
	}
	return c
}

// Validate reports every problem at once.
func (c MonitorConfig) Validate() error {
	var errs []error
	for _, u := range strings.Split(c.NATSURL, ",") {
		scheme, rest, ok := strings.Cut(strings.TrimSpace(u), "://")
		switch {
		case !ok || rest == "":
			errs = append(errs, fmt.Errorf("nats url %q: want nats://host:port", u))
		case scheme != "nats" && scheme != "tls" && scheme != "ws" && scheme != "wss":
			errs = append(errs, fmt.Errorf("nats url %q: scheme %q: want nats, tls, ws or wss", u, scheme))
		}
	}
	if c.NATSCreds != "" {
		if st, err := os.Stat(c.NATSCreds); err != nil {
			errs = append(errs, fmt.Errorf("nats creds: %w", err))
		} else if st.IsDir() {
			errs = append(errs, fmt.Errorf("nats creds %s: is a folder", c.NATSCreds))
		}
	}
	if c.DBPath == "" {
		errs = append(errs, errors.New("db: a SQLite file path or a postgres:// URL is required"))
	}
	tls := c.NATSTLS
	tls.URL = c.NATSURL
	errs = append(errs, Config{NATS: tls, DB: c.DBPath}.scaleProblems()...)
	if c.Workers < 1 || c.Workers > monitors.MaxWorkers {
		errs = append(errs, fmt.Errorf("workers %d: want 1-%d", c.Workers, monitors.MaxWorkers))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d: want 1-5", c.Replicas))
	}
	if c.StartTimeout <= 0 {
		errs = append(errs, fmt.Errorf("start timeout %s: must be positive", c.StartTimeout))
	}
	return errors.Join(errs...)
}

// Monitor is the monitor role: it consumes interactions from an external NATS
// JetStream, runs the same detectors as `stagegate up`, and records interactions
// and incidents in its own store. Several Monitor processes share the work through
// the durable consumer.
type Monitor struct {
	cfg MonitorConfig
	log *slog.Logger
	clk clock.Clock

	mu    sync.Mutex
	nc    *nats.Conn
	store *incidents.SQLiteStore
	// sb carries what startMonitors needs, so this role runs exactly the runner
	// and detectors the all-in-one sandbox runs.
	sb *Sandbox
}

// NewMonitor validates the configuration; nothing connects until Start. deps.Env
// is not used.
func NewMonitor(cfg MonitorConfig, deps Deps) (*Monitor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid monitor configuration:\n%w", err)
	}
	m := &Monitor{cfg: cfg, log: deps.Logger, clk: clock.OrReal(deps.Clock)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// Start connects to NATS, waits (up to StartTimeout) until the streams exist,
// creating them if need be, opens the store and starts the runner.
func (m *Monitor) Start(ctx context.Context) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sb != nil {
		return errors.New("monitor already started")
	}
	defer func() {
		if err != nil {
			m.stopLocked(context.Background())
		}
	}()
	opts := []nats.Option{
		nats.Name("stagegate-monitor"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true), // the bus may come up after us
		nats.ReconnectWait(monitorRetryEvery),
	}
	if m.cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(m.cfg.NATSCreds))
	}
	opts = append(opts, m.cfg.NATSTLS.tlsOptions()...)
	if m.nc, err = nats.Connect(m.cfg.NATSURL, opts...); err != nil {
		return fmt.Errorf("nats connect %s: %w", m.cfg.NATSURL, err)
	}
	js, err := jetstream.New(m.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := m.ensureStreams(ctx, js); err != nil {
		return err
	}
	sb := &Sandbox{cfg: Config{DB: m.cfg.DBPath, Monitors: MonitorsConfig{Workers: m.cfg.Workers}}, log: m.log, clk: m.clk, js: js, env: os.Getenv}
	if m.store, err = sb.openStore(ctx); err != nil {
		return fmt.Errorf("incident store: %w", err)
	}
	sb.store = m.store
	if err := sb.startMonitors(ctx); err != nil {
		return err
	}
	m.sb = sb
	m.log.Info("monitor role started", "nats", m.nc.ConnectedUrlRedacted(), "db", incidents.RedactDSN(m.cfg.DBPath), "workers", m.cfg.Workers)
	return nil
}

// ensureStreams calls the idempotent events.EnsureStreams until it succeeds, the
// start timeout passes or ctx ends.
func (m *Monitor) ensureStreams(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StartTimeout)
	defer cancel()
	wait := time.NewTimer(monitorRetryEvery)
	defer wait.Stop()
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, monitorAttemptTimeout)
		err := events.EnsureStreams(actx, js, events.StreamOptions{Replicas: m.cfg.Replicas})
		acancel()
		if err == nil {
			return nil
		}
		if attempt == 1 || attempt%20 == 0 {
			m.log.Warn("waiting for NATS JetStream and the streams", "url", m.cfg.NATSURL, "status", m.nc.Status().String(), "err", err)
		}
		wait.Reset(monitorRetryEvery)
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats %s: streams not available within %s: %w", m.cfg.NATSURL, m.cfg.StartTimeout, errors.Join(err, ctx.Err()))
		case <-wait.C:
		}
	}
}

// Stop lets the runner finish the messages it holds (until ctx ends), then closes
// the connection and the store.
func (m *Monitor) Stop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopLocked(ctx)
}

func (m *Monitor) stopLocked(ctx context.Context) error {
	var errs []error
	if m.sb != nil && m.sb.runner != nil {
		errs = append(errs, m.sb.runner.Stop(ctx))
	}
	if m.sb != nil && m.sb.ingester != nil {
		errs = append(errs, m.sb.ingester.Stop(ctx))
	}
	if m.sb != nil && m.sb.feedback != nil {
		errs = append(errs, m.sb.feedback.Stop(ctx))
	}
	m.sb = nil
	if m.nc != nil {
		_ = m.nc.Drain()
		m.nc.Close()
		m.nc = nil
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
		m.store = nil
	}
	return errors.Join(errs...)
}

// Run starts the monitor, serves until ctx ends, then stops it within
// DefaultShutdown.
func (m *Monitor) Run(ctx context.Context) error {
	if err := m.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), DefaultShutdown)
	defer cancel()
	return m.Stop(stopCtx)
}

// Stats are the runner's counters (zero before Start).
func (m *Monitor) Stats() monitors.Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sb == nil || m.sb.runner == nil {
		return monitors.Stats{}
	}
	return m.sb.runner.Stats()
}

// Store is the monitor's incident store (nil before Start and after Stop).
func (m *Monitor) Store() incidents.Store {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.store == nil {
		return nil
	}
	return m.store
}

// Config returns the effective configuration.
func (m *Monitor) Config() MonitorConfig { return m.cfg }
