package incidents

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

func act(t *testing.T, s *SQLiteStore, id string, a Action) *Incident {
	t.Helper()
	inc, err := s.Act(context.Background(), id, a)
	if err != nil {
		t.Fatalf("%s by %s: %v", a.Kind, a.Actor, err)
	}
	return inc
}

func TestWorkflowLifecycle(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "w.db"), clk)
	ctx := context.Background()
	inc := openIncident(t, s, "i1", "t1", "cand", "pii", events.SeverityHigh, t0)

	steps := []struct {
		name    string
		a       Action
		wantErr error
		want    string // status/severity/category/assignee after
	}{
		{"decide before claim", Action{Kind: ActionConfirm, Actor: "rita", Severity: "high", Category: "pii", Reason: "x"}, ErrTransition, "open/high/pii/"},
		{"claim", Action{Kind: ActionClaim, Actor: "rita"}, nil, "in_review/high/pii/rita"},
		{"someone else claims", Action{Kind: ActionClaim, Actor: "sam"}, ErrConflict, "in_review/high/pii/rita"},
		{"confirm without category", Action{Kind: ActionConfirm, Actor: "rita", Severity: "high", Reason: "x"}, ErrInvalid, "in_review/high/pii/rita"},
		{"confirm without reason", Action{Kind: ActionConfirm, Actor: "rita", Severity: "high", Category: "pii"}, ErrInvalid, "in_review/high/pii/rita"},
		{"confirm", Action{Kind: ActionConfirm, Actor: "rita", Severity: "critical", Category: "pii", Harm: HarmSerious, Reason: "real card number"}, nil, "confirmed/critical/pii/rita"},
		{"escalate a decided incident", Action{Kind: ActionEscalate, Actor: "rita", Reason: "x"}, ErrTransition, "confirmed/critical/pii/rita"},
		{"reopen", Action{Kind: ActionReopen, Actor: "reg", Reason: "second look"}, nil, "in_review/critical/pii/reg"},
		{"escalate", Action{Kind: ActionEscalate, Actor: "reg", Reason: "policy question"}, nil, "escalated/critical/pii/reg"},
		{"dismiss the escalated incident", Action{Kind: ActionDismiss, Actor: "reg", Reason: "test data", Category: "slo"}, nil, "dismissed/critical/slo/reg"},
		{"release a dismissed incident", Action{Kind: ActionRelease, Actor: "reg"}, ErrTransition, "dismissed/critical/slo/reg"},
		{"unknown action", Action{Kind: "delete", Actor: "reg", Reason: "x"}, ErrInvalid, "dismissed/critical/slo/reg"},
	}
	for _, st := range steps {
		clk.Advance(time.Minute)
		_, err := s.Act(ctx, inc.ID, st.a)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", st.name, err, st.wantErr)
		}
		got, err := s.Incident(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		wf, err := s.IncidentWorkflow(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s := got.Status + "/" + got.Severity + "/" + got.Category + "/" + wf.Assignee; s != st.want {
			t.Fatalf("%s: incident is %s, want %s", st.name, s, st.want)
		}
	}
	h, err := s.IncidentHistory(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, a := range h.Activity {
		kinds = append(kinds, a.Kind+":"+a.Actor)
	}
	if want := []string{"claim:rita", "confirm:rita", "reopen:reg", "escalate:reg", "dismiss:reg"}; !slices.Equal(kinds, want) {
		t.Errorf("activity %v, want %v", kinds, want)
	}
	if a := h.Activity[1]; a.FromStatus != StatusInReview || a.ToStatus != StatusConfirmed || a.FromSeverity != "high" ||
		a.ToSeverity != "critical" || a.Reason != "real card number" || !a.At.Equal(t0.Add(6*time.Minute)) {
		t.Errorf("confirm activity = %+v", a)
	}
	// The first verdict is kept for agreement statistics; later ones are not rounds.
	if len(h.Reviews) != 1 || h.Reviews[0].Reviewer != "rita" || h.Reviews[0].Status != StatusConfirmed {
		t.Errorf("reviews = %+v", h.Reviews)
	}
	// The colleague's ReviewEvents still lists every recorded change.
	evs, err := s.ReviewEvents(ctx, inc.ID)
	if err != nil || len(evs) != 5 {
		t.Fatalf("ReviewEvents: %d, %v", len(evs), err)
	}
	// Every step is in the audit trail with its reason.
	entries, err := s.AuditEntries(ctx, AuditFilter{Trial: "t1", ActionPrefix: "incident."})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 || entries[0].Action != "incident.dismiss" || entries[0].Reason != "test data" || entries[0].Actor != "reg" {
		t.Fatalf("audit entries: %d, newest %+v", len(entries), entries[0])
	}
	if _, err := s.Act(ctx, "inc_missing", Action{Kind: ActionClaim, Actor: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing incident: %v", err)
	}
}

func TestActionTransitions(t *testing.T) {
	// From every status, which actions are possible (the store's state machine).
	kinds := []string{ActionClaim, ActionAssign, ActionRelease, ActionConfirm, ActionDismiss, ActionEscalate, ActionReopen}
	want := map[string]string{ // status → allowed kinds
		StatusOpen:      "claim assign escalate",
		StatusInReview:  "claim assign release confirm dismiss escalate",
		StatusEscalated: "assign confirm dismiss",
		StatusConfirmed: "reopen",
		StatusDismissed: "reopen",
	}
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "m.db"), clk)
	ctx := context.Background()
	n := 0
	for status, allowed := range want {
		for _, kind := range kinds {
			n++
			inc := openIncident(t, s, fmt.Sprintf("m%d", n), "t1", "cand", "pii", events.SeverityMedium, t0)
			// Bring the incident to status through the old Review API.
			if status != StatusOpen {
				if _, err := s.Review(ctx, inc.ID, Verdict{Status: status, Actor: "setup"}); err != nil {
					t.Fatal(err)
				}
			}
			a := Action{Kind: kind, Actor: "setup", Reason: "r", Assignee: "bob"}
			if kind == ActionConfirm {
				a.Severity, a.Category = "low", "pii"
			}
			_, err := s.Act(ctx, inc.ID, a)
			ok := slices.Contains(strings.Fields(allowed), kind)
			if ok && err != nil {
				t.Errorf("%s from %s: %v, want allowed", kind, status, err)
			}
			if !ok && !errors.Is(err, ErrTransition) {
				t.Errorf("%s from %s: %v, want ErrTransition", kind, status, err)
			}
		}
	}
}

