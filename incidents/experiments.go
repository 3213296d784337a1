package incidents

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

// Policy experiments (package policies/experiment) are stored here: the
// definition as applied (YAML, not read by the store), the lifecycle status
// with who moved it and why, and every transition, each also appended to the
// audit log in the same transaction. The store also answers the analysis:
// the recorded interactions an experiment marked, and the incidents opened
// on a trial's interactions. Its migration is in zz_experiments_schema.go.

// Experiment statuses: draft → running → stopped → concluded.
const (
	ExperimentDraft     = "draft"
	ExperimentRunning   = "running"
	ExperimentStopped   = "stopped"
	ExperimentConcluded = "concluded"
)

// Causes of a stop.
const (
	// StopByRule: a guard-rail crossed its bound.
	StopByRule = "rule"
	// StopByHand: a person stopped it, with a reason.
	StopByHand = "hand"
	// StopPlannedEnd: the planned duration passed.
	StopPlannedEnd = "planned_end"
)

// Bounds of stored experiments.
const (
	// MaxExperimentSourceBytes bounds one definition.
	MaxExperimentSourceBytes = 256 << 10
	// MaxExperimentConclusion bounds the stored conclusion.
	MaxExperimentConclusion = 4000
	// MaxExperimentRows bounds one observation or incident query.
	MaxExperimentRows = 2_000_000
)

// Experiment is one stored experiment.
type Experiment struct {
	Name   string `json:"name"`
	Trial  string `json:"trial"`
	Status string `json:"status"`
	// Revision counts applies of the definition while it was a draft.
	Revision  int       `json:"revision"`
	Digest    string    `json:"digest"` // "sha256:" + hex of Source
	Source    string    `json:"source,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	UpdatedAt time.Time `json:"updated_at"`
	StartedAt time.Time `json:"started_at,omitzero"`
	StartedBy string    `json:"started_by,omitempty"`
	StoppedAt time.Time `json:"stopped_at,omitzero"`
	StoppedBy string    `json:"stopped_by,omitempty"`
	// StopCause is StopByRule, StopByHand or StopPlannedEnd; StopReason says
	// why in words (the guard-rail and its numbers, or the person's reason).
	StopCause   string    `json:"stop_cause,omitempty"`
	StopReason  string    `json:"stop_reason,omitempty"`
	ConcludedAt time.Time `json:"concluded_at,omitzero"`
	ConcludedBy string    `json:"concluded_by,omitempty"`
	// Conclusion is the report's one-line conclusion when it was concluded.
	Conclusion string `json:"conclusion,omitempty"`
}

// ExperimentChange moves an experiment from one status to the next.
type ExperimentChange struct {
	Name string
	// From is the status the experiment must be in; To the status it goes to.
	From, To string
	// Actor is who (a person, or "controller" for a rule).
	Actor string
	// Cause of a stop (StopBy*); Reason in words.
	Cause, Reason string
	// Conclusion is stored when To is concluded.
	Conclusion string
	// Detail is any JSON-encodable value recorded in the audit entry.
	Detail any
}

// ExperimentTransition is one recorded change of an experiment.
type ExperimentTransition struct {
	Name   string    `json:"name"`
	Seq    int       `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Cause  string    `json:"cause,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// ExperimentObservation is one recorded interaction an experiment marked.
type ExperimentObservation struct {
	InteractionID   string    `json:"interaction_id"`
	User            string    `json:"user"`
	Arm             string    `json:"arm"`
	VariantRevision string    `json:"variant_revision"`
	Status          string    `json:"status"`
	StartedAt       time.Time `json:"started_at"`
	RecordedAt      time.Time `json:"recorded_at"`
	LatencyMS       float64   `json:"latency_ms"`
}

// ObservationQuery selects the interactions of one experiment.
type ObservationQuery struct {
	Trial, Experiment string
	// From and To bound started_at: [From, To); a zero To is open.
	From, To time.Time
	// RecordedSince skips interactions stored before it (incremental reads).
	RecordedSince time.Time
}

// ExperimentIncident is an incident on one interaction of a trial.
type ExperimentIncident struct {
	InteractionID string `json:"interaction_id"`
	Category      string `json:"category"`
	Severity      string `json:"severity"`
	Status        string `json:"status"`
}

// ExperimentStore is the experiment part of a store (implemented by *SQLStore).
type ExperimentStore interface {
	PutExperiment(ctx context.Context, name, trial, actor string, source []byte) (Experiment, bool, error)
	Experiment(ctx context.Context, name string) (Experiment, error)
	Experiments(ctx context.Context, trial string) ([]Experiment, error)
	TransitionExperiment(ctx context.Context, ch ExperimentChange) (Experiment, error)
	ExperimentTransitions(ctx context.Context, name string) ([]ExperimentTransition, error)
	ExperimentObservations(ctx context.Context, q ObservationQuery) ([]ExperimentObservation, error)
	ExperimentIncidents(ctx context.Context, trial string, since time.Time) ([]ExperimentIncident, error)
}

var _ ExperimentStore = (*SQLStore)(nil)

// Experiment statements, written with "?" placeholders like sql.go.
const (
	experimentColumns = `name, trial, status, revision, digest, created_at, created_by, updated_at,
		started_at, started_by, stopped_at, stopped_by, stop_cause, stop_reason, concluded_at, concluded_by, conclusion`

	sqlSelectExperiment       = `SELECT ` + experimentColumns + `, source FROM experiments WHERE name = ?`
	sqlSelectExperimentsAll   = `SELECT ` + experimentColumns + `, '' FROM experiments ORDER BY created_at, name`
	sqlSelectExperimentsTrial = `SELECT ` + experimentColumns + `, '' FROM experiments WHERE trial = ? ORDER BY created_at, name`
	sqlInsertExperiment       = `INSERT INTO experiments (name, trial, status, revision, digest, source, created_at, created_by, updated_at,
		started_at, started_by, stopped_at, stopped_by, stop_cause, stop_reason, concluded_at, concluded_by, conclusion)
		VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, 0, '', 0, '', '', '', 0, '', '')`
	sqlUpdateExperimentDraft  = `UPDATE experiments SET trial = ?, revision = ?, digest = ?, source = ?, updated_at = ? WHERE name = ? AND status = ?`
	sqlRunningInTrial         = `SELECT name FROM experiments WHERE trial = ? AND status = ? AND name <> ? LIMIT 1`
	sqlStartExperiment        = `UPDATE experiments SET status = ?, started_at = ?, started_by = ?, updated_at = ? WHERE name = ? AND status = ?`
	sqlStopExperiment         = `UPDATE experiments SET status = ?, stopped_at = ?, stopped_by = ?, stop_cause = ?, stop_reason = ?, updated_at = ? WHERE name = ? AND status = ?`
	sqlConcludeExperiment     = `UPDATE experiments SET status = ?, concluded_at = ?, concluded_by = ?, conclusion = ?, updated_at = ? WHERE name = ? AND status = ?`
	sqlNextExperimentSeq      = `SELECT COALESCE(MAX(seq), 0) + 1 FROM experiment_transitions WHERE name = ?`
	sqlInsertExperimentTrans  = `INSERT INTO experiment_transitions (name, seq, at, actor, from_status, to_status, cause, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	sqlSelectExperimentTrans  = `SELECT name, seq, at, actor, from_status, to_status, cause, reason FROM experiment_transitions WHERE name = ? ORDER BY seq`
	sqlExperimentObservations = `SELECT id, started_at, recorded_at, payload FROM interactions
		WHERE trial = ? AND started_at >= ? AND started_at < ? AND recorded_at >= ? ORDER BY started_at, id LIMIT ?`
	sqlExperimentIncidents = `SELECT interaction_id, category, severity, status FROM incidents
		WHERE trial = ? AND created_at >= ? ORDER BY created_at, id LIMIT ?`
)

