package incidents

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

var testRule = BurstRule{Window: 10 * time.Minute, Threshold: 3, MaxFindings: 5}

// burstInteraction is interaction i of a burst: its own user, the same model.
func burstInteraction(i int, user string, at time.Time) (*events.Interaction, []events.Finding) {
	in := interaction(fmt.Sprintf("b%02d", i), "t1")
	in.User, in.StartedAt = user, at
	return in, []events.Finding{finding(in, fmt.Sprintf("f%02d", i), "pii", events.SeverityHigh, 0.9)}
}

// correlate routes one interaction and opens its own incident, as the runner does.
func correlate(t *testing.T, s *SQLiteStore, in *events.Interaction, fs []events.Finding) Routing {
	t.Helper()
	r, err := s.Correlate(context.Background(), in, fs, testRule)
	if err != nil {
		t.Fatalf("Correlate %s: %v", in.ID, err)
	}
	if len(r.Individual) > 0 {
		if _, _, err := s.OpenIncident(context.Background(), in, r.Individual); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestCorrelateBurstBecomesOneAggregate(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "b.db"), clock.NewFake(t0))
	created := 0
	for i := range 10 {
		in, fs := burstInteraction(i, fmt.Sprintf("user%d", i), t0.Add(time.Duration(i)*time.Second))
		r := correlate(t, s, in, fs)
		if i < testRule.Threshold {
			if len(r.Individual) != 1 || len(r.Aggregates) != 0 {
				t.Fatalf("interaction %d: %+v, want its own incident", i, r)
			}
			continue
		}
		if len(r.Individual) != 0 || len(r.Aggregates) != 1 {
			t.Fatalf("interaction %d: %+v, want the aggregate", i, r)
		}
		a := r.Aggregates[0]
		if a.Created {
			created++
		}
		if a.Count != i+1 || a.Key.Scope != BurstScopeModel || a.Key.Subject != "cand-a" {
			t.Errorf("interaction %d: count %d key %+v", i, a.Count, a.Key)
		}
	}
	if created != 1 {
		t.Errorf("aggregate created %d times, want once", created)
	}
	list, err := s.Incidents(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != testRule.Threshold+1 {
		t.Fatalf("%d incidents, want %d own + 1 aggregate", len(list), testRule.Threshold)
	}
	agg, err := s.Incident(context.Background(), AggregateIncidentID(BurstKey{Trial: "t1", Scope: BurstScopeModel,
		Subject: "cand-a", Category: "pii", WindowStart: t0.Truncate(testRule.Window)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(agg.Findings) != testRule.MaxFindings || !strings.Contains(agg.Title, "burst: 10 interactions") ||
		agg.Category != "pii" || agg.Severity != events.SeverityHigh || !strings.HasPrefix(agg.InteractionID, "burst:") {
		t.Errorf("aggregate = %d findings, %q, %s %s %s", len(agg.Findings), agg.Title, agg.Category, agg.Severity, agg.InteractionID)
	}
}

func TestCorrelateIsIdempotentUnderRedelivery(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "b.db"), clock.NewFake(t0))
	var ins []*events.Interaction
	var fss [][]events.Finding
	for i := range 6 {
		in, fs := burstInteraction(i, "u", t0)
		ins, fss = append(ins, in), append(fss, fs)
		correlate(t, s, in, fs)
	}
	// Redeliver an early and a late member: same routing, nothing counted twice.
	for _, i := range []int{1, 4, 4} {
		r := correlate(t, s, ins[i], fss[i])
		if i < testRule.Threshold && len(r.Individual) != 1 {
			t.Errorf("redelivered %d lost its own incident: %+v", i, r)
		}
		if i >= testRule.Threshold {
			if len(r.Aggregates) != 1 || r.Aggregates[0].Created || r.Aggregates[0].Count != 6 {
				t.Errorf("redelivered %d: %+v", i, r.Aggregates)
			}
		}
	}
	list, _ := s.Incidents(context.Background(), Filter{})
	if len(list) != testRule.Threshold+1 {
		t.Errorf("%d incidents after redelivery, want %d", len(list), testRule.Threshold+1)
	}
}

func TestCorrelateWindowsScopesAndCategories(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "b.db"), clock.NewFake(t0))
	// One user across models: the user window bursts, the model windows do not.
	for i := range 5 {
		in, fs := burstInteraction(i, "mallory", t0)
		in.Model = fmt.Sprintf("model-%d", i)
		fs[0].Model = in.Model
		r := correlate(t, s, in, fs)
		if i >= testRule.Threshold && (len(r.Aggregates) != 1 || r.Aggregates[0].Key.Scope != BurstScopeUser) {
			t.Errorf("interaction %d: %+v, want the user aggregate", i, r)
		}
	}
	// The next window starts counting again.
	in, fs := burstInteraction(50, "mallory", t0.Add(testRule.Window))
	if r := correlate(t, s, in, fs); len(r.Individual) != 1 {
		t.Errorf("new window: %+v, want its own incident", r)
	}
	// Another category in the bursting window is counted apart.
	in, _ = burstInteraction(60, "mallory", t0)
	tox := []events.Finding{finding(in, "f60", "toxicity", events.SeverityMedium, 0.6)}
	if r := correlate(t, s, in, tox); len(r.Individual) != 1 {
		t.Errorf("other category: %+v, want its own incident", r)
	}
}

func TestCorrelateValidates(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "b.db"), clock.NewFake(t0))
	in, fs := burstInteraction(1, "u", t0)
	_, err := s.Correlate(context.Background(), in, fs, BurstRule{Window: time.Millisecond, Threshold: 0, MaxFindings: -1})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"window", "threshold", "max findings"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if _, err := s.Correlate(context.Background(), in, nil, testRule); !errors.Is(err, ErrInvalid) {
		t.Errorf("no findings: %v", err)
	}
}
