package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/policies/experiment"
)

// Scale-out runs more processes of the same binary on existing engines: a NATS
// cluster (nats.url, JetStream replicas 3) and one PostgreSQL database (db:
// postgres://...). `stagegate up` runs every part in one process; each of
// these roles runs one part, with the same configuration file:
//
//   - gateway: the OpenAI-compatible gateway with its policies, rollout
//     watcher and publisher (any number, behind a load balancer; they share
//     secret_file so a user has one pseudonym everywhere);
//   - monitor: the monitor runner (any number; the durable consumer shares
//     the interactions between them);
//   - controller: the rollout controller, one active leader elected through a
//     lease in the NATS KV bucket LEADERS (deploy.Lease); the others wait and
//     take over within about a lease TTL when the leader dies;
//   - console: the reviewers' console and the review API.
//
// Every role serves the admin API (health, readiness, metrics, and the
// rollout, key and incident endpoints) on admin.addr; rollout actions work
// from any role, since every write is a compare-and-set in ROLLOUTS.

// Role names.
const (
	// RoleAll runs every part (`stagegate up`).
	RoleAll        = "all"
	RoleGateway    = "gateway"
	RoleMonitor    = "monitor"
	RoleController = "controller"
	RoleConsole    = "console"
)

// Roles are the single roles NewRole accepts.
var Roles = []string{RoleGateway, RoleMonitor, RoleController, RoleConsole}

// Defaults for RoleOptions.
const (
	// DefaultLeaseTTL is the controller lease's TTL.
	DefaultLeaseTTL = deploy.DefaultLeaseTTL
	// roleControllerInterval is the reconcile interval of a controller role: a
	// pass costs a few indexed queries per rollout.
	roleControllerInterval = 200 * time.Millisecond
	// controllerStopTimeout bounds stopping the controller loop on demotion.
	controllerStopTimeout = 10 * time.Second
	// maxReplicas of a JetStream stream.
	maxReplicas = 5
)

// RoleOptions are what a single-role process adds to Config.
type RoleOptions struct {
	// LeaseTTL is the controller lease's TTL (default DefaultLeaseTTL; the
	// first controller to create the LEADERS bucket sets it for all).
	LeaseTTL time.Duration
	// Holder names this process in the lease (default host-pid-random).
	Holder string
}

// roleSpec is the role of a running Sandbox; the zero value runs every part.
type roleSpec struct {
	name string
	opts RoleOptions
}

