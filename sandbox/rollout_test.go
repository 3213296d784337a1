package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/internal/testutil"
)

// rolloutPost POSTs JSON to the admin API with the demo token and decodes the answer.
func rolloutPost(t *testing.T, sb *Sandbox, path string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+sb.AdminAddr()+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+DemoAdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, raw)
		}
	}
	return resp.StatusCode
}

// rolloutChat sends one chat request as user and returns the model that served it.
func rolloutChat(t *testing.T, sb *Sandbox, user, content string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"model": DemoTrial, "user": user, "messages": []map[string]string{{"role": "user", "content": content}}})
	req, _ := http.NewRequest(http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+DemoPilotKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat as %s: HTTP %d", user, resp.StatusCode)
	}
	return resp.Header.Get("X-Stagegate-Model")
}

type rolloutAnswer struct {
	Rollout deploy.State `json:"rollout"`
	Plan    deploy.Plan  `json:"plan"`
	Error   *struct {
		Message, Code string
	} `json:"error"`
}

func rolloutStatus(t *testing.T, sb *Sandbox) rolloutAnswer {
	t.Helper()
	var a rolloutAnswer
	if code := admin(t, sb, "/api/v1/rollouts/"+DemoTrial, &a); code != http.StatusOK {
		t.Fatalf("status: HTTP %d", code)
	}
	return a
}

// openIncidentOf waits for an open incident of model and returns its id.
func openIncidentOf(t *testing.T, sb *Sandbox, model string) string {
	t.Helper()
	var id string
	testutil.WaitFor(t, 10*time.Second, "incident of "+model, func() bool {
		var l struct {
			Incidents []struct{ ID, Model, Status string } `json:"incidents"`
		}
		admin(t, sb, "/api/v1/incidents?trial=demo&status=open", &l)
		for _, inc := range l.Incidents {
			if inc.Model == model {
				id = inc.ID
				return true
			}
		}
		return false
	})
	return id
}

const demoRollout = `
trial: demo
candidate: demo-candidate
baseline: demo-baseline
thresholds: [{category: pii, severity: high, max_rate: 0.6}]
steps:
  - canary: {weight: 10}
  - gate: {min_interactions: 6, approval: true}
  - general:
`

