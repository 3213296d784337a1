package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
)

func (c *Console) pageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"/static/", func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		w.Header().Set("Cache-Control", "public, max-age=300")
		c.static.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET "+Prefix+"/login", c.loginForm)
	mux.HandleFunc("POST "+Prefix+"/login", c.login)
	mux.Handle("POST "+Prefix+"/logout", c.page(c.logout))
	mux.Handle("GET "+Prefix+"/{$}", c.page(c.queuePage))
	mux.Handle("GET "+Prefix+"/incidents/{id}", c.page(c.incidentPage))
	mux.Handle("POST "+Prefix+"/incidents/{id}/act", c.page(c.actForm))
	mux.Handle("POST "+Prefix+"/incidents/{id}/comment", c.page(c.commentForm))
	mux.Handle("POST "+Prefix+"/incidents/{id}/labels", c.page(c.labelsForm))
	mux.Handle("GET "+Prefix+"/trials/{trial}", c.page(c.trialPage))
	mux.Handle("GET "+Prefix+"/trials/{trial}/report", c.page(c.reportDownload))
	mux.Handle("GET "+Prefix+"/audit", c.page(c.auditPage))
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, nil, http.StatusNotFound, "Not found", "There is no console page at "+r.URL.Path+".")
	})
}

// page authenticates a console request (redirecting to sign-in), bounds and
// parses a posted form, and checks its CSRF token and origin.
func (c *Console) page(h func(http.ResponseWriter, *http.Request, *principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := c.authenticate(w, r)
		switch {
		case errors.Is(err, errUnauthenticated):
			if r.Method == http.MethodGet {
				secure(w)
				http.Redirect(w, r, Prefix+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.errorPage(w, nil, http.StatusUnauthorized, "Sign-in required", "Your session ended. Sign in again.")
			return
		case err != nil:
			c.log.Error("console auth", "err", err)
			c.errorPage(w, nil, http.StatusInternalServerError, "Something went wrong", "The console could not check your sign-in.")
			return
		}
		if !p.user.Can(incidents.PermView) {
			c.errorPage(w, p, http.StatusForbidden, "Forbidden", "Your account may not use the console.")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				c.errorPage(w, p, http.StatusBadRequest, "Bad form", "The form could not be read.")
				return
			}
			if !sameOrigin(r) || !checkCSRF(p, r.PostFormValue(csrfField)) {
				c.errorPage(w, p, http.StatusForbidden, "Form expired", "The form's security token did not match. Reload the page and try again.")
				return
			}
		}
		h(w, r, p)
	})
}

// baseFor fills what every page shows.
func (c *Console) baseFor(ctx context.Context, p *principal, page, title string) base {
	return base{Page: page, Title: title, User: p.user, CSRF: p.csrf(), Trials: c.visibleTrials(ctx, p), Now: c.clk.Now()}
}

// visibleTrials lists the trials in the user's scope that the console knows of.
func (c *Console) visibleTrials(ctx context.Context, p *principal) []string {
	if !p.user.Scope().All {
		return p.user.Trials
	}
	revs, err := c.store.Trials(ctx)
	if err != nil {
		c.log.Warn("console: list trials", "err", err)
		return nil
	}
	out := make([]string, 0, len(revs))
	for _, r := range revs {
		out = append(out, r.Trial)
	}
	return out
}

type loginPage struct {
	base
	Token string
	Next  string
	Name  string
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if p, err := c.authenticate(w, r); err == nil && p.sess != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "", "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, name, msg string) {
	tok := newLoginToken()
	c.setCookie(w, r, loginCookie, tok, 30*time.Minute)
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostFormValue("next")
	}
	c.render(w, status, "login", loginPage{base: base{Page: "login", Title: "Sign in", Error: msg, Now: c.clk.Now()},
		Token: tok, Next: safeNext(next), Name: name})
}