func TestDeadlines(t *testing.T) {
	r := TrialRules{}.WithDefaults()
	day := 24 * time.Hour
	for _, tc := range []struct {
		name             string
		status, sev      string
		harm             string
		wantReview       time.Duration
		wantReport       time.Duration // 0: not serious
		wantReportPrefix string
	}{
		{"critical: 4 h target, potentially serious", StatusOpen, "critical", "", 4 * time.Hour, 15 * day, "Art. 73(2): potentially"},
		{"high: 24 h", StatusInReview, "high", "", 24 * time.Hour, 15 * day, "Art. 73(2)"},
		{"medium is not serious by default", StatusOpen, "medium", "", 72 * time.Hour, 0, ""},
		{"low: a week", StatusOpen, "low", "", 168 * time.Hour, 0, ""},
		{"death: 10 days", StatusConfirmed, "critical", HarmDeath, 4 * time.Hour, 10 * day, "Art. 73(4)"},
		{"widespread: 2 days", StatusConfirmed, "high", HarmWidespread, 24 * time.Hour, 2 * day, "Art. 73(3)"},
		{"critical infrastructure: 2 days", StatusConfirmed, "medium", HarmCriticalInfrastructure, 72 * time.Hour, 2 * day, "Art. 73(3)"},
		{"assessed not serious", StatusConfirmed, "critical", HarmNone, 4 * time.Hour, 0, ""},
		{"dismissed is never serious", StatusDismissed, "critical", "", 4 * time.Hour, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			review, report := r.Deadlines(t0, tc.status, tc.sev, tc.harm, t0.Add(time.Hour), time.Time{})
			if got := review.Due.Sub(t0); got != tc.wantReview {
				t.Errorf("review window %s, want %s", got, tc.wantReview)
			}
			if resolved(tc.status) != !review.Done.IsZero() {
				t.Errorf("review done %v for status %s", review.Done, tc.status)
			}
			if tc.wantReport == 0 {
				if report != nil {
					t.Errorf("report deadline %+v, want none", report)
				}
				return
			}
			if report == nil || report.Due.Sub(t0) != tc.wantReport || !strings.HasPrefix(report.Basis, tc.wantReportPrefix) {
				t.Fatalf("report deadline %+v, want %s (%s)", report, tc.wantReport, tc.wantReportPrefix)
			}
		})
	}
	// Warnings at 50 % and 80 % of a 4 h window.
	d := Deadline{Start: t0, Due: t0.Add(4 * time.Hour)}
	for _, tc := range []struct {
		at   time.Duration
		want string
	}{
		{0, DeadlineOK}, {119 * time.Minute, DeadlineOK}, {2 * time.Hour, DeadlineWarning}, {191 * time.Minute, DeadlineWarning},
		{192 * time.Minute, DeadlineUrgent}, {4 * time.Hour, DeadlineOverdue},
	} {
		if got := d.State(t0.Add(tc.at)); got != tc.want {
			t.Errorf("at +%s: %s, want %s", tc.at, got, tc.want)
		}
	}
	if got := (Deadline{Start: t0, Due: t0.Add(time.Hour), Done: t0.Add(2 * time.Hour)}).State(t0); got != DeadlineMissed {
		t.Errorf("done late: %s", got)
	}
}

