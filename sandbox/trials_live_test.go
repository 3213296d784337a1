package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
)

// clinicYAML is a trial new to the demo sandbox, on its simulator models.
func clinicYAML(start, end time.Time, candidate, tenants string) string {
	return fmt.Sprintf(`schema: stagegate.trial.v1
id: clinic
title: Clinic assistant
sponsor: {name: Acme Health, contact: ai@acme.example}
regulator: {name: DHA, contact: sandbox@dha.example}
start: %s
end: %s
participants:
  tenants: [%s]
  cohorts:
    - {name: clinicians, attribute: {name: role, values: [clinician]}}
    - {name: everyone, percent: 100}
models: {logical_model: clinic, candidate: %s, baseline: %s}
purposes:
  topics:
    appointments: [appointment, reschedule]
caps: {requests_per_user_per_day: 100, tokens_per_request: 64, concurrent_streams: 2}
data_handling: {redact_pii: true, retention_days: 30}
policy: {dir: "builtin:demo", package: stagegate, fail_mode: closed}
`, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), tenants, candidate, DemoBaseline)
}

func applyDefinition(t *testing.T, adm, src string) (int, map[string]any) {
	t.Helper()
	st, raw, _ := call(t, nil, http.MethodPost, adm+"/api/v1/trials", DemoAdminKey,
		map[string]any{"file": "clinic.yaml", "definition": src, "actor": "regulator@dha.example"})
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return st, body
}

