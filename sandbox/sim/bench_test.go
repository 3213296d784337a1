package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discardWriter is a reusable ResponseWriter, to measure the handler alone.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *discardWriter) Flush()                      {}

func benchChat(b *testing.B, cfg Config, body string) {
	s := newTestServer(b, cfg)
	h := s.Handler()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkChatCompletion: a non-streaming request through Handler() with httptest.
func BenchmarkChatCompletion(b *testing.B) {
	benchChat(b, Config{}, chatBody("sim", "What is the capital of France? Answer in one sentence.", ""))
}

// BenchmarkChatCompletionFixed: the benchmark configuration with a FixedAnswer.
func BenchmarkChatCompletionFixed(b *testing.B) {
	benchChat(b, Config{FixedAnswer: strings.Repeat("The quick brown fox jumps over the lazy dog. ", 5)},
		chatBody("sim", "What is the capital of France? Answer in one sentence.", ""))
}

// BenchmarkChatStream: a streamed 50-token answer through Handler().
func BenchmarkChatStream(b *testing.B) {
	benchChat(b, Config{}, chatBody("sim", "[sim:tokens=50]", `"stream":true,"stream_options":{"include_usage":true}`))
}

// BenchmarkHandlerOnly: the non-streaming handler with a reused request and writer,
// so the allocations reported are the simulator's own.
func BenchmarkHandlerOnly(b *testing.B) {
	s := newTestServer(b, Config{})
	body := chatBody("sim", "What is the capital of France? Answer in one sentence.", "")
	rd := strings.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", rd)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		s.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

func BenchmarkParseDirectives(b *testing.B) {
	prompt := "Please summarise the attached report for the board [sim:pii] [sim:gap=50ms] [sim:tokens=200]"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseDirectives(prompt); err != nil {
			b.Fatal(err)
		}
	}
}