func TestTrialRulesValidate(t *testing.T) {
	err := TrialRules{ReviewTargetHours: map[string]int{"huge": 1, "low": -1}, ReportDaysSerious: 20, ReportDaysDeath: 11,
		ReportDaysWidespread: 3, SeriousSeverity: "bad", SecondReviewShare: 2, RetentionDays: -1}.Validate()
	for _, want := range []string{"huge", "low", "report_days_serious", "report_days_death", "report_days_widespread", "serious_severity", "second_review_share", "retention_days"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not mention %s", err, want)
		}
	}
	if err := (TrialRules{ReviewTargetHours: map[string]int{"critical": 1}, ReportDaysSerious: 5}).Validate(); err != nil {
		t.Errorf("valid rules: %v", err)
	}
}

func TestQueueDeadlinesWithClock(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "q.db"), clk)
	ctx := context.Background()
	crit := openIncident(t, s, "c", "t1", "cand", "pii", events.SeverityCritical, t0)
	high := openIncident(t, s, "h", "t1", "cand", "pii", events.SeverityHigh, t0)
	low := openIncident(t, s, "l", "t1", "cand", "toxicity", events.SeverityLow, t0)
	other := openIncident(t, s, "o", "t2", "cand", "pii", events.SeverityCritical, t0)
	all := Scope{All: true}

	ids := func(q *Queue) []string {
		var out []string
		for _, it := range q.Items {
			out = append(out, it.ID)
		}
		return out
	}
	queue := func(f QueueFilter) *Queue {
		t.Helper()
		q, err := s.Queue(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	// Nearest deadline first: the critical ones (4 h), then high (24 h), then low.
	if got, want := ids(queue(QueueFilter{Scope: all})), []string{crit.ID, other.ID, high.ID, low.ID}; !slices.Equal(got, want) && !slices.Equal(got, []string{other.ID, crit.ID, high.ID, low.ID}) {
		t.Errorf("deadline order %v", got)
	}
	clk.Advance(2 * time.Hour) // critical at 50 %
	q := queue(QueueFilter{Scope: all, Trial: "t1", Deadline: DeadlineFilterWarning})
	if got := ids(q); !slices.Equal(got, []string{crit.ID}) {
		t.Errorf("warning at +2h: %v", got)
	}
	if st := q.Items[0].Workflow.Review.State(q.Now); st != DeadlineWarning {
		t.Errorf("state %s", st)
	}
	clk.Advance(72 * time.Minute) // 3h12m: critical at 80 %
	if got := ids(queue(QueueFilter{Scope: all, Trial: "t1", Deadline: DeadlineFilterUrgent})); !slices.Equal(got, []string{crit.ID}) {
		t.Errorf("urgent at +3h12m: %v", got)
	}
	clk.Advance(48 * time.Minute) // 4h: critical overdue
	q = queue(QueueFilter{Scope: all, Deadline: DeadlineFilterOverdue, Sort: SortNewest})
	if got := ids(q); len(got) != 2 || !slices.Contains(got, crit.ID) || !slices.Contains(got, other.ID) {
		t.Errorf("overdue at +4h: %v", got)
	}
	if q.Counts.Overdue != 2 || q.Total != 2 || q.Counts.Status[StatusOpen] != 4 || q.Counts.Severity["critical"] != 2 {
		t.Errorf("counts %+v total %d", q.Counts, q.Total)
	}
	// Deciding the critical incident stops its review clock; its Art. 73 clock
	// still runs (15 days), so it leaves the overdue filter.
	act(t, s, crit.ID, Action{Kind: ActionClaim, Actor: "rita"})
	act(t, s, crit.ID, Action{Kind: ActionConfirm, Actor: "rita", Severity: "critical", Category: "pii", Reason: "card"})
	q = queue(QueueFilter{Scope: all, Trial: "t1", Deadline: DeadlineFilterOverdue})
	if q.Total != 0 {
		t.Errorf("after decision: %v overdue", ids(q))
	}
	wf, err := s.IncidentWorkflow(ctx, crit.ID)
	if err != nil {
		t.Fatal(err)
	}
	if wf.Review.State(clk.Now()) != DeadlineMissed || wf.Report == nil || wf.Next() != wf.Report {
		t.Errorf("workflow after late decision: review %s, report %+v", wf.Review.State(clk.Now()), wf.Report)
	}
	// Filters, scope and sort.
	for _, tc := range []struct {
		name string
		f    QueueFilter
		want []string
	}{
		{"scope t2 only", QueueFilter{Scope: Scope{Trials: []string{"t2"}}}, []string{other.ID}},
		{"empty scope sees nothing", QueueFilter{}, nil},
		{"severity", QueueFilter{Scope: all, Severity: "low"}, []string{low.ID}},
		{"category", QueueFilter{Scope: all, Category: "toxicity"}, []string{low.ID}},
		{"status", QueueFilter{Scope: all, Status: StatusConfirmed}, []string{crit.ID}},
		{"assignee", QueueFilter{Scope: all, Assignee: "rita"}, []string{crit.ID}},
		{"scope and trial filter outside it", QueueFilter{Scope: Scope{Trials: []string{"t2"}}, Trial: "t1"}, nil},
		{"severity sort", QueueFilter{Scope: Scope{Trials: []string{"t1"}}, Sort: SortSeverity, Status: StatusOpen}, []string{high.ID, low.ID}},
	} {
		if got := ids(queue(tc.f)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := s.Queue(ctx, QueueFilter{Scope: all, Deadline: "soon", Sort: "random", Status: "gone"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad filter: %v", err)
	}
}

func TestRulesChangeAndReviewRecompute(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "r.db"), clk)
	ctx := context.Background()
	inc := openIncident(t, s, "i", "t1", "cand", "pii", events.SeverityMedium, t0)
	wf, err := s.IncidentWorkflow(ctx, inc.ID)
	if err != nil || wf.Review.Due != t0.Add(72*time.Hour) || wf.Serious {
		t.Fatalf("default: %+v, %v", wf, err)
	}
	if err := s.SetTrialRules(ctx, "t1", TrialRules{ReviewTargetHours: map[string]int{"medium": 8}, SeriousSeverity: "medium"}, "reg", "tighter"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(9 * time.Hour)
	q, err := s.Queue(ctx, QueueFilter{Scope: Scope{All: true}, Deadline: DeadlineFilterOverdue})
	if err != nil || q.Total != 1 || !q.Items[0].Workflow.Serious {
		t.Fatalf("after rules change: %+v, %v", q, err)
	}
	// A verdict through the older Review API is noticed: the review is done.
	if _, err := s.Review(ctx, inc.ID, Verdict{Status: StatusDismissed, Actor: "sam", Reason: "noise"}); err != nil {
		t.Fatal(err)
	}
	q, err = s.Queue(ctx, QueueFilter{Scope: Scope{All: true}})
	if err != nil {
		t.Fatal(err)
	}
	w := q.Items[0].Workflow
	if w.DecidedBy != "sam" || w.Review.State(clk.Now()) != DeadlineMissed || w.Next() != nil {
		t.Errorf("after Review: %+v", w)
	}
	if err := s.SetTrialRules(ctx, "t1", TrialRules{SecondReviewShare: 3}, "reg", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid rules: %v", err)
	}
}

func TestSecondReviewAndAgreement(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "k.db"), clk)
	ctx := context.Background()
	if err := s.SetTrialRules(ctx, "t1", TrialRules{SecondReviewShare: 1}, "reg", "sample everything"); err != nil {
		t.Fatal(err)
	}
	// Four pii incidents: the second reviewer agrees on three.
	verdicts := []struct{ first, second string }{
		{ActionConfirm, StatusConfirmed}, {ActionConfirm, StatusDismissed}, {ActionDismiss, StatusDismissed}, {ActionConfirm, StatusConfirmed},
	}
	for i, v := range verdicts {
		inc := openIncident(t, s, fmt.Sprintf("k%d", i), "t1", "cand", "pii", events.SeverityHigh, t0)
		act(t, s, inc.ID, Action{Kind: ActionClaim, Actor: "rita"})
		a := Action{Kind: v.first, Actor: "rita", Reason: "first"}
		if v.first == ActionConfirm {
			a.Severity, a.Category = "high", "pii"
		}
		act(t, s, inc.ID, a)
		wf, err := s.IncidentWorkflow(ctx, inc.ID)
		if err != nil || wf.SecondReview != SecondReviewPending {
			t.Fatalf("second review state %q, %v", wf.SecondReview, err)
		}
		if _, err := s.Act(ctx, inc.ID, Action{Kind: ActionSecondReview, Actor: "rita", Status: v.second, Reason: "again"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("self second review: %v", err)
		}
		after := act(t, s, inc.ID, Action{Kind: ActionSecondReview, Actor: "sam", Status: v.second, Reason: "independent"})
		wf, _ = s.IncidentWorkflow(ctx, inc.ID)
		disagree := slices.Contains(wf.Labels, LabelDisagreement)
		firstStatus := map[string]string{ActionConfirm: StatusConfirmed, ActionDismiss: StatusDismissed}[v.first]
		if disagree != (firstStatus != v.second) || wf.SecondReview != SecondReviewDone || after.Status != firstStatus {
			t.Errorf("incident %d: labels %v, second %q, status %s", i, wf.Labels, wf.SecondReview, after.Status)
		}
		if _, err := s.Act(ctx, inc.ID, Action{Kind: ActionSecondReview, Actor: "tom", Status: v.second, Reason: "x"}); !errors.Is(err, ErrTransition) {
			t.Errorf("third review: %v", err)
		}
	}
	ag, err := s.Agreement(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	// Pairs (c,c) (c,d) (d,d) (c,c): po = 3/4; A: c 3/4 d 1/4; B: c 2/4 d 2/4;
	// pe = 3/8 + 1/8 = 1/2; kappa = (0.75 − 0.5)/0.5 = 0.5.
	if len(ag) != 2 || ag[0].Category != "*" || ag[1].Category != "pii" || ag[1].N != 4 || math.Abs(ag[1].Value-0.5) > 1e-12 {
		t.Fatalf("agreement %+v", ag)
	}
}

func TestCohenKappaKnownValues(t *testing.T) {
	// pairs builds a 2×2 table: yy, yn (A yes, B no), ny, nn.
	pairs := func(yy, yn, ny, nn int) [][2]string {
		var p [][2]string
		for range yy {
			p = append(p, [2]string{"yes", "yes"})
		}
		for range yn {
			p = append(p, [2]string{"yes", "no"})
		}
		for range ny {
			p = append(p, [2]string{"no", "yes"})
		}
		for range nn {
			p = append(p, [2]string{"no", "no"})
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		pairs   [][2]string
		want    float64
		defined bool
	}{
		// The textbook example (Wikipedia, "Cohen's kappa"): 50 items, 20 yes/yes,
		// 5 yes/no, 10 no/yes, 15 no/no: po = 0.7, pe = 0.5, kappa = 0.4.
		{"textbook 0.4", pairs(20, 5, 10, 15), 0.4, true},
		// Its second example: 45/15/25/15: po = 0.6, pe = 0.54, kappa = 0.1304.
		{"textbook 0.1304", pairs(45, 15, 25, 15), 0.06 / 0.46, true},
		{"perfect", pairs(3, 0, 0, 2), 1, true},
		{"systematic disagreement", pairs(0, 5, 5, 0), -1, true},
		{"one label throughout: undefined", pairs(4, 0, 0, 0), 0, false},
		{"no pairs", nil, 0, false},
		// Three labels, by hand: po = 4/6; A: a 2, b 2, c 2; B: a 2, b 3, c 1;
		// pe = (2·2 + 2·3 + 2·1)/36 = 1/3; kappa = (2/3 − 1/3)/(2/3) = 0.5.
		{"three labels", [][2]string{{"a", "a"}, {"a", "b"}, {"b", "b"}, {"c", "c"}, {"c", "a"}, {"b", "b"}}, 0.5, true},
	} {
		k := CohenKappa(tc.pairs)
		if k.Defined != tc.defined || (tc.defined && math.Abs(k.Value-tc.want) > 1e-9) {
			t.Errorf("%s: kappa %v (defined %v), want %v (%v)", tc.name, k.Value, k.Defined, tc.want, tc.defined)
		}
	}
}

func TestSampledShare(t *testing.T) {
	n := 0
	for i := range 10000 {
		if sampled(fmt.Sprintf("inc_%d", i), 0.1) {
			n++
		}
	}
	if n < 850 || n > 1150 {
		t.Errorf("share 0.1 sampled %d of 10000", n)
	}
	if sampled("x", 0) || !sampled("x", 1) {
		t.Error("share 0 or 1")
	}
	if sampled("inc_1", 0.3) != sampled("inc_1", 0.3) {
		t.Error("not deterministic")
	}
}

func TestCommentsAndLabels(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "c.db"), clk)
	ctx := context.Background()
	inc := openIncident(t, s, "i", "t1", "cand", "pii", events.SeverityLow, t0)
	if _, err := s.Comment(ctx, inc.ID, "rita", "looks like a test card 4111…"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Comment(ctx, inc.ID, "rita", "  "); !errors.Is(err, ErrInvalid) {
		t.Errorf("blank comment: %v", err)
	}
	if _, err := s.Comment(ctx, "inc_nope", "rita", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing incident: %v", err)
	}
	labels, err := s.SetLabels(ctx, inc.ID, "rita", []string{"test-data", "card"}, nil)
	if err != nil || !slices.Equal(labels, []string{"card", "test-data"}) {
		t.Fatalf("labels %v, %v", labels, err)
	}
	if labels, err = s.SetLabels(ctx, inc.ID, "rita", nil, []string{"card"}); err != nil || !slices.Equal(labels, []string{"test-data"}) {
		t.Fatalf("labels %v, %v", labels, err)
	}
	if _, err := s.SetLabels(ctx, inc.ID, "rita", []string{"has space"}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad label: %v", err)
	}
	h, err := s.IncidentHistory(ctx, inc.ID)
	if err != nil || len(h.Comments) != 1 || h.Comments[0].Author != "rita" || len(h.Activity) != 2 || h.Activity[0].Reason != "added test-data, card" {
		t.Fatalf("history %+v, %v", h, err)
	}
}
