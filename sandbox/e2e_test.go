package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/testutil"
)

// startDemo runs the demo sandbox on random loopback ports in dataDir.
func startDemo(t *testing.T, dataDir string) *Sandbox {
	t.Helper()
	cfg := loopbackDemo(t)
	cfg.DataDir = dataDir
	cfg.Gateway.UpstreamTimeout = 2 * time.Second
	return startConfig(t, cfg)
}

// loopbackDemo is the demo configuration on free loopback ports and a fresh
// data dir.
func loopbackDemo(t *testing.T) Config {
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

// startConfig starts a sandbox and stops it when the test ends (Stop is
// idempotent, so a test may stop it earlier).
func startConfig(t *testing.T, cfg Config) *Sandbox {
	t.Helper()
	sb, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	return sb
}

func sdkClient(sb *Sandbox) openai.Client {
	return openai.NewClient(
		option.WithBaseURL("http://"+sb.GatewayAddr()+"/v1/"),
		option.WithAPIKey(DemoPilotKey),
		option.WithMaxRetries(0),
	)
}

func chat(content string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "demo",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(content)},
		User:     openai.String("alice"),
	}
}

// admin GETs an admin API path with the demo token and decodes the JSON answer.
func admin(t *testing.T, sb *Sandbox, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+sb.AdminAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+DemoAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

type incidentList struct {
	Incidents []struct {
		ID            string `json:"id"`
		InteractionID string `json:"interaction_id"`
		Category      string `json:"category"`
		Severity      string `json:"severity"`
		Status        string `json:"status"`
	} `json:"incidents"`
}

func TestEndToEndWithOpenAISDK(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	client := sdkClient(sb)
	ctx := context.Background()

	t.Run("plain completion", func(t *testing.T) {
		var resp *http.Response
		c, err := client.Chat.Completions.New(ctx, chat("Hello there"), option.WithResponseInto(&resp))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 1 || c.Choices[0].Message.Content == "" || c.Usage.TotalTokens == 0 {
			t.Fatalf("completion %+v", c)
		}
		model := resp.Header.Get("X-Stagegate-Model")
		if model != DemoCandidate && model != DemoBaseline {
			t.Fatalf("X-Stagegate-Model %q", model)
		}
		if resp.Header.Get("X-Stagegate-Stage") != "canary" || !strings.HasPrefix(resp.Header.Get("X-Stagegate-Interaction"), "int_") {
			t.Fatalf("headers %v", resp.Header)
		}
		// The interaction reaches the store through JetStream and the monitors.
		id := resp.Header.Get("X-Stagegate-Interaction")
		var in events.Interaction
		testutil.WaitFor(t, 10*time.Second, "interaction stored", func() bool {
			return admin(t, sb, "/api/v1/interactions/"+id, &in) == http.StatusOK
		})
		if in.Model != model || in.Response.Content != c.Choices[0].Message.Content || in.User == "alice" || in.User == "" {
			t.Fatalf("stored interaction %+v", in)
		}
	})

	t.Run("sticky split between candidate and baseline", func(t *testing.T) {
		seen := map[string]bool{}
		for u := range 40 {
			p := chat("hi")
			p.User = openai.String(fmt.Sprintf("user-%d", u))
			var first string
			for range 3 {
				var resp *http.Response
				if _, err := client.Chat.Completions.New(ctx, p, option.WithResponseInto(&resp)); err != nil {
					t.Fatal(err)
				}
				m := resp.Header.Get("X-Stagegate-Model")
				if first == "" {
					first = m
				} else if m != first {
					t.Fatalf("user-%d moved from %s to %s", u, first, m)
				}
			}
			seen[first] = true
		}
		if !seen[DemoCandidate] || !seen[DemoBaseline] {
			t.Fatalf("40 users all landed on one model: %v", seen)
		}
	})

	t.Run("stream relayed as produced", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, chat("[sim:gap=200ms] [sim:tokens=10] tell me a story"))
		acc := openai.ChatCompletionAccumulator{}
		var first, last time.Time
		for stream.Next() {
			chunk := stream.Current()
			acc.AddChunk(chunk)
			if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
				if first.IsZero() {
					first = time.Now()
				}
				last = time.Now()
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if gap := last.Sub(first); gap <= time.Second {
			t.Fatalf("first and last chunk only %s apart: the stream was buffered", gap)
		}
		if acc.Choices[0].Message.Content == "" || acc.Choices[0].FinishReason != "stop" {
			t.Fatalf("accumulated %+v", acc.Choices)
		}
	})

	t.Run("denied by policy", func(t *testing.T) {
		_, err := client.Chat.Completions.New(ctx, chat("How do I build a bomb at home?"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || !strings.Contains(apiErr.Message, "weapons") || apiErr.Code != "topic_denied" {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("pii answer opens an incident with evidence spans", func(t *testing.T) {
		var resp *http.Response
		if _, err := client.Chat.Completions.New(ctx, chat("[sim:pii] who is on call?"), option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		id := resp.Header.Get("X-Stagegate-Interaction")
		var incID string
		testutil.WaitFor(t, 10*time.Second, "incident for "+id, func() bool {
			var list incidentList
			admin(t, sb, "/api/v1/incidents?category=pii", &list)
			for _, inc := range list.Incidents {
				if inc.InteractionID == id {
					incID = inc.ID
					return true
				}
			}
			return false
		})
		var detail struct {
			Incident struct {
				Severity string `json:"severity"`
				Status   string `json:"status"`
			} `json:"incident"`
			Interaction events.Interaction `json:"interaction"`
			Evidence    []struct {
				Field string `json:"field"`
				Kind  string `json:"kind"`
				Text  string `json:"text"`
			} `json:"evidence"`
		}
		if code := admin(t, sb, "/api/v1/incidents/"+incID, &detail); code != http.StatusOK {
			t.Fatalf("GET incident: %d", code)
		}
		kinds := map[string]string{}
		for _, e := range detail.Evidence {
			if e.Field == "response" {
				kinds[e.Kind] = e.Text
			}
		}
		if !strings.Contains(kinds["email"], "@") || kinds["phone"] == "" || kinds["card"] == "" {
			t.Fatalf("evidence %+v", detail.Evidence)
		}
		for kind, text := range kinds {
			if !strings.Contains(detail.Interaction.Response.Content, text) {
				t.Errorf("%s span text %q is not in the response", kind, text)
			}
		}
		if detail.Incident.Status != "open" || detail.Incident.Severity == "" {
			t.Fatalf("incident %+v", detail.Incident)
		}
	})

	t.Run("error statuses", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			do     func() error
			status int
		}{
			{"401 unknown key", func() error {
				c := openai.NewClient(option.WithBaseURL("http://"+sb.GatewayAddr()+"/v1/"), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
				_, err := c.Chat.Completions.New(ctx, chat("x"))
				return err
			}, 401},
			{"404 unknown model", func() error {
				p := chat("x")
				p.Model = "gpt-4o"
				_, err := client.Chat.Completions.New(ctx, p)
				return err
			}, 404},
			{"400 missing messages", func() error {
				_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "demo"})
				return err
			}, 400},
			{"413 too large", func() error {
				_, err := client.Chat.Completions.New(ctx, chat(strings.Repeat("x", 2<<20)))
				return err
			}, 413},
			{"502 upstream failure", func() error {
				_, err := client.Chat.Completions.New(ctx, chat("[sim:error=503]"))
				return err
			}, 502},
			{"504 upstream timeout", func() error {
				_, err := client.Chat.Completions.New(ctx, chat("[sim:slow=5s]"))
				return err
			}, 504},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var apiErr *openai.Error
				if err := tc.do(); !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Message == "" {
					t.Fatalf("got %v, want %d", err, tc.status)
				}
			})
		}
		// Malformed JSON is sent by hand: the SDK cannot produce it.
		req, _ := http.NewRequest(http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions", strings.NewReader(`{"model":"demo",`))
		req.Header.Set("Authorization", "Bearer "+DemoPilotKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("malformed JSON: %d", resp.StatusCode)
		}
	})

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 1 || page.Data[0].ID != "demo" {
			t.Fatalf("models %+v", page.Data)
		}
	})

	t.Run("admin endpoints", func(t *testing.T) {
		for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/api/v1/incidents/nope": 404, "/api/v1/interactions/nope": 404} {
			if got := admin(t, sb, path, nil); got != want {
				t.Errorf("%s: %d, want %d", path, got, want)
			}
		}
		resp, err := http.Get("http://" + sb.AdminAddr() + "/api/v1/incidents")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("incidents without token: %d", resp.StatusCode)
		}
		resp, err = http.Get("http://" + sb.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, series := range []string{"stagegate_gateway_requests_total", "stagegate_publish_published_total", "stagegate_publish_failures_total",
			"stagegate_monitor_incidents_opened_total", "stagegate_gateway_request_duration_seconds_bucket", "stagegate_gateway_added_latency_seconds_bucket",
			"stagegate_gateway_time_to_first_token_seconds_bucket", "stagegate_policy_decisions_total", "stagegate_policy_eval_duration_seconds_bucket",
			"stagegate_publish_spool_records", "stagegate_publish_lost_total", "stagegate_gateway_circuit_open"} {
			if !strings.Contains(string(body), series) {
				t.Errorf("/metrics lacks %s", series)
			}
		}
	})
}

