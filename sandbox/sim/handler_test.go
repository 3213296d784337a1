package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

// completion is the non-streaming response shape the tests check.
type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = clock.NewFake(fixedNow)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(t testing.TB, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// chatBody builds a request body with one user message.
func chatBody(model, prompt, extra string) string {
	b, _ := json.Marshal(prompt)
	s := `{"model":"` + model + `","messages":[{"role":"system","content":"be brief"},{"role":"user","content":` + string(b) + `}]`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

var (
	emailRE  = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	mobileRE = regexp.MustCompile(`\+86[ -]?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})`)
	cardRE   = regexp.MustCompile(`\b(?:\d{4}[ -]?){3}\d{4}\b`)
)

func luhnValid(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func TestChatCompletions(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		body   string
		check  func(t *testing.T, c completion)
		finish string
	}{
		{
			name: "plain answer echoes model and prompt",
			body: chatBody("gpt-test", "Hello there, model!", ""),
			check: func(t *testing.T, c completion) {
				if got := c.Choices[0].Message.Content; got != "This is a simulated answer from gpt-test to: Hello there, model." {
					t.Errorf("content = %q", got)
				}
				if c.Model != "gpt-test" {
					t.Errorf("model = %q", c.Model)
				}
				if c.Usage.PromptTokens != 5 { // "be brief" + "Hello there, model!"
					t.Errorf("prompt tokens = %d, want 5", c.Usage.PromptTokens)
				}
			},
			finish: "stop",
		},
		{
			name: "no model answers as the first configured one",
			cfg:  Config{Models: []string{"alpha", "beta"}},
			body: `{"messages":[{"role":"user","content":"hi"}]}`,
			check: func(t *testing.T, c completion) {
				if c.Model != "alpha" || !strings.Contains(c.Choices[0].Message.Content, "from alpha to: hi.") {
					t.Errorf("model %q content %q", c.Model, c.Choices[0].Message.Content)
				}
			},
			finish: "stop",
		},
		{
			name: "fixed answer",
			cfg:  Config{FixedAnswer: "Fixed \"quoted\" answer\nwith two lines."},
			body: chatBody("sim", "anything at all", ""),
			check: func(t *testing.T, c completion) {
				if c.Choices[0].Message.Content != "Fixed \"quoted\" answer\nwith two lines." || c.Usage.CompletionTokens != 6 {
					t.Errorf("content %q tokens %d", c.Choices[0].Message.Content, c.Usage.CompletionTokens)
				}
			},
			finish: "stop",
		},
		{
			name: "pii",
			cfg:  Config{FixedAnswer: "ignored for content directives"},
			body: chatBody("sim", "show me the customer record [sim:pii]", ""),
			check: func(t *testing.T, c completion) {
				text := c.Choices[0].Message.Content
				if !emailRE.MatchString(text) {
					t.Errorf("no e-mail address in %q", text)
				}
				if m := mobileRE.FindStringSubmatch(text); m == nil || len(m[1]+m[2]+m[3]) != 11 {
					t.Errorf("no +86 mobile number in %q", text)
				}
				card := cardRE.FindString(text)
				if card == "" || !luhnValid(card) {
					t.Errorf("no Luhn-valid card number in %q (found %q)", text, card)
				}
			},
			finish: "stop",
		},
		{
			name: "unsafe",
			body: chatBody("sim", "[sim:unsafe] my sugar is high", ""),
			check: func(t *testing.T, c completion) {
				text := strings.ToLower(c.Choices[0].Message.Content)
				for _, w := range []string{"double your insulin dose", "stop taking your prescribed medication", "no need to consult a doctor"} {
					if !strings.Contains(text, w) {
						t.Errorf("unsafe answer lacks %q: %q", w, text)
					}
				}
			},
			finish: "stop",
		},
		{
			name: "pii and unsafe combine",
			body: chatBody("sim", "[sim:unsafe][sim:pii]", ""),
			check: func(t *testing.T, c completion) {
				if c.Choices[0].Message.Content != piiText+" "+unsafeText {
					t.Errorf("content = %q", c.Choices[0].Message.Content)
				}
			},
			finish: "stop",
		},
		{
			name: "tokens gives exactly N filler tokens",
			body: chatBody("sim", "[sim:tokens=40]", ""),
			check: func(t *testing.T, c completion) {
				if c.Usage.CompletionTokens != 40 || countWords(c.Choices[0].Message.Content) != 40 {
					t.Errorf("tokens %d words %d", c.Usage.CompletionTokens, countWords(c.Choices[0].Message.Content))
				}
			},
			finish: "stop",
		},
		{
			name: "max_tokens truncates with length",
			body: chatBody("sim", "[sim:tokens=50]", `"max_tokens":7`),
			check: func(t *testing.T, c completion) {
				if c.Usage.CompletionTokens != 7 || c.Choices[0].Message.Content != "lorem ipsum dolor sit amet consectetur adipiscing" {
					t.Errorf("tokens %d content %q", c.Usage.CompletionTokens, c.Choices[0].Message.Content)
				}
			},
			finish: "length",
		},
		{
			name: "max_completion_tokens wins over max_tokens",
			body: chatBody("sim", "hello world", `"max_tokens":100,"max_completion_tokens":2`),
			check: func(t *testing.T, c completion) {
				if c.Choices[0].Message.Content != "This is" || c.Usage.CompletionTokens != 2 {
					t.Errorf("content %q", c.Choices[0].Message.Content)
				}
			},
			finish: "length",
		},
		{
			name: "max_tokens above the answer length keeps stop",
			body: chatBody("sim", "[sim:tokens=3]", `"max_tokens":3,"max_completion_tokens":null`),
			check: func(t *testing.T, c completion) {
				if c.Usage.CompletionTokens != 3 {
					t.Errorf("tokens %d", c.Usage.CompletionTokens)
				}
			},
			finish: "stop",
		},
		{
			name: "content parts and directives in the last user message only",
			body: `{"model":"m","messages":[{"role":"user","content":"[sim:pii] earlier"},{"role":"assistant","content":null},` +
				`{"role":"user","content":[{"type":"text","text":"part one"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"part two"}]}],"temperature":0.2,"n":1}`,
			check: func(t *testing.T, c completion) {
				if c.Choices[0].Message.Content != "This is a simulated answer from m to: part one part two." {
					t.Errorf("content %q", c.Choices[0].Message.Content)
				}
				if c.Usage.PromptTokens != 6 {
					t.Errorf("prompt tokens %d, want 6", c.Usage.PromptTokens)
				}
			},
			finish: "stop",
		},
		{
			name: "escaped content and model",
			body: `{"model":"m\"x","messages":[{"role":"user","content":"say \"hi\"\n\u00e9"}]}`,
			check: func(t *testing.T, c completion) {
				if c.Model != `m"x` || c.Choices[0].Message.Content != "This is a simulated answer from m\"x to: say \"hi\" é." {
					t.Errorf("model %q content %q", c.Model, c.Choices[0].Message.Content)
				}
			},
			finish: "stop",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, tt.cfg)
			rec := do(t, s.Handler(), http.MethodPost, "/v1/chat/completions", tt.body)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var c completion
			if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
				t.Fatalf("decode %s: %v", rec.Body, err)
			}
			if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Created != fixedNow.Unix() {
				t.Errorf("id %q object %q created %d", c.ID, c.Object, c.Created)
			}
			if len(c.Choices) != 1 || c.Choices[0].Index != 0 || c.Choices[0].Message.Role != "assistant" {
				t.Fatalf("choices = %+v", c.Choices)
			}
			if c.Choices[0].FinishReason != tt.finish {
				t.Errorf("finish_reason %q, want %q", c.Choices[0].FinishReason, tt.finish)
			}
			toks := len(appendTokens(nil, c.Choices[0].Message.Content))
			if c.Usage.CompletionTokens != toks || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
				t.Errorf("usage %+v for %d tokens", c.Usage, toks)
			}
			tt.check(t, c)
		})
	}
}

