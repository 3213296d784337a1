package incidents

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

func TestPasswordHashing(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", h)
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Error("same salt twice")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct horse battery", true}, {"correct horse batterY", false}, {"", false}} {
		ok, err := VerifyPassword(h, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("verify %q: %v, %v", tc.pw, ok, err)
		}
	}
	if _, err := HashPassword("short"); !errors.Is(err, ErrInvalid) {
		t.Errorf("short password: %v", err)
	}
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", // 95 GiB: refused
		"$argon2id$v=19$m=19456,t=2,p=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=19456,t=2,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5",
	} {
		if _, err := VerifyPassword(bad, "whatever password"); !errors.Is(err, ErrInvalid) {
			t.Errorf("stored %q: %v", bad, err)
		}
	}
}

func FuzzParsePasswordHash(f *testing.F) {
	f.Add(dummyHash)
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePasswordHash(s)
		if err != nil {
			return
		}
		// Whatever parses is bounded, so verifying can never cost more than that.
		if p.memory > maxArgonMemoryKiB || p.time > maxArgonTime || p.threads > maxArgonThreads || p.threads == 0 ||
			len(p.key) > maxArgonKeyLen || len(p.salt) > maxArgonSaltLen {
			t.Fatalf("unbounded parameters from %q: %+v", s, p)
		}
	})
}

