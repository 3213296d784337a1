package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/policies"
)

const trialID = "standard"

func standardEngine(tb testing.TB, memo int) *policies.Engine {
	tb.Helper()
	sub, err := fs.Sub(policies.Builtin(), policies.StandardPolicy)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Config{FS: sub, MemoEntries: memo})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// mix is varied traffic of the standard trial: plain prompts, denied topics,
// minors, over-quota callers, PII, injection cues, three languages.
func mix(n int, seed uint64) []policies.Input {
	r := rand.New(rand.NewPCG(seed, 7))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	out := make([]policies.Input, n)
	for i := range out {
		in := policies.Input{
			Trial: trialID, Stage: pick("canary", "canary", "general"),
			Time: start.Add(time.Duration(i/2000) * time.Minute).Format(time.RFC3339),
			Request: policies.RequestFacts{Model: "chat", MaxTokens: []int{0, 256, 2048}[r.IntN(3)], MessageCount: 1,
				Roles: []string{"user"}, EstimatedPromptTokens: 10 + r.IntN(500)},
			Caller: policies.Caller{Tenant: "acme", User: fmt.Sprintf("u_%d", r.IntN(300)), Cohort: pick("pilot", "pilot", "public", "internal"),
				Attributes: map[string]string{"age_band": pick("adult", "adult", "adult", "13_17")}, OverQuota: r.IntN(30) == 0},
			Signals: policies.Signals{Language: pick("en", "en", "zh")},
		}
		switch r.IntN(12) {
		case 0:
			in.Signals.Topics = []string{"weapons"}
		case 1:
			in.Signals.Topics = []string{"travel"}
		case 2:
			in.Signals.PIITypes = []string{"card"}
		case 3:
			in.Signals.PIITypes = []string{"email"}
		case 4:
			in.Signals.InjectionScore = 0.9
		}
		out[i] = in
	}
	return out
}

// interaction is what the gateway publishes for a request decided by d.
func interaction(i int, d policies.Decision) *events.Interaction {
	in := &events.Interaction{
		Schema: events.SchemaInteraction, ID: fmt.Sprintf("int_%08d", i), Trial: trialID, Tenant: "acme", User: "u",
		LogicalModel: "chat", Model: "cand", Route: events.RouteCandidate, Status: events.StatusOK, HTTPStatus: 200,
		StartedAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		Request:   events.Request{Messages: []events.Message{{Role: "user", Content: "Which ryokan near the Philosopher's Path has a private onsen, and can you book two nights in April?"}}},
		Response:  events.Response{Content: "Here are three options with prices, and the booking deadlines for each of them in early April.", FinishReason: "stop"},
		Decision: events.Decision{
			Allow: d.Allow, Route: d.Route, PolicyRevision: d.Revision, EvalMicros: d.EvalMicros,
			Obligations: events.Obligations{RedactPIIInStorage: d.Obligations.RedactPIIInStorage, MaxTokens: d.Obligations.MaxTokens, Notice: d.Obligations.Notice},
			Input:       d.Input, InputHash: d.InputHash, MemoHit: d.MemoHit,
		},
	}
	for _, r := range d.Reasons {
		in.Decision.Reasons = append(in.Decision.Reasons, events.Reason{Code: r.Code, Message: r.Message})
	}
	if !d.Allow {
		in.Status, in.HTTPStatus, in.Model, in.Route = events.StatusDenied, 403, "", ""
	}
	return in
}

// record decides the mix with the standard policy and publishes the
// interactions, plus one without a recorded input and one that is not an
// interaction at all.
func record(tb testing.TB, js jetstream.JetStream, inputs []policies.Input) {
	tb.Helper()
	ctx := context.Background()
	e := standardEngine(tb, 0)
	for i, in := range inputs {
		d, err := e.Decide(ctx, in)
		if err != nil {
			tb.Fatal(err)
		}
		publish(tb, js, interaction(i, d))
	}
	old := interaction(len(inputs), policies.Decision{Allow: true})
	old.Decision.Input, old.Decision.InputHash = nil, ""
	publish(tb, js, old)
	if _, err := js.PublishAsync(events.InteractionSubject(trialID, "cand"), []byte("not json")); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("publishes not acknowledged")
	}
}

func publish(tb testing.TB, js jetstream.JetStream, in *events.Interaction) {
	raw, err := json.Marshal(in)
	if err != nil {
		tb.Fatal(err)
	}
	model := in.Model
	if model == "" {
		model = "none"
	}
	if _, err := js.PublishAsync(events.InteractionSubject(in.Trial, model), raw, jetstream.WithMsgID(in.ID)); err != nil {
		tb.Fatal(err)
	}
}

func newJetStream(tb testing.TB, nc *nats.Conn) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		tb.Fatal(err)
	}
	if err := events.EnsureStreams(context.Background(), js, events.StreamOptions{}); err != nil {
		tb.Fatal(err)
	}
	return js
}

