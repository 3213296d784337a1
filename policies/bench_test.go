package policies

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// realisticInput is a request as the gateway sees it: a few messages, a caller
// with attributes, signals with findings.
func realisticInput() Input {
	return Input{
		Trial: "demo",
		Stage: "canary",
		Time:  "2025-06-01T12:34:00Z",
		Request: RequestFacts{
			Model: "chat", Stream: true, MaxTokens: 2048, MessageCount: 4,
			Roles: []string{"system", "user", "assistant", "user"}, EstimatedPromptTokens: 812,
		},
		Caller: Caller{
			Tenant: "acme", User: "u-7f3a9c2e", Cohort: "pilot",
			Attributes: map[string]string{"region": "eu", "plan": "pro"},
		},
		Signals: Signals{
			PIITypes: []string{"email"}, Topics: []string{"travel"},
			InjectionScore: 0.3, Language: "en",
		},
	}
}

func demoEngine(tb testing.TB) *Engine {
	tb.Helper()
	e, err := New(context.Background(), Config{FS: demoFS(tb)})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return e
}

// BenchmarkDecide is one decision of the demo policy on a realistic input, as the
// gateway makes it: after the first call, a memo hit (canonical encoding, hash,
// lookup).
func BenchmarkDecide(b *testing.B) {
	e := demoEngine(b)
	ctx := context.Background()
	in := realisticInput()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideMix is the gateway's Decide with the rule library loaded
// (the standard policy: every rule on) over a realistic mix of inputs (mixGen:
// 5,000 users, 100 requests/s, the time moving on a minute every 6,000
// requests), memoised and uncached. Each decision is timed on its own: the
// p50 and p99 metrics are of Decide alone (ns/op includes making the input).
// Target: p50 <= 50 µs with -cpu 1.
func BenchmarkDecideMix(b *testing.B) {
	for _, tc := range []struct {
		name string
		memo int
	}{{"memoised", 0}, {"uncached", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			e, err := New(context.Background(), Config{FS: standardFS(b), MemoEntries: tc.memo})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			gen := newMixGen(1)
			var lat []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				in := gen.next()
				t0 := time.Now()
				if _, err := e.Decide(ctx, in); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
			b.ReportMetric(100*e.Stats().HitRate(), "hit-%")
		})
	}
}

// BenchmarkDecideUncached is BenchmarkDecide without the memo: every call is
// an OPA evaluation.
func BenchmarkDecideUncached(b *testing.B) {
	e, err := New(context.Background(), Config{FS: demoFS(b), MemoEntries: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	in := realisticInput()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalInput is the encoding and hash every decision pays.
func BenchmarkCanonicalInput(b *testing.B) {
	in := realisticInput()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = CanonicalInput(in)
	}
}

// BenchmarkDecideParallel runs Decide from GOMAXPROCS goroutines.
func BenchmarkDecideParallel(b *testing.B) {
	e := demoEngine(b)
	ctx := context.Background()
	in := realisticInput()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Decide(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEvalInput compares the two ways of handing the input to OPA, on the
// whole evaluation: rego.EvalInput (OPA converts through a JSON round trip) and
// rego.EvalParsedInput with the ast.Object inputValue builds. Both decode the
// result the same way.
func BenchmarkEvalInput(b *testing.B) {
	e := demoEngine(b)
	ctx := context.Background()
	in := realisticInput()
	b.Run("json_round_trip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rs, err := e.pq.Eval(ctx, rego.EvalInput(in))
			if err != nil || len(rs) != 1 {
				b.Fatal(err)
			}
			if _, err := decodeDecision(rs[0].Expressions[0].Value.(ast.Value)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parsed_ast_object", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rs, err := e.pq.Eval(ctx, rego.EvalParsedInput(inputValue(&in)))
			if err != nil || len(rs) != 1 {
				b.Fatal(err)
			}
			if _, err := decodeDecision(rs[0].Expressions[0].Value.(ast.Value)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parsed_ast_object_external_cancel", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.evaluate(ctx, inputValue(&in)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkInputConversion isolates the conversion itself.
func BenchmarkInputConversion(b *testing.B) {
	in := realisticInput()
	b.Run("json_round_trip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonRoundTripValue(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ast_object", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = inputValue(&in)
		}
	})
}

// benchPrompt is about 1 KB of realistic English and Chinese prompt text with an
// e-mail address and a phone number in it.
var benchPrompt = `You are a helpful assistant for a travel agency. The customer wrote:
"Hello, I would like to book a trip to Kyoto for two people in early April, when
the cherry blossoms are out. We prefer a quiet ryokan near the Philosopher's Path,
ideally with a private onsen, and we would love a recommendation for a kaiseki
dinner on the second night. My budget is around 3000 USD in total, flights not
included. Please send the itinerary to jane.doe@example.com or call me on
+1 415 555 0100 after six in the evening. Also, could you tell me whether I need
a visa as a holder of a German passport, and what the usual tipping customs are?"
客户还补充说：我们希望行程轻松一些，不要太赶，最好能安排一天去奈良看小鹿。
Please answer in a friendly tone, list the options with prices, and keep the answer
under four hundred words. Summarise the plan at the end in three bullet points and
mention any booking deadlines we should be aware of for the ryokan and the dinner.`

func benchExtractor(tb testing.TB) *Extractor {
	tb.Helper()
	x, err := NewExtractor(Topics{
		"medical_dosing": {"dosage", "dose", "overdose", "mg per kg", "剂量", "用药量"},
		"weapons":        {"firearm", "rifle", "explosive", "枪支", "炸药"},
		"travel":         {"itinerary", "flight", "hotel", "ryokan", "visa", "行程", "签证"},
		"finance":        {"stock tip", "crypto", "investment advice", "股票", "理财"},
		"legal":          {"lawsuit", "attorney", "legal advice", "律师", "诉讼"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return x
}

// BenchmarkExtract runs the extractor over a ~1 KB prompt.
func BenchmarkExtract(b *testing.B) {
	x := benchExtractor(b)
	b.SetBytes(int64(len(benchPrompt)))
	b.ReportAllocs()
	for b.Loop() {
		_ = x.Extract(benchPrompt)
	}
}

// BenchmarkExtractNoFindings is the common case: nothing to report, no allocation.
func BenchmarkExtractNoFindings(b *testing.B) {
	x := benchExtractor(b)
	text := strings.Repeat("please summarise the meeting notes for me and keep it short. ", 16)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		_ = x.Extract(text)
	}
}

// BenchmarkNewExtractor builds an extractor for a trial's topics, as loading
// or validating a trial definition does.
func BenchmarkNewExtractor(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = benchExtractor(b)
	}
}