func TestUsersAuthenticationAndSessions(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "u.db"), clk)
	ctx := context.Background()
	rita := User{Name: "rita", Role: RoleReviewer, Org: "Regulator QA", Trials: []string{"t2", "t1", "t1"}}
	if err := s.AddUser(ctx, rita, "rita's long password", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, rita, "rita's long password", "admin"); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate: %v", err)
	}
	err := s.AddUser(ctx, User{Name: "bad name", Role: "boss", Trials: []string{"a b"}}, "short", "")
	for _, want := range []string{"user name", "role", "trial", "password", "actor"} {
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not mention %s", err, want)
		}
	}
	u, err := s.Authenticate(ctx, "rita", "rita's long password", "127.0.0.1")
	if err != nil || u.Role != RoleReviewer || strings.Join(u.Trials, ",") != "t1,t2" || !u.HasPassword {
		t.Fatalf("authenticate: %+v, %v", u, err)
	}
	for _, tc := range []struct{ name, pw string }{{"rita", "wrong password!!"}, {"nobody", "rita's long password"}, {"bad name", "x"}} {
		if _, err := s.Authenticate(ctx, tc.name, tc.pw, "10.0.0.9"); !errors.Is(err, ErrCredentials) || err.Error() != ErrCredentials.Error() {
			t.Errorf("%s/%s: %v", tc.name, tc.pw, err)
		}
	}
	failed, err := s.AuditEntries(ctx, AuditFilter{ActionPrefix: "login.failed"})
	if err != nil || len(failed) != 3 || failed[2].Actor != "rita" {
		t.Fatalf("failed logins audited: %+v, %v", failed, err)
	}

	sess, err := s.NewSession(ctx, "rita", "password", "127.0.0.1", time.Hour)
	if err != nil || !strings.HasPrefix(sess.Token, sessionPrefix) || sess.CSRF == "" {
		t.Fatalf("session: %+v, %v", sess, err)
	}
	got, user, err := s.SessionUser(ctx, sess.Token)
	if err != nil || got.CSRF != sess.CSRF || user.Name != "rita" {
		t.Fatalf("session lookup: %+v %+v %v", got, user, err)
	}
	if _, _, err := s.SessionUser(ctx, sess.Token+"x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("wrong token: %v", err)
	}
	clk.Advance(time.Hour)
	if _, _, err := s.SessionUser(ctx, sess.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired session: %v", err)
	}
	// Disabling ends sessions and logins.
	sess, _ = s.NewSession(ctx, "rita", "password", "", time.Hour)
	yes := true
	if err := s.UpdateUser(ctx, "rita", UserChange{Disabled: &yes}, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionUser(ctx, sess.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of disabled user: %v", err)
	}
	if _, err := s.Authenticate(ctx, "rita", "rita's long password", ""); !errors.Is(err, ErrCredentials) {
		t.Errorf("disabled login: %v", err)
	}
	trials := []string{"t3"}
	no := false
	if err := s.UpdateUser(ctx, "rita", UserChange{Disabled: &no, Trials: &trials}, "admin"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.GetUser(ctx, "rita"); u.Disabled || strings.Join(u.Trials, ",") != "t3" {
		t.Errorf("after update: %+v", u)
	}
	if err := s.EndSession(ctx, sess.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("ended already: %v", err)
	}
	// A proxy-only user has no password and cannot log in with one.
	if err := s.AddUser(ctx, User{Name: "pat@regulator.example", Role: RoleRegulator}, "", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "pat@regulator.example", "", ""); !errors.Is(err, ErrCredentials) {
		t.Errorf("proxy-only user with empty password: %v", err)
	}
	list, err := s.Users(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "pat@regulator.example" || list[0].HasPassword {
		t.Errorf("users %+v, %v", list, err)
	}
	if v := verify(t, s); !v.OK {
		t.Errorf("audit chain: %+v", v)
	}
}

func TestRolesAndActions(t *testing.T) {
	reviewer := &User{Name: "rita", Role: RoleReviewer, Trials: []string{"t1"}}
	regulator := &User{Name: "reg", Role: RoleRegulator, Trials: []string{"t1"}}
	company := &User{Name: "acme", Role: RoleCompany, Trials: []string{"t1"}}
	admin := &User{Name: "root", Role: RoleAdmin}
	for _, tc := range []struct {
		u                      *User
		kind, status, assignee string
		ok                     bool
	}{
		{reviewer, ActionClaim, StatusOpen, "", true},
		{reviewer, ActionConfirm, StatusInReview, "rita", true},
		{reviewer, ActionConfirm, StatusInReview, "sam", false}, // held by someone else
		{reviewer, ActionConfirm, StatusEscalated, "", false},   // the regulator decides
		{reviewer, ActionReopen, StatusConfirmed, "", false},
		{reviewer, ActionAssign, StatusOpen, "", false},
		{reviewer, ActionReportFiled, StatusConfirmed, "", false},
		{regulator, ActionConfirm, StatusEscalated, "", true},
		{regulator, ActionConfirm, StatusInReview, "sam", true}, // may overrule
		{regulator, ActionClaim, StatusOpen, "", false},
		{regulator, ActionAssign, StatusOpen, "", true},
		{regulator, ActionReopen, StatusDismissed, "", true},
		{company, ActionClaim, StatusOpen, "", false},
		{company, ActionConfirm, StatusInReview, "acme", false},
		{company, ActionEscalate, StatusOpen, "", false},
		{company, ActionReportFiled, StatusConfirmed, "", true},
		{admin, ActionConfirm, StatusInReview, "sam", true},
		{admin, "explode", StatusOpen, "", false},
	} {
		err := tc.u.CheckAction(tc.kind, tc.status, tc.assignee)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("%s %s on %s held by %q: %v, want ok=%v", tc.u.Role, tc.kind, tc.status, tc.assignee, err, tc.ok)
		}
	}
	if !company.CanSee("t1") || company.CanSee("t2") || !admin.CanSee("anything") || (&User{Role: RoleReviewer}).CanSee("t1") {
		t.Error("scopes")
	}
	if company.Can(PermAudit) || !regulator.Can(PermAudit) || reviewer.Can(PermReport) || !admin.Can(PermUsers) {
		t.Error("permissions")
	}
	disabled := &User{Name: "x", Role: RoleAdmin, Disabled: true}
	if disabled.Can(PermView) || disabled.CanSee("t1") {
		t.Error("disabled user")
	}
}
