package incidents

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

// Trial definitions are stored as their applied source (the regulator's YAML),
// one numbered revision per change, with who applied it and when. The store
// does not read the source: the admin API parses and validates it
// (policies/trial) before it is stored.

// Bounds on a stored trial revision.
const (
	// MaxTrialSourceBytes bounds one trial definition.
	MaxTrialSourceBytes = 1 << 20
	// MaxTrialActorLen bounds who applied a revision.
	MaxTrialActorLen = 200
	// MaxTrialCommentLen bounds a revision's comment.
	MaxTrialCommentLen = 2000
)

// TrialRevision is one applied version of a trial definition.
type TrialRevision struct {
	Trial     string    `json:"trial"`
	Revision  int       `json:"revision"` // 1, 2, ... per trial
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment,omitempty"`
	// Digest is "sha256:" and the hex SHA-256 of Source.
	Digest string `json:"digest"`
	// Source is the definition as applied; empty in listings.
	Source string `json:"source,omitempty"`
}

// Trial statements, written with "?" placeholders like sql.go and bound per dialect.
const (
	trialColumns = `trial, revision, created_at, created_by, comment, digest`

	sqlLatestTrialRevision = `SELECT revision, digest FROM trial_revisions WHERE trial = ? ORDER BY revision DESC LIMIT 1`
	sqlInsertTrialRevision = `INSERT INTO trial_revisions (` + trialColumns + `, source) VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlSelectTrialRevision = `SELECT ` + trialColumns + `, source FROM trial_revisions WHERE trial = ? AND revision = ?`
	sqlSelectTrialLatest   = `SELECT ` + trialColumns + `, source FROM trial_revisions WHERE trial = ? ORDER BY revision DESC LIMIT 1`
	sqlSelectTrialHistory  = `SELECT ` + trialColumns + ` FROM trial_revisions WHERE trial = ? ORDER BY revision DESC`
	sqlSelectTrials        = `SELECT ` + trialColumns + ` FROM trial_revisions t
		WHERE revision = (SELECT MAX(revision) FROM trial_revisions WHERE trial = t.trial) ORDER BY trial`
)

// PutTrialRevision stores source as the next revision of trial, applied by by.
// Source identical to the latest revision's is not stored again: the latest
// revision is returned with created false.
func (s *sqlStore) PutTrialRevision(ctx context.Context, trial, by, comment string, source []byte) (rev TrialRevision, created bool, err error) {
	if err := checkTrialRevision(trial, by, comment, source); err != nil {
		return TrialRevision{}, false, err
	}
	sum := sha256.Sum256(source)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	now := s.clk.Now().UTC()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			latest     int
			lastDigest string
		)
		err := tx.QueryRowContext(ctx, s.st.d.bind(sqlLatestTrialRevision+s.st.d.forUpdate), trial).Scan(&latest, &lastDigest)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read trial %s: %w", trial, err)
		case lastDigest == digest:
			rev, err = s.trialRevision(ctx, tx, trial, latest)
			return err
		}
		rev = TrialRevision{Trial: trial, Revision: latest + 1, CreatedAt: now, CreatedBy: by, Comment: comment, Digest: digest, Source: string(source)}
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertTrialRevision),
			trial, rev.Revision, now.UnixNano(), by, comment, digest, rev.Source); err != nil {
			return fmt.Errorf("store trial %s revision %d: %w", trial, rev.Revision, err)
		}
		created = true
		return nil
	})
	if err != nil {
		return TrialRevision{}, false, err
	}
	return rev, created, nil
}

// TrialRevision returns revision n of trial with its source; n = 0 is the
// latest. ErrNotFound when there is none.
func (s *sqlStore) TrialRevision(ctx context.Context, trial string, n int) (TrialRevision, error) {
	if !events.ValidToken(trial) || n < 0 {
		return TrialRevision{}, fmt.Errorf("%w: trial %q revision %d", ErrInvalid, trial, n)
	}
	return s.trialRevision(ctx, s.db, trial, n)
}

func (s *sqlStore) trialRevision(ctx context.Context, q querier, trial string, n int) (TrialRevision, error) {
	var row *sql.Row
	if n == 0 {
		row = q.QueryRowContext(ctx, s.st.d.bind(sqlSelectTrialLatest), trial)
	} else {
		row = q.QueryRowContext(ctx, s.st.d.bind(sqlSelectTrialRevision), trial, n)
	}
	var (
		r  TrialRevision
		at int64
	)
	err := row.Scan(&r.Trial, &r.Revision, &at, &r.CreatedBy, &r.Comment, &r.Digest, &r.Source)
	if errors.Is(err, sql.ErrNoRows) {
		if n == 0 {
			return TrialRevision{}, fmt.Errorf("trial %q: %w", trial, ErrNotFound)
		}
		return TrialRevision{}, fmt.Errorf("trial %q revision %d: %w", trial, n, ErrNotFound)
	}
	if err != nil {
		return TrialRevision{}, fmt.Errorf("read trial %q: %w", trial, err)
	}
	r.CreatedAt = time.Unix(0, at).UTC()
	return r, nil
}

// TrialRevisions lists every revision of trial, newest first, without sources.
// A trial never applied has none (an empty list, no error).
func (s *sqlStore) TrialRevisions(ctx context.Context, trial string) ([]TrialRevision, error) {
	if !events.ValidToken(trial) {
		return nil, fmt.Errorf("%w: trial %q", ErrInvalid, trial)
	}
	return s.trialList(ctx, s.st.d.bind(sqlSelectTrialHistory), trial)
}

// Trials lists the latest revision of every stored trial, by id, without sources.
func (s *sqlStore) Trials(ctx context.Context) ([]TrialRevision, error) {
	return s.trialList(ctx, s.st.d.bind(sqlSelectTrials))
}

func (s *sqlStore) trialList(ctx context.Context, q string, args ...any) ([]TrialRevision, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list trials: %w", err)
	}
	defer rows.Close()
	out := []TrialRevision{}
	for rows.Next() {
		var (
			r  TrialRevision
			at int64
		)
		if err := rows.Scan(&r.Trial, &r.Revision, &at, &r.CreatedBy, &r.Comment, &r.Digest); err != nil {
			return nil, fmt.Errorf("list trials: %w", err)
		}
		r.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list trials: %w", err)
	}
	return out, nil
}

func checkTrialRevision(trial, by, comment string, source []byte) error {
	var errs []error
	if !events.ValidToken(trial) {
		errs = append(errs, fmt.Errorf("%w: trial id %q: use 1-64 letters, digits, '-' and '_'", ErrInvalid, trial))
	}
	if strings.TrimSpace(by) == "" || len(by) > MaxTrialActorLen || !utf8.ValidString(by) {
		errs = append(errs, fmt.Errorf("%w: who applied the trial: 1-%d characters of UTF-8", ErrInvalid, MaxTrialActorLen))
	}
	if len(comment) > MaxTrialCommentLen || !utf8.ValidString(comment) {
		errs = append(errs, fmt.Errorf("%w: comment: at most %d characters of UTF-8", ErrInvalid, MaxTrialCommentLen))
	}
	if len(source) == 0 || len(source) > MaxTrialSourceBytes || !utf8.Valid(source) {
		errs = append(errs, fmt.Errorf("%w: trial source: 1-%d bytes of UTF-8", ErrInvalid, MaxTrialSourceBytes))
	}
	return errors.Join(errs...)
}
