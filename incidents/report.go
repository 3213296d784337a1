package incidents

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stagegate/stagegate/events"
)

// The trial report is what a regulator reads at the end of (or during) a trial:
// traffic by stage and model, incidents by category, severity and verdict,
// confirmed-incident rates with confidence intervals, review times against
// deadlines, reviewer agreement, rollout history, policy revisions, the audit
// chain's status, and an Art. 73-style initial report draft for every confirmed
// serious incident. TrialReport gathers it; report_render.go writes it as JSON,
// CSV or HTML.

// ReportSchema versions the report's JSON.
const ReportSchema = "stagegate.report.v1"

// ReportOptions are what the store does not know about a trial.
type ReportOptions struct {
	// Trial is the trial id.
	Trial string
	// Interval returns the confidence interval of k events in n (required; the
	// rollout gates' Wilson interval, deploy.Wilson, at Confidence).
	Interval func(k, n int64) (lower, upper float64)
	// Confidence labels the intervals (e.g. 0.95).
	Confidence float64
	// Title, Sponsor and Regulator (with contacts) from the trial definition.
	Title, Sponsor, SponsorContact, Regulator, RegulatorContact string
	// Rollout is the trial's rollout state and history, when a controller runs.
	Rollout *RolloutSummary
}

// RolloutSummary is the rollout part of a report.
type RolloutSummary struct {
	Candidate string         `json:"candidate"`
	Baseline  string         `json:"baseline"`
	Stage     string         `json:"stage"`
	Status    string         `json:"status"`
	Message   string         `json:"message,omitempty"`
	History   []RolloutEvent `json:"history"`
}

// RolloutEvent is one rollout transition.
type RolloutEvent struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Cause  string    `json:"cause"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason,omitempty"`
}

// TrafficRow counts interactions of one stage and model by outcome.
type TrafficRow struct {
	Stage        string `json:"stage"`
	Model        string `json:"model"`
	Interactions int64  `json:"interactions"`
	Answered     int64  `json:"answered"` // ok or partial
	Denied       int64  `json:"denied"`
	Errors       int64  `json:"errors"` // upstream errors and clients gone
}

// IncidentCount counts incidents of one category, severity and status.
type IncidentCount struct {
	Category string `json:"category"`
	Severity string `json:"severity"`
	Status   string `json:"status"`
	Count    int64  `json:"count"`
}

// RateRow is one model's confirmed-incident rate (of a category, or "*" for
// all) among its answered interactions, with its confidence interval.
type RateRow struct {
	Model        string  `json:"model"`
	Category     string  `json:"category"`
	Confirmed    int64   `json:"confirmed"`
	Interactions int64   `json:"interactions"`
	Rate         float64 `json:"rate"`
	Lower        float64 `json:"lower"`
	Upper        float64 `json:"upper"`
}

// ReviewTimeRow summarises review times of one severity against its target.
type ReviewTimeRow struct {
	Severity    string  `json:"severity"`
	TargetHours int     `json:"target_hours"`
	Decided     int     `json:"decided"`
	OnTime      int     `json:"on_time"`
	Late        int     `json:"late"`
	MedianHours float64 `json:"median_hours"`
	P90Hours    float64 `json:"p90_hours"`
	// Pending are undecided; Overdue of them are past the target.
	Pending int `json:"pending"`
	Overdue int `json:"overdue"`
}

// ReportDeadlines summarises the Art. 73 reporting of serious incidents.
type ReportDeadlines struct {
	Serious int `json:"serious"`
	FiledOn int `json:"filed_on_time"`
	Late    int `json:"filed_late"`
	Pending int `json:"pending"`
	Overdue int `json:"overdue"`
}

