package sandbox

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/monitors"
	"github.com/stagegate/stagegate/monitors/suite"
	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/sandbox/sim"
)

// Deps are what the sandbox takes from outside.
type Deps struct {
	// Logger for every component; nil discards.
	Logger *slog.Logger
	// Clock; nil is the wall clock.
	Clock clock.Clock
	// Env looks up environment variables (API keys by reference); nil uses os.Getenv.
	Env func(string) string
	// TracerProvider overrides the configured trace export (tests use an in-memory
	// exporter); nil follows Config.Telemetry.
	TracerProvider trace.TracerProvider
}

// Sandbox is the whole system in one process.
type Sandbox struct {
	cfg Config
	log *slog.Logger
	clk clock.Clock
	env func(string) string
	tp  trace.TracerProvider // from Deps; nil: from Config.Telemetry

	mu         sync.Mutex
	started    bool
	ns         *server.Server
	nc         *nats.Conn
	js         jetstream.JetStream
	store      *incidents.SQLiteStore
	sims       []*sim.Server
	publisher  *events.Publisher
	gw         *gateway.Gateway
	runner     *monitors.Runner
	ingester   *monitors.Ingester
	feedback   *monitors.FeedbackRunner
	admin      *adminServer
	metrics    *metricsRegistry
	tracing    *tracing
	policies   map[string]*policies.Reloader // per trial, for status and metrics
	policiesMu sync.RWMutex                  // guards policies (applied trials replace engines)
	live       *liveTrials                   // applied trial definitions in service (trials_live.go)
	loki       *lokiShipper                  // nil unless logs.loki_url is set
	baseLog    *slog.Logger                  // the logger before Loki was teed in
	assigner   *deploy.Assigner              // the gateway's plans, kept current by the rollout watcher
	rollouts   *rolloutParts
	expParts   *experimentParts      // policy experiments (admin_experiments.go)
	keys       *keyTable             // the gateway's API keys: configured and stored (keys.go)
	storeRetry *incidents.RetryStore // the monitors' writes, retried on busy or dropped connections
	role       roleSpec              // which parts this process runs; zero: every part (roles.go)
	lease      *deploy.Lease         // the controller's leadership lease, on an external NATS (roles.go)
}

// New validates the configuration; nothing starts until Start.
func New(cfg Config, deps Deps) (*Sandbox, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	s := &Sandbox{cfg: cfg, log: deps.Logger, clk: clock.OrReal(deps.Clock), env: deps.Env, tp: deps.TracerProvider}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.env == nil {
		s.env = os.Getenv
	}
	return s, nil
}

// Start brings every part up in dependency order; on failure it stops what it started.
func (s *Sandbox) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("sandbox already started")
	}
	defer func() {
		if err != nil {
			s.stopLocked(context.Background())
		}
	}()
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	secret, err := loadSecret(s.secretPath())
	if err != nil {
		return err
	}
	if s.tracing, err = newTracing(ctx, s.cfg.Telemetry); err != nil {
		return err
	}
	if s.metrics, err = newMetricsRegistry(); err != nil {
		return err
	}
	if s.cfg.Logs.LokiURL != "" {
		if s.loki, err = newLokiShipper(s.cfg.Logs, s.log); err != nil {
			return err
		}
		s.baseLog = s.log
		s.log = slog.New(teeHandler{s.log.Handler(), &lokiHandler{s: s.loki}})
	}
	if err := s.startBus(ctx); err != nil {
		return err
	}
	if s.store, err = s.openStore(ctx); err != nil {
		return fmt.Errorf("incident store: %w", err)
	}
	if s.runs(RoleGateway) {
		upstreams, err := s.startModels(ctx)
		if err != nil {
			return err
		}
		if err := s.startGateway(ctx, upstreams, secret); err != nil {
			return err
		}
	} else if err := s.startRolloutControl(ctx); err != nil { // no gateway: rollouts without the watcher
		return err
	}
	if err := s.startExperiments(ctx); err != nil {
		return err
	}
	if !s.cfg.Monitors.Disabled && s.runs(RoleMonitor) {
		if err := s.startMonitors(ctx); err != nil {
			return err
		}
	}
	if err := s.startAdmin(ctx); err != nil {
		return err
	}
	s.started = true
	return nil
}

