package sandbox

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/incidents"
)

// adminServer serves the admin API, health and metrics on the admin address.
type adminServer struct {
	s         *Sandbox
	tokenHash [sha256.Size]byte
	log       *slog.Logger

	mu   sync.Mutex
	srv  *http.Server
	addr net.Addr
}

func (s *Sandbox) startAdmin(ctx context.Context) error {
	hash, err := s.adminTokenHash()
	if err != nil {
		return err
	}
	if err := s.metrics.observe(s); err != nil {
		return err
	}
	a := &adminServer{s: s, tokenHash: hash, log: s.log}
	tlsCfg, err := gateway.ServerTLS(s.cfg.Admin.TLSCertFile, s.cfg.Admin.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Admin.Addr)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.warnCleartext()
	a.srv = &http.Server{Handler: securityHeaders(a.routes(), tlsCfg != nil), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn), TLSConfig: tlsCfg}
	a.addr = ln.Addr()
	s.admin = a
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin serve", "err", err)
		}
	}()
	return nil
}

func (s *Sandbox) adminTokenHash() ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	if s.cfg.Admin.TokenSHA256 != "" {
		raw, err := hex.DecodeString(s.cfg.Admin.TokenSHA256)
		if err != nil || len(raw) != sha256.Size {
			return h, errors.New("admin.token_sha256: must be 64 hex digits")
		}
		return [sha256.Size]byte(raw), nil
	}
	tok := s.env(s.cfg.Admin.TokenEnv)
	if tok == "" {
		return h, fmt.Errorf("admin token: environment variable %s is empty", s.cfg.Admin.TokenEnv)
	}
	return sha256.Sum256([]byte(tok)), nil
}

func (a *adminServer) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr.String()
}

func (a *adminServer) Stop(ctx context.Context) error { return a.srv.Shutdown(ctx) }

func (a *adminServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", a.s.metrics.handler)
	mux.Handle("GET /api/v1/incidents", a.auth(a.listIncidents))
	mux.Handle("GET /api/v1/incidents/{id}", a.auth(a.getIncident))
	mux.Handle("GET /api/v1/interactions/{id}", a.auth(a.getInteraction))
	a.rolloutRoutes(mux)
	a.trialRoutes(mux)
	a.consoleRoutes(mux)
	a.policyStatusRoutes(mux, a.s.policyStatuses)
	a.keyRoutes(mux)
	a.experimentRoutes(mux)
	if a.s.cfg.Admin.Pprof {
		mux.Handle("/debug/pprof/", a.auth(pprof.Index)) // named profiles: heap, allocs, goroutine, ...
		mux.Handle("/debug/pprof/cmdline", a.auth(pprof.Cmdline))
		mux.Handle("/debug/pprof/profile", a.auth(pprof.Profile))
		mux.Handle("/debug/pprof/symbol", a.auth(pprof.Symbol))
		mux.Handle("/debug/pprof/trace", a.auth(pprof.Trace))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// auth requires the admin bearer token, compared as SHA-256 digests in constant time.
func (a *adminServer) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.tokenHash[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stagegate-admin"`)
			apiError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong admin token")
			return
		}
		next(w, r)
	})
}

func (a *adminServer) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ready := true
	if a.s.nc == nil || !a.s.nc.IsConnected() {
		checks["nats"], ready = "disconnected", false
	} else {
		checks["nats"] = "ok"
	}
	if err := a.s.store.Ping(r.Context()); err != nil {
		checks["store"], ready = "unavailable", false
	} else {
		checks["store"] = "ok"
	}
	details := a.s.healthDetails(checks)
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks, "details": details})
}

func (a *adminServer) listIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := incidents.Filter{Trial: q.Get("trial"), Status: q.Get("status"), Category: q.Get("category")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			apiError(w, http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to 1000")
			return
		}
		f.Limit = n
	}
	list, err := a.s.store.Incidents(r.Context(), f)
	if err != nil {
		a.internal(w, "list incidents", err)
		return
	}
	if list == nil {
		list = []incidents.Incident{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": list, "count": len(list)})
}

// evidence is one highlighted span with the text under it, so a reviewer sees at
// once what the detector saw.
type evidence struct {
	events.Span
	Detector string `json:"detector"`
	Text     string `json:"text"`
}

func (a *adminServer) getIncident(w http.ResponseWriter, r *http.Request) {
	inc, err := a.s.store.Incident(r.Context(), r.PathValue("id"))
	if errors.Is(err, incidents.ErrNotFound) {
		apiError(w, http.StatusNotFound, "not_found", "no incident "+r.PathValue("id"))
		return
	}
	if err != nil {
		a.internal(w, "get incident", err)
		return
	}
	in, err := a.s.store.Interaction(r.Context(), inc.InteractionID)
	if err != nil && !errors.Is(err, incidents.ErrNotFound) {
		a.internal(w, "get interaction", err)
		return
	}
	ev := []evidence{}
	for _, f := range inc.Findings {
		for _, sp := range f.Spans {
			ev = append(ev, evidence{Span: sp, Detector: f.Detector, Text: in.SpanText(sp)})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": inc, "interaction": in, "evidence": ev})
}

func (a *adminServer) getInteraction(w http.ResponseWriter, r *http.Request) {
	in, err := a.s.store.Interaction(r.Context(), r.PathValue("id"))
	if errors.Is(err, incidents.ErrNotFound) {
		apiError(w, http.StatusNotFound, "not_found", "no interaction "+r.PathValue("id")+" (it may still be on its way to the store)")
		return
	}
	if err != nil {
		a.internal(w, "get interaction", err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func (a *adminServer) internal(w http.ResponseWriter, what string, err error) {
	a.log.Error("admin api", "op", what, "err", err)
	apiError(w, http.StatusInternalServerError, "internal_error", what+" failed")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":{"message":"encode failed","code":"internal_error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"message": msg, "code": code}})
}

// audit appends an admin change to the hash-chained audit log and ships it as an
// audit log line. The change itself already happened; a failed append is logged
// loudly rather than undoing it.
func (a *adminServer) audit(ctx context.Context, rec incidents.AuditRecord) {
	if rec.Actor == "" {
		rec.Actor = "admin-token"
	}
	if _, err := a.s.store.Audit(ctx, rec); err != nil {
		a.log.Error("audit append failed", "kind", LogKindAudit, "action", rec.Action, "object", rec.Object, "err", err)
		return
	}
	a.log.Info("audit", "kind", LogKindAudit, "trial", rec.Trial, "action", rec.Action, "object", rec.Object, "actor", rec.Actor)
}
