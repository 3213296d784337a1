package incidents

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/stagegate/stagegate/events"
)

// The audit trail is an append-only log of every change: incident transitions,
// logins, user and key changes, trial rule changes, legal holds. Each entry
// holds the SHA-256 of the previous one, so changing, removing or reordering a
// stored entry breaks the chain at that entry, and VerifyAudit names it.
// Pruning (after the retention period, never under a legal hold) removes a
// prefix of the chain and leaves an anchor: the last removed entry's sequence
// and hash, which the first remaining entry must link to.

// auditGenesis is the "previous hash" of the first entry.
const auditGenesis = "0000000000000000000000000000000000000000000000000000000000000000"

// AuditSchema versions the hashed encoding of an entry.
const AuditSchema = "stagegate.audit.v1"

// Bounds of an audit record.
const (
	maxAuditActionLen = 64
	maxAuditObjectLen = 256
	maxAuditDetail    = 64 << 10
	// MaxAuditPage caps AuditFilter.Limit.
	MaxAuditPage = 1000
	// HoldAll is the legal-hold "trial" that stops all pruning.
	HoldAll = "*"
)

// AuditRecord is what a caller appends.
type AuditRecord struct {
	// Actor is who did it (a user name, "admin-token", "controller").
	Actor string
	// Action is a dotted name: incident.confirm, login, login.failed,
	// user.add, trial.rules, key.add, legal_hold.set, ...
	Action string
	// Object names what was acted on: "incident:inc_…", "user:rita", "trial:t1".
	Object string
	// Trial the change belongs to ("" for installation-wide changes); it decides
	// the entry's retention.
	Trial string
	// Reason is the actor's stated reason.
	Reason string
	// Detail is any JSON-encodable value with the change's data (nil: none).
	Detail any
}

// AuditEntry is one stored entry.
type AuditEntry struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Object   string          `json:"object"`
	Trial    string          `json:"trial,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Detail   json.RawMessage `json:"detail,omitempty"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// computeHash is the entry's hash over its fields and the previous hash. Every
