package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/policies"
)

// TestPolicyChangeUnderTrafficFailsNoRequest: a regulator edits the trial's policy
// folder while traffic flows; the new revision goes into service with zero failed
// requests, a broken revision is refused while the last good one keeps serving.
func TestPolicyChangeUnderTrafficFailsNoRequest(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"policy.rego", "data.json"} {
		raw, err := policies.Builtin().(interface{ ReadFile(string) ([]byte, error) }).ReadFile("rego/demo/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Trials[0].Policy, cfg.Trials[0].PolicyPoll = dir, 20*time.Millisecond
	sb, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sb.Stop(context.Background())
	first := sb.policyStatuses()["demo"].Revision

	// Steady traffic from 4 clients until the test ends; every answer must be 200
	// or the policy's 403 — never a 5xx or a transport error.
	var stop atomic.Bool
	var sent, bad atomic.Int64
	var badMu sync.Mutex
	var badSample []string
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				body := `{"model":"demo","user":"u` + string(rune('a'+c)) + `","messages":[{"role":"user","content":"what is the recommended dosage of ibuprofen"}]}`
				req, _ := http.NewRequest(http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+DemoPilotKey)
				resp, err := http.DefaultClient.Do(req)
				sent.Add(1)
				if err != nil || (resp.StatusCode != 200 && resp.StatusCode != 403) {
					bad.Add(1)
					badMu.Lock()
					badSample = append(badSample, func() string {
						if err != nil {
							return err.Error()
						}
						return resp.Status
					}())
					badMu.Unlock()
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	decision := func() int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions",
			strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"what is the recommended dosage of ibuprofen"}]}`))
		req.Header.Set("Authorization", "Bearer "+DemoPilotKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// flowing waits until the clients have sent n more requests, so every
	// reload happens with traffic in flight (a count, never a sleep).
	flowing := func(n int64) {
		t.Helper()
		from := sent.Load()
		testutil.WaitFor(t, 10*time.Second, "traffic", func() bool { return sent.Load() >= from+n })
	}
	if decision() != 403 {
		t.Fatal("the demo policy should deny medical dosing")
	}
	flowing(8)
	// The regulator allows medical dosing questions: a new revision.
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"denied_topics": ["weapons"], "max_tokens": 512}`), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "new revision in service", func() bool {
		return sb.policyStatuses()["demo"].Revision != first && decision() == 200
	})
	second := sb.policyStatuses()["demo"].Revision
	flowing(8)
	// A broken revision is refused; the last good one keeps serving.
	if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte("package stagegate\n\ndecision := {"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "broken revision refused", func() bool { return !sb.policyStatuses()["demo"].Healthy })
	flowing(8)
	st := sb.policyStatuses()["demo"]
	if st.Revision != second || st.LastError == "" || decision() != 200 {
		t.Fatalf("after a broken revision: %+v", st)
	}
	// The admin API reports it.
	req, _ := http.NewRequest(http.MethodGet, "http://"+sb.AdminAddr()+"/api/v1/policies", nil)
	req.Header.Set("Authorization", "Bearer "+DemoAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(toJSON(body), "last_error") {
		t.Fatalf("policy status: %d %v", resp.StatusCode, body)
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads: %v", bad.Load(), sent.Load(), badSample)
	}
	t.Logf("%d requests during two reloads, none failed", sent.Load())
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
