package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/monitors/suite"
	"github.com/stagegate/stagegate/policies"
)

// Defaults for Config.
const (
	DefaultAddr          = gateway.DefaultAddr
	DefaultAdminAddr     = "127.0.0.1:8081"
	DefaultDataDir       = "./.stagegate"
	DefaultMaxConfigSize = 1 << 20
	DefaultShutdown      = 30 * time.Second
)

// Config is the whole sandbox configuration, as read from YAML (see
// examples/stagegate.yaml). Flags override the listen addresses and data dir.
type Config struct {
	// DataDir holds the JetStream store, the SQLite incident store and the
	// pseudonymisation secret.
	DataDir string `yaml:"data_dir"`
	// Gateway is the OpenAI-compatible listener.
	Gateway GatewayConfig `yaml:"gateway"`
	// Admin is the admin API listener.
	Admin AdminConfig `yaml:"admin"`
	// NATS configures the embedded server.
	NATS NATSConfig `yaml:"nats"`
	// Spool keeps interactions that cannot be published (NATS down, slow or
	// full) on disk under <data_dir>/spool until they are replayed.
	Spool SpoolConfig `yaml:"spool"`
	// Monitors configures the monitor runner.
	Monitors MonitorsConfig `yaml:"monitors"`
	// Simulators are simulated models started in-process on loopback ports; each
	// becomes a model of the same name.
	Simulators []SimulatorConfig `yaml:"simulators"`
	// Models are external OpenAI-compatible upstreams.
	Models []ModelConfig `yaml:"models"`
	// Trials define who may use which models under which policy.
	Trials []TrialConfig `yaml:"trials"`
	// Keys are pilot API keys, stored as SHA-256 hashes.
	Keys []KeyConfig `yaml:"keys"`
	// Telemetry configures trace export (OTLP); off by default.
	Telemetry TelemetryConfig `yaml:"telemetry"`
	// Logs configures shipping decision, incident, rollout and audit logs to Loki;
	// off by default.
	Logs LogsConfig `yaml:"logs"`
	// ShutdownTimeout bounds a graceful stop (default 30s).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// DB is the incident store: a SQLite file path, or a postgres:// URL to
	// share one PostgreSQL database between processes (default
	// <data_dir>/stagegate.db). See roles.go.
	DB string `yaml:"db"`
	// SecretFile holds the pseudonymisation secret (default <data_dir>/secret,
	// created on first start). Every gateway of one installation must read the
	// same secret, or one user gets a different pseudonym on each.
	SecretFile string `yaml:"secret_file"`

	// Demo marks a configuration seeded by Demo(); it holds demo-only secrets.
	Demo bool `yaml:"-"`
	// adminToken is the plain demo admin token, only in demo mode.
	adminToken string
}

// GatewayConfig is the gateway section.
type GatewayConfig struct {
	// Addr is the listen address (default 127.0.0.1:8080).
	Addr string `yaml:"addr"`
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// UpstreamTimeout bounds an upstream call (default 120s).
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
	// StreamKeepAlive: a stream whose model is silent this long gets SSE
	// keep-alive comments at this interval (default 5s; negative disables).
	StreamKeepAlive time.Duration `yaml:"stream_keepalive"`
	// MaxHeaderBytes caps a request's header block (default 64 KiB; larger
	// headers get 431).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// TLSCertFile and TLSKeyFile (PEM) serve HTTPS; both or neither. Without
	// them the gateway speaks plain HTTP, fine on the loopback default.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// KeyRefresh is how often API keys created or revoked through another
	// process's admin API are picked up (default 5s); this process's own admin
	// API applies them at once.
	KeyRefresh time.Duration `yaml:"key_refresh"`
	// TrialRefresh is how often trial definitions applied through another
	// process's admin API are put into service here (default 5s); this
	// process's own admin API applies them at once.
	TrialRefresh time.Duration `yaml:"trial_refresh"`
}

