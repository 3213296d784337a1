package incidents

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

// The reviewer workflow: an incident is opened by the monitors, claimed (or
// assigned) into review, and decided — confirmed with a severity, category and
// Art. 73 harm class, or dismissed — or escalated to the regulator from any
// review state. Every step is an Action by a named actor with a reason; it is
// recorded in incident_transitions (with its kind) and in the audit trail, in
// the same transaction. Deadlines follow from the trial's TrialRules; a sampled
// share of decisions goes to a second, independent reviewer.

// Action kinds.
const (
	// ActionClaim: the actor takes an open incident into review (or re-takes
	// one they hold). Someone else's claim is ErrConflict.
	ActionClaim = "claim"
	// ActionAssign: the actor gives the incident to Assignee (into review).
	ActionAssign = "assign"
	// ActionRelease: the holder gives it back to the queue (open).
	ActionRelease = "release"
	// ActionConfirm: the incident is real; Severity and Category are required,
	// Harm classifies it under Art. 73.
	ActionConfirm = "confirm"
	// ActionDismiss: a false alarm.
	ActionDismiss = "dismiss"
	// ActionEscalate: hand it to the regulator.
	ActionEscalate = "escalate"
	// ActionReopen: take a decided incident back into review.
	ActionReopen = "reopen"
	// ActionSecondReview: the sampled independent second verdict (Status
	// confirmed or dismissed); the incident itself does not change.
	ActionSecondReview = "second_review"
	// ActionReportFiled: the Art. 73 report of a serious incident was sent to the
	// authority (Reason: its reference).
	ActionReportFiled = "report_filed"
)

// actionFrom lists the statuses each status-changing action starts from.
var actionFrom = map[string][]string{
	ActionClaim:    {StatusOpen, StatusInReview},
	ActionAssign:   {StatusOpen, StatusInReview, StatusEscalated},
	ActionRelease:  {StatusInReview},
	ActionConfirm:  {StatusInReview, StatusEscalated},
	ActionDismiss:  {StatusInReview, StatusEscalated},
	ActionEscalate: {StatusOpen, StatusInReview},
	ActionReopen:   {StatusConfirmed, StatusDismissed},
}

// ActionPossible reports whether action kind can start from status. Second
// reviews and filed reports depend on the workflow, not the status: true.
func ActionPossible(kind, status string) bool {
	from, ok := actionFrom[kind]
	return !ok || slices.Contains(from, status)
}

// Second review states of a Workflow.
const (
	SecondReviewNone    = ""
	SecondReviewPending = "pending"
	SecondReviewDone    = "done"
)

// LabelDisagreement is added when the second reviewer's verdict differs.
const LabelDisagreement = "disagreement"

// Bounds of workflow input.
const (
	// MaxCommentRunes caps a comment.
	MaxCommentRunes = 4000
	// MaxLabels caps the labels of one incident.
	MaxLabels = 32
)

// Action is one reviewer step on an incident.
type Action struct {
	// Kind is one of the Action* constants.
	Kind string `json:"kind"`
	// Actor is who acts (the signed-in user; never taken from a request body).
	Actor string `json:"-"`
	// Reason says why; required except for claim and release.
	Reason string `json:"reason,omitempty"`
	// Assignee is who gets the incident (assign).
	Assignee string `json:"assignee,omitempty"`
	// Status is the second reviewer's verdict (second_review).
	Status string `json:"status,omitempty"`
	// Severity and Category are the verdict's (confirm: required; dismiss and
	// second_review: optional corrections).
	Severity string `json:"severity,omitempty"`
	Category string `json:"category,omitempty"`
	// Harm is the Art. 73 harm class (confirm).
	Harm string `json:"harm,omitempty"`
}

