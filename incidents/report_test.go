package incidents

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

func TestTrialReport(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "rep.db"), clk)
	ctx := context.Background()
	// Traffic: 10 canary interactions of the candidate (policy rev-a), 5 of the
	// baseline (rev-b), one denied.
	for i := range 16 {
		in := interaction(fmt.Sprintf("x%d", i), "t1")
		in.Decision.PolicyRevision = "rev-a"
		if i >= 10 {
			in.Model, in.Decision.PolicyRevision = "base", "rev-b"
		}
		if i == 15 {
			in.Status = events.StatusDenied
		}
		in.StartedAt = t0.Add(time.Duration(i) * time.Minute)
		if err := s.RecordInteraction(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	// Incidents of the candidate: one confirmed serious (death), one dismissed,
	// one left open; one of the baseline confirmed, not serious.
	serious := openIncident(t, s, "s1", "t1", "cand-a", "unsafe_advice", events.SeverityCritical, t0)
	dismissed := openIncident(t, s, "s2", "t1", "cand-a", "pii", events.SeverityHigh, t0)
	openIncident(t, s, "s3", "t1", "cand-a", "pii", events.SeverityLow, t0)
	base := openIncident(t, s, "s4", "t1", "base", "pii", events.SeverityMedium, t0)
	openIncident(t, s, "other", "t2", "cand-a", "pii", events.SeverityCritical, t0) // another trial
	clk.Advance(2 * time.Hour)
	act(t, s, serious.ID, Action{Kind: ActionClaim, Actor: "rita"})
	act(t, s, serious.ID, Action{Kind: ActionConfirm, Actor: "rita", Severity: "critical", Category: "unsafe_advice", Harm: HarmDeath, Reason: "lethal dose advice"})
	act(t, s, dismissed.ID, Action{Kind: ActionClaim, Actor: "sam"})
	act(t, s, dismissed.ID, Action{Kind: ActionDismiss, Actor: "sam", Reason: "example address"})
	clk.Advance(100 * time.Hour)
	act(t, s, base.ID, Action{Kind: ActionClaim, Actor: "sam"})
	act(t, s, base.ID, Action{Kind: ActionConfirm, Actor: "sam", Severity: "medium", Category: "pii", Harm: HarmNone, Reason: "real e-mail"})
	if err := s.SetLegalHold(ctx, "t1", true, "reg", "inquiry"); err != nil {
		t.Fatal(err)
	}

	var calls []string
	rep, err := s.TrialReport(ctx, ReportOptions{
		Trial: "t1", Confidence: 0.95, Title: "Clinic pilot", Sponsor: "Acme Health", Regulator: "Authority",
		Interval: func(k, n int64) (float64, float64) {
			calls = append(calls, fmt.Sprintf("%d/%d", k, n))
			return 0.01, 0.2
		},
		Rollout: &RolloutSummary{Candidate: "cand-a", Baseline: "base", Stage: "aborted", Status: "aborted",
			History: []RolloutEvent{{At: t0.Add(3 * time.Hour), From: "step 2/4", To: "aborted", Cause: "kill switch: confirmed critical incident", Actor: "controller"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Traffic) != 2 || rep.Traffic[0].Stage != "canary" || rep.Traffic[0].Model != "base" || rep.Traffic[0].Interactions != 7 ||
		rep.Traffic[0].Denied != 1 || rep.Traffic[1].Answered != 13 {
		t.Errorf("traffic %+v", rep.Traffic)
	}
	if !rep.From.Equal(t0) || !rep.To.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("period %s..%s", rep.From, rep.To)
	}
	// Rates (openIncident records one more interaction per incident): base 1
	// confirmed of 6 answered; cand-a 1 of 13, all and per category.
	if got := strings.Join(calls, " "); got != "1/6 1/6 1/13 1/13" {
		t.Errorf("interval calls %q", got)
	}
	if r := rep.Rates[2]; r.Model != "cand-a" || r.Category != "*" || r.Rate != 1.0/13 || r.Lower != 0.01 || r.Upper != 0.2 {
		t.Errorf("rate %+v", r)
	}
	totals := rep.IncidentTotals("status")
	if len(totals) != 3 || totals[0].Status != StatusConfirmed || totals[0].Count != 2 {
		t.Errorf("status totals %+v", totals)
	}
	crit, high, med := rep.ReviewTimes[0], rep.ReviewTimes[1], rep.ReviewTimes[2]
	if crit.Severity != "critical" || crit.Decided != 1 || crit.OnTime != 1 || crit.MedianHours != 2 {
		t.Errorf("critical review times %+v", crit)
	}
	if high.Decided != 1 || high.OnTime != 1 || med.Decided != 1 || med.Late != 1 || med.MedianHours != 102 {
		t.Errorf("high %+v medium %+v", high, med)
	}
	if rep.ReportDeadlines.Serious != 1 || rep.ReportDeadlines.Pending != 1 {
		t.Errorf("art 73 deadlines %+v", rep.ReportDeadlines)
	}
	if len(rep.PolicyRevisions) != 3 || rep.PolicyRevisions[2].Revision != "rev-b" || rep.PolicyRevisions[2].Interactions != 6 {
		t.Errorf("policy revisions %+v", rep.PolicyRevisions)
	}
	if !rep.Audit.OK || !rep.Audit.LegalHold || rep.Audit.TrialEntries < 7 || rep.Audit.RetentionDays != DefaultRetentionDays {
		t.Errorf("audit %+v", rep.Audit)
	}
	if len(rep.Drafts) != 1 {
		t.Fatalf("drafts %+v", rep.Drafts)
	}
	d := rep.Drafts[0]
	if d.IncidentID != serious.ID || d.Harm != HarmDeath || d.Deadline.Due != t0.Add(10*24*time.Hour) || d.Provider != "Acme Health" ||
		!strings.Contains(d.Description, "unsafe_advice") || len(d.Evidence) != 1 || len(d.CorrectiveActions) != 2 || d.ConfirmedBy != "rita" {
		t.Errorf("draft %+v", d)
	}

	var js bytes.Buffer
	if err := rep.Write(&js, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Schema != ReportSchema || len(back.Drafts) != 1 {
		t.Errorf("json round trip: %v", err)
	}
	var cs bytes.Buffer
	if err := rep.Write(&cs, FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&cs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if len(r) != 6 {
			t.Fatalf("csv row %v", r)
		}
		if r[0] == "art73_draft" && r[1] == serious.ID && r[4] == "harm" && r[5] == HarmDeath {
			found = true
		}
	}
	if !found {
		t.Error("csv lacks the draft")
	}
	var h bytes.Buffer
	if err := rep.Write(&h, FormatHTML); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Clinic pilot", "Art. 73(4)", "under legal hold", "kill switch", "rev-a"} {
		if !strings.Contains(h.String(), want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if err := rep.Write(&h, "pdf"); !errors.Is(err, ErrInvalid) {
		t.Errorf("pdf: %v", err)
	}
	if _, err := s.TrialReport(ctx, ReportOptions{Trial: "t1"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no interval: %v", err)
	}
}

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		q    float64
		want float64
	}{{nil, 0.5, 0}, {[]float64{3}, 0.9, 3}, {[]float64{4, 1, 2, 3}, 0.5, 2.5}, {[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9.1}} {
		if got := quantile(tc.xs, tc.q); abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(%v, %v) = %v, want %v", tc.xs, tc.q, got, tc.want)
		}
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestRatePoints(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "rp.db"), clk)
	ctx := context.Background()
	openIncident(t, s, "a", "t1", "cand", "pii", events.SeverityLow, t0) // interaction at t0, incident at t0
	clk.Advance(25 * time.Hour)
	inc := openIncident(t, s, "b", "t1", "cand", "pii", events.SeverityHigh, t0.Add(25*time.Hour))
	act(t, s, inc.ID, Action{Kind: ActionClaim, Actor: "r"})
	act(t, s, inc.ID, Action{Kind: ActionConfirm, Actor: "r", Severity: "high", Category: "pii", Reason: "x"})
	pts, err := s.RatePoints(ctx, "t1", t0, t0.Add(72*time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 3 || pts[0].Interactions != 1 || pts[0].Incidents != 1 || pts[0].Confirmed != 0 ||
		pts[1].Interactions != 1 || pts[1].Confirmed != 1 || pts[2].Incidents != 0 || !pts[1].Start.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("points %+v", pts)
	}
	if _, err := s.RatePoints(ctx, "t1", t0, t0.Add(1000*time.Hour), time.Hour); !errors.Is(err, ErrInvalid) {
		t.Errorf("too many buckets: %v", err)
	}
}