// TestAppliedTrialGoesIntoService: a regulator applies a trial the sandbox
// configuration does not know; the gateway serves it at once (logical model,
// participants, cohorts, caps, redaction, window), a later revision changes
// it while it serves, a revision the gateway cannot serve is refused with the
// previous one kept, a revision stored by another process is picked up by the
// poll, and a restart serves the newest revision from the first request.
func TestAppliedTrialGoesIntoService(t *testing.T) {
	cfg := loopbackDemo(t)
	cfg.Gateway.TrialRefresh = 50 * time.Millisecond
	cfg.Gateway.KeyRefresh = time.Hour // keys reach the gateway through its own admin API, or a trial coming into service
	sb := startConfig(t, cfg)
	adm := "http://" + sb.AdminAddr()
	now := time.Now()
	open := clinicYAML(now.Add(-time.Hour), now.Add(24*time.Hour), DemoCandidate, "acme")

	// A key for a trial nobody applied yet is refused.
	if st, raw, _ := call(t, nil, http.MethodPost, adm+"/api/v1/keys", DemoAdminKey, map[string]any{"trial": "clinic", "tenant": "acme"}); st == 200 {
		t.Fatalf("key for an unknown trial: %d %s", st, raw)
	}
	st, body := applyDefinition(t, adm, open)
	if st != 200 || body["in_service"] != true {
		t.Fatalf("apply: %d %v", st, body)
	}
	newKey := func(tenant string, attrs map[string]string) string {
		t.Helper()
		st, raw, _ := call(t, nil, http.MethodPost, adm+"/api/v1/keys", DemoAdminKey, map[string]any{"trial": "clinic", "tenant": tenant, "attributes": attrs})
		if st != 200 {
			t.Fatalf("create key: %d %s", st, raw)
		}
		var k struct {
			Key string `json:"key"`
		}
		_ = json.Unmarshal(raw, &k)
		return k.Key
	}
	clinician, plain, outsider := newKey("acme", map[string]string{"role": "clinician"}), newKey("acme", nil), newKey("other-co", nil)
	send := func(gw, key, user string) (int, http.Header, []byte) {
		t.Helper()
		st, raw, h := call(t, nil, http.MethodPost, gw+"/v1/chat/completions", key, map[string]any{
			"model": "clinic", "user": user, "max_tokens": 500,
			"messages": []map[string]string{{"role": "user", "content": "I need an appointment, my email is ann@example.org"}}})
		return st, h, raw
	}
	gw := "http://" + sb.GatewayAddr()
	interaction := func(h http.Header) map[string]any {
		t.Helper()
		id := h.Get(gateway.HeaderInteraction)
		var in map[string]any
		testutil.WaitFor(t, 10*time.Second, "interaction "+id+" stored", func() bool {
			got, err := sb.store.Interaction(context.Background(), id)
			if err != nil {
				return false
			}
			raw, _ := json.Marshal(got)
			return json.Unmarshal(raw, &in) == nil
		})
		return in
	}

	st, h, raw := send(gw, clinician, "ann")
	if st != 200 || h.Get(gateway.HeaderStage) != "pilot" || h.Get(gateway.HeaderModel) != DemoCandidate {
		t.Fatalf("clinician: %d stage %q model %q %s", st, h.Get(gateway.HeaderStage), h.Get(gateway.HeaderModel), raw)
	}
	in := interaction(h)
	dec, _ := in["decision"].(map[string]any)
	obl, _ := dec["obligations"].(map[string]any)
	if in["cohort"] != "clinicians" || obl["max_tokens"] != float64(64) || obl["redact_pii_in_storage"] != true || in["redacted"] != true {
		t.Errorf("clinician's interaction: cohort %v, obligations %v, redacted %v", in["cohort"], obl, in["redacted"])
	}
	if rules, _ := dec["trial_rules"].(map[string]any); rules["max_tokens"] != float64(64) || rules["redact_pii"] != true {
		t.Errorf("the record does not say what the trial imposed: %v", dec["trial_rules"])
	}
	if st, h, _ := send(gw, plain, "bob"); st != 200 || interaction(h)["cohort"] != "everyone" {
		t.Errorf("plain key: %d, cohort %v", st, interaction(h)["cohort"])
	}
	if st, _, raw := send(gw, outsider, "eve"); st != http.StatusForbidden || !strings.Contains(string(raw), "not_a_participant") {
		t.Errorf("other tenant: %d %s", st, raw)
	}

	// The regulator narrows the window: it ended an hour ago. In service at once.
	if st, body := applyDefinition(t, adm, clinicYAML(now.Add(-48*time.Hour), now.Add(-time.Hour), DemoCandidate, "acme")); st != 200 {
		t.Fatalf("apply revision 2: %d %v", st, body)
	}
	if st, _, raw := send(gw, plain, "bob"); st != http.StatusForbidden || !strings.Contains(string(raw), "trial_not_active") {
		t.Errorf("after the window closed: %d %s", st, raw)
	}
	// A revision naming a model nobody configured is refused; revision 2 serves on.
	st, body = applyDefinition(t, adm, clinicYAML(now.Add(-time.Hour), now.Add(time.Hour), "no-such-model", "acme"))
	if st != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(body), "no-such-model") {
		t.Errorf("unservable revision: %d %v", st, body)
	}
	if st, _, _ := send(gw, plain, "bob"); st != http.StatusForbidden {
		t.Errorf("after a refused revision: %d, want the previous revision's 403", st)
	}
	if revs, err := sb.store.TrialRevisions(context.Background(), "clinic"); err != nil || len(revs) != 2 {
		t.Errorf("stored revisions: %d %v (the refused one must not be stored)", len(revs), err)
	}

	// Another process's admin API stores revision 3 (window open again): the
	// poll puts it into service.
	if _, _, err := sb.store.PutTrialRevision(context.Background(), "clinic", "elsewhere", "reopen", []byte(open)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "revision 3 in service", func() bool {
		st, _, _ := send(gw, plain, "bob")
		return st == 200
	})

	// Another process applies a trial new to this gateway and creates a key for
	// it (both only in the store): the poll serves the trial and the key works.
	other := strings.NewReplacer("id: clinic", "id: clinic-two", "logical_model: clinic", "logical_model: clinic-two").Replace(open)
	const otherKey = "sg_live_elsewhere0000000000000000000000"
	if _, err := sb.store.CreateAPIKey(context.Background(), incidents.APIKey{ID: "key_elsewhere", Prefix: "sg_live_else",
		Hash: gateway.HashKey(otherKey), Trial: "clinic-two", Tenant: "acme", CreatedBy: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sb.store.PutTrialRevision(context.Background(), "clinic-two", "elsewhere", "", []byte(other)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "clinic-two and its key in service", func() bool {
		st, _, _ := call(t, nil, http.MethodPost, gw+"/v1/chat/completions", otherKey, map[string]any{
			"model": "clinic-two", "user": "zoe", "messages": []map[string]string{{"role": "user", "content": "hello"}}})
		return st == 200
	})

	// A restart serves the newest stored revision from the first request.
	if err := sb.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	sb2 := startConfig(t, cfg)
	if st, _, raw := send("http://"+sb2.GatewayAddr(), plain, "bob"); st != 200 {
		t.Errorf("after restart: %d %s", st, raw)
	}
	if _, ok := sb2.policyStatuses()["clinic"]; !ok {
		t.Errorf("policy status has no clinic trial: %v", sb2.policyStatuses())
	}
}

// TestAppliedDefinitionKeepsExperimentPolicy: the demo trial runs policy
// experiments, so a definition for it must keep the configured policy; one
// that names another is refused and nothing is stored.
func TestAppliedDefinitionKeepsExperimentPolicy(t *testing.T) {
	sb := startConfig(t, loopbackDemo(t))
	adm := "http://" + sb.AdminAddr()
	now := time.Now()
	src := strings.NewReplacer("id: clinic", "id: "+DemoTrial, "logical_model: clinic", "logical_model: "+DemoTrial,
		"tenants: [acme]", "tenants: [demo-company]").Replace(clinicYAML(now.Add(-time.Hour), now.Add(time.Hour), DemoCandidate, "acme"))
	other := strings.Replace(src, "builtin:demo", "builtin:standard", 1)
	if st, body := applyDefinition(t, adm, other); st != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(body), "experiments") {
		t.Errorf("another policy for an experiment trial: %d %v", st, body)
	}
	if st, body := applyDefinition(t, adm, src); st != 200 || body["in_service"] != true {
		t.Fatalf("same policy: %d %v", st, body)
	}
	st, _, h := call(t, nil, http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions", DemoPilotKey, map[string]any{
		"model": DemoTrial, "user": "u1", "messages": []map[string]string{{"role": "user", "content": "hello"}}})
	if st != 200 || h.Get(gateway.HeaderStage) != "canary" {
		t.Errorf("demo trial after its definition: %d stage %q (the rollout plan keeps its stage)", st, h.Get(gateway.HeaderStage))
	}
}

