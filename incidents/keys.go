package incidents

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

// API keys of pilot users. The store never sees a key: the admin API generates
// it, shows it once, and hands the store only its SHA-256 (hex) with the
// principal it stands for. The gateway's key table is built from the active
// rows (APIKeys) and rebuilt when KeysVersion changes. Creating and revoking a
// key appends a "key.add" or "key.revoke" entry to the audit trail in the same
// transaction. The table comes from migrationKeys (zkeys_schema.go).

// Bounds of a stored API key.
const (
	// MaxKeyFieldLen bounds the name, tenant and cohort of a key.
	MaxKeyFieldLen = 128
	// MaxKeyAttributes bounds the attributes of a key.
	MaxKeyAttributes = 32
	// maxKeyIDLen bounds a key id and its display prefix.
	maxKeyIDLen = 64
	// sha256HexLen is the length of a hex SHA-256.
	sha256HexLen = 64
)

// APIKey is a pilot API key as stored: who it stands for, never the key itself.
type APIKey struct {
	// ID names the key in logs, records and the admin API (safe to show).
	ID string `json:"id"`
	// Name is a human label ("health-app ios").
	Name string `json:"name,omitempty"`
	// Prefix is the start of the key as shown at creation ("sg_live_ab12"), so
	// an operator can tell keys apart without the secret.
	Prefix string `json:"prefix"`
	// Hash is the hex SHA-256 of the key. Not in JSON answers.
	Hash       string            `json:"-"`
	Trial      string            `json:"trial"`
	Tenant     string            `json:"tenant"`
	Cohort     string            `json:"cohort,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	CreatedBy  string            `json:"created_by"`
	// RevokedAt is zero while the key is active.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Active reports whether the key is not revoked.
func (k *APIKey) Active() bool { return k.RevokedAt.IsZero() }

// KeyFilter selects keys for APIKeys.
type KeyFilter struct {
	// Trial limits the list to one trial; "" for all.
	Trial string
	// Revoked includes revoked keys.
	Revoked bool
}

// KeysVersion changes whenever a key is created or revoked; a poller compares
// it to decide whether to rebuild its key table.
type KeysVersion struct {
	Count       int64
	LastCreated int64 // Unix nanoseconds
	LastRevoked int64 // Unix nanoseconds
}

// API key statements, bound per dialect at the call.
const (
	keyColumns = `id, name, prefix, hash, trial, tenant, cohort, attributes, created_at, created_by, revoked_at, revoked_by`

	sqlInsertKey = `INSERT INTO api_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '')`
	sqlSelectKey = `SELECT ` + keyColumns + ` FROM api_keys WHERE id = ?`
	sqlRevokeKey = `UPDATE api_keys SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at = 0`
	sqlKeysVer   = `SELECT COUNT(*), COALESCE(MAX(created_at), 0), COALESCE(MAX(revoked_at), 0) FROM api_keys`
)

// check validates a key before it is stored, reporting every problem at once.
func (k *APIKey) check() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: key "+format, append([]any{ErrInvalid}, a...)...))
	}
	if k.ID == "" || len(k.ID) > maxKeyIDLen || !events.ValidToken(k.ID) {
		bad("id %q: want 1-%d letters, digits, '-' or '_'", k.ID, maxKeyIDLen)
	}
	if len(k.Prefix) > maxKeyIDLen || !utf8.ValidString(k.Prefix) {
		bad("prefix: at most %d bytes", maxKeyIDLen)
	}
	if len(k.Hash) != sha256HexLen || !isLowerHex(k.Hash) {
		bad("hash: want 64 lowercase hex digits (SHA-256)")
	}
	if !events.ValidToken(k.Trial) {
		bad("trial %q", k.Trial)
	}
	for _, f := range []struct{ name, v string }{{"name", k.Name}, {"tenant", k.Tenant}, {"cohort", k.Cohort}} {
		if len(f.v) > MaxKeyFieldLen || !utf8.ValidString(f.v) || strings.ContainsAny(f.v, "\x00\r\n") {
			bad("%s: at most %d bytes of UTF-8 on one line", f.name, MaxKeyFieldLen)
		}
	}
	if strings.TrimSpace(k.Tenant) == "" {
		bad("tenant: required")
	}
	if len(k.Attributes) > MaxKeyAttributes {
		bad("attributes: at most %d", MaxKeyAttributes)
	}
	for name, v := range k.Attributes {
		if name == "" || len(name) > MaxKeyFieldLen || len(v) > MaxKeyFieldLen || !utf8.ValidString(name) || !utf8.ValidString(v) {
			bad("attribute %q: name and value at most %d bytes of UTF-8", name, MaxKeyFieldLen)
		}
	}
	if err := checkActor(k.CreatedBy); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CreateAPIKey stores a new key (k.Hash, never the key) and audits it. A key
// whose id or hash is already stored is ErrConflict. CreatedAt is set by the
// store.
func (s *sqlStore) CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error) {
	if err := k.check(); err != nil {
		return APIKey{}, err
	}
	k.CreatedAt = s.clk.Now().UTC()
	k.RevokedAt, k.RevokedBy = time.Time{}, ""
	attrs := "{}"
	if len(k.Attributes) > 0 {
		raw, err := json.Marshal(k.Attributes)
		if err != nil {
			return APIKey{}, fmt.Errorf("encode key attributes: %w", err)
		}
		attrs = string(raw)
	}
	d := s.st.d
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, d.bind(`SELECT COUNT(*) FROM api_keys WHERE id = ? OR hash = ?`), k.ID, k.Hash).Scan(&n); err != nil {
			return fmt.Errorf("check key %s: %w", k.ID, err)
		}
		if n > 0 {
			return fmt.Errorf("%w: key %s or its hash is already stored", ErrConflict, k.ID)
		}
		if _, err := tx.ExecContext(ctx, d.bind(sqlInsertKey), k.ID, k.Name, k.Prefix, k.Hash, k.Trial, k.Tenant, k.Cohort,
			attrs, k.CreatedAt.UnixNano(), k.CreatedBy); err != nil {
			return fmt.Errorf("insert key %s: %w", k.ID, err)
		}
		_, err := s.appendAudit(ctx, tx, AuditRecord{Actor: k.CreatedBy, Action: "key.add", Object: "key:" + k.ID, Trial: k.Trial,
			Detail: map[string]any{"name": k.Name, "prefix": k.Prefix, "tenant": k.Tenant, "cohort": k.Cohort}})
		return err
	})
	if err != nil {
		return APIKey{}, err
	}
	return k, nil
}

// APIKey returns one key, or ErrNotFound.
func (s *sqlStore) APIKey(ctx context.Context, id string) (APIKey, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, s.st.d.bind(sqlSelectKey), id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, fmt.Errorf("key %q: %w", id, ErrNotFound)
	}
	return k, err
}

// APIKeys lists keys matching f, oldest first.
func (s *sqlStore) APIKeys(ctx context.Context, f KeyFilter) ([]APIKey, error) {
	q := `SELECT ` + keyColumns + ` FROM api_keys`
	var where []string
	var args []any
	if f.Trial != "" {
		where, args = append(where, `trial = ?`), append(args, f.Trial)
	}
	if !f.Revoked {
		where = append(where, `revoked_at = 0`)
	}
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at, id`
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// RevokeAPIKey marks a key revoked and audits it; the gateway refuses it from
// its next key table. Revoking a revoked key returns it unchanged.
func (s *sqlStore) RevokeAPIKey(ctx context.Context, id, actor, reason string) (APIKey, error) {
	if err := checkActor(actor); err != nil {
		return APIKey{}, err
	}
	var out APIKey
	d := s.st.d
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.clk.Now().UTC()
		res, err := tx.ExecContext(ctx, d.bind(sqlRevokeKey), now.UnixNano(), actor, id)
		if err != nil {
			return fmt.Errorf("revoke key %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("revoke key %s: %w", id, err)
		}
		k, err := scanKey(tx.QueryRowContext(ctx, d.bind(sqlSelectKey), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("key %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		out = k
		if n == 0 {
			return nil // already revoked
		}
		_, err = s.appendAudit(ctx, tx, AuditRecord{Actor: actor, Action: "key.revoke", Object: "key:" + id, Trial: k.Trial, Reason: reason})
		return err
	})
	return out, err
}

// KeysVersion returns the version of the key table (cheap: one aggregate row).
func (s *sqlStore) KeysVersion(ctx context.Context) (KeysVersion, error) {
	var v KeysVersion
	if err := s.db.QueryRowContext(ctx, sqlKeysVer).Scan(&v.Count, &v.LastCreated, &v.LastRevoked); err != nil {
		return KeysVersion{}, fmt.Errorf("keys version: %w", err)
	}
	return v, nil
}

func scanKey(r scanner) (APIKey, error) {
	var (
		k                APIKey
		attrs            string
		created, revoked int64
	)
	if err := r.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &k.Trial, &k.Tenant, &k.Cohort, &attrs, &created, &k.CreatedBy, &revoked, &k.RevokedBy); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return APIKey{}, err
		}
		return APIKey{}, fmt.Errorf("read key: %w", err)
	}
	if attrs != "" && attrs != "{}" {
		if err := json.Unmarshal([]byte(attrs), &k.Attributes); err != nil {
			return APIKey{}, fmt.Errorf("decode attributes of key %s: %w", k.ID, err)
		}
	}
	k.CreatedAt = time.Unix(0, created).UTC()
	if revoked != 0 {
		k.RevokedAt = time.Unix(0, revoked).UTC()
	}
	return k, nil
}
