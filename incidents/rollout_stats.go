package incidents

import (
	"context"
	"fmt"
	"time"

	"github.com/stagegate/stagegate/events"
)

// This file answers the questions the rollout gates ask of the store: how many
// answers did a model give since a time, how many of its incidents did reviewers
// confirm (per category and severity), and how many serious ones still wait for a
// reviewer.

// MaxUnresolvedIDs caps RolloutEvidence.UnresolvedSevereIDs.
const MaxUnresolvedIDs = 10

// SeverityCount is how many confirmed incidents of one category and severity a
// model has.
type SeverityCount struct {
	Category string `json:"category"`
	Severity string `json:"severity"`
	Count    int64  `json:"count"`
}

// RolloutEvidence is what the store knows about one model of one trial since a
// point in time.
type RolloutEvidence struct {
	// Trial and Model the numbers are about; Since is the start of the window.
	Trial string    `json:"trial"`
	Model string    `json:"model"`
	Since time.Time `json:"since"`
	// Interactions the model answered (status ok or partial) that started at or
	// after Since.
	Interactions int64 `json:"interactions"`
	// Confirmed counts incidents of the model created at or after Since that a
	// reviewer confirmed, per category and severity (sorted by category, severity).
	Confirmed []SeverityCount `json:"confirmed"`
	// UnresolvedSevere counts the model's incidents of high or critical severity
	// that no reviewer has closed yet (open, in_review or escalated), whenever
	// they were created.
	UnresolvedSevere int64 `json:"unresolved_severe"`
	// UnresolvedSevereIDs are the oldest of them, at most MaxUnresolvedIDs.
	UnresolvedSevereIDs []string `json:"unresolved_severe_ids"`
}

// ConfirmedAtLeast sums the confirmed incidents of category (or of every category
// when category is "*") whose severity is minSeverity or worse.
func (e *RolloutEvidence) ConfirmedAtLeast(category, minSeverity string) int64 {
	floor := events.SeverityRank(minSeverity)
	var n int64
	for _, c := range e.Confirmed {
		if (category == "*" || c.Category == category) && events.SeverityRank(c.Severity) >= floor {
			n += c.Count
		}
	}
	return n
}

// EvidenceSource is the store side of rollout gates (implemented by *SQLiteStore).
type EvidenceSource interface {
	RolloutEvidence(ctx context.Context, trial, model string, since time.Time) (*RolloutEvidence, error)
}

var _ EvidenceSource = (*SQLiteStore)(nil)

// Evidence statements; statuses and severities are bound as arguments.
const (
	sqlCountInteractionsSince = `SELECT COUNT(*) FROM interactions
		WHERE trial = ? AND model = ? AND started_at >= ? AND status IN (?, ?)`
	sqlConfirmedSince = `SELECT category, severity, COUNT(*) FROM incidents
		WHERE trial = ? AND model = ? AND status = ? AND created_at >= ?
		GROUP BY category, severity ORDER BY category, severity`
	sqlCountUnresolvedSevere = `SELECT COUNT(*) FROM incidents
		WHERE trial = ? AND model = ? AND status IN (?, ?, ?) AND severity IN (?, ?)`
	sqlUnresolvedSevereIDs = `SELECT id FROM incidents
		WHERE trial = ? AND model = ? AND status IN (?, ?, ?) AND severity IN (?, ?)
		ORDER BY created_at, id LIMIT ?`
)

// RolloutEvidence gathers the gate inputs for model in trial since since.
func (s *sqlStore) RolloutEvidence(ctx context.Context, trial, model string, since time.Time) (*RolloutEvidence, error) {
	if len(trial) > maxFilterLen || len(model) > maxFilterLen || trial == "" || model == "" {
		return nil, fmt.Errorf("%w: trial and model must be 1-%d bytes", ErrInvalid, maxFilterLen)
	}
	d := s.st.d
	ev := &RolloutEvidence{Trial: trial, Model: model, Since: since.UTC(), Confirmed: []SeverityCount{}, UnresolvedSevereIDs: []string{}}
	sinceNs := since.UnixNano()
	if err := s.db.QueryRowContext(ctx, d.bind(sqlCountInteractionsSince), trial, model, sinceNs,
		events.StatusOK, events.StatusPartial).Scan(&ev.Interactions); err != nil {
		return nil, fmt.Errorf("count interactions of %s/%s: %w", trial, model, err)
	}
	rows, err := s.db.QueryContext(ctx, d.bind(sqlConfirmedSince), trial, model, StatusConfirmed, sinceNs)
	if err != nil {
		return nil, fmt.Errorf("count confirmed incidents of %s/%s: %w", trial, model, err)
	}
	for rows.Next() {
		var c SeverityCount
		if err := rows.Scan(&c.Category, &c.Severity, &c.Count); err != nil {
			rows.Close()
			return nil, fmt.Errorf("count confirmed incidents of %s/%s: %w", trial, model, err)
		}
		ev.Confirmed = append(ev.Confirmed, c)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("count confirmed incidents of %s/%s: %w", trial, model, err)
	}
	unresolved := []any{trial, model, StatusOpen, StatusInReview, StatusEscalated, events.SeverityHigh, events.SeverityCritical}
	if err := s.db.QueryRowContext(ctx, d.bind(sqlCountUnresolvedSevere), unresolved...).Scan(&ev.UnresolvedSevere); err != nil {
		return nil, fmt.Errorf("count unresolved incidents of %s/%s: %w", trial, model, err)
	}
	if ev.UnresolvedSevere == 0 {
		return ev, nil
	}
	rows, err = s.db.QueryContext(ctx, d.bind(sqlUnresolvedSevereIDs), append(unresolved, MaxUnresolvedIDs)...)
	if err != nil {
		return nil, fmt.Errorf("list unresolved incidents of %s/%s: %w", trial, model, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list unresolved incidents of %s/%s: %w", trial, model, err)
		}
		ev.UnresolvedSevereIDs = append(ev.UnresolvedSevereIDs, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list unresolved incidents of %s/%s: %w", trial, model, err)
	}
	return ev, nil
}
