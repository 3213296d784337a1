package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/sandbox/sim"
)

// recorder is a Publisher that keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	got  []*events.Interaction
	full bool
}

func (r *recorder) Full() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.full
}

func (r *recorder) Publish(in *events.Interaction) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, in)
	return nil
}

// last waits for the handler to publish (it does so after the client got the
// whole answer) and returns the newest interaction.
func (r *recorder) last(t *testing.T) *events.Interaction {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, "an interaction published", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.got) > 0
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[len(r.got)-1]
}

type fixedAssigner struct{ route, shadow string }

func (f fixedAssigner) Assign(trial, user, cohort, requestID string) (gateway.Assignment, bool) {
	if trial != "demo" {
		return gateway.Assignment{}, false
	}
	m, _ := f.Route(trial, f.route)
	return gateway.Assignment{Model: m, Route: f.route, Stage: "canary", Shadow: f.shadow}, true
}

func (fixedAssigner) Route(trial, route string) (string, bool) {
	return map[string]string{"candidate": "cand", "baseline": "base"}[route], true
}

const pilotKey = "sg-test-key"

func newGateway(t *testing.T, upstreamTimeout time.Duration) (*httptest.Server, *recorder) {
	t.Helper()
	sub, err := fs.Sub(policies.Builtin(), "rego/demo")
	if err != nil {
		t.Fatal(err)
	}
	return newGatewayWithPolicy(t, upstreamTimeout, sub)
}

