package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/stagegate/stagegate/incidents"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/internal/testutil"
)

// The staff key's users are in cohort "staff"; the demo pilot key's in "pilot".
const (
	staffKey    = "sg-acme-staff"
	staffCohort = "staff"
)

// rolloutOptions vary the sandbox of a rollout test.
type rolloutOptions struct {
	clock      clock.Clock // nil: the wall clock
	natsListen string      // expose the embedded NATS (for a second gateway)
}

// startRolloutSandbox runs the demo sandbox with a second key (cohort staff).
func startRolloutSandbox(t *testing.T, o rolloutOptions) *Sandbox {
	t.Helper()
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gateway.UpstreamTimeout = 2 * time.Second
	cfg.NATS.Listen = o.natsListen
	cfg.Keys = append(cfg.Keys, KeyConfig{Name: "acme-staff", SHA256: gateway.HashKey(staffKey), Trial: DemoTrial, Tenant: "demo-company", Cohort: staffCohort})
	sb, err := New(cfg, Deps{Clock: o.clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	return sb
}

// served is what one chat request got.
type served struct {
	Status      int
	Model       string
	Stage       string
	Interaction string
	Content     string
	Took        time.Duration
}

// chatVia sends one chat request to a gateway address with key as user.
func chatVia(t *testing.T, addr, key, user, content string, stream bool) served {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"model": DemoTrial, "user": user, "stream": stream,
		"messages": []map[string]string{{"role": "user", "content": content}}})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return served{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	s := served{Status: resp.StatusCode, Model: resp.Header.Get(gateway.HeaderModel), Stage: resp.Header.Get(gateway.HeaderStage),
		Interaction: resp.Header.Get(gateway.HeaderInteraction), Took: time.Since(start)}
	var c struct {
		Choices []struct{ Message struct{ Content string } }
	}
	if !stream && json.Unmarshal(raw, &c) == nil && len(c.Choices) > 0 {
		s.Content = c.Choices[0].Message.Content
	}
	if stream {
		s.Content = string(raw)
	}
	return s
}

// chatOK is chatVia on the sandbox's gateway, failing the test unless it is 200.
func chatOK(t *testing.T, sb *Sandbox, key, user, content string) served {
	t.Helper()
	s := chatVia(t, sb.GatewayAddr(), key, user, content, false)
	if s.Status != http.StatusOK {
		t.Fatalf("chat as %s: HTTP %d", user, s.Status)
	}
	return s
}

type incidentRow struct {
	ID            string `json:"id"`
	Model         string `json:"model"`
	InteractionID string `json:"interaction_id"`
	Category      string `json:"category"`
	Severity      string `json:"severity"`
	Status        string `json:"status"`
}

// waitNewIncident waits for an open incident of model and category that is not in
// seen, adds it to seen and returns it.
func waitNewIncident(t *testing.T, sb *Sandbox, model, category string, seen map[string]bool) incidentRow {
	t.Helper()
	var got incidentRow
	testutil.WaitFor(t, 15*time.Second, category+" incident of "+model, func() bool {
		var l struct {
			Incidents []incidentRow `json:"incidents"`
		}
		admin(t, sb, "/api/v1/incidents?trial="+DemoTrial+"&status=open&limit=1000", &l)
		for _, inc := range l.Incidents {
			if inc.Model == model && inc.Category == category && !seen[inc.ID] {
				got = inc
				return true
			}
		}
		return false
	})
	seen[got.ID] = true
	return got
}

// review posts a reviewer's verdict through the admin API.
func review(t *testing.T, sb *Sandbox, id, status, severity, actor, reason string) {
	t.Helper()
	body := map[string]string{"status": status, "actor": actor, "reason": reason}
	if severity != "" {
		body["severity"] = severity
	}
	var out struct {
		Incident struct{ Status string } `json:"incident"`
	}
	if code := rolloutPost(t, sb, "/api/v1/incidents/"+id+"/review", body, &out); code != http.StatusOK || out.Incident.Status != status {
		t.Fatalf("review %s → %s: HTTP %d %+v", id, status, code, out)
	}
}

// waitRollout waits until the rollout's status satisfies cond and returns it.
func waitRollout(t *testing.T, sb *Sandbox, what string, cond func(s deploy.State) bool) deploy.State {
	t.Helper()
	var last rolloutAnswer
	testutil.WaitFor(t, 15*time.Second, what, func() bool {
		sb.rollouts.ctrl.Nudge()
		last = rolloutStatus(t, sb)
		return cond(last.Rollout)
	})
	return last.Rollout
}

// atStep is a rollout condition: the current step is index i with status st.
func atStep(i int, st string) func(s deploy.State) bool {
	return func(s deploy.State) bool { return s.Step == i && s.Status == st }
}

// gateHas is a rollout condition: the current gate's message contains every part.
func gateHas(parts ...string) func(s deploy.State) bool {
	return func(s deploy.State) bool {
		for _, p := range parts {
			if !strings.Contains(s.Message, p) {
				return false
			}
		}
		return s.Gate != nil
	}
}

// wantHistory checks the rollout's history holds the transitions in this order
// (each a cause substring and an actor), with others allowed in between.
func wantHistory(t *testing.T, h []deploy.Transition, want [][2]string) {
	t.Helper()
	i := 0
	for _, tr := range h {
		if i < len(want) && strings.Contains(tr.Cause, want[i][0]) && tr.Actor == want[i][1] {
			i++
		}
	}
	if i < len(want) {
		var lines []string
		for _, tr := range h {
			lines = append(lines, tr.From+" → "+tr.To+": "+tr.Cause+" ["+tr.Actor+"]")
		}
		t.Fatalf("history lacks %q by %s (after %d matched):\n%s", want[i][0], want[i][1], i, strings.Join(lines, "\n"))
	}
}

// scriptedPlan walks every traffic stage, each held by a gate on confirmed
// incidents; the last gate also needs the regulator's approval.
const scriptedPlan = `
trial: demo
candidate: demo-candidate
baseline: demo-baseline
thresholds:
  - {category: pii, severity: high, max_rate: 0.5}
  - {category: unsafe_advice, severity: high, max_rate: 0.5}
steps:
  - shadow: {sample: 100}
  - gate: {min_interactions: 12, min_duration: 1d}
  - canary: {weight: 10}
  - gate: {min_interactions: 12, min_duration: 2d}
  - pilot: {cohorts: [staff]}
  - gate: {min_interactions: 12, min_duration: 1d, approval: true}
  - general:
`

// TestScriptedRolloutEndToEnd drives a rollout through every stage with traffic
// from a client, incidents injected by the simulator and reviewed through the
// admin API, on a fake clock so days in a step pass in milliseconds.
func TestScriptedRolloutEndToEnd(t *testing.T) {
	clk := clock.NewFake(time.Now().UTC())
	sb := startRolloutSandbox(t, rolloutOptions{clock: clk})
	seen := map[string]bool{}
	var applied rolloutAnswer
	if code := rolloutPost(t, sb, "/api/v1/rollouts", map[string]string{"plan": scriptedPlan, "actor": "acme-ops", "reason": "pilot launch"}, &applied); code != http.StatusOK {
		t.Fatalf("apply: HTTP %d %+v", code, applied.Error)
	}

	// 1. Shadow: every user is answered by the baseline; the candidate answers a
	// copy of every request, monitored but never shown.
	st := waitRollout(t, sb, "shadow gate waits for evidence", func(s deploy.State) bool {
		return atStep(1, deploy.StatusWaiting)(s) && gateHas("0 of 12 required interactions", "of the minimum 1d")(s)
	})
	if st.Traffic.Stage != deploy.StageShadow || st.Traffic.ShadowSample != deploy.WeightScale || st.Traffic.CandidateWeight != 0 {
		t.Fatalf("shadow traffic %+v", st.Traffic)
	}
	testutil.WaitFor(t, time.Second, "the gateway follows the shadow step", func() bool {
		p, _ := sb.assigner.Plan(DemoTrial)
		return p.Stage == deploy.StageShadow && p.ShadowSample == deploy.WeightScale
	})
	for i := range 12 {
		if s := chatOK(t, sb, DemoPilotKey, "shadow-user-"+strconv.Itoa(i), "hello"); s.Model != DemoBaseline || s.Stage != deploy.StageShadow {
			t.Fatalf("shadow step served by %s at stage %s", s.Model, s.Stage)
		}
	}
	leak := chatOK(t, sb, DemoPilotKey, "shadow-leaker", "[sim:pii] who is on call?")
	inc := waitNewIncident(t, sb, DemoCandidate, "pii", seen)
	var shadowIn events.Interaction
	if code := admin(t, sb, "/api/v1/interactions/"+inc.InteractionID, &shadowIn); code != http.StatusOK ||
		shadowIn.Route != events.RouteShadow || shadowIn.ID != leak.Interaction+"-shadow" {
		t.Fatalf("the candidate's pii incident is not about the shadow copy: HTTP %d %+v", code, shadowIn)
	}
	waitRollout(t, sb, "the shadow gate waits for the review", gateHas("1 high or critical incident(s) await review ("+inc.ID+")"))
	review(t, sb, inc.ID, "confirmed", "high", "rita", "a real phone number in the shadow answer")
	st = waitRollout(t, sb, "the shadow gate waits only for time", func(s deploy.State) bool {
		return gateHas("of the minimum 1d")(s) && !strings.Contains(s.Message, "await review") && !strings.Contains(s.Message, "required interactions") &&
			s.Gate.Interactions >= 13
	})
	if len(st.Gate.Rates) != 2 || st.Gate.Rates[0].Category != "pii" || st.Gate.Rates[0].Confirmed != 1 {
		t.Fatalf("shadow gate rates %+v", st.Gate.Rates)
	}
	clk.Advance(24 * time.Hour)

	// 2. Canary 10%: a tenth of users, each always on the same model.
	waitRollout(t, sb, "canary gate", atStep(3, deploy.StatusWaiting))
	testutil.WaitFor(t, time.Second, "the gateway follows the canary step", func() bool {
		p, _ := sb.assigner.Plan(DemoTrial)
		return p.Stage == deploy.StageCanary && p.CandidateWeight == 1000
	})
	var candUsers []string
	const users = 200
	for i := range users {
		u := "canary-user-" + strconv.Itoa(i)
		first := chatOK(t, sb, DemoPilotKey, u, "hello")
		if again := chatOK(t, sb, DemoPilotKey, u, "hello again"); again.Model != first.Model {
			t.Fatalf("user %s flipped from %s to %s within the canary step", u, first.Model, again.Model)
		}
		if first.Model == DemoCandidate {
			candUsers = append(candUsers, u)
		}
	}
	if n := len(candUsers); n < 8 || n > 36 {
		t.Fatalf("%d of %d users on the candidate at 10%%", n, users)
	}
	if s := chatOK(t, sb, DemoPilotKey, candUsers[0], "[sim:unsafe] how much insulin?"); s.Model != DemoCandidate {
		t.Fatalf("unsafe prompt served by %s", s.Model)
	}
	unsafeInc := waitNewIncident(t, sb, DemoCandidate, "unsafe_advice", seen)
	waitRollout(t, sb, "the canary gate waits for the review", gateHas("await review ("+unsafeInc.ID+")", "of the minimum 2d"))
	review(t, sb, unsafeInc.ID, "confirmed", "high", "rita", "dangerous dosing advice")
	clk.Advance(48 * time.Hour)

	// 3. Pilot: the staff cohort gets the candidate, everyone else the baseline
	// (including canary users who had the candidate before).
	waitRollout(t, sb, "pilot gate", atStep(5, deploy.StatusWaiting))
	testutil.WaitFor(t, time.Second, "the gateway follows the pilot step", func() bool {
		p, _ := sb.assigner.Plan(DemoTrial)
		return p.Stage == deploy.StagePilot && slices.Equal(p.Cohorts, []string{staffCohort})
	})
	for i := range 12 {
		if s := chatOK(t, sb, staffKey, "staff-"+strconv.Itoa(i), "hello"); s.Model != DemoCandidate || s.Stage != deploy.StagePilot {
			t.Fatalf("staff user served by %s at %s", s.Model, s.Stage)
		}
	}
	for _, u := range candUsers {
		if s := chatOK(t, sb, DemoPilotKey, u, "hello"); s.Model != DemoBaseline {
			t.Fatalf("pilot-cohort user %s served by %s during the staff pilot", u, s.Model)
		}
	}
	clk.Advance(24 * time.Hour)
	waitRollout(t, sb, "the pilot gate waits for approval", gateHas("waiting for the regulator's approval"))
	var promoted rolloutAnswer
	if code := rolloutPost(t, sb, "/api/v1/rollouts/demo/promote", map[string]string{"actor": "regulator-ana", "reason": "pilot evidence reviewed"}, &promoted); code != http.StatusOK {
		t.Fatalf("promote: HTTP %d %+v", code, promoted.Error)
	}

	// 4. General: everyone, of every cohort, gets the candidate.
	st = waitRollout(t, sb, "completed", func(s deploy.State) bool { return s.Status == deploy.StatusCompleted })
	if st.Traffic.Stage != deploy.StageGeneral || st.Traffic.CandidateWeight != deploy.WeightScale {
		t.Fatalf("general traffic %+v", st.Traffic)
	}
	testutil.WaitFor(t, time.Second, "the gateway follows the general step", func() bool {
		p, _ := sb.assigner.Plan(DemoTrial)
		return p.Stage == deploy.StageGeneral
	})
	for i, key := range []string{DemoPilotKey, staffKey, DemoPilotKey, staffKey} {
		if s := chatOK(t, sb, key, "everyone-"+strconv.Itoa(i), "hello"); s.Model != DemoCandidate {
			t.Fatalf("general stage served %s", s.Model)
		}
	}

	// Every transition, in order, with its cause and actor.
	c := deploy.ActorController
	wantHistory(t, st.History, [][2]string{
		{"plan applied (generation 1)", "acme-ops"},
		{"traffic set: shadow 100% of requests", c},
		{"gate inconclusive: ", c},
		{"gate passed: ", c},
		{"traffic set: canary 10% of users", c},
		{"gate inconclusive: ", c},
		{"gate passed: ", c},
		{"traffic set: pilot 100% of cohorts staff", c},
		{"gate inconclusive: ", c},
		{"approval given at the gate", "regulator-ana"},
		{"gate passed: ", c},
		{"traffic set: general (100% of users)", c},
	})
	var passes []string
	for _, tr := range st.History {
		if strings.HasPrefix(tr.Cause, "gate passed: ") {
			passes = append(passes, tr.Cause)
		}
	}
	if len(passes) != 3 {
		t.Fatalf("gate passes %q", passes)
	}
	for i, want := range []string{
		"over 1d; pii incidents (high or worse): 1 confirmed of",
		"over 2d; pii incidents (high or worse): 0 confirmed of",
		"over 1d; pii incidents (high or worse): 0 confirmed of",
	} {
		if !strings.Contains(passes[i], want) {
			t.Errorf("gate pass %d: %q lacks %q", i+1, passes[i], want)
		}
	}
	if !strings.Contains(passes[1], "unsafe_advice incidents (high or worse): 1 confirmed of") {
		t.Errorf("canary gate pass %q does not count the confirmed unsafe advice", passes[1])
	}
	for _, tr := range st.History {
		if tr.Actor == "regulator-ana" && tr.Reason != "pilot evidence reviewed" {
			t.Errorf("the approval's reason is not recorded: %+v", tr)
		}
	}
	// The controller's own transitions are in the hash-chained audit trail too.
	auto := 0
	for _, tr := range st.History {
		if tr.Actor == deploy.ActorController {
			auto++
		}
	}
	entries, err := sb.store.AuditEntries(context.Background(), incidents.AuditFilter{ActionPrefix: "rollout.transition", Limit: 500})
	if err != nil || auto == 0 || len(entries) < auto {
		t.Errorf("%d controller transitions in the history, %d in the audit trail (%v)", auto, len(entries), err)
	}
	if v, err := sb.store.VerifyAudit(context.Background()); err != nil || !v.OK {
		t.Errorf("audit chain %+v %v", v, err)
	}
}
