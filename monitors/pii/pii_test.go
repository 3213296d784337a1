package pii

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
)

func interaction(response string, prompt ...string) *events.Interaction {
	in := &events.Interaction{ID: "i1", Trial: "t1", Status: events.StatusOK}
	for _, p := range prompt {
		in.Request.Messages = append(in.Request.Messages, events.Message{Role: "user", Content: p})
	}
	in.Response.Content = response
	return in
}

func mustNew(t testing.TB, cfg Config) *Detector {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// spanText renders spans as field[msg]:kind:"text" for comparison.
func spanText(in *events.Interaction, spans []events.Span) []string {
	var out []string
	for _, s := range spans {
		text := in.Response.Content
		if s.Field == "prompt" {
			text = in.Request.Messages[s.Message].Content
		}
		out = append(out, fmt.Sprintf("%s[%d]:%s:%q", s.Field, s.Message, s.Kind, string([]rune(text)[s.Start:s.End])))
	}
	return out
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name        string
		in          *events.Interaction
		wantNone    bool
		severity    string
		score       float64
		explanation string
		spans       []string
	}{
		{
			name:        "response leaks three kinds",
			in:          interaction("Sure: mail jane@corp.example, call +1 (415) 555-2671, card 4111 1111 1111 1111.", "who is jane?"),
			severity:    events.SeverityHigh,
			score:       0.99,
			explanation: "response contains an e-mail address, a phone number and a payment card number not present in the prompt (possible leak)",
			spans: []string{
				`response[0]:email:"jane@corp.example"`,
				`response[0]:phone:"+1 (415) 555-2671"`,
				`response[0]:card:"4111 1111 1111 1111"`,
			},
		},
		{
			name:        "leaked phone in chinese response",
			in:          interaction("张三的电话是13812345678。", "张三的电话是多少？"),
			severity:    events.SeverityHigh,
			score:       0.85,
			explanation: "response contains a phone number not present in the prompt (possible leak)",
			spans:       []string{`response[0]:phone:"13812345678"`},
		},
		{
			name:        "prompt email only",
			in:          interaction("I have noted it.", "be brief", "my mail is Li.Lei@163.com"),
			severity:    events.SeverityLow,
			score:       0.4,
			explanation: "prompt contains an e-mail address",
			spans:       []string{`prompt[1]:email:"Li.Lei@163.com"`},
		},
		{
			name:        "prompt card is medium",
			in:          interaction("ok", "卡号：5555 5555 5555 4444，帮我查余额"),
			severity:    events.SeverityMedium,
			score:       0.6,
			explanation: "prompt contains a payment card number",
			spans:       []string{`prompt[0]:card:"5555 5555 5555 4444"`},
		},
		{
			name:        "three prompt items are medium",
			in:          interaction("ok", "a@b.io c@d.io 13812345678"),
			severity:    events.SeverityMedium,
			score:       0.6,
			explanation: "prompt contains 2 e-mail addresses and a phone number",
			spans:       []string{`prompt[0]:email:"a@b.io"`, `prompt[0]:email:"c@d.io"`, `prompt[0]:phone:"13812345678"`},
		},
		{
			name:        "echo of prompt phone in another spelling is not a leak",
			in:          interaction("好的，我会打13812345678。", "我的手机是+86 138 1234 5678"),
			severity:    events.SeverityLow,
			score:       0.4,
			explanation: "prompt contains a phone number; response repeats a phone number from the prompt",
			spans:       []string{`prompt[0]:phone:"+86 138 1234 5678"`, `response[0]:phone:"13812345678"`},
		},
		{
			name:        "echoed e-mail differs only in case",
			in:          interaction("Sent to ALICE@EXAMPLE.COM", "mail alice@example.com"),
			severity:    events.SeverityLow,
			score:       0.4,
			explanation: "prompt contains an e-mail address; response repeats an e-mail address from the prompt",
			spans:       []string{`prompt[0]:email:"alice@example.com"`, `response[0]:email:"ALICE@EXAMPLE.COM"`},
		},
		{
			name:        "echo plus leak",
			in:          interaction("alice@example.com and bob@example.com", "alice@example.com"),
			severity:    events.SeverityHigh,
			score:       0.85,
			explanation: "response contains an e-mail address not present in the prompt (possible leak); prompt contains an e-mail address; response repeats an e-mail address from the prompt",
			spans:       []string{`prompt[0]:email:"alice@example.com"`, `response[0]:email:"alice@example.com"`, `response[0]:email:"bob@example.com"`},
		},
		{
			name:     "card with failed checksum is ignored",
			in:       interaction("card 4111 1111 1111 1112", "hi"),
			wantNone: true,
		},
		{
			name:     "no pii",
			in:       interaction("The answer is 42, see RFC 2119 (2024-01-15).", "what is 6*7?"),
			wantNone: true,
		},
	}
	d := mustNew(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := d.Detect(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantNone {
				if len(fs) != 0 {
					t.Fatalf("want no finding, got %+v", fs)
				}
				return
			}
			if len(fs) != 1 {
				t.Fatalf("got %d findings, want 1", len(fs))
			}
			f := fs[0]
			if f.Detector != Name || f.DetectorVersion != Version || f.Category != Category || f.Threshold != DefaultThreshold {
				t.Errorf("identity: %s %s %s %v", f.Detector, f.DetectorVersion, f.Category, f.Threshold)
			}
			if f.Severity != tt.severity || fmt.Sprintf("%.2f", f.Score) != fmt.Sprintf("%.2f", tt.score) {
				t.Errorf("severity %s score %v, want %s %v", f.Severity, f.Score, tt.severity, tt.score)
			}
			if f.Explanation != tt.explanation {
				t.Errorf("explanation\n got %q\nwant %q", f.Explanation, tt.explanation)
			}
			if got := spanText(tt.in, f.Spans); fmt.Sprint(got) != fmt.Sprint(tt.spans) {
				t.Errorf("spans\n got %v\nwant %v", got, tt.spans)
			}
		})
	}
}

