package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/testutil"
)

func sampleInteraction(id string) *events.Interaction {
	temp := 0.2
	return &events.Interaction{
		ID: id, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Trial: "demo", Tenant: "acme", User: "u_1234",
		Stage: "canary", LogicalModel: "demo", Model: "demo-candidate", Route: events.RouteCandidate,
		Status: events.StatusOK, HTTPStatus: 200, StartedAt: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
		Request:  events.Request{Messages: []events.Message{{Role: "user", Content: "hi"}}, MaxTokens: 10, Temperature: &temp},
		Response: events.Response{ID: "chatcmpl-1", Content: "hello", FinishReason: "stop", Usage: events.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}},
		Decision: events.Decision{Allow: true, PolicyRevision: "sha256:abc", EvalMicros: 40, Obligations: events.Obligations{MaxTokens: 512},
			Reasons: []events.Reason{{Code: "ok", Message: "allowed"}}},
		Latency: events.Latency{TotalMS: 3.5, UpstreamMS: 3, FirstTokenMS: 1.2},
	}
}

// matchSchema validates doc against a schema file with OPA's json.match_schema,
// a real JSON Schema implementation, so the published schema and the Go types
// cannot drift apart unnoticed.
func matchSchema(t *testing.T, file string, doc any) []string {
	t.Helper()
	schema, err := events.Schemas.ReadFile("schema/" + file)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var d, s any
	_ = json.Unmarshal(raw, &d)
	if err := json.Unmarshal(schema, &s); err != nil {
		t.Fatalf("%s is not JSON: %v", file, err)
	}
	rs, err := rego.New(rego.Query("x := json.match_schema(input.doc, input.schema)"),
		rego.Input(map[string]any{"doc": d, "schema": s})).Eval(context.Background())
	if err != nil || len(rs) == 0 {
		t.Fatalf("match_schema: %v", err)
	}
	res := rs[0].Bindings["x"].([]any)
	if res[0].(bool) {
		return nil
	}
	var msgs []string
	for _, e := range res[1].([]any) {
		b, _ := json.Marshal(e)
		msgs = append(msgs, string(b))
	}
	return msgs
}

func TestPayloadsMatchTheirSchemas(t *testing.T) {
	denied := sampleInteraction("int_2")
	denied.Model, denied.Route, denied.Status, denied.HTTPStatus = "", "", events.StatusDenied, 403
	f := events.Finding{Schema: events.SchemaFinding, ID: "f1", InteractionID: "int_1", Trial: "demo", Model: "demo-candidate",
		Detector: "pii", DetectorVersion: "1.0.0", Category: "pii", Severity: events.SeverityHigh, Score: 0.9, Threshold: 0.5,
		Spans: []events.Span{{Field: "response", Start: 3, End: 20, Kind: "email"}}, Explanation: "e-mail in the answer", CreatedAt: time.Now().UTC()}
	ie := events.IncidentEvent{Schema: events.SchemaIncident, ID: "inc_1:opened", IncidentID: "inc_1", Trial: "demo", Model: "m",
		Type: "opened", Status: "open", Severity: "high", Category: "pii", At: time.Now().UTC()}
	in := sampleInteraction("int_1")
	in.Schema = events.SchemaInteraction
	denied.Schema = events.SchemaInteraction
	ruled := sampleInteraction("int_3")
	ruled.Schema = events.SchemaInteraction
	ruled.Decision.TrialRules = &events.TrialRules{MaxTokens: 64, RedactPII: true}
	for _, tc := range []struct {
		name, file string
		doc        any
	}{
		{"interaction", "interaction.v1.json", in},
		{"denied interaction", "interaction.v1.json", denied},
		{"interaction under trial rules", "interaction.v1.json", ruled},
		{"finding", "finding.v1.json", f},
		{"incident event", "incident.v1.json", ie},
		{"feedback", "feedback.v1.json", events.Feedback{Schema: events.SchemaFeedback, ID: "fb_1", InteractionID: "int_1", Trial: "demo",
			Tenant: "acme", User: "u_1", Category: "harmful", Comment: "bad advice", At: time.Now().UTC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if errs := matchSchema(t, tc.file, tc.doc); errs != nil {
				t.Fatalf("does not match %s: %v", tc.file, errs)
			}
		})
	}
	// The schema must be able to fail: an unknown field and a bad status are rejected.
	bad := map[string]any{}
	raw, _ := json.Marshal(in)
	_ = json.Unmarshal(raw, &bad)
	bad["status"], bad["surprise"] = "weird", true
	if errs := matchSchema(t, "interaction.v1.json", bad); len(errs) == 0 {
		t.Fatal("schema accepted an unknown field and a bad status")
	}
}