// experimentNext lists the status each status may move to.
var experimentNext = map[string]string{
	ExperimentDraft:   ExperimentRunning,
	ExperimentRunning: ExperimentStopped,
	ExperimentStopped: ExperimentConcluded,
}

// PutExperiment stores a definition: a new experiment as a draft (revision
// 1), a changed definition of a draft as its next revision. created is false
// when the definition is unchanged. A started experiment's definition is
// fixed: ErrConflict.
func (s *sqlStore) PutExperiment(ctx context.Context, name, trial, actor string, source []byte) (Experiment, bool, error) {
	var errs []error
	if !events.ValidToken(name) || !events.ValidToken(trial) {
		errs = append(errs, fmt.Errorf("%w: experiment %q of trial %q: names are 1-64 letters, digits, '-' or '_'", ErrInvalid, name, trial))
	}
	if err := checkActor(actor); err != nil {
		errs = append(errs, err)
	}
	if len(source) == 0 || len(source) > MaxExperimentSourceBytes || !utf8.Valid(source) {
		errs = append(errs, fmt.Errorf("%w: experiment definition: 1-%d bytes of UTF-8", ErrInvalid, MaxExperimentSourceBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return Experiment{}, false, err
	}
	sum := sha256.Sum256(source)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	var (
		out     Experiment
		created bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		created = false
		now := s.clk.Now().UTC()
		cur, err := s.experiment(ctx, tx, name, true)
		switch {
		case errors.Is(err, ErrNotFound):
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertExperiment), name, trial, ExperimentDraft, digest, string(source),
				now.UnixNano(), actor, now.UnixNano()); err != nil {
				return fmt.Errorf("store experiment %s: %w", name, err)
			}
		case err != nil:
			return err
		case cur.Status != ExperimentDraft:
			return fmt.Errorf("%w: experiment %s is %s; a started experiment's definition cannot change (apply it under a new name)", ErrConflict, name, cur.Status)
		case cur.Digest == digest && cur.Trial == trial:
			out = cur
			return nil
		default:
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlUpdateExperimentDraft), trial, cur.Revision+1, digest, string(source),
				now.UnixNano(), name, ExperimentDraft); err != nil {
				return fmt.Errorf("store experiment %s: %w", name, err)
			}
		}
		created = true
		if _, err := s.appendAudit(ctx, tx, AuditRecord{Actor: actor, Action: "experiment.apply", Object: "experiment:" + name, Trial: trial,
			Detail: map[string]any{"digest": digest}}); err != nil {
			return err
		}
		out, err = s.experiment(ctx, tx, name, false)
		return err
	})
	if err != nil {
		return Experiment{}, false, err
	}
	return out, created, nil
}