// Validate reports every problem at once.
func (a Action) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if err := checkActor(a.Actor); err != nil {
		errs = append(errs, err)
	}
	if !utf8.ValidString(a.Reason) || utf8.RuneCountInString(a.Reason) > MaxReasonRunes {
		add("reason must be UTF-8 of at most %d characters", MaxReasonRunes)
	}
	if a.Severity != "" && events.SeverityRank(a.Severity) == 0 {
		add("severity %q: want low, medium, high or critical", a.Severity)
	}
	if a.Category != "" && !events.ValidToken(a.Category) {
		add("category %q: want 1-64 letters, digits, '-' or '_'", a.Category)
	}
	if !ValidHarm(a.Harm) {
		add("harm %q: want none, serious, death, widespread or critical_infrastructure", a.Harm)
	}
	needReason := true
	switch a.Kind {
	case ActionClaim, ActionRelease:
		needReason = false
	case ActionAssign:
		if err := checkActor(a.Assignee); err != nil {
			add("assign needs an assignee")
		}
	case ActionConfirm:
		if a.Severity == "" || a.Category == "" {
			add("confirm needs a severity and a category")
		}
	case ActionSecondReview:
		if a.Status != StatusConfirmed && a.Status != StatusDismissed {
			add("second_review needs status confirmed or dismissed")
		}
	case ActionDismiss, ActionEscalate, ActionReopen, ActionReportFiled:
	default:
		add("action %q: want claim, assign, release, confirm, dismiss, escalate, reopen, second_review or report_filed", a.Kind)
	}
	if a.Kind != ActionSecondReview && a.Status != "" {
		add("status is only for second_review (use the action kind)")
	}
	if a.Kind != ActionConfirm && a.Harm != "" {
		add("harm is only for confirm")
	}
	if needReason && strings.TrimSpace(a.Reason) == "" {
		add("%s needs a reason", a.Kind)
	}
	return errors.Join(errs...)
}

// Workflow is the review state of one incident.
type Workflow struct {
	IncidentID string `json:"incident_id"`
	// Assignee holds the incident ("" when nobody does).
	Assignee  string    `json:"assignee,omitempty"`
	ClaimedAt time.Time `json:"claimed_at,omitzero"`
	// DecidedAt and DecidedBy are the latest confirm or dismiss.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	DecidedBy string    `json:"decided_by,omitempty"`
	// Harm is the Art. 73 harm class (HarmUnassessed until confirmed).
	Harm string `json:"harm,omitempty"`
	// ReportedAt is when the Art. 73 report was filed.
	ReportedAt time.Time `json:"reported_at,omitzero"`
	ReportedBy string    `json:"reported_by,omitempty"`
	// SecondReview is "", pending or done.
	SecondReview string   `json:"second_review,omitempty"`
	Labels       []string `json:"labels"`
	// Review is the internal review deadline; Report the Art. 73 deadline (nil
	// when the incident is not serious).
	Review Deadline  `json:"review"`
	Report *Deadline `json:"report,omitempty"`
	// Serious: counts as a (potentially) serious incident under Art. 73.
	Serious bool `json:"serious"`
}

// Next is the pending deadline that falls first, or nil.
func (w *Workflow) Next() *Deadline {
	var next *Deadline
	if w.Review.Done.IsZero() {
		next = &w.Review
	}
	if w.Report != nil && w.Report.Done.IsZero() && (next == nil || w.Report.Due.Before(next.Due)) {
		next = w.Report
	}
	return next
}

