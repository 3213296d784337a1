package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServer runs a simulator on a random loopback port for the test.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := newTestServer(t, cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// sseEvent is one "data:" event and when its line arrived.
type sseEvent struct {
	data string
	at   time.Time
}

type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// readSSE posts body and reads the raw event stream until EOF or a read error,
// which it returns alongside the events read so far.
func readSSE(t *testing.T, ctx context.Context, s *Server, body string) (*http.Response, []sseEvent, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", s.URL()+"/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var events []sseEvent
	br := bufio.NewReader(res.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && line == "" {
				return res, events, nil
			}
			return res, events, err
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			events = append(events, sseEvent{data: strings.TrimSuffix(data, "\n"), at: time.Now()})
			continue
		}
		if line != "\n" {
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
}

func decodeChunks(t *testing.T, events []sseEvent) []chunk {
	t.Helper()
	out := make([]chunk, 0, len(events))
	for _, e := range events {
		if e.data == "[DONE]" {
			continue
		}
		var c chunk
		if err := json.Unmarshal([]byte(e.data), &c); err != nil {
			t.Fatalf("chunk %q: %v", e.data, err)
		}
		out = append(out, c)
	}
	return out
}

func TestStreamSSE(t *testing.T) {
	s := startServer(t, Config{})
	prompt := "Explain streaming in a few words [sim:pii]"
	for _, usage := range []bool{true, false} {
		extra := `"stream":true`
		if usage {
			extra += `,"stream_options":{"include_usage":true}`
		}
		res, events, err := readSSE(t, context.Background(), s, chatBody("sim-x", prompt, extra))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("status %d headers %v", res.StatusCode, res.Header)
		}
		if len(events) == 0 || events[len(events)-1].data != "[DONE]" {
			t.Fatalf("stream does not end with [DONE]: %v", events)
		}
		chunks := decodeChunks(t, events)
		wantTokens := appendTokens(nil, piiText)
		extraChunks := 1 // finish
		if usage {
			extraChunks++
		}
		if len(chunks) != len(wantTokens)+extraChunks || len(events) != len(chunks)+1 {
			t.Fatalf("%d chunks, want %d tokens + %d", len(chunks), len(wantTokens), extraChunks)
		}
		var joined strings.Builder
		for i, c := range chunks {
			if c.ID != chunks[0].ID || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion.chunk" ||
				c.Model != "sim-x" || c.Created != fixedNow.Unix() {
				t.Fatalf("chunk %d header: %+v", i, c)
			}
			if i < len(wantTokens) {
				if len(c.Choices) != 1 || c.Choices[0].FinishReason != nil || c.Usage != nil {
					t.Fatalf("token chunk %d: %s", i, events[i].data)
				}
				if role := c.Choices[0].Delta.Role; (i == 0) != (role == "assistant") {
					t.Fatalf("chunk %d role %q", i, role)
				}
				if c.Choices[0].Delta.Content != wantTokens[i] {
					t.Fatalf("chunk %d content %q, want %q", i, c.Choices[0].Delta.Content, wantTokens[i])
				}
				joined.WriteString(c.Choices[0].Delta.Content)
			}
		}
		if joined.String() != piiText {
			t.Fatalf("joined deltas %q", joined.String())
		}
		fin := chunks[len(wantTokens)]
		if len(fin.Choices) != 1 || fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "stop" ||
			fin.Choices[0].Delta.Content != "" || fin.Choices[0].Delta.Role != "" {
			t.Fatalf("finish chunk: %s", events[len(wantTokens)].data)
		}
		if usage {
			u := chunks[len(chunks)-1]
			if u.Choices == nil || len(u.Choices) != 0 || u.Usage == nil {
				t.Fatalf("usage chunk: %s", events[len(events)-2].data)
			}
			if u.Usage.CompletionTokens != len(wantTokens) || u.Usage.PromptTokens != countWords("be brief "+prompt) ||
				u.Usage.TotalTokens != u.Usage.PromptTokens+u.Usage.CompletionTokens {
				t.Fatalf("usage %+v", *u.Usage)
			}
		}
	}
}

// TestStreamMatchesCompletion: joining the deltas reproduces the non-streamed content.
func TestStreamMatchesCompletion(t *testing.T) {
	s := startServer(t, Config{})
	for _, prompt := range []string{"Hi there", "[sim:tokens=37]", "[sim:unsafe] [sim:tokens=90]", "a \"quoted\"\tword"} {
		for _, extra := range []string{"", `"max_tokens":4`} {
			res, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(chatBody("sim", prompt, extra)))
			if err != nil {
				t.Fatal(err)
			}
			var c completion
			err = json.NewDecoder(res.Body).Decode(&c)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			sep := ""
			if extra != "" {
				sep = ","
			}
			_, events, err := readSSE(t, context.Background(), s, chatBody("sim", prompt, extra+sep+`"stream":true`))
			if err != nil {
				t.Fatal(err)
			}
			chunks := decodeChunks(t, events)
			var joined strings.Builder
			n := 0
			for _, ch := range chunks {
				if len(ch.Choices) == 1 && ch.Choices[0].FinishReason == nil {
					joined.WriteString(ch.Choices[0].Delta.Content)
					n++
				}
			}
			if joined.String() != c.Choices[0].Message.Content || n != c.Usage.CompletionTokens {
				t.Fatalf("prompt %q %s: stream %q (%d) vs completion %q (%d)", prompt, extra, joined.String(), n, c.Choices[0].Message.Content, c.Usage.CompletionTokens)
			}
			fin := chunks[len(chunks)-1].Choices[0].FinishReason
			if *fin != c.Choices[0].FinishReason {
				t.Fatalf("finish %q vs %q", *fin, c.Choices[0].FinishReason)
			}
		}
	}
}

