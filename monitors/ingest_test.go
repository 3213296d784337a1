package monitors_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/monitors"
	"github.com/stagegate/stagegate/monitors/pii"
)

func (e *env) ingester(t *testing.T, cfg monitors.IngestConfig) *monitors.Ingester {
	t.Helper()
	g, err := monitors.NewIngester(cfg, monitors.Deps{JS: e.js, Store: e.store,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop(context.Background()) })
	return g
}

func externalFinding(id, interactionID string) events.Finding {
	return events.Finding{
		Schema: events.SchemaFinding, ID: id, InteractionID: interactionID, Trial: trial, Model: "cand-a",
		Detector: "shouting", DetectorVersion: "0.1.0", Category: "tone", Severity: events.SeverityMedium,
		Score: 0.7, Threshold: 0.5, Spans: []events.Span{{Field: "response", Start: 0, End: 4}},
		Explanation: "the answer shouts", CreatedAt: t0,
	}
}

func (e *env) publishFinding(t *testing.T, subject string, v any, msgID string) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data}, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

func TestIngesterMergesExternalFindings(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, testConfig(), nil)
	g := e.ingester(t, monitors.IngestConfig{Skip: []string{pii.Name}, RetryDelay: 10e6})

	// A finding that arrives before its interaction is retried until the
	// runner has recorded the interaction.
	e.publishFinding(t, events.FindingSubject(trial, "shouting"), externalFinding("ext-1", "i-ext"), "ext-1")
	testutil.WaitFor(t, waitLong, "the early finding retried", func() bool { return g.Stats().Retried > 0 })
	e.publish(t, newInteraction("i-ext", "hi", "HELLO THERE, mail x@y.io"), "i-ext")
	// A clean interaction: the external finding opens its incident alone.
	e.publish(t, newInteraction("i-clean", "hi", "LOUD"), "i-clean")
	testutil.WaitFor(t, waitLong, "runner processed", func() bool { return r.Stats().Processed == 2 })
	e.publishFinding(t, events.FindingSubject(trial, "shouting"), externalFinding("ext-2", "i-clean"), "ext-2")
	// Malformed: subject and payload disagree; and not a finding at all.
	e.publishFinding(t, events.FindingSubject(trial, "other"), externalFinding("ext-3", "i-clean"), "ext-3")
	e.publishFinding(t, events.FindingSubject(trial, "shouting"), map[string]string{"schema": "nope"}, "ext-4")

	testutil.WaitFor(t, waitLong, "external findings ingested", func() bool {
		st := g.Stats()
		return st.Ingested == 2 && st.Rejected == 2 && st.Skipped == 1
	})
	merged, err := e.store.Incident(context.Background(), incidents.IncidentID("i-ext"))
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Findings) != 2 || merged.Category != "pii" {
		t.Errorf("merged incident = %s with %d findings", merged.Category, len(merged.Findings))
	}
	alone, err := e.store.Incident(context.Background(), incidents.IncidentID("i-clean"))
	if err != nil {
		t.Fatal(err)
	}
	if alone.Category != "tone" || alone.Findings[0].Detector != "shouting" || !strings.Contains(alone.Title, "shouts") {
		t.Errorf("external incident = %+v", alone)
	}
	if g.Stats().Retried == 0 {
		t.Error("the early finding was not retried")
	}
}

func TestNewIngesterValidates(t *testing.T) {
	_, err := monitors.NewIngester(monitors.IngestConfig{Durable: "a.b", Workers: -1, Skip: []string{"bad name"}}, monitors.Deps{})
	for _, want := range []string{"durable", "workers", "skip", "JS is nil", "Store is nil"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}
