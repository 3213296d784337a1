package judge

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/sandbox/sim"
)

// simJudge starts the sandbox's model simulator answering every request with
// answer, after delay.
func simJudge(t *testing.T, answer string, delay time.Duration) string {
	t.Helper()
	srv, err := sim.New(sim.Config{Models: []string{"judge"}, FixedAnswer: answer, Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return srv.URL()
}

func interaction() *events.Interaction {
	return &events.Interaction{ID: "i1", Trial: "t", Status: events.StatusOK,
		Request:  events.Request{Messages: []events.Message{{Role: "system", Content: "secret"}, {Role: "user", Content: "you are an idiot"}}},
		Response: events.Response{Content: "no, you are"}}
}

func TestJudgeFlagsWithTheVerdictsCategory(t *testing.T) {
	url := simJudge(t, `Here is my verdict: {"flagged": true, "category": "toxicity", "score": 0.9, "explanation": "a direct insult"}`, 0)
	d, err := New(Config{BaseURL: url, Model: "judge", PromptPricePer1K: 1, CompletionPricePer1K: 2}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := d.Detect(context.Background(), interaction())
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Category != "toxicity" || fs[0].Severity != events.SeverityHigh || fs[0].Detector != Name ||
		!strings.Contains(fs[0].Explanation, "a direct insult") {
		t.Fatalf("findings = %+v", fs)
	}
	st := d.Stats()
	if st.Calls != 1 || st.Failures != 0 || st.PromptTokens == 0 || st.Cost <= 0 {
		t.Errorf("stats = %+v, want one priced call", st)
	}
}

func TestJudgeVerdicts(t *testing.T) {
	tests := []struct {
		name, answer string
		want         int
		err          bool
	}{
		{"not flagged", `{"flagged": false, "category": "none", "score": 0.1}`, 0, false},
		{"below threshold", `{"flagged": true, "category": "pii", "score": 0.2}`, 0, false},
		{"unknown category", `{"flagged": true, "category": "weather", "score": 0.9}`, 0, true},
		{"score out of range", `{"flagged": true, "category": "pii", "score": 7}`, 0, true},
		{"no json", `I think it is fine.`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(Config{BaseURL: simJudge(t, tt.answer, 0), Model: "judge"}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			fs, err := d.Detect(context.Background(), interaction())
			if (err != nil) != tt.err || len(fs) != tt.want {
				t.Fatalf("Detect = %+v, %v", fs, err)
			}
			if tt.err && !errors.Is(err, ErrJudge) {
				t.Errorf("error %v is not ErrJudge", err)
			}
		})
	}
}

func TestJudgeTimeoutAndConcurrency(t *testing.T) {
	url := simJudge(t, `{"flagged": false}`, 300*time.Millisecond)
	d, err := New(Config{BaseURL: url, Model: "judge", Timeout: 50 * time.Millisecond}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Detect(context.Background(), interaction()); !errors.Is(err, ErrJudge) {
		t.Fatalf("slow judge: %v, want ErrJudge", err)
	}
	// One slot: a second caller waits, and gives up with its context.
	d2, _ := New(Config{BaseURL: url, Model: "judge", MaxConcurrent: 1}, Deps{})
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = d2.Detect(context.Background(), interaction()) })
	testutil.WaitFor(t, 5*time.Second, "the first call holds the slot", func() bool { return len(d2.sem) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d2.Detect(ctx, interaction()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second caller: %v, want a deadline while waiting for the slot", err)
	}
	wg.Wait()
	if d2.Stats().Calls != 1 {
		t.Errorf("calls = %d, want 1 (the waiter never called)", d2.Stats().Calls)
	}
}

func TestTranscriptSkipsSystemAndIsBounded(t *testing.T) {
	d, _ := New(Config{BaseURL: "http://x/v1", Model: "m", MaxInputBytes: 30}, Deps{})
	s := d.transcript(interaction())
	if strings.Contains(s, "secret") || !strings.HasSuffix(s, "[cut]") || len(s) > 30+len("\n[cut]") {
		t.Errorf("transcript %q", s)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{BaseURL: "ftp://x", MaxConcurrent: -1, Threshold: 2, PromptPricePer1K: -1}.Validate()
	for _, want := range []string{"base url", "model", "max concurrent", "threshold", "prices"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func FuzzParseVerdict(f *testing.F) {
	f.Add(`{"flagged": true, "category": "pii", "score": 0.9, "explanation": "x"}`)
	f.Add("```json\n{\"flagged\": false}\n```")
	f.Add(`}{`)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseVerdict(s)
		if err == nil && v.Flagged && (!categories[v.Category] || v.Score < 0 || v.Score > 1) {
			t.Fatalf("accepted an invalid verdict %+v", v)
		}
	})
}
