package incidents

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

// sqlStore implements Store over database/sql for any dialect; SQLStore embeds
// it, and OpenSQLite and OpenPostgres only differ in how they open the database.
type sqlStore struct {
	db  *sql.DB
	st  *statements
	clk clock.Clock
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// migrate brings the schema to the newest version, in one transaction on one
// connection that holds the dialect's migration lock, if it has one. Each
// applied version is recorded in schema_migrations.
func (s *sqlStore) migrate(ctx context.Context) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if d := s.st.d; d.lockMigrations != "" {
		if _, err := conn.ExecContext(ctx, d.lockMigrations); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		defer func() {
			if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), d.unlockMigrations); uerr != nil {
				// Never hand a connection still holding the lock back to the pool.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	if _, err := conn.ExecContext(ctx, sqlCreateMigrations); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	if err := s.applyMigrations(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// applyMigrations runs the migrations newer than the recorded version.
func (s *sqlStore) applyMigrations(ctx context.Context, tx *sql.Tx) error {
	var version int
	if err := tx.QueryRowContext(ctx, s.st.schemaVersion).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("%w: database at version %d, this binary knows %d", ErrSchemaVersion, version, len(migrations))
	}
	for _, m := range migrations[version:] {
		for i, stmt := range m.Statements {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s, statement %d: %w", m.Name, i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.st.insertMigration, m.Version, s.clk.Now().UnixNano()); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// maxTxAttempts bounds how often inTx runs a transaction the engine aborted
// for a retryable reason (a PostgreSQL deadlock or serialization failure).
const maxTxAttempts = 5

// inTx runs fn in a transaction, committing when it returns nil. fn may run
// again when the dialect says the engine aborted it for a retryable reason, so
// it must only touch the database and its own result variables.
func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, fn)
		if err == nil || attempt == maxTxAttempts || s.st.d.retryable == nil || !s.st.d.retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (s *sqlStore) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// RecordInteraction stores in, keeping the first copy when the id is already stored.
func (s *sqlStore) RecordInteraction(ctx context.Context, in *events.Interaction) error {
	if err := checkInteraction(in); err != nil {
		return err
	}
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode interaction %s: %w", in.ID, err)
	}
	if len(payload) > events.MaxPayloadBytes {
		return fmt.Errorf("%w: interaction %s is %d bytes (max %d)", ErrInvalid, in.ID, len(payload), events.MaxPayloadBytes)
	}
	redacted := 0
	if in.Redacted {
		redacted = 1
	}
	_, err = s.db.ExecContext(ctx, s.st.insertInteraction,
		in.ID, in.Trial, interactionModel(in), in.Status, redacted,
		in.StartedAt.UnixNano(), s.clk.Now().UnixNano(), string(payload))
	if err != nil {
		return fmt.Errorf("record interaction %s: %w", in.ID, err)
	}
	return nil
}

// Interaction returns the stored interaction id, or ErrNotFound.
func (s *sqlStore) Interaction(ctx context.Context, id string) (*events.Interaction, error) {
	var payload string
	err := s.db.QueryRowContext(ctx, s.st.selectInteraction, id).Scan(&payload)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("interaction %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read interaction %q: %w", id, err)
	}
	var in events.Interaction
	if err := json.Unmarshal([]byte(payload), &in); err != nil {
		return nil, fmt.Errorf("decode stored interaction %q: %w", id, err)
	}
	return &in, nil
}

// OpenIncident merges findings into the one incident of interaction in.
func (s *sqlStore) OpenIncident(ctx context.Context, in *events.Interaction, findings []events.Finding) (*Incident, bool, error) {
	if err := checkInteraction(in); err != nil {
		return nil, false, err
	}
	if err := checkFindings(in, findings); err != nil {
		return nil, false, err
	}
	now := s.clk.Now().UTC()
	inc := Incident{
		ID:            IncidentID(in.ID),
		Trial:         in.Trial,
		Model:         interactionModel(in),
		InteractionID: in.ID,
		Status:        StatusOpen,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	summarize(&inc, findings)

	var (
		out     *Incident
		created bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.st.insertIncident,
			inc.ID, inc.InteractionID, inc.Trial, inc.Model, inc.Category, inc.Severity,
			inc.Status, inc.Title, now.UnixNano(), now.UnixNano())
		if err != nil {
			return fmt.Errorf("insert incident %s: %w", inc.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("insert incident %s: %w", inc.ID, err)
		}
		created = n == 1

		inserted, err := s.insertFindings(ctx, tx, inc.ID, findings)
		if err != nil {
			return err
		}
		if !created && inserted > 0 {
			if err := s.remerge(ctx, tx, inc.ID, now); err != nil {
				return err
			}
		}
		out, err = s.loadIncident(ctx, tx, inc.ID)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// insertFindings stores fs under incident id, skipping ids already stored, and
// returns how many rows were new.
func (s *sqlStore) insertFindings(ctx context.Context, tx *sql.Tx, incidentID string, fs []events.Finding) (int64, error) {
	var inserted int64
	for i := range fs {
		f := &fs[i]
		payload, err := json.Marshal(f)
		if err != nil {
			return 0, fmt.Errorf("encode finding %s: %w", f.ID, err)
		}
		res, err := tx.ExecContext(ctx, s.st.insertFinding,
			f.ID, incidentID, f.InteractionID, f.Detector, f.Category, f.Severity, f.Score,
			f.CreatedAt.UnixNano(), string(payload))
		if err != nil {
			return 0, fmt.Errorf("insert finding %s: %w", f.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("insert finding %s: %w", f.ID, err)
		}
		inserted += n
	}
	return inserted, nil
}

// remerge recomputes an existing incident's summary after new findings joined it.
// Severity only goes up: a lower computed severity (say, after a reviewer raised
// it) leaves category, severity and title as they are.
func (s *sqlStore) remerge(ctx context.Context, tx *sql.Tx, id string, now time.Time) error {
	cur, err := scanIncident(tx.QueryRowContext(ctx, s.st.selectIncidentForUpdate, id))
	if err != nil {
		return fmt.Errorf("lock incident %s: %w", id, err)
	}
	all, err := s.findings(ctx, tx, id)
	if err != nil {
		return err
	}
	next := cur
	summarize(&next, all)
	if events.SeverityRank(next.Severity) >= events.SeverityRank(cur.Severity) {
		_, err = tx.ExecContext(ctx, s.st.updateIncidentFindings, next.Category, next.Severity, next.Title, now.UnixNano(), id)
	} else {
		_, err = tx.ExecContext(ctx, s.st.touchIncident, now.UnixNano(), id)
	}
	if err != nil {
		return fmt.Errorf("update incident %s: %w", id, err)
	}
	return nil
}

// Incident returns the incident id with its findings, or ErrNotFound.
func (s *sqlStore) Incident(ctx context.Context, id string) (*Incident, error) {
	return s.loadIncident(ctx, s.db, id)
}

func (s *sqlStore) loadIncident(ctx context.Context, q querier, id string) (*Incident, error) {
	inc, err := scanIncident(q.QueryRowContext(ctx, s.st.selectIncident, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("incident %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read incident %q: %w", id, err)
	}
	inc.Findings, err = s.findings(ctx, q, id)
	if err != nil {
		return nil, err
	}
	return &inc, nil
}

// findings loads the findings of one incident, oldest first.
func (s *sqlStore) findings(ctx context.Context, q querier, incidentID string) ([]events.Finding, error) {
	rows, err := q.QueryContext(ctx, s.st.selectFindings, incidentID)
	if err != nil {
		return nil, fmt.Errorf("read findings of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var out []events.Finding
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			return nil, fmt.Errorf("read findings of %s: %w", incidentID, err)
		}
		var f events.Finding
		if err := json.Unmarshal([]byte(payload), &f); err != nil {
			return nil, fmt.Errorf("decode stored finding of %s: %w", incidentID, err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read findings of %s: %w", incidentID, err)
	}
	return out, nil
}

// Incidents lists incidents matching f, newest first, each with its findings.
func (s *sqlStore) Incidents(ctx context.Context, f Filter) ([]Incident, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	query, args := s.st.listIncidents(f)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	var out []Incident
	for rows.Next() {
		inc, err := scanIncident(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		out = append(out, inc)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	if err := s.attachFindings(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// attachFindings loads the findings of a page of incidents in one query.
func (s *sqlStore) attachFindings(ctx context.Context, incs []Incident) error {
	ids := make([]string, len(incs))
	index := make(map[string]int, len(incs))
	for i := range incs {
		ids[i] = incs[i].ID
		index[incs[i].ID] = i
	}
	query, args := s.st.findingsOf(ids)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("list findings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var incID, payload string
		if err := rows.Scan(&incID, &payload); err != nil {
			return fmt.Errorf("list findings: %w", err)
		}
		var f events.Finding
		if err := json.Unmarshal([]byte(payload), &f); err != nil {
			return fmt.Errorf("decode stored finding of %s: %w", incID, err)
		}
		if i, ok := index[incID]; ok {
			incs[i].Findings = append(incs[i].Findings, f)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list findings: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *sqlStore) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *sqlStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanIncident reads the incidentColumns of one row (findings not included).
func scanIncident(r scanner) (Incident, error) {
	var (
		inc                  Incident
		createdNs, updatedNs int64
	)
	err := r.Scan(&inc.ID, &inc.InteractionID, &inc.Trial, &inc.Model, &inc.Category,
		&inc.Severity, &inc.Status, &inc.Title, &createdNs, &updatedNs)
	if err != nil {
		return Incident{}, err
	}
	inc.CreatedAt = time.Unix(0, createdNs).UTC()
	inc.UpdatedAt = time.Unix(0, updatedNs).UTC()
	return inc, nil
}
