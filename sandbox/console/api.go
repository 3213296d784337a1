package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
)

// The review API: the console's data and actions as JSON, for scripts and the
// CLI. It authenticates like the console (a session cookie, whose posts carry
// the X-CSRF-Token header, the trusted proxy's header, or the admin bearer
// token as the admin role) and enforces the same scope and role rules; errors
// have the admin API's shape {"error":{"message","code"}}.

func (c *Console) apiRoutes(mux *http.ServeMux) {
	mux.Handle("GET "+APIPrefix+"/me", c.api(c.apiMe))
	mux.Handle("GET "+APIPrefix+"/incidents", c.api(c.apiQueue))
	mux.Handle("GET "+APIPrefix+"/incidents/{id}", c.api(c.apiIncident))
	mux.Handle("POST "+APIPrefix+"/incidents/{id}/actions", c.api(c.apiAct))
	mux.Handle("POST "+APIPrefix+"/incidents/{id}/comments", c.api(c.apiComment))
	mux.Handle("GET "+APIPrefix+"/trials/{trial}/report", c.api(c.apiReport))
	mux.Handle("GET "+APIPrefix+"/trials/{trial}/rules", c.api(c.apiRules))
	mux.Handle("PUT "+APIPrefix+"/trials/{trial}/rules", c.api(c.apiSetRules))
	mux.Handle("GET "+APIPrefix+"/audit", c.api(c.apiAudit))
	mux.Handle("GET "+APIPrefix+"/audit/verify", c.api(c.apiVerify))
}

// api authenticates a review API request and checks the CSRF header of posts
// made with a session cookie.
func (c *Console) api(h func(http.ResponseWriter, *http.Request, *principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		p, err := c.authenticate(w, r)
		switch {
		case errors.Is(err, errUnauthenticated):
			w.Header().Set("WWW-Authenticate", `Bearer realm="stagegate-admin"`)
			apiError(w, http.StatusUnauthorized, "unauthorized", "sign in, or send the admin token")
			return
		case err != nil:
			c.log.Error("review api auth", "err", err)
			apiError(w, http.StatusInternalServerError, "internal_error", "authentication failed")
			return
		}
		if !p.user.Can(incidents.PermView) {
			apiError(w, http.StatusForbidden, "forbidden", "this account may not use the review API")
			return
		}
		if r.Method != http.MethodGet && (!checkCSRF(p, r.Header.Get(csrfHeader)) || !sameOrigin(r)) {
			apiError(w, http.StatusForbidden, "csrf", "posts with a session cookie need the session's "+csrfHeader+" header")
			return
		}
		h(w, r, p)
	})
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

// statusCode names an HTTP status for the error body.
func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	}
	return "internal_error"
}

func (c *Console) apiMe(w http.ResponseWriter, r *http.Request, p *principal) {
	writeJSON(w, http.StatusOK, map[string]any{"user": p.user, "csrf": p.csrf()})
}

func (c *Console) apiQueue(w http.ResponseWriter, r *http.Request, p *principal) {
	f := queueFilter(r.URL.Query(), p)
	if f.Trial != "" && !p.user.CanSee(f.Trial) {
		apiError(w, http.StatusForbidden, "forbidden", "you cannot see trial "+f.Trial)
		return
	}
	q, err := c.store.Queue(r.Context(), f)
	if errors.Is(err, incidents.ErrInvalid) {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err != nil {
		c.apiInternal(w, "queue", err)
		return
	}
	writeJSON(w, http.StatusOK, q)
}

func (c *Console) apiInternal(w http.ResponseWriter, what string, err error) {
	c.log.Error("review api", "op", what, "err", err)
	apiError(w, http.StatusInternalServerError, "internal_error", what+" failed")
}

// apiEvidence is one highlighted span with the text it covers.
type apiEvidence struct {
	events.Span
	Detector string `json:"detector"`
	Text     string `json:"text"`
}

func (c *Console) apiIncident(w http.ResponseWriter, r *http.Request, p *principal) {
	inc, err := c.store.Incident(r.Context(), r.PathValue("id"))
	if errors.Is(err, incidents.ErrNotFound) || errors.Is(err, incidents.ErrInvalid) {
		apiError(w, http.StatusNotFound, "not_found", "no incident "+r.PathValue("id"))
		return
	}
	if err != nil {
		c.apiInternal(w, "incident", err)
		return
	}
	if !p.user.CanSee(inc.Trial) {
		apiError(w, http.StatusForbidden, "forbidden", "this incident belongs to a trial you cannot see")
		return
	}
	v, err := c.incidentView(r.Context(), p, inc)
	if err != nil {
		c.apiInternal(w, "incident", err)
		return
	}
	ev := []apiEvidence{}
	for _, f := range inc.Findings {
		for _, sp := range f.Spans {
			ev = append(ev, apiEvidence{Span: sp, Detector: f.Detector, Text: v.Interaction.SpanText(sp)})
		}
	}
	can := []string{}
	for k, ok := range v.Can {
		if ok {
			can = append(can, k)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": inc, "interaction": v.Interaction, "workflow": v.Workflow,
		"history": v.History, "evidence": ev, "actions": can})
}

// decodeJSON reads one bounded JSON object, unknown fields refused.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_json", "the body is not the expected JSON: "+err.Error())
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		apiError(w, http.StatusBadRequest, "invalid_json", "unexpected data after the JSON body")
		return false
	}
	return true
}