// NewRole validates cfg for one role and returns a Sandbox that runs only that
// role's part (plus the admin API) when started. cfg.NATS.URL must name the
// shared NATS; cfg.DB should name the shared store (a postgres:// URL; a
// SQLite path works for processes on one machine).
func NewRole(role string, cfg Config, opts RoleOptions, deps Deps) (*Sandbox, error) {
	var errs []error
	if !slices.Contains(Roles, role) {
		errs = append(errs, fmt.Errorf("role %q: want one of %s", role, strings.Join(Roles, ", ")))
	}
	if cfg.NATS.URL == "" {
		errs = append(errs, errors.New("nats.url: a single role needs the shared NATS (--nats nats://host:4222,...)"))
	}
	if opts.LeaseTTL != 0 && (opts.LeaseTTL < deploy.MinLeaseTTL || opts.LeaseTTL > deploy.MaxLeaseTTL) {
		errs = append(errs, fmt.Errorf("lease ttl %s: want %s to %s", opts.LeaseTTL, deploy.MinLeaseTTL, deploy.MaxLeaseTTL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid %s configuration:\n%w", role, err)
	}
	s, err := New(cfg, deps)
	if err != nil {
		return nil, err
	}
	s.role = roleSpec{name: role, opts: opts}
	return s, nil
}

// Role is the role this process runs (RoleAll for `up`).
func (s *Sandbox) Role() string {
	if s.role.name == "" {
		return RoleAll
	}
	return s.role.name
}

// runs reports whether this process runs part (a role name).
func (s *Sandbox) runs(part string) bool {
	return s.role.name == "" || s.role.name == RoleAll || s.role.name == part
}

// Leading reports whether this process runs the rollout controller's loop: as
// the elected leader on an external NATS, or always when NATS is embedded.
func (s *Sandbox) Leading() bool {
	s.mu.Lock()
	l, rp := s.lease, s.rollouts
	s.mu.Unlock()
	if l != nil {
		return l.Leader()
	}
	return rp != nil && rp.ctrl != nil && s.runs(RoleController)
}

// LeaseStats reports the controller lease (zero without one).
func (s *Sandbox) LeaseStats() deploy.LeaseStats {
	s.mu.Lock()
	l := s.lease
	s.mu.Unlock()
	if l == nil {
		return deploy.LeaseStats{}
	}
	return l.Stats()
}

// startController opens ctrl for manual actions and runs its reconcile loop
// where this process should: at once with an embedded NATS (the only process),
// under the LEADERS lease with an external one (one leader among all the
// processes running the controller), not at all in other roles.
func (s *Sandbox) startController(ctx context.Context, ctrl *deploy.Controller) error {
	if err := ctrl.Open(ctx); err != nil {
		return err
	}
	if !s.runs(RoleController) {
		return nil
	}
	if s.ns != nil {
		return ctrl.Start(ctx)
	}
	l, err := deploy.NewLease(deploy.LeaseConfig{
		Name: deploy.LeaseController, Holder: s.role.opts.Holder, TTL: s.role.opts.LeaseTTL, Replicas: s.replicas(),
	}, deploy.LeaseDeps{
		JS: s.js, Clock: s.clk, Logger: s.log,
		OnElected: func(ctx context.Context) error {
			s.log.Info("rollout controller: leading")
			return ctrl.Start(ctx)
		},
		OnDemoted: func(ctx context.Context) {
			stopCtx, cancel := context.WithTimeout(ctx, controllerStopTimeout)
			defer cancel()
			if err := ctrl.Stop(stopCtx); err != nil {
				s.log.Error("rollout controller: stop after losing the lease", "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := l.Start(ctx); err != nil {
		return err
	}
	s.lease = l
	s.log.Info("rollout controller: waiting for the leadership lease", "holder", l.Config().Holder, "ttl", l.Config().TTL)
	return nil
}

// stopLease ends the election; a leader stops its loop and releases the lease
// so another controller takes over at once.
func (s *Sandbox) stopLease(ctx context.Context) error {
	l := s.lease
	if l == nil {
		return nil
	}
	s.lease = nil
	return l.Stop(ctx)
}

// startRolloutControl gives a process without a gateway the rollout controller
// (manual actions; the loop by role) and the model registry, without the
// watcher that only a gateway needs.
func (s *Sandbox) startRolloutControl(ctx context.Context) error {
	models, err := deploy.OpenModels(ctx, s.js, s.replicas(), s.clk)
	if err != nil {
		return err
	}
	s.rollouts = &rolloutParts{models: models}
	// A reviewer confirms incidents in another process (console) whose nudge
	// cannot wake this loop: reconcile often enough that the kill switch
	// reaches the gateways within a second anyway.
	ctrl, err := deploy.New(deploy.Config{Interval: roleControllerInterval}, deploy.Deps{JS: s.js, Evidence: s.store, Clock: s.clk, Logger: s.log, OnTransition: s.auditTransition})
	if err != nil {
		return err
	}
	if err := s.startController(ctx, ctrl); err != nil {
		return err
	}
	s.rollouts.ctrl = ctrl
	return nil
}

// ensureShared creates or updates the streams and the MODELS and EXPERIMENTS
// buckets on an external NATS. Processes starting together on a new cluster all try to
// create them at once, and JetStream may leave some of those concurrent
// creates unanswered; the caller retries, and once they exist every call is an
// idempotent update.
func ensureShared(ctx context.Context, js jetstream.JetStream, o events.StreamOptions) error {
	if err := events.EnsureStreams(ctx, js, o); err != nil {
		return err
	}
	if _, err := deploy.OpenModels(ctx, js, o.Replicas, nil); err != nil {
		return err
	}
	_, err := experiment.EnsureBucket(ctx, js, o.Replicas)
	return err
}

// storeTarget is the incident store: db, else the SQLite file in the data dir.
func (s *Sandbox) storeTarget() string {
	if s.cfg.DB != "" {
		return s.cfg.DB
	}
	return filepath.Join(s.cfg.DataDir, "stagegate.db")
}

// openStore opens the incident store (a SQLite file's folder is created).
func (s *Sandbox) openStore(ctx context.Context) (*incidents.SQLStore, error) {
	target := s.storeTarget()
	if !incidents.IsPostgresDSN(target) {
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return nil, fmt.Errorf("store dir: %w", err)
		}
	}
	st, err := incidents.Open(ctx, target, s.clk)
	if err != nil {
		return nil, err
	}
	s.log.Info("incident store open", "engine", st.Engine(), "db", incidents.RedactDSN(target))
	return st, nil
}

// secretPath is the pseudonymisation secret's file.
func (s *Sandbox) secretPath() string {
	if s.cfg.SecretFile != "" {
		return s.cfg.SecretFile
	}
	return filepath.Join(s.cfg.DataDir, "secret")
}

// replicas of the streams and buckets this process creates.
func (s *Sandbox) replicas() int { return s.cfg.NATS.replicas() }

func (c NATSConfig) replicas() int {
	if c.Replicas <= 0 {
		return 1
	}
	return c.Replicas
}

// streamOptions sizes the streams on an external NATS.
func (c NATSConfig) streamOptions() events.StreamOptions {
	return events.StreamOptions{Replicas: c.replicas(), DuplicateWindow: c.DuplicateWindow}
}

// tlsOptions are the client TLS settings for an external NATS.
func (c NATSConfig) tlsOptions() []nats.Option {
	var opts []nats.Option
	if c.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(c.TLSCAFile))
	}
	if c.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(c.TLSCertFile, c.TLSKeyFile))
	}
	return opts
}

// natsClientName names this process's NATS connection (seen in the server's
// connection list).
func (s *Sandbox) natsClientName() string { return "stagegate-" + s.Role() }

// scaleProblems checks the scale-out settings (part of Validate).
func (c Config) scaleProblems() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	n := c.NATS
	if n.Replicas < 0 || n.Replicas > maxReplicas {
		add("nats.replicas %d: want 1-%d (3 on a cluster)", n.Replicas, maxReplicas)
	}
	if n.DuplicateWindow < 0 || n.DuplicateWindow > events.DefaultStreamMaxAge {
		add("nats.duplicate_window %s: want 0 (default %s) up to the streams' max age %s", n.DuplicateWindow, events.DefaultDuplicateWindow, events.DefaultStreamMaxAge)
	} else if n.DuplicateWindow > 0 && n.DuplicateWindow < time.Second {
		add("nats.duplicate_window %s: want at least 1s", n.DuplicateWindow)
	}
	if n.Replicas > 1 && n.URL == "" {
		add("nats.replicas %d: the embedded server holds one replica; set nats.url to a cluster", n.Replicas)
	}
	if (n.TLSCertFile == "") != (n.TLSKeyFile == "") {
		add("nats: set both tls_cert_file and tls_key_file, or neither")
	}
	for _, f := range []struct{ name, path string }{{"tls_ca_file", n.TLSCAFile}, {"tls_cert_file", n.TLSCertFile}, {"tls_key_file", n.TLSKeyFile}} {
		if f.path == "" {
			continue
		}
		if n.URL == "" {
			add("nats.%s: only used with nats.url", f.name)
		} else if st, err := os.Stat(f.path); err != nil {
			add("nats.%s: %v", f.name, err)
		} else if st.IsDir() {
			add("nats.%s %s: is a folder", f.name, f.path)
		}
	}
	switch db := strings.ToLower(c.DB); {
	case incidents.IsPostgresDSN(c.DB):
		if _, err := url.Parse(c.DB); err != nil {
			add("db: not a postgres:// URL: %s", incidents.RedactDSN(c.DB))
		}
	case strings.HasPrefix(db, "postgres") || strings.Contains(db, "://"):
		add("db %q: want a SQLite file path or a postgres://user@host:5432/dbname URL", incidents.RedactDSN(c.DB))
	}
	return errs
}