// startBus starts the embedded nats-server and creates the streams idempotently.
func (s *Sandbox) startBus(ctx context.Context) error {
	if s.cfg.NATS.URL != "" { // an external server or cluster (natsext.go)
		nc, js, err := s.connectExternalNATS(ctx)
		if err != nil {
			return err
		}
		s.nc, s.js = nc, js
		return nil
	}
	ns, nc, err := startNATS(s.cfg.DataDir, s.cfg.NATS.Listen, s.cfg.NATS.MaxStoreBytes)
	if err != nil {
		return err
	}
	s.ns, s.nc = ns, nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(events.DefaultMaxPending))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	s.js = js
	return events.EnsureStreams(ctx, js, events.StreamOptions{Replicas: 1, DuplicateWindow: s.cfg.NATS.DuplicateWindow})
}

// startModels starts the simulators and collects every upstream by name.
func (s *Sandbox) startModels(ctx context.Context) (map[string]*gateway.Upstream, error) {
	ups := make(map[string]*gateway.Upstream, len(s.cfg.Simulators)+len(s.cfg.Models))
	for _, sc := range s.cfg.Simulators {
		srv, err := sim.New(sim.Config{Addr: sc.Addr, Models: []string{sc.Name}})
		if err != nil {
			return nil, fmt.Errorf("simulator %s: %w", sc.Name, err)
		}
		if err := srv.Start(ctx); err != nil {
			return nil, fmt.Errorf("simulator %s: %w", sc.Name, err)
		}
		s.sims = append(s.sims, srv)
		ups[sc.Name] = &gateway.Upstream{Name: sc.Name, BaseURL: srv.URL()}
	}
	for _, m := range s.cfg.Models {
		u := &gateway.Upstream{Name: m.Name, BaseURL: strings.TrimRight(m.BaseURL, "/"), Model: m.UpstreamModel,
			Timeout: m.Timeout, ConnectTimeout: m.ConnectTimeout, FirstTokenTimeout: m.FirstTokenTimeout}
		if m.APIKeyEnv != "" {
			if u.APIKey = s.env(m.APIKeyEnv); u.APIKey == "" {
				return nil, fmt.Errorf("model %s: environment variable %s is empty", m.Name, m.APIKeyEnv)
			}
		}
		ups[m.Name] = u
	}
	return ups, nil
}