func (c *Console) apiAct(w http.ResponseWriter, r *http.Request, p *principal) {
	var a incidents.Action
	if !decodeJSON(w, r, &a) {
		return
	}
	inc, status, err := c.act(r.Context(), p, r.PathValue("id"), a)
	if err != nil {
		if status == http.StatusInternalServerError {
			c.apiInternal(w, "action", err)
			return
		}
		apiError(w, status, statusCode(status), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": inc})
}

func (c *Console) apiComment(w http.ResponseWriter, r *http.Request, p *principal) {
	var body struct {
		Body string `json:"body"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	inc, err := c.store.Incident(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, incidents.ErrNotFound), errors.Is(err, incidents.ErrInvalid):
		apiError(w, http.StatusNotFound, "not_found", "no incident "+r.PathValue("id"))
		return
	case err != nil:
		c.apiInternal(w, "comment", err)
		return
	case !p.user.CanSee(inc.Trial) || !p.user.Can(incidents.PermComment):
		apiError(w, http.StatusForbidden, "forbidden", "you may not comment on this incident")
		return
	}
	cm, err := c.store.Comment(r.Context(), inc.ID, p.user.Name, body.Body)
	if errors.Is(err, incidents.ErrInvalid) {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err != nil {
		c.apiInternal(w, "comment", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"comment": cm})
}

func (c *Console) apiReport(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("trial")
	if !p.user.CanSee(id) || !p.user.Can(incidents.PermReport) {
		apiError(w, http.StatusForbidden, "forbidden", "you may not read the report of trial "+id)
		return
	}
	c.serveReport(w, r, id, func(status int, msg string) { apiError(w, status, statusCode(status), msg) })
}

func (c *Console) apiAudit(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.user.Can(incidents.PermAudit) {
		apiError(w, http.StatusForbidden, "forbidden", "only regulators and administrators read the audit trail")
		return
	}
	q := r.URL.Query()
	f := incidents.AuditFilter{Trial: q.Get("trial"), ActionPrefix: q.Get("action")}
	if !p.user.Scope().All && !p.user.CanSee(f.Trial) {
		apiError(w, http.StatusForbidden, "forbidden", "name a trial you oversee (?trial=)")
		return
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil {
		f.Limit = n
	}
	if n, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil {
		f.BeforeSeq = n
	}
	list, err := c.store.AuditEntries(r.Context(), f)
	if errors.Is(err, incidents.ErrInvalid) {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err != nil {
		c.apiInternal(w, "audit entries", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": list, "count": len(list)})
}

func (c *Console) apiVerify(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.user.Can(incidents.PermAudit) {
		apiError(w, http.StatusForbidden, "forbidden", "only regulators and administrators verify the audit trail")
		return
	}
	v, err := c.store.VerifyAudit(r.Context())
	if err != nil {
		c.apiInternal(w, "audit verification", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (c *Console) apiRules(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("trial")
	if !p.user.CanSee(id) {
		apiError(w, http.StatusForbidden, "forbidden", "you cannot see trial "+id)
		return
	}
	rules, err := c.store.TrialRules(r.Context(), id)
	if errors.Is(err, incidents.ErrInvalid) {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err != nil {
		c.apiInternal(w, "review rules", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"trial": id, "rules": rules})
}

// apiSetRules replaces a trial's review rules (regulators of the trial, admins):
// {"rules": {...TrialRules}, "reason": "..."}.
func (c *Console) apiSetRules(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("trial")
	if !p.user.CanSee(id) || !p.user.Can(incidents.PermRules) {
		apiError(w, http.StatusForbidden, "forbidden", "only the trial's regulator sets its review rules")
		return
	}
	var body struct {
		Rules  incidents.TrialRules `json:"rules"`
		Reason string               `json:"reason"`
	}
	if !decodeJSON(w, r, &body) {
		return
	}
	err := c.store.SetTrialRules(r.Context(), id, body.Rules, p.user.Name, body.Reason)
	if errors.Is(err, incidents.ErrInvalid) {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err != nil {
		c.apiInternal(w, "set review rules", err)
		return
	}
	c.apiRules(w, r, p)
}
