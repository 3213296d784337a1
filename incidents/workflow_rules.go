package incidents

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/stagegate/stagegate/events"
)

// Review rules of a trial: how fast incidents must be reviewed, when a serious
// incident must be reported to the authority, what share gets a second
// reviewer, and how long the audit trail is kept. The defaults follow Article 73
// of the EU AI Act (Regulation (EU) 2024/1689): a serious incident is reported
// within 15 days of awareness, 10 days when a person died, 2 days for a
// widespread infringement or a serious disruption of critical infrastructure.

// Defaults of TrialRules.
const (
	// DefaultReportDaysSerious is Art. 73(2): 15 days after awareness.
	DefaultReportDaysSerious = 15
	// DefaultReportDaysDeath is Art. 73(4): 10 days when the incident caused a death.
	DefaultReportDaysDeath = 10
	// DefaultReportDaysWidespread is Art. 73(3): 2 days for a widespread
	// infringement or a serious incident involving critical infrastructure.
	DefaultReportDaysWidespread = 2
	// DefaultSeriousSeverity: unassessed incidents at this severity or worse are
	// treated as potentially serious (their Art. 73 clock runs) until a reviewer
	// says otherwise.
	DefaultSeriousSeverity = events.SeverityHigh
	// DefaultSecondReviewShare is the share of decided incidents sampled for an
	// independent second review.
	DefaultSecondReviewShare = 0.1
	// DefaultRetentionDays is the audit trail's retention when the trial sets none.
	DefaultRetentionDays = 180
	// MaxRetentionDays bounds TrialRules.RetentionDays (ten years).
	MaxRetentionDays = 3650
	// maxTargetHours bounds an internal review target (one year).
	maxTargetHours = 24 * 366
)

// DefaultReviewTargetHours are the internal review targets per severity: how long
// after an incident opens a reviewer must have decided it.
var DefaultReviewTargetHours = map[string]int{
	events.SeverityCritical: 4,
	events.SeverityHigh:     24,
	events.SeverityMedium:   72,
	events.SeverityLow:      168,
}

// Harm classes a reviewer assigns when deciding (Art. 3(49) and Art. 73).
const (
	// HarmUnassessed: nobody said yet; high and critical incidents count as
	// potentially serious.
	HarmUnassessed = ""
	// HarmNone: not a serious incident in the sense of Art. 3(49).
	HarmNone = "none"
	// HarmSerious: serious harm to health, property, environment, or an
	// infringement of fundamental-rights obligations (15 days).
	HarmSerious = "serious"
	// HarmDeath: the incident caused a person's death (10 days).
	HarmDeath = "death"
	// HarmWidespread: a widespread infringement (2 days).
	HarmWidespread = "widespread"
	// HarmCriticalInfrastructure: serious and irreversible disruption of
	// critical infrastructure (2 days).
	HarmCriticalInfrastructure = "critical_infrastructure"
)

// ValidHarm reports whether h is one of the Harm* constants.
func ValidHarm(h string) bool {
	switch h {
	case HarmUnassessed, HarmNone, HarmSerious, HarmDeath, HarmWidespread, HarmCriticalInfrastructure:
		return true
	}
	return false
}

// TrialRules are a trial's review rules. Zero fields take the defaults (see
// WithDefaults), so a stored rule set only says what differs.
type TrialRules struct {
	// ReviewTargetHours is the internal review target per severity, in hours.
	ReviewTargetHours map[string]int `json:"review_target_hours,omitempty"`
	// ReportDaysSerious, ReportDaysDeath and ReportDaysWidespread are the Art. 73
	// reporting windows in days.
	ReportDaysSerious    int `json:"report_days_serious,omitempty"`
	ReportDaysDeath      int `json:"report_days_death,omitempty"`
	ReportDaysWidespread int `json:"report_days_widespread,omitempty"`
	// SeriousSeverity is the severity from which an unassessed incident counts as
	// potentially serious.
	SeriousSeverity string `json:"serious_severity,omitempty"`
	// SecondReviewShare is the share (0..1) of decided incidents sampled for a
	// second reviewer; a negative value turns sampling off.
	SecondReviewShare float64 `json:"second_review_share,omitempty"`
	// RetentionDays keeps the trial's audit entries at least this long.
	RetentionDays int `json:"retention_days,omitempty"`
}

