package incidents

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

// Users of the console and the review API, their roles, the trials they may
// see, and their sessions. A user's trials mean, by role: a company's own
// trials, a reviewer's assigned trials, a regulator's overseen trials; an
// administrator sees every trial.

// Roles.
const (
	RoleRegulator = "regulator"
	RoleCompany   = "company"
	RoleReviewer  = "reviewer"
	RoleAdmin     = "admin"
)

// ValidRole reports whether r is one of the Role* constants.
func ValidRole(r string) bool {
	switch r {
	case RoleRegulator, RoleCompany, RoleReviewer, RoleAdmin:
		return true
	}
	return false
}

// Permission is something a role may do.
type Permission string

// Permissions.
const (
	// PermView: read incidents, interactions and trial pages in scope.
	PermView Permission = "view"
	// PermReview: claim, release, decide what one holds, escalate, label,
	// second-review.
	PermReview Permission = "review"
	// PermDecideEscalated: decide escalated incidents, reopen decided ones.
	PermDecideEscalated Permission = "decide_escalated"
	// PermAssign: give an incident to a reviewer, decide what others hold.
	PermAssign Permission = "assign"
	// PermComment: comment on incidents.
	PermComment Permission = "comment"
	// PermReport: read and download trial reports.
	PermReport Permission = "report"
	// PermFileReport: mark an Art. 73 report as filed.
	PermFileReport Permission = "file_report"
	// PermAudit: read and verify the audit trail.
	PermAudit Permission = "audit"
	// PermRules: set a trial's review rules and legal holds.
	PermRules Permission = "rules"
	// PermUsers: manage users.
	PermUsers Permission = "users"
)

var rolePerms = map[string][]Permission{
	RoleReviewer:  {PermView, PermReview, PermComment},
	RoleRegulator: {PermView, PermDecideEscalated, PermAssign, PermComment, PermReport, PermFileReport, PermAudit, PermRules},
	RoleCompany:   {PermView, PermComment, PermReport, PermFileReport},
	RoleAdmin: {PermView, PermReview, PermDecideEscalated, PermAssign, PermComment, PermReport, PermFileReport,
		PermAudit, PermRules, PermUsers},
}

// Bounds of a user.
const (
	maxUserNameLen = 64
	maxOrgLen      = 200
	// MaxUserTrials caps the trials of one user.
	MaxUserTrials = 256
	// AdminTokenUser names the holder of the admin bearer token.
	AdminTokenUser = "admin-token"
)