// TestStreamGap: with a gap every chunk is flushed on its own, so the first
// arrives well before the last.
func TestStreamGap(t *testing.T) {
	s := startServer(t, Config{})
	const gap = 40 * time.Millisecond
	const tokens = 6
	start := time.Now()
	_, events, err := readSSE(t, context.Background(), s, chatBody("sim", "[sim:gap=40ms] [sim:tokens=6]", `"stream":true`))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != tokens+2 {
		t.Fatalf("%d events", len(events))
	}
	first, last := events[0].at, events[tokens-1].at
	// The server waits (tokens-1) gaps before the last token, so this always holds...
	if took := last.Sub(start); took < (tokens-1)*gap {
		t.Fatalf("last token after %s, want at least %s", took, (tokens-1)*gap)
	}
	// ...while the first chunk, flushed on its own, arrives well before the last.
	if spread := last.Sub(first); spread < (tokens-1)*gap/2 {
		t.Fatalf("first token only %s before the last, want about %s", spread, (tokens-1)*gap)
	}
}

func TestSlowDelaysFirstToken(t *testing.T) {
	s := startServer(t, Config{Delay: 30 * time.Millisecond})
	const want = 150 * time.Millisecond // Delay + slow
	start := time.Now()
	_, events, err := readSSE(t, context.Background(), s, chatBody("sim", "[sim:slow=120ms] hi", `"stream":true`))
	if err != nil || len(events) == 0 {
		t.Fatalf("%d events, err %v", len(events), err)
	}
	if took := events[0].at.Sub(start); took < want {
		t.Fatalf("first chunk after %s, want at least %s", took, want)
	}
	start = time.Now()
	res, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(chatBody("sim", "[sim:slow=120ms] hi", "")))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if took := time.Since(start); res.StatusCode != 200 || took < want {
		t.Fatalf("non-streaming: status %d after %s, want 200 after at least %s", res.StatusCode, took, want)
	}
}

func TestStreamCut(t *testing.T) {
	s := startServer(t, Config{})
	for _, n := range []int{0, 1, 3} {
		body := chatBody("sim", "[sim:tokens=10] [sim:cut="+string(rune('0'+n))+"]", `"stream":true,"stream_options":{"include_usage":true}`)
		res, events, err := readSSE(t, context.Background(), s, body)
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut=%d: read error %v, want unexpected EOF", n, err)
		}
		if len(events) != n {
			t.Fatalf("cut=%d: %d events before the cut", n, len(events))
		}
	}
	// A cut beyond the stream's end still drops the connection before [DONE].
	_, events, err := readSSE(t, context.Background(), s, chatBody("sim", "[sim:tokens=2][sim:cut=100]", `"stream":true`))
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(events) != 3 {
		t.Fatalf("late cut: %d events, err %v", len(events), err)
	}
	// cut is ignored without streaming.
	res, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(chatBody("sim", "[sim:cut=1]", "")))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("non-streaming cut: %d", res.StatusCode)
	}
}

// TestStreamClientDisconnect: a client that goes away ends its stream, so a
// graceful Stop completes although the stream would run for hours.
func TestStreamClientDisconnect(t *testing.T) {
	s := newTestServer(t, Config{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/chat/completions",
		strings.NewReader(chatBody("sim", "[sim:gap=100ms][sim:tokens=100000]", `"stream":true`)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	res.Body.Close()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer stopCancel()
	if err := s.Stop(stopCtx); err != nil {
		t.Fatalf("Stop after client disconnect: %v (stream kept running)", err)
	}
}

// TestStopCancelsStreams: when Stop's context ends, in-flight streams are cut.
func TestStopCancelsStreams(t *testing.T) {
	s := newTestServer(t, Config{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(s.URL()+"/chat/completions", "application/json",
		strings.NewReader(chatBody("sim", "[sim:gap=10m][sim:tokens=3]", `"stream":true`)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want deadline exceeded", err)
	}
	if _, err := io.ReadAll(br); err == nil {
		t.Fatal("stream still complete after forced Stop")
	}
}