// field is length-prefixed, so no two different entries encode the same.
func (e *AuditEntry) computeHash(h hash.Hash) string {
	h.Reset()
	field := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
		h.Write([]byte{'\n'})
	}
	field(AuditSchema)
	field(strconv.FormatInt(e.Seq, 10))
	field(strconv.FormatInt(e.At.UnixNano(), 10))
	field(e.Actor)
	field(e.Action)
	field(e.Object)
	field(e.Trial)
	field(e.Reason)
	field(string(e.Detail))
	field(e.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

// check validates a record, reporting every problem at once.
func (r *AuditRecord) check() error {
	var errs []error
	if err := checkActor(r.Actor); err != nil {
		errs = append(errs, err)
	}
	if !validAction(r.Action) {
		errs = append(errs, fmt.Errorf("%w: audit action %q: want 1-%d of a-z, 0-9, '.', '_', '-'", ErrInvalid, r.Action, maxAuditActionLen))
	}
	if len(r.Object) > maxAuditObjectLen || !utf8.ValidString(r.Object) {
		errs = append(errs, fmt.Errorf("%w: audit object: at most %d bytes of UTF-8", ErrInvalid, maxAuditObjectLen))
	}
	if r.Trial != "" && r.Trial != HoldAll && !events.ValidToken(r.Trial) {
		errs = append(errs, fmt.Errorf("%w: audit trial %q", ErrInvalid, r.Trial))
	}
	if !utf8.ValidString(r.Reason) || utf8.RuneCountInString(r.Reason) > MaxReasonRunes {
		errs = append(errs, fmt.Errorf("%w: audit reason: at most %d characters of UTF-8", ErrInvalid, MaxReasonRunes))
	}
	return errors.Join(errs...)
}

func validAction(a string) bool {
	if a == "" || len(a) > maxAuditActionLen {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// checkActor validates who did something.
func checkActor(a string) error {
	if strings.TrimSpace(a) == "" || len(a) > MaxActorLen || !utf8.ValidString(a) {
		return fmt.Errorf("%w: actor is required (1-%d bytes of UTF-8)", ErrInvalid, MaxActorLen)
	}
	return nil
}

// Audit statements.
const (
	auditColumns          = `seq, at, actor, action, object, trial, reason, detail, prev_hash, hash`
	sqlSelectAuditHead    = `SELECT seq, hash, pruned_seq, pruned_hash FROM audit_head WHERE id = 1`
	sqlUpdateAuditHead    = `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`
	sqlUpdateAuditAnchor  = `UPDATE audit_head SET pruned_seq = ?, pruned_hash = ? WHERE id = 1`
	sqlInsertAudit        = `INSERT INTO audit_log (` + auditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlSelectAuditChain   = `SELECT ` + auditColumns + ` FROM audit_log ORDER BY seq`
	sqlDeleteAuditThrough = `DELETE FROM audit_log WHERE seq <= ?`
	sqlSelectHolds        = `SELECT trial, set_by, set_at, reason FROM legal_holds ORDER BY trial`
	sqlUpsertHold         = `INSERT INTO legal_holds (trial, set_by, set_at, reason) VALUES (?, ?, ?, ?)
		ON CONFLICT (trial) DO UPDATE SET set_by = excluded.set_by, set_at = excluded.set_at, reason = excluded.reason`
	sqlDeleteHold = `DELETE FROM legal_holds WHERE trial = ?`
)

// Audit appends one entry in its own transaction.
func (s *sqlStore) Audit(ctx context.Context, rec AuditRecord) (AuditEntry, error) {
	var e AuditEntry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		e, err = s.appendAudit(ctx, tx, rec)
		return err
	})
	return e, err
}

// appendAudit appends rec inside tx: it locks the head row (so appends
// serialise across processes), links to the newest entry and moves the head.
func (s *sqlStore) appendAudit(ctx context.Context, tx *sql.Tx, rec AuditRecord) (AuditEntry, error) {
	if err := rec.check(); err != nil {
		return AuditEntry{}, err
	}
	var detail json.RawMessage
	if rec.Detail != nil {
		raw, err := json.Marshal(rec.Detail)
		if err != nil {
			return AuditEntry{}, fmt.Errorf("%w: audit detail: %w", ErrInvalid, err)
		}
		if len(raw) > maxAuditDetail {
			return AuditEntry{}, fmt.Errorf("%w: audit detail is %d bytes (max %d)", ErrInvalid, len(raw), maxAuditDetail)
		}
		if string(raw) != "null" {
			detail = raw
		}
	}
	d := s.st.d
	var (
		headSeq, prunedSeq   int64
		headHash, prunedHash string
	)
	if err := tx.QueryRowContext(ctx, d.bind(sqlSelectAuditHead+d.forUpdate)).Scan(&headSeq, &headHash, &prunedSeq, &prunedHash); err != nil {
		return AuditEntry{}, fmt.Errorf("read audit head: %w", err)
	}
	e := AuditEntry{
		Seq: headSeq + 1, At: s.clk.Now().UTC(), Actor: rec.Actor, Action: rec.Action, Object: rec.Object,
		Trial: rec.Trial, Reason: rec.Reason, Detail: detail, PrevHash: headHash,
	}
	e.Hash = e.computeHash(sha256.New())
	if _, err := tx.ExecContext(ctx, d.bind(sqlInsertAudit), e.Seq, e.At.UnixNano(), e.Actor, e.Action, e.Object,
		e.Trial, e.Reason, string(e.Detail), e.PrevHash, e.Hash); err != nil {
		return AuditEntry{}, fmt.Errorf("append audit entry %d: %w", e.Seq, err)
	}
	if _, err := tx.ExecContext(ctx, d.bind(sqlUpdateAuditHead), e.Seq, e.Hash); err != nil {
		return AuditEntry{}, fmt.Errorf("move audit head: %w", err)
	}
	return e, nil
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	// Trial keeps entries of this trial only ("" keeps all).
	Trial string
	// ActionPrefix keeps entries whose action starts with it ("incident.").
	ActionPrefix string
	// BeforeSeq keeps entries older than this sequence (0: from the newest).
	BeforeSeq int64
	// Limit is the page size (0: 100; capped at MaxAuditPage).
	Limit int
}

// AuditEntries lists entries matching f, newest first.
func (s *sqlStore) AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Trial != "" && f.Trial != HoldAll && !events.ValidToken(f.Trial) {
		return nil, fmt.Errorf("%w: trial %q", ErrInvalid, f.Trial)
	}
	if len(f.ActionPrefix) > maxAuditActionLen || f.Limit < 0 || f.BeforeSeq < 0 {
		return nil, fmt.Errorf("%w: audit filter", ErrInvalid)
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultLimit
	case f.Limit > MaxAuditPage:
		f.Limit = MaxAuditPage
	}
	var (
		b    strings.Builder
		args []any
	)
	b.WriteString(`SELECT ` + auditColumns + ` FROM audit_log WHERE 1 = 1`)
	if f.Trial != "" {
		b.WriteString(` AND trial = ?`)
		args = append(args, f.Trial)
	}
	if f.ActionPrefix != "" {
		b.WriteString(` AND substr(action, 1, ?) = ?`)
		args = append(args, len(f.ActionPrefix), f.ActionPrefix)
	}
	if f.BeforeSeq > 0 {
		b.WriteString(` AND seq < ?`)
		args = append(args, f.BeforeSeq)
	}
	b.WriteString(` ORDER BY seq DESC LIMIT ?`)
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(b.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("list audit entries: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return out, nil
}

func scanAudit(r scanner) (AuditEntry, error) {
	var (
		e      AuditEntry
		at     int64
		detail string
	)
	if err := r.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Object, &e.Trial, &e.Reason, &detail, &e.PrevHash, &e.Hash); err != nil {
		return AuditEntry{}, err
	}
	e.At = time.Unix(0, at).UTC()
	if detail != "" {
		e.Detail = json.RawMessage(detail)
	}
	return e, nil
}

// AuditVerification is the outcome of VerifyAudit.
type AuditVerification struct {
	// OK is true when every entry is intact and linked.
	OK bool `json:"ok"`
	// Entries is how many entries were checked; FirstSeq and LastSeq bound them.
	Entries  int64 `json:"entries"`
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	// PrunedThrough is the last pruned entry (0: never pruned).
	PrunedThrough int64 `json:"pruned_through"`
	// BrokenSeq is the first broken entry (0 when OK); Problem says how.
	BrokenSeq int64  `json:"broken_seq,omitempty"`
	Problem   string `json:"problem,omitempty"`
	// HeadHash is the newest entry's hash: quoting it elsewhere (a report, a
	// ticket) pins the log's state at that time.
	HeadHash  string    `json:"head_hash"`
	CheckedAt time.Time `json:"checked_at"`
}

// VerifyAudit recomputes the chain from the pruning anchor to the head and names
// the first entry that was changed, removed or reordered.
func (s *sqlStore) VerifyAudit(ctx context.Context) (AuditVerification, error) {
	v := AuditVerification{CheckedAt: s.clk.Now().UTC()}
	var headSeq int64
	var headHash, prunedHash string
	if err := s.db.QueryRowContext(ctx, s.st.d.bind(sqlSelectAuditHead)).Scan(&headSeq, &headHash, &v.PrunedThrough, &prunedHash); err != nil {
		return v, fmt.Errorf("read audit head: %w", err)
	}
	v.HeadHash = headHash
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(sqlSelectAuditChain))
	if err != nil {
		return v, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	h := sha256.New()
	want, prev := v.PrunedThrough+1, prunedHash
	fail := func(seq int64, format string, args ...any) {
		v.BrokenSeq, v.Problem = seq, fmt.Sprintf(format, args...)
	}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return v, fmt.Errorf("read audit log: %w", err)
		}
		if v.BrokenSeq != 0 {
			continue // keep counting; the first problem is reported
		}
		v.Entries++
		if v.FirstSeq == 0 {
			v.FirstSeq = e.Seq
		}
		v.LastSeq = e.Seq
		switch {
		case e.Seq != want:
			fail(want, "entry %d is missing: the log jumps from entry %d to entry %d", want, want-1, e.Seq)
		case e.Hash != e.computeHash(h):
			fail(e.Seq, "entry %d was changed after it was written: its content no longer matches its hash", e.Seq)
		case e.PrevHash != prev:
			fail(e.Seq, "entry %d does not link to entry %d: one of them was replaced", e.Seq, e.Seq-1)
		}
		want, prev = e.Seq+1, e.Hash
	}
	if err := rows.Err(); err != nil {
		return v, fmt.Errorf("read audit log: %w", err)
	}
	if v.BrokenSeq == 0 {
		switch last := want - 1; {
		case last < headSeq:
			fail(last+1, "entries %d to %d were removed from the end of the log", last+1, headSeq)
		case last > headSeq || prev != headHash:
			fail(headSeq, "the log's head (entry %d) does not match its newest entry %d", headSeq, last)
		}
	}
	v.OK = v.BrokenSeq == 0
	return v, nil
}