// safeNext keeps a post-login redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "/"
	}
	return next
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.showLogin(w, r, http.StatusBadRequest, "", "The form could not be read.")
		return
	}
	ck, err := r.Cookie(loginCookie)
	tok := r.PostFormValue("token")
	if err != nil || tok == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(tok)) != 1 || !sameOrigin(r) {
		c.showLogin(w, r, http.StatusForbidden, "", "The sign-in form expired. Try again.")
		return
	}
	name, pw := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password")
	key := remoteIP(r) + "|" + strings.ToLower(name)
	now := c.clk.Now()
	if c.limiter.blocked(key, now) {
		c.showLogin(w, r, http.StatusTooManyRequests, name, "Too many failed sign-ins. Wait a few minutes and try again.")
		return
	}
	u, err := c.store.Authenticate(r.Context(), name, pw, remoteIP(r))
	if errors.Is(err, incidents.ErrCredentials) {
		c.limiter.fail(key, now)
		c.showLogin(w, r, http.StatusUnauthorized, name, "Wrong user name or password.")
		return
	}
	if err != nil {
		c.log.Error("console login", "err", err)
		c.showLogin(w, r, http.StatusInternalServerError, name, "Sign-in failed; try again.")
		return
	}
	sess, err := c.store.NewSession(r.Context(), u.Name, "password", remoteIP(r), c.cfg.SessionTTL)
	if err != nil {
		c.log.Error("console session", "err", err)
		c.showLogin(w, r, http.StatusInternalServerError, name, "Sign-in failed; try again.")
		return
	}
	c.limiter.reset(key)
	c.clearCookie(w, r, loginCookie)
	c.setCookie(w, r, sessionCookie, sess.Token, c.cfg.SessionTTL)
	secure(w)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, p *principal) {
	if ck, err := r.Cookie(sessionCookie); err == nil && p.sess != nil {
		if err := c.store.EndSession(r.Context(), ck.Value); err != nil && !errors.Is(err, incidents.ErrNotFound) {
			c.log.Warn("console logout", "err", err)
		}
	}
	c.clearCookie(w, r, sessionCookie)
	secure(w)
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

// queueFilter reads the queue's filters from a query string.
func queueFilter(q url.Values, p *principal) incidents.QueueFilter {
	f := incidents.QueueFilter{
		Scope: p.user.Scope(), Trial: q.Get("trial"), Status: q.Get("status"), Severity: q.Get("severity"),
		Category: q.Get("category"), Deadline: q.Get("deadline"), Sort: q.Get("sort"), SecondReview: q.Get("second_review"),
		Assignee: q.Get("assignee"),
	}
	if f.Assignee == "me" {
		f.Assignee = p.user.Name
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		f.Limit = n
	}
	return f
}

type queuePage struct {
	base
	Queue      *incidents.Queue
	Filter     incidents.QueueFilter
	Mine       bool
	Categories []string
}

func (c *Console) queuePage(w http.ResponseWriter, r *http.Request, p *principal) {
	f := queueFilter(r.URL.Query(), p)
	b := c.baseFor(r.Context(), p, "queue", "Incident queue")
	if f.Trial != "" && !p.user.CanSee(f.Trial) {
		c.errorPage(w, p, http.StatusForbidden, "Forbidden", "You cannot see trial "+f.Trial+".")
		return
	}
	q, err := c.store.Queue(r.Context(), f)
	if errors.Is(err, incidents.ErrInvalid) {
		c.errorPage(w, p, http.StatusBadRequest, "Bad filter", err.Error())
		return
	}
	if err != nil {
		c.internal(w, p, "queue", err)
		return
	}
	cats := make([]string, 0, len(q.Counts.Category))
	for k := range q.Counts.Category {
		cats = append(cats, k)
	}
	slices.Sort(cats)
	c.render(w, http.StatusOK, "queue", queuePage{base: b, Queue: q, Filter: f, Mine: r.URL.Query().Get("assignee") == "me", Categories: cats})
}

func (c *Console) internal(w http.ResponseWriter, p *principal, what string, err error) {
	c.log.Error("console", "op", what, "err", err)
	c.errorPage(w, p, http.StatusInternalServerError, "Something went wrong", "The "+what+" could not be loaded; the error is in the server log.")
}

// incidentView is everything the incident page shows.
type incidentView struct {
	base
	Incident    *incidents.Incident
	Interaction *events.Interaction
	Workflow    *incidents.Workflow
	History     *incidents.History
	Texts       []textView
	// Can lists the actions the user may take now, by kind.
	Can        map[string]bool
	CanComment bool
	CanLabel   bool
}

// loadIncident reads an incident the user may see, answering 404 or 403 itself.
func (c *Console) loadIncident(w http.ResponseWriter, r *http.Request, p *principal) (*incidents.Incident, bool) {
	inc, err := c.store.Incident(r.Context(), r.PathValue("id"))
	if errors.Is(err, incidents.ErrNotFound) || errors.Is(err, incidents.ErrInvalid) {
		c.errorPage(w, p, http.StatusNotFound, "Not found", "There is no incident "+r.PathValue("id")+".")
		return nil, false
	}
	if err != nil {
		c.internal(w, p, "incident", err)
		return nil, false
	}
	if !p.user.CanSee(inc.Trial) {
		c.errorPage(w, p, http.StatusForbidden, "Forbidden", "This incident belongs to a trial you cannot see.")
		return nil, false
	}
	return inc, true
}

func (c *Console) incidentPage(w http.ResponseWriter, r *http.Request, p *principal) {
	inc, ok := c.loadIncident(w, r, p)
	if !ok {
		return
	}
	v, err := c.incidentView(r.Context(), p, inc)
	if err != nil {
		c.internal(w, p, "incident", err)
		return
	}
	v.Flash = flashes[r.URL.Query().Get("done")]
	c.render(w, http.StatusOK, "incident", v)
}

// flashes are the messages after a successful form post.
var flashes = map[string]string{
	incidents.ActionClaim: "You hold this incident now.", incidents.ActionAssign: "Assigned.",
	incidents.ActionRelease: "Released to the queue.", incidents.ActionConfirm: "Incident confirmed.",
	incidents.ActionDismiss: "Incident dismissed.", incidents.ActionEscalate: "Escalated to the regulator.",
	incidents.ActionReopen: "Reopened for review.", incidents.ActionSecondReview: "Second review recorded.",
	incidents.ActionReportFiled: "Report recorded as filed.", "comment": "Comment added.", "labels": "Labels updated.",
}

func (c *Console) incidentView(ctx context.Context, p *principal, inc *incidents.Incident) (*incidentView, error) {
	v := &incidentView{base: c.baseFor(ctx, p, "incident", inc.Title), Incident: inc, Can: map[string]bool{}}
	in, err := c.store.Interaction(ctx, inc.InteractionID)
	if err != nil && !errors.Is(err, incidents.ErrNotFound) {
		return nil, err
	}
	v.Interaction = in
	v.Texts = conversation(in, inc.Findings)
	if v.Workflow, err = c.store.IncidentWorkflow(ctx, inc.ID); err != nil {
		return nil, err
	}
	if v.History, err = c.store.IncidentHistory(ctx, inc.ID); err != nil {
		return nil, err
	}
	for _, kind := range []string{incidents.ActionClaim, incidents.ActionAssign, incidents.ActionRelease, incidents.ActionConfirm,
		incidents.ActionDismiss, incidents.ActionEscalate, incidents.ActionReopen} {
		v.Can[kind] = incidents.ActionPossible(kind, inc.Status) && p.user.CheckAction(kind, inc.Status, v.Workflow.Assignee) == nil
	}
	if inc.Status == incidents.StatusInReview && v.Workflow.Assignee == p.user.Name {
		v.Can[incidents.ActionClaim] = false // already holds it
	}
	firstReviewer := ""
	if len(v.History.Reviews) > 0 {
		firstReviewer = v.History.Reviews[0].Reviewer
	}
	v.Can[incidents.ActionSecondReview] = v.Workflow.SecondReview == incidents.SecondReviewPending && firstReviewer != p.user.Name &&
		p.user.CheckAction(incidents.ActionSecondReview, inc.Status, v.Workflow.Assignee) == nil
	v.Can[incidents.ActionReportFiled] = v.Workflow.Serious && v.Workflow.ReportedAt.IsZero() && inc.Status == incidents.StatusConfirmed &&
		p.user.CheckAction(incidents.ActionReportFiled, inc.Status, v.Workflow.Assignee) == nil
	v.CanComment = p.user.Can(incidents.PermComment)
	v.CanLabel = p.user.Can(incidents.PermReview)
	return v, nil
}
