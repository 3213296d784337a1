package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseDirectives(f *testing.F) {
	for _, s := range []string{
		"", "plain", "[sim:pii]", "[sim:pii] [sim:gap=50ms]", "[sim:slow=1h]", "[sim:error=503]",
		"[sim:tokens=100000][sim:cut=0]", "[sim:", "[sim:]", "[sim:slow=-1s]", "[sim:tokens=1e3]", "[sim:[sim:pii]]",
		"[sim: unsafe ]", "[sim:cut=99999999999]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDirectives(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidDirective) {
				t.Fatalf("error %v does not wrap ErrInvalidDirective", err)
			}
			return
		}
		if d.slow < 0 || d.slow > MaxDuration || d.gap < 0 || d.gap > MaxDuration ||
			(d.status != 0 && (d.status < 400 || d.status > 599)) ||
			d.tokens < 0 || d.tokens > MaxTokens || d.cut < -1 || d.cut > MaxTokens {
			t.Fatalf("out-of-bounds directives %+v from %q", d, s)
		}
		if !strings.Contains(s, directivePrefix) && d != (directives{cut: -1}) {
			t.Fatalf("directives %+v from text without any", d)
		}
		// The plain answer never echoes a directive.
		if p := appendPlain(nil, "m", s); strings.Contains(string(p), directivePrefix) {
			t.Fatalf("plain answer %q echoes a directive", p)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		chatBody("sim", "hello", ""),
		chatBody("sim", "[sim:tokens=3]", `"stream":true,"stream_options":{"include_usage":true},"max_tokens":2`),
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
		`{"messages":[{"role":"user","content":null}],"max_completion_tokens":null}`,
		`{"messages":[{"role":"user","content":"\u00e9\ud800"}]}`,
		`{"messages":[]}`, `{`, `null`, `[]`, `{"messages":[{"role":"user","content":{}}]}`,
	} {
		f.Add([]byte(s))
	}
	var r chatRequest
	f.Fuzz(func(t *testing.T, body []byte) {
		err := r.decode(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		if len(r.Messages) == 0 || len(r.Model) > MaxModelIDBytes || r.maxTokens() < 0 {
			t.Fatalf("accepted invalid request %+v", r)
		}
		for _, m := range r.Messages {
			if m.Role == "" || !utf8.ValidString(m.Content.text) {
				t.Fatalf("accepted message %+v", m)
			}
		}
		if r.promptTokens() < 0 {
			t.Fatal("negative prompt tokens")
		}
	})
}

// FuzzHandler posts arbitrary bodies: the handler never panics, answers with a
// known status and, for non-streaming answers, a valid JSON body.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{
		chatBody("sim", "hi [sim:pii][sim:unsafe]", `"max_tokens":3`),
		chatBody("sim", "[sim:tokens=5]", `"stream":true,"stream_options":{"include_usage":true}`),
		chatBody("x\"y", "[sim:error=418]", ""),
		`{"model":"\u2028","messages":[{"role":"user","content":"\u0000\n"}]}`,
		`{"messages":[{"role":"user","content":"[sim:gap=1ms]"}],"stream":true}`,
	} {
		f.Add(s)
	}
	s := newTestServer(f, Config{MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body string) {
		// Keep iterations fast and in-process: no waits, no dropped connections.
		if strings.Contains(body, "slow") || strings.Contains(body, "gap") || strings.Contains(body, "cut") {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, "POST", "/v1/chat/completions", strings.NewReader(body))
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK && rec.Header().Get("Content-Type") == "text/event-stream":
			if !strings.HasSuffix(rec.Body.String(), "data: [DONE]\n\n") {
				t.Fatalf("stream without [DONE]: %q", rec.Body)
			}
			return
		case rec.Code == http.StatusOK:
			var c completion
			if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil || len(c.Choices) != 1 {
				t.Fatalf("completion %q: %v", rec.Body, err)
			}
		case rec.Code >= 400 && rec.Code <= 599:
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Message == "" || e.Error.Code == "" {
				t.Fatalf("error body %q: %v", rec.Body, err)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("invalid JSON %q", rec.Body)
		}
	})
}
