package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
)

// pseudonymReference is the pseudonym as first defined: "u_" and the first 12
// bytes of HMAC-SHA256(secret, tenant 0x00 user) in hex. Pseudonyms are stored,
// so the pooled implementation must never change one.
func pseudonymReference(secret []byte, tenant, user string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tenant))
	m.Write([]byte{0})
	m.Write([]byte(user))
	return "u_" + hex.EncodeToString(m.Sum(nil)[:12])
}

func TestPseudonymizerIsStableAndSafeForConcurrentUse(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	p := pseudonymizer(secret)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tenant, user := fmt.Sprintf("tenant-%d", g), fmt.Sprintf("user-%d-%s", i, string(make([]byte, i*30)))
				if got, want := p(tenant, user), pseudonymReference(secret, tenant, user); got != want {
					t.Errorf("pseudonym(%s, user %d) = %s, want %s", tenant, i, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if p("a", "bc") == p("ab", "c") {
		t.Error("the separator does not separate tenant and user")
	}
}

var sinkPseudonym string

func BenchmarkPseudonymizer(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	b.Run("pooled", func(b *testing.B) {
		p := pseudonymizer(secret)
		b.ReportAllocs()
		for b.Loop() {
			sinkPseudonym = p("bench-tenant", "user-0042")
		}
	})
	b.Run("hmac_per_call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkPseudonym = pseudonymReference(secret, "bench-tenant", "user-0042")
		}
	})
}