func TestRolloutThroughTheAdminAPIWithKillSwitch(t *testing.T) {
	sb := startDemo(t, t.TempDir())

	// Bad plans are refused with the reason.
	var bad rolloutAnswer
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": "trial: demo\nstepz: []\n", "actor": "acme"}, &bad); code != http.StatusBadRequest || !strings.Contains(bad.Error.Message, "line 2") {
		t.Fatalf("bad plan: HTTP %d %+v", code, bad.Error)
	}
	unknown := strings.Replace(demoRollout, "candidate: demo-candidate", "candidate: ghost", 1)
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": unknown, "actor": "acme"}, &bad); code != http.StatusUnprocessableEntity || !strings.Contains(bad.Error.Message, `"ghost" is neither configured nor registered`) {
		t.Fatalf("unknown model: HTTP %d %+v", code, bad.Error)
	}

	var applied rolloutAnswer
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": demoRollout, "actor": "acme-ops", "reason": "pilot launch"}, &applied); code != http.StatusOK {
		t.Fatalf("apply: HTTP %d %+v", code, applied.Error)
	}
	if applied.Rollout.Step != 1 || applied.Rollout.Traffic.CandidateWeight != 1000 {
		t.Fatalf("applied %+v", applied.Rollout)
	}
	testutil.WaitFor(t, time.Second, "the gateway follows the rollout", func() bool {
		p, _ := sb.assigner.Plan(DemoTrial)
		return p.CandidateWeight == 1000
	})

	// Canary 10%: about a tenth of users get the candidate, each always the same model.
	var candUsers []string
	const users = 200
	for i := range users {
		u := "user-" + string(rune('a'+i%26)) + "-" + strings.Repeat("x", i/26)
		m := rolloutChat(t, sb, u, "hello")
		if m == DemoCandidate {
			candUsers = append(candUsers, u)
		}
		if again := rolloutChat(t, sb, u, "hello again"); again != m {
			p, _ := sb.assigner.Plan(DemoTrial)
			t.Fatalf("user %s flipped from %s to %s within the canary step (plan %+v, bucket %d)", u, m, again, p, deploy.Bucket(DemoTrial, u))
		}
	}
	if n := len(candUsers); n < 6 || n > 40 {
		t.Fatalf("%d of %d users on the candidate at 10%%", n, users)
	}

	// A PII leak by the candidate holds the gate until a reviewer decides.
	if m := rolloutChat(t, sb, candUsers[0], "[sim:pii] who is on call?"); m != DemoCandidate {
		t.Fatalf("served by %s", m)
	}
	inc := openIncidentOf(t, sb, DemoCandidate)
	testutil.WaitFor(t, 10*time.Second, "gate waits for the review", func() bool {
		s := rolloutStatus(t, sb)
		return s.Rollout.Gate != nil && s.Rollout.Gate.UnresolvedSevere == 1 && strings.Contains(s.Rollout.Message, "await review ("+inc+")")
	})
	var reviewed struct {
		Incident struct{ Status, Severity string } `json:"incident"`
	}
	if code := rolloutPost(t, sb, "/api/v1/incidents/"+inc+"/review", map[string]string{"status": "confirmed", "actor": "rita", "reason": "a real phone number"}, &reviewed); code != http.StatusOK || reviewed.Incident.Status != "confirmed" {
		t.Fatalf("review: HTTP %d %+v", code, reviewed)
	}
	if code := rolloutPost(t, sb, "/api/v1/incidents/"+inc+"/review", map[string]string{"status": "dismissed", "actor": "rita"}, nil); code != http.StatusConflict {
		t.Fatalf("confirmed → dismissed: HTTP %d, want 409", code)
	}

	// One confirmed of ≥ 6 candidate answers: the Wilson upper bound stays under
	// 0.6, so only the regulator's approval is missing.
	testutil.WaitFor(t, 10*time.Second, "gate waits for approval", func() bool {
		return strings.Contains(rolloutStatus(t, sb).Rollout.Message, "waiting for the regulator's approval")
	})
	var promoted rolloutAnswer
	if code := rolloutPost(t, sb, "/api/v1/rollouts/demo/promote", map[string]string{"actor": "regulator-ana"}, &promoted); code != http.StatusBadRequest {
		t.Fatalf("promote without reason: HTTP %d", code)
	}
	if code := rolloutPost(t, sb, "/api/v1/rollouts/demo/promote", map[string]string{"actor": "regulator-ana", "reason": "evidence reviewed"}, &promoted); code != http.StatusOK {
		t.Fatalf("promote: HTTP %d %+v", code, promoted.Error)
	}
	if promoted.Rollout.Status != deploy.StatusCompleted || promoted.Rollout.Traffic.CandidateWeight != deploy.WeightScale {
		t.Fatalf("after promote: %s %+v: %s", promoted.Rollout.Status, promoted.Rollout.Traffic, promoted.Rollout.Message)
	}
	testutil.WaitFor(t, time.Second, "the gateway follows the promotion", func() bool {
		p, _ := sb.assigner.Plan(DemoTrial)
		return p.Stage == deploy.StageGeneral
	})
	s := rolloutStatus(t, sb)
	var causes []string
	for _, h := range s.Rollout.History {
		causes = append(causes, h.Cause)
	}
	joined := strings.Join(causes, " | ")
	for _, want := range []string{"plan applied", "traffic set: canary 10%", "gate inconclusive", "approval given at the gate", "gate passed", "1 confirmed of", "traffic set: general"} {
		if !strings.Contains(joined, want) {
			t.Errorf("history %q lacks %q", joined, want)
		}
	}
	for i := range 20 {
		if m := rolloutChat(t, sb, "everyone-"+string(rune('a'+i)), "hi"); m != DemoCandidate {
			t.Fatalf("general stage served %s", m)
		}
	}

	// Kill switch: a confirmed critical incident sends everyone back within a second.
	rolloutChat(t, sb, "victim", "[sim:pii] and again")
	crit := openIncidentOf(t, sb, DemoCandidate)
	if code := rolloutPost(t, sb, "/api/v1/incidents/"+crit+"/review", map[string]string{"status": "confirmed", "severity": "critical", "actor": "rita", "reason": "card number"}, nil); code != http.StatusOK {
		t.Fatalf("confirm critical: HTTP %d", code)
	}
	switched := time.Now()
	testutil.WaitFor(t, time.Second, "baseline serves after the kill switch", func() bool {
		return rolloutChat(t, sb, "probe", "hi") == DemoBaseline
	})
	t.Logf("kill switch effective after %s", time.Since(switched))
	for i := range 30 {
		if m := rolloutChat(t, sb, "after-"+string(rune('a'+i)), "hi"); m != DemoBaseline {
			t.Fatalf("request after the kill switch served by %s", m)
		}
	}
	s = rolloutStatus(t, sb)
	if s.Rollout.Status != deploy.StatusAborted || s.Plan.Stage != deploy.StageAborted || !strings.Contains(s.Rollout.Message, "kill switch") {
		t.Fatalf("after kill switch: %s %+v: %s", s.Rollout.Status, s.Plan, s.Rollout.Message)
	}

	// Manual actions need who and why; an aborted rollout cannot be paused.
	var act rolloutAnswer
	if code := rolloutPost(t, sb, "/api/v1/rollouts/demo/pause", map[string]string{"actor": "ana", "reason": "x"}, &act); code != http.StatusConflict {
		t.Fatalf("pause aborted: HTTP %d", code)
	}
	if code := rolloutPost(t, sb, "/api/v1/rollouts/demo/explode", map[string]string{"actor": "ana", "reason": "x"}, nil); code != http.StatusNotFound {
		t.Fatalf("unknown action: HTTP %d", code)
	}
}

func TestRolloutStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sb := startDemo(t, dir)
	plan := "trial: demo\ncandidate: demo-candidate\nbaseline: demo-baseline\nsteps:\n  - canary: {weight: 100}\n  - pause:\n"
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": plan, "actor": "ops"}, nil); code != http.StatusOK {
		t.Fatalf("apply: HTTP %d", code)
	}
	testutil.WaitFor(t, time.Second, "the gateway follows the rollout", func() bool {
		return rolloutChat(t, sb, "u1", "hi") == DemoCandidate
	})
	if err := sb.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The configured split is 50%; the restarted gateway serves the rollout's 100%
	// from its first request, because the watcher loads the bucket before it listens.
	sb2 := startDemo(t, dir)
	for i := range 20 {
		if m := rolloutChat(t, sb2, "user"+string(rune('a'+i)), "hi"); m != DemoCandidate {
			t.Fatalf("after restart served by %s", m)
		}
	}
}

func TestAddModelChecksBeforeRegistering(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	var out struct {
		Registered bool `json:"registered"`
		Check      struct {
			OK    bool `json:"ok"`
			Steps []struct {
				Name, Detail string
				OK           bool
			} `json:"steps"`
		} `json:"check"`
		Error *struct{ Message, Code string } `json:"error"`
	}
	// The demo simulators answer any model id but list only their own.
	simURL := sb.sims[0].URL()
	body := map[string]any{"name": "acme-7b", "base_url": simURL, "upstream_model": sb.cfg.Simulators[0].Name, "actor": "acme-ops"}
	if code := rolloutPost(t, sb, "/api/v1/models", body, &out); code != http.StatusOK || !out.Registered || !out.Check.OK {
		t.Fatalf("add: HTTP %d %+v", code, out)
	}
	body = map[string]any{"name": "acme-13b", "base_url": simURL, "upstream_model": "acme-13b", "actor": "acme-ops"}
	if code := rolloutPost(t, sb, "/api/v1/models", body, &out); code != http.StatusUnprocessableEntity || out.Error.Code != "model_check_failed" ||
		!strings.Contains(out.Error.Message, `but not "acme-13b"`) {
		t.Fatalf("unlisted model: HTTP %d %+v", code, out)
	}
	body = map[string]any{"name": "acme-x", "base_url": simURL, "api_key_env": "STAGEGATE_TEST_UNSET_KEY", "actor": "acme-ops"}
	if code := rolloutPost(t, sb, "/api/v1/models", body, &out); code != http.StatusUnprocessableEntity || !strings.Contains(out.Error.Message, "STAGEGATE_TEST_UNSET_KEY is empty") {
		t.Fatalf("missing key: HTTP %d %+v", code, out)
	}
	body = map[string]any{"name": "acme-y", "base_url": simURL, "api_key": "sk-plain", "actor": "acme-ops"}
	if code := rolloutPost(t, sb, "/api/v1/models", body, &out); code != http.StatusBadRequest {
		t.Fatalf("a plain-text key field must be refused: HTTP %d", code)
	}
	var list struct {
		Registered []deploy.ModelSpec `json:"registered"`
		Configured []string           `json:"configured"`
	}
	if code := admin(t, sb, "/api/v1/models", &list); code != http.StatusOK || len(list.Registered) != 1 || list.Registered[0].AddedBy != "acme-ops" || len(list.Configured) != 2 {
		t.Fatalf("models: HTTP %d %+v", code, list)
	}
	// A registered model may be a rollout's candidate.
	plan := "trial: demo\ncandidate: acme-7b\nbaseline: demo-baseline\nsteps: [{pause: {}}]\n"
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": plan, "actor": "ops"}, nil); code != http.StatusOK {
		t.Fatalf("apply with a registered model: HTTP %d", code)
	}
}