// WithDefaults fills unset fields.
func (r TrialRules) WithDefaults() TrialRules {
	targets := make(map[string]int, len(DefaultReviewTargetHours))
	for sev, h := range DefaultReviewTargetHours {
		targets[sev] = h
	}
	for sev, h := range r.ReviewTargetHours {
		if h > 0 {
			targets[sev] = h
		}
	}
	r.ReviewTargetHours = targets
	if r.ReportDaysSerious == 0 {
		r.ReportDaysSerious = DefaultReportDaysSerious
	}
	if r.ReportDaysDeath == 0 {
		r.ReportDaysDeath = DefaultReportDaysDeath
	}
	if r.ReportDaysWidespread == 0 {
		r.ReportDaysWidespread = DefaultReportDaysWidespread
	}
	if r.SeriousSeverity == "" {
		r.SeriousSeverity = DefaultSeriousSeverity
	}
	switch {
	case r.SecondReviewShare == 0:
		r.SecondReviewShare = DefaultSecondReviewShare
	case r.SecondReviewShare < 0:
		r.SecondReviewShare = 0
	}
	if r.RetentionDays == 0 {
		r.RetentionDays = DefaultRetentionDays
	}
	return r
}

// Validate reports every problem at once.
func (r TrialRules) Validate() error {
	var errs []error
	for sev, h := range r.ReviewTargetHours {
		if events.SeverityRank(sev) == 0 {
			errs = append(errs, fmt.Errorf("%w: review_target_hours: severity %q: want low, medium, high or critical", ErrInvalid, sev))
		}
		if h < 0 || h > maxTargetHours {
			errs = append(errs, fmt.Errorf("%w: review_target_hours.%s: %d is not in 0..%d", ErrInvalid, sev, h, maxTargetHours))
		}
	}
	for _, d := range []struct {
		name string
		v    int
	}{{"report_days_serious", r.ReportDaysSerious}, {"report_days_death", r.ReportDaysDeath}, {"report_days_widespread", r.ReportDaysWidespread}} {
		// Art. 73 sets maximums: a trial may ask for faster reports, never slower.
		if d.v < 0 || d.v > DefaultReportDaysSerious {
			errs = append(errs, fmt.Errorf("%w: %s: %d is not in 0..%d (Art. 73 allows at most %d days)", ErrInvalid, d.name, d.v, DefaultReportDaysSerious, DefaultReportDaysSerious))
		}
	}
	if r.ReportDaysDeath > DefaultReportDaysDeath {
		errs = append(errs, fmt.Errorf("%w: report_days_death: %d is more than Art. 73(4)'s %d days", ErrInvalid, r.ReportDaysDeath, DefaultReportDaysDeath))
	}
	if r.ReportDaysWidespread > DefaultReportDaysWidespread {
		errs = append(errs, fmt.Errorf("%w: report_days_widespread: %d is more than Art. 73(3)'s %d days", ErrInvalid, r.ReportDaysWidespread, DefaultReportDaysWidespread))
	}
	if r.SeriousSeverity != "" && events.SeverityRank(r.SeriousSeverity) == 0 {
		errs = append(errs, fmt.Errorf("%w: serious_severity %q: want low, medium, high or critical", ErrInvalid, r.SeriousSeverity))
	}
	if r.SecondReviewShare > 1 || math.IsNaN(r.SecondReviewShare) {
		errs = append(errs, fmt.Errorf("%w: second_review_share %v: want a share in 0..1 (negative: off)", ErrInvalid, r.SecondReviewShare))
	}
	if r.RetentionDays < 0 || r.RetentionDays > MaxRetentionDays {
		errs = append(errs, fmt.Errorf("%w: retention_days %d: want 0..%d", ErrInvalid, r.RetentionDays, MaxRetentionDays))
	}
	return errors.Join(errs...)
}