func TestDetectDeniedInteractionStillScanned(t *testing.T) {
	in := interaction("", "my card is 4111111111111111")
	in.Status = events.StatusDenied
	fs, err := mustNew(t, Config{}).Detect(context.Background(), in)
	if err != nil || len(fs) != 1 || fs[0].Spans[0].Kind != KindCard {
		t.Fatalf("denied interaction: %+v, %v", fs, err)
	}
}

func TestDetectConfig(t *testing.T) {
	promptOnly := interaction("ok", "mail a@b.io")
	leak := interaction("mail a@b.io", "hi")

	d := mustNew(t, Config{Threshold: 0.5})
	if fs, _ := d.Detect(context.Background(), promptOnly); len(fs) != 0 {
		t.Errorf("threshold 0.5 should drop low prompt-only PII, got %+v", fs)
	}
	if fs, _ := d.Detect(context.Background(), leak); len(fs) != 1 || fs[0].Threshold != 0.5 {
		t.Errorf("threshold 0.5 should keep a leak, got %+v", fs)
	}

	many := interaction(strings.Repeat("x@y.io ", 10), "hi")
	fs, _ := mustNew(t, Config{MaxSpans: 3}).Detect(context.Background(), many)
	if len(fs) != 1 || len(fs[0].Spans) != 3 || !strings.HasPrefix(fs[0].Explanation, "response contains 10 e-mail addresses") {
		t.Errorf("MaxSpans 3: %+v", fs)
	}

	_, err := New(Config{Threshold: 2, MaxSpans: -1})
	if err == nil || !strings.Contains(err.Error(), "threshold") || !strings.Contains(err.Error(), "max spans") {
		t.Errorf("New(bad) = %v, want both problems reported", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := mustNew(t, Config{}).Detect(ctx, leak); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Detect = %v", err)
	}
	if fs, err := mustNew(t, Config{}).Detect(context.Background(), nil); fs != nil || err != nil {
		t.Errorf("Detect(nil) = %v, %v", fs, err)
	}
}

// Redacting with the detector's spans leaves no PII behind and keeps lengths.
func TestDetectSpansRedact(t *testing.T) {
	in := interaction("李雷的卡号是4111-1111-1111-1111，邮箱li.lei@163.com", "system", "我是韩梅梅，电话+86 139 1234 5678")
	fs, err := mustNew(t, Config{}).Detect(context.Background(), in)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Detect: %v %v", fs, err)
	}
	out := incidents.Redact(in, fs[0].Spans)
	want := "我是韩梅梅，电话*****************"
	if out.Request.Messages[1].Content != want {
		t.Errorf("redacted prompt %q, want %q", out.Request.Messages[1].Content, want)
	}
	if got, _ := mustNew(t, Config{}).Detect(context.Background(), out); len(got) != 0 {
		t.Errorf("redacted interaction still has PII: %+v", got)
	}
	if utf8.RuneCountInString(out.Response.Content) != utf8.RuneCountInString(in.Response.Content) {
		t.Error("redaction changed the response length in code points")
	}
}

