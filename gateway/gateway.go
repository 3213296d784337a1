package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

// Deps are the parts the gateway calls on every request.
type Deps struct {
	// Keys authenticates API keys.
	Keys *Keys
	// Trials by id.
	Trials map[string]*Trial
	// Upstreams by model name, at start; SetUpstream adds or replaces models
	// while the gateway serves. The gateway keeps copies.
	Upstreams map[string]*Upstream
	// Assigner picks candidate or baseline.
	Assigner Assigner
	// Publisher receives every finished interaction.
	Publisher Publisher
	// Pseudonymize turns a tenant's end-user id into a stable pseudonym.
	Pseudonymize func(tenant, user string) string
	// Clock tells time; nil is the wall clock.
	Clock clock.Clock
	// Rand returns random bits for ids; nil uses math/rand/v2.
	Rand func() uint64
	// Logger; nil discards.
	Logger *slog.Logger
	// Transport for upstream calls; nil builds one tuned for many keep-alive connections.
	Transport http.RoundTripper
	// Tracer for request spans; nil is the no-op tracer.
	Tracer trace.Tracer
	// Meter for request metrics; nil records nothing.
	Meter metric.Meter
	// Feedback records a pilot user's report (published to JetStream and
	// acknowledged); nil disables POST /v1/feedback.
	Feedback func(ctx context.Context, f *events.Feedback) error
	// DecisionLog, when set, receives one line per decided request: the decision,
	// its reasons and policy revision, and what happened (no prompt text).
	DecisionLog *slog.Logger
}

// Stats are cumulative request counters.
type Stats struct {
	Requests       uint64
	OK             uint64
	Denied         uint64
	ClientErrors   uint64 // 4xx other than policy denials
	UpstreamErrors uint64
	PublishErrors  uint64
	Streams        uint64
	Fallbacks      uint64 // requests the baseline served after the candidate failed
	ShadowsSkipped uint64 // shadow copies not sent: too many in flight
}

// BreakerStatus is one model's circuit breaker.
type BreakerStatus struct {
	State  string // closed, open, half_open
	Opened uint64 // times it opened
}

// Breakers returns every model's circuit breaker state.
func (g *Gateway) Breakers() map[string]BreakerStatus {
	ups := *g.ups.Load()
	out := make(map[string]BreakerStatus, len(ups))
	for name, e := range ups {
		st, n := e.br.snapshot()
		out[name] = BreakerStatus{State: st, Opened: n}
	}
	return out
}

// Gateway serves the OpenAI-compatible API.
type Gateway struct {
	cfg      Config
	d        Deps
	clk      clock.Clock
	tracer   trace.Tracer
	metrics  *requestMetrics
	quotas   *quotas
	shadows  chan struct{} // semaphore of shadow calls in flight
	shadowWG sync.WaitGroup
	rnd      func() uint64
	log      *slog.Logger
	client   *http.Client                  // shared by models without their own connect timeout
	ups      atomic.Pointer[upstreamTable] // models by name, copy-on-write (upstreams.go)
	upsMu    sync.Mutex                    // serialises writers of ups
	trials   atomic.Pointer[trialTable]    // trials by id, copy-on-write (trials.go)
	trialsMu sync.Mutex                    // serialises writers of trials
	keys     atomic.Pointer[Keys]          // the key table; SetKeys swaps it (keytable.go)
	limits   *limiter                      // the trials' request limits (limits.go)

	mu   sync.Mutex
	srv  *http.Server
	addr net.Addr

	requests, ok, denied, clientErrors, upstreamErrors, publishErrors, streams, fallbacks, shadowsSkipped atomic.Uint64
}

var _ http.Handler = (*Gateway)(nil)