func newGatewayWithPolicy(t *testing.T, upstreamTimeout time.Duration, policy fs.FS) (*httptest.Server, *recorder) {
	t.Helper()
	s, err := sim.New(sim.Config{Models: []string{"cand", "base"}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(s.Handler())
	t.Cleanup(up.Close)
	eng, err := policies.New(context.Background(), policies.Config{FS: policy})
	if err != nil {
		t.Fatal(err)
	}
	ext, err := policies.NewExtractor(policies.Topics{"weapons": {"build a bomb"}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := gateway.NewKeys(map[string]gateway.Principal{gateway.HashKey(pilotKey): {KeyID: "k1", Trial: "demo", Tenant: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	g, err := gateway.New(gateway.Config{UpstreamTimeout: upstreamTimeout}, gateway.Deps{
		Keys:      keys,
		Trials:    map[string]*gateway.Trial{"demo": {ID: "demo", LogicalModel: "demo", Decider: eng, Extractor: ext}},
		Upstreams: map[string]*gateway.Upstream{"cand": {Name: "cand", BaseURL: up.URL + "/v1"}, "base": {Name: "base", BaseURL: up.URL + "/v1"}},
		Assigner:  fixedAssigner{route: "candidate"}, Publisher: rec,
		Pseudonymize: func(tenant, user string) string { return "p_" + tenant + "_" + user },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv, rec
}

func post(t *testing.T, url, key, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestChatStatuses(t *testing.T) {
	srv, rec := newGateway(t, 2*time.Second)
	for _, tc := range []struct {
		name, key, body string
		status          int
		code            string // OpenAI error code, "" for success
		published       string // expected status of the published interaction, "" if none
	}{
		{"ok", pilotKey, `{"model":"demo","user":"alice","messages":[{"role":"user","content":"hello"}]}`, 200, "", events.StatusOK},
		{"no key", "", `{"model":"demo","messages":[{"role":"user","content":"x"}]}`, 401, "invalid_api_key", ""},
		{"unknown key", "nope", `{"model":"demo","messages":[{"role":"user","content":"x"}]}`, 401, "invalid_api_key", ""},
		{"malformed", pilotKey, `{"model":"demo","messages":[`, 400, "invalid_request", ""},
		{"missing messages", pilotKey, `{"model":"demo"}`, 400, "invalid_request", ""},
		{"unknown model", pilotKey, `{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found", ""},
		{"too large", pilotKey, `{"model":"demo","messages":[{"role":"user","content":"` + strings.Repeat("a", 2<<20) + `"}]}`, 413, "request_too_large", ""},
		{"denied", pilotKey, `{"model":"demo","messages":[{"role":"user","content":"how do I build a bomb"}]}`, 403, "topic_denied", events.StatusDenied},
		{"upstream 503", pilotKey, `{"model":"demo","messages":[{"role":"user","content":"[sim:error=503]"}]}`, 502, "upstream_error", events.StatusUpstreamError},
		{"upstream timeout", pilotKey, `{"model":"demo","messages":[{"role":"user","content":"[sim:slow=5s]"}]}`, 504, "upstream_timeout", events.StatusUpstreamError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec.mu.Lock()
			before := len(rec.got)
			rec.mu.Unlock()
			resp, body := post(t, srv.URL, tc.key, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if resp.Header.Get(gateway.HeaderInteraction) == "" {
				t.Error("no interaction header")
			}
			if tc.code != "" {
				if !strings.Contains(body, `"code":"`+tc.code+`"`) || !strings.Contains(body, `"message":`) || !strings.Contains(body, `"type":`) {
					t.Fatalf("error body %s, want code %s", body, tc.code)
				}
			}
			rec.mu.Lock()
			n := len(rec.got)
			rec.mu.Unlock()
			if tc.published == "" {
				if n != before {
					t.Fatalf("published %d interactions, want none", n-before)
				}
				return
			}
			testutil.WaitFor(t, 5*time.Second, "interaction published", func() bool {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				n = len(rec.got)
				return n > before
			})
			in := rec.last(t)
			if n != before+1 || in.Status != tc.published || in.ID != resp.Header.Get(gateway.HeaderInteraction) {
				t.Fatalf("published %+v", in)
			}
		})
	}
	in := rec.got[0]
	if in.User != "p_acme_alice" || in.Model != "cand" || in.Route != "candidate" || in.Response.Content == "" || in.Decision.PolicyRevision == "" {
		t.Fatalf("ok interaction %+v", in)
	}
}

func TestDeniedCarriesPolicyReason(t *testing.T) {
	srv, rec := newGateway(t, time.Second)
	resp, body := post(t, srv.URL, pilotKey, `{"model":"demo","messages":[{"role":"user","content":"help me build a bomb"}]}`)
	if resp.StatusCode != 403 || !strings.Contains(body, "weapons") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	in := rec.last(t)
	if in.Decision.Allow || len(in.Decision.Reasons) == 0 || in.Decision.Reasons[0].Code != "topic_denied" {
		t.Fatalf("decision %+v", in.Decision)
	}
}

func TestStreamRelaysChunksAsTheyArrive(t *testing.T) {
	srv, rec := newGateway(t, 10*time.Second)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"demo","stream":true,"messages":[{"role":"user","content":"[sim:gap=100ms] [sim:tokens=6]"}]}`))
	req.Header.Set("Authorization", "Bearer "+pilotKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	var arrivals []time.Time
	var content strings.Builder
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		arrivals = append(arrivals, time.Now())
		if data == "[DONE]" {
			done = true
			break
		}
		if i := strings.Index(data, `"content":"`); i >= 0 {
			rest := data[i+len(`"content":"`):]
			content.WriteString(rest[:strings.Index(rest, `"`)])
		}
	}
	if !done {
		t.Fatal("no [DONE]")
	}
	if spread := arrivals[len(arrivals)-1].Sub(arrivals[0]); spread < 400*time.Millisecond {
		t.Fatalf("chunks arrived within %s: buffered, not relayed", spread)
	}
	in := rec.last(t)
	if in.Status != events.StatusOK || !in.Stream || in.Response.Content != content.String() || in.Latency.FirstTokenMS <= 0 {
		t.Fatalf("recorded %+v, client saw %q", in.Response, content.String())
	}
}

func TestBrokenStreamEndsWithErrorEvent(t *testing.T) {
	srv, rec := newGateway(t, 10*time.Second)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"demo","stream":true,"messages":[{"role":"user","content":"[sim:cut=2] [sim:tokens=10]"}]}`))
	req.Header.Set("Authorization", "Bearer "+pilotKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"code":"upstream_stream_broken"`) || strings.Contains(string(body), "[DONE]") {
		t.Fatalf("stream body %s", body)
	}
	if in := rec.last(t); in.Status != events.StatusPartial || in.Response.Content == "" {
		t.Fatalf("recorded %+v", in)
	}
}

func TestModelsListsOnlyTheTrialsModel(t *testing.T) {
	srv, _ := newGateway(t, time.Second)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+pilotKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"id":"demo"`) || strings.Contains(string(b), "cand") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

const noticePolicy = `package stagegate

decision := {
	"allow": true,
	"reasons": [],
	"route": "",
	"obligations": {"redact_pii_in_storage": false, "max_tokens": 0, "notice": "You are talking to an AI model under trial.", "log_level": "info"},
	"fail_mode": "closed",
}
`

func TestDisclosureNoticeLeadsTheAnswer(t *testing.T) {
	srv, rec := newGatewayWithPolicy(t, 5*time.Second, fstest.MapFS{"policy.rego": {Data: []byte(noticePolicy)}})
	const notice = "You are talking to an AI model under trial.\n\n"

	_, body := post(t, srv.URL, pilotKey, `{"model":"demo","messages":[{"role":"user","content":"hello"}]}`)
	var c struct {
		Choices []struct{ Message struct{ Content string } }
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil || len(c.Choices) != 1 || !strings.HasPrefix(c.Choices[0].Message.Content, notice) {
		t.Fatalf("answer %s", body)
	}
	if in := rec.last(t); !strings.HasPrefix(in.Response.Content, notice) {
		t.Fatalf("recorded content %q lacks the notice", in.Response.Content)
	}

	_, body = post(t, srv.URL, pilotKey, `{"model":"demo","stream":true,"messages":[{"role":"user","content":"[sim:tokens=3]"}]}`)
	var joined strings.Builder
	for _, line := range strings.Split(body, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct{ Delta struct{ Content string } }
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		for _, c := range ch.Choices {
			joined.WriteString(c.Delta.Content)
		}
	}
	if !strings.HasPrefix(joined.String(), notice) || len(joined.String()) <= len(notice) {
		t.Fatalf("streamed %q", joined.String())
	}
}
