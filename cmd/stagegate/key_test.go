package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/sandbox"
)

func TestKeyCommands(t *testing.T) {
	sb := startDemoSandbox(t)
	admin := "--admin=http://" + sb.AdminAddr()
	t.Setenv("STAGEGATE_ADMIN_TOKEN", sandbox.DemoAdminKey)

	code, out := runCLI("key", "create", "--trial", "demo", "--tenant", "acme", "--cohort", "pilot", "--name", "ios", "--attr", "age_band=adult", admin)
	keyRe := regexp.MustCompile(`(?m)^  (sg_live_[a-z2-7]{32})$`)
	idRe := regexp.MustCompile(`API key (key_[a-z2-7]+) for trial demo, tenant acme`)
	km, im := keyRe.FindStringSubmatch(out), idRe.FindStringSubmatch(out)
	if code != 0 || km == nil || im == nil || !strings.Contains(out, "shown only once") {
		t.Fatalf("create: %d\n%s", code, out)
	}
	key, id := km[1], im[1]

	req, _ := http.NewRequest(http.MethodGet, "http://"+sb.GatewayAddr()+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the new key on the gateway: %d", resp.StatusCode)
	}

	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		want    []string
		notWant string
	}{
		{"help", []string{"key", "--help"}, 0, []string{"prints it ONCE", "create --trial T --tenant X"}, ""},
		{"unknown action", []string{"key", "explode"}, 2, []string{`unknown action "explode"`}, ""},
		{"create needs trial and tenant", []string{"key", "create", "--trial", "demo", admin}, 2, []string{"--trial and --tenant are required"}, ""},
		{"bad attr", []string{"key", "create", "--trial", "demo", "--tenant", "x", "--attr", "noequals", admin}, 2, []string{"name=value"}, ""},
		{"unknown trial", []string{"key", "create", "--trial", "nope", "--tenant", "x", admin}, 1, []string{"neither configured nor applied"}, ""},
		{"list", []string{"key", "list", admin}, 0, []string{id, "demo", "acme", "pilot", "ios"}, key},
		{"show", []string{"key", "show", id, admin}, 0, []string{"trial:    demo", "attr:     age_band=adult"}, key},
		{"revoke", []string{"key", "revoke", id, "--reason", "test", admin}, 0, []string{"revoked"}, ""},
		{"list hides revoked", []string{"key", "list", admin}, 0, []string{"ID"}, id},
		{"list --revoked", []string{"key", "list", "--revoked", admin}, 0, []string{id, "by "}, key},
		{"show unknown", []string{"key", "show", "key_nope", admin}, 1, []string{"no key key_nope"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output misses %q:\n%s", w, out)
				}
			}
			if tc.notWant != "" && strings.Contains(out, tc.notWant) {
				t.Errorf("output holds %q:\n%s", tc.notWant, out)
			}
		})
	}

	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the revoked key on the gateway: %d", resp.StatusCode)
	}
}