// New validates the configuration and dependencies.
func New(cfg Config, d Deps) (*Gateway, error) {
	cfg = cfg.WithDefaults()
	errs := []error{cfg.Validate()}
	if d.Keys == nil {
		errs = append(errs, errors.New("gateway: keys are required"))
	}
	if d.Assigner == nil {
		errs = append(errs, errors.New("gateway: an assigner is required"))
	}
	if d.Publisher == nil {
		errs = append(errs, errors.New("gateway: a publisher is required"))
	}
	if d.Pseudonymize == nil {
		errs = append(errs, errors.New("gateway: a pseudonymizer is required"))
	}
	for id, t := range d.Trials {
		errs = append(errs, validateTrial(id, t))
	}
	for name, u := range d.Upstreams {
		if u == nil || u.BaseURL == "" {
			errs = append(errs, fmt.Errorf("gateway: model %s has no base url", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, d: d, clk: clock.OrReal(d.Clock), tracer: tracerOrNoop(d.Tracer), rnd: d.Rand, log: d.Logger}
	if g.rnd == nil {
		g.rnd = rand.Uint64
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.quotas = newQuotas()
	g.limits = newLimiter(g.clk)
	g.keys.Store(d.Keys)
	g.shadows = make(chan struct{}, DefaultMaxShadows)
	var err error
	if g.metrics, err = newRequestMetrics(d.Meter); err != nil {
		return nil, err
	}
	tr := d.Transport
	if tr == nil {
		tr = newTransport(DefaultConnectTimeout)
	}
	g.client = &http.Client{Transport: tr}
	ups := make(upstreamTable, len(d.Upstreams))
	for name, u := range d.Upstreams {
		c := *u
		if c.Name == "" {
			c.Name = name
		}
		e, err := g.newEntry(&c)
		if err != nil {
			return nil, err
		}
		ups[name] = e
	}
	g.ups.Store(&ups)
	trials := make(trialTable, len(d.Trials))
	for id, t := range d.Trials {
		trials[id] = &trialEntry{t: t, models: modelList(t.LogicalModel, g.clk.Now().Unix())}
	}
	g.trials.Store(&trials)
	return g, nil
}

func newTransport(connectTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // upstreams are named explicitly; never via an ambient proxy
		DialContext:           (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true, // compressed SSE cannot be relayed chunk by chunk
		ExpectContinueTimeout: time.Second,
	}
}

// Start listens on the configured address and serves until Stop.
func (g *Gateway) Start(ctx context.Context) error {
	tlsCfg, err := ServerTLS(g.cfg.TLSCertFile, g.cfg.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", g.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway listen: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	} else if !IsLoopback(g.cfg.Addr) {
		g.log.Warn("the gateway listens beyond loopback without TLS: API keys cross the network in clear text", "addr", g.cfg.Addr)
	}
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		MaxHeaderBytes:    g.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsCfg,
	}
	g.mu.Lock()
	g.srv, g.addr = srv, ln.Addr()
	g.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("gateway serve", "err", err)
		}
	}()
	return nil
}

// Stop stops accepting connections and waits for in-flight requests until ctx ends.
func (g *Gateway) Stop(ctx context.Context) error {
	g.mu.Lock()
	srv := g.srv
	g.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("gateway shutdown: %w", err)
	}
	g.waitShadows(ctx) // their interactions are published before the publisher stops
	return nil
}

// Addr is the bound listen address after Start.
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addr == nil {
		return ""
	}
	return g.addr.String()
}

// Stats returns the request counters.
func (g *Gateway) Stats() Stats {
	return Stats{
		Requests: g.requests.Load(), OK: g.ok.Load(), Denied: g.denied.Load(),
		ClientErrors: g.clientErrors.Load(), UpstreamErrors: g.upstreamErrors.Load(),
		PublishErrors: g.publishErrors.Load(), Streams: g.streams.Load(), Fallbacks: g.fallbacks.Load(),
		ShadowsSkipped: g.shadowsSkipped.Load(),
	}
}

// ServeHTTP routes the two OpenAI endpoints.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/chat/completions":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, Error(http.StatusMethodNotAllowed, fmt.Errorf("%w: use POST", ErrMethod)))
			return
		}
		g.serveChat(w, r)
	case "/v1/feedback":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, Error(http.StatusMethodNotAllowed, fmt.Errorf("%w: use POST", ErrMethod)))
			return
		}
		g.serveFeedback(w, r)
	case "/v1/models":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeError(w, Error(http.StatusMethodNotAllowed, fmt.Errorf("%w: use GET", ErrMethod)))
			return
		}
		g.serveModels(w, r)
	default:
		writeError(w, Error(http.StatusNotFound, fmt.Errorf("%w: %s", ErrNotFound, r.URL.Path)))
	}
}

// serveModels lists the logical models of the caller's trial.
func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request) {
	p, err := g.principal(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var body []byte
	if e := (*g.trials.Load())[p.Trial]; e != nil {
		body = e.models
	} else {
		body = modelList("", 0)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func modelList(model string, created int64) []byte {
	if model == "" {
		return []byte(`{"object":"list","data":[]}`)
	}
	ids := []string{model}
	sort.Strings(ids)
	return fmt.Appendf(nil, `{"object":"list","data":[{"id":%q,"object":"model","created":%d,"owned_by":"stagegate"}]}`, ids[0], created)
}
