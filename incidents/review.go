package incidents

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

// This file holds the minimal review transition the rollout gates rely on: a
// reviewer's verdict changes an incident's status (and may correct its severity or
// category), and every change is recorded in incident_transitions with who, when
// and why. The full reviewer workflow (claims, deadlines, comments) builds on it.

// ErrTransition: the requested status change is not allowed from the incident's
// current status (see AllowedTransition).
var ErrTransition = errors.New("status transition not allowed")

// Bounds on a Verdict.
const (
	// MaxActorLen caps Verdict.Actor.
	MaxActorLen = 128
	// MaxReasonRunes caps Verdict.Reason.
	MaxReasonRunes = 2000
	// maxCategoryLen caps Verdict.Category.
	maxCategoryLen = 64
)

// Verdict is one reviewer decision on an incident. Empty Status, Severity or
// Category leave that field unchanged; at least one must change.
type Verdict struct {
	// Status is the new status (one of the Status* constants).
	Status string `json:"status,omitempty"`
	// Severity corrects the incident's severity (low, medium, high, critical).
	Severity string `json:"severity,omitempty"`
	// Category corrects the incident's category (pii, unsafe_advice, ...).
	Category string `json:"category,omitempty"`
	// Actor is who decided (required; a reviewer's name or id).
	Actor string `json:"actor"`
	// Reason says why, in the reviewer's words.
	Reason string `json:"reason,omitempty"`
}

// Validate reports every problem at once.
func (v Verdict) Validate() error {
	var errs []error
	if v.Status != "" && !ValidStatus(v.Status) {
		errs = append(errs, fmt.Errorf("%w: status %q: want open, in_review, confirmed, dismissed or escalated", ErrInvalid, v.Status))
	}
	if v.Severity != "" && events.SeverityRank(v.Severity) == 0 {
		errs = append(errs, fmt.Errorf("%w: severity %q: want low, medium, high or critical", ErrInvalid, v.Severity))
	}
	if v.Category != "" && !events.ValidToken(v.Category) {
		errs = append(errs, fmt.Errorf("%w: category %q: want 1-%d letters, digits, '-' or '_'", ErrInvalid, v.Category, maxCategoryLen))
	}
	if v.Actor == "" || len(v.Actor) > MaxActorLen || !utf8.ValidString(v.Actor) {
		errs = append(errs, fmt.Errorf("%w: actor is required (1-%d bytes of UTF-8)", ErrInvalid, MaxActorLen))
	}
	if !utf8.ValidString(v.Reason) || utf8.RuneCountInString(v.Reason) > MaxReasonRunes {
		errs = append(errs, fmt.Errorf("%w: reason must be UTF-8 of at most %d characters", ErrInvalid, MaxReasonRunes))
	}
	if v.Status == "" && v.Severity == "" && v.Category == "" {
		errs = append(errs, fmt.Errorf("%w: a verdict must set a status, a severity or a category", ErrInvalid))
	}
	return errors.Join(errs...)
}

// allowed lists the statuses reachable from each status. A confirmed or dismissed
// incident can only be reopened into review.
var allowed = map[string][]string{
	StatusOpen:      {StatusInReview, StatusConfirmed, StatusDismissed, StatusEscalated},
	StatusInReview:  {StatusOpen, StatusConfirmed, StatusDismissed, StatusEscalated},
	StatusEscalated: {StatusInReview, StatusConfirmed, StatusDismissed},
	StatusConfirmed: {StatusInReview},
	StatusDismissed: {StatusInReview},
}

// AllowedTransition reports whether an incident may go from status from to to.
// Staying in the same status is allowed (to correct severity or category).
func AllowedTransition(from, to string) bool {
	if from == to {
		return ValidStatus(from)
	}
	for _, s := range allowed[from] {
		if s == to {
			return true
		}
	}
	return false
}

// ReviewEvent is one recorded change of an incident (table incident_transitions).
type ReviewEvent struct {
	IncidentID   string    `json:"incident_id"`
	Seq          int       `json:"seq"`
	At           time.Time `json:"at"`
	Actor        string    `json:"actor"`
	FromStatus   string    `json:"from_status"`
	ToStatus     string    `json:"to_status"`
	FromSeverity string    `json:"from_severity"`
	ToSeverity   string    `json:"to_severity"`
	FromCategory string    `json:"from_category"`
	ToCategory   string    `json:"to_category"`
	Reason       string    `json:"reason"`
}