// Deadline kinds.
const (
	// DeadlineReview is the internal review target.
	DeadlineReview = "review"
	// DeadlineReport is the Art. 73 report to the market surveillance authority.
	DeadlineReport = "report"
)

// Deadline states, from Deadline.State.
const (
	DeadlineOK      = "ok"      // under 50 % of the window used
	DeadlineWarning = "warning" // 50 % or more used
	DeadlineUrgent  = "urgent"  // 80 % or more used
	DeadlineOverdue = "overdue" // past due, still pending
	DeadlineMet     = "met"     // done before due
	DeadlineMissed  = "missed"  // done after due
)

// Deadline is one clock running on an incident.
type Deadline struct {
	// Kind is DeadlineReview or DeadlineReport.
	Kind string `json:"kind"`
	// Start and Due bound the window; Basis says which rule set it.
	Start time.Time `json:"start"`
	Due   time.Time `json:"due"`
	Basis string    `json:"basis"`
	// Done is when it was satisfied (zero while pending).
	Done time.Time `json:"done,omitzero"`
}

// Fraction is the share of the window used at now (may exceed 1).
func (d Deadline) Fraction(now time.Time) float64 {
	win := d.Due.Sub(d.Start)
	if win <= 0 {
		return 1
	}
	return float64(now.Sub(d.Start)) / float64(win)
}

// WarnAt is the time at which frac (0.5, 0.8) of the window is used.
func (d Deadline) WarnAt(frac float64) time.Time {
	return d.Start.Add(time.Duration(float64(d.Due.Sub(d.Start)) * frac))
}

// State is one of the Deadline* states at now.
func (d Deadline) State(now time.Time) string {
	if !d.Done.IsZero() {
		if !d.Done.Before(d.Due) { // at Due it is overdue, so done at Due is late
			return DeadlineMissed
		}
		return DeadlineMet
	}
	switch f := d.Fraction(now); {
	case !now.Before(d.Due):
		return DeadlineOverdue
	case f >= 0.8:
		return DeadlineUrgent
	case f >= 0.5:
		return DeadlineWarning
	}
	return DeadlineOK
}

// Remaining is the time left until Due at now (negative when overdue).
func (d Deadline) Remaining(now time.Time) time.Duration { return d.Due.Sub(now) }

// resolved reports whether status ends the review (confirmed or dismissed).
func resolved(status string) bool { return status == StatusConfirmed || status == StatusDismissed }

// Serious reports whether an incident counts as (potentially) serious under the
// rules: a reviewer said so with a harm class, or it is unassessed at or above
// the rules' serious severity. A dismissed incident is never serious.
func (r TrialRules) Serious(status, severity, harm string) bool {
	if status == StatusDismissed {
		return false
	}
	switch harm {
	case HarmSerious, HarmDeath, HarmWidespread, HarmCriticalInfrastructure:
		return true
	case HarmNone:
		return false
	}
	return events.SeverityRank(severity) >= events.SeverityRank(r.WithDefaults().SeriousSeverity)
}