func TestDecodeInteraction(t *testing.T) {
	good, _ := json.Marshal(func() *events.Interaction {
		in := sampleInteraction("int_1")
		in.Schema = events.SchemaInteraction
		return in
	}())
	if in, err := events.DecodeInteraction(good); err != nil || in.ID != "int_1" || in.Response.Content != "hello" {
		t.Fatalf("good payload: %v %+v", err, in)
	}
	for _, tc := range []struct {
		name    string
		payload string
		want    error
	}{
		{"not json", `{"schema":`, events.ErrPayload},
		{"wrong schema", `{"schema":"stagegate.interaction.v9","id":"x"}`, events.ErrSchema},
		{"no schema", `{"id":"x"}`, events.ErrSchema},
		{"missing id", `{"schema":"stagegate.interaction.v1","trial":"t","status":"ok"}`, events.ErrPayload},
		{"bad trial", `{"schema":"stagegate.interaction.v1","id":"x","trial":"a.b","status":"ok"}`, events.ErrPayload},
		{"too large", `{"schema":"stagegate.interaction.v1","pad":"` + strings.Repeat("x", events.MaxPayloadBytes) + `"}`, events.ErrPayloadTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.DecodeInteraction([]byte(tc.payload))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeFindingRejectsMalformed(t *testing.T) {
	_, err := events.DecodeFinding([]byte(`{"schema":"stagegate.finding.v1","id":"f","interaction_id":"i","detector":"d","category":"pii","severity":"extreme","score":2,"spans":[{"field":"elsewhere","start":5,"end":1}]}`))
	if err == nil {
		t.Fatal("accepted a malformed finding")
	}
	for _, want := range []string{"severity", "score", "span 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func FuzzDecodeInteraction(f *testing.F) {
	good, _ := json.Marshal(func() *events.Interaction {
		in := sampleInteraction("int_1")
		in.Schema = events.SchemaInteraction
		return in
	}())
	f.Add(good)
	f.Add([]byte(`{"schema":"stagegate.interaction.v1"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := events.DecodeInteraction(data)
		if err == nil && (in.ID == "" || !events.ValidToken(in.Trial)) {
			t.Fatalf("accepted an invalid interaction: %+v", in)
		}
	})
}

func TestPublisherPublishesWithHeadersAndDeduplicates(t *testing.T) {
	ctx := context.Background()
	_, nc := testutil.JetStream(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureStreams(ctx, js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	// Idempotent: a second call on the same server keeps the streams.
	if err := events.EnsureStreams(ctx, js, events.StreamOptions{}); err != nil {
		t.Fatalf("second EnsureStreams: %v", err)
	}
	p, err := events.NewPublisher(events.PublisherConfig{QueueSize: 64}, events.PublisherDeps{JS: js})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"int_a", "int_b", "int_a"} { // int_a twice: stored once
		if err := p.Publish(sampleInteraction(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Enqueued != 3 || st.Published != 3 || st.Duplicates != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := p.Publish(sampleInteraction("late")); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("publish after stop: %v", err)
	}
	stream, _ := js.Stream(ctx, events.StreamInteractions)
	info, _ := stream.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2", info.State.Msgs)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "stagegate.interactions.demo.demo-candidate" {
		t.Errorf("subject %s", msg.Subject)
	}
	if got := msg.Header.Get(events.HeaderMsgID); got != "int_a" {
		t.Errorf("Nats-Msg-Id %q", got)
	}
	if got := msg.Header.Get(events.HeaderTraceParent); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-4bf92f3577b34da6-01" {
		t.Errorf("traceparent %q", got)
	}
	if _, err := events.DecodeInteraction(msg.Data); err != nil {
		t.Errorf("stored payload does not decode: %v", err)
	}
}

func TestPublisherQueueFullNeverBlocks(t *testing.T) {
	_, nc := testutil.JetStream(t)
	js, _ := jetstream.New(nc)
	p, err := events.NewPublisher(events.PublisherConfig{QueueSize: 2}, events.PublisherDeps{JS: js})
	if err != nil {
		t.Fatal(err)
	}
	// Not started: nothing drains the queue, so the third publish must be refused at once.
	_ = p.Publish(sampleInteraction("1"))
	_ = p.Publish(sampleInteraction("2"))
	if err := p.Publish(sampleInteraction("3")); !errors.Is(err, events.ErrQueueFull) {
		t.Fatalf("got %v, want ErrQueueFull", err)
	}
	if p.Stats().Dropped != 1 {
		t.Fatalf("dropped = %d", p.Stats().Dropped)
	}
}

func BenchmarkPublishEnqueue(b *testing.B) {
	_, nc := testutil.JetStream(b)
	js, _ := jetstream.New(nc)
	_ = events.EnsureStreams(context.Background(), js, events.StreamOptions{})
	p, _ := events.NewPublisher(events.PublisherConfig{QueueSize: 1 << 20}, events.PublisherDeps{JS: js})
	in := sampleInteraction("x")
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Publish(in)
	}
}

func BenchmarkInteractionEncode(b *testing.B) {
	in := sampleInteraction("int_1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.InteractionMsg(in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTrialRulesApply(t *testing.T) {
	for _, tc := range []struct {
		rules      *events.TrialRules
		redact     bool
		max        int
		wantRedact bool
		wantMax    int
	}{
		{nil, false, 512, false, 512},
		{&events.TrialRules{MaxTokens: 64}, false, 512, false, 64},
		{&events.TrialRules{MaxTokens: 64}, false, 0, false, 64}, // the policy set no cap
		{&events.TrialRules{MaxTokens: 1024}, false, 256, false, 256},
		{&events.TrialRules{RedactPII: true}, false, 0, true, 0},
		{&events.TrialRules{}, true, 10, true, 10},
	} {
		r, m := tc.rules.Apply(tc.redact, tc.max)
		if r != tc.wantRedact || m != tc.wantMax {
			t.Errorf("%+v.Apply(%v, %d) = %v, %d; want %v, %d", tc.rules, tc.redact, tc.max, r, m, tc.wantRedact, tc.wantMax)
		}
	}
}
