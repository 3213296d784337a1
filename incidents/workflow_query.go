package incidents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stagegate/stagegate/events"
)

// Reads of the reviewer workflow: the queue (filtered, sorted, counted, scoped
// to the trials a user may see) and an incident's history.

// ReviewRound is one independent verdict: round 1 is the first decision, round
// 2 the sampled second review.
type ReviewRound struct {
	Round    int       `json:"round"`
	Reviewer string    `json:"reviewer"`
	Status   string    `json:"status"`
	Severity string    `json:"severity"`
	Category string    `json:"category"`
	At       time.Time `json:"at"`
}

// IncidentComment is one comment on an incident.
type IncidentComment struct {
	Seq    int       `json:"seq"`
	At     time.Time `json:"at"`
	Author string    `json:"author"`
	Body   string    `json:"body"`
}

// Activity is one recorded step (incident_transitions): a workflow action, a
// label change, or a verdict given through Review (Kind "verdict").
type Activity struct {
	Seq          int       `json:"seq"`
	At           time.Time `json:"at"`
	Actor        string    `json:"actor"`
	Kind         string    `json:"kind"`
	Assignee     string    `json:"assignee,omitempty"`
	FromStatus   string    `json:"from_status"`
	ToStatus     string    `json:"to_status"`
	FromSeverity string    `json:"from_severity"`
	ToSeverity   string    `json:"to_severity"`
	FromCategory string    `json:"from_category"`
	ToCategory   string    `json:"to_category"`
	Reason       string    `json:"reason,omitempty"`
}

// History is everything recorded about one incident's review.
type History struct {
	Activity []Activity        `json:"activity"`
	Comments []IncidentComment `json:"comments"`
	Reviews  []ReviewRound     `json:"reviews"`
}

// IncidentHistory returns the activity, comments and verdicts of incident id,
// oldest first (empty lists when it has none).
func (s *sqlStore) IncidentHistory(ctx context.Context, id string) (*History, error) {
	h := &History{Activity: []Activity{}, Comments: []IncidentComment{}, Reviews: []ReviewRound{}}
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(sqlSelectActivity), id)
	if err != nil {
		return nil, fmt.Errorf("read activity of %s: %w", id, err)
	}
	for rows.Next() {
		var (
			a  Activity
			at int64
		)
		if err := rows.Scan(&a.Seq, &at, &a.Actor, &a.Kind, &a.Assignee, &a.FromStatus, &a.ToStatus,
			&a.FromSeverity, &a.ToSeverity, &a.FromCategory, &a.ToCategory, &a.Reason); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read activity of %s: %w", id, err)
		}
		a.At = time.Unix(0, at).UTC()
		if a.Kind == "" {
			a.Kind = "verdict"
		}
		h.Activity = append(h.Activity, a)
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, s.st.d.bind(sqlSelectComment), id)
	if err != nil {
		return nil, fmt.Errorf("read comments of %s: %w", id, err)
	}
	for rows.Next() {
		var (
			c  IncidentComment
			at int64
		)
		if err := rows.Scan(&c.Seq, &at, &c.Author, &c.Body); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read comments of %s: %w", id, err)
		}
		c.At = time.Unix(0, at).UTC()
		h.Comments = append(h.Comments, c)
	}
	rows.Close()
	for round := 1; round <= 2; round++ {
		r := ReviewRound{Round: round}
		var at int64
		err := s.db.QueryRowContext(ctx, s.st.d.bind(sqlSelectRound), id, round).Scan(&r.Reviewer, &r.Status, &r.Severity, &r.Category, &at)
		if err != nil {
			if isNoRows(err) {
				break
			}
			return nil, fmt.Errorf("read verdicts of %s: %w", id, err)
		}
		r.At = time.Unix(0, at).UTC()
		h.Reviews = append(h.Reviews, r)
	}
	return h, nil
}

// Scope is the set of trials a user may see.
type Scope struct {
	// All: every trial (administrators).
	All bool
	// Trials the user may see when not All; none means nothing.
	Trials []string
}

