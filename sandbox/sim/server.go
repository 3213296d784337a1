package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

// Server timeouts for Start.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
)

// modelCreated is the fixed "created" time of every listed model (2025-01-01 UTC).
const modelCreated = 1735689600

// modelOwner is the "owned_by" of every listed model.
const modelOwner = "stagegate-sim"

// Server is the simulator. Its handler is safe for concurrent use and works
// without Start (e.g. under httptest).
type Server struct {
	cfg Config
	clk clock.Clock

	modelList []byte            // GET /v1/models body
	modelObjs map[string][]byte // GET /v1/models/{id} bodies

	fixed  segment // Config.FixedAnswer, when set
	pii    segment
	unsafe segment

	seq   atomic.Uint64 // completion id sequence
	state sync.Pool     // *reqState

	mu     sync.Mutex
	srv    *http.Server
	url    string
	cancel context.CancelFunc // cancels the base context of in-flight requests
	done   chan struct{}      // closed when Serve returns
	// serveErr is set by the serve goroutine before it closes done.
	serveErr error
}

var _ interface {
	Start(context.Context) error
	Stop(context.Context) error
} = (*Server)(nil)

var _ http.Handler = (*Server)(nil)

// New validates cfg, applies defaults and prepares the pre-encoded responses.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		clk:       cfg.Clock,
		modelObjs: make(map[string][]byte, len(cfg.Models)),
		pii:       newStaticSegment(piiText),
		unsafe:    newStaticSegment(unsafeText),
	}
	if cfg.FixedAnswer != "" {
		s.fixed = newStaticSegment(cfg.FixedAnswer)
	}
	list := []byte(`{"object":"list","data":[`)
	for i, m := range cfg.Models {
		obj := appendModel(nil, m)
		s.modelObjs[m] = obj
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, obj...)
	}
	s.modelList = append(list, "]}"...)
	s.state.New = func() any { return newReqState() }
	return s, nil
}

func appendModel(dst []byte, id string) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendQuoted(dst, id)
	dst = append(dst, `,"object":"model","created":`...)
	dst = strconv.AppendInt(dst, modelCreated, 10)
	dst = append(dst, `,"owned_by":`...)
	dst = appendQuoted(dst, modelOwner)
	return append(dst, '}')
}

// Handler returns the simulator's HTTP handler; it needs no Start.
func (s *Server) Handler() http.Handler { return s }

// Start listens on Config.Addr and serves in the background until Stop.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return ErrAlreadyStarted
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("sim listen on %s: %w", s.cfg.Addr, err)
	}
	base, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	done := make(chan struct{})
	s.srv, s.cancel, s.done, s.serveErr = srv, cancel, done, nil
	s.url = "http://" + ln.Addr().String() + "/v1"
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	return nil
}

// Stop shuts the listener down and waits for in-flight requests. When ctx ends
// first, it cancels the remaining requests, closes their connections and returns
// ctx's error. Stop without Start, or twice, returns nil.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, cancel, done := s.srv, s.cancel, s.done
	s.srv, s.cancel, s.done, s.url = nil, nil, nil, ""
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	var errs []error
	if err := srv.Shutdown(ctx); err != nil {
		cancel()
		_ = srv.Close()
		errs = append(errs, fmt.Errorf("sim graceful shutdown: %w", err))
	}
	cancel()
	<-done
	if s.serveErr != nil {
		errs = append(errs, fmt.Errorf("sim serve: %w", s.serveErr))
	}
	return errors.Join(errs...)
}

// URL is the OpenAI base URL ("http://127.0.0.1:PORT/v1") while started, "" otherwise.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// ServeHTTP routes the simulator's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/v1/chat/completions":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, "POST")
			return
		}
		s.serveChat(w, r)
	case p == "/v1/models":
		if !isGet(r) {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		writeJSON(w, s.modelList)
	case strings.HasPrefix(p, "/v1/models/"):
		if !isGet(r) {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		id := p[len("/v1/models/"):]
		obj, ok := s.modelObjs[id]
		if !ok {
			writeError(w, http.StatusNotFound, typeInvalidRequest, codeModelNotFound, "the model "+strconv.Quote(clip(id))+" does not exist")
			return
		}
		writeJSON(w, obj)
	case p == "/healthz":
		if !isGet(r) {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		writeJSON(w, healthBody)
	default:
		writeError(w, http.StatusNotFound, typeInvalidRequest, codeNotFound, "unknown path "+strconv.Quote(clip(p)))
	}
}

var healthBody = []byte(`{"status":"ok"}`)

func isGet(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, typeInvalidRequest, codeMethod, "method "+strconv.Quote(clip(r.Method))+" not allowed; use "+allow)
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
