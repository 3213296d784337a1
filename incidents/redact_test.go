package incidents

import (
	"testing"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

func TestRedact(t *testing.T) {
	temp := 0.5
	in := &events.Interaction{
		ID: "i1",
		Request: events.Request{
			Messages: []events.Message{
				{Role: "system", Content: "be nice"},
				{Role: "user", Content: "我的电话是13812345678，邮箱a@b.cn"},
			},
			Temperature: &temp,
		},
		Response: events.Response{Content: "卡号 4111 1111 1111 1111 好的"},
		Decision: events.Decision{Reasons: []events.Reason{{Code: "ok"}}},
	}
	spans := []events.Span{
		{Field: "prompt", Message: 1, Start: 5, End: 16, Kind: "phone"},
		{Field: "prompt", Message: 1, Start: 19, End: 25, Kind: "email"},
		{Field: "response", Start: 3, End: 22, Kind: "card"},
		{Field: "response", Start: 24, End: 99},          // clipped to the text
		{Field: "prompt", Message: 7, Start: 0, End: 3},  // no such message
		{Field: "other", Start: 0, End: 3},               // unknown field
		{Field: "prompt", Message: 0, Start: -3, End: 0}, // empty after clipping
	}
	out := Redact(in, spans)

	wantPrompt := "我的电话是***********，邮箱******"
	wantResp := "卡号 ******************* 好*"
	if got := out.Request.Messages[1].Content; got != wantPrompt {
		t.Errorf("prompt = %q, want %q", got, wantPrompt)
	}
	if got := out.Response.Content; got != wantResp {
		t.Errorf("response = %q, want %q", got, wantResp)
	}
	if out.Request.Messages[0].Content != "be nice" || !out.Redacted {
		t.Errorf("system message %q redacted=%v", out.Request.Messages[0].Content, out.Redacted)
	}
	for i, m := range in.Request.Messages {
		if utf8.RuneCountInString(m.Content) != utf8.RuneCountInString(out.Request.Messages[i].Content) {
			t.Errorf("message %d changed its code-point length", i)
		}
	}
	// The original is untouched and shares no mutable memory with the copy.
	if in.Redacted || in.Request.Messages[1].Content != "我的电话是13812345678，邮箱a@b.cn" || in.Response.Content != "卡号 4111 1111 1111 1111 好的" {
		t.Errorf("Redact modified its input: %+v", in)
	}
	out.Decision.Reasons[0].Code = "changed"
	*out.Request.Temperature = 1
	if in.Decision.Reasons[0].Code != "ok" || *in.Request.Temperature != 0.5 {
		t.Error("Redact's copy aliases the input's slices or pointers")
	}
	if Redact(nil, spans) != nil {
		t.Error("Redact(nil) != nil")
	}
}

func BenchmarkRedact(b *testing.B) {
	in := &events.Interaction{
		Request:  events.Request{Messages: []events.Message{{Content: "我的电话是13812345678，邮箱a@b.cn"}, {Content: "no pii here at all"}}},
		Response: events.Response{Content: "好的"},
	}
	spans := []events.Span{{Field: "prompt", Message: 0, Start: 5, End: 16}, {Field: "prompt", Message: 0, Start: 20, End: 26}}
	b.ReportAllocs()
	for b.Loop() {
		_ = Redact(in, spans)
	}
}