// workflowRow is what incident_workflow stores besides the computed deadlines.
type workflowRow struct {
	assignee, decidedBy, harm, reportedBy, secondReview string
	claimedAt, decidedAt, reportedAt                    int64
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func timeNs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// build turns a stored row into a Workflow with the deadlines under rules.
func (r workflowRow) build(inc *Incident, rules TrialRules) Workflow {
	w := Workflow{
		IncidentID: inc.ID, Assignee: r.assignee, ClaimedAt: nsTime(r.claimedAt), DecidedAt: nsTime(r.decidedAt),
		DecidedBy: r.decidedBy, Harm: r.harm, ReportedAt: nsTime(r.reportedAt), ReportedBy: r.reportedBy,
		SecondReview: r.secondReview, Labels: []string{},
	}
	w.Review, w.Report = rules.Deadlines(inc.CreatedAt, inc.Status, inc.Severity, r.harm, w.DecidedAt, w.ReportedAt)
	w.Serious = w.Report != nil
	return w
}

// Workflow statements.
const (
	workflowColumns        = `assignee, claimed_at, decided_at, decided_by, harm, reported_at, reported_by, second_review`
	sqlSelectWorkflow      = `SELECT ` + workflowColumns + ` FROM incident_workflow WHERE incident_id = ?`
	sqlSelectTransitionRow = `SELECT actor, at FROM incident_transitions WHERE incident_id = ? AND to_status IN (?, ?) ORDER BY seq DESC LIMIT 1`
	sqlUpsertWorkflow      = `INSERT INTO incident_workflow (incident_id, trial, ` + workflowColumns + `,
		basis_severity, basis_status, review_due_at, report_due_at, next_due_at, next_start_at, next_warn50_at, next_warn80_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (incident_id) DO UPDATE SET trial = excluded.trial, assignee = excluded.assignee,
		claimed_at = excluded.claimed_at, decided_at = excluded.decided_at, decided_by = excluded.decided_by,
		harm = excluded.harm, reported_at = excluded.reported_at, reported_by = excluded.reported_by,
		second_review = excluded.second_review, basis_severity = excluded.basis_severity,
		basis_status = excluded.basis_status, review_due_at = excluded.review_due_at,
		report_due_at = excluded.report_due_at, next_due_at = excluded.next_due_at,
		next_start_at = excluded.next_start_at, next_warn50_at = excluded.next_warn50_at,
		next_warn80_at = excluded.next_warn80_at`
	sqlStaleWorkflows = `SELECT i.id FROM incidents i LEFT JOIN incident_workflow w ON w.incident_id = i.id
		WHERE w.incident_id IS NULL OR w.basis_severity <> i.severity OR w.basis_status <> i.status LIMIT ?`
	sqlTrialIncidentIDs = `SELECT id FROM incidents WHERE trial = ?`
	sqlInsertActivity   = `INSERT INTO incident_transitions
		(incident_id, seq, at, actor, from_status, to_status, from_severity, to_severity, from_category, to_category, reason, kind, assignee)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlSelectActivity = `SELECT seq, at, actor, kind, assignee, from_status, to_status, from_severity, to_severity,
		from_category, to_category, reason FROM incident_transitions WHERE incident_id = ? ORDER BY seq`
	sqlSelectRound   = `SELECT reviewer, status, severity, category, at FROM incident_reviews WHERE incident_id = ? AND round = ?`
	sqlInsertRound   = `INSERT INTO incident_reviews (incident_id, round, reviewer, status, severity, category, at) VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlSelectLabels  = `SELECT label FROM incident_labels WHERE incident_id = ? ORDER BY label`
	sqlInsertLabel   = `INSERT INTO incident_labels (incident_id, label, added_by, added_at) VALUES (?, ?, ?, ?) ON CONFLICT (incident_id, label) DO NOTHING`
	sqlDeleteLabel   = `DELETE FROM incident_labels WHERE incident_id = ? AND label = ?`
	sqlNextComment   = `SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_comments WHERE incident_id = ?`
	sqlInsertComment = `INSERT INTO incident_comments (incident_id, seq, at, author, body) VALUES (?, ?, ?, ?, ?)`
	sqlSelectComment = `SELECT seq, at, author, body FROM incident_comments WHERE incident_id = ? ORDER BY seq`
)

// readWorkflow reads the stored row of inc; ok is false when there is none yet
// (then the row is derived from the incident and its transitions).
func (s *sqlStore) readWorkflow(ctx context.Context, q querier, inc *Incident) (workflowRow, error) {
	var r workflowRow
	err := q.QueryRowContext(ctx, s.st.d.bind(sqlSelectWorkflow), inc.ID).Scan(&r.assignee, &r.claimedAt, &r.decidedAt,
		&r.decidedBy, &r.harm, &r.reportedAt, &r.reportedBy, &r.secondReview)
	if err == nil {
		if resolved(inc.Status) && r.decidedAt == 0 {
			err = s.derivedDecision(ctx, q, inc, &r)
		}
		return r, err
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("read workflow of %s: %w", inc.ID, err)
	}
	if resolved(inc.Status) {
		return r, s.derivedDecision(ctx, q, inc, &r)
	}
	return r, nil
}

// derivedDecision fills who decided a resolved incident and when, from its
// transitions, for incidents decided outside the workflow (Review).
func (s *sqlStore) derivedDecision(ctx context.Context, q querier, inc *Incident, r *workflowRow) error {
	err := q.QueryRowContext(ctx, s.st.d.bind(sqlSelectTransitionRow), inc.ID, StatusConfirmed, StatusDismissed).Scan(&r.decidedBy, &r.decidedAt)
	if errors.Is(err, sql.ErrNoRows) {
		r.decidedAt, r.decidedBy = inc.UpdatedAt.UnixNano(), ""
		return nil
	}
	if err != nil {
		return fmt.Errorf("read decision of %s: %w", inc.ID, err)
	}
	return nil
}

// writeWorkflow stores r for inc with the deadlines computed under rules.
func (s *sqlStore) writeWorkflow(ctx context.Context, q querier, inc *Incident, r workflowRow, rules TrialRules) error {
	w := r.build(inc, rules)
	var reportDue, nextDue, nextStart, warn50, warn80 int64
	if w.Report != nil {
		reportDue = w.Report.Due.UnixNano()
	}
	if n := w.Next(); n != nil {
		nextDue, nextStart = n.Due.UnixNano(), n.Start.UnixNano()
		warn50, warn80 = n.WarnAt(0.5).UnixNano(), n.WarnAt(0.8).UnixNano()
	}
	_, err := q.ExecContext(ctx, s.st.d.bind(sqlUpsertWorkflow), inc.ID, inc.Trial, r.assignee, r.claimedAt, r.decidedAt,
		r.decidedBy, r.harm, r.reportedAt, r.reportedBy, r.secondReview, inc.Severity, inc.Status,
		w.Review.Due.UnixNano(), reportDue, nextDue, nextStart, warn50, warn80)
	if err != nil {
		return fmt.Errorf("store workflow of %s: %w", inc.ID, err)
	}
	return nil
}

// syncWorkflows creates the workflow rows of new incidents and recomputes those
// whose severity or status changed outside the workflow (new findings, Review).
func (s *sqlStore) syncWorkflows(ctx context.Context) error {
	const batch = 500
	for range 1000 { // bounded: 500k incidents per call
		// Look first without the write lock: usually nothing is stale.
		ids, err := queryStrings(ctx, s.db, s.st.d.bind(sqlStaleWorkflows), batch)
		if err != nil {
			return fmt.Errorf("find stale workflows: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.refresh(ctx, tx, ids) }); err != nil {
			return err
		}
		if len(ids) < batch {
			return nil
		}
	}
	return nil
}

// refresh recomputes the workflow rows of ids.
func (s *sqlStore) refresh(ctx context.Context, tx *sql.Tx, ids []string) error {
	rules := map[string]TrialRules{}
	for _, id := range ids {
		inc, err := scanIncident(tx.QueryRowContext(ctx, s.st.selectIncident, id))
		if err != nil {
			return fmt.Errorf("read incident %s: %w", id, err)
		}
		r, ok := rules[inc.Trial]
		if !ok {
			if r, err = s.trialRules(ctx, tx, inc.Trial); err != nil {
				return err
			}
			rules[inc.Trial] = r
		}
		row, err := s.readWorkflow(ctx, tx, &inc)
		if err != nil {
			return err
		}
		if err := s.writeWorkflow(ctx, tx, &inc, row, r); err != nil {
			return err
		}
	}
	return nil
}

// recomputeTrial recomputes every workflow row of trial (after a rules change).
func (s *sqlStore) recomputeTrial(ctx context.Context, tx *sql.Tx, trial string) error {
	ids, err := queryStrings(ctx, tx, s.st.d.bind(sqlTrialIncidentIDs), trial)
	if err != nil {
		return fmt.Errorf("list incidents of %s: %w", trial, err)
	}
	return s.refresh(ctx, tx, ids)
}

// queryStrings runs a query returning one text column.
func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// IncidentWorkflow returns the review state of incident id with its deadlines.
func (s *sqlStore) IncidentWorkflow(ctx context.Context, id string) (*Workflow, error) {
	inc, err := s.Incident(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.workflowOf(ctx, s.db, inc)
}

func (s *sqlStore) workflowOf(ctx context.Context, q querier, inc *Incident) (*Workflow, error) {
	rules, err := s.trialRules(ctx, q, inc.Trial)
	if err != nil {
		return nil, err
	}
	row, err := s.readWorkflow(ctx, q, inc)
	if err != nil {
		return nil, err
	}
	w := row.build(inc, rules)
	if w.Labels, err = queryStrings(ctx, q, s.st.d.bind(sqlSelectLabels), inc.ID); err != nil {
		return nil, fmt.Errorf("read labels of %s: %w", inc.ID, err)
	}
	if w.Labels == nil {
		w.Labels = []string{}
	}
	return &w, nil
}

// Act applies one workflow action to incident id, in one transaction with its
// transition record and audit entry. ErrNotFound, ErrInvalid, ErrTransition (not
// possible in the incident's status) or ErrConflict (held by someone else).
func (s *sqlStore) Act(ctx context.Context, id string, a Action) (*Incident, error) {
	if id == "" || len(id) > MaxIDLen {
		return nil, fmt.Errorf("%w: incident id must be 1-%d bytes", ErrInvalid, MaxIDLen)
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var out *Incident
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanIncident(tx.QueryRowContext(ctx, s.st.selectIncidentForUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("incident %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock incident %s: %w", id, err)
		}
		rules, err := s.trialRules(ctx, tx, cur.Trial)
		if err != nil {
			return err
		}
		row, err := s.readWorkflow(ctx, tx, &cur)
		if err != nil {
			return err
		}
		now := s.clk.Now().UTC()
		next, nrow := cur, row
		if err := s.step(ctx, tx, &cur, &next, &nrow, rules, a, now); err != nil {
			return err
		}
		if next.Status != cur.Status || next.Severity != cur.Severity || next.Category != cur.Category {
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlUpdateIncidentReview), next.Status, next.Severity, next.Category, now.UnixNano(), id); err != nil {
				return fmt.Errorf("update incident %s: %w", id, err)
			}
			next.UpdatedAt = now
		}
		if err := s.recordActivity(ctx, tx, &cur, &next, a.Actor, a.Kind, nrow.assignee, a.Reason, now); err != nil {
			return err
		}
		if err := s.writeWorkflow(ctx, tx, &next, nrow, rules); err != nil {
			return err
		}
		detail := map[string]any{"from": cur.Status, "to": next.Status, "severity": next.Severity, "category": next.Category}
		if a.Assignee != "" {
			detail["assignee"] = a.Assignee
		}
		if a.Harm != "" {
			detail["harm"] = a.Harm
		}
		if a.Status != "" {
			detail["verdict"] = a.Status
		}
		if _, err := s.appendAudit(ctx, tx, AuditRecord{Actor: a.Actor, Action: "incident." + a.Kind, Object: "incident:" + id,
			Trial: cur.Trial, Reason: a.Reason, Detail: detail}); err != nil {
			return err
		}
		out, err = s.loadIncident(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// step applies a to next and nrow (copies of cur and its workflow row), checking
// that the step is possible.
func (s *sqlStore) step(ctx context.Context, tx *sql.Tx, cur, next *Incident, nrow *workflowRow, rules TrialRules, a Action, now time.Time) error {
	if !ActionPossible(a.Kind, cur.Status) {
		return fmt.Errorf("incident %s is %s; %s needs it %s: %w", cur.ID, cur.Status, a.Kind,
			strings.Join(actionFrom[a.Kind], " or "), ErrTransition)
	}
	switch a.Kind {
	case ActionClaim:
		if nrow.assignee != "" && nrow.assignee != a.Actor && cur.Status == StatusInReview {
			return fmt.Errorf("incident %s is held by %s: %w", cur.ID, nrow.assignee, ErrConflict)
		}
		next.Status, nrow.assignee, nrow.claimedAt = StatusInReview, a.Actor, now.UnixNano()
	case ActionAssign:
		if cur.Status == StatusOpen {
			next.Status = StatusInReview
		}
		nrow.assignee, nrow.claimedAt = a.Assignee, now.UnixNano()
	case ActionRelease:
		next.Status, nrow.assignee, nrow.claimedAt = StatusOpen, "", 0
	case ActionConfirm, ActionDismiss:
		next.Status = StatusConfirmed
		if a.Kind == ActionDismiss {
			next.Status = StatusDismissed
		}
		if a.Severity != "" {
			next.Severity = a.Severity
		}
		if a.Category != "" {
			next.Category = a.Category
		}
		nrow.harm = a.Harm
		if a.Kind == ActionDismiss {
			nrow.harm = HarmNone
		}
		nrow.decidedAt, nrow.decidedBy = now.UnixNano(), a.Actor
		first, err := s.hasRound(ctx, tx, cur.ID, 1)
		if err != nil {
			return err
		}
		if !first {
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertRound), cur.ID, 1, a.Actor, next.Status, next.Severity, next.Category, now.UnixNano()); err != nil {
				return fmt.Errorf("record verdict of %s: %w", cur.ID, err)
			}
			if sampled(cur.ID, rules.SecondReviewShare) {
				nrow.secondReview = SecondReviewPending
			}
		}
	case ActionEscalate:
		next.Status = StatusEscalated
	case ActionReopen:
		next.Status, nrow.assignee, nrow.claimedAt = StatusInReview, a.Actor, now.UnixNano()
	case ActionSecondReview:
		return s.secondReview(ctx, tx, cur, nrow, a, now)
	case ActionReportFiled:
		if !rules.Serious(cur.Status, cur.Severity, nrow.harm) {
			return fmt.Errorf("incident %s is not a serious incident; nothing to report: %w", cur.ID, ErrTransition)
		}
		if nrow.reportedAt != 0 {
			return fmt.Errorf("incident %s: the report was filed already: %w", cur.ID, ErrTransition)
		}
		nrow.reportedAt, nrow.reportedBy = now.UnixNano(), a.Actor
	}
	return nil
}

// secondReview records the sampled second verdict and flags a disagreement.
func (s *sqlStore) secondReview(ctx context.Context, tx *sql.Tx, cur *Incident, nrow *workflowRow, a Action, now time.Time) error {
	if nrow.secondReview != SecondReviewPending {
		return fmt.Errorf("incident %s is not waiting for a second review: %w", cur.ID, ErrTransition)
	}
	var first ReviewRound
	var at int64
	err := tx.QueryRowContext(ctx, s.st.d.bind(sqlSelectRound), cur.ID, 1).Scan(&first.Reviewer, &first.Status, &first.Severity, &first.Category, &at)
	if err != nil {
		return fmt.Errorf("read first verdict of %s: %w", cur.ID, err)
	}
	if first.Reviewer == a.Actor {
		return fmt.Errorf("%w: the second review must be by someone other than %s, who gave the first", ErrConflict, a.Actor)
	}
	sev, cat := a.Severity, a.Category
	if sev == "" {
		sev = cur.Severity
	}
	if cat == "" {
		cat = cur.Category
	}
	if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertRound), cur.ID, 2, a.Actor, a.Status, sev, cat, now.UnixNano()); err != nil {
		return fmt.Errorf("record second verdict of %s: %w", cur.ID, err)
	}
	nrow.secondReview = SecondReviewDone
	if a.Status != first.Status || cat != first.Category {
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertLabel), cur.ID, LabelDisagreement, a.Actor, now.UnixNano()); err != nil {
			return fmt.Errorf("label %s: %w", cur.ID, err)
		}
	}
	return nil
}