// PolicyRevisionRow is one policy revision seen in the trial's traffic.
type PolicyRevisionRow struct {
	Revision     string    `json:"revision"`
	Interactions int64     `json:"interactions"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
}

// AuditStatus is the audit part of a report.
type AuditStatus struct {
	AuditVerification
	// TrialEntries is how many entries the trial has; LegalHold whether a hold
	// covers it.
	TrialEntries int64 `json:"trial_entries"`
	LegalHold    bool  `json:"legal_hold"`
	// RetentionDays is the trial's audit retention.
	RetentionDays int `json:"retention_days"`
}

// Art73Draft is an initial report of a serious incident, in the order of the
// information Art. 73 and the Commission's reporting template ask for. It is
// a draft for the provider to complete and send, not a filing.
type Art73Draft struct {
	IncidentID    string `json:"incident_id"`
	InteractionID string `json:"interaction_id"`
	ReportType    string `json:"report_type"`
	// Provider and authority.
	Provider         string `json:"provider"`
	ProviderContact  string `json:"provider_contact,omitempty"`
	Authority        string `json:"authority"`
	AuthorityContact string `json:"authority_contact,omitempty"`
	// The AI system: the trial and the model that served the interaction.
	AISystem string `json:"ai_system"`
	Model    string `json:"model"`
	// When it happened and when the provider became aware (the clock's start).
	OccurredAt time.Time `json:"occurred_at"`
	AwareAt    time.Time `json:"aware_at"`
	Deadline   Deadline  `json:"deadline"`
	// What: classification and description.
	Harm        string    `json:"harm"`
	HarmText    string    `json:"harm_text"`
	Severity    string    `json:"severity"`
	Category    string    `json:"category"`
	Description string    `json:"description"`
	Evidence    []string  `json:"evidence"`
	ConfirmedBy string    `json:"confirmed_by"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	// CorrectiveActions taken so far.
	CorrectiveActions []string `json:"corrective_actions"`
	Filed             bool     `json:"filed"`
	Note              string   `json:"note"`
}

// Report is a trial report.
type Report struct {
	Schema      string    `json:"schema"`
	Trial       string    `json:"trial"`
	Title       string    `json:"title,omitempty"`
	Sponsor     string    `json:"sponsor,omitempty"`
	Regulator   string    `json:"regulator,omitempty"`
	GeneratedAt time.Time `json:"generated_at"`
	// From and To bound the trial's recorded traffic.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`

	Traffic         []TrafficRow        `json:"traffic"`
	Incidents       []IncidentCount     `json:"incidents"`
	Confidence      float64             `json:"confidence"`
	Rates           []RateRow           `json:"rates"`
	ReviewTimes     []ReviewTimeRow     `json:"review_times"`
	ReportDeadlines ReportDeadlines     `json:"report_deadlines"`
	Agreement       []CategoryAgreement `json:"agreement"`
	Rollout         *RolloutSummary     `json:"rollout,omitempty"`
	PolicyRevisions []PolicyRevisionRow `json:"policy_revisions"`
	TrialRevisions  []TrialRevision     `json:"trial_revisions"`
	Audit           AuditStatus         `json:"audit"`
	Drafts          []Art73Draft        `json:"art73_drafts"`
}

// IncidentTotals sums Incidents by one dimension ("category", "severity" or
// "status"), sorted by key.
func (r *Report) IncidentTotals(by string) []IncidentCount {
	sums := map[string]int64{}
	for _, c := range r.Incidents {
		k := map[string]string{"category": c.Category, "severity": c.Severity, "status": c.Status}[by]
		sums[k] += c.Count
	}
	out := make([]IncidentCount, 0, len(sums))
	for k, n := range sums {
		c := IncidentCount{Count: n}
		switch by {
		case "category":
			c.Category = k
		case "severity":
			c.Severity = k
		default:
			c.Status = k
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Category+out[i].Severity+out[i].Status < out[j].Category+out[j].Severity+out[j].Status
	})
	return out
}

// jsonText renders the SQL expression reading a text field of a JSON column at
// a path of keys (constants, never user input), per dialect.
func (d dialect) jsonText(col string, keys ...string) string {
	if d.numbered { // PostgreSQL
		expr := col + "::jsonb"
		for i, k := range keys {
			op := " -> "
			if i == len(keys)-1 {
				op = " ->> "
			}
			expr += op + "'" + k + "'"
		}
		return "COALESCE((" + expr + "), '')"
	}
	return "COALESCE(json_extract(" + col + ", '$." + strings.Join(keys, ".") + "'), '')"
}

