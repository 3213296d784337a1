package gateway

import (
	"encoding/json"
	"reflect"
	"testing"
)

// completionCorpus is answers and chunks as OpenAI-compatible servers send them,
// and shapes the fast path must hand to encoding/json.
var completionCorpus = []string{
	`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0}}}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}]}`,
	`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
	`{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`,
	`{"id":"c","choices":[{"delta":{"content":"caf\u00e9 \"quoted\"\n"}}]}`,
	`{"id":"c","choices":[{"delta":{"content":"中文 ✓"}}]}`,
	"{\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"bad \xff utf8\"}}]}",
	` { "id" : "c" , "choices" : [ { "delta" : { "content" : "spaced" } , "finish_reason" : "length" } ] } `,
	`{"ID":"upper","Choices":[{"Delta":{"Content":"x"}}]}`,
	`{"id":"a","id":"b"}`,
	`{"id":"c","choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"},"finish_reason":"stop"}]}`,
	`{"id":null,"choices":null,"usage":null}`,
	`{"id":1}`,
	`{"choices":[{"delta":{"content":["part"]}}]}`,
	`{"usage":{"total_tokens":1.5}}`,
	`{"usage":{"total_tokens":1e3}}`,
	`{"usage":{"total_tokens":-7,"prompt_tokens":0}}`,
	`{"usage":{"total_tokens":99999999999999999999}}`,
	`{"x":[1,-2.5e+3,true,false,null,{"y":[]},"s\\t"],"id":"ok"}`,
	`{"id":"c"} trailing`,
	`{"id":"c",}`,
	`{"id":"c"`,
	`[]`, `null`, `{}`, ``, `{"id":"\ud83d\ude00"}`, `{"id":"\u00"}`, `{"x":01}`, `{"x":-}`, `{"x":1.}`, `{"x":tru}`,
	`{"choices":[{"message":null,"delta":null}]}`,
	`{"choices":[{"message":{"content":null}}]}`,
	`{"choices":[null]}`,
	`{"choices":[{"message":{"content":"a","content":"b"}}]}`,
	"{\"id\":\"tab\there\"}",
}

func TestDecodeCompletionMatchesEncodingJSON(t *testing.T) {
	fast := 0
	for _, s := range completionCorpus {
		if checkDecodeCompletion(t, []byte(s)) {
			fast++
		}
	}
	if fast < 10 {
		t.Fatalf("the fast path took only %d of %d inputs", fast, len(completionCorpus))
	}
}

// checkDecodeCompletion compares decodeCompletion with json.Unmarshal and
// reports whether the fast path decided.
func checkDecodeCompletion(t *testing.T, b []byte) bool {
	t.Helper()
	var want, got completion
	wantErr := json.Unmarshal(b, &want)
	gotErr := decodeCompletion(b, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: error %v, encoding/json %v", b, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
	}
	var c completion
	p := scanner{b: b}
	return p.completion(&c)
}

func FuzzDecodeCompletion(f *testing.F) {
	for _, s := range completionCorpus {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Where the fast path decides, encoding/json must agree exactly.
		var fast, slow completion
		p := scanner{b: b}
		if !p.completion(&fast) {
			return
		}
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("%q: the fast path accepted what encoding/json rejects: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %+v\nslow %+v", b, fast, slow)
		}
	})
}

func BenchmarkDecodeCompletion(b *testing.B) {
	chunk := []byte(`{"id":"chatcmpl-0123456789abcdef","object":"chat.completion.chunk","created":1735689600,"model":"cand","choices":[{"index":0,"delta":{"content":" library"},"logprobs":null,"finish_reason":null}]}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var c completion
		for b.Loop() {
			if err := decodeCompletion(chunk, &c); err != nil || c.Choices[0].Delta.Content != " library" {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c completion
			if err := json.Unmarshal(chunk, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeCompletionReusesWithoutLeaking decodes the corpus one after another
// into one completion, as recordStream does: nothing of an earlier chunk may show.
func TestDecodeCompletionReusesWithoutLeaking(t *testing.T) {
	var c completion
	for _, s := range append(completionCorpus, completionCorpus...) {
		var want completion
		werr := json.Unmarshal([]byte(s), &want)
		gerr := decodeCompletion([]byte(s), &c)
		if (werr == nil) != (gerr == nil) || (werr == nil && !reflect.DeepEqual(c, want)) {
			t.Fatalf("%q after other chunks:\n got %+v (%v)\nwant %+v (%v)", s, c, gerr, want, werr)
		}
	}
}
