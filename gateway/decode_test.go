package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestDecodeChatRequest(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		wantErr    string // substring; "" means valid
		check      func(t *testing.T, r *chatRequest)
	}{
		{name: "minimal", body: `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`,
			check: func(t *testing.T, r *chatRequest) {
				if r.Model != "demo" || len(r.Messages) != 1 || r.Messages[0].Content != "hi" || r.Stream {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "content parts", body: `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"b"}]}]}`,
			check: func(t *testing.T, r *chatRequest) {
				if r.Messages[0].Content != "a\nb" {
					t.Fatalf("content %q", r.Messages[0].Content)
				}
			}},
		{name: "all fields", body: `{"model":"m","stream":true,"max_completion_tokens":9,"user":"u1","temperature":0.5,"messages":[{"role":"system","content":"s"},{"role":"assistant","content":null},{"role":"user","content":"q"}],"tools":[]}`,
			check: func(t *testing.T, r *chatRequest) {
				if !r.Stream || r.MaxTokens != 9 || r.maxTokensKey != "max_completion_tokens" || r.User != "u1" || *r.Temperature != 0.5 {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "not json", body: `{"model":`, wantErr: "not a JSON object"},
		{name: "array", body: `[1]`, wantErr: "not a JSON object"},
		{name: "null", body: `null`, wantErr: "not a JSON object"},
		{name: "no model", body: `{"messages":[{"role":"user","content":"x"}]}`, wantErr: "'model' is required"},
		{name: "model not string", body: `{"model":5,"messages":[]}`, wantErr: "'model' is required"},
		{name: "no messages", body: `{"model":"m"}`, wantErr: "'messages' is required"},
		{name: "empty messages", body: `{"model":"m","messages":[]}`, wantErr: "must not be empty"},
		{name: "bad role", body: `{"model":"m","messages":[{"role":"god","content":"x"}]}`, wantErr: "role"},
		{name: "bad content", body: `{"model":"m","messages":[{"role":"user","content":7}]}`, wantErr: "content"},
		{name: "bad stream", body: `{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}`, wantErr: "'stream'"},
		{name: "bad max tokens", body: `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, wantErr: "max_tokens"},
		{name: "bad temperature", body: `{"model":"m","temperature":3,"messages":[{"role":"user","content":"x"}]}`, wantErr: "temperature"},
		{name: "long user", body: `{"model":"m","user":"` + strings.Repeat("u", MaxUserLen+1) + `","messages":[{"role":"user","content":"x"}]}`, wantErr: "'user'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decodeChatRequest([]byte(tc.body))
			if tc.wantErr != "" {
				var he *HTTPError
				if err == nil || !errors.As(err, &he) || he.Status != http.StatusBadRequest || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want 400 mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestUpstreamBodyRewrites(t *testing.T) {
	r, err := decodeChatRequest([]byte(`{"model":"demo","user":"alice","max_tokens":4000,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := r.upstreamBody("cand-a", 512, "u_pseudo")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.Unmarshal(body, &got)
	if got["model"] != "cand-a" || got["max_tokens"] != float64(512) || got["user"] != "u_pseudo" || got["tools"] == nil {
		t.Fatalf("upstream body %s", body)
	}
	// A request under the cap keeps its own limit.
	r2, _ := decodeChatRequest([]byte(`{"model":"demo","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`))
	body, _ = r2.upstreamBody("m", 512, "u")
	if !strings.Contains(string(body), `"max_tokens":10`) || strings.Contains(string(body), `"user":`) {
		t.Fatalf("upstream body %s", body)
	}
}

func FuzzDecodeChatRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"demo","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","stream":true,"max_tokens":3,"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":null}],"user":"x","temperature":1}`,
		`{}`, `[]`, `null`, `{"model":"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeChatRequest(data)
		if err != nil {
			var he *HTTPError
			if !errors.As(err, &he) || he.Status != http.StatusBadRequest {
				t.Fatalf("error is not a 400: %v", err)
			}
			return
		}
		if r.Model == "" || len(r.Messages) == 0 || len(r.Messages) > MaxMessages {
			t.Fatalf("accepted an invalid request: %+v", r)
		}
		if _, err := r.upstreamBody("m", 10, "u"); err != nil {
			t.Fatalf("cannot re-encode an accepted request: %v", err)
		}
	})
}

func BenchmarkDecodeChatRequest(b *testing.B) {
	body := []byte(`{"model":"demo","user":"alice","max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant for a pilot study."},{"role":"user","content":"Can you summarise the side effects of ibuprofen in two sentences for a patient leaflet?"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeChatRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}
