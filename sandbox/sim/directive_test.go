package sim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseDirectives(t *testing.T) {
	none := directives{cut: -1}
	tests := []struct {
		in      string
		want    directives
		wantErr string
	}{
		{in: "", want: none},
		{in: "hello [sim world]", want: none},
		{in: "[sim:pii]", want: directives{pii: true, cut: -1}},
		{in: "tell me [sim:unsafe] now", want: directives{unsafe: true, cut: -1}},
		{in: "[sim:pii] [sim:gap=50ms]", want: directives{pii: true, gap: 50 * time.Millisecond, cut: -1}},
		{in: "[sim:slow=1.5s][sim:error=503]", want: directives{slow: 1500 * time.Millisecond, status: 503, cut: -1}},
		{in: "[sim:tokens=100000] [sim:cut=0]", want: directives{tokens: 100000, cut: 0}},
		{in: "[sim: tokens = 7 ]", want: directives{tokens: 7, cut: -1}},
		{in: "[sim:slow=0]", want: none},
		{in: "[sim:slow=10m]", want: directives{slow: 10 * time.Minute, cut: -1}},
		{in: "[sim:tokens=3] later [sim:tokens=4]", want: directives{tokens: 4, cut: -1}},
		{in: "[sim:error=400] [sim:error=599]", want: directives{status: 599, cut: -1}},
		{in: "[sim:pii=1]", wantErr: "takes no value"},
		{in: "[sim:slow]", wantErr: "needs a duration"},
		{in: "[sim:slow=]", wantErr: "needs a duration"},
		{in: "[sim:slow=abc]", wantErr: "duration must be"},
		{in: "[sim:slow=300]", wantErr: "duration must be"},
		{in: "[sim:gap=-1s]", wantErr: "duration must be"},
		{in: "[sim:gap=11m]", wantErr: "duration must be"},
		{in: "[sim:error=399]", wantErr: "400 to 599"},
		{in: "[sim:error=600]", wantErr: "400 to 599"},
		{in: "[sim:error=5x3]", wantErr: "400 to 599"},
		{in: "[sim:error]", wantErr: "400 to 599"},
		{in: "[sim:tokens=0]", wantErr: "token count"},
		{in: "[sim:tokens=100001]", wantErr: "token count"},
		{in: "[sim:tokens=-3]", wantErr: "token count"},
		{in: "[sim:tokens=99999999999999]", wantErr: "token count"},
		{in: "[sim:cut=-1]", wantErr: "chunk count"},
		{in: "[sim:cut]", wantErr: "chunk count"},
		{in: "[sim:bogus]", wantErr: "unknown directive"},
		{in: "[sim:]", wantErr: "unknown directive"},
		{in: "[sim:PII]", wantErr: "unknown directive"},
		{in: "[sim:pii", wantErr: "not closed"},
		{in: "[sim:pii " + strings.Repeat("x", 80) + "]", wantErr: "not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDirectives(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidDirective) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalidDirective mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAppendTokens(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"one", []string{"one"}},
		{"one two  three", []string{"one", " two", "  three"}},
		{"  lead\ttab\nline ", []string{"  lead", "\ttab", "\nline "}},
		{"   ", []string{"   "}},
	}
	for _, tt := range tests {
		got := appendTokens(nil, tt.in)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("appendTokens(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Join(got, "") != tt.in {
			t.Errorf("tokens of %q do not join back", tt.in)
		}
	}
}

func TestAppendPlain(t *testing.T) {
	tests := []struct {
		model, prompt, want string
	}{
		{"sim", "Hello there!", "This is a simulated answer from sim to: Hello there."},
		{"m", "[sim:slow=1s] What is 2+2?", "This is a simulated answer from m to: What is 2+2."},
		{"m", "ask[sim:gap=1ms]me", "This is a simulated answer from m to: ask me."},
		{"m", "[sim:pii]", "This is a simulated answer from m."},
		{"m", "", "This is a simulated answer from m."},
		{"m", "?", "This is a simulated answer from m to: ?."},
		{"m", "one two three four five six seven eight nine ten", "This is a simulated answer from m to: one two three four five six seven eight ..."},
	}
	for _, tt := range tests {
		if got := string(appendPlain(nil, tt.model, tt.prompt)); got != tt.want {
			t.Errorf("appendPlain(%q, %q) = %q, want %q", tt.model, tt.prompt, got, tt.want)
		}
	}
}

func TestAnswerTokens(t *testing.T) {
	pii := newStaticSegment(piiText)
	unsafe := newStaticSegment(unsafeText)
	collect := func(a *answer) (string, int) {
		var sb strings.Builder
		n := 0
		it := tokenIter{a: a}
		for tok, space, ok := it.next(); ok; tok, space, ok = it.next() {
			if space {
				sb.WriteByte(' ')
			}
			sb.WriteString(tok)
			n++
		}
		return sb.String(), n
	}
	var a answer
	a.add(&pii)
	a.add(&unsafe)
	a.finalize(0, 0)
	text, n := collect(&a)
	if text != piiText+" "+unsafeText || n != a.limit || a.finish != "stop" {
		t.Fatalf("pii+unsafe = %q (%d tokens, limit %d, %s)", text, n, a.limit, a.finish)
	}
	if _, ok := a.whole(); ok {
		t.Fatal("two segments reported as one precomputed whole")
	}

	a = answer{}
	a.finalize(25, 0)
	text, n = collect(&a)
	if n != 25 || countWords(text) != 25 || !strings.HasPrefix(text, "lorem ipsum") || a.finish != "stop" {
		t.Fatalf("filler = %q (%d)", text, n)
	}

	a = answer{}
	a.add(&pii)
	a.finalize(len(pii.toks)+2, 0)
	text, _ = collect(&a)
	if text != piiText+" lorem ipsum" {
		t.Fatalf("pii padded = %q", text)
	}

	a = answer{}
	a.add(&pii)
	a.finalize(0, 3)
	text, n = collect(&a)
	if n != 3 || a.finish != "length" || !strings.HasPrefix(piiText, text) {
		t.Fatalf("max_tokens cut = %q (%d, %s)", text, n, a.finish)
	}
	if q, ok := (&answer{segs: [2]*segment{&pii}, nsegs: 1, limit: len(pii.toks)}).whole(); !ok || string(q) != piiText {
		t.Fatalf("whole() = %q, %v", q, ok)
	}
}

func TestAppendEscaped(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{`q"b\`, `q\"b\\`},
		{"a\nb\tc\r\x01", `a\nb\tc\r\u0001`},
		{"héllo 你好", "héllo 你好"},
		{"bad\xffutf", `bad\ufffdutf`},
		{"ls\u2028ps\u2029", `ls\u2028ps\u2029`},
	}
	for _, tt := range tests {
		if got := string(appendEscaped(nil, tt.in)); got != tt.want {
			t.Errorf("appendEscaped(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
