package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/stagegate/stagegate/sandbox"
	"github.com/stagegate/stagegate/sandbox/sim"
)

func init() {
	register(command{name: "up", order: 10, run: cmdUp, summary: "run the whole sandbox in one process: embedded NATS JetStream, policies,\nincident store, simulated models, gateway, monitors and admin API\n(without --config: a demo trial with demo-only keys)"})
	register(command{name: "sim", order: 20, run: cmdSim, summary: "run the OpenAI-compatible model simulator alone"})
}

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	addr := fs.String("addr", "", "gateway listen address (default "+sandbox.DefaultAddr+", or the config's gateway.addr)")
	adminAddr := fs.String("admin-addr", "", "admin API listen address (default "+sandbox.DefaultAdminAddr+", or the config's admin.addr)")
	dataDir := fs.String("data-dir", "", "where JetStream, the incident store and the pseudonymisation secret live (default "+sandbox.DefaultDataDir+")")
	configPath := fs.String("config", "", "YAML configuration file (see examples/stagegate.yaml); without it a demo trial is seeded")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json (both carry trace and span ids)")
	if err := parseFlags(fs, args, stderr, `stagegate up — run the whole sandbox in one process.

Starts an embedded NATS JetStream (on disk under --data-dir, in-process only),
the incident store (SQLite), the trials' policies (OPA), simulated models, the
OpenAI-compatible gateway on --addr, the risk monitors, and the admin API with
/healthz, /readyz and /metrics on --admin-addr. Stops cleanly on SIGINT/SIGTERM:
in-flight requests finish and queued interactions are flushed first.`); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	if *logFormat != "text" && *logFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", *logFormat)
	}
	log := slog.New(sandbox.NewLogHandler(stderr, lvl, *logFormat == "json"))

	cfg := sandbox.Demo()
	if *configPath != "" {
		var err error
		if cfg, err = sandbox.Load(*configPath); err != nil {
			return err
		}
	}
	if *addr != "" {
		cfg.Gateway.Addr = *addr
	}
	if *adminAddr != "" {
		cfg.Admin.Addr = *adminAddr
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	sb, err := sandbox.New(cfg, sandbox.Deps{Logger: log})
	if err != nil {
		return err
	}
	if err := sb.Start(ctx); err != nil {
		return err
	}
	printBanner(stdout, sb)
	<-ctx.Done()
	log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), sb.Config().ShutdownTimeout)
	defer cancel()
	return sb.Stop(stopCtx)
}

func printBanner(w io.Writer, sb *sandbox.Sandbox) {
	cfg := sb.Config()
	scheme := func(cert string) string {
		if cert != "" {
			return "https"
		}
		return "http"
	}
	fmt.Fprintf(w, "\nStagegate is up.\n  gateway:   %s://%s/v1\n  admin API: %s://%s  (/healthz /readyz /metrics /api/v1/...)\n  data dir:  %s\n",
		scheme(cfg.Gateway.TLSCertFile), sb.GatewayAddr(), scheme(cfg.Admin.TLSCertFile), sb.AdminAddr(), cfg.DataDir)
	if !cfg.Demo {
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, `
DEMO MODE: the keys below are public and for local demos only.
  pilot API key: %s   (trial %q, model %q)
  admin token:   %s

Try it:
  curl -s http://%s/v1/chat/completions -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"model":"demo","user":"alice","messages":[{"role":"user","content":"Hello!"}]}'

  # an answer that leaks personal data opens an incident:
  curl -s http://%s/v1/chat/completions -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"model":"demo","user":"bob","messages":[{"role":"user","content":"[sim:pii] who is on call?"}]}'
  curl -s http://%s/api/v1/incidents -H 'Authorization: Bearer %s'

`, sandbox.DemoPilotKey, sandbox.DemoTrial, sandbox.DemoTrial, sandbox.DemoAdminKey,
		sb.GatewayAddr(), sandbox.DemoPilotKey, sb.GatewayAddr(), sandbox.DemoPilotKey, sb.AdminAddr(), sandbox.DemoAdminKey)
}

func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address")
	model := fs.String("model", "sim", "model id the simulator reports")
	answer := fs.String("answer", "", "fixed answer to every request without a directive (benchmarks)")
	delay := fs.Duration("delay", 0, "wait before the first token of every answer (benchmarks)")
	if err := parseFlags(fs, args, stderr, `stagegate sim — an OpenAI-compatible model simulator.

Serves POST /v1/chat/completions (plain and streaming) and GET /v1/models.
Directives in the last user message script its behaviour:
  [sim:pii]          answer with an e-mail, a +86 mobile number and a card number
  [sim:unsafe]       answer with confident unsafe medical advice
  [sim:slow=300ms]   wait before the first token
  [sim:gap=50ms]     wait between streamed chunks
  [sim:error=503]    fail with that HTTP status
  [sim:tokens=N]     answer with exactly N tokens
  [sim:cut=N]        break the stream after N chunks`); err != nil {
		return err
	}
	srv, err := sim.New(sim.Config{Addr: *addr, Models: []string{*model}, FixedAnswer: *answer, Delay: *delay})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "simulator listening on %s\n", srv.URL())
	<-ctx.Done()
	return srv.Stop(context.Background())
}