// nats.duplicate_window sizes the streams' de-duplication window.
func TestDuplicateWindowConfigured(t *testing.T) {
	cfg := loopbackDemo(t)
	cfg.NATS.DuplicateWindow = 2 * time.Minute
	sb := startConfig(t, cfg)
	st, err := sb.js.Stream(context.Background(), events.StreamInteractions)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Duplicates; got != 2*time.Minute {
		t.Errorf("interactions stream duplicate window %s, want 2m", got)
	}
}

// A stored revision the gateway cannot serve (another process stored it; its
// model is unknown here) is refused: the previous revision serves on, the
// metric says so, and the next good revision clears it.
func TestStoredRevisionRefusedShowsInMetrics(t *testing.T) {
	cfg := loopbackDemo(t)
	cfg.Gateway.TrialRefresh = 50 * time.Millisecond
	sb := startConfig(t, cfg)
	now := time.Now()
	good := clinicYAML(now.Add(-time.Hour), now.Add(time.Hour), DemoCandidate, "acme")
	if st, body := applyDefinition(t, "http://"+sb.AdminAddr(), good); st != 200 {
		t.Fatalf("apply: %d %v", st, body)
	}
	put := func(src string) {
		t.Helper()
		if _, _, err := sb.store.PutTrialRevision(context.Background(), "clinic", "elsewhere", "", []byte(src)); err != nil {
			t.Fatal(err)
		}
	}
	refused := func() string {
		_, raw, _ := call(t, nil, http.MethodGet, "http://"+sb.AdminAddr()+"/metrics", "", nil)
		for line := range strings.Lines(string(raw)) {
			if strings.HasPrefix(line, "stagegate_trial_definition_refused{") && strings.Contains(line, `trial="clinic"`) {
				return strings.TrimSpace(line[strings.LastIndexByte(line, ' '):])
			}
		}
		return "absent"
	}
	if got := refused(); got != "0" {
		t.Fatalf("refused metric before: %s", got)
	}
	put(clinicYAML(now.Add(-time.Hour), now.Add(time.Hour), "no-such-model", "acme"))
	testutil.WaitFor(t, 10*time.Second, "revision 2 refused", func() bool { return refused() == "1" })
	if st := sb.live.states()["clinic"]; st.revision != 1 || !st.refused {
		t.Errorf("state %+v, want revision 1 serving and a refusal", st)
	}
	put(strings.Replace(good, "title: Clinic assistant", "title: Clinic assistant v3", 1))
	testutil.WaitFor(t, 10*time.Second, "revision 3 in service", func() bool { return sb.live.states()["clinic"].revision == 3 })
	if got := refused(); got != "0" {
		t.Errorf("refused metric after a good revision: %s", got)
	}
}