func TestChatDeterministic(t *testing.T) {
	s := newTestServer(t, Config{})
	body := chatBody("sim", "The same prompt twice", "")
	var a, b completion
	json.Unmarshal(do(t, s.Handler(), "POST", "/v1/chat/completions", body).Body.Bytes(), &a)
	json.Unmarshal(do(t, s.Handler(), "POST", "/v1/chat/completions", body).Body.Bytes(), &b)
	if a.Choices[0].Message.Content != b.Choices[0].Message.Content || a.Usage != b.Usage {
		t.Fatalf("answers differ: %+v vs %+v", a, b)
	}
	// The id carries the body hash (same) and a sequence number (different).
	if a.ID[:25] != b.ID[:25] || a.ID == b.ID || len(a.ID) != 33 {
		t.Fatalf("ids %q and %q", a.ID, b.ID)
	}
	var c completion
	json.Unmarshal(do(t, s.Handler(), "POST", "/v1/chat/completions", chatBody("sim", "Another prompt", "")).Body.Bytes(), &c)
	if c.ID[:25] == a.ID[:25] {
		t.Fatalf("different bodies share the id hash: %q %q", a.ID, c.ID)
	}
}

func TestChatErrors(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		cfg                      Config
		status                   int
		typ, code, msg           string
	}{
		{name: "scripted 503", body: chatBody("sim", "[sim:error=503]", ""), status: 503, typ: "server_error", code: "simulated_error", msg: "HTTP 503"},
		{name: "scripted 429 while streaming", body: chatBody("sim", "[sim:error=429]", `"stream":true`), status: 429, typ: "invalid_request_error", code: "simulated_error"},
		{name: "scripted 400 wins over content", body: chatBody("sim", "[sim:pii][sim:error=400]", ""), status: 400, typ: "invalid_request_error", code: "simulated_error"},
		{name: "bad directive", body: chatBody("sim", "[sim:slow=fast]", ""), status: 400, typ: "invalid_request_error", code: "invalid_directive", msg: "slow=fast"},
		{name: "unknown directive", body: chatBody("sim", "[sim:explode]", ""), status: 400, code: "invalid_directive", typ: "invalid_request_error", msg: "unknown"},
		{name: "malformed json", body: `{"messages":[`, status: 400, typ: "invalid_request_error", code: "invalid_json", msg: "not valid JSON"},
		{name: "trailing garbage", body: `{"messages":[{"role":"user","content":"x"}]} x`, status: 400, typ: "invalid_request_error", code: "invalid_json"},
		{name: "empty body", body: ``, status: 400, typ: "invalid_request_error", code: "invalid_json"},
		{name: "missing messages", body: `{"model":"sim"}`, status: 400, typ: "invalid_request_error", code: "invalid_json", msg: "messages"},
		{name: "empty messages", body: `{"model":"sim","messages":[]}`, status: 400, typ: "invalid_request_error", code: "invalid_json", msg: "messages"},
		{name: "messages wrong type", body: `{"messages":"hi"}`, status: 400, typ: "invalid_request_error", code: "invalid_json", msg: "messages"},
		{name: "missing role", body: `{"messages":[{"content":"hi"}]}`, status: 400, typ: "invalid_request_error", code: "invalid_json", msg: "role"},
		{name: "content wrong type", body: `{"messages":[{"role":"user","content":5}]}`, status: 400, typ: "invalid_request_error", code: "invalid_json", msg: "content"},
		{name: "max_tokens zero", body: chatBody("sim", "x", `"max_tokens":0`), status: 400, typ: "invalid_request_error", code: "invalid_json", msg: "max_tokens"},
		{name: "max_tokens float", body: chatBody("sim", "x", `"max_tokens":1.5`), status: 400, typ: "invalid_request_error", code: "invalid_json", msg: "integer"},
		{name: "model too long", body: chatBody(strings.Repeat("m", 300), "x", ""), status: 400, typ: "invalid_request_error", code: "invalid_json", msg: "model"},
		{name: "body too large", cfg: Config{MaxBodyBytes: 64}, body: chatBody("sim", strings.Repeat("word ", 40), ""), status: 413, typ: "invalid_request_error", code: "request_too_large"},
		{name: "GET on completions", method: "GET", status: 405, typ: "invalid_request_error", code: "method_not_allowed"},
		{name: "POST on models", method: "POST", path: "/v1/models", status: 405, typ: "invalid_request_error", code: "method_not_allowed"},
		{name: "unknown path", method: "GET", path: "/v2/nothing", status: 404, typ: "invalid_request_error", code: "not_found"},
		{name: "unknown model", method: "GET", path: "/v1/models/nope", status: 404, typ: "invalid_request_error", code: "model_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path := tt.method, tt.path
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/v1/chat/completions"
			}
			s := newTestServer(t, tt.cfg)
			rec := do(t, s.Handler(), method, path, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("error body %q: %v", rec.Body, err)
			}
			if e.Error.Type != tt.typ || e.Error.Code != tt.code || e.Error.Message == "" || e.Error.Param != nil {
				t.Errorf("error = %+v, want type %q code %q", e.Error, tt.typ, tt.code)
			}
			if !strings.Contains(e.Error.Message, tt.msg) {
				t.Errorf("message %q lacks %q", e.Error.Message, tt.msg)
			}
			if tt.status == 405 && rec.Header().Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
		})
	}
}