// Allows reports whether trial is in the scope.
func (sc Scope) Allows(trial string) bool {
	if sc.All {
		return true
	}
	for _, t := range sc.Trials {
		if t == trial {
			return true
		}
	}
	return false
}

// Queue filters on deadlines.
const (
	// DeadlineFilterOverdue: a pending deadline has passed.
	DeadlineFilterOverdue = "overdue"
	// DeadlineFilterUrgent: 80 % or more of a pending deadline's window is used.
	DeadlineFilterUrgent = "urgent"
	// DeadlineFilterWarning: 50 % or more is used.
	DeadlineFilterWarning = "warning"
	// DeadlineFilterPending: some deadline is pending.
	DeadlineFilterPending = "pending"
)

// Queue sort orders.
const (
	SortDeadline = "deadline" // nearest pending deadline first (default)
	SortNewest   = "newest"
	SortOldest   = "oldest"
	SortSeverity = "severity" // most severe first, then deadline
)

// QueueFilter selects the reviewer queue. Empty string fields match everything.
type QueueFilter struct {
	// Scope limits the trials (required: the zero Scope sees nothing).
	Scope Scope
	// Trial, Status, Severity and Category narrow the list.
	Trial, Status, Severity, Category string
	// Assignee keeps incidents held by this user.
	Assignee string
	// Deadline is one of the DeadlineFilter* constants.
	Deadline string
	// SecondReview keeps incidents in this second-review state (pending).
	SecondReview string
	// Sort is one of the Sort* constants (default SortDeadline).
	Sort string
	// Limit is the page size (0: DefaultLimit; capped at MaxLimit).
	Limit int
}

// normalize validates f and applies the defaults.
func (f QueueFilter) normalize() (QueueFilter, error) {
	var errs []error
	for _, v := range []struct{ name, v string }{{"trial", f.Trial}, {"category", f.Category}} {
		if v.v != "" && !events.ValidToken(v.v) {
			errs = append(errs, fmt.Errorf("%w: %s %q", ErrInvalid, v.name, v.v))
		}
	}
	if f.Status != "" && !ValidStatus(f.Status) {
		errs = append(errs, fmt.Errorf("%w: status %q", ErrInvalid, f.Status))
	}
	if f.Severity != "" && events.SeverityRank(f.Severity) == 0 {
		errs = append(errs, fmt.Errorf("%w: severity %q", ErrInvalid, f.Severity))
	}
	if len(f.Assignee) > MaxActorLen {
		errs = append(errs, fmt.Errorf("%w: assignee", ErrInvalid))
	}
	switch f.Deadline {
	case "", DeadlineFilterOverdue, DeadlineFilterUrgent, DeadlineFilterWarning, DeadlineFilterPending:
	default:
		errs = append(errs, fmt.Errorf("%w: deadline %q: want overdue, urgent, warning or pending", ErrInvalid, f.Deadline))
	}
	switch f.SecondReview {
	case "", SecondReviewPending, SecondReviewDone:
	default:
		errs = append(errs, fmt.Errorf("%w: second_review %q: want pending or done", ErrInvalid, f.SecondReview))
	}
	switch f.Sort {
	case "":
		f.Sort = SortDeadline
	case SortDeadline, SortNewest, SortOldest, SortSeverity:
	default:
		errs = append(errs, fmt.Errorf("%w: sort %q: want deadline, newest, oldest or severity", ErrInvalid, f.Sort))
	}
	if f.Limit < 0 {
		errs = append(errs, fmt.Errorf("%w: limit %d", ErrInvalid, f.Limit))
	}
	if len(f.Scope.Trials) > MaxLimit {
		errs = append(errs, fmt.Errorf("%w: scope of %d trials", ErrInvalid, len(f.Scope.Trials)))
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultLimit
	case f.Limit > MaxLimit:
		f.Limit = MaxLimit
	}
	return f, errors.Join(errs...)
}

