package incidents

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestIsPostgresDSNAndRedact(t *testing.T) {
	tests := []struct {
		target string
		pg     bool
		want   string
	}{
		{"./data/stagegate.db", false, "./data/stagegate.db"},
		{"/var/lib/stagegate/postgres.db", false, "/var/lib/stagegate/postgres.db"},
		{"postgres://sg@db:5432/stagegate?sslmode=require", true, "postgres://sg@db:5432/stagegate?sslmode=require"},
		{"postgresql://sg:s3cret@db/stagegate", true, "postgresql://sg:xxxxx@db/stagegate"},
		{"POSTGRES://sg:s3cret@db/stagegate", true, "postgres://sg:xxxxx@db/stagegate"},
		{"postgres://db/stagegate?password=s3cret&sslmode=disable", true, "postgres://db/stagegate?password=xxxxx&sslmode=disable"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			if got := IsPostgresDSN(tt.target); got != tt.pg {
				t.Errorf("IsPostgresDSN = %v, want %v", got, tt.pg)
			}
			if got := RedactDSN(tt.target); got != tt.want {
				t.Errorf("RedactDSN = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzRedactDSN: a path comes back unchanged, and the password pgx would use
// for a DSN never shows in its redacted form.
func FuzzRedactDSN(f *testing.F) {
	for _, s := range []string{"postgres://u:pw1234567@h/db", "postgres://h/db?password=pw1234567", "postgresql://%zz", "x.db",
		"postgres://h/db?sslpassword=abcdefgh&password=pw1234567#frag"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		out := RedactDSN(target)
		if !IsPostgresDSN(target) {
			if out != target {
				t.Fatalf("a path changed: %q -> %q", target, out)
			}
			return
		}
		cfg, err := pgx.ParseConfig(target)
		if err != nil || len(cfg.Password) < 6 {
			return
		}
		for _, other := range []string{cfg.Host, cfg.User, cfg.Database} {
			if strings.Contains(other, cfg.Password) {
				return // shown as host, user or database name, not as the password
			}
		}
		if strings.Contains(out, cfg.Password) || strings.Contains(out, url.QueryEscape(cfg.Password)) {
			t.Fatalf("password %q leaked: %q -> %q", cfg.Password, target, out)
		}
	})
}

// Opening PostgreSQL never reports the password, whether the DSN does not
// parse or the server cannot be reached.
func TestOpenPostgresErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://sg:TopSecret1@127.0.0.1:1/stagegate?sslmode=disable&connect_timeout=2",
		"postgres://sg:TopSecret1@127.0.0.1:notaport/stagegate",
		"postgres://sg:TopSecret1@127.0.0.1/db?sslmode=bogus",
	} {
		s, err := OpenPostgres(ctx, dsn, nil)
		if err == nil {
			s.Close()
			t.Fatalf("OpenPostgres(%s) succeeded", RedactDSN(dsn))
		}
		if strings.Contains(err.Error(), "TopSecret1") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if _, err := OpenPostgres(ctx, "postgres://127.0.0.1:notaport/x", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("unparsable DSN: %v, want ErrInvalid", err)
	}
}
