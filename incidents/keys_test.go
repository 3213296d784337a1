package incidents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

func keyHash(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

func TestAPIKeysLifecycle(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "k.db"), clk)
	ctx := context.Background()

	v0, err := s.KeysVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateAPIKey(ctx, APIKey{ID: "key_1", Name: "app", Prefix: "sg_live_abcd", Hash: keyHash("sg_live_abcdsecret"),
		Trial: "t1", Tenant: "acme", Cohort: "pilot", Attributes: map[string]string{"age_band": "adult"}, CreatedBy: "admin-token"})
	if err != nil {
		t.Fatal(err)
	}
	if !k.CreatedAt.Equal(t0) || !k.Active() {
		t.Fatalf("created %+v", k)
	}
	clk.Advance(time.Second)
	if _, err := s.CreateAPIKey(ctx, APIKey{ID: "key_2", Prefix: "sg_live_efgh", Hash: keyHash("other"), Trial: "t2", Tenant: "beta", CreatedBy: "rita"}); err != nil {
		t.Fatal(err)
	}
	v1, _ := s.KeysVersion(ctx)
	if v1 == v0 || v1.Count != 2 {
		t.Fatalf("version after two creations: %+v (before %+v)", v1, v0)
	}

	// The same hash or id again is a conflict, and nothing changes.
	if _, err := s.CreateAPIKey(ctx, APIKey{ID: "key_3", Hash: keyHash("other"), Trial: "t2", Tenant: "beta", CreatedBy: "rita"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate hash: %v", err)
	}
	if _, err := s.CreateAPIKey(ctx, APIKey{ID: "key_1", Hash: keyHash("third"), Trial: "t2", Tenant: "beta", CreatedBy: "rita"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}

	list, err := s.APIKeys(ctx, KeyFilter{Trial: "t1"})
	if err != nil || len(list) != 1 || list[0].ID != "key_1" || list[0].Attributes["age_band"] != "adult" || list[0].Hash != keyHash("sg_live_abcdsecret") {
		t.Fatalf("list t1: %+v %v", list, err)
	}

	clk.Advance(time.Second)
	rk, err := s.RevokeAPIKey(ctx, "key_1", "rita", "leaked in a screenshot")
	if err != nil || rk.Active() || rk.RevokedBy != "rita" {
		t.Fatalf("revoke: %+v %v", rk, err)
	}
	if again, err := s.RevokeAPIKey(ctx, "key_1", "sam", ""); err != nil || again.RevokedBy != "rita" {
		t.Fatalf("second revoke: %+v %v", again, err)
	}
	if _, err := s.RevokeAPIKey(ctx, "key_none", "rita", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	active, _ := s.APIKeys(ctx, KeyFilter{})
	all, _ := s.APIKeys(ctx, KeyFilter{Revoked: true})
	if len(active) != 1 || active[0].ID != "key_2" || len(all) != 2 {
		t.Fatalf("active %d, all %d", len(active), len(all))
	}
	v2, _ := s.KeysVersion(ctx)
	if v2 == v1 {
		t.Fatal("revocation did not change the keys version")
	}

	// Creation and revocation are in the audit trail; no key material is.
	entries, err := s.AuditEntries(ctx, AuditFilter{ActionPrefix: "key."})
	if err != nil || len(entries) != 3 {
		t.Fatalf("audit: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		if strings.Contains(string(e.Detail), keyHash("other")) || strings.Contains(string(e.Detail), "secret") {
			t.Errorf("audit entry %d holds key material: %s", e.Seq, e.Detail)
		}
	}
}

func TestAPIKeyValidation(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "k.db"), clock.NewFake(t0))
	_, err := s.CreateAPIKey(context.Background(), APIKey{ID: "bad id", Hash: "ABC", Trial: "", Tenant: " ", Name: "a\nb", CreatedBy: ""})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	for _, want := range []string{"id", "hash", "trial", "tenant", "name", "actor"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}
