package incidents

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

func TestRolloutEvidence(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "e.db"), clk)
	ctx := context.Background()
	since := t0.Add(time.Hour)

	// Interactions: 3 answered by cand after since, 1 before, 1 failed, 1 by the baseline, 1 other trial.
	for i, c := range []struct {
		trial, model, status string
		at                   time.Time
	}{
		{"t1", "cand", events.StatusOK, since},
		{"t1", "cand", events.StatusPartial, since.Add(time.Minute)},
		{"t1", "cand", events.StatusOK, since.Add(2 * time.Minute)},
		{"t1", "cand", events.StatusOK, since.Add(-time.Second)},
		{"t1", "cand", events.StatusUpstreamError, since.Add(time.Minute)},
		{"t1", "base", events.StatusOK, since.Add(time.Minute)},
		{"t2", "cand", events.StatusOK, since.Add(time.Minute)},
	} {
		in := interaction(fmt.Sprintf("x%d", i), c.trial)
		in.Model, in.Status, in.StartedAt = c.model, c.status, c.at
		if err := s.RecordInteraction(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	// Incidents: created at the fake clock's time.
	clk.Set(since.Add(-time.Minute))
	old := openIncident(t, s, "old", "t1", "cand", "pii", events.SeverityCritical, t0)     // before since
	oldOpen := openIncident(t, s, "oldopen", "t1", "cand", "pii", events.SeverityHigh, t0) // unresolved, counts whatever its age
	clk.Set(since.Add(time.Minute))
	a := openIncident(t, s, "a", "t1", "cand", "pii", events.SeverityHigh, t0)
	b := openIncident(t, s, "b", "t1", "cand", "pii", events.SeverityLow, t0)
	c := openIncident(t, s, "c", "t1", "cand", "unsafe_advice", events.SeverityCritical, t0)
	d := openIncident(t, s, "d", "t1", "cand", "pii", events.SeverityHigh, t0)         // dismissed
	_ = openIncident(t, s, "e", "t1", "cand", "pii", events.SeverityMedium, t0)        // open, not severe
	bb := openIncident(t, s, "bb", "t1", "base", "pii", events.SeverityCritical, t0)   // baseline
	_ = openIncident(t, s, "f", "t1", "cand", "toxicity", events.SeverityCritical, t0) // open critical
	for _, r := range []struct {
		id, status string
	}{{old.ID, StatusConfirmed}, {a.ID, StatusConfirmed}, {b.ID, StatusConfirmed}, {c.ID, StatusConfirmed}, {d.ID, StatusDismissed}, {bb.ID, StatusConfirmed}} {
		if _, err := s.Review(ctx, r.id, Verdict{Status: r.status, Actor: "rita"}); err != nil {
			t.Fatal(err)
		}
	}

	ev, err := s.RolloutEvidence(ctx, "t1", "cand", since)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Interactions != 3 {
		t.Errorf("interactions %d, want 3", ev.Interactions)
	}
	want := []SeverityCount{{"pii", "high", 1}, {"pii", "low", 1}, {"unsafe_advice", "critical", 1}}
	if !reflect.DeepEqual(ev.Confirmed, want) {
		t.Errorf("confirmed %+v, want %+v", ev.Confirmed, want)
	}
	if ev.UnresolvedSevere != 2 || len(ev.UnresolvedSevereIDs) != 2 || ev.UnresolvedSevereIDs[0] != oldOpen.ID {
		t.Errorf("unresolved %d %v, want 2 starting with %s", ev.UnresolvedSevere, ev.UnresolvedSevereIDs, oldOpen.ID)
	}
	for _, tc := range []struct {
		cat, sev string
		want     int64
	}{{"pii", "low", 2}, {"pii", "high", 1}, {"*", "high", 2}, {"*", "critical", 1}, {"toxicity", "low", 0}} {
		if got := ev.ConfirmedAtLeast(tc.cat, tc.sev); got != tc.want {
			t.Errorf("ConfirmedAtLeast(%s, %s) = %d, want %d", tc.cat, tc.sev, got, tc.want)
		}
	}
	if _, err := s.RolloutEvidence(ctx, "", "cand", since); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty trial: %v", err)
	}
}