// startGateway compiles each trial's policy once, builds the assigner and key
// table, and opens the gateway listener.
func (s *Sandbox) startGateway(ctx context.Context, ups map[string]*gateway.Upstream, secret []byte) error {
	trials := make(map[string]*gateway.Trial, len(s.cfg.Trials))
	s.policies = make(map[string]*policies.Reloader, len(s.cfg.Trials))
	plans := make([]deploy.Plan, 0, len(s.cfg.Trials))
	for _, tc := range s.cfg.Trials {
		pfs, err := policyFS(tc.Policy)
		if err != nil {
			return fmt.Errorf("trial %s: %w", tc.ID, err)
		}
		// Hot reload with keep-last-good: a new revision in the folder is compiled
		// and checked before it replaces the one in service.
		rc := policies.ReloaderConfig{FS: pfs, Query: tc.Query, PollInterval: tc.PolicyPoll}
		if !strings.HasPrefix(tc.Policy, "builtin:") {
			rc.FS, rc.Dir = nil, tc.Policy
		}
		eng, err := policies.NewReloader(ctx, rc, policies.ReloaderDeps{Logger: s.log, Clock: s.clk})
		if err != nil {
			return fmt.Errorf("trial %s policy: %w", tc.ID, err)
		}
		if err := eng.Start(ctx); err != nil {
			return fmt.Errorf("trial %s policy: %w", tc.ID, err)
		}
		s.policies[tc.ID] = eng
		dec, err := s.experimentDecider(tc, eng) // eng itself unless the trial runs experiments
		if err != nil {
			return err
		}
		ext, err := policies.NewExtractor(policies.Topics(tc.Topics))
		if err != nil {
			return fmt.Errorf("trial %s topics: %w", tc.ID, err)
		}
		// Per-request fallback travels with the plan (Assignment.Fallback), so a
		// rollout's fallback_to_baseline replaces the configured one.
		trials[tc.ID] = &gateway.Trial{ID: tc.ID, LogicalModel: tc.LogicalModel, FailMode: tc.FailMode,
			Decider: dec, Extractor: ext, Start: tc.Start, End: tc.End, ContentAccess: tc.ContentAccess,
			Caps:   gateway.Caps{RequestsPerUserPerDay: tc.Caps.RequestsPerUserPerDay, ConcurrentStreams: tc.Caps.ConcurrentStreams, TokensPerRequest: tc.Caps.TokensPerRequest},
			Limits: tc.Limits.gateway()}
		plans = append(plans, deploy.Plan{
			Trial: tc.ID, Candidate: tc.Candidate, Baseline: tc.Baseline, Stage: tc.Stage,
			CandidateWeight: int(tc.CandidatePercent * deploy.WeightScale / 100), Fallback: tc.Fallback,
		})
		s.log.Info("trial loaded", "trial", tc.ID, "policy", tc.Policy, "revision", eng.Status().Revision)
	}
	assigner, err := deploy.NewAssigner(plans)
	if err != nil {
		return err
	}
	s.assigner = assigner
	if err := s.startRollouts(ctx); err != nil {
		return err
	}
	if err := s.startExperimentWatcher(ctx); err != nil {
		return err
	}
	// The configured keys and the active keys created through the admin API
	// (keys.go), kept current while the gateway serves.
	s.keys = &keyTable{s: s}
	keys, err := s.keys.initial(ctx)
	if err != nil {
		return err
	}
	// Interactions NATS cannot take go to <data-dir>/spool and are replayed in
	// order, with their Nats-Msg-Id, when it can.
	if s.publisher, err = events.NewPublisher(events.PublisherConfig{Spool: s.cfg.Spool.events(filepath.Join(s.cfg.DataDir, "spool"))},
		events.PublisherDeps{JS: s.js, Clock: s.clk, Logger: s.log}); err != nil {
		return err
	}
	if err := s.publisher.Start(ctx); err != nil {
		return err
	}
	s.gw, err = gateway.New(gateway.Config{
		Addr: s.cfg.Gateway.Addr, MaxBodyBytes: s.cfg.Gateway.MaxBodyBytes, UpstreamTimeout: s.cfg.Gateway.UpstreamTimeout,
		StreamKeepAlive: s.cfg.Gateway.StreamKeepAlive, MaxHeaderBytes: s.cfg.Gateway.MaxHeaderBytes,
		TLSCertFile: s.cfg.Gateway.TLSCertFile, TLSKeyFile: s.cfg.Gateway.TLSKeyFile,
	}, gateway.Deps{
		Keys: keys, Trials: trials, Upstreams: ups, Assigner: assignerAdapter{assigner},
		Publisher: s.publisher, Pseudonymize: pseudonymizer(secret), Clock: s.clk, Logger: s.log,
		Tracer: s.tracer("github.com/stagegate/stagegate/gateway"), Meter: s.metrics.meter("github.com/stagegate/stagegate/gateway"),
		DecisionLog: s.decisionLog(), Feedback: s.publishFeedback,
	})
	if err != nil {
		return err
	}
	// Registered models are routable from the first request, and later ones
	// without a restart.
	if err := s.startModelWatch(ctx, s.gw); err != nil {
		return err
	}
	// Trial definitions applied through the admin API (stored revisions) go
	// into service before the first request, and later ones as they come.
	s.live = newLiveTrials(s)
	if err := s.live.sync(ctx); err != nil {
		return fmt.Errorf("stored trials: %w", err)
	}
	if err := s.keys.refresh(ctx, true); err != nil { // keys of trials that just came into service
		return fmt.Errorf("api keys: %w", err)
	}
	if err := s.gw.Start(ctx); err != nil {
		return err
	}
	s.keys.start(s.cfg.Gateway.KeyRefresh)
	s.live.start(s.cfg.Gateway.TrialRefresh)
	return nil
}