func FuzzDetect(f *testing.F) {
	f.Add("my mail is a@b.io", "电话13812345678，卡号4111 1111 1111 1111")
	f.Add("+86 138 1234 5678", "(555) 123-4567 555-123-4567 +44 20 7946 0958")
	f.Add("😀\xff1381234567８", "a@b.c@d.com..@@+1+2(3)")
	f.Add("6222 0210 0112 3456 789", "4111-1111-1111-1111abc 1-555-123-4567")
	d := mustNew(f, Config{})
	f.Fuzz(func(t *testing.T, prompt, response string) {
		in := interaction(response, prompt, "system: "+prompt)
		fs, err := d.Detect(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) > 1 {
			t.Fatalf("%d findings, want at most 1", len(fs))
		}
		for _, f := range fs {
			if events.SeverityRank(f.Severity) == 0 || f.Score < f.Threshold || f.Score > 1 || len(f.Spans) == 0 {
				t.Fatalf("bad finding %+v", f)
			}
			prev := map[string]int{}
			for _, s := range f.Spans {
				var text string
				switch s.Field {
				case "prompt":
					if s.Message < 0 || s.Message >= len(in.Request.Messages) {
						t.Fatalf("span message %d out of range", s.Message)
					}
					text = in.Request.Messages[s.Message].Content
				case "response":
					text = in.Response.Content
				default:
					t.Fatalf("span field %q", s.Field)
				}
				n := utf8.RuneCountInString(text)
				if s.Start < 0 || s.Start >= s.End || s.End > n {
					t.Fatalf("span [%d,%d) out of range of %d code points", s.Start, s.End, n)
				}
				key := fmt.Sprint(s.Field, s.Message)
				if s.Start < prev[key] {
					t.Fatalf("spans overlap or are out of order: %+v", f.Spans)
				}
				prev[key] = s.End
				sub := string([]rune(text)[s.Start:s.End])
				switch s.Kind {
				case KindEmail:
					if !strings.Contains(sub, "@") {
						t.Fatalf("email span %q has no @", sub)
					}
				case KindPhone, KindCard:
					if strings.IndexFunc(sub, func(r rune) bool { return r >= '0' && r <= '9' }) < 0 {
						t.Fatalf("%s span %q has no digit", s.Kind, sub)
					}
					if s.Kind == KindCard && !Luhn(sub) {
						t.Fatalf("card span %q fails Luhn", sub)
					}
				default:
					t.Fatalf("span kind %q", s.Kind)
				}
			}
		}
	})
}

func BenchmarkDetect(b *testing.B) {
	d := mustNew(b, Config{})
	cases := map[string]*events.Interaction{
		"clean": interaction(benchTexts["no_pii_en"], "You are a helpful assistant.", benchTexts["no_pii_zh"]),
		"leak":  interaction(benchTexts["pii_mixed"], "You are a helpful assistant.", "给我张三的联系方式"),
	}
	for name, in := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Detect(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