// TrialReport gathers the report of one trial.
func (s *sqlStore) TrialReport(ctx context.Context, o ReportOptions) (*Report, error) {
	if !events.ValidToken(o.Trial) {
		return nil, fmt.Errorf("%w: trial %q", ErrInvalid, o.Trial)
	}
	if o.Interval == nil {
		return nil, fmt.Errorf("%w: report needs a confidence interval function", ErrInvalid)
	}
	if err := s.syncWorkflows(ctx); err != nil {
		return nil, err
	}
	r := &Report{Schema: ReportSchema, Trial: o.Trial, Title: o.Title, Sponsor: o.Sponsor, Regulator: o.Regulator,
		GeneratedAt: s.clk.Now().UTC(), Confidence: o.Confidence, Rollout: o.Rollout,
		Traffic: []TrafficRow{}, Incidents: []IncidentCount{}, Rates: []RateRow{}, ReviewTimes: []ReviewTimeRow{},
		PolicyRevisions: []PolicyRevisionRow{}, Drafts: []Art73Draft{}}
	rules, err := s.trialRules(ctx, s.db, o.Trial)
	if err != nil {
		return nil, err
	}
	steps := []func(context.Context, *Report, ReportOptions, TrialRules) error{
		s.reportTraffic, s.reportIncidents, s.reportRates, s.reportReviewTimes, s.reportPolicies, s.reportAudit, s.reportDrafts,
	}
	for _, step := range steps {
		if err := step(ctx, r, o, rules); err != nil {
			return nil, err
		}
	}
	if r.Agreement, err = s.Agreement(ctx, o.Trial); err != nil {
		return nil, err
	}
	if r.TrialRevisions, err = s.TrialRevisions(ctx, o.Trial); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *sqlStore) reportTraffic(ctx context.Context, r *Report, o ReportOptions, _ TrialRules) error {
	d := s.st.d
	stage := d.jsonText("payload", "stage")
	rows, err := s.db.QueryContext(ctx, d.bind(`SELECT `+stage+`, model, status, COUNT(*), MIN(started_at), MAX(started_at)
		FROM interactions WHERE trial = ? GROUP BY `+stage+`, model, status`), o.Trial)
	if err != nil {
		return fmt.Errorf("report traffic: %w", err)
	}
	defer rows.Close()
	byKey := map[[2]string]*TrafficRow{}
	var first, last int64
	for rows.Next() {
		var (
			stg, model, status string
			n, lo, hi          int64
		)
		if err := rows.Scan(&stg, &model, &status, &n, &lo, &hi); err != nil {
			return fmt.Errorf("report traffic: %w", err)
		}
		if first == 0 || lo < first {
			first = lo
		}
		last = max(last, hi)
		k := [2]string{stg, model}
		t := byKey[k]
		if t == nil {
			t = &TrafficRow{Stage: stg, Model: model}
			byKey[k] = t
		}
		t.Interactions += n
		switch status {
		case events.StatusOK, events.StatusPartial:
			t.Answered += n
		case events.StatusDenied:
			t.Denied += n
		default:
			t.Errors += n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("report traffic: %w", err)
	}
	for _, t := range byKey {
		r.Traffic = append(r.Traffic, *t)
	}
	sort.Slice(r.Traffic, func(i, j int) bool {
		a, b := r.Traffic[i], r.Traffic[j]
		return a.Stage < b.Stage || (a.Stage == b.Stage && a.Model < b.Model)
	})
	r.From, r.To = nsTime(first), nsTime(last)
	return nil
}

func (s *sqlStore) reportIncidents(ctx context.Context, r *Report, o ReportOptions, _ TrialRules) error {
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(`SELECT category, severity, status, COUNT(*) FROM incidents
		WHERE trial = ? GROUP BY category, severity, status ORDER BY category, severity, status`), o.Trial)
	if err != nil {
		return fmt.Errorf("report incidents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c IncidentCount
		if err := rows.Scan(&c.Category, &c.Severity, &c.Status, &c.Count); err != nil {
			return fmt.Errorf("report incidents: %w", err)
		}
		r.Incidents = append(r.Incidents, c)
	}
	return rows.Err()
}

func (s *sqlStore) reportRates(ctx context.Context, r *Report, o ReportOptions, _ TrialRules) error {
	d := s.st.d
	answered := map[string]int64{}
	rows, err := s.db.QueryContext(ctx, d.bind(`SELECT model, COUNT(*) FROM interactions WHERE trial = ? AND status IN (?, ?) GROUP BY model`),
		o.Trial, events.StatusOK, events.StatusPartial)
	if err != nil {
		return fmt.Errorf("report rates: %w", err)
	}
	for rows.Next() {
		var m string
		var n int64
		if err := rows.Scan(&m, &n); err != nil {
			rows.Close()
			return fmt.Errorf("report rates: %w", err)
		}
		answered[m] = n
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("report rates: %w", err)
	}
	confirmed := map[[2]string]int64{}
	rows, err = s.db.QueryContext(ctx, d.bind(`SELECT model, category, COUNT(*) FROM incidents WHERE trial = ? AND status = ? GROUP BY model, category`),
		o.Trial, StatusConfirmed)
	if err != nil {
		return fmt.Errorf("report rates: %w", err)
	}
	for rows.Next() {
		var m, c string
		var n int64
		if err := rows.Scan(&m, &c, &n); err != nil {
			rows.Close()
			return fmt.Errorf("report rates: %w", err)
		}
		confirmed[[2]string{m, c}] += n
		confirmed[[2]string{m, "*"}] += n
		if _, ok := answered[m]; !ok {
			answered[m] = 0
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("report rates: %w", err)
	}
	models := make([]string, 0, len(answered))
	for m := range answered {
		models = append(models, m)
	}
	slices.Sort(models)
	for _, m := range models {
		cats := []string{"*"}
		for k := range confirmed {
			if k[0] == m && k[1] != "*" {
				cats = append(cats, k[1])
			}
		}
		slices.Sort(cats[1:])
		for _, c := range cats {
			k, n := confirmed[[2]string{m, c}], answered[m]
			row := RateRow{Model: m, Category: c, Confirmed: k, Interactions: n}
			if n > 0 {
				row.Rate = float64(k) / float64(n)
			}
			row.Lower, row.Upper = o.Interval(k, n)
			r.Rates = append(r.Rates, row)
		}
	}
	return nil
}

// sqlReviewRows reads every incident of a trial with its workflow and first verdict.
const sqlReviewRows = `SELECT i.severity, i.status, i.created_at, w.decided_at, w.harm, w.reported_at, COALESCE(r1.at, 0)
	FROM incidents i JOIN incident_workflow w ON w.incident_id = i.id
	LEFT JOIN incident_reviews r1 ON r1.incident_id = i.id AND r1.round = 1
	WHERE i.trial = ?`

func (s *sqlStore) reportReviewTimes(ctx context.Context, r *Report, o ReportOptions, rules TrialRules) error {
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(sqlReviewRows), o.Trial)
	if err != nil {
		return fmt.Errorf("report review times: %w", err)
	}
	defer rows.Close()
	now := r.GeneratedAt
	bySev := map[string]*ReviewTimeRow{}
	hours := map[string][]float64{}
	for _, sev := range []string{events.SeverityCritical, events.SeverityHigh, events.SeverityMedium, events.SeverityLow} {
		bySev[sev] = &ReviewTimeRow{Severity: sev, TargetHours: rules.ReviewTargetHours[sev]}
	}
	for rows.Next() {
		var (
			sev, status, harm              string
			created, decided, reported, r1 int64
		)
		if err := rows.Scan(&sev, &status, &created, &decided, &harm, &reported, &r1); err != nil {
			return fmt.Errorf("report review times: %w", err)
		}
		row := bySev[sev]
		if row == nil {
			continue
		}
		first := decided
		if r1 != 0 {
			first = r1
		}
		review, report := rules.Deadlines(nsTime(created), status, sev, harm, nsTime(first), nsTime(reported))
		switch review.State(now) {
		case DeadlineMet:
			row.Decided++
			row.OnTime++
		case DeadlineMissed:
			row.Decided++
			row.Late++
		case DeadlineOverdue:
			row.Pending++
			row.Overdue++
		default:
			row.Pending++
		}
		if !review.Done.IsZero() {
			hours[sev] = append(hours[sev], review.Done.Sub(review.Start).Hours())
		}
		if report != nil {
			r.ReportDeadlines.Serious++
			switch report.State(now) {
			case DeadlineMet:
				r.ReportDeadlines.FiledOn++
			case DeadlineMissed:
				r.ReportDeadlines.Late++
			case DeadlineOverdue:
				r.ReportDeadlines.Overdue++
				r.ReportDeadlines.Pending++
			default:
				r.ReportDeadlines.Pending++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("report review times: %w", err)
	}
	for _, sev := range []string{events.SeverityCritical, events.SeverityHigh, events.SeverityMedium, events.SeverityLow} {
		row := bySev[sev]
		row.MedianHours, row.P90Hours = quantile(hours[sev], 0.5), quantile(hours[sev], 0.9)
		r.ReviewTimes = append(r.ReviewTimes, *row)
	}
	return nil
}

// quantile is the q-quantile of xs by linear interpolation between order
// statistics (0 for none).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

func (s *sqlStore) reportPolicies(ctx context.Context, r *Report, o ReportOptions, _ TrialRules) error {
	d := s.st.d
	rev := d.jsonText("payload", "decision", "policy_revision")
	rows, err := s.db.QueryContext(ctx, d.bind(`SELECT `+rev+`, COUNT(*), MIN(started_at), MAX(started_at) FROM interactions
		WHERE trial = ? GROUP BY `+rev+` ORDER BY MIN(started_at)`), o.Trial)
	if err != nil {
		return fmt.Errorf("report policy revisions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p      PolicyRevisionRow
			lo, hi int64
		)
		if err := rows.Scan(&p.Revision, &p.Interactions, &lo, &hi); err != nil {
			return fmt.Errorf("report policy revisions: %w", err)
		}
		p.FirstSeen, p.LastSeen = nsTime(lo), nsTime(hi)
		r.PolicyRevisions = append(r.PolicyRevisions, p)
	}
	return rows.Err()
}

func (s *sqlStore) reportAudit(ctx context.Context, r *Report, o ReportOptions, _ TrialRules) error {
	v, err := s.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	a := AuditStatus{AuditVerification: v}
	if err := s.db.QueryRowContext(ctx, s.st.d.bind(`SELECT COUNT(*) FROM audit_log WHERE trial = ?`), o.Trial).Scan(&a.TrialEntries); err != nil {
		return fmt.Errorf("count audit entries: %w", err)
	}
	holds, err := s.LegalHolds(ctx)
	if err != nil {
		return err
	}
	for _, h := range holds {
		if h.Trial == o.Trial || h.Trial == HoldAll {
			a.LegalHold = true
		}
	}
	if a.RetentionDays, err = s.retentionDays(ctx, s.db, o.Trial); err != nil {
		return err
	}
	r.Audit = a
	return nil
}

// harmText describes a harm class in the words of Art. 3(49).
func harmText(h string) string {
	switch h {
	case HarmDeath:
		return "the death of a person, or serious harm to a person's health (Art. 3(49)(a))"
	case HarmWidespread:
		return "a widespread infringement (Art. 3(61), Art. 73(3))"
	case HarmCriticalInfrastructure:
		return "a serious and irreversible disruption of the management or operation of critical infrastructure (Art. 3(49)(b))"
	case HarmSerious:
		return "serious harm to health, property or the environment, or an infringement of obligations protecting fundamental rights (Art. 3(49))"
	}
	return "not yet assessed: treated as potentially serious because of its severity"
}

func (s *sqlStore) reportDrafts(ctx context.Context, r *Report, o ReportOptions, rules TrialRules) error {
	ids, err := queryStrings(ctx, s.db, s.st.d.bind(`SELECT id FROM incidents WHERE trial = ? AND status = ? ORDER BY created_at, id`), o.Trial, StatusConfirmed)
	if err != nil {
		return fmt.Errorf("report drafts: %w", err)
	}
	for _, id := range ids {
		inc, err := s.Incident(ctx, id)
		if err != nil {
			return err
		}
		wf, err := s.workflowOf(ctx, s.db, inc)
		if err != nil {
			return err
		}
		if wf.Report == nil {
			continue
		}
		in, err := s.Interaction(ctx, inc.InteractionID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		r.Drafts = append(r.Drafts, s.draft(inc, in, wf, o))
	}
	return nil
}

// draft fills an Art. 73 initial report from an incident.
func (s *sqlStore) draft(inc *Incident, in *events.Interaction, wf *Workflow, o ReportOptions) Art73Draft {
	d := Art73Draft{
		IncidentID: inc.ID, InteractionID: inc.InteractionID, ReportType: "initial",
		Provider: orUnknown(o.Sponsor), ProviderContact: o.SponsorContact, Authority: orUnknown(o.Regulator), AuthorityContact: o.RegulatorContact,
		AISystem: strings.TrimSpace(o.Title + " (trial " + o.Trial + ")"), Model: inc.Model,
		OccurredAt: inc.CreatedAt, AwareAt: inc.CreatedAt, Deadline: *wf.Report,
		Harm: wf.Harm, HarmText: harmText(wf.Harm), Severity: inc.Severity, Category: inc.Category,
		ConfirmedBy: wf.DecidedBy, ConfirmedAt: wf.DecidedAt, Filed: !wf.ReportedAt.IsZero(), Evidence: []string{},
		Note: "Initial report under Art. 73(5): it may be incomplete and is to be followed by a complete report. " +
			"Reporting does not imply an admission of fault (Art. 73(2)).",
	}
	if in != nil {
		d.OccurredAt = in.StartedAt
	}
	desc := []string{inc.Title}
	for _, f := range inc.Findings {
		desc = append(desc, fmt.Sprintf("%s (%s %s, score %.2f): %s", f.Detector, f.Category, f.Severity, f.Score, f.Explanation))
		for _, sp := range f.Spans {
			kind := sp.Kind
			if kind == "" {
				kind = f.Category
			}
			d.Evidence = append(d.Evidence, fmt.Sprintf("%s in the %s, characters %d-%d", kind, sp.Field, sp.Start, sp.End))
		}
	}
	d.Description = strings.Join(desc, "\n")
	d.CorrectiveActions = []string{fmt.Sprintf("Incident confirmed by %s on %s.", orUnknown(wf.DecidedBy), wf.DecidedAt.Format(time.RFC3339))}
	if o.Rollout != nil {
		for _, e := range o.Rollout.History {
			if !e.At.Before(inc.CreatedAt) && (strings.Contains(e.To, "abort") || strings.Contains(e.Cause, "kill")) {
				d.CorrectiveActions = append(d.CorrectiveActions,
					fmt.Sprintf("Rollout of %s stopped on %s: %s.", o.Rollout.Candidate, e.At.Format(time.RFC3339), e.Cause))
			}
		}
	}
	return d
}

func orUnknown(s string) string {
	if s == "" {
		return "(not stated in the trial definition)"
	}
	return s
}

// RatePoint is one time bucket of a trial's traffic and incidents.
type RatePoint struct {
	Start        time.Time `json:"start"`
	Interactions int64     `json:"interactions"`
	Incidents    int64     `json:"incidents"`
	Confirmed    int64     `json:"confirmed"`
}

// MaxRatePoints bounds RatePoints' buckets.
const MaxRatePoints = 400

// RatePoints buckets a trial's interactions (by start) and incidents (by
// creation; Confirmed those now confirmed) into buckets of width bucket from
// since to until, for the incident-rate chart.
func (s *sqlStore) RatePoints(ctx context.Context, trial string, since, until time.Time, bucket time.Duration) ([]RatePoint, error) {
	if !events.ValidToken(trial) || bucket <= 0 || !until.After(since) || until.Sub(since)/bucket > MaxRatePoints {
		return nil, fmt.Errorf("%w: rate points of %q from %s to %s by %s (at most %d buckets)", ErrInvalid, trial, since, until, bucket, MaxRatePoints)
	}
	n := int(until.Sub(since)/bucket) + 1
	if until.Sub(since)%bucket == 0 {
		n--
	}
	out := make([]RatePoint, n)
	for i := range out {
		out[i].Start = since.Add(time.Duration(i) * bucket).UTC()
	}
	b, lo, hi := bucket.Nanoseconds(), since.UnixNano(), until.UnixNano()
	d := s.st.d
	// GROUP BY 1 (the bucket column): PostgreSQL does not treat a repeated
	// expression with new placeholders as the selected one.
	add := func(query string, fill func(p *RatePoint, total, confirmed int64)) error {
		rows, err := s.db.QueryContext(ctx, d.bind(query), lo, b, trial, lo, hi)
		if err != nil {
			return fmt.Errorf("rate points of %s: %w", trial, err)
		}
		defer rows.Close()
		for rows.Next() {
			var i, total, confirmed int64
			if err := rows.Scan(&i, &total, &confirmed); err != nil {
				return fmt.Errorf("rate points of %s: %w", trial, err)
			}
			if i >= 0 && i < int64(n) {
				fill(&out[i], total, confirmed)
			}
		}
		return rows.Err()
	}
	if err := add(`SELECT (started_at - ?) / ?, COUNT(*), 0 FROM interactions
		WHERE trial = ? AND started_at >= ? AND started_at < ? GROUP BY 1`,
		func(p *RatePoint, total, _ int64) { p.Interactions = total }); err != nil {
		return nil, err
	}
	if err := add(`SELECT (created_at - ?) / ?, COUNT(*), SUM(CASE WHEN status = 'confirmed' THEN 1 ELSE 0 END) FROM incidents
		WHERE trial = ? AND created_at >= ? AND created_at < ? GROUP BY 1`,
		func(p *RatePoint, total, confirmed int64) { p.Incidents, p.Confirmed = total, confirmed }); err != nil {
		return nil, err
	}
	return out, nil
}