func (s *Sandbox) startMonitors(ctx context.Context) error {
	mc := s.cfg.Monitors
	dets, err := suite.Default(mc.Detectors, suite.Deps{Clock: s.clk, JudgeAPIKey: s.env(mc.Detectors.JudgeAPIKeyEnv)})
	if err != nil {
		return fmt.Errorf("detectors: %w", err)
	}
	var burst incidents.BurstRule
	if mc.Burst != nil {
		burst = monitors.DefaultBurst
		burst.Window, burst.Threshold = mc.Burst.Window, mc.Burst.Threshold
	}
	// A busy SQLite file or a dropped PostgreSQL connection is retried with
	// back-off before the message is handed back for redelivery.
	if s.storeRetry, err = incidents.NewRetryStore(s.store, incidents.RetryConfig{}, s.clk); err != nil {
		return err
	}
	// MaxDeliver -1: a store or bus outage must never drop an interaction after a
	// few retries; malformed payloads are terminated by the runner instead.
	r, err := monitors.New(monitors.Config{Workers: mc.Workers, MaxDeliver: -1, Burst: burst}, monitors.Deps{
		JS: s.js, Store: s.storeRetry, Detectors: dets, Clock: s.clk, Logger: s.log,
		Tracer: s.tracer("github.com/stagegate/stagegate/monitors"),
	})
	if err != nil {
		return err
	}
	s.runner = r
	if err := r.Start(ctx); err != nil {
		return err
	}
	// Findings of external monitors (in any language) become incidents too; the
	// built-in detectors' own findings are already handled by the runner.
	names := make([]string, len(dets))
	for i, d := range dets {
		names[i] = d.Name()
	}
	ing, err := monitors.NewIngester(monitors.IngestConfig{Skip: names}, monitors.Deps{JS: s.js, Store: s.storeRetry, Logger: s.log})
	if err != nil {
		return err
	}
	s.ingester = ing
	if err := ing.Start(ctx); err != nil {
		return err
	}
	// Pilot-user reports open (or join) the interaction's incident.
	if s.feedback, err = monitors.NewFeedbackRunner(monitors.Deps{JS: s.js, Store: s.storeRetry, Clock: s.clk, Logger: s.log}); err != nil {
		return err
	}
	return s.feedback.Start(ctx)
}

// policyFS resolves a trial's policy reference.
func policyFS(ref string) (fs.FS, error) {
	if name, ok := strings.CutPrefix(ref, "builtin:"); ok {
		sub, err := fs.Sub(policies.Builtin(), "rego/"+name)
		if err != nil {
			return nil, fmt.Errorf("built-in policy %q: %w", name, err)
		}
		if _, err := fs.Stat(sub, "."); err != nil {
			return nil, fmt.Errorf("built-in policy %q does not exist", name)
		}
		return sub, nil
	}
	st, err := os.Stat(ref)
	if err != nil {
		return nil, fmt.Errorf("policy folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("policy %s: not a folder", ref)
	}
	return policies.LoadDir(ref), nil
}

// Stop stops every part in reverse order: no new requests, in-flight ones finish,
// queued interactions are flushed to JetStream, monitors finish their messages,
// then the store and the bus close.
func (s *Sandbox) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(ctx)
}

func (s *Sandbox) stopLocked(ctx context.Context) error {
	var errs []error
	s.keys.halt()
	s.live.halt() // before the gateway goes: its poll puts trials into it
	if s.gw != nil {
		errs = append(errs, s.gw.Stop(ctx))
		s.gw = nil
	}
	if s.publisher != nil {
		errs = append(errs, s.publisher.Stop(ctx))
		s.publisher = nil
	}
	s.policiesMu.Lock()
	for _, r := range s.policies {
		errs = append(errs, r.Stop(ctx))
	}
	s.policies = nil
	s.policiesMu.Unlock()
	if s.runner != nil {
		errs = append(errs, s.runner.Stop(ctx))
		s.runner = nil
	}
	if s.ingester != nil {
		errs = append(errs, s.ingester.Stop(ctx))
		s.ingester = nil
	}
	if s.feedback != nil {
		errs = append(errs, s.feedback.Stop(ctx))
		s.feedback = nil
	}
	if s.admin != nil {
		errs = append(errs, s.admin.Stop(ctx))
		s.admin = nil
	}
	errs = append(errs, s.stopLease(ctx)) // the controller first stops leading (roles.go)
	errs = append(errs, s.stopRollouts(ctx))
	errs = append(errs, s.stopExperiments(ctx))
	for _, srv := range s.sims {
		errs = append(errs, srv.Stop(ctx))
	}
	s.sims = nil
	if s.store != nil {
		errs = append(errs, s.store.Close())
		s.store = nil
	}
	if s.nc != nil {
		_ = s.nc.Drain()
		s.nc.Close()
		s.nc = nil
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
	if s.tracing != nil {
		errs = append(errs, s.tracing.shutdown(ctx))
		s.tracing = nil
	}
	if s.loki != nil { // last: every component that logs has stopped
		errs = append(errs, s.loki.stop(ctx))
		s.loki, s.log = nil, s.baseLog
	}
	s.started = false
	return errors.Join(errs...)
}

// Run starts the sandbox, serves until ctx ends, then stops it within the
// configured shutdown timeout.
func (s *Sandbox) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	return s.Stop(stopCtx)
}

