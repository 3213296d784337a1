package monitors_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/monitors"
	"github.com/stagegate/stagegate/monitors/pii"
)

const (
	trial       = "trial-1"
	traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	waitLong    = 15 * time.Second
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	js    jetstream.JetStream
	store *incidents.SQLiteStore
	dir   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, nc := testutil.JetStream(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := events.EnsureStreams(ctx, js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := incidents.OpenSQLite(ctx, filepath.Join(dir, "incidents.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &env{js: js, store: store, dir: dir}
}

func testConfig() monitors.Config {
	return monitors.Config{Workers: 3, Batch: 4, AckWait: 5 * time.Second, RetryDelay: 10 * time.Millisecond}
}

func (e *env) runner(t *testing.T, cfg monitors.Config, store incidents.Store, dets ...monitors.Detector) *monitors.Runner {
	t.Helper()
	if len(dets) == 0 {
		d, err := pii.New(pii.Config{})
		if err != nil {
			t.Fatal(err)
		}
		dets = []monitors.Detector{d}
	}
	if store == nil {
		store = e.store
	}
	r, err := monitors.New(cfg, monitors.Deps{
		JS: e.js, Store: store, Detectors: dets,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	return r
}

func newInteraction(id, prompt, response string) *events.Interaction {
	return &events.Interaction{
		Schema: events.SchemaInteraction, ID: id, Trial: trial, Tenant: "acme", User: "u_1",
		Stage: "canary", LogicalModel: "chat", Model: "cand-a", Route: events.RouteCandidate,
		Status: events.StatusOK, HTTPStatus: 200, StartedAt: t0,
		Request:  events.Request{Messages: []events.Message{{Role: "user", Content: prompt}}},
		Response: events.Response{Content: response},
		Decision: events.Decision{Allow: true, PolicyRevision: "rev1"},
	}
}

func (e *env) publishRaw(t *testing.T, data []byte, msgID string) {
	t.Helper()
	msg := &nats.Msg{Subject: events.InteractionSubject(trial, "cand-a"), Data: data, Header: nats.Header{}}
	msg.Header.Set(events.HeaderTraceParent, traceparent)
	if _, err := e.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

func (e *env) publish(t *testing.T, in *events.Interaction, msgID string) {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	e.publishRaw(t, data, msgID)
}

func (e *env) incidents(t *testing.T) []incidents.Incident {
	t.Helper()
	list, err := e.store.Incidents(context.Background(), incidents.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func (e *env) streamMsgs(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (e *env) lastMsg(t *testing.T, stream, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := e.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("last message on %s: %v", subject, err)
	}
	return m
}

const leakyResponse = "张三的手机是13812345678，邮箱 zhang.san@example.com"

func TestRunnerOpensIncidentAndPublishes(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, testConfig(), nil)

	e.publish(t, newInteraction("i-clean", "what is 2+2?", "4"), "i-clean")
	e.publish(t, newInteraction("i-leak", "张三的联系方式？", leakyResponse), "i-leak")

	testutil.WaitFor(t, waitLong, "both interactions processed", func() bool { return r.Stats().Processed == 2 })
	list := e.incidents(t)
	if len(list) != 1 {
		t.Fatalf("incidents = %d, want 1", len(list))
	}
	inc := list[0]
	if inc.InteractionID != "i-leak" || inc.Severity != events.SeverityHigh || inc.Category != "pii" || inc.Trial != trial || inc.Model != "cand-a" {
		t.Errorf("incident = %+v", inc)
	}
	if len(inc.Findings) != 1 || len(inc.Findings[0].Spans) != 2 {
		t.Fatalf("incident findings = %+v", inc.Findings)
	}
	f := inc.Findings[0]
	if f.ID != monitors.FindingID("i-leak", pii.Name, pii.Version, 0) || f.Schema != events.SchemaFinding || f.Trial != trial || f.CreatedAt.IsZero() {
		t.Errorf("finding not completed by the runner: %+v", f)
	}
	for _, id := range []string{"i-clean", "i-leak"} {
		if _, err := e.store.Interaction(context.Background(), id); err != nil {
			t.Errorf("interaction %s not recorded: %v", id, err)
		}
	}

	// The finding went to FINDINGS with its id as Nats-Msg-Id and the trace context.
	fm := e.lastMsg(t, events.StreamFindings, events.FindingSubject(trial, pii.Name))
	if got := fm.Header.Get(events.HeaderMsgID); got != f.ID {
		t.Errorf("finding Nats-Msg-Id = %q, want %q", got, f.ID)
	}
	if got := fm.Header.Get(events.HeaderTraceParent); got != traceparent {
		t.Errorf("finding traceparent = %q", got)
	}
	pub, err := events.DecodeFinding(fm.Data)
	if err != nil || pub.ID != f.ID || pub.Severity != events.SeverityHigh {
		t.Errorf("published finding %+v, %v", pub, err)
	}

	// And the incident was announced once.
	im := e.lastMsg(t, events.StreamIncidents, events.IncidentSubject(trial))
	var ev events.IncidentEvent
	if err := json.Unmarshal(im.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != monitors.IncidentOpened || ev.IncidentID != inc.ID || ev.Schema != events.SchemaIncident ||
		im.Header.Get(events.HeaderMsgID) != inc.ID+":opened" || im.Header.Get(events.HeaderTraceParent) != traceparent {
		t.Errorf("incident event %+v headers %v", ev, im.Header)
	}

	st := r.Stats()
	if st.Findings != 1 || st.IncidentsOpened != 1 || st.Failed != 0 || st.Poison != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRunnerRedeliveryMakesNoSecondIncident(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, testConfig(), nil)
	in := newInteraction("i-dup", "hi", leakyResponse)

	e.publish(t, in, "i-dup")
	testutil.WaitFor(t, waitLong, "first delivery processed", func() bool { return r.Stats().Processed == 1 })
	// The same payload again under another msg id (e.g. a spool replay after the
	// de-duplication window) is a second stream message for the same interaction.
	e.publish(t, in, "i-dup-replayed")
	testutil.WaitFor(t, waitLong, "replay processed", func() bool { return r.Stats().Processed == 2 })

	if list := e.incidents(t); len(list) != 1 || len(list[0].Findings) != 1 {
		t.Fatalf("incidents = %+v, want one with one finding", list)
	}
	if n := e.streamMsgs(t, events.StreamFindings); n != 1 {
		t.Errorf("FINDINGS holds %d messages, want 1 (de-duplicated by Nats-Msg-Id)", n)
	}
	if n := e.streamMsgs(t, events.StreamIncidents); n != 1 {
		t.Errorf("INCIDENTS holds %d messages, want 1", n)
	}
	if st := r.Stats(); st.IncidentsOpened != 1 {
		t.Errorf("stats = %+v, want 1 incident opened", st)
	}
}

// flakyStore fails OpenIncident a number of times; with afterCommit it fails only
// after the real store committed, as a crash between the two would.
type flakyStore struct {
	incidents.Store
	failures    atomic.Int32
	afterCommit bool
}

func (s *flakyStore) OpenIncident(ctx context.Context, in *events.Interaction, fs []events.Finding) (*incidents.Incident, bool, error) {
	if s.failures.Add(-1) >= 0 {
		if s.afterCommit {
			if _, _, err := s.Store.OpenIncident(ctx, in, fs); err != nil {
				return nil, false, err
			}
		}
		return nil, false, errors.New("injected store failure")
	}
	return s.Store.OpenIncident(ctx, in, fs)
}

func TestRunnerNaksOnStoreErrorAndRecovers(t *testing.T) {
	for _, afterCommit := range []bool{false, true} {
		name := "before commit"
		if afterCommit {
			name = "after commit"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			store := &flakyStore{Store: e.store, afterCommit: afterCommit}
			store.failures.Store(2)
			r := e.runner(t, testConfig(), store)

			e.publish(t, newInteraction("i-retry", "hi", leakyResponse), "i-retry")
			testutil.WaitFor(t, waitLong, "processed after retries", func() bool { return r.Stats().Processed == 1 })

			st := r.Stats()
			if st.Failed != 2 {
				t.Errorf("Failed = %d, want 2", st.Failed)
			}
			if list := e.incidents(t); len(list) != 1 {
				t.Errorf("incidents = %d, want 1", len(list))
			}
			// Announced exactly once, even when the creating attempt failed afterwards.
			if n := e.streamMsgs(t, events.StreamIncidents); n != 1 {
				t.Errorf("INCIDENTS holds %d messages, want 1", n)
			}
			if n := e.streamMsgs(t, events.StreamFindings); n != 1 {
				t.Errorf("FINDINGS holds %d messages, want 1", n)
			}
		})
	}
}

func TestRunnerTerminatesPoisonAndContinues(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, testConfig(), nil)

	wrongSchema := newInteraction("i-x", "hi", "ho")
	wrongSchema.Schema = "stagegate.interaction.v0"
	badTrial := newInteraction("i-y", "hi", "ho")
	badTrial.Trial = "has spaces"
	wrongData, _ := json.Marshal(wrongSchema)
	badTrialData, _ := json.Marshal(badTrial)
	longID := newInteraction(strings.Repeat("x", 500), "hi", leakyResponse) // the store refuses it

	e.publish(t, newInteraction("g1", "hi", leakyResponse), "g1")
	e.publishRaw(t, []byte("not json at all"), "p1")
	e.publishRaw(t, wrongData, "p2")
	e.publish(t, newInteraction("g2", "mail a@b.io", "ok"), "g2")
	e.publishRaw(t, badTrialData, "p3")
	e.publishRaw(t, []byte(`{"schema":"stagegate.interaction.v1","id":""}`), "p4")
	e.publish(t, longID, "p5")
	e.publish(t, newInteraction("g3", "hi", "ho"), "g3")

	testutil.WaitFor(t, waitLong, "good processed and poison terminated", func() bool {
		st := r.Stats()
		return st.Processed == 3 && st.Poison == 5
	})
	if list := e.incidents(t); len(list) != 2 {
		t.Errorf("incidents = %d, want 2 (g1 leak, g2 prompt PII)", len(list))
	}
	cons, err := e.js.Consumer(context.Background(), events.StreamInteractions, monitors.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, waitLong, "nothing pending or awaiting ack", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
	if st := r.Stats(); st.Failed != 0 {
		t.Errorf("poison must not be retried: %+v", st)
	}
}

func TestRunnerRedactsStoredInteractionWhenObliged(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, testConfig(), nil)
	in := newInteraction("i-red", "我的卡号是4111 1111 1111 1111", leakyResponse)
	in.Decision.Obligations.RedactPIIInStorage = true
	e.publish(t, in, "i-red")
	testutil.WaitFor(t, waitLong, "processed", func() bool { return r.Stats().Processed == 1 })

	got, err := e.store.Interaction(context.Background(), "i-red")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Redacted || got.Request.Messages[0].Content != "我的卡号是*******************" ||
		got.Response.Content != "张三的手机是***********，邮箱 *********************" {
		t.Errorf("stored interaction not redacted: %+v", got)
	}
	// The published finding carries only spans, never the text.
	fm := e.lastMsg(t, events.StreamFindings, events.FindingSubject(trial, pii.Name))
	if strings.Contains(string(fm.Data), "13812345678") {
		t.Error("finding payload contains the phone number")
	}
}

// Detectors that fail or panic are counted and skipped; the others still report.
// With a redaction obligation, the failure masks the stored text entirely.
func TestRunnerSurvivesDetectorFailures(t *testing.T) {
	e := newEnv(t)
	d, _ := pii.New(pii.Config{})
	r := e.runner(t, testConfig(), nil,
		failing{name: "broken", err: errors.New("model unavailable")},
		failing{name: "panicky", panicking: true},
		d)
	in := newInteraction("i-fail", "hello", leakyResponse)
	in.Decision.Obligations.RedactPIIInStorage = true
	in.Status = events.StatusDenied // denied interactions are recorded and scanned too
	e.publish(t, in, "i-fail")
	testutil.WaitFor(t, waitLong, "processed", func() bool { return r.Stats().Processed == 1 })

	if st := r.Stats(); st.DetectorErrors != 2 || st.IncidentsOpened != 1 {
		t.Errorf("stats = %+v, want 2 detector errors and 1 incident", st)
	}
	got, err := e.store.Interaction(context.Background(), "i-fail")
	if err != nil {
		t.Fatal(err)
	}
	if got.Request.Messages[0].Content != "*****" || strings.Trim(got.Response.Content, "*") != "" {
		t.Errorf("stored text not fully masked after a detector failure: %+v", got)
	}
}

type failing struct {
	name      string
	err       error
	panicking bool
}

func (f failing) Name() string    { return f.name }
func (f failing) Version() string { return "0.0.1" }
func (f failing) Detect(context.Context, *events.Interaction) ([]events.Finding, error) {
	if f.panicking {
		panic("detector bug")
	}
	return nil, f.err
}

func TestRunnerStopStartResumesFromDurable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.runner(t, testConfig(), nil)
	if err := a.Start(ctx); !errors.Is(err, monitors.ErrRunning) {
		t.Errorf("second Start = %v, want ErrRunning", err)
	}

	e.publish(t, newInteraction("s1", "hi", "mail x1@y.io"), "s1")
	e.publish(t, newInteraction("s2", "hi", "mail x2@y.io"), "s2")
	testutil.WaitFor(t, waitLong, "first two processed", func() bool { return a.Stats().Processed == 2 })
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Errorf("second Stop = %v", err)
	}

	e.publish(t, newInteraction("s3", "hi", "mail x3@y.io"), "s3")
	e.publish(t, newInteraction("s4", "hi", "mail x4@y.io"), "s4")
	cons, err := e.js.Consumer(ctx, events.StreamInteractions, monitors.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 2 || len(e.incidents(t)) != 2 {
		t.Fatalf("while stopped: pending %d, incidents %d; want 2 and 2", info.NumPending, len(e.incidents(t)))
	}

	// A new runner (another process) on the same durable takes over where A stopped.
	b := e.runner(t, testConfig(), nil)
	testutil.WaitFor(t, waitLong, "all four incidents", func() bool { return len(e.incidents(t)) == 4 })
	testutil.WaitFor(t, waitLong, "B processed the two new ones", func() bool { return b.Stats().Processed == 2 })
	if st := a.Stats(); st.Processed != 2 {
		t.Errorf("A processed %d after Stop", st.Processed)
	}

	// The stopped runner can start again.
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.publish(t, newInteraction("s5", "hi", "mail x5@y.io"), "s5")
	testutil.WaitFor(t, waitLong, "A restarted and processed s5", func() bool { return a.Stats().Processed == 3 })
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t)
	d, _ := pii.New(pii.Config{})
	_, err := monitors.New(monitors.Config{Durable: "bad.name", Workers: -1, AckWait: time.Millisecond, MaxDeliver: -2},
		monitors.Deps{Detectors: []monitors.Detector{d, d, nil}})
	if !errors.Is(err, monitors.ErrConfig) {
		t.Fatalf("New = %v, want ErrConfig", err)
	}
	for _, want := range []string{"durable", "workers", "ack wait", "max deliver", "JS is nil", "Store is nil", "listed twice", "detector 2 is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if _, err := monitors.New(monitors.Config{MaxDeliver: -1}, monitors.Deps{JS: e.js, Store: e.store, Detectors: []monitors.Detector{d}}); err != nil {
		t.Errorf("valid config (unlimited deliveries) rejected: %v", err)
	}
	if err := (monitors.Config{}).Validate(); err != nil {
		t.Errorf("zero Config must be valid: %v", err)
	}
}

func TestFindingIDIsDeterministic(t *testing.T) {
	a := monitors.FindingID("i1", "pii", "1.0.0", 0)
	if a != monitors.FindingID("i1", "pii", "1.0.0", 0) {
		t.Error("not deterministic")
	}
	for _, other := range []string{
		monitors.FindingID("i1", "pii", "1.0.0", 1),
		monitors.FindingID("i1", "pii", "1.0.1", 0),
		monitors.FindingID("i1", "pi", "i1.0.0", 0),
		monitors.FindingID("i2", "pii", "1.0.0", 0),
	} {
		if other == a {
			t.Errorf("collision: %s", a)
		}
	}
}

// blocking holds Detect until released (or its context ends).
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocking() *blocking {
	return &blocking{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *blocking) Name() string    { return "blocking" }
func (b *blocking) Version() string { return "1" }
func (b *blocking) Detect(ctx context.Context, _ *events.Interaction) ([]events.Finding, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestRunnerStopFinishesInFlight(t *testing.T) {
	e := newEnv(t)
	blk := newBlocking()
	r := e.runner(t, testConfig(), nil, blk)
	e.publish(t, newInteraction("i-slow", "hi", "ho"), "i-slow")
	<-blk.entered

	stopped := make(chan error, 1)
	go func() { stopped <- r.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a message was in flight", err)
	default:
	}
	close(blk.release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Processed != 1 {
		t.Errorf("after Stop: processed %d, want the in-flight message finished", st.Processed)
	}
	if _, err := e.store.Interaction(context.Background(), "i-slow"); err != nil {
		t.Errorf("in-flight interaction not recorded: %v", err)
	}
}

func TestRunnerStopDeadlineAbandonsToRedelivery(t *testing.T) {
	e := newEnv(t)
	blk := newBlocking()
	a := e.runner(t, testConfig(), nil, blk)
	e.publish(t, newInteraction("i-cut", "hi", leakyResponse), "i-cut")
	<-blk.entered

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with ended ctx = %v, want context.Canceled", err)
	}
	if st := a.Stats(); st.Processed != 0 {
		t.Fatalf("abandoned message counted as processed: %+v", st)
	}
	// Nothing is lost: the next runner on the durable gets it again.
	b := e.runner(t, testConfig(), nil)
	testutil.WaitFor(t, waitLong, "redelivered to the next runner", func() bool { return b.Stats().Processed == 1 })
	if list := e.incidents(t); len(list) != 1 || list[0].InteractionID != "i-cut" {
		t.Errorf("incidents = %+v", list)
	}
}
