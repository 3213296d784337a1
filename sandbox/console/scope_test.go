package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/incidents"
)

// TestScopeAndRoleDenials checks every denial of the scoping rules, on the
// console pages and on the review API: a company sees only its own trials, a
// reviewer only the trials assigned to them, a regulator the trials they
// oversee; roles limit what each may change.
func TestScopeAndRoleDenials(t *testing.T) {
	e := newEnv(t, Config{})
	clinic, bank := e.clinic.ID, e.bank.ID
	type check struct {
		user   string // "" with token: the admin bearer token
		token  bool
		method string
		path   string
		body   string // JSON for API posts, form values (url-encoded, csrf added) for pages
		want   int
	}
	checks := []check{
		// A company cannot open another company's incident (page and API).
		{user: "globex", method: "GET", path: "/console/incidents/" + clinic, want: 403},
		{user: "globex", method: "GET", path: "/api/v1/review/incidents/" + clinic, want: 403},
		{user: "acme", method: "GET", path: "/console/incidents/" + clinic, want: 200},
		{user: "acme", method: "GET", path: "/console/incidents/" + bank, want: 403},
		// ... nor filter the queue or read the trial page or report of another trial.
		{user: "acme", method: "GET", path: "/console/?trial=bank", want: 403},
		{user: "acme", method: "GET", path: "/api/v1/review/incidents?trial=bank", want: 403},
		{user: "acme", method: "GET", path: "/console/trials/bank", want: 403},
		{user: "acme", method: "GET", path: "/api/v1/review/trials/bank/report?format=json", want: 403},
		{user: "acme", method: "GET", path: "/api/v1/review/trials/clinic/report?format=json", want: 200},
		// A company does not review: no claim, no verdict, no escalation.
		{user: "acme", method: "POST", path: "/console/incidents/" + clinic + "/act", body: "kind=claim", want: 403},
		{user: "acme", method: "POST", path: "/api/v1/review/incidents/" + clinic + "/actions", body: `{"kind":"escalate","reason":"x"}`, want: 403},
		{user: "acme", method: "GET", path: "/console/audit", want: 403},
		{user: "acme", method: "GET", path: "/api/v1/review/audit/verify", want: 403},
		// A reviewer sees only assigned trials.
		{user: "rita", method: "GET", path: "/console/incidents/" + bank, want: 403},
		{user: "rita", method: "GET", path: "/api/v1/review/incidents/" + bank, want: 403},
		{user: "rita", method: "POST", path: "/console/incidents/" + bank + "/act", body: "kind=claim", want: 403},
		{user: "rita", method: "POST", path: "/api/v1/review/incidents/" + bank + "/actions", body: `{"kind":"claim"}`, want: 403},
		{user: "rita", method: "POST", path: "/api/v1/review/incidents/" + bank + "/comments", body: `{"body":"x"}`, want: 403},
		{user: "sam", method: "GET", path: "/console/incidents/" + bank, want: 200},
		// A reviewer does not read reports or the audit trail, nor reopen or assign.
		{user: "rita", method: "GET", path: "/console/trials/clinic/report", want: 403},
		{user: "rita", method: "GET", path: "/console/audit", want: 403},
		{user: "rita", method: "POST", path: "/api/v1/review/incidents/" + clinic + "/actions", body: `{"kind":"assign","assignee":"sam","reason":"x"}`, want: 403},
		// A reviewer may not decide an incident someone else holds (sam claims first below).
		{user: "rita", method: "POST", path: "/api/v1/review/incidents/" + clinic + "/actions", body: `{"kind":"confirm","severity":"high","category":"pii","reason":"x"}`, want: 403},
		// A regulator sees the trials they oversee only.
		{user: "reg", method: "GET", path: "/console/trials/bank", want: 403},
		{user: "reg", method: "GET", path: "/console/incidents/" + bank, want: 403},
		{user: "reg", method: "GET", path: "/console/audit?trial=bank", want: 403},
		{user: "reg", method: "GET", path: "/api/v1/review/audit", want: 403}, // must name a trial
		{user: "reg", method: "GET", path: "/api/v1/review/audit?trial=clinic", want: 200},
		{user: "reg", method: "GET", path: "/console/audit", want: 200},
		{user: "reg", method: "GET", path: "/console/trials/clinic", want: 200},
		// A regulator does not claim; decides only escalated incidents or overrules.
		{user: "reg", method: "POST", path: "/api/v1/review/incidents/" + clinic + "/actions", body: `{"kind":"claim"}`, want: 403},
		// The actor is the signed-in user, never a field of the body.
		{user: "sam", method: "POST", path: "/api/v1/review/incidents/" + clinic + "/actions", body: `{"kind":"claim","actor":"rita"}`, want: 400},
		// Review rules: the trial's regulator sets them; a reviewer or another regulator may not.
		{user: "reg", method: "PUT", path: "/api/v1/review/trials/clinic/rules", body: `{"rules":{"review_target_hours":{"critical":2}},"reason":"faster"}`, want: 200},
		{user: "reg", method: "PUT", path: "/api/v1/review/trials/bank/rules", body: `{"rules":{}}`, want: 403},
		{user: "rita", method: "PUT", path: "/api/v1/review/trials/clinic/rules", body: `{"rules":{}}`, want: 403},
		{user: "reg", method: "PUT", path: "/api/v1/review/trials/clinic/rules", body: `{"rules":{"report_days_serious":30}}`, want: 400},
		{user: "rita", method: "GET", path: "/api/v1/review/trials/clinic/rules", want: 200},
		// The admin token is the admin role: everything.
		{token: true, method: "GET", path: "/api/v1/review/incidents/" + bank, want: 200},
		{token: true, method: "GET", path: "/api/v1/review/audit", want: 200},
		{token: true, method: "GET", path: "/api/v1/review/trials/bank/report?format=csv", want: 200},
		{user: "root", method: "GET", path: "/console/incidents/" + bank, want: 200},
	}
	// sam holds the clinic incident, so rita's verdict is refused for that reason.
	if _, err := e.store.Act(context.Background(), clinic, incidents.Action{Kind: incidents.ActionClaim, Actor: "sam"}); err != nil {
		t.Fatal(err)
	}
	clients := map[string]*client{}
	csrf := map[string]string{}
	for _, ck := range checks {
		if ck.token {
			c := e.client()
			r := c.do(ck.method, ck.path, nil, map[string]string{"Authorization": "Bearer " + adminToken})
			if r.status != ck.want {
				t.Errorf("admin token %s %s: %d, want %d: %.200s", ck.method, ck.path, r.status, ck.want, r.body)
			}
			continue
		}
		c, ok := clients[ck.user]
		if !ok {
			c = e.client()
			csrf[ck.user] = c.login(ck.user)
			clients[ck.user] = c
		}
		var r response
		switch {
		case ck.method == "GET":
			r = c.get(ck.path)
		case strings.HasPrefix(ck.path, "/api/"):
			r = c.doJSON(ck.method, ck.path, ck.body, csrf[ck.user])
		default:
			form, _ := url.ParseQuery(ck.body)
			form.Set("csrf", csrf[ck.user])
			r = c.do(ck.method, ck.path, form, nil)
		}
		if r.status != ck.want {
			t.Errorf("%s %s %s: %d, want %d: %.300s", ck.user, ck.method, ck.path, r.status, ck.want, r.body)
		}
		// A refused page shows the 403 page; a refused form, the page with the reason.
		if ck.want == http.StatusForbidden && strings.HasPrefix(ck.path, "/console/") && !strings.Contains(r.body, "403 · ") &&
			!(ck.method == "POST" && strings.Contains(r.body, `id="error"`)) {
			t.Errorf("%s %s: neither the 403 page nor the reason: %.300s", ck.user, ck.path, r.body)
		}
	}
	// Nothing the denied requests asked for happened.
	if inc, _ := e.store.Incident(context.Background(), bank); inc.Status != incidents.StatusOpen {
		t.Errorf("bank incident changed: %s", inc.Status)
	}
	if inc, _ := e.store.Incident(context.Background(), clinic); inc.Status != incidents.StatusInReview {
		t.Errorf("clinic incident changed: %s", inc.Status)
	}
	if rules, _ := e.store.TrialRules(context.Background(), "clinic"); rules.ReviewTargetHours["critical"] != 2 {
		t.Errorf("clinic rules %+v", rules)
	}
}

