package console

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

func TestHighlight(t *testing.T) {
	render := func(segs []segment) string {
		var b strings.Builder
		for _, s := range segs {
			if s.Marked {
				b.WriteString("[" + s.Text + "|" + s.Kinds + "]")
			} else {
				b.WriteString(s.Text)
			}
		}
		return b.String()
	}
	for _, tc := range []struct {
		name  string
		text  string
		spans []spanRef
		want  string
	}{
		{"none", "hello", nil, "hello"},
		{"code points, not bytes", piiAnswer, []spanRef{{Start: 12, End: 30, Kind: "email"}}, "联系值班人员：请写信给 [oncall@example.com|email] 或致电。"},
		{"whole text", "abc", []spanRef{{Start: 0, End: 3, Kind: "x"}}, "[abc|x]"},
		{"overlap splits", "abcdef", []spanRef{{Start: 1, End: 4, Kind: "a"}, {Start: 3, End: 5, Kind: "b"}}, "a[bc|a][d|a b][e|b]f"},
		{"same span twice", "abcdef", []spanRef{{Start: 1, End: 3, Kind: "a"}, {Start: 1, End: 3, Kind: "a", Detector: "other"}}, "a[bc|a]def"},
		{"clipped", "abc", []spanRef{{Start: -5, End: 1, Kind: "k"}, {Start: 2, End: 99, Kind: "k"}}, "[a|k]b[c|k]"},
		{"empty and reversed ignored", "abc", []spanRef{{Start: 2, End: 2}, {Start: 3, End: 1}}, "abc"},
		{"no kind", "abc", []spanRef{{Start: 0, End: 1}}, "[a|evidence]bc"},
		{"emoji", "hi 👋🏽 there", []spanRef{{Start: 3, End: 5, Kind: "e"}}, "hi [👋🏽|e] there"},
	} {
		if got := render(highlight(tc.text, tc.spans)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzHighlight(f *testing.F) {
	f.Add(piiAnswer, 12, 30, 3, 14)
	f.Add("", 0, 0, -1, 5)
	f.Add("a\xffb", 0, 2, 1, 3)
	f.Fuzz(func(t *testing.T, text string, s1, e1, s2, e2 int) {
		segs := highlight(text, []spanRef{{Start: s1, End: e1, Kind: "a"}, {Start: s2, End: e2, Kind: "b"}})
		var b strings.Builder
		pos := 0
		n := utf8.RuneCountInString(text)
		for _, s := range segs {
			b.WriteString(s.Text)
			l := utf8.RuneCountInString(s.Text)
			// A run is marked exactly when some span covers it.
			in := func(s, e int) bool { s, e = max(s, 0), min(e, n); return s < e && s <= pos && pos+l <= e }
			if s.Marked != (in(s1, e1) || in(s2, e2)) {
				t.Fatalf("run %q at %d marked=%v", s.Text, pos, s.Marked)
			}
			pos += l
		}
		if b.String() != string([]rune(text)) {
			t.Fatalf("segments do not rebuild the text: %q", b.String())
		}
	})
}

func TestConversation(t *testing.T) {
	in := &events.Interaction{Model: "cand", Request: events.Request{Messages: []events.Message{{Role: "system", Content: "be nice"}, {Role: "user", Content: "my mail is a@b.c"}}},
		Response: events.Response{Content: "ok a@b.c"}}
	fs := []events.Finding{{Detector: "pii", Spans: []events.Span{{Field: "prompt", Message: 1, Start: 11, End: 16, Kind: "email"}, {Field: "response", Start: 3, End: 8, Kind: "email"}}}}
	v := conversation(in, fs)
	if len(v) != 3 || v[0].Marks != 0 || v[1].Marks != 1 || v[2].Marks != 1 || v[2].Who != "answer · cand" || v[1].Segments[1].Text != "a@b.c" {
		t.Errorf("conversation %+v", v)
	}
	if conversation(nil, fs) != nil {
		t.Error("nil interaction")
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{90 * time.Second: "2m", 3*time.Hour + 12*time.Minute: "3h 12m", 50 * time.Hour: "2d 2h"} {
		if got := humanDuration(d); got != want {
			t.Errorf("%s: %s, want %s", d, got, want)
		}
	}
}

func BenchmarkHighlight(b *testing.B) {
	text := strings.Repeat(piiAnswer+" ", 40)
	spans := []spanRef{{Start: 12, End: 30, Kind: "email"}, {Start: 500, End: 540, Kind: "phone"}, {Start: 520, End: 560, Kind: "card"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = highlight(text, spans)
	}
}
