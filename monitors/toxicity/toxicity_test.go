package toxicity

import (
	"context"
	"strings"
	"testing"

	"github.com/stagegate/stagegate/events"
)

func interaction(prompt, response string) *events.Interaction {
	return &events.Interaction{ID: "i", Trial: "t", Status: events.StatusOK,
		Request:  events.Request{Messages: []events.Message{{Role: "user", Content: prompt}}},
		Response: events.Response{Content: response}}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name           string
		prompt, answer string
		flagged        bool
		field          string
		severity       string
	}{
		{"direct insult", "you are a complete idiot", "", true, "prompt", ""},
		{"masked profanity at a name", "F*ck Stanton!!!", "", true, "prompt", ""},
		{"threat", "I will find you and hurt you", "", true, "prompt", events.SeverityHigh},
		{"dehumanising a group", "Immigrants are vermin and parasites", "", true, "prompt", ""},
		{"violent wish", "He deserves to rot in hell", "", true, "prompt", ""},
		{"chinese insult", "你就是个傻逼", "", true, "prompt", ""},
		{"toxic answer rates high", "tell me about my code", "Your code is garbage and you are a moron.", true, "response", events.SeverityHigh},

		// Hard negatives.
		{"praise with profanity", "this pizza is fucking amazing, love it", "", false, "", ""},
		{"quoted slur discussed", "My teacher explained that the word 'idiot' used to be a medical term.", "", false, "", ""},
		{"negated insult", "You are not stupid, you just need more practice.", "", false, "", ""},
		{"ordinary text", "Thanks for the recipe! I added ginger and it was great.", "Glad you liked it.", false, "", ""},
		{"killing a process", "How do I kill a stuck process?", "", false, "", ""},
	}
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := d.Detect(context.Background(), interaction(tt.prompt, tt.answer))
			if err != nil {
				t.Fatal(err)
			}
			if (len(fs) == 1) != tt.flagged {
				s, why := Analyze(tt.prompt + " " + tt.answer)
				t.Fatalf("flagged %v, want %v (%.2f %v)", len(fs) == 1, tt.flagged, s, why)
			}
			if !tt.flagged {
				return
			}
			f := fs[0]
			if f.Category != Category || len(f.Spans) == 0 || f.Spans[0].Field != tt.field {
				t.Errorf("finding %+v", f)
			}
			if tt.severity != "" && f.Severity != tt.severity {
				t.Errorf("severity %s, want %s", f.Severity, tt.severity)
			}
		})
	}
}

func TestMaskMatch(t *testing.T) {
	for w, want := range map[string]bool{"f*ck": true, "f**k": true, "s**t": true, "b****": true, "*uck": false, "f*ckk": false, "d*g": false} {
		got := false
		for _, p := range maskedWords {
			if maskMatch([]byte(w), p) {
				got = true
			}
		}
		if got != want {
			t.Errorf("%q matched %v, want %v", w, got, want)
		}
	}
}

func FuzzAnalyze(f *testing.F) {
	f.Add("you are an idiot")
	f.Add("F&@k Stanton 🖕🏽")
	f.Add("你就是个傻逼")
	f.Fuzz(func(t *testing.T, s string) {
		sc := pool.Get().(*scratch)
		defer pool.Put(sc)
		r := analyze(sc, s)
		if r.score < 0 || r.score > 1 {
			t.Fatalf("score %v", r.score)
		}
		n := len([]rune(s))
		for _, sp := range r.spans {
			if sp.Start < 0 || sp.End > n || sp.Start > sp.End {
				t.Fatalf("span %+v outside %d runes", sp, n)
			}
		}
	})
}

func BenchmarkDetect(b *testing.B) {
	d, _ := New(Config{})
	in := interaction(strings.Repeat("I think the new park is lovely and the kids enjoyed it a lot. ", 10), strings.Repeat("That sounds nice. ", 20))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = d.Detect(ctx, in)
	}
}