// QueueItem is one incident in the queue with its review state.
type QueueItem struct {
	Incident
	Workflow Workflow `json:"workflow"`
}

// QueueCounts count the incidents in scope (and in the filter's trial), by
// status, severity and category, ignoring the other filters, so a page can show
// how many each filter value would give.
type QueueCounts struct {
	Status   map[string]int `json:"status"`
	Severity map[string]int `json:"severity"`
	Category map[string]int `json:"category"`
	// Overdue and Urgent count unresolved incidents with such a pending deadline.
	Overdue int `json:"overdue"`
	Urgent  int `json:"urgent"`
	// SecondReview counts incidents waiting for a second reviewer.
	SecondReview int `json:"second_review"`
}

// Queue is one page of the reviewer queue.
type Queue struct {
	Items []QueueItem `json:"items"`
	// Total is how many incidents match the whole filter.
	Total  int         `json:"total"`
	Counts QueueCounts `json:"counts"`
	// Now is the time the deadlines were evaluated at.
	Now time.Time `json:"now"`
}

// queueWhere renders the scope and filter conditions.
func queueWhere(f QueueFilter, now time.Time, full bool) (string, []any) {
	var (
		b    strings.Builder
		args []any
	)
	b.WriteString(` WHERE 1 = 1`)
	if !f.Scope.All {
		if len(f.Scope.Trials) == 0 {
			b.WriteString(` AND 1 = 0`)
		} else {
			b.WriteString(` AND i.trial IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(f.Scope.Trials)), ", ") + `)`)
			for _, t := range f.Scope.Trials {
				args = append(args, t)
			}
		}
	}
	eq := func(col, v string) {
		if v != "" {
			b.WriteString(` AND ` + col + ` = ?`)
			args = append(args, v)
		}
	}
	eq("i.trial", f.Trial)
	if !full {
		return b.String(), args
	}
	eq("i.status", f.Status)
	eq("i.severity", f.Severity)
	eq("i.category", f.Category)
	eq("w.assignee", f.Assignee)
	eq("w.second_review", f.SecondReview)
	ns := now.UnixNano()
	switch f.Deadline {
	case DeadlineFilterOverdue:
		b.WriteString(` AND w.next_due_at > 0 AND w.next_due_at <= ?`)
		args = append(args, ns)
	case DeadlineFilterUrgent:
		b.WriteString(` AND w.next_due_at > 0 AND w.next_warn80_at <= ?`)
		args = append(args, ns)
	case DeadlineFilterWarning:
		b.WriteString(` AND w.next_due_at > 0 AND w.next_warn50_at <= ?`)
		args = append(args, ns)
	case DeadlineFilterPending:
		b.WriteString(` AND w.next_due_at > 0`)
	}
	return b.String(), args
}

const (
	queueFrom    = ` FROM incidents i JOIN incident_workflow w ON w.incident_id = i.id`
	queueColumns = `i.id, i.interaction_id, i.trial, i.model, i.category, i.severity, i.status, i.title, i.created_at, i.updated_at,
		w.assignee, w.claimed_at, w.decided_at, w.decided_by, w.harm, w.reported_at, w.reported_by, w.second_review`
	severityOrder = `CASE i.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END`
	dueOrder      = `CASE WHEN w.next_due_at = 0 THEN 1 ELSE 0 END, w.next_due_at`
)

// Queue lists the incidents matching f with their workflow state and counts.
func (s *sqlStore) Queue(ctx context.Context, f QueueFilter) (*Queue, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	if err := s.syncWorkflows(ctx); err != nil {
		return nil, err
	}
	now := s.clk.Now().UTC()
	q := &Queue{Items: []QueueItem{}, Now: now, Counts: QueueCounts{Status: map[string]int{}, Severity: map[string]int{}, Category: map[string]int{}}}
	where, args := queueWhere(f, now, true)
	d := s.st.d
	if err := s.db.QueryRowContext(ctx, d.bind(`SELECT COUNT(*)`+queueFrom+where), args...).Scan(&q.Total); err != nil {
		return nil, fmt.Errorf("count queue: %w", err)
	}
	order := map[string]string{
		SortDeadline: dueOrder + `, i.created_at, i.id`,
		SortNewest:   `i.created_at DESC, i.id DESC`,
		SortOldest:   `i.created_at, i.id`,
		SortSeverity: severityOrder + ` DESC, ` + dueOrder + `, i.id`,
	}[f.Sort]
	rows, err := s.db.QueryContext(ctx, d.bind(`SELECT `+queueColumns+queueFrom+where+` ORDER BY `+order+` LIMIT ?`), append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list queue: %w", err)
	}
	type pending struct {
		inc Incident
		row workflowRow
	}
	var page []pending
	for rows.Next() {
		var p pending
		var created, updated int64
		if err := rows.Scan(&p.inc.ID, &p.inc.InteractionID, &p.inc.Trial, &p.inc.Model, &p.inc.Category, &p.inc.Severity,
			&p.inc.Status, &p.inc.Title, &created, &updated, &p.row.assignee, &p.row.claimedAt, &p.row.decidedAt,
			&p.row.decidedBy, &p.row.harm, &p.row.reportedAt, &p.row.reportedBy, &p.row.secondReview); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list queue: %w", err)
		}
		p.inc.CreatedAt, p.inc.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		page = append(page, p)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("list queue: %w", err)
	}
	rules := map[string]TrialRules{}
	for _, p := range page {
		r, ok := rules[p.inc.Trial]
		if !ok {
			if r, err = s.trialRules(ctx, s.db, p.inc.Trial); err != nil {
				return nil, err
			}
			rules[p.inc.Trial] = r
		}
		item := QueueItem{Incident: p.inc, Workflow: p.row.build(&p.inc, r)}
		if item.Workflow.Labels, err = queryStrings(ctx, s.db, d.bind(sqlSelectLabels), p.inc.ID); err != nil {
			return nil, fmt.Errorf("read labels of %s: %w", p.inc.ID, err)
		}
		if item.Workflow.Labels == nil {
			item.Workflow.Labels = []string{}
		}
		q.Items = append(q.Items, item)
	}
	if len(q.Items) > 0 {
		incs := make([]Incident, len(q.Items))
		for i := range q.Items {
			incs[i] = q.Items[i].Incident
		}
		if err := s.attachFindings(ctx, incs); err != nil {
			return nil, err
		}
		for i := range q.Items {
			q.Items[i].Findings = incs[i].Findings
		}
	}
	return q, s.queueCounts(ctx, f, now, &q.Counts)
}

// queueCounts fills c for the scope and trial of f.
func (s *sqlStore) queueCounts(ctx context.Context, f QueueFilter, now time.Time, c *QueueCounts) error {
	where, args := queueWhere(f, now, false)
	d := s.st.d
	rows, err := s.db.QueryContext(ctx, d.bind(`SELECT i.status, i.severity, i.category, COUNT(*)`+queueFrom+where+
		` GROUP BY i.status, i.severity, i.category`), args...)
	if err != nil {
		return fmt.Errorf("count queue: %w", err)
	}
	for rows.Next() {
		var st, sev, cat string
		var n int
		if err := rows.Scan(&st, &sev, &cat, &n); err != nil {
			rows.Close()
			return fmt.Errorf("count queue: %w", err)
		}
		c.Status[st] += n
		c.Severity[sev] += n
		c.Category[cat] += n
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("count queue: %w", err)
	}
	ns := now.UnixNano()
	return s.db.QueryRowContext(ctx, d.bind(`SELECT
		COALESCE(SUM(CASE WHEN w.next_due_at > 0 AND w.next_due_at <= ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN w.next_due_at > 0 AND w.next_warn80_at <= ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN w.second_review = ? THEN 1 ELSE 0 END), 0)`+queueFrom+where),
		append([]any{ns, ns, SecondReviewPending}, args...)...).Scan(&c.Overdue, &c.Urgent, &c.SecondReview)
}