// Experiment returns the experiment name with its definition, or ErrNotFound.
func (s *sqlStore) Experiment(ctx context.Context, name string) (Experiment, error) {
	if !events.ValidToken(name) {
		return Experiment{}, fmt.Errorf("%w: experiment name %q", ErrInvalid, name)
	}
	return s.experiment(ctx, s.db, name, false)
}

func (s *sqlStore) experiment(ctx context.Context, q querier, name string, lock bool) (Experiment, error) {
	stmt := sqlSelectExperiment
	if lock {
		stmt += s.st.d.forUpdate
	}
	e, err := scanExperiment(q.QueryRowContext(ctx, s.st.d.bind(stmt), name))
	if errors.Is(err, sql.ErrNoRows) {
		return Experiment{}, fmt.Errorf("experiment %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Experiment{}, fmt.Errorf("read experiment %q: %w", name, err)
	}
	return e, nil
}

// Experiments lists the experiments of trial (every trial when ""), oldest
// first, without their definitions.
func (s *sqlStore) Experiments(ctx context.Context, trial string) ([]Experiment, error) {
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case trial == "":
		rows, err = s.db.QueryContext(ctx, s.st.d.bind(sqlSelectExperimentsAll))
	case !events.ValidToken(trial):
		return nil, fmt.Errorf("%w: trial %q", ErrInvalid, trial)
	default:
		rows, err = s.db.QueryContext(ctx, s.st.d.bind(sqlSelectExperimentsTrial), trial)
	}
	if err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	defer rows.Close()
	out := []Experiment{}
	for rows.Next() {
		e, err := scanExperiment(rows)
		if err != nil {
			return nil, fmt.Errorf("list experiments: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	return out, nil
}

// TransitionExperiment moves an experiment one step along its lifecycle when
// it is in ch.From, records the transition and appends it to the audit log,
// all in one transaction. ErrTransition when the step is not the next one or
// the experiment is no longer in ch.From; ErrConflict when another
// experiment of the trial is running.
func (s *sqlStore) TransitionExperiment(ctx context.Context, ch ExperimentChange) (Experiment, error) {
	var errs []error
	if !events.ValidToken(ch.Name) {
		errs = append(errs, fmt.Errorf("%w: experiment name %q", ErrInvalid, ch.Name))
	}
	if experimentNext[ch.From] != ch.To || ch.To == "" {
		errs = append(errs, fmt.Errorf("%w: experiment %s: %s → %s (the lifecycle is draft → running → stopped → concluded)", ErrTransition, ch.Name, ch.From, ch.To))
	}
	if err := checkActor(ch.Actor); err != nil {
		errs = append(errs, err)
	}
	if !utf8.ValidString(ch.Reason) || utf8.RuneCountInString(ch.Reason) > MaxReasonRunes {
		errs = append(errs, fmt.Errorf("%w: reason: at most %d characters of UTF-8", ErrInvalid, MaxReasonRunes))
	}
	if !utf8.ValidString(ch.Conclusion) || len(ch.Conclusion) > MaxExperimentConclusion {
		errs = append(errs, fmt.Errorf("%w: conclusion: at most %d bytes of UTF-8", ErrInvalid, MaxExperimentConclusion))
	}
	if ch.To == ExperimentStopped {
		switch ch.Cause {
		case StopByRule, StopByHand, StopPlannedEnd:
		default:
			errs = append(errs, fmt.Errorf("%w: stop cause %q: want rule, hand or planned_end", ErrInvalid, ch.Cause))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Experiment{}, err
	}
	var out Experiment
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.experiment(ctx, tx, ch.Name, true)
		if err != nil {
			return err
		}
		if cur.Status != ch.From {
			return fmt.Errorf("%w: experiment %s is %s, not %s", ErrTransition, ch.Name, cur.Status, ch.From)
		}
		d := s.st.d
		at := s.clk.Now().UTC().UnixNano()
		var res sql.Result
		switch ch.To {
		case ExperimentRunning:
			var other string
			switch err := tx.QueryRowContext(ctx, d.bind(sqlRunningInTrial+d.forUpdate), cur.Trial, ExperimentRunning, ch.Name).Scan(&other); {
			case err == nil:
				return fmt.Errorf("%w: experiment %s is already running in trial %s; stop it first (one experiment per trial at a time)", ErrConflict, other, cur.Trial)
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("check running experiments of %s: %w", cur.Trial, err)
			}
			res, err = tx.ExecContext(ctx, d.bind(sqlStartExperiment), ch.To, at, ch.Actor, at, ch.Name, ch.From)
		case ExperimentStopped:
			res, err = tx.ExecContext(ctx, d.bind(sqlStopExperiment), ch.To, at, ch.Actor, ch.Cause, ch.Reason, at, ch.Name, ch.From)
		case ExperimentConcluded:
			res, err = tx.ExecContext(ctx, d.bind(sqlConcludeExperiment), ch.To, at, ch.Actor, ch.Conclusion, at, ch.Name, ch.From)
		}
		if err != nil {
			return fmt.Errorf("move experiment %s to %s: %w", ch.Name, ch.To, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%w: experiment %s changed meanwhile", ErrTransition, ch.Name)
		}
		var seq int
		if err := tx.QueryRowContext(ctx, d.bind(sqlNextExperimentSeq), ch.Name).Scan(&seq); err != nil {
			return fmt.Errorf("record experiment %s transition: %w", ch.Name, err)
		}
		if _, err := tx.ExecContext(ctx, d.bind(sqlInsertExperimentTrans), ch.Name, seq, at, ch.Actor, ch.From, ch.To, ch.Cause, ch.Reason); err != nil {
			return fmt.Errorf("record experiment %s transition: %w", ch.Name, err)
		}
		action := map[string]string{ExperimentRunning: "experiment.start", ExperimentStopped: "experiment.stop", ExperimentConcluded: "experiment.conclude"}[ch.To]
		detail := map[string]any{"from": ch.From, "to": ch.To}
		if ch.Cause != "" {
			detail["cause"] = ch.Cause
		}
		if ch.Conclusion != "" {
			detail["conclusion"] = ch.Conclusion
		}
		if ch.Detail != nil {
			detail["detail"] = ch.Detail
		}
		if _, err := s.appendAudit(ctx, tx, AuditRecord{Actor: ch.Actor, Action: action, Object: "experiment:" + ch.Name,
			Trial: cur.Trial, Reason: ch.Reason, Detail: detail}); err != nil {
			return err
		}
		out, err = s.experiment(ctx, tx, ch.Name, false)
		return err
	})
	if err != nil {
		return Experiment{}, err
	}
	return out, nil
}

// ExperimentTransitions lists the recorded changes of an experiment, oldest first.
func (s *sqlStore) ExperimentTransitions(ctx context.Context, name string) ([]ExperimentTransition, error) {
	if !events.ValidToken(name) {
		return nil, fmt.Errorf("%w: experiment name %q", ErrInvalid, name)
	}
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(sqlSelectExperimentTrans), name)
	if err != nil {
		return nil, fmt.Errorf("read experiment %s transitions: %w", name, err)
	}
	defer rows.Close()
	out := []ExperimentTransition{}
	for rows.Next() {
		var (
			t  ExperimentTransition
			at int64
		)
		if err := rows.Scan(&t.Name, &t.Seq, &at, &t.Actor, &t.From, &t.To, &t.Cause, &t.Reason); err != nil {
			return nil, fmt.Errorf("read experiment %s transitions: %w", name, err)
		}
		t.At = time.Unix(0, at).UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read experiment %s transitions: %w", name, err)
	}
	return out, nil
}

// observedPayload is the part of a stored interaction the analysis reads.
type observedPayload struct {
	User     string `json:"user"`
	Status   string `json:"status"`
	Route    string `json:"route"`
	Decision struct {
		Experiment      string `json:"experiment"`
		Arm             string `json:"arm"`
		VariantRevision string `json:"variant_revision"`
	} `json:"decision"`
	Latency struct {
		TotalMS float64 `json:"total_ms"`
	} `json:"latency"`
}

// ExperimentObservations returns the stored interactions of q.Trial started in
// [q.From, q.To) whose decision names q.Experiment, in start order. Shadow
// copies are left out (the user never saw them). More than MaxExperimentRows
// interactions of the trial in the window is an ErrInvalid.
func (s *sqlStore) ExperimentObservations(ctx context.Context, q ObservationQuery) ([]ExperimentObservation, error) {
	if !events.ValidToken(q.Trial) || !events.ValidToken(q.Experiment) {
		return nil, fmt.Errorf("%w: trial %q, experiment %q", ErrInvalid, q.Trial, q.Experiment)
	}
	to := int64(1<<63 - 1)
	if !q.To.IsZero() {
		to = q.To.UnixNano()
	}
	var since int64
	if !q.RecordedSince.IsZero() {
		since = q.RecordedSince.UnixNano()
	}
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(sqlExperimentObservations), q.Trial, q.From.UnixNano(), to, since, MaxExperimentRows+1)
	if err != nil {
		return nil, fmt.Errorf("read interactions of experiment %s: %w", q.Experiment, err)
	}
	defer rows.Close()
	// Only payloads that name the experiment are decoded.
	mark := []byte(`"experiment":"` + q.Experiment + `"`)
	out := []ExperimentObservation{}
	n := 0
	for rows.Next() {
		var (
			id                string
			started, recorded int64
			payload           []byte
		)
		if err := rows.Scan(&id, &started, &recorded, &payload); err != nil {
			return nil, fmt.Errorf("read interactions of experiment %s: %w", q.Experiment, err)
		}
		if n++; n > MaxExperimentRows {
			return nil, fmt.Errorf("%w: more than %d interactions of trial %s in the experiment's window", ErrInvalid, MaxExperimentRows, q.Trial)
		}
		if !bytes.Contains(payload, mark) {
			continue
		}
		var p observedPayload
		if err := json.Unmarshal(payload, &p); err != nil || p.Decision.Experiment != q.Experiment || p.Route == events.RouteShadow {
			continue
		}
		out = append(out, ExperimentObservation{
			InteractionID: id, User: p.User, Arm: p.Decision.Arm, VariantRevision: p.Decision.VariantRevision, Status: p.Status,
			StartedAt: time.Unix(0, started).UTC(), RecordedAt: time.Unix(0, recorded).UTC(), LatencyMS: p.Latency.TotalMS,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read interactions of experiment %s: %w", q.Experiment, err)
	}
	return out, nil
}

// ExperimentIncidents returns the incidents of trial created at or after
// since, with their current status, category and severity.
func (s *sqlStore) ExperimentIncidents(ctx context.Context, trial string, since time.Time) ([]ExperimentIncident, error) {
	if !events.ValidToken(trial) {
		return nil, fmt.Errorf("%w: trial %q", ErrInvalid, trial)
	}
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(sqlExperimentIncidents), trial, since.UnixNano(), MaxExperimentRows+1)
	if err != nil {
		return nil, fmt.Errorf("read incidents of trial %s: %w", trial, err)
	}
	defer rows.Close()
	out := []ExperimentIncident{}
	for rows.Next() {
		var x ExperimentIncident
		if err := rows.Scan(&x.InteractionID, &x.Category, &x.Severity, &x.Status); err != nil {
			return nil, fmt.Errorf("read incidents of trial %s: %w", trial, err)
		}
		if len(out) == MaxExperimentRows {
			return nil, fmt.Errorf("%w: more than %d incidents of trial %s", ErrInvalid, MaxExperimentRows, trial)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incidents of trial %s: %w", trial, err)
	}
	return out, nil
}

// scanExperiment reads experimentColumns and the source of one row.
func scanExperiment(r scanner) (Experiment, error) {
	var (
		e                                             Experiment
		created, updated, started, stopped, concluded int64
	)
	err := r.Scan(&e.Name, &e.Trial, &e.Status, &e.Revision, &e.Digest, &created, &e.CreatedBy, &updated,
		&started, &e.StartedBy, &stopped, &e.StoppedBy, &e.StopCause, &e.StopReason, &concluded, &e.ConcludedBy, &e.Conclusion, &e.Source)
	if err != nil {
		return Experiment{}, err
	}
	e.CreatedAt, e.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	e.StartedAt, e.StoppedAt, e.ConcludedAt = unixOrZero(started), unixOrZero(stopped), unixOrZero(concluded)
	return e, nil
}

func unixOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