// Reviewer is the review part of a store (implemented by *SQLiteStore).
type Reviewer interface {
	// Review applies a verdict to incident id and records it; ErrNotFound,
	// ErrInvalid or ErrTransition when it cannot.
	Review(ctx context.Context, id string, v Verdict) (*Incident, error)
	// ReviewEvents lists the recorded changes of an incident, oldest first.
	ReviewEvents(ctx context.Context, id string) ([]ReviewEvent, error)
}

var _ Reviewer = (*SQLiteStore)(nil)

// Review statements, written with "?" placeholders like sql.go and bound per dialect.
const (
	sqlUpdateIncidentReview = `UPDATE incidents SET status = ?, severity = ?, category = ?, updated_at = ? WHERE id = ?`
	sqlNextTransitionSeq    = `SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_transitions WHERE incident_id = ?`
	sqlInsertTransition     = `INSERT INTO incident_transitions
		(incident_id, seq, at, actor, from_status, to_status, from_severity, to_severity, from_category, to_category, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlSelectTransitions = `SELECT incident_id, seq, at, actor, from_status, to_status, from_severity, to_severity,
		from_category, to_category, reason FROM incident_transitions WHERE incident_id = ? ORDER BY seq`
)

// Review applies verdict v to incident id in one transaction and records the change.
func (s *sqlStore) Review(ctx context.Context, id string, v Verdict) (*Incident, error) {
	if id == "" || len(id) > MaxIDLen {
		return nil, fmt.Errorf("%w: incident id must be 1-%d bytes", ErrInvalid, MaxIDLen)
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	d := s.st.d
	var out *Incident
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanIncident(tx.QueryRowContext(ctx, s.st.selectIncidentForUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("incident %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock incident %s: %w", id, err)
		}
		next := cur
		if v.Status != "" {
			next.Status = v.Status
		}
		if v.Severity != "" {
			next.Severity = v.Severity
		}
		if v.Category != "" {
			next.Category = v.Category
		}
		if !AllowedTransition(cur.Status, next.Status) {
			return fmt.Errorf("incident %s: %s → %s: %w", id, cur.Status, next.Status, ErrTransition)
		}
		if next.Status == cur.Status && next.Severity == cur.Severity && next.Category == cur.Category {
			return fmt.Errorf("%w: incident %s is already %s/%s/%s", ErrInvalid, id, cur.Status, cur.Severity, cur.Category)
		}
		now := s.clk.Now().UTC()
		if _, err := tx.ExecContext(ctx, d.bind(sqlUpdateIncidentReview), next.Status, next.Severity, next.Category, now.UnixNano(), id); err != nil {
			return fmt.Errorf("update incident %s: %w", id, err)
		}
		var seq int
		if err := tx.QueryRowContext(ctx, d.bind(sqlNextTransitionSeq), id).Scan(&seq); err != nil {
			return fmt.Errorf("transition seq of %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, d.bind(sqlInsertTransition), id, seq, now.UnixNano(), v.Actor,
			cur.Status, next.Status, cur.Severity, next.Severity, cur.Category, next.Category, v.Reason); err != nil {
			return fmt.Errorf("record transition of %s: %w", id, err)
		}
		if _, err := s.appendAudit(ctx, tx, AuditRecord{Actor: v.Actor, Action: "incident.verdict", Object: "incident:" + id,
			Trial: cur.Trial, Reason: v.Reason, Detail: map[string]any{"from": cur.Status, "to": next.Status,
				"severity": next.Severity, "category": next.Category}}); err != nil {
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

// ReviewEvents lists the recorded changes of incident id, oldest first (empty when
// it has none or does not exist).
func (s *sqlStore) ReviewEvents(ctx context.Context, id string) ([]ReviewEvent, error) {
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(sqlSelectTransitions), id)
	if err != nil {
		return nil, fmt.Errorf("list transitions of %s: %w", id, err)
	}
	defer rows.Close()
	out := []ReviewEvent{}
	for rows.Next() {
		var (
			e  ReviewEvent
			at int64
		)
		if err := rows.Scan(&e.IncidentID, &e.Seq, &at, &e.Actor, &e.FromStatus, &e.ToStatus,
			&e.FromSeverity, &e.ToSeverity, &e.FromCategory, &e.ToCategory, &e.Reason); err != nil {
			return nil, fmt.Errorf("list transitions of %s: %w", id, err)
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list transitions of %s: %w", id, err)
	}
	return out, nil
}
