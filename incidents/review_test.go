package incidents

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

// openIncident stores an interaction with one finding and returns its incident.
func openIncident(t *testing.T, s *SQLiteStore, id, trial, model, category, severity string, at time.Time) *Incident {
	t.Helper()
	in := interaction(id, trial)
	in.Model, in.StartedAt = model, at
	if err := s.RecordInteraction(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	inc, _, err := s.OpenIncident(context.Background(), in, []events.Finding{finding(in, "f-"+id, category, severity, 0.9)})
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

func TestReviewTransitionsAndAuditTrail(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "r.db"), clk)
	ctx := context.Background()
	inc := openIncident(t, s, "i1", "t1", "cand", "pii", events.SeverityHigh, t0)

	steps := []struct {
		name    string
		v       Verdict
		wantErr error
		want    string // status/severity/category after
	}{
		{"claim", Verdict{Status: StatusInReview, Actor: "rita"}, nil, "in_review/high/pii"},
		{"confirm and raise severity", Verdict{Status: StatusConfirmed, Severity: events.SeverityCritical, Actor: "rita", Reason: "real card number"}, nil, "confirmed/critical/pii"},
		{"confirmed cannot be dismissed directly", Verdict{Status: StatusDismissed, Actor: "rita"}, ErrTransition, "confirmed/critical/pii"},
		{"nothing changes", Verdict{Status: StatusConfirmed, Actor: "rita"}, ErrInvalid, "confirmed/critical/pii"},
		{"no actor", Verdict{Status: StatusInReview}, ErrInvalid, "confirmed/critical/pii"},
		{"bad severity", Verdict{Severity: "huge", Actor: "rita"}, ErrInvalid, "confirmed/critical/pii"},
		{"recategorise in place", Verdict{Category: "unsafe_advice", Actor: "sam"}, nil, "confirmed/critical/unsafe_advice"},
		{"reopen", Verdict{Status: StatusInReview, Actor: "sam", Reason: "second look"}, nil, "in_review/critical/unsafe_advice"},
		{"dismiss", Verdict{Status: StatusDismissed, Actor: "sam"}, nil, "dismissed/critical/unsafe_advice"},
	}
	for _, st := range steps {
		clk.Advance(time.Minute)
		got, err := s.Review(ctx, inc.ID, st.v)
		if st.wantErr != nil {
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: err %v, want %v", st.name, err, st.wantErr)
			}
			got, err = s.Incident(ctx, inc.ID)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if s := got.Status + "/" + got.Severity + "/" + got.Category; s != st.want {
			t.Fatalf("%s: incident is %s, want %s", st.name, s, st.want)
		}
	}
	evs, err := s.ReviewEvents(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 {
		t.Fatalf("%d review events, want 5: %+v", len(evs), evs)
	}
	e := evs[1]
	if e.Seq != 2 || e.Actor != "rita" || e.FromStatus != StatusInReview || e.ToStatus != StatusConfirmed ||
		e.FromSeverity != "high" || e.ToSeverity != "critical" || e.Reason != "real card number" || !e.At.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("event 2 = %+v", e)
	}
	if _, err := s.Review(ctx, "inc_missing", Verdict{Status: StatusConfirmed, Actor: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing incident: %v", err)
	}
}

func TestVerdictValidateReportsEverything(t *testing.T) {
	err := Verdict{Status: "gone", Severity: "huge", Category: "a b", Reason: strings.Repeat("x", MaxReasonRunes+1)}.Validate()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"status", "severity", "category", "actor", "reason"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
}

func TestAllowedTransition(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{StatusOpen, StatusConfirmed, true},
		{StatusOpen, StatusOpen, true},
		{StatusEscalated, StatusOpen, false},
		{StatusConfirmed, StatusDismissed, false},
		{StatusDismissed, StatusInReview, true},
		{"nope", "nope", false},
	} {
		if got := AllowedTransition(tc.from, tc.to); got != tc.ok {
			t.Errorf("%s → %s: %v, want %v", tc.from, tc.to, got, tc.ok)
		}
	}
}
