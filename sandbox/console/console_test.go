package console

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const (
	testPassword = "correct horse battery staple"
	adminToken   = "sg-test-admin-token"
	// piiAnswer holds an e-mail address at code points 12-30 (bytes 34-52) after
	// a CJK prefix,
	// so byte and code-point offsets differ.
	piiAnswer = "联系值班人员：请写信给 oncall@example.com 或致电。"
)

// env is a console over a real SQLite store with users and incidents.
type env struct {
	t     *testing.T
	store *incidents.SQLiteStore
	clk   *clock.Fake
	con   *Console
	srv   *httptest.Server
	// clinic is an incident of trial clinic (company acme); bank one of trial
	// bank (company globex).
	clinic, bank *incidents.Incident
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	store, err := incidents.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "console.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, store: store, clk: clk}
	ctx := context.Background()
	for _, u := range []incidents.User{
		{Name: "rita", Role: incidents.RoleReviewer, Trials: []string{"clinic"}},
		{Name: "sam", Role: incidents.RoleReviewer, Trials: []string{"clinic", "bank"}},
		{Name: "acme", Role: incidents.RoleCompany, Org: "Acme Health", Trials: []string{"clinic"}},
		{Name: "globex", Role: incidents.RoleCompany, Org: "Globex Bank", Trials: []string{"bank"}},
		{Name: "reg", Role: incidents.RoleRegulator, Trials: []string{"clinic"}},
		{Name: "root", Role: incidents.RoleAdmin},
	} {
		if err := store.AddUser(ctx, u, testPassword, "test"); err != nil {
			t.Fatal(err)
		}
	}
	e.clinic = e.incident("i-clinic", "clinic", "cand-a", piiAnswer, 12, 30)
	e.bank = e.incident("i-bank", "bank", "cand-b", "Your IBAN DE89370400440532013000 is noted.", 10, 32)
	e.con, err = New(cfg, Deps{Store: store, Clock: clk, AdminTokenSHA256: sha256.Sum256([]byte(adminToken))})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.con.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// incident records an interaction whose answer has a PII span and opens its incident.
func (e *env) incident(id, trial, model, answer string, start, end int) *incidents.Incident {
	e.t.Helper()
	in := &events.Interaction{
		Schema: events.SchemaInteraction, ID: id, Trial: trial, Tenant: "t", User: "u_1", Stage: "canary", LogicalModel: "chat",
		Model: model, Route: events.RouteCandidate, Status: events.StatusOK, HTTPStatus: 200, StartedAt: e.clk.Now(),
		Request:  events.Request{Messages: []events.Message{{Role: "user", Content: "谁在值班？ who is on call?"}}},
		Response: events.Response{Content: answer},
		Decision: events.Decision{Allow: true, PolicyRevision: "rev-1"},
	}
	ctx := context.Background()
	if err := e.store.RecordInteraction(ctx, in); err != nil {
		e.t.Fatal(err)
	}
	f := events.Finding{Schema: events.SchemaFinding, ID: "f-" + id, InteractionID: id, Trial: trial, Model: model,
		Detector: "pii", DetectorVersion: "1.0.0", Category: "pii", Severity: events.SeverityMedium, Score: 0.9, Threshold: 0.5,
		Spans: []events.Span{{Field: "response", Start: start, End: end, Kind: "email"}}, Explanation: "an e-mail address in the answer",
		CreatedAt: e.clk.Now()}
	inc, _, err := e.store.OpenIncident(ctx, in, []events.Finding{f})
	if err != nil {
		e.t.Fatal(err)
	}
	return inc
}

// client is a browser-like HTTP client with its own cookies that does not
// follow redirects.
type client struct {
	e    *env
	http *http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, path string, form url.Values, hdr map[string]string) response {
	c.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (c *client) get(path string) response { return c.do(http.MethodGet, path, nil, nil) }

var (
	tokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// login signs in through the form and returns the page's CSRF token.
func (c *client) login(name string) string {
	c.e.t.Helper()
	r := c.loginAs(name, testPassword)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
		c.e.t.Fatalf("login %s: %d %s", name, r.status, r.body)
	}
	page := c.get("/console/")
	m := csrfRE.FindStringSubmatch(page.body)
	if page.status != http.StatusOK || m == nil {
		c.e.t.Fatalf("queue after login: %d", page.status)
	}
	return m[1]
}

func (c *client) loginAs(name, pw string) response {
	c.e.t.Helper()
	form := c.get("/console/login")
	m := tokenRE.FindStringSubmatch(form.body)
	if m == nil {
		c.e.t.Fatalf("login form without token: %s", form.body)
	}
	return c.do(http.MethodPost, "/console/login", url.Values{"token": {m[1]}, "name": {name}, "password": {pw}, "next": {"/console/"}}, nil)
}

func TestSecurityHeadersAndSignInRedirect(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	for _, path := range []string{"/console/login", "/console/static/console.css", "/console/nope"} {
		r := c.get(path)
		for h, want := range map[string]string{
			"Content-Security-Policy": "default-src 'none'; script-src 'self'", "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
		} {
			if got := r.header.Get(h); !strings.HasPrefix(got, want) {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
	}
	r := c.get("/console/incidents/" + e.clinic.ID)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/login?next="+url.QueryEscape("/console/incidents/"+e.clinic.ID) {
		t.Errorf("unauthenticated: %d %s", r.status, r.header.Get("Location"))
	}
	if r := c.do(http.MethodPost, "/console/incidents/"+e.clinic.ID+"/act", url.Values{"kind": {"claim"}}, nil); r.status != http.StatusUnauthorized {
		t.Errorf("unauthenticated post: %d", r.status)
	}
	if r := c.get("/api/v1/review/incidents"); r.status != http.StatusUnauthorized || !strings.Contains(r.body, `"code":"unauthorized"`) {
		t.Errorf("api unauthenticated: %d %s", r.status, r.body)
	}
}

func TestLoginSessionCookieAndCSRF(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	if r := c.loginAs("rita", "wrong password here"); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong user name or password") {
		t.Fatalf("wrong password: %d", r.status)
	}
	// A post without the login form's token (login CSRF) is refused.
	if r := c.do(http.MethodPost, "/console/login", url.Values{"name": {"rita"}, "password": {testPassword}}, nil); r.status != http.StatusForbidden {
		t.Errorf("login without token: %d", r.status)
	}
	r := c.loginAs("rita", testPassword)
	var sess *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == sessionCookie {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/" || sess.MaxAge != int(DefaultSessionTTL.Seconds()) {
		t.Fatalf("session cookie %+v", sess)
	}
	page := c.get("/console/")
	if page.status != http.StatusOK || !strings.Contains(page.body, e.clinic.ID) || strings.Contains(page.body, e.bank.ID) {
		t.Fatalf("rita's queue: %d, has clinic %v, has bank %v", page.status, strings.Contains(page.body, e.clinic.ID), strings.Contains(page.body, e.bank.ID))
	}
	csrf := csrfRE.FindStringSubmatch(page.body)[1]
	act := "/console/incidents/" + e.clinic.ID + "/act"
	for name, form := range map[string]url.Values{
		"no token":    {"kind": {"claim"}},
		"wrong token": {"kind": {"claim"}, "csrf": {"x" + csrf}},
	} {
		if r := c.do(http.MethodPost, act, form, nil); r.status != http.StatusForbidden || !strings.Contains(r.body, "Form expired") {
			t.Errorf("%s: %d", name, r.status)
		}
	}
	if r := c.do(http.MethodPost, act, url.Values{"kind": {"claim"}, "csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}); r.status != http.StatusForbidden {
		t.Errorf("cross-origin post: %d", r.status)
	}
	if wf, _ := e.store.IncidentWorkflow(context.Background(), e.clinic.ID); wf.Assignee != "" {
		t.Fatalf("a refused post changed the incident: %+v", wf)
	}
	if r := c.do(http.MethodPost, act, url.Values{"kind": {"claim"}, "csrf": {csrf}}, nil); r.status != http.StatusSeeOther ||
		r.header.Get("Location") != "/console/incidents/"+e.clinic.ID+"?done=claim" {
		t.Fatalf("claim: %d %s", r.status, r.body)
	}
	page = c.get("/console/incidents/" + e.clinic.ID + "?done=claim")
	if !strings.Contains(page.body, "You hold this incident now.") || !strings.Contains(page.body, `id="confirm-form"`) {
		t.Errorf("after claim the page offers no verdict form")
	}
	// A verdict without a reason is refused with the reason shown, status 400.
	r = c.do(http.MethodPost, act, url.Values{"kind": {"confirm"}, "csrf": {csrf}, "severity": {"high"}, "category": {"pii"}}, nil)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "confirm needs a reason") {
		t.Errorf("confirm without reason: %d", r.status)
	}
	r = c.do(http.MethodPost, act, url.Values{"kind": {"confirm"}, "csrf": {csrf}, "severity": {"high"}, "category": {"pii"}, "reason": {"a real address"}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	inc, _ := e.store.Incident(context.Background(), e.clinic.ID)
	if inc.Status != incidents.StatusConfirmed || inc.Severity != "high" {
		t.Errorf("after confirm: %s/%s", inc.Status, inc.Severity)
	}
	if r := c.do(http.MethodPost, "/console/incidents/"+e.clinic.ID+"/comment", url.Values{"csrf": {csrf}, "body": {"checked with the on-call list"}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("comment: %d", r.status)
	}
	if r := c.do(http.MethodPost, "/console/logout", url.Values{"csrf": {csrf}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("logout: %d", r.status)
	}
	if r := c.get("/console/"); r.status != http.StatusSeeOther {
		t.Errorf("after logout: %d", r.status)
	}
	entries, _ := e.store.AuditEntries(context.Background(), incidents.AuditFilter{})
	var actions []string
	for _, en := range entries {
		actions = append(actions, en.Action)
	}
	if got := strings.Join(actions, " "); !strings.HasPrefix(got, "logout incident.comment incident.confirm incident.claim login login.failed") {
		t.Errorf("audit trail: %s", got)
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, Config{LoginAttempts: 3, LoginWindow: time.Minute})
	c := e.client()
	for range 3 {
		if r := c.loginAs("rita", "not the password"); r.status != http.StatusUnauthorized {
			t.Fatalf("failed login: %d", r.status)
		}
	}
	if r := c.loginAs("rita", testPassword); r.status != http.StatusTooManyRequests {
		t.Errorf("fourth attempt: %d", r.status)
	}
	e.clk.Advance(time.Minute)
	if r := c.loginAs("rita", testPassword); r.status != http.StatusSeeOther {
		t.Errorf("after the window: %d", r.status)
	}
}

func TestProxyHeaderSignIn(t *testing.T) {
	e := newEnv(t, Config{ProxyUserHeader: "X-Forwarded-User"})
	c := e.client()
	r := c.do(http.MethodGet, "/console/", nil, map[string]string{"X-Forwarded-User": "acme"})
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="whoami">acme<`) {
		t.Fatalf("proxy sign-in: %d", r.status)
	}
	// The session it started carries on without the header.
	if r := c.get("/console/"); r.status != http.StatusOK || !strings.Contains(r.body, `id="whoami">acme<`) {
		t.Errorf("session after proxy sign-in: %d", r.status)
	}
	if r := e.client().do(http.MethodGet, "/console/", nil, map[string]string{"X-Forwarded-User": "mallory"}); r.status != http.StatusSeeOther {
		t.Errorf("unknown proxy user: %d", r.status)
	}
	// Only trusted addresses may send the header.
	e2 := newEnv(t, Config{ProxyUserHeader: "X-Forwarded-User", TrustedProxies: []string{"10.0.0.0/8"}})
	if r := e2.client().do(http.MethodGet, "/console/", nil, map[string]string{"X-Forwarded-User": "acme"}); r.status != http.StatusSeeOther {
		t.Errorf("untrusted proxy: %d", r.status)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{SessionTTL: time.Second, ProxyUserHeader: "Cookie", TrustedProxies: []string{"nope"}, LoginAttempts: -1, Confidence: 2}.Validate()
	for _, want := range []string{"session_ttl", "proxy_user_header", "trusted_proxies", "login_attempts", "confidence"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not mention %s", err, want)
		}
	}
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Error("no store accepted")
	}
}

func decode(t *testing.T, r response, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %d %q: %v", r.status, r.body, err)
	}
}