func (s *sqlStore) hasRound(ctx context.Context, q querier, id string, round int) (bool, error) {
	var r ReviewRound
	var at int64
	err := q.QueryRowContext(ctx, s.st.d.bind(sqlSelectRound), id, round).Scan(&r.Reviewer, &r.Status, &r.Severity, &r.Category, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read verdict of %s: %w", id, err)
	}
	return true, nil
}

// recordActivity appends one row to incident_transitions.
func (s *sqlStore) recordActivity(ctx context.Context, tx *sql.Tx, cur, next *Incident, actor, kind, assignee, reason string, now time.Time) error {
	var seq int
	if err := tx.QueryRowContext(ctx, s.st.d.bind(sqlNextTransitionSeq), cur.ID).Scan(&seq); err != nil {
		return fmt.Errorf("transition seq of %s: %w", cur.ID, err)
	}
	if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertActivity), cur.ID, seq, now.UnixNano(), actor,
		cur.Status, next.Status, cur.Severity, next.Severity, cur.Category, next.Category, reason, kind, assignee); err != nil {
		return fmt.Errorf("record %s of %s: %w", kind, cur.ID, err)
	}
	return nil
}

// Comment adds a comment by author to incident id (recorded in the audit trail).
func (s *sqlStore) Comment(ctx context.Context, id, author, body string) (IncidentComment, error) {
	var errs []error
	if err := checkActor(author); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(body) == "" || !utf8.ValidString(body) || utf8.RuneCountInString(body) > MaxCommentRunes {
		errs = append(errs, fmt.Errorf("%w: a comment is 1-%d characters of UTF-8", ErrInvalid, MaxCommentRunes))
	}
	if err := errors.Join(errs...); err != nil {
		return IncidentComment{}, err
	}
	c := IncidentComment{At: s.clk.Now().UTC(), Author: author, Body: body}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		inc, err := scanIncident(tx.QueryRowContext(ctx, s.st.selectIncidentForUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("incident %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock incident %s: %w", id, err)
		}
		if err := tx.QueryRowContext(ctx, s.st.d.bind(sqlNextComment), id).Scan(&c.Seq); err != nil {
			return fmt.Errorf("comment seq of %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertComment), id, c.Seq, c.At.UnixNano(), author, body); err != nil {
			return fmt.Errorf("store comment on %s: %w", id, err)
		}
		_, err = s.appendAudit(ctx, tx, AuditRecord{Actor: author, Action: "incident.comment", Object: "incident:" + id,
			Trial: inc.Trial, Detail: map[string]any{"seq": c.Seq, "body": body}})
		return err
	})
	return c, err
}

