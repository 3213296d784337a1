package incidents

import (
	"strconv"
	"strings"
)

// This file holds the SQL of the store's queries; the schema lives in the
// embedded migrations/*.sql files (migrations.go). Statements are written once with
// "?" placeholders in a subset both SQLite (3.24+) and PostgreSQL accept (TEXT,
// BIGINT, DOUBLE PRECISION, ON CONFLICT ... DO NOTHING); a dialect renders them
// (PostgreSQL wants $1, $2, ... and row locks for read-then-write).
// Timestamps are stored as BIGINT Unix nanoseconds, UTC.

// dialect is what differs between SQL engines.
type dialect struct {
	// name for errors and logs.
	name string
	// numbered placeholders ($1, $2, ...) instead of "?".
	numbered bool
	// forUpdate is appended to a SELECT that precedes an UPDATE in a transaction.
	forUpdate string
	// lockMigrations and unlockMigrations, when set, bracket the migrations on
	// one connection so processes starting together apply each migration once
	// (PostgreSQL: an advisory lock; SQLite's BEGIN IMMEDIATE needs none).
	lockMigrations, unlockMigrations string
	// retryable reports an error after which the whole transaction may be run
	// again (PostgreSQL: deadlock or serialization failure); nil: none is.
	retryable func(error) bool
}

// sqliteDialect: BEGIN IMMEDIATE (_txlock=immediate) already serialises writers,
// so no row locks are needed.
var sqliteDialect = dialect{name: "sqlite"}

// bind renders a statement written with "?" placeholders for d.
func (d dialect) bind(q string) string {
	if !d.numbered {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Schema bookkeeping.
const (
	sqlCreateMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`
	sqlSchemaVersion   = `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`
	sqlInsertMigration = `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`
)

// Interactions.
const (
	sqlInsertInteraction = `INSERT INTO interactions
		(id, trial, model, status, redacted, started_at, recorded_at, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	sqlSelectInteraction = `SELECT payload FROM interactions WHERE id = ?`
)

// Incidents and findings.
const (
	incidentColumns = `id, interaction_id, trial, model, category, severity, status, title, created_at, updated_at`

	sqlInsertIncident = `INSERT INTO incidents (` + incidentColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	sqlSelectIncident         = `SELECT ` + incidentColumns + ` FROM incidents WHERE id = ?`
	sqlUpdateIncidentFindings = `UPDATE incidents SET category = ?, severity = ?, title = ?, updated_at = ? WHERE id = ?`
	sqlTouchIncident          = `UPDATE incidents SET updated_at = ? WHERE id = ?`

	sqlInsertFinding = `INSERT INTO findings
		(id, incident_id, interaction_id, detector, category, severity, score, created_at, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	sqlSelectFindings = `SELECT payload FROM findings WHERE incident_id = ? ORDER BY created_at, id`
)

// statements is every statement rendered for one dialect, built once per store.
type statements struct {
	d                       dialect
	schemaVersion           string
	insertMigration         string
	insertInteraction       string
	selectInteraction       string
	insertIncident          string
	selectIncident          string
	selectIncidentForUpdate string
	updateIncidentFindings  string
	touchIncident           string
	insertFinding           string
	selectFindings          string
}

func newStatements(d dialect) *statements {
	return &statements{
		d:                       d,
		schemaVersion:           d.bind(sqlSchemaVersion),
		insertMigration:         d.bind(sqlInsertMigration),
		insertInteraction:       d.bind(sqlInsertInteraction),
		selectInteraction:       d.bind(sqlSelectInteraction),
		insertIncident:          d.bind(sqlInsertIncident),
		selectIncident:          d.bind(sqlSelectIncident),
		selectIncidentForUpdate: d.bind(sqlSelectIncident + d.forUpdate),
		updateIncidentFindings:  d.bind(sqlUpdateIncidentFindings),
		touchIncident:           d.bind(sqlTouchIncident),
		insertFinding:           d.bind(sqlInsertFinding),
		selectFindings:          d.bind(sqlSelectFindings),
	}
}

// listIncidents renders the query of Incidents for a normalized filter.
func (s *statements) listIncidents(f Filter) (string, []any) {
	var b strings.Builder
	b.WriteString(`SELECT ` + incidentColumns + ` FROM incidents`)
	args := make([]any, 0, 4)
	add := func(col, v string) {
		if v == "" {
			return
		}
		if len(args) == 0 {
			b.WriteString(` WHERE `)
		} else {
			b.WriteString(` AND `)
		}
		b.WriteString(col + ` = ?`)
		args = append(args, v)
	}
	add("trial", f.Trial)
	add("status", f.Status)
	add("category", f.Category)
	b.WriteString(` ORDER BY created_at DESC, id DESC LIMIT ?`)
	args = append(args, f.Limit)
	return s.d.bind(b.String()), args
}

// findingsOf renders the query loading the findings of several incidents.
func (s *statements) findingsOf(ids []string) (string, []any) {
	var b strings.Builder
	b.WriteString(`SELECT incident_id, payload FROM findings WHERE incident_id IN (`)
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			b.WriteString(`, `)
		}
		b.WriteByte('?')
		args[i] = id
	}
	b.WriteString(`) ORDER BY incident_id, created_at, id`)
	return s.d.bind(b.String()), args
}
