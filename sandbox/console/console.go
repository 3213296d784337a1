package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Paths the console serves under.
const (
	// Prefix is the console's pages.
	Prefix = "/console"
	// APIPrefix is the review API.
	APIPrefix = "/api/v1/review"

	sessionCookie = "sg_session"
	loginCookie   = "sg_login"
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// contentSecurityPolicy allows only the console's own scripts and styles: no
// inline script, no framing, forms post back to the console only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// reportCSP lets a downloaded HTML report use its inline style, nothing else.
const reportCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Console serves the reviewers' console and the review API.
type Console struct {
	cfg         Config
	store       Store
	tokenHash   [sha256.Size]byte
	hasToken    bool
	rollout     func(ctx context.Context, trial string) (*deploy.State, error)
	nudge       func()
	experiments func(ctx context.Context, trial string) ([]ExperimentView, error)
	clk         clock.Clock
	log         *slog.Logger
	proxies     []netip.Prefix
	pages       map[string]*pageTemplate
	static      http.Handler
	limiter     *loginLimiter
	z           float64
}

// New validates cfg and deps and prepares the templates.
func New(cfg Config, deps Deps) (*Console, error) {
	cfg = cfg.WithDefaults()
	errs := []error{cfg.Validate()}
	if deps.Store == nil {
		errs = append(errs, fmt.Errorf("%w: a store is required", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := &Console{
		cfg: cfg, store: deps.Store, tokenHash: deps.AdminTokenSHA256, rollout: deps.Rollout, nudge: deps.Nudge, experiments: deps.Experiments,
		clk: clock.OrReal(deps.Clock), log: deps.Logger, z: deploy.ZForConfidence(cfg.Confidence),
	}
	c.hasToken = deps.AdminTokenSHA256 != [sha256.Size]byte{}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range cfg.TrustedProxies {
		c.proxies = append(c.proxies, netip.MustParsePrefix(p)) // validated above
	}
	var err error
	if c.pages, err = loadPages(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix(Prefix+"/static/", http.FileServerFS(sub))
	c.limiter = newLoginLimiter(cfg.LoginAttempts, cfg.LoginWindow)
	return c, nil
}

// Register adds the console's routes to mux (the admin server's).
func (c *Console) Register(mux *http.ServeMux) {
	c.pageRoutes(mux)
	c.apiRoutes(mux)
}

// Handler is a mux with only the console's routes (tests, or a separate listener).
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	c.Register(mux)
	return mux
}

// secure sets the security headers every console response carries.
func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer browsers send "Origin: null"
	// on form posts, and the origin check below needs the real one.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// principal is who makes a request.
type principal struct {
	user *incidents.User
	// sess is the cookie session (nil for the bearer token).
	sess *incidents.Session
}

// csrf is the token forms of this principal carry ("" for the bearer token).
func (p *principal) csrf() string {
	if p.sess == nil {
		return ""
	}
	return p.sess.CSRF
}

// errUnauthenticated: no valid credentials.
var errUnauthenticated = errors.New("sign-in required")

// authenticate finds the principal of r: the admin bearer token, a session
// cookie, or the trusted proxy's header (which starts a session).
func (c *Console) authenticate(w http.ResponseWriter, r *http.Request) (*principal, error) {
	if authz := r.Header.Get("Authorization"); authz != "" {
		tok, ok := strings.CutPrefix(authz, "Bearer ")
		sum := sha256.Sum256([]byte(tok))
		if !ok || !c.hasToken || subtle.ConstantTimeCompare(sum[:], c.tokenHash[:]) != 1 {
			return nil, errUnauthenticated
		}
		return &principal{user: incidents.AdminTokenPrincipal()}, nil
	}
	var (
		sess *incidents.Session
		user *incidents.User
	)
	if ck, err := r.Cookie(sessionCookie); err == nil {
		s, u, err := c.store.SessionUser(r.Context(), ck.Value)
		switch {
		case err == nil:
			sess, user = s, u
		case !errors.Is(err, incidents.ErrNotFound):
			return nil, err
		}
	}
	if name := c.proxyUser(r); name != "" && (user == nil || user.Name != name) {
		u, err := c.store.GetUser(r.Context(), name)
		if errors.Is(err, incidents.ErrNotFound) {
			return nil, errUnauthenticated
		}
		if err != nil {
			return nil, err
		}
		if u.Disabled {
			return nil, errUnauthenticated
		}
		s, err := c.store.NewSession(r.Context(), u.Name, "proxy", remoteIP(r), c.cfg.SessionTTL)
		if err != nil {
			return nil, err
		}
		c.setCookie(w, r, sessionCookie, s.Token, c.cfg.SessionTTL)
		return &principal{user: u, sess: &s}, nil
	}
	if user == nil {
		return nil, errUnauthenticated
	}
	return &principal{user: user, sess: sess}, nil
}

// proxyUser is the user named by the trusted proxy's header, or "".
func (c *Console) proxyUser(r *http.Request) string {
	if c.cfg.ProxyUserHeader == "" {
		return ""
	}
	v := strings.TrimSpace(r.Header.Get(c.cfg.ProxyUserHeader))
	if v == "" {
		return ""
	}
	addr, err := netip.ParseAddr(remoteIP(r))
	if err != nil {
		return ""
	}
	addr = addr.Unmap()
	for _, p := range c.proxies {
		if p.Contains(addr) {
			return v
		}
	}
	return ""
}

// remoteIP is the client's address as the listener saw it.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(ttl.Seconds()), HttpOnly: true,
		Secure: c.cfg.SecureCookies || r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: c.cfg.SecureCookies || r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// sameOrigin rejects cross-site posts by their Origin (or Referer) header when
// the browser sent a usable one; SameSite=Strict cookies and the CSRF token are
// the main defence, this is a second one.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return true // nothing to compare; the token decides
	}
	u, err := url.Parse(src)
	return err == nil && u.Host == r.Host
}

// checkCSRF compares a posted token with the session's in constant time.
func checkCSRF(p *principal, got string) bool {
	if p.sess == nil {
		return true // bearer token: no ambient credential to forge
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(p.sess.CSRF)) == 1
}

// loginLimiter counts failed sign-ins per client and name.
type loginLimiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*attempts
}

type attempts struct {
	n     int
	start time.Time
}

// maxLimiterKeys bounds the limiter's memory; the oldest windows go first.
const maxLimiterKeys = 10000

func newLoginLimiter(max int, window time.Duration) *loginLimiter {
	return &loginLimiter{max: max, window: window, seen: map[string]*attempts{}}
}

// blocked reports whether key used up its attempts at now.
func (l *loginLimiter) blocked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.seen[key]
	return a != nil && now.Sub(a.start) < l.window && a.n >= l.max
}

// fail counts one failed attempt of key at now.
func (l *loginLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.seen[key]
	if a == nil || now.Sub(a.start) >= l.window {
		if len(l.seen) >= maxLimiterKeys {
			for k, v := range l.seen {
				if now.Sub(v.start) >= l.window || len(l.seen) >= maxLimiterKeys {
					delete(l.seen, k)
				}
				if len(l.seen) < maxLimiterKeys/2 {
					break
				}
			}
		}
		a = &attempts{start: now}
		l.seen[key] = a
	}
	a.n++
}

// reset forgets key after a successful sign-in.
func (l *loginLimiter) reset(key string) {
	l.mu.Lock()
	delete(l.seen, key)
	l.mu.Unlock()
}

// newLoginToken is the login form's CSRF token (double-submitted as a cookie).
func newLoginToken() string { return rand.Text() }