// SetLabels adds and removes labels of incident id (tokens: letters, digits,
// '-', '_'), recorded as a transition and in the audit trail.
func (s *sqlStore) SetLabels(ctx context.Context, id, actor string, add, remove []string) ([]string, error) {
	var errs []error
	if err := checkActor(actor); err != nil {
		errs = append(errs, err)
	}
	if len(add)+len(remove) == 0 || len(add)+len(remove) > MaxLabels {
		errs = append(errs, fmt.Errorf("%w: add or remove 1-%d labels", ErrInvalid, MaxLabels))
	}
	for _, l := range slices.Concat(add, remove) {
		if !events.ValidToken(l) {
			errs = append(errs, fmt.Errorf("%w: label %q: want 1-64 letters, digits, '-' or '_'", ErrInvalid, l))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		inc, err := scanIncident(tx.QueryRowContext(ctx, s.st.selectIncidentForUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("incident %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock incident %s: %w", id, err)
		}
		now := s.clk.Now().UTC()
		for _, l := range add {
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertLabel), id, l, actor, now.UnixNano()); err != nil {
				return fmt.Errorf("label %s: %w", id, err)
			}
		}
		for _, l := range remove {
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlDeleteLabel), id, l); err != nil {
				return fmt.Errorf("unlabel %s: %w", id, err)
			}
		}
		if out, err = queryStrings(ctx, tx, s.st.d.bind(sqlSelectLabels), id); err != nil {
			return fmt.Errorf("read labels of %s: %w", id, err)
		}
		if len(out) > MaxLabels {
			return fmt.Errorf("%w: incident %s would have %d labels (max %d)", ErrInvalid, id, len(out), MaxLabels)
		}
		reason := labelReason(add, remove)
		if err := s.recordActivity(ctx, tx, &inc, &inc, actor, "label", "", reason, now); err != nil {
			return err
		}
		_, err = s.appendAudit(ctx, tx, AuditRecord{Actor: actor, Action: "incident.label", Object: "incident:" + id,
			Trial: inc.Trial, Reason: reason, Detail: map[string]any{"add": add, "remove": remove}})
		return err
	})
	if out == nil {
		out = []string{}
	}
	return out, err
}

func labelReason(add, remove []string) string {
	var parts []string
	if len(add) > 0 {
		parts = append(parts, "added "+strings.Join(add, ", "))
	}
	if len(remove) > 0 {
		parts = append(parts, "removed "+strings.Join(remove, ", "))
	}
	return strings.Join(parts, "; ")
}

// isNoRows reports whether err is sql.ErrNoRows.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