// doJSON posts a JSON body with the session's CSRF header.
func (c *client) doJSON(method, path, body, csrf string) response {
	c.e.t.Helper()
	req, err := http.NewRequest(method, c.e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(csrfHeader, csrf)
	resp, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func TestReviewAPIFlow(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	c.login("sam")
	var me struct {
		User incidents.User `json:"user"`
		CSRF string         `json:"csrf"`
	}
	decode(t, c.get("/api/v1/review/me"), &me)
	if me.User.Name != "sam" || me.CSRF == "" {
		t.Fatalf("me: %+v", me)
	}
	id := e.bank.ID
	if r := c.doJSON(http.MethodPost, "/api/v1/review/incidents/"+id+"/actions", `{"kind":"claim"}`, ""); r.status != http.StatusForbidden {
		t.Errorf("post without CSRF header: %d", r.status)
	}
	for _, body := range []string{`{"kind":"claim"}`, `{"kind":"confirm","severity":"critical","category":"pii","harm":"serious","reason":"IBAN of a real customer"}`} {
		if r := c.doJSON(http.MethodPost, "/api/v1/review/incidents/"+id+"/actions", body, me.CSRF); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
	}
	if r := c.doJSON(http.MethodPost, "/api/v1/review/incidents/"+id+"/actions", `{"kind":"escalate","reason":"x"}`, me.CSRF); r.status != http.StatusConflict {
		t.Errorf("escalate a confirmed incident: %d", r.status)
	}
	var got struct {
		Incident incidents.Incident `json:"incident"`
		Workflow incidents.Workflow `json:"workflow"`
		Evidence []apiEvidence      `json:"evidence"`
		Actions  []string           `json:"actions"`
	}
	decode(t, c.get("/api/v1/review/incidents/"+id), &got)
	if got.Incident.Status != incidents.StatusConfirmed || got.Workflow.Harm != incidents.HarmSerious || got.Workflow.Report == nil ||
		len(got.Evidence) != 1 || got.Evidence[0].Text != "DE89370400440532013000" {
		t.Errorf("incident after verdict: %+v", got)
	}
	var q incidents.Queue
	decode(t, c.get("/api/v1/review/incidents?status=confirmed"), &q)
	if q.Total != 1 || q.Items[0].ID != id {
		t.Errorf("queue: %+v", q)
	}
	if r := c.get("/api/v1/review/incidents?deadline=tomorrow"); r.status != http.StatusBadRequest {
		t.Errorf("bad filter: %d", r.status)
	}
	var v incidents.AuditVerification
	r := c.do("GET", "/api/v1/review/audit/verify", nil, map[string]string{"Authorization": "Bearer " + adminToken})
	decode(t, r, &v)
	if !v.OK || v.Entries < 3 {
		t.Errorf("audit verify: %+v", v)
	}
	r = c.do("GET", "/api/v1/review/trials/bank/report?format=json", nil, map[string]string{"Authorization": "Bearer " + adminToken})
	var rep incidents.Report
	decode(t, r, &rep)
	if len(rep.Drafts) != 1 || rep.Drafts[0].IncidentID != id || r.header.Get("Content-Disposition") == "" {
		t.Errorf("report: %d drafts", len(rep.Drafts))
	}
	// The Wilson interval of 1 confirmed in 1 answered interaction at 95 %.
	if len(rep.Rates) == 0 || rep.Rates[0].Upper != 1 || rep.Rates[0].Lower < 0.2 || rep.Rates[0].Lower > 0.21 {
		t.Errorf("rates %+v", rep.Rates)
	}
	r = c.do("GET", "/console/trials/bank/report?format=html", nil, map[string]string{"Authorization": "Bearer " + adminToken})
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Security-Policy"), "default-src 'none'; style-src 'unsafe-inline'") ||
		!strings.Contains(r.body, "Art. 73") {
		t.Errorf("html report: %d %s", r.status, r.header.Get("Content-Security-Policy"))
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(c.get("/api/v1/review/incidents/nope").body), &raw); err != nil || raw["error"] == nil {
		t.Errorf("missing incident: %v", raw)
	}
}