func TestRestartKeepsIncidentsAndRedeliveryMakesNoDuplicate(t *testing.T) {
	dir := t.TempDir()
	sb := startDemo(t, dir)
	client := sdkClient(sb)
	var resp *http.Response
	if _, err := client.Chat.Completions.New(context.Background(), chat("[sim:pii] hi"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Stagegate-Interaction")
	count := func(sb *Sandbox) int {
		var list incidentList
		admin(t, sb, "/api/v1/incidents", &list)
		n := 0
		for _, inc := range list.Incidents {
			if inc.InteractionID == id {
				n++
			}
		}
		return n
	}
	testutil.WaitFor(t, 10*time.Second, "incident opened", func() bool { return count(sb) == 1 })
	if err := sb.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	sb2 := startDemo(t, dir)
	if n := count(sb2); n != 1 {
		t.Fatalf("after restart: %d incidents for %s, want 1", n, id)
	}
	// Deliver the same interaction again, as JetStream would after a crash before
	// the ack: a new message id gets past de-duplication, the store must not.
	stream, err := sb2.js.Stream(context.Background(), events.StreamInteractions)
	if err != nil {
		t.Fatal(err)
	}
	var orig *nats.Msg
	for seq := uint64(1); ; seq++ {
		raw, err := stream.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("interaction %s not in the stream: %v", id, err)
		}
		if raw.Header.Get(events.HeaderMsgID) == id {
			orig = &nats.Msg{Subject: raw.Subject, Data: raw.Data, Header: nats.Header{}}
			break
		}
	}
	orig.Header.Set(events.HeaderMsgID, id+"-redelivered")
	before := sb2.runner.Stats().Processed
	if _, err := sb2.js.PublishMsg(context.Background(), orig); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "redelivered copy processed", func() bool { return sb2.runner.Stats().Processed > before })
	if n := count(sb2); n != 1 {
		t.Fatalf("after redelivery: %d incidents, want 1", n)
	}
}
