package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/policies"
)

// capsPolicy denies over-quota users and, when it may read text, prompts with "forbidden-word".
const capsPolicy = `package stagegate

default allow := true

allow := false if input.caller.over_quota

allow := false if {
	some m in input.content
	contains(m.text, "forbidden-word")
}

reasons := [{"code": "over_quota", "message": "daily request cap reached"}] if input.caller.over_quota
else := [{"code": "content", "message": "forbidden word"}] if not allow
else := []

decision := {
	"allow": allow,
	"reasons": reasons,
	"route": "",
	"obligations": {"redact_pii_in_storage": false, "max_tokens": 0, "notice": "", "log_level": "info"},
	"fail_mode": "closed",
}
`

func trialRig(t *testing.T, trial gateway.Trial) (*httptest.Server, *recorder) {
	t.Helper()
	eng, err := policies.New(context.Background(), policies.Config{FS: fstest.MapFS{"policy.rego": {Data: []byte(capsPolicy)}}})
	if err != nil {
		t.Fatal(err)
	}
	ext, _ := policies.NewExtractor(nil)
	trial.ID, trial.LogicalModel, trial.Decider, trial.Extractor = "demo", "demo", eng, ext
	keys, _ := gateway.NewKeys(map[string]gateway.Principal{gateway.HashKey(pilotKey): {KeyID: "k1", Trial: "demo", Tenant: "acme"}})
	rec := &recorder{}
	g, err := gateway.New(gateway.Config{}, gateway.Deps{
		Keys: keys, Trials: map[string]*gateway.Trial{"demo": &trial},
		Upstreams: map[string]*gateway.Upstream{"cand": simUpstream(t, "cand"), "base": simUpstream(t, "base")},
		Assigner:  fixedAssigner{route: "candidate"}, Publisher: rec,
		Pseudonymize: func(tenant, user string) string { return "p_" + user },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv, rec
}

func TestDailyCapBecomesOverQuotaFact(t *testing.T) {
	srv, rec := trialRig(t, gateway.Trial{Caps: gateway.Caps{RequestsPerUserPerDay: 2}})
	body := `{"model":"demo","user":"dora","messages":[{"role":"user","content":"hi"}]}`
	for i := range 2 {
		if resp, b := post(t, srv.URL, pilotKey, body); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	resp, b := post(t, srv.URL, pilotKey, body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(b, `"code":"over_quota"`) {
		t.Fatalf("third request: %d %s", resp.StatusCode, b)
	}
	// Another user is unaffected, and the decision input is recorded for replay.
	if resp, _ := post(t, srv.URL, pilotKey, strings.Replace(body, "dora", "eve", 1)); resp.StatusCode != 200 {
		t.Fatalf("other user: %d", resp.StatusCode)
	}
	in := rec.last(t)
	if len(in.Decision.Input) == 0 || in.Decision.InputHash == "" || !strings.Contains(string(in.Decision.Input), `"over_quota":false`) {
		t.Fatalf("decision input not recorded: %s / %s", in.Decision.Input, in.Decision.InputHash)
	}
}

func TestTokensCapLimitsMaxTokens(t *testing.T) {
	srv, rec := trialRig(t, gateway.Trial{Caps: gateway.Caps{TokensPerRequest: 5}})
	post(t, srv.URL, pilotKey, `{"model":"demo","max_tokens":500,"messages":[{"role":"user","content":"[sim:tokens=50]"}]}`)
	in := rec.last(t)
	if in.Response.Usage.CompletionTokens != 5 || in.Response.FinishReason != "length" || in.Decision.Obligations.MaxTokens != 5 {
		t.Fatalf("usage %+v finish %s obligation %d", in.Response.Usage, in.Response.FinishReason, in.Decision.Obligations.MaxTokens)
	}
}

func TestContentReachesThePolicyOnlyWhenTheTrialOptsIn(t *testing.T) {
	body := `{"model":"demo","messages":[{"role":"user","content":"say forbidden-word"}]}`
	closed, _ := trialRig(t, gateway.Trial{})
	if resp, b := post(t, closed.URL, pilotKey, body); resp.StatusCode != 200 {
		t.Fatalf("without content access the policy saw text: %d %s", resp.StatusCode, b)
	}
	open, _ := trialRig(t, gateway.Trial{ContentAccess: true})
	if resp, b := post(t, open.URL, pilotKey, body); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, `"code":"content"`) {
		t.Fatalf("with content access: %d %s", resp.StatusCode, b)
	}
}

func TestRequestsOutsideTheTrialWindowAreRefused(t *testing.T) {
	past, _ := trialRig(t, gateway.Trial{End: time.Now().Add(-time.Hour)})
	resp, b := post(t, past.URL, pilotKey, `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(b, `"code":"trial_not_active"`) {
		t.Fatalf("ended trial: %d %s", resp.StatusCode, b)
	}
	future, _ := trialRig(t, gateway.Trial{Start: time.Now().Add(time.Hour)})
	if resp, _ := post(t, future.URL, pilotKey, `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("future trial: %d", resp.StatusCode)
	}
}