// TestRegisteredModelsFollowTheRegistry: the gateway routes to what the MODELS
// bucket holds — added, replaced and removed at run time, and loaded at start —
// and the admin API says why a registration is not routable.
func TestRegisteredModelsFollowTheRegistry(t *testing.T) {
	dir := t.TempDir()
	sb := startDemo(t, dir)
	ctx := context.Background()
	reg := sb.rollouts.models
	simURL := sb.sims[0].URL()
	type models struct {
		Routable []string          `json:"routable"`
		Problems map[string]string `json:"problems"`
	}
	waitModels := func(what string, cond func(m models) bool) {
		t.Helper()
		testutil.WaitFor(t, 5*time.Second, what, func() bool {
			var m models
			return admin(t, sb, "/api/v1/models", &m) == http.StatusOK && cond(m)
		})
	}
	put := func(m deploy.ModelSpec) {
		t.Helper()
		if _, err := reg.Put(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	put(deploy.ModelSpec{Name: "m1", BaseURL: simURL, UpstreamModel: DemoCandidate, Timeout: deploy.Duration(time.Minute), MaxConcurrency: 4})
	waitModels("m1 routable", func(m models) bool { return slices.Contains(m.Routable, "m1") })
	if u, ok := sb.gw.Upstream("m1"); !ok || u.BaseURL != simURL || u.Model != DemoCandidate || u.Timeout != time.Minute || u.MaxConcurrency != 4 {
		t.Fatalf("m1 in the gateway: %+v %v", u, ok)
	}
	put(deploy.ModelSpec{Name: "m1", BaseURL: simURL + "/", UpstreamModel: "other"})
	testutil.WaitFor(t, 5*time.Second, "m1 replaced", func() bool {
		u, _ := sb.gw.Upstream("m1")
		return u.Model == "other" && u.BaseURL == simURL
	})
	put(deploy.ModelSpec{Name: "m2", BaseURL: simURL, APIKeyEnv: "STAGEGATE_TEST_NEVER_SET"})
	put(deploy.ModelSpec{Name: DemoCandidate, BaseURL: "http://127.0.0.1:1/v1"})
	waitModels("problems reported", func(m models) bool {
		return strings.Contains(m.Problems["m2"], "STAGEGATE_TEST_NEVER_SET is empty or unset") &&
			strings.Contains(m.Problems[DemoCandidate], "defined in the configuration")
	})
	if _, ok := sb.gw.Upstream("m2"); ok {
		t.Fatal("a model without its key is routable")
	}
	if u, _ := sb.gw.Upstream(DemoCandidate); u.BaseURL != simURL {
		t.Fatalf("a registration replaced the configured %s: %+v", DemoCandidate, u)
	}
	if err := reg.Delete(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "m1 removed", func() bool {
		_, ok := sb.gw.Upstream("m1")
		return !ok
	})

	// After a restart the registrations are routable from the first request.
	put(deploy.ModelSpec{Name: "m3", BaseURL: simURL, UpstreamModel: DemoCandidate})
	waitModels("m3 routable", func(m models) bool { return slices.Contains(m.Routable, "m3") })
	if err := sb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	sb2 := startDemo(t, dir)
	if _, ok := sb2.gw.Upstream("m3"); !ok {
		t.Fatal("m3 not routable after a restart")
	}
}