// Deadlines computes the review deadline and, for a serious incident, the
// Art. 73 report deadline. r must have its defaults applied.
func (r TrialRules) Deadlines(created time.Time, status, severity, harm string, decided, reported time.Time) (review Deadline, report *Deadline) {
	hours := r.ReviewTargetHours[severity]
	if hours <= 0 {
		hours = DefaultReviewTargetHours[events.SeverityLow]
	}
	review = Deadline{Kind: DeadlineReview, Start: created, Due: created.Add(time.Duration(hours) * time.Hour),
		Basis: fmt.Sprintf("internal review target for %s severity: %d h", severity, hours)}
	if resolved(status) {
		review.Done = decided
		if review.Done.IsZero() {
			review.Done = created // decided outside the workflow; treat as immediate
		}
	}
	if !r.Serious(status, severity, harm) {
		return review, nil
	}
	days, basis := r.ReportDaysSerious, "Art. 73(2): serious incident, %d days after awareness"
	switch harm {
	case HarmDeath:
		days, basis = r.ReportDaysDeath, "Art. 73(4): death of a person, %d days after awareness"
	case HarmWidespread:
		days, basis = r.ReportDaysWidespread, "Art. 73(3): widespread infringement, %d days after awareness"
	case HarmCriticalInfrastructure:
		days, basis = r.ReportDaysWidespread, "Art. 73(3): critical infrastructure, %d days after awareness"
	case HarmUnassessed:
		basis = "Art. 73(2): potentially serious (not yet assessed), %d days after awareness"
	}
	report = &Deadline{Kind: DeadlineReport, Start: created, Due: created.Add(time.Duration(days) * 24 * time.Hour),
		Basis: fmt.Sprintf(basis, days), Done: reported}
	return review, report
}

// sampled decides, deterministically per incident, whether it goes to a second
// reviewer: the incident id hashes to a point in [0, 1) compared with share.
func sampled(incidentID string, share float64) bool {
	if share <= 0 {
		return false
	}
	sum := sha256.Sum256([]byte("second-review\x00" + incidentID))
	u := float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
	return u < share
}

// Rules statements.
const (
	sqlSelectTrialRules = `SELECT rules FROM trial_rules WHERE trial = ?`
	sqlUpsertTrialRules = `INSERT INTO trial_rules (trial, rules, updated_at, updated_by) VALUES (?, ?, ?, ?)
		ON CONFLICT (trial) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at, updated_by = excluded.updated_by`
)

// TrialRules returns the review rules of trial with defaults applied (the
// defaults alone when none were set).
func (s *sqlStore) TrialRules(ctx context.Context, trial string) (TrialRules, error) {
	if !events.ValidToken(trial) {
		return TrialRules{}, fmt.Errorf("%w: trial %q", ErrInvalid, trial)
	}
	return s.trialRules(ctx, s.db, trial)
}

func (s *sqlStore) trialRules(ctx context.Context, q querier, trial string) (TrialRules, error) {
	var raw string
	err := q.QueryRowContext(ctx, s.st.d.bind(sqlSelectTrialRules), trial).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return TrialRules{}.WithDefaults(), nil
	}
	if err != nil {
		return TrialRules{}, fmt.Errorf("read rules of %s: %w", trial, err)
	}
	var r TrialRules
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return TrialRules{}, fmt.Errorf("decode rules of %s: %w", trial, err)
	}
	return r.WithDefaults(), nil
}

// SetTrialRules stores trial's review rules (as given; defaults apply on read),
// recomputes the deadlines of its incidents and records the change in the audit
// trail.
func (s *sqlStore) SetTrialRules(ctx context.Context, trial string, r TrialRules, actor, reason string) error {
	var errs []error
	if !events.ValidToken(trial) {
		errs = append(errs, fmt.Errorf("%w: trial %q", ErrInvalid, trial))
	}
	if err := checkActor(actor); err != nil {
		errs = append(errs, err)
	}
	if err := r.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode rules: %w", err)
	}
	now := s.clk.Now().UTC()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlUpsertTrialRules), trial, string(raw), now.UnixNano(), actor); err != nil {
			return fmt.Errorf("store rules of %s: %w", trial, err)
		}
		if err := s.recomputeTrial(ctx, tx, trial); err != nil {
			return err
		}
		_, err := s.appendAudit(ctx, tx, AuditRecord{Actor: actor, Action: "trial.rules", Object: "trial:" + trial, Trial: trial,
			Reason: reason, Detail: json.RawMessage(raw)})
		return err
	})
}