// A rollout plan that sets no thresholds gates on the risk thresholds of the
// trial's definition (rates above 0); one that sets its own keeps them.
func TestRolloutTakesTheTrialsRiskThresholds(t *testing.T) {
	sb := startRolloutSandbox(t, rolloutOptions{})
	now := time.Now()
	def := strings.NewReplacer("id: clinic", "id: "+DemoTrial, "logical_model: clinic", "logical_model: "+DemoTrial,
		"tenants: [acme]", "tenants: [demo-company]").Replace(clinicYAML(now.Add(-time.Hour), now.Add(time.Hour), DemoCandidate, "acme"))
	def += "risk_thresholds:\n  pii: {high: 0.01, critical: 0}\n  unsafe_advice: {medium: 0.05}\n"
	if st, body := applyDefinition(t, "http://"+sb.AdminAddr(), def); st != 200 {
		t.Fatalf("apply definition: %d %v", st, body)
	}
	var out struct {
		Rollout struct {
			Spec struct {
				Thresholds []struct {
					Category string  `json:"category"`
					Severity string  `json:"severity"`
					MaxRate  float64 `json:"max_rate"`
				} `json:"thresholds"`
			} `json:"spec"`
		} `json:"rollout"`
	}
	plan := "trial: demo\ncandidate: demo-candidate\nbaseline: demo-baseline\nsteps:\n  - canary: {weight: 10}\n  - pause:\n"
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": plan, "actor": "acme-ops"}, &out); code != http.StatusOK {
		t.Fatalf("apply plan: HTTP %d", code)
	}
	got := fmt.Sprint(out.Rollout.Spec.Thresholds)
	if want := "[{pii high 0.01} {unsafe_advice medium 0.05}]"; got != want {
		t.Errorf("plan thresholds %s, want %s (from the trial; pii critical 0 is left to the kill switch)", got, want)
	}
	own := plan + "thresholds:\n  - {category: '*', max_rate: 0.2}\n"
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": own, "actor": "acme-ops"}, &out); code != http.StatusOK {
		t.Fatalf("apply plan with thresholds: HTTP %d", code)
	}
	if ts := out.Rollout.Spec.Thresholds; len(ts) != 1 || ts[0].Category != "*" || ts[0].MaxRate != 0.2 {
		t.Errorf("a plan's own thresholds were replaced: %v", ts)
	}
}
