package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"

	"github.com/stagegate/stagegate/internal/testutil"
)

func postFeedback(t *testing.T, sb *Sandbox, key, interaction, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/feedback", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if interaction != "" {
		req.Header.Set("X-Stagegate-Interaction", interaction)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPilotUserReportOpensAnIncident: a user reports an answer; the report is
// acknowledged with an id and opens a user_report incident on that interaction.
func TestPilotUserReportOpensAnIncident(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	var resp *http.Response
	client := sdkClient(sb)
	if _, err := client.Chat.Completions.New(context.Background(), chat("tell me about aspirin"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Stagegate-Interaction")

	status, body := postFeedback(t, sb, DemoPilotKey, id, `{"category":"wrong","comment":"the dose it gave is wrong","user":"alice"}`)
	var ack struct{ ID, Status string }
	_ = json.Unmarshal([]byte(body), &ack)
	if status != http.StatusAccepted || !strings.HasPrefix(ack.ID, "fb_") || ack.Status != "received" {
		t.Fatalf("feedback: %d %s", status, body)
	}
	testutil.WaitFor(t, 10*time.Second, "user_report incident", func() bool {
		var list incidentList
		admin(t, sb, "/api/v1/incidents?category=user_report", &list)
		for _, inc := range list.Incidents {
			if inc.InteractionID == id {
				return true
			}
		}
		return false
	})
	// The same report delivered twice is one finding; bad input is refused with reasons.
	for _, tc := range []struct {
		key, interaction, body string
		status                 int
		want                   string
	}{
		{"nope", id, `{"category":"wrong"}`, 401, "invalid_api_key"},
		{DemoPilotKey, id, `{"category":"boring"}`, 400, "'category' must be one of"},
		{DemoPilotKey, "", `{"category":"other"}`, 400, "interaction_id"},
		{DemoPilotKey, id, `{"category":"other","extra":1}`, 400, "unknown field"},
		{DemoPilotKey, id, `{"category":"other","comment":"` + strings.Repeat("x", 5000) + `"}`, 400, "comment"},
	} {
		if status, body := postFeedback(t, sb, tc.key, tc.interaction, tc.body); status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.body[:min(len(tc.body), 40)], status, body, tc.status, tc.want)
		}
	}
	// Rate-limited per user: a burst, then 429 with Retry-After.
	got429 := false
	for range 10 {
		if status, _ := postFeedback(t, sb, DemoPilotKey, id, `{"category":"other","user":"spammer"}`); status == http.StatusTooManyRequests {
			got429 = true
			break
		}
	}
	if !got429 {
		t.Fatal("ten reports in a row from one user were all accepted")
	}
}
