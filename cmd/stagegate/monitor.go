package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/sandbox"
)

func init() {
	register(command{name: "monitor", order: 30, run: cmdMonitor, summary: "run the risk monitors alone against an external NATS JetStream\n(a sandbox started with nats.listen, or a cluster) and a store (--db)"})
}

func cmdMonitor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("monitor", flag.ContinueOnError)
	f := addRoleFlags(fs, sandbox.RoleMonitor)
	// Without --config the monitor runs alone with these defaults (no admin API).
	fs.Lookup("nats").DefValue = sandbox.DefaultMonitorNATSURL
	fs.Lookup("db").DefValue = sandbox.DefaultMonitorDB
	startTimeout := fs.Duration("start-timeout", sandbox.DefaultMonitorStartTimeout, "how long to wait for NATS and the streams (without --config)")
	if err := parseFlags(fs, args, stderr, roleAbout[sandbox.RoleMonitor]); err != nil {
		return err
	}
	if f.config != "" {
		return runRole(ctx, sandbox.RoleMonitor, f, stdout, stderr)
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	natsURL, db, replicas := f.nats, f.db, f.replicas
	if natsURL == "" {
		natsURL = sandbox.DefaultMonitorNATSURL
	}
	if db == "" {
		db = sandbox.DefaultMonitorDB
	}
	if replicas == 0 {
		replicas = 1
	}
	m, err := sandbox.NewMonitor(sandbox.MonitorConfig{
		NATSURL: natsURL, NATSCreds: f.creds, DBPath: db, Workers: f.workers,
		NATSTLS:  sandbox.NATSConfig{TLSCAFile: f.ca, TLSCertFile: f.cert, TLSKeyFile: f.key},
		Replicas: replicas, StartTimeout: *startTimeout,
	}, sandbox.Deps{Logger: log})
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	cfg := m.Config()
	fmt.Fprintf(stdout, "monitor running: store %s, %d workers\n", incidents.RedactDSN(cfg.DBPath), cfg.Workers)
	<-ctx.Done()
	log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), sandbox.DefaultShutdown)
	defer cancel()
	return m.Stop(stopCtx)
}