// AdminConfig is the admin API section.
type AdminConfig struct {
	// Addr is the listen address (default 127.0.0.1:8081).
	Addr string `yaml:"addr"`
	// TokenSHA256 is the hex SHA-256 of the admin bearer token.
	TokenSHA256 string `yaml:"token_sha256"`
	// TokenEnv names an environment variable holding the admin token (used when
	// TokenSHA256 is empty).
	TokenEnv string `yaml:"token_env"`
	// Pprof serves Go's runtime profiles under /debug/pprof/ (behind the admin
	// token), for profiling under load; off by default.
	Pprof bool `yaml:"pprof"`
	// TLSCertFile and TLSKeyFile (PEM) serve the admin API over HTTPS; both or
	// neither.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// NATSConfig configures the embedded nats-server, or an external one.
type NATSConfig struct {
	// Listen exposes the embedded server on host:port (e.g. 127.0.0.1:4223) for
	// external monitors; empty keeps it in-process only.
	Listen string `yaml:"listen"`
	// MaxStoreBytes caps JetStream disk use (default 1 GiB).
	MaxStoreBytes int64 `yaml:"max_store_bytes"`
	// URL connects to an external NATS server or cluster (nats://host:port,
	// comma-separated for several) instead of embedding one; then listen and
	// max_store_bytes do not apply. The connection reconnects forever; while
	// NATS is away interactions go to the spool and are replayed when it is back.
	URL string `yaml:"url"`
	// Creds is a NATS credentials file (user JWT and NKey seed) for URL.
	Creds string `yaml:"creds"`
	// TLSCAFile (PEM) verifies the servers of URL; TLSCertFile and TLSKeyFile
	// are this client's certificate for servers that require one (mTLS).
	TLSCAFile   string `yaml:"tls_ca_file"`
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// Replicas of the streams and KV buckets this process creates: 1 on a single
	// server (default), 3 on a cluster. See events.StreamOptions.
	Replicas int `yaml:"replicas"`
	// DuplicateWindow is how long JetStream remembers each interaction's id to
	// store a replayed one once (default 20m). The server holds every id of the
	// window in memory: about 330 bytes per interaction (measured by the soak),
	// so ~400 MB at 1000 interactions/s for 20 minutes. Shorter saves memory;
	// the store de-duplicates by interaction id beyond it, so no incident is
	// duplicated either way. It must cover the NATS outages the spool rides out.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

// SpoolConfig bounds the on-disk spool of interactions awaiting publication.
type SpoolConfig struct {
	// MaxBytes caps the spool's disk use (default 1 GiB). When it is full, a
	// fail-open trial keeps serving and counts every lost interaction; a
	// fail-closed trial answers 503 until the spool drains.
	MaxBytes int64 `yaml:"max_bytes"`
	// SegmentBytes is the size at which a new segment file starts (default 16 MiB).
	SegmentBytes int64 `yaml:"segment_bytes"`
	// Fsync is when spooled records are flushed to disk: "interval" (default; a
	// process crash loses nothing, a power loss at most fsync_interval),
	// "always" (nothing lost, one disk flush per spooled interaction) or "never"
	// (the operating system decides).
	Fsync string `yaml:"fsync"`
	// FsyncInterval is the flush period of the interval policy (default 100ms).
	FsyncInterval time.Duration `yaml:"fsync_interval"`
}

// events is the publisher's spool configuration in dir.
func (c SpoolConfig) events(dir string) events.SpoolConfig {
	return events.SpoolConfig{Dir: dir, MaxBytes: c.MaxBytes, SegmentBytes: c.SegmentBytes, Fsync: c.Fsync, FsyncInterval: c.FsyncInterval}
}

// MonitorsConfig configures the embedded monitor runner.
type MonitorsConfig struct {
	// Workers is the number of concurrent message handlers (default 4).
	Workers int `yaml:"workers"`
	// Disabled runs no monitors in this process.
	Disabled bool `yaml:"disabled"`
	// Detectors configures the detector suite (all content detectors on by
	// default; slo and llm_judge off unless configured).
	Detectors suite.Config `yaml:"detectors"`
	// Burst groups repeated findings of one category from one model or user into
	// one aggregate incident; off by default because rollout gates count incidents.
	Burst *BurstConfig `yaml:"burst"`
}

// BurstConfig is the aggregate-incident rule.
type BurstConfig struct {
	// Window is the counting window.
	Window time.Duration `yaml:"window"`
	// Threshold: interactions of one subject and category in a window that open
	// their own incidents before the rest join one aggregate incident.
	Threshold int `yaml:"threshold"`
}

// SimulatorConfig is one simulated model.
type SimulatorConfig struct {
	// Name of the model; also the name it answers to.
	Name string `yaml:"name"`
	// Addr to listen on (default a random loopback port).
	Addr string `yaml:"addr"`
}

// ModelConfig is one external upstream.
type ModelConfig struct {
	// Name of the model in Stagegate.
	Name string `yaml:"name"`
	// BaseURL of the OpenAI-compatible API, ending in /v1.
	BaseURL string `yaml:"base_url"`
	// UpstreamModel is the model id sent upstream (default Name).
	UpstreamModel string `yaml:"upstream_model"`
	// APIKeyEnv names an environment variable holding the upstream API key; the key
	// itself never appears in the config.
	APIKeyEnv string `yaml:"api_key_env"`
	// Timeout bounds one call (default the gateway's upstream timeout).
	Timeout time.Duration `yaml:"timeout"`
	// ConnectTimeout bounds opening a connection (default 5s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// FirstTokenTimeout bounds the wait for a stream's first chunk (default none).
	FirstTokenTimeout time.Duration `yaml:"first_token_timeout"`
}

// TrialConfig is one trial.
type TrialConfig struct {
	// ID is the trial id (letters, digits, '-', '_').
	ID string `yaml:"id"`
	// LogicalModel is the model name clients use.
	LogicalModel string `yaml:"logical_model"`
	// Candidate is the model under trial.
	Candidate string `yaml:"candidate"`
	// Baseline is the model everyone else gets.
	Baseline string `yaml:"baseline"`
	// Stage is the rollout stage (shadow, canary, pilot, general; default canary).
	Stage string `yaml:"stage"`
	// CandidatePercent is the share of users on the candidate, 0-100.
	CandidatePercent float64 `yaml:"candidate_percent"`
	// Policy is the folder of the trial's Rego policy and data; "builtin:demo" is
	// the demo policy compiled into the binary.
	Policy string `yaml:"policy"`
	// Query is the policy rule to evaluate (default data.stagegate.decision).
	Query string `yaml:"query"`
	// FailMode is what happens when the policy cannot decide: open or closed (default).
	FailMode string `yaml:"fail_mode"`
	// Fallback sends a request to the baseline when the candidate fails before any
	// byte reached the user (error, timeout, open circuit breaker).
	Fallback bool `yaml:"fallback"`
	// Topics are keyword lists; the policy sees which topics a prompt matched.
	Topics map[string][]string `yaml:"topics"`
	// Start and End bound the trial (RFC 3339); requests outside get 403.
	Start time.Time `yaml:"start"`
	End   time.Time `yaml:"end"`
	// Caps are per-user limits the gateway counts; the policy sees over_quota.
	Caps CapsConfig `yaml:"caps"`
	// ContentAccess lets the policy read raw message text (input.content): slower
	// and less private; off by default.
	ContentAccess bool `yaml:"content_access"`
	// PolicyPoll is how often the policy folder is checked for a new revision
	// (hot reload with keep-last-good; default 2s).
	PolicyPoll time.Duration `yaml:"policy_poll"`
	// Experiments lets policy experiments (stagegate experiment) run on this
	// trial: its gateway serves each experiment's arms; off by default.
	Experiments bool `yaml:"experiments"`
	// Limits are hard per-key and per-user rate limits and concurrency caps
	// (429 with Retry-After); none by default.
	Limits LimitsConfig `yaml:"limits"`
}

// LimitsConfig are a trial's request limits; 0 is no limit.
type LimitsConfig struct {
	// KeyRate is requests per second per API key.
	KeyRate float64 `yaml:"key_rate"`
	// KeyBurst is how many a key may send at once (default key_rate rounded up).
	KeyBurst int `yaml:"key_burst"`
	// KeyConcurrent caps a key's requests in flight (streams until they end).
	KeyConcurrent int `yaml:"key_concurrent"`
	// UserRate is requests per second per end user.
	UserRate float64 `yaml:"user_rate"`
	// UserBurst is how many a user may send at once (default user_rate rounded up).
	UserBurst int `yaml:"user_burst"`
	// UserConcurrent caps a user's requests in flight.
	UserConcurrent int `yaml:"user_concurrent"`
}

// gateway is the gateway's form of the limits.
func (l LimitsConfig) gateway() gateway.Limits {
	return gateway.Limits{KeyRate: l.KeyRate, KeyBurst: l.KeyBurst, KeyConcurrent: l.KeyConcurrent,
		UserRate: l.UserRate, UserBurst: l.UserBurst, UserConcurrent: l.UserConcurrent}
}

// CapsConfig are a trial's per-user limits.
type CapsConfig struct {
	// RequestsPerUserPerDay: 0 for none.
	RequestsPerUserPerDay int `yaml:"requests_per_user_per_day"`
	// ConcurrentStreams per user: 0 for none.
	ConcurrentStreams int `yaml:"concurrent_streams"`
	// TokensPerRequest caps max_tokens: 0 for none.
	TokensPerRequest int `yaml:"tokens_per_request"`
}

// KeyConfig is one pilot API key.
type KeyConfig struct {
	// Name identifies the key in logs and records (never the key itself).
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the key.
	SHA256 string `yaml:"sha256"`
	// Trial the key belongs to.
	Trial string `yaml:"trial"`
	// Tenant (the company or app) using the key.
	Tenant string `yaml:"tenant"`
	// Cohort of the key's users.
	Cohort string `yaml:"cohort"`
	// Attributes of the key's users, visible to the policy.
	Attributes map[string]string `yaml:"attributes"`
}

// Load reads a YAML configuration file; unknown fields are errors.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, DefaultMaxConfigSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if len(raw) > DefaultMaxConfigSize {
		return Config{}, fmt.Errorf("config %s: larger than %d bytes", path, DefaultMaxConfigSize)
	}
	return Parse(path, raw)
}

