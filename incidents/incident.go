package incidents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

// Incident statuses: the reviewer workflow. An incident is opened by the monitors,
// claimed (in_review), and ends confirmed, dismissed or escalated to the regulator.
const (
	StatusOpen      = "open"
	StatusInReview  = "in_review"
	StatusConfirmed = "confirmed"
	StatusDismissed = "dismissed"
	StatusEscalated = "escalated"
)

// ValidStatus reports whether s is one of the Status* constants.
func ValidStatus(s string) bool {
	switch s {
	case StatusOpen, StatusInReview, StatusConfirmed, StatusDismissed, StatusEscalated:
		return true
	}
	return false
}

// Bounds on what the store accepts and returns.
const (
	// DefaultLimit is the page size of Incidents when Filter.Limit is 0.
	DefaultLimit = 100
	// MaxLimit caps Filter.Limit.
	MaxLimit = 1000
	// MaxFindings caps the findings of one OpenIncident call.
	MaxFindings = 256
	// MaxIDLen caps interaction and finding ids.
	MaxIDLen = 128
	// MaxTitleRunes caps an incident title.
	MaxTitleRunes = 200
	// maxFilterLen caps the string fields of a Filter.
	maxFilterLen = 64
)

// Incident is one interaction that the monitors flagged, with the findings that
// flagged it. Category and Severity are those of its highest-severity finding.
type Incident struct {
	ID            string           `json:"id"`
	Trial         string           `json:"trial"`
	Model         string           `json:"model"`
	InteractionID string           `json:"interaction_id"`
	Category      string           `json:"category"`
	Severity      string           `json:"severity"`
	Status        string           `json:"status"`
	Title         string           `json:"title"`
	Findings      []events.Finding `json:"findings"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
}

// Filter selects incidents. Empty string fields match everything.
type Filter struct {
	// Trial keeps incidents of this trial only.
	Trial string
	// Status keeps incidents in this status only (one of the Status* constants).
	Status string
	// Category keeps incidents of this category only (pii, prompt_injection, ...).
	Category string
	// Limit is the page size: 0 means DefaultLimit, larger than MaxLimit means MaxLimit.
	Limit int
}

// normalize validates f and applies the limit defaults.
func (f Filter) normalize() (Filter, error) {
	var errs []error
	if len(f.Trial) > maxFilterLen || len(f.Category) > maxFilterLen {
		errs = append(errs, fmt.Errorf("%w: filter trial/category longer than %d bytes", ErrInvalid, maxFilterLen))
	}
	if f.Status != "" && !ValidStatus(f.Status) {
		errs = append(errs, fmt.Errorf("%w: filter status %q", ErrInvalid, f.Status))
	}
	if f.Limit < 0 {
		errs = append(errs, fmt.Errorf("%w: filter limit %d is negative", ErrInvalid, f.Limit))
	}
	if len(errs) > 0 {
		return f, errors.Join(errs...)
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultLimit
	case f.Limit > MaxLimit:
		f.Limit = MaxLimit
	}
	return f, nil
}

// Store keeps interactions and incidents. Implementations are safe for concurrent
// use, also by several processes sharing one database.
type Store interface {
	// RecordInteraction stores an interaction; it is idempotent by interaction id
	// (a redelivered interaction keeps the first copy). When the policy obliged
	// redact_pii_in_storage, the caller passes a copy made by Redact.
	RecordInteraction(ctx context.Context, in *events.Interaction) error
	// Interaction returns a stored interaction, or ErrNotFound.
	Interaction(ctx context.Context, id string) (*events.Interaction, error)
	// OpenIncident merges the findings of one interaction into one incident (the
	// highest severity wins). It is idempotent: the incident id derives from the
	// interaction id and finding ids are deterministic, so a redelivered
	// interaction never makes a second incident nor a duplicate finding. created
	// is true only for the call that inserted the incident.
	OpenIncident(ctx context.Context, in *events.Interaction, findings []events.Finding) (inc *Incident, created bool, err error)
	// Incidents lists incidents matching f, newest first.
	Incidents(ctx context.Context, f Filter) ([]Incident, error)
	// Incident returns one incident with its findings, or ErrNotFound.
	Incident(ctx context.Context, id string) (*Incident, error)
	// Close releases the store.
	// Ping checks that the store answers (readiness probes).
	Ping(ctx context.Context) error
	Close() error
}

// IncidentID is the deterministic id of the incident of an interaction, so that
// any process handling a redelivery converges on the same incident.
func IncidentID(interactionID string) string {
	sum := sha256.Sum256([]byte("incident\x00" + interactionID))
	return "inc_" + hex.EncodeToString(sum[:10])
}

// interactionModel is the concrete model that served in, or the logical one.
func interactionModel(in *events.Interaction) string {
	if in.Model != "" {
		return in.Model
	}
	return in.LogicalModel
}

// checkInteraction validates what every store method needs of an interaction.
func checkInteraction(in *events.Interaction) error {
	if in == nil {
		return fmt.Errorf("%w: nil interaction", ErrInvalid)
	}
	if in.ID == "" || len(in.ID) > MaxIDLen {
		return fmt.Errorf("%w: interaction id must be 1-%d bytes", ErrInvalid, MaxIDLen)
	}
	return nil
}

// checkFindings validates the findings handed to OpenIncident, reporting every
// problem at once.
func checkFindings(in *events.Interaction, fs []events.Finding) error {
	if len(fs) == 0 {
		return fmt.Errorf("%w: no findings", ErrInvalid)
	}
	if len(fs) > MaxFindings {
		return fmt.Errorf("%w: %d findings (max %d)", ErrInvalid, len(fs), MaxFindings)
	}
	var errs []error
	for i := range fs {
		f := &fs[i]
		if f.ID == "" || len(f.ID) > MaxIDLen {
			errs = append(errs, fmt.Errorf("%w: finding %d: id must be 1-%d bytes", ErrInvalid, i, MaxIDLen))
		}
		if f.InteractionID != in.ID {
			errs = append(errs, fmt.Errorf("%w: finding %d: interaction_id %q is not %q", ErrInvalid, i, f.InteractionID, in.ID))
		}
		if f.Category == "" || f.Detector == "" {
			errs = append(errs, fmt.Errorf("%w: finding %d: detector and category are required", ErrInvalid, i))
		}
		if events.SeverityRank(f.Severity) == 0 {
			errs = append(errs, fmt.Errorf("%w: finding %d: severity %q", ErrInvalid, i, f.Severity))
		}
	}
	return errors.Join(errs...)
}

// worst returns the index of the finding that decides an incident's category and
// severity: highest severity, then highest score, then smallest id (so the choice
// is the same whatever order the findings arrive in).
func worst(fs []events.Finding) int {
	best := 0
	for i := 1; i < len(fs); i++ {
		a, b := &fs[i], &fs[best]
		ra, rb := events.SeverityRank(a.Severity), events.SeverityRank(b.Severity)
		switch {
		case ra != rb:
			if ra > rb {
				best = i
			}
		case a.Score != b.Score:
			if a.Score > b.Score {
				best = i
			}
		case a.ID < b.ID:
			best = i
		}
	}
	return best
}

// summarize sets inc's category, severity and title from fs (not empty).
func summarize(inc *Incident, fs []events.Finding) {
	w := &fs[worst(fs)]
	inc.Category = w.Category
	inc.Severity = w.Severity
	t := w.Category + ": " + w.Explanation
	if w.Explanation == "" {
		t = w.Category + " reported by " + w.Detector
	}
	if len(fs) > 1 {
		t += " (+" + strconv.Itoa(len(fs)-1) + " more)"
	}
	inc.Title = truncateRunes(t, MaxTitleRunes)
}

// truncateRunes cuts s to at most n code points, ending with "…" when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i = range s {
		if count == n-1 {
			break
		}
		count++
	}
	return s[:i] + "…"
}
