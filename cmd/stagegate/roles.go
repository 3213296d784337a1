package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/stagegate/stagegate/sandbox"
)

// The single-role commands: gateway, controller and console (monitor.go runs
// the monitor role). Each takes the configuration file `up` takes, joins the
// shared NATS (--nats) and store (--db), and runs only its part plus the admin
// API (/healthz, /readyz, /metrics) on --admin-addr.

func init() {
	register(command{name: "gateway", order: 31, run: roleCommand(sandbox.RoleGateway),
		summary: "run the OpenAI-compatible gateway alone against a shared NATS (--nats)\nand store (--db); start any number behind a load balancer"})
	register(command{name: "controller", order: 32, run: roleCommand(sandbox.RoleController),
		summary: "run the rollout controller against a shared NATS and store; start two:\none leads (NATS KV lease), the other takes over when it dies"})
	register(command{name: "console", order: 33, run: roleCommand(sandbox.RoleConsole),
		summary: "run the reviewers' console and the admin/review API alone against a\nshared NATS and store"})
}

// roleAbout is each role command's help text.
var roleAbout = map[string]string{
	sandbox.RoleGateway: `stagegate gateway — run the gateway in its own process.

Serves the OpenAI-compatible API on --addr with the trials, keys, policies and
models of --config, publishes every interaction to the shared NATS JetStream
(--nats; spooled under --data-dir while NATS is away) and follows rollouts from
the ROLLOUTS bucket. Every gateway of one installation must use the same
--secret-file (user pseudonyms) and --config. Stops cleanly on SIGTERM.`,
	sandbox.RoleController: `stagegate controller — run the rollout controller in its own process.

Reconciles every rollout against the incident store (--db) while it holds the
leadership lease in the NATS KV bucket LEADERS; a second controller waits and
takes over within about --lease-ttl when the leader dies (at once when it stops
cleanly). Also serves the rollout admin API on --admin-addr.`,
	sandbox.RoleConsole: `stagegate console — run the reviewers' console in its own process.

Serves the console (/console/) and the admin and review API on --admin-addr over
the shared incident store (--db); rollout actions go to the ROLLOUTS bucket on
the shared NATS (--nats), where the leading controller and every gateway see
them.`,
	sandbox.RoleMonitor: `stagegate monitor — run the risk monitors in their own process.

Connects to NATS JetStream at --nats (waiting up to --start-timeout for it and
for the streams, which it creates when missing), consumes every interaction
through the shared durable consumer "monitors", runs the detectors, and records
interactions and incidents in --db: a SQLite file or a postgres:// URL shared
with the other processes. Start several to share the work. With --config it
runs as a role like gateway and console (admin API with /healthz, /readyz and
/metrics on --admin-addr). Stops cleanly on SIGINT/SIGTERM: messages in hand
are finished first.`,
}

// roleFlags are the flags every role shares; empty values keep the
// configuration file's settings.
type roleFlags struct {
	config, nats, creds, ca, cert, key string
	db, dataDir, adminAddr, secretFile string
	logLevel, logFormat                string
	replicas                           int
	addr                               string        // gateway
	leaseTTL                           time.Duration // controller
	holder                             string        // controller
	workers                            int           // monitor
}