// Parse decodes YAML configuration; name is used in error messages.
func Parse(name string, raw []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Gateway.Addr == "" {
		c.Gateway.Addr = DefaultAddr
	}
	if c.Admin.Addr == "" {
		c.Admin.Addr = DefaultAdminAddr
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdown
	}
	for i := range c.Trials {
		if c.Trials[i].Stage == "" {
			c.Trials[i].Stage = deploy.StageCanary
		}
		if c.Trials[i].FailMode == "" {
			c.Trials[i].FailMode = policies.FailClosed
		}
		if c.Trials[i].LogicalModel == "" {
			c.Trials[i].LogicalModel = c.Trials[i].ID
		}
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, a := range []struct{ name, addr string }{{"gateway.addr", c.Gateway.Addr}, {"admin.addr", c.Admin.Addr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			add("%s %q: %v", a.name, a.addr, err)
		}
	}
	if err := c.Spool.events("spool").Validate(); err != nil {
		add("spool: %v", err)
	}
	if c.NATS.Listen != "" {
		if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
			add("nats.listen %q: %v", c.NATS.Listen, err)
		}
	}
	errs = append(errs, c.securityProblems()...)
	errs = append(errs, c.scaleProblems()...)
	if err := c.Telemetry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Logs.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !c.Demo && c.Admin.TokenSHA256 == "" && c.Admin.TokenEnv == "" {
		add("admin: set token_sha256 or token_env (the admin API needs a token)")
	}
	if c.Admin.TokenSHA256 != "" && !isSHA256Hex(c.Admin.TokenSHA256) {
		add("admin.token_sha256: must be 64 hex digits")
	}
	models := map[string]bool{}
	for i, s := range c.Simulators {
		if err := events.CheckToken(fmt.Sprintf("simulators[%d].name", i), s.Name); err != nil {
			errs = append(errs, err)
		}
		if models[s.Name] {
			add("simulators[%d]: model %q defined twice", i, s.Name)
		}
		models[s.Name] = true
	}
	for i, m := range c.Models {
		if err := events.CheckToken(fmt.Sprintf("models[%d].name", i), m.Name); err != nil {
			errs = append(errs, err)
		}
		if models[m.Name] {
			add("models[%d]: model %q defined twice", i, m.Name)
		}
		models[m.Name] = true
		if u, err := url.Parse(m.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("models[%d].base_url %q: want an http(s) URL ending in /v1", i, m.BaseURL)
		}
		if m.Timeout < 0 || m.ConnectTimeout < 0 || m.FirstTokenTimeout < 0 {
			add("models[%d] (%s): timeouts must not be negative", i, m.Name)
		}
	}
	trials := map[string]bool{}
	for i, t := range c.Trials {
		where := fmt.Sprintf("trials[%d] (%s)", i, t.ID)
		if err := events.CheckToken(where+".id", t.ID); err != nil {
			errs = append(errs, err)
		}
		if trials[t.ID] {
			add("%s: trial defined twice", where)
		}
		trials[t.ID] = true
		for _, m := range []struct{ field, name string }{{"candidate", t.Candidate}, {"baseline", t.Baseline}} {
			if !models[m.name] {
				add("%s.%s: model %q is not defined under models or simulators", where, m.field, m.name)
			}
		}
		if t.CandidatePercent < 0 || t.CandidatePercent > 100 {
			add("%s.candidate_percent %v: want 0-100", where, t.CandidatePercent)
		}
		switch t.Stage {
		case deploy.StageShadow, deploy.StageCanary, deploy.StagePilot, deploy.StageGeneral:
		default:
			add("%s.stage %q: want shadow, canary, pilot or general", where, t.Stage)
		}
		if t.FailMode != policies.FailOpen && t.FailMode != policies.FailClosed {
			add("%s.fail_mode %q: want open or closed", where, t.FailMode)
		}
		if t.Policy == "" {
			add("%s.policy: required (a policy folder, or builtin:demo)", where)
		}
		if !t.Start.IsZero() && !t.End.IsZero() && !t.End.After(t.Start) {
			add("%s.end: must be after start", where)
		}
		if t.Caps.RequestsPerUserPerDay < 0 || t.Caps.ConcurrentStreams < 0 || t.Caps.TokensPerRequest < 0 {
			add("%s.caps: must not be negative", where)
		}
		if err := t.Limits.gateway().Validate(); err != nil {
			add("%s.%v", where, err)
		}
	}
	for i, k := range c.Keys {
		if k.Name == "" {
			add("keys[%d].name: required", i)
		}
		if !isSHA256Hex(k.SHA256) {
			add("keys[%d] (%s).sha256: must be 64 hex digits (sha256 of the key)", i, k.Name)
		}
		if !trials[k.Trial] {
			add("keys[%d] (%s).trial %q: no such trial", i, k.Name, k.Trial)
		}
		if k.Tenant == "" {
			add("keys[%d] (%s).tenant: required", i, k.Name)
		}
	}
	return errors.Join(errs...)
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// Demo keys, printed at start in demo mode. They are public: demo only.
const (
	DemoPilotKey  = "sg-demo-pilot"
	DemoAdminKey  = "sg-demo-admin"
	DemoTrial     = "demo"
	DemoCandidate = "demo-candidate"
	DemoBaseline  = "demo-baseline"
)

// Demo returns the demo configuration `up` uses without --config: trial demo
// routing half its users to a simulated candidate and half to a simulated
// baseline, under the built-in demo policy.
func Demo() Config {
	return Config{
		Demo:       true,
		adminToken: DemoAdminKey,
		Admin:      AdminConfig{TokenSHA256: gateway.HashKey(DemoAdminKey)},
		Simulators: []SimulatorConfig{{Name: DemoCandidate}, {Name: DemoBaseline}},
		Trials: []TrialConfig{{
			ID: DemoTrial, LogicalModel: DemoTrial, Candidate: DemoCandidate, Baseline: DemoBaseline,
			Stage: deploy.StageCanary, CandidatePercent: 50, Policy: "builtin:demo", FailMode: policies.FailClosed, Fallback: true, Experiments: true,
			Topics: map[string][]string{
				"weapons":        {"build a bomb", "make a weapon", "制造炸弹"},
				"medical_dosing": {"insulin dose", "overdose", "dosage", "剂量"},
			},
		}},
		Keys: []KeyConfig{{Name: "demo-pilot", SHA256: gateway.HashKey(DemoPilotKey), Trial: DemoTrial, Tenant: "demo-company", Cohort: "pilot"}},
	}
}
