package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/stagegate/stagegate/sandbox"
)

func init() {
	register(command{name: "monitor", order: 30, run: cmdMonitor, summary: "run the risk monitors alone against an external NATS JetStream\n(e.g. a sandbox started with nats.listen), with their own incident store"})
}

func cmdMonitor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("monitor", flag.ContinueOnError)
	natsURL := fs.String("nats", sandbox.DefaultMonitorNATSURL, "NATS server URL (comma-separated for several)")
	creds := fs.String("nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	db := fs.String("db", sandbox.DefaultMonitorDB, "SQLite incident store file (its folder is created)")
	workers := fs.Int("workers", 0, "interactions processed at once (default 4)")
	replicas := fs.Int("replicas", 1, "stream replicas when the streams must be created (3 on a cluster)")
	startTimeout := fs.Duration("start-timeout", sandbox.DefaultMonitorStartTimeout, "how long to wait for NATS and the streams")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args, stderr, `stagegate monitor — run the risk monitors in their own process.

Connects to NATS JetStream at --nats (waiting up to --start-timeout for it and
for the streams, which it creates when missing), consumes every interaction
through the shared durable consumer "monitors", runs the detectors, and records
interactions and incidents in the SQLite file --db. Start several to share the
work. Stops cleanly on SIGINT/SIGTERM: messages in hand are finished first.`); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	m, err := sandbox.NewMonitor(sandbox.MonitorConfig{
		NATSURL: *natsURL, NATSCreds: *creds, DBPath: *db, Workers: *workers,
		Replicas: *replicas, StartTimeout: *startTimeout,
	}, sandbox.Deps{Logger: log})
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	cfg := m.Config()
	fmt.Fprintf(stdout, "monitor running: store %s, %d workers\n", cfg.DBPath, cfg.Workers)
	<-ctx.Done()
	log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), sandbox.DefaultShutdown)
	defer cancel()
	return m.Stop(stopCtx)
}