// addRoleFlags defines the flags of role on fs.
func addRoleFlags(fs *flag.FlagSet, role string) *roleFlags {
	f := &roleFlags{}
	fs.StringVar(&f.config, "config", "", "YAML configuration file, the one stagegate up takes (see examples/stagegate.yaml); without it the demo trial")
	fs.StringVar(&f.nats, "nats", "", "NATS server URLs, comma-separated (nats://, tls://); overrides nats.url")
	fs.StringVar(&f.creds, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	fs.StringVar(&f.ca, "nats-ca", "", "PEM file of the CA that signed the NATS servers' certificates")
	fs.StringVar(&f.cert, "nats-cert", "", "PEM client certificate for NATS servers that require one (with --nats-key)")
	fs.StringVar(&f.key, "nats-key", "", "PEM key of --nats-cert")
	fs.IntVar(&f.replicas, "replicas", 0, "replicas of the streams and buckets when they must be created: 3 on a cluster (default the config's, else 1)")
	fs.StringVar(&f.db, "db", "", "incident store: a SQLite file, or a postgres://user@host:5432/db URL shared by every process")
	fs.StringVar(&f.dataDir, "data-dir", "", "local state (spool, default secret) (default "+sandbox.DefaultDataDir+")")
	fs.StringVar(&f.adminAddr, "admin-addr", "", "admin API listen address: /healthz /readyz /metrics /api/v1/... (default "+sandbox.DefaultAdminAddr+")")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	switch role {
	case sandbox.RoleGateway:
		fs.StringVar(&f.addr, "addr", "", "gateway listen address (default "+sandbox.DefaultAddr+")")
		fs.StringVar(&f.secretFile, "secret-file", "", "pseudonymisation secret shared by every gateway (default <data-dir>/secret, created)")
	case sandbox.RoleController:
		fs.DurationVar(&f.leaseTTL, "lease-ttl", 0, "leadership lease TTL: a dead leader is replaced within about this (default 6s)")
		fs.StringVar(&f.holder, "holder", "", "this controller's name in the lease (default host-pid-random)")
	case sandbox.RoleMonitor:
		fs.IntVar(&f.workers, "workers", 0, "interactions processed at once (default 4)")
	}
	return f
}

// loadConfig reads --config (or the demo) and applies the flags over it.
func (f *roleFlags) loadConfig() (sandbox.Config, error) {
	cfg := sandbox.Demo()
	if f.config != "" {
		var err error
		if cfg, err = sandbox.Load(f.config); err != nil {
			return cfg, err
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.NATS.URL, f.nats)
	set(&cfg.NATS.Creds, f.creds)
	set(&cfg.NATS.TLSCAFile, f.ca)
	set(&cfg.NATS.TLSCertFile, f.cert)
	set(&cfg.NATS.TLSKeyFile, f.key)
	set(&cfg.DB, f.db)
	set(&cfg.DataDir, f.dataDir)
	set(&cfg.Admin.Addr, f.adminAddr)
	set(&cfg.Gateway.Addr, f.addr)
	set(&cfg.SecretFile, f.secretFile)
	if f.replicas != 0 {
		cfg.NATS.Replicas = f.replicas
	}
	if f.workers != 0 {
		cfg.Monitors.Workers = f.workers
	}
	return cfg, nil
}

// logger builds the stderr logger of the flags.
func (f *roleFlags) logger(stderr io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return nil, fmt.Errorf("--log-format %q: want text or json", f.logFormat)
	}
	return slog.New(sandbox.NewLogHandler(stderr, lvl, f.logFormat == "json")), nil
}

// roleCommand is the command running role.
func roleCommand(role string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := flag.NewFlagSet(role, flag.ContinueOnError)
		f := addRoleFlags(fs, role)
		if err := parseFlags(fs, args, stderr, roleAbout[role]); err != nil {
			return err
		}
		return runRole(ctx, role, f, stdout, stderr)
	}
}

// runRole starts role with the flags, serves until ctx ends, then stops.
func runRole(ctx context.Context, role string, f *roleFlags, stdout, stderr io.Writer) error {
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := f.loadConfig()
	if err != nil {
		return err
	}
	sb, err := sandbox.NewRole(role, cfg, sandbox.RoleOptions{LeaseTTL: f.leaseTTL, Holder: f.holder}, sandbox.Deps{Logger: log.With("role", role)})
	if err != nil {
		return err
	}
	if err := sb.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stagegate %s running: admin http://%s", role, sb.AdminAddr())
	if role == sandbox.RoleGateway {
		fmt.Fprintf(stdout, ", gateway http://%s/v1", sb.GatewayAddr())
	}
	if cfg.Demo {
		fmt.Fprint(stdout, " (DEMO configuration: public demo keys)")
	}
	fmt.Fprintln(stdout)
	<-ctx.Done()
	log.Info("shutting down", "role", role)
	stopCtx, cancel := context.WithTimeout(context.Background(), sb.Config().ShutdownTimeout)
	defer cancel()
	return sb.Stop(stopCtx)
}