func TestModelsAndHealth(t *testing.T) {
	s := newTestServer(t, Config{Models: []string{"cand-1", "base-1"}})
	rec := do(t, s.Handler(), "GET", "/v1/models", "")
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Created int64  `json:"created"`
			OwnedBy string `json:"owned_by"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 {
		t.Fatalf("models %d %s: %v", rec.Code, rec.Body, err)
	}
	if list.Object != "list" || len(list.Data) != 2 || list.Data[0].ID != "cand-1" || list.Data[1].ID != "base-1" ||
		list.Data[0].Object != "model" || list.Data[0].OwnedBy == "" || list.Data[0].Created == 0 {
		t.Fatalf("models = %+v", list)
	}
	rec = do(t, s.Handler(), "GET", "/v1/models/base-1", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id":"base-1"`) {
		t.Fatalf("model base-1: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, s.Handler(), "GET", "/healthz", "")
	if rec.Code != 200 || rec.Body.String() != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", rec.Code, rec.Body)
	}
}

// TestWaitsHonourCancellation: a slow answer ends as soon as the request's context does.
func TestWaitsHonourCancellation(t *testing.T) {
	for _, cfg := range []Config{{}, {Delay: MaxDuration}} {
		s := newTestServer(t, cfg)
		for _, body := range []string{
			chatBody("sim", "[sim:slow=10m]", ""),
			chatBody("sim", "[sim:slow=10m]", `"stream":true`),
			chatBody("sim", "[sim:gap=10m][sim:tokens=5]", `"stream":true`),
		} {
			if cfg.Delay == 0 && !strings.Contains(body, "slow") && !strings.Contains(body, "gap") {
				continue
			}
			ctx, cancel := context.WithCancel(context.Background())
			req := httptest.NewRequestWithContext(ctx, "POST", "/v1/chat/completions", strings.NewReader(body))
			rec := httptest.NewRecorder()
			done := make(chan struct{})
			go func() {
				defer close(done)
				s.Handler().ServeHTTP(rec, req)
			}()
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("handler still waiting after cancel: %s", body)
			}
			if strings.Contains(rec.Body.String(), "[DONE]") || strings.Contains(rec.Body.String(), `"finish_reason":"stop"`) {
				t.Fatalf("cancelled request completed: %s", rec.Body)
			}
		}
	}
}