// LegalHold stops pruning of a trial's audit entries (Trial HoldAll: of all).
type LegalHold struct {
	Trial  string    `json:"trial"`
	SetBy  string    `json:"set_by"`
	SetAt  time.Time `json:"set_at"`
	Reason string    `json:"reason"`
}

// SetLegalHold sets (hold true) or lifts a legal hold on trial, or on everything
// with HoldAll, and records it in the audit trail.
func (s *sqlStore) SetLegalHold(ctx context.Context, trial string, hold bool, actor, reason string) error {
	var errs []error
	if trial != HoldAll && !events.ValidToken(trial) {
		errs = append(errs, fmt.Errorf("%w: trial %q (or %q for everything)", ErrInvalid, trial, HoldAll))
	}
	if err := checkActor(actor); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(reason) == "" {
		errs = append(errs, fmt.Errorf("%w: a legal hold needs a reason", ErrInvalid))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	now := s.clk.Now().UTC()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		action := "legal_hold.set"
		if hold {
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlUpsertHold), trial, actor, now.UnixNano(), reason); err != nil {
				return fmt.Errorf("set legal hold: %w", err)
			}
		} else {
			action = "legal_hold.lift"
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlDeleteHold), trial); err != nil {
				return fmt.Errorf("lift legal hold: %w", err)
			}
		}
		_, err := s.appendAudit(ctx, tx, AuditRecord{Actor: actor, Action: action, Object: "trial:" + trial, Trial: trial, Reason: reason})
		return err
	})
}