// User is a console user.
type User struct {
	// Name is the login name (1-64 of letters, digits, '.', '_', '@', '-').
	Name string `json:"name"`
	// Role is one of the Role* constants.
	Role string `json:"role"`
	// Org is the organisation (the company, the authority).
	Org string `json:"org,omitempty"`
	// Display is the name shown in the console.
	Display string `json:"display,omitempty"`
	// Trials the user may see (ignored for administrators).
	Trials    []string  `json:"trials"`
	Disabled  bool      `json:"disabled,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// HasPassword is false for users who sign in through the trusted proxy only.
	HasPassword bool `json:"has_password"`
}

// AdminTokenPrincipal is the user the admin bearer token acts as.
func AdminTokenPrincipal() *User {
	return &User{Name: AdminTokenUser, Role: RoleAdmin, Display: "admin token", Trials: []string{}}
}

// Can reports whether the user's role grants p.
func (u *User) Can(p Permission) bool {
	return u != nil && !u.Disabled && slices.Contains(rolePerms[u.Role], p)
}

// Scope is the trials the user may see.
func (u *User) Scope() Scope {
	if u == nil || u.Disabled {
		return Scope{}
	}
	if u.Role == RoleAdmin {
		return Scope{All: true}
	}
	return Scope{Trials: slices.Clone(u.Trials)}
}

// CanSee reports whether the user may see trial.
func (u *User) CanSee(trial string) bool { return u.Can(PermView) && u.Scope().Allows(trial) }

// CheckAction says whether u may take action kind on an incident in status
// held by assignee (ErrForbidden with the reason when not). Scope is checked by
// the caller with CanSee.
func (u *User) CheckAction(kind, status, assignee string) error {
	deny := func(why string) error { return fmt.Errorf("%w: %s", ErrForbidden, why) }
	switch kind {
	case ActionClaim, ActionRelease, ActionEscalate, ActionSecondReview:
		if !u.Can(PermReview) {
			return deny("only reviewers claim, release, escalate and second-review incidents")
		}
		if kind == ActionRelease && assignee != u.Name && !u.Can(PermAssign) {
			return deny("only the holder releases an incident")
		}
	case ActionConfirm, ActionDismiss:
		switch {
		case status == StatusEscalated && !u.Can(PermDecideEscalated):
			return deny("an escalated incident is decided by the regulator")
		case status != StatusEscalated && !u.Can(PermReview) && !u.Can(PermAssign):
			return deny("only reviewers decide incidents")
		case status == StatusInReview && assignee != u.Name && !u.Can(PermAssign):
			return deny("claim the incident before deciding it (it is held by " + orNobody(assignee) + ")")
		}
	case ActionReopen:
		if !u.Can(PermDecideEscalated) {
			return deny("only the regulator reopens a decided incident")
		}
	case ActionAssign:
		if !u.Can(PermAssign) {
			return deny("only the regulator assigns incidents")
		}
	case ActionReportFiled:
		if !u.Can(PermFileReport) {
			return deny("only the company or the regulator records a filed report")
		}
	default:
		return deny("unknown action " + kind)
	}
	return nil
}

func orNobody(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}

// validUserName checks a login name.
func validUserName(n string) bool {
	if n == "" || len(n) > maxUserNameLen || n == AdminTokenUser {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && !strings.ContainsRune("._@-", rune(c)) {
			return false
		}
	}
	return true
}

// Validate reports every problem of a user record at once.
func (u User) Validate() error {
	var errs []error
	if !validUserName(u.Name) {
		errs = append(errs, fmt.Errorf("%w: user name %q: want 1-%d of letters, digits, '.', '_', '@', '-' (not %q)", ErrInvalid, u.Name, maxUserNameLen, AdminTokenUser))
	}
	if !ValidRole(u.Role) {
		errs = append(errs, fmt.Errorf("%w: role %q: want regulator, company, reviewer or admin", ErrInvalid, u.Role))
	}
	if len(u.Org) > maxOrgLen || len(u.Display) > maxOrgLen || !utf8.ValidString(u.Org+u.Display) {
		errs = append(errs, fmt.Errorf("%w: org and display name: at most %d bytes of UTF-8", ErrInvalid, maxOrgLen))
	}
	if len(u.Trials) > MaxUserTrials {
		errs = append(errs, fmt.Errorf("%w: %d trials (max %d)", ErrInvalid, len(u.Trials), MaxUserTrials))
	}
	for _, t := range u.Trials {
		if !events.ValidToken(t) {
			errs = append(errs, fmt.Errorf("%w: trial %q", ErrInvalid, t))
		}
	}
	return errors.Join(errs...)
}

// User statements.
const (
	userColumns       = `name, role, org, display, password_hash, disabled, created_at, created_by`
	sqlInsertUser     = `INSERT INTO users (` + userColumns + `, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`
	sqlSelectUser     = `SELECT ` + userColumns + ` FROM users WHERE name = ?`
	sqlSelectUsers    = `SELECT ` + userColumns + ` FROM users ORDER BY name`
	sqlSelectTrialsOf = `SELECT trial FROM user_trials WHERE name = ? ORDER BY trial`
	sqlDeleteTrialsOf = `DELETE FROM user_trials WHERE name = ?`
	sqlInsertUserTri  = `INSERT INTO user_trials (name, trial) VALUES (?, ?) ON CONFLICT (name, trial) DO NOTHING`
	sqlUpdatePassword = `UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?`
	sqlUpdateDisabled = `UPDATE users SET disabled = ?, updated_at = ? WHERE name = ?`
	sqlUpdateRole     = `UPDATE users SET role = ?, updated_at = ? WHERE name = ?`
	sqlDeleteSessOf   = `DELETE FROM sessions WHERE name = ?`
)

// AddUser creates user u with password (empty: the user signs in through the
// trusted proxy only); ErrConflict when the name is taken.
func (s *sqlStore) AddUser(ctx context.Context, u User, password, actor string) error {
	errs := []error{u.Validate(), checkActor(actor)}
	hash := ""
	if password != "" {
		var err error
		if hash, err = HashPassword(password); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	u.Trials = dedupe(u.Trials)
	now := s.clk.Now().UTC()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertUser), u.Name, u.Role, u.Org, u.Display, hash, 0, now.UnixNano(), actor, now.UnixNano())
		if err != nil {
			return fmt.Errorf("add user %s: %w", u.Name, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("user %s exists already: %w", u.Name, ErrConflict)
		}
		if err := s.writeUserTrials(ctx, tx, u.Name, u.Trials); err != nil {
			return err
		}
		_, err = s.appendAudit(ctx, tx, AuditRecord{Actor: actor, Action: "user.add", Object: "user:" + u.Name,
			Detail: map[string]any{"role": u.Role, "org": u.Org, "trials": u.Trials, "password": hash != ""}})
		return err
	})
}

func dedupe(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func (s *sqlStore) writeUserTrials(ctx context.Context, tx *sql.Tx, name string, trials []string) error {
	if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlDeleteTrialsOf), name); err != nil {
		return fmt.Errorf("set trials of %s: %w", name, err)
	}
	for _, t := range trials {
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertUserTri), name, t); err != nil {
			return fmt.Errorf("set trials of %s: %w", name, err)
		}
	}
	return nil
}

// GetUser returns user name, or ErrNotFound.
func (s *sqlStore) GetUser(ctx context.Context, name string) (*User, error) {
	u, _, err := s.user(ctx, s.db, name)
	return u, err
}

// user reads a user with its password hash.
func (s *sqlStore) user(ctx context.Context, q querier, name string) (*User, string, error) {
	if !validUserName(name) {
		return nil, "", fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	u, hash, err := scanUser(q.QueryRowContext(ctx, s.st.d.bind(sqlSelectUser), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read user %s: %w", name, err)
	}
	if u.Trials, err = queryStrings(ctx, q, s.st.d.bind(sqlSelectTrialsOf), name); err != nil {
		return nil, "", fmt.Errorf("read trials of %s: %w", name, err)
	}
	if u.Trials == nil {
		u.Trials = []string{}
	}
	return &u, hash, nil
}

func scanUser(r scanner) (User, string, error) {
	var (
		u        User
		hash     string
		disabled int
		at       int64
	)
	if err := r.Scan(&u.Name, &u.Role, &u.Org, &u.Display, &hash, &disabled, &at, &u.CreatedBy); err != nil {
		return User{}, "", err
	}
	u.Disabled, u.CreatedAt, u.HasPassword = disabled != 0, time.Unix(0, at).UTC(), hash != ""
	return u, hash, nil
}

// Users lists every user with their trials.
func (s *sqlStore) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, s.st.d.bind(sqlSelectUsers))
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := []User{}
	for rows.Next() {
		u, _, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	for i := range out {
		if out[i].Trials, err = queryStrings(ctx, s.db, s.st.d.bind(sqlSelectTrialsOf), out[i].Name); err != nil {
			return nil, fmt.Errorf("read trials of %s: %w", out[i].Name, err)
		}
		if out[i].Trials == nil {
			out[i].Trials = []string{}
		}
	}
	return out, nil
}

// UserChange is a change to an existing user; nil fields stay as they are.
type UserChange struct {
	Role     *string
	Trials   *[]string
	Password *string
	Disabled *bool
}

// UpdateUser changes user name and records it; disabling a user or changing
// their password or role ends their sessions.
func (s *sqlStore) UpdateUser(ctx context.Context, name string, c UserChange, actor string) error {
	var errs []error
	if err := checkActor(actor); err != nil {
		errs = append(errs, err)
	}
	if c.Role != nil && !ValidRole(*c.Role) {
		errs = append(errs, fmt.Errorf("%w: role %q", ErrInvalid, *c.Role))
	}
	if c.Trials != nil {
		if err := (User{Name: name, Role: RoleReviewer, Trials: *c.Trials}).Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	hash := ""
	if c.Password != nil {
		var err error
		if hash, err = HashPassword(*c.Password); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	now := s.clk.Now().UTC().UnixNano()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, _, err := s.user(ctx, tx, name); err != nil {
			return err
		}
		detail := map[string]any{}
		endSessions := false
		if c.Role != nil {
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlUpdateRole), *c.Role, now, name); err != nil {
				return fmt.Errorf("update user %s: %w", name, err)
			}
			detail["role"], endSessions = *c.Role, true
		}
		if c.Trials != nil {
			trials := dedupe(*c.Trials)
			if err := s.writeUserTrials(ctx, tx, name, trials); err != nil {
				return err
			}
			detail["trials"] = trials
		}
		if c.Password != nil {
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlUpdatePassword), hash, now, name); err != nil {
				return fmt.Errorf("update user %s: %w", name, err)
			}
			detail["password"], endSessions = "changed", true
		}
		if c.Disabled != nil {
			v := 0
			if *c.Disabled {
				v, endSessions = 1, true
			}
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlUpdateDisabled), v, now, name); err != nil {
				return fmt.Errorf("update user %s: %w", name, err)
			}
			detail["disabled"] = *c.Disabled
		}
		if endSessions {
			if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlDeleteSessOf), name); err != nil {
				return fmt.Errorf("end sessions of %s: %w", name, err)
			}
		}
		_, err := s.appendAudit(ctx, tx, AuditRecord{Actor: actor, Action: "user.update", Object: "user:" + name, Detail: detail})
		return err
	})
}

// Authenticate checks name and password. Any failure is ErrCredentials (the
// message never says whether the user exists) and is recorded in the audit
// trail as login.failed; remote names the client for that record.
func (s *sqlStore) Authenticate(ctx context.Context, name, password, remote string) (*User, error) {
	u, hash, err := s.user(ctx, s.db, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if u == nil || hash == "" {
		_, _ = VerifyPassword(dummyHash, password) // same cost as a real check
	}
	ok := false
	if u != nil && hash != "" {
		if ok, err = VerifyPassword(hash, password); err != nil {
			return nil, err
		}
	}
	if !ok || u.Disabled {
		actor := name
		if checkActor(actor) != nil {
			actor = "unknown"
		}
		if _, err := s.Audit(ctx, AuditRecord{Actor: actor, Action: "login.failed", Object: "user:" + truncateRunes(name, 64),
			Detail: map[string]any{"remote": remote}}); err != nil {
			return nil, err
		}
		return nil, ErrCredentials
	}
	return u, nil
}

// Session is a signed-in user's session.
type Session struct {
	// Token is the session cookie's value; only NewSession returns it (the
	// store keeps its SHA-256).
	Token string `json:"-"`
	// CSRF is the token every form post of the session must carry.
	CSRF      string    `json:"-"`
	User      string    `json:"user"`
	Via       string    `json:"via"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Session statements.
const (
	sqlInsertSession  = `INSERT INTO sessions (id_hash, name, csrf, created_at, expires_at, via) VALUES (?, ?, ?, ?, ?, ?)`
	sqlSelectSession  = `SELECT name, csrf, created_at, expires_at, via FROM sessions WHERE id_hash = ?`
	sqlDeleteSession  = `DELETE FROM sessions WHERE id_hash = ?`
	sqlDeleteSessions = `DELETE FROM sessions WHERE expires_at <= ?`
)

// sessionPrefix marks session tokens.
const sessionPrefix = "sgs_"

func sessionKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewSession starts a session of user name for ttl, signed in via ("password",
// "proxy"), records the login, and drops expired sessions.
func (s *sqlStore) NewSession(ctx context.Context, name, via, remote string, ttl time.Duration) (Session, error) {
	if ttl <= 0 || ttl > 30*24*time.Hour {
		return Session{}, fmt.Errorf("%w: session lifetime %s", ErrInvalid, ttl)
	}
	now := s.clk.Now().UTC()
	sess := Session{Token: sessionPrefix + rand.Text() + rand.Text(), CSRF: rand.Text(), User: name, Via: via, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		u, _, err := s.user(ctx, tx, name)
		if err != nil {
			return err
		}
		if u.Disabled {
			return ErrCredentials
		}
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlDeleteSessions), now.UnixNano()); err != nil {
			return fmt.Errorf("drop expired sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlInsertSession), sessionKey(sess.Token), name, sess.CSRF,
			now.UnixNano(), sess.ExpiresAt.UnixNano(), via); err != nil {
			return fmt.Errorf("store session: %w", err)
		}
		_, err = s.appendAudit(ctx, tx, AuditRecord{Actor: name, Action: "login", Object: "user:" + name,
			Detail: map[string]any{"via": via, "remote": remote, "expires_at": sess.ExpiresAt}})
		return err
	})
	if err != nil {
		return Session{}, err
	}
	return sess, nil
}

// SessionUser returns the session of token and its user; ErrNotFound when the
// token is unknown or expired, or the user is disabled.
func (s *sqlStore) SessionUser(ctx context.Context, token string) (*Session, *User, error) {
	if !strings.HasPrefix(token, sessionPrefix) || len(token) > 128 {
		return nil, nil, fmt.Errorf("session: %w", ErrNotFound)
	}
	var (
		sess             Session
		created, expires int64
	)
	err := s.db.QueryRowContext(ctx, s.st.d.bind(sqlSelectSession), sessionKey(token)).Scan(&sess.User, &sess.CSRF, &created, &expires, &sess.Via)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	if !s.clk.Now().Before(sess.ExpiresAt) {
		return nil, nil, fmt.Errorf("session expired: %w", ErrNotFound)
	}
	u, err := s.GetUser(ctx, sess.User)
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, fmt.Errorf("user disabled: %w", ErrNotFound)
	}
	return &sess, u, nil
}

// EndSession deletes the session of token and records the logout.
func (s *sqlStore) EndSession(ctx context.Context, token string) error {
	sess, _, err := s.SessionUser(ctx, token)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.st.d.bind(sqlDeleteSession), sessionKey(token)); err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		_, err := s.appendAudit(ctx, tx, AuditRecord{Actor: sess.User, Action: "logout", Object: "user:" + sess.User})
		return err
	})
}
