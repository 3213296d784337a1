package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/testutil"
)

// directiveProxy is a candidate model that is the simulator at target with a
// directive appended to the last message of every chat request, so the
// candidate alone is slow, failing or leaking while the baseline simulator, which
// answers the user, is not. It records the Authorization header it receives.
type directiveProxy struct {
	srv       *httptest.Server
	directive atomic.Pointer[string]
	auth      atomic.Pointer[string]
}

func newDirectiveProxy(t *testing.T, target string) *directiveProxy {
	t.Helper()
	p := &directiveProxy{}
	none := ""
	p.directive.Store(&none)
	p.auth.Store(&none)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a := r.Header.Get("Authorization")
		p.auth.Store(&a)
		if d := *p.directive.Load(); d != "" && r.Method == http.MethodPost {
			var body map[string]any
			if json.Unmarshal(raw, &body) == nil {
				if msgs, _ := body["messages"].([]any); len(msgs) > 0 {
					if last, _ := msgs[len(msgs)-1].(map[string]any); last != nil {
						last["content"] = last["content"].(string) + " " + d
					}
				}
				raw, _ = json.Marshal(body)
			}
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+strings.TrimPrefix(r.URL.Path, "/v1"), bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", r.Header.Get("Accept"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *directiveProxy) set(d string) { p.directive.Store(&d) }

// storedInteraction waits until the interaction id is in the store and returns it.
func storedInteraction(t *testing.T, sb *Sandbox, id string) events.Interaction {
	t.Helper()
	var in events.Interaction
	testutil.WaitFor(t, 15*time.Second, "interaction "+id+" stored", func() bool {
		return admin(t, sb, "/api/v1/interactions/"+id, &in) == http.StatusOK
	})
	return in
}

// TestShadowCandidateNeverTouchesTheUser: a model registered at run time becomes
// the shadow candidate without a restart; when it is slow or failing, users get
// the baseline's answer in the baseline's time; what it answers is monitored.
func TestShadowCandidateNeverTouchesTheUser(t *testing.T) {
	t.Setenv("STAGEGATE_TEST_SHADOW_KEY", "sk-shadow-test")
	sb := startRolloutSandbox(t, rolloutOptions{})
	cand := newDirectiveProxy(t, sb.sims[0].URL()) // the demo-candidate simulator

	// Onboard: checked, registered, and routable in the running gateway.
	var added struct {
		Registered bool `json:"registered"`
	}
	body := map[string]any{"name": "acme-shadow", "base_url": cand.srv.URL + "/v1", "upstream_model": DemoCandidate,
		"api_key_env": "STAGEGATE_TEST_SHADOW_KEY", "timeout": "30s", "max_concurrency": 16, "actor": "acme-ops"}
	if code := rolloutPost(t, sb, "/api/v1/models", body, &added); code != http.StatusOK || !added.Registered {
		t.Fatalf("add model: HTTP %d %+v", code, added)
	}
	testutil.WaitFor(t, 5*time.Second, "the registered model is routable", func() bool {
		var l struct {
			Routable []string `json:"routable"`
		}
		admin(t, sb, "/api/v1/models", &l)
		return slices.Contains(l.Routable, "acme-shadow")
	})
	if u, ok := sb.gw.Upstream("acme-shadow"); !ok || u.APIKey != "sk-shadow-test" || u.MaxConcurrency != 16 || u.Model != DemoCandidate {
		t.Fatalf("gateway upstream %+v (found %v)", u, ok)
	}
	plan := "trial: demo\ncandidate: acme-shadow\nbaseline: demo-baseline\nsteps:\n  - shadow: {sample: 100}\n  - pause:\n"
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": plan, "actor": "acme-ops"}, nil); code != http.StatusOK {
		t.Fatalf("apply: HTTP %d", code)
	}
	testutil.WaitFor(t, time.Second, "the gateway follows the shadow step", func() bool {
		p, _ := sb.assigner.Plan(DemoTrial)
		return p.Candidate == "acme-shadow" && p.ShadowSample == deploy.WeightScale
	})

	const prompt = "how are you today"
	ref := chatOK(t, sb, DemoPilotKey, "ursula", prompt)
	if ref.Model != DemoBaseline || !strings.Contains(ref.Content, "from "+DemoBaseline) {
		t.Fatalf("reference answer from %s: %q", ref.Model, ref.Content)
	}
	sh := storedInteraction(t, sb, ref.Interaction+"-shadow")
	if sh.Route != events.RouteShadow || sh.Model != "acme-shadow" || sh.Status != events.StatusOK || !strings.Contains(sh.Response.Content, "from "+DemoCandidate) {
		t.Fatalf("shadow interaction %+v", sh)
	}
	if a := *cand.auth.Load(); a != "Bearer sk-shadow-test" {
		t.Fatalf("the candidate got Authorization %q; the key reference was not resolved", a)
	}

	for _, tc := range []struct {
		directive string
		check     func(in events.Interaction) bool
	}{
		{"[sim:slow=2s]", func(in events.Interaction) bool { return in.Latency.TotalMS >= 1500 }},
		{"[sim:error=500]", func(in events.Interaction) bool {
			return in.Status == events.StatusUpstreamError && in.HTTPStatus == http.StatusInternalServerError
		}},
	} {
		cand.set(tc.directive)
		for _, stream := range []bool{false, true} {
			s := chatVia(t, sb.GatewayAddr(), DemoPilotKey, "ursula", prompt, stream)
			if s.Status != http.StatusOK || s.Model != DemoBaseline {
				t.Fatalf("%s (stream %v): the user got HTTP %d from %s", tc.directive, stream, s.Status, s.Model)
			}
			if s.Took > time.Second {
				t.Errorf("%s (stream %v): the user waited %s", tc.directive, stream, s.Took)
			}
			if !stream && s.Content != ref.Content {
				t.Errorf("%s: the user's answer changed: %q, want %q", tc.directive, s.Content, ref.Content)
			}
			if stream && (!strings.Contains(s.Content, "data: [DONE]") || !strings.Contains(s.Content, DemoBaseline)) {
				t.Errorf("%s: the user's stream is incomplete: %q", tc.directive, s.Content)
			}
			in := storedInteraction(t, sb, s.Interaction+"-shadow")
			if in.Route != events.RouteShadow || in.Model != "acme-shadow" || !tc.check(in) {
				t.Errorf("%s (stream %v): shadow interaction status %s HTTP %d after %.0f ms: %s", tc.directive, stream,
					in.Status, in.HTTPStatus, in.Latency.TotalMS, in.Response.Error)
			}
		}
	}

	// The shadow's answer is monitored: a leak by the candidate alone becomes an
	// incident of the candidate about the shadow copy; the user saw nothing of it.
	cand.set("[sim:pii]")
	s := chatOK(t, sb, DemoPilotKey, "ursula", prompt)
	if s.Model != DemoBaseline || strings.Contains(s.Content, "@example.com") {
		t.Fatalf("the user got %q from %s", s.Content, s.Model)
	}
	inc := waitNewIncident(t, sb, "acme-shadow", "pii", map[string]bool{})
	if inc.InteractionID != s.Interaction+"-shadow" || inc.Severity != events.SeverityHigh {
		t.Fatalf("incident %+v, want one about %s-shadow", inc, s.Interaction)
	}
	if in := storedInteraction(t, sb, inc.InteractionID); in.Route != events.RouteShadow || !strings.Contains(in.Response.Content, "@example.com") {
		t.Fatalf("the incident's interaction %+v", in)
	}
}

// TestPlanDecidesPerRequestFallback: a candidate's failure is answered by the
// baseline and recorded as a fallback, unless the plan sets
// fallback_to_baseline: false (the configured trial's fallback notwithstanding).
func TestPlanDecidesPerRequestFallback(t *testing.T) {
	sb := startRolloutSandbox(t, rolloutOptions{})
	cand := newDirectiveProxy(t, sb.sims[0].URL())
	body := map[string]any{"name": "acme-flaky", "base_url": cand.srv.URL + "/v1", "upstream_model": DemoCandidate, "actor": "acme-ops"}
	if code := rolloutPost(t, sb, "/api/v1/models", body, nil); code != http.StatusOK {
		t.Fatalf("add model: HTTP %d", code)
	}
	cand.set("[sim:error=500]")
	for _, tc := range []struct {
		fallback string
		status   int
		model    string
	}{
		{"", http.StatusOK, DemoBaseline},
		{"fallback_to_baseline: false\n", http.StatusBadGateway, "acme-flaky"},
	} {
		plan := "trial: demo\ncandidate: acme-flaky\nbaseline: demo-baseline\n" + tc.fallback + "steps:\n  - canary: {weight: 100}\n  - pause:\n"
		if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": plan, "actor": "acme-ops"}, nil); code != http.StatusOK {
			t.Fatalf("apply: HTTP %d", code)
		}
		want := tc.fallback == ""
		testutil.WaitFor(t, time.Second, "the gateway follows the plan", func() bool {
			p, _ := sb.assigner.Plan(DemoTrial)
			return p.Candidate == "acme-flaky" && p.Fallback == want
		})
		before := sb.gw.Stats().Fallbacks
		s := chatVia(t, sb.GatewayAddr(), DemoPilotKey, "fred", "hello", false)
		if s.Status != tc.status || s.Model != tc.model {
			t.Fatalf("%q: HTTP %d from %s, want %d from %s", tc.fallback, s.Status, s.Model, tc.status, tc.model)
		}
		in := storedInteraction(t, sb, s.Interaction)
		if want && (in.FallbackFrom != "acme-flaky" || in.Model != DemoBaseline || sb.gw.Stats().Fallbacks != before+1) {
			t.Fatalf("the fallback is not recorded apart: %+v, %d fallbacks", in, sb.gw.Stats().Fallbacks-before)
		}
		if !want && (in.FallbackFrom != "" || in.Status != events.StatusUpstreamError) {
			t.Fatalf("without fallback: %+v", in)
		}
	}
}
