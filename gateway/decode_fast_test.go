package gateway

import (
	"encoding/json"
	"reflect"
	"testing"
)

// upstreamBodyReference is the former upstreamBody: the request re-encoded with
// json.Marshal of a map. The direct writer must produce the same JSON value.
func upstreamBodyReference(req *chatRequest, model string, maxTokens int, user string) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(req.raw)+1)
	for k, v := range req.raw {
		out[k] = v
	}
	out["model"] = mustJSON(model)
	if maxTokens > 0 && (req.MaxTokens == 0 || req.MaxTokens > maxTokens) {
		key := req.maxTokensKey
		if key == "" {
			key = "max_tokens"
		}
		out[key] = mustJSON(maxTokens)
	}
	if _, ok := req.raw["user"]; ok {
		out["user"] = mustJSON(user)
	}
	return json.Marshal(out)
}

var upstreamCorpus = []string{
	`{"model":"demo","messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"demo","user":"alice","max_tokens":4000,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}`,
	`{"model":"m","stream":true,"max_completion_tokens":3,"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}`,
	`{ "model" : "m" , "messages" : [ { "role" : "user" , "content" : "<b>&amp;</b> \u2028 \"q\"" } ] , "user" : null , "temperature" : 1.5e0 , "z\u00e9" : {"nested": [1, 2, {"deep": true}]} }`,
	`{"model":"m","messages":[{"role":"user","content":"中文"}],"user":"用户","max_tokens":10}`,
}

func TestUpstreamBodyMatchesTheMapEncoding(t *testing.T) {
	for _, s := range upstreamCorpus {
		for _, cap := range []int{0, 5, 100000} {
			checkUpstreamBody(t, []byte(s), "cand-a", cap, "u_pseudo")
		}
	}
}

func checkUpstreamBody(t *testing.T, body []byte, model string, maxTokens int, user string) {
	t.Helper()
	req, err := decodeChatRequest(body)
	if err != nil {
		return
	}
	got, err := req.upstreamBody(model, maxTokens, user)
	if err != nil {
		t.Fatal(err)
	}
	want, err := upstreamBodyReference(req, model, maxTokens, user)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: upstream body is not JSON: %v: %s", body, err, got)
	}
	_ = json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", body, got, want)
	}
}

func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, raw := range []string{`"plain"`, `""`, `"caf\u00e9"`, `"café"`, "\"bad \xff\"", `"tab\t"`, `"q\"x"`, `null`, `12`, `"中文 ✓"`} {
		var got, want string
		gerr := jsonString(json.RawMessage(raw), &got)
		werr := json.Unmarshal([]byte(raw), &want)
		if (gerr == nil) != (werr == nil) || got != want {
			t.Errorf("%s: %q %v, want %q %v", raw, got, gerr, want, werr)
		}
	}
}

func FuzzUpstreamBody(f *testing.F) {
	for _, s := range upstreamCorpus {
		f.Add([]byte(s), "cand", 512, "u_x")
	}
	f.Fuzz(func(t *testing.T, body []byte, model string, maxTokens int, user string) {
		checkUpstreamBody(t, body, model, maxTokens, user)
	})
}

func BenchmarkUpstreamBody(b *testing.B) {
	req, err := decodeChatRequest([]byte(`{"model":"demo","user":"alice","max_tokens":256,"stream":true,"messages":[{"role":"system","content":"You are a concise assistant for a municipal services pilot."},{"role":"user","content":"What are the opening hours of the central library on public holidays?"}]}`))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := req.upstreamBody("cand", 128, "u_0123456789abcdef01234567"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("map_marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := upstreamBodyReference(req, "cand", 128, "u_0123456789abcdef01234567"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