func TestReplayTheRecordedRevisionReproducesEveryDecision(t *testing.T) {
	_, nc := testutil.JetStream(t)
	js := newJetStream(t, nc)
	inputs := mix(1500, 1)
	record(t, js, inputs)
	// Another trial's traffic is not read.
	other := interaction(9999, policies.Decision{Allow: true})
	other.Trial = "other"
	publish(t, js, other)
	<-js.PublishAsyncComplete()

	cand := standardEngine(t, 0)
	rep, err := Run(context.Background(), cand, Interactions(js, trialID, time.Time{}), Config{}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != len(inputs)+2 || rep.Replayed != len(inputs) || rep.Skipped != 2 {
		t.Errorf("read %d, replayed %d, skipped %d; want %d, %d, 2", rep.Read, rep.Replayed, rep.Skipped, len(inputs)+2, len(inputs))
	}
	if rep.Unchanged != len(inputs) || rep.Changed() != 0 || rep.Errors != 0 || rep.InputMismatch != 0 || len(rep.Changes) != 0 {
		t.Errorf("replaying the same revision changed decisions: %+v", rep)
	}
	if rep.Candidate != cand.Revision() || rep.RecordedRevisions[cand.Revision()] != len(inputs) {
		t.Errorf("revisions: candidate %s, recorded %v", rep.Candidate, rep.RecordedRevisions)
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 of 1,500 replayed decisions would change") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestReplayReportsChanges(t *testing.T) {
	_, nc := testutil.JetStream(t)
	js := newJetStream(t, nc)
	inputs := mix(600, 2)
	record(t, js, inputs)

	// The candidate: weapons allowed, travel denied, a smaller answer cap.
	dir := t.TempDir()
	for _, name := range []string{"policy.rego", "data.json"} {
		src, err := fs.ReadFile(policies.Builtin(), policies.StandardPolicy+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "data.json" {
			src = bytes.Replace(src, []byte(`"denied_topics": ["medical_dosing", "weapons"]`), []byte(`"denied_topics": ["medical_dosing", "travel"]`), 1)
			src = bytes.Replace(src, []byte(`"answer": {"max_tokens": 1024`), []byte(`"answer": {"max_tokens": 512`), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cand, err := policies.New(context.Background(), policies.Config{FS: policies.LoadDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), cand, Interactions(js, trialID, time.Time{}), Config{Workers: 3, MaxExamples: 2}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	// The expected groups, computed one by one.
	old := standardEngine(t, -1)
	want := map[string]int{}
	unchanged := 0
	for _, in := range inputs {
		a, _ := old.Decide(context.Background(), in)
		b, _ := cand.Decide(context.Background(), in)
		switch {
		case a.Allow && !b.Allow:
			want[AllowedToDenied]++
		case !a.Allow && b.Allow:
			want[DeniedToAllowed]++
		case a.Obligations != b.Obligations:
			want[ObligationsChanged]++
		default:
			unchanged++
		}
	}
	got := map[string]int{}
	for _, g := range rep.Changes {
		got[g.Kind] = g.Count
		if len(g.Examples) == 0 || len(g.Examples) > 2 {
			t.Errorf("%s: examples %v", g.Kind, g.Examples)
		}
	}
	for _, k := range []string{AllowedToDenied, DeniedToAllowed, ObligationsChanged} {
		if want[k] == 0 || got[k] != want[k] {
			t.Errorf("%s: got %d, want %d (non-zero)", k, got[k], want[k])
		}
	}
	if rep.Unchanged != unchanged {
		t.Errorf("unchanged %d, want %d", rep.Unchanged, unchanged)
	}
	if d := rep.Changes[0].Detail; d["topic_denied"] == 0 {
		t.Errorf("allowed→denied detail %v lacks topic_denied", d)
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"allowed → denied", "denied → allowed", "obligations changed", "max_tokens", "int_0"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
	raw, err := json.Marshal(rep)
	if err != nil || !bytes.Contains(raw, []byte(`"kind":"allowed_to_denied"`)) {
		t.Errorf("JSON %s, %v", raw, err)
	}
	t.Logf("\n%s", out.String())
}

func TestReplaySince(t *testing.T) {
	_, nc := testutil.JetStream(t)
	js := newJetStream(t, nc)
	e := standardEngine(t, 0)
	d, err := e.Decide(context.Background(), mix(1, 3)[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		publish(t, js, interaction(i, d))
	}
	<-js.PublishAsyncComplete()
	since := time.Now()
	testutil.WaitFor(t, time.Second, "the clock to move on", func() bool { return time.Since(since) > 2*time.Millisecond })
	for i := 5; i < 8; i++ {
		publish(t, js, interaction(i, d))
	}
	<-js.PublishAsyncComplete()
	rep, err := Run(context.Background(), e, Interactions(js, trialID, since), Config{}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != 3 {
		t.Errorf("read %d since the cut, want 3", rep.Read)
	}
	rep, err = Run(context.Background(), e, Interactions(js, "nobody", time.Time{}), Config{}, Deps{})
	if err != nil || rep.Read != 0 {
		t.Errorf("a trial without traffic: %v, %+v", err, rep)
	}
	if _, err := Run(context.Background(), e, Interactions(js, "bad.trial", time.Time{}), Config{}, Deps{}); err == nil {
		t.Error("a bad trial id was accepted")
	}
}

func TestReplayRecordsWithProblems(t *testing.T) {
	e := standardEngine(t, 0)
	d, err := e.Decide(context.Background(), mix(1, 4)[0])
	if err != nil {
		t.Fatal(err)
	}
	good := FromInteraction(interaction(1, d))
	tampered := good
	tampered.ID, tampered.InputHash = "int_2", "sha256:00"
	broken := good
	broken.ID, broken.Input, broken.InputHash = "int_3", []byte(`{"trial": 1}`), ""
	recs := []Record{good, tampered, broken}
	src := func(_ context.Context, yield func(Record) error) error {
		for _, r := range recs {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}
	rep, err := Run(context.Background(), e, src, Config{}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != 3 || rep.Errors != 1 || rep.InputMismatch != 1 || rep.Unchanged != 2 || len(rep.ErrorExamples) != 2 {
		t.Errorf("report %+v", rep)
	}
	boom := fmt.Errorf("source broke")
	_, err = Run(context.Background(), e, func(context.Context, func(Record) error) error { return boom }, Config{}, Deps{})
	if err != boom {
		t.Errorf("source error %v", err)
	}
}

// TestSnapshotOfADataDir lays out a data dir as the sandbox does, stops its
// server, and replays from a snapshot of it.
func TestSnapshotOfADataDir(t *testing.T) {
	dataDir := t.TempDir()
	ns, nc := testutil.JetStreamAt(t, filepath.Join(dataDir, "jetstream"))
	js := newJetStream(t, nc)
	inputs := mix(50, 5)
	record(t, js, inputs)
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	snap, err := OpenSnapshot(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), standardEngine(t, 0), Interactions(snap.JetStream(), trialID, time.Time{}), Config{}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != len(inputs) || rep.Unchanged != len(inputs) {
		t.Errorf("snapshot replay %+v", rep)
	}
	dir := snap.dir
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("snapshot copy left behind: %v", err)
	}
	if _, err := OpenSnapshot(t.TempDir()); err == nil {
		t.Error("an empty dir gave a snapshot")
	}
}

// A trial that caps answers and redacts storage whatever its policy says
// records those rules beside the decision; replaying the same revision folds
// them in the same way and reproduces every decision. Without them the replay
// would report every allowed decision's obligations as changed.
func TestReplayFoldsTheTrialRules(t *testing.T) {
	_, nc := testutil.JetStream(t)
	js := newJetStream(t, nc)
	ctx := context.Background()
	e := standardEngine(t, 0)
	rules := &events.TrialRules{MaxTokens: 64, RedactPII: true}
	inputs := mix(300, 3)
	allowed := 0
	for i, in := range inputs {
		d, err := e.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		d.Obligations.RedactPIIInStorage, d.Obligations.MaxTokens = rules.Apply(d.Obligations.RedactPIIInStorage, d.Obligations.MaxTokens)
		rec := interaction(i, d)
		rec.Decision.TrialRules = rules
		publish(t, js, rec)
		if d.Allow {
			allowed++
		}
	}
	<-js.PublishAsyncComplete()
	rep, err := Run(ctx, e, Interactions(js, trialID, time.Time{}), Config{}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != len(inputs) || rep.Unchanged != len(inputs) || rep.Changed() != 0 {
		t.Errorf("replay with the trial's rules: replayed %d, unchanged %d, changed %d", rep.Replayed, rep.Unchanged, rep.Changed())
	}
	// The same records without their rules: the candidate's own obligations differ.
	var recs []Record
	src := Interactions(js, trialID, time.Time{})
	if err := src(ctx, func(r Record) error { r.Rules = nil; recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if allowed == 0 || len(recs) != len(inputs) {
		t.Fatalf("%d allowed, %d records", allowed, len(recs))
	}
	changed := 0
	for _, r := range recs {
		if res := decide(ctx, e, r); res.got.MaxTokens != r.Recorded.MaxTokens || res.got.RedactPIIInStorage != r.Recorded.RedactPIIInStorage {
			changed++
		}
	}
	if changed == 0 {
		t.Error("without the recorded rules nothing differs: the test does not exercise them")
	}
}