// LegalHolds lists the holds in force.
func (s *sqlStore) LegalHolds(ctx context.Context) ([]LegalHold, error) {
	return s.legalHolds(ctx, s.db)
}

func (s *sqlStore) legalHolds(ctx context.Context, q querier) ([]LegalHold, error) {
	rows, err := q.QueryContext(ctx, s.st.d.bind(sqlSelectHolds))
	if err != nil {
		return nil, fmt.Errorf("list legal holds: %w", err)
	}
	defer rows.Close()
	out := []LegalHold{}
	for rows.Next() {
		var (
			h  LegalHold
			at int64
		)
		if err := rows.Scan(&h.Trial, &h.SetBy, &at, &h.Reason); err != nil {
			return nil, fmt.Errorf("list legal holds: %w", err)
		}
		h.SetAt = time.Unix(0, at).UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// AuditPrune is what PruneAudit removed.
type AuditPrune struct {
	// Removed entries, 1..Through (0 when nothing was old enough).
	Removed int64 `json:"removed"`
	Through int64 `json:"through"`
	// StoppedAt is the first kept entry and why it was kept.
	StoppedAt int64  `json:"stopped_at,omitempty"`
	Why       string `json:"why,omitempty"`
}

// PruneAudit removes the oldest entries that are past their trial's retention
// (RetentionDays of its rules or data_handling.retention_days of its definition,
// whichever is longer; DefaultRetentionDays when neither is set) and under no
// legal hold. Only a prefix is removed, so the chain stays verifiable from the
// anchor; the pruning itself is recorded.
func (s *sqlStore) PruneAudit(ctx context.Context, actor string) (AuditPrune, error) {
	if err := checkActor(actor); err != nil {
		return AuditPrune{}, err
	}
	var out AuditPrune
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		holds, err := s.legalHolds(ctx, tx)
		if err != nil {
			return err
		}
		held := map[string]bool{}
		for _, h := range holds {
			held[h.Trial] = true
		}
		if held[HoldAll] {
			out.Why = "a legal hold covers the whole audit trail"
			return nil
		}
		now := s.clk.Now()
		retention := map[string]time.Duration{}
		rows, err := tx.QueryContext(ctx, s.st.d.bind(sqlSelectAuditChain))
		if err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		var (
			through    int64
			throughHsh string
			entries    []AuditEntry
		)
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("read audit log: %w", err)
			}
			entries = append(entries, e)
			if len(entries) >= 10000 {
				break // prune in bounded batches
			}
		}
		rows.Close()
		for _, e := range entries {
			if held[e.Trial] {
				out.StoppedAt, out.Why = e.Seq, "trial "+e.Trial+" is under a legal hold"
				break
			}
			keep, ok := retention[e.Trial]
			if !ok {
				days, err := s.retentionDays(ctx, tx, e.Trial)
				if err != nil {
					return err
				}
				keep = time.Duration(days) * 24 * time.Hour
				retention[e.Trial] = keep
			}
			if now.Sub(e.At) < keep {
				out.StoppedAt, out.Why = e.Seq, fmt.Sprintf("entry %d is within its %d-day retention", e.Seq, int(keep.Hours()/24))
				break
			}
			through, throughHsh = e.Seq, e.Hash
		}
		if through == 0 {
			return nil
		}
		var prunedBefore int64
		var ignore string
		var headSeq int64
		if err := tx.QueryRowContext(ctx, s.st.d.bind(sqlSelectAuditHead)).Scan(&headSeq, &ignore, &prunedBefore, &ignore); err != nil {
			return fmt.Errorf("read audit head: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlDeleteAuditThrough), through); err != nil {
			return fmt.Errorf("prune audit log: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlUpdateAuditAnchor), through, throughHsh); err != nil {
			return fmt.Errorf("prune audit log: %w", err)
		}
		out.Removed, out.Through = through-prunedBefore, through
		_, err = s.appendAudit(ctx, tx, AuditRecord{Actor: actor, Action: "audit.prune", Object: "audit",
			Detail: map[string]any{"removed": out.Removed, "through": through, "anchor_hash": throughHsh}})
		return err
	})
	return out, err
}

// retentionDays is how long entries of trial are kept: the longer of its rules'
// RetentionDays and its definition's data_handling.retention_days.
func (s *sqlStore) retentionDays(ctx context.Context, q querier, trial string) (int, error) {
	if trial == "" || !events.ValidToken(trial) {
		return DefaultRetentionDays, nil
	}
	rules, err := s.trialRules(ctx, q, trial)
	if err != nil {
		return 0, err
	}
	days := rules.RetentionDays
	rev, err := s.trialRevision(ctx, q, trial, 0)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return 0, err
	default:
		var def struct {
			DataHandling struct {
				RetentionDays int `yaml:"retention_days"`
			} `yaml:"data_handling"`
		}
		// The definition was validated when applied; a value it cannot give
		// leaves the rules' retention.
		if yaml.Unmarshal([]byte(rev.Source), &def) == nil && def.DataHandling.RetentionDays > days {
			days = min(def.DataHandling.RetentionDays, MaxRetentionDays)
		}
	}
	return days, nil
}
