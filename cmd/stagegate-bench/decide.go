package main

import (
	"context"
	"fmt"
	"io/fs"
	"runtime"
	"time"

	"github.com/stagegate/stagegate/policies"
)

// decideResult is the cost of one policy decision on one core.
type decideResult struct {
	Dist     dist
	Allocs   float64 // per decision
	Inputs   int     // distinct inputs rotated through
	Calls    int
	MemoHits float64 // share of decisions answered from the memo, when the engine reports it
}

// measureDecide times Decide of the built-in demo policy, one call at a time
// with GOMAXPROCS=1, on realistic inputs as the gateway builds them (distinct
// users, prompts with and without findings). It measures whatever Decide costs
// today, memo included.
// memoEntries is passed to policies.Config.MemoEntries (-1: memo off, 0: default).
func measureDecide(ctx context.Context, calls, memoEntries int) (decideResult, error) {
	sub, err := fs.Sub(policies.Builtin(), "rego/demo")
	if err != nil {
		return decideResult{}, err
	}
	eng, err := policies.New(ctx, policies.Config{FS: sub, MemoEntries: memoEntries})
	if err != nil {
		return decideResult{}, fmt.Errorf("demo policy: %w", err)
	}
	ext, err := policies.NewExtractor(policies.Topics{
		"weapons":        {"build a bomb", "make a weapon", "制造炸弹"},
		"medical_dosing": {"insulin dose", "overdose", "dosage", "剂量"},
	})
	if err != nil {
		return decideResult{}, err
	}
	prompts := []string{
		"What are the opening hours of the central library on public holidays? Answer in one sentence.",
		"My e-mail is jane.doe@example.org, can you remind me of my appointment next Tuesday?",
		"What is a safe insulin dose for an adult with type 1 diabetes before dinner?",
		"请用一句话总结一下这份关于公共交通的报告。",
	}
	const distinct = 256
	inputs := make([]policies.Input, distinct)
	for i := range inputs {
		p := prompts[i%len(prompts)]
		inputs[i] = policies.Input{
			Trial: modelFast,
			Stage: "canary",
			Time:  "2026-01-01T12:00:00Z",
			Request: policies.RequestFacts{
				Model: modelFast, Stream: i%2 == 0, MaxTokens: 256, MessageCount: 2,
				Roles: []string{"system", "user"}, EstimatedPromptTokens: (60+len(p))/4 + 1,
			},
			Caller:  policies.Caller{Tenant: "bench-tenant", User: fmt.Sprintf("u_%024x", i*7919), Cohort: "pilot"},
			Signals: ext.Extract("You are a concise assistant for a municipal services pilot.", p),
		}
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	for i := range min(calls/10, 2000) {
		if _, err := eng.Decide(ctx, inputs[i%distinct]); err != nil {
			return decideResult{}, err
		}
	}
	lat := make(samples, calls)
	hits := 0
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range calls {
		t0 := time.Now()
		d, err := eng.Decide(ctx, inputs[i%distinct])
		lat[i] = time.Since(t0)
		if err != nil {
			return decideResult{}, err
		}
		if d.MemoHit {
			hits++
		}
	}
	runtime.ReadMemStats(&m1)
	return decideResult{
		Dist:     summarize(lat),
		Allocs:   float64(m1.Mallocs-m0.Mallocs) / float64(calls),
		Inputs:   distinct,
		Calls:    calls,
		MemoHits: float64(hits) / float64(calls),
	}, nil
}