// GatewayAddr is the gateway's bound address (after Start).
func (s *Sandbox) GatewayAddr() string { return s.gw.Addr() }

// AdminAddr is the admin API's bound address (after Start).
func (s *Sandbox) AdminAddr() string { return s.admin.Addr() }

// NATSURL is the client URL of the embedded NATS server when nats.listen exposes
// it (after Start; the bound port when listen asked for port 0), else "".
func (s *Sandbox) NATSURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns == nil || s.cfg.NATS.Listen == "" {
		return ""
	}
	return s.ns.ClientURL()
}

// Config returns the effective configuration.
func (s *Sandbox) Config() Config { return s.cfg }

// policyStatuses reports each trial's policy revision in service and the last
// reload error (keep-last-good), for the admin API.
func (s *Sandbox) policyStatuses() map[string]policies.ReloadStatus {
	s.policiesMu.RLock()
	defer s.policiesMu.RUnlock()
	out := make(map[string]policies.ReloadStatus, len(s.policies))
	for id, r := range s.policies {
		out[id] = r.Status()
	}
	return out
}

// publishFeedback records a pilot user's report on JetStream and waits for the
// acknowledgement, so the id the user is given stands for a stored report.
func (s *Sandbox) publishFeedback(ctx context.Context, f *events.Feedback) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(events.FeedbackSubject(f.Trial))
	msg.Data = data
	msg.Header.Set(events.HeaderSchema, events.SchemaFeedback)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(f.ID))
	return err
}

// decisionLog is the per-request decision logger: Loki only, and only when
// logs.decisions is on (one line per request is too much for stderr).
func (s *Sandbox) decisionLog() *slog.Logger {
	if s.loki == nil || !s.cfg.Logs.Decisions {
		return nil
	}
	return slog.New(&lokiHandler{s: s.loki}).With("kind", LogKindDecision)
}

// tracer returns a named tracer: the injected provider's, the configured
// exporter's, or nil (no-op).
func (s *Sandbox) tracer(name string) trace.Tracer {
	if s.tp != nil {
		return s.tp.Tracer(name)
	}
	return s.tracing.tracer(name)
}

// assignerAdapter lets the gateway use deploy.Assigner without importing deploy.
type assignerAdapter struct{ a *deploy.Assigner }

func (a assignerAdapter) Assign(trial, user, cohort, requestID string) (gateway.Assignment, bool) {
	x, ok := a.a.AssignRequest(trial, user, cohort, requestID)
	return gateway.Assignment{Model: x.Model, Route: x.Route, Stage: x.Stage, Shadow: x.Shadow, Fallback: x.Fallback}, ok
}

func (a assignerAdapter) Route(trial, route string) (string, bool) { return a.a.Route(trial, route) }

var _ gateway.Assigner = assignerAdapter{}

// pseudonymizer keys an HMAC with the installation's secret, so pseudonyms are
// stable across restarts but cannot be reversed or recomputed without the secret.
//
// It runs on every request: the keyed HMAC and its scratch space are pooled and
// reset (keying hashes two blocks of padding), and the pseudonym is built in
// place, so a call costs one allocation, the returned string.
func pseudonymizer(secret []byte) func(tenant, user string) string {
	type scratch struct {
		mac hash.Hash
		in  []byte
		sum [sha256.Size]byte
		out [2 + 24]byte
	}
	pool := sync.Pool{New: func() any { return &scratch{mac: hmac.New(sha256.New, secret)} }}
	return func(tenant, user string) string {
		s := pool.Get().(*scratch)
		s.mac.Reset()
		s.in = append(append(append(s.in[:0], tenant...), 0), user...)
		s.mac.Write(s.in)
		s.mac.Sum(s.sum[:0])
		s.out[0], s.out[1] = 'u', '_'
		hex.Encode(s.out[2:], s.sum[:12])
		id := string(s.out[:])
		if cap(s.in) <= 4096 {
			pool.Put(s)
		}
		return id
	}
}

// loadSecret reads the installation secret, creating it on first start.
func loadSecret(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		secret, derr := hex.DecodeString(strings.TrimSpace(string(raw)))
		if derr != nil || len(secret) < 16 {
			return nil, fmt.Errorf("secret %s is corrupt; delete it only if you accept new pseudonyms for every user", path)
		}
		return secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secret: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return secret, nil
}
