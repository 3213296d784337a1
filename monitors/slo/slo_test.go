package slo

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sample(trial, model string, ms float64, status string) *events.Interaction {
	return &events.Interaction{ID: "x", Trial: trial, Model: model, Stage: "canary", Status: status,
		Latency: events.Latency{TotalMS: ms, FirstTokenMS: ms / 4}, Stream: true}
}

func run(t *testing.T, d *Detector, in *events.Interaction) []events.Finding {
	t.Helper()
	fs, err := d.Detect(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestLatencyBreachReportedOncePerCooldown(t *testing.T) {
	clk := clock.NewFake(t0)
	d, err := New(Config{Window: time.Minute, MinSamples: 10, Limits: Limits{LatencyP95MS: 1000}}, clk)
	if err != nil {
		t.Fatal(err)
	}
	// Fast traffic: nothing.
	for range 20 {
		if fs := run(t, d, sample("t", "m", 200, events.StatusOK)); len(fs) != 0 {
			t.Fatalf("fast traffic flagged: %+v", fs)
		}
		clk.Advance(100 * time.Millisecond)
	}
	// Slow traffic takes the p95 over the limit: exactly one finding.
	var got []events.Finding
	for range 20 {
		got = append(got, run(t, d, sample("t", "m", 2500, events.StatusOK))...)
		clk.Advance(100 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatalf("%d findings, want 1 (cooldown): %+v", len(got), got)
	}
	f := got[0]
	if f.Category != Category || f.Severity != events.SeverityHigh || f.Score < 0.99 ||
		!strings.Contains(f.Explanation, "latency p95") || !strings.Contains(f.Explanation, "limit 1000 ms") {
		t.Errorf("finding = %+v", f)
	}
	// After the cooldown, a persisting breach is reported again.
	clk.Advance(time.Minute)
	var again []events.Finding
	for range 15 {
		again = append(again, run(t, d, sample("t", "m", 2500, events.StatusOK))...)
	}
	if len(again) != 1 {
		t.Errorf("after cooldown: %d findings, want 1", len(again))
	}
}

func TestRatesPerTrialAndSeries(t *testing.T) {
	clk := clock.NewFake(t0)
	d, err := New(Config{Window: time.Minute, MinSamples: 10,
		Limits: Limits{ErrorRate: 0.5},
		Trials: map[string]Limits{"strict": {ErrorRate: 0.1, FallbackRate: 0.1}}}, clk)
	if err != nil {
		t.Fatal(err)
	}
	var lax, strict []events.Finding
	for i := range 20 {
		status := events.StatusOK
		if i%5 == 0 {
			status = events.StatusUpstreamError // 20% errors
		}
		lax = append(lax, run(t, d, sample("lax", "m", 100, status))...)
		in := sample("strict", "m", 100, status)
		if i%4 == 0 {
			in.FallbackFrom = "cand"
		}
		strict = append(strict, run(t, d, in)...)
	}
	if len(lax) != 0 {
		t.Errorf("20%% errors under a 50%% limit flagged: %+v", lax)
	}
	measures := fmt.Sprint(strict)
	if len(strict) != 2 || !strings.Contains(measures, "error rate") || !strings.Contains(measures, "fallback rate") {
		t.Errorf("strict trial findings = %+v", strict)
	}
	// A trial without limits is not tracked.
	d2, _ := New(Config{Trials: map[string]Limits{"only": {ErrorRate: 0.1}}}, clk)
	for range 30 {
		if fs := run(t, d2, sample("other", "m", 100, events.StatusUpstreamError)); len(fs) != 0 {
			t.Fatal("trial without limits flagged")
		}
	}
}

func TestOldSamplesLeaveTheWindow(t *testing.T) {
	clk := clock.NewFake(t0)
	d, _ := New(Config{Window: time.Minute, MinSamples: 5, Limits: Limits{ErrorRate: 0.3}}, clk)
	for range 10 {
		run(t, d, sample("t", "m", 100, events.StatusUpstreamError))
	}
	clk.Advance(2 * time.Minute) // the errors age out, and the cooldown passes
	for range 10 {
		if fs := run(t, d, sample("t", "m", 100, events.StatusOK)); len(fs) != 0 {
			t.Fatalf("aged-out errors still counted: %+v", fs)
		}
	}
}

func TestSeriesAreBounded(t *testing.T) {
	d, _ := New(Config{MaxSeries: 3, Limits: Limits{ErrorRate: 0.5}}, clock.NewFake(t0))
	for i := range 10 {
		run(t, d, sample("t", fmt.Sprintf("m%d", i), 100, events.StatusOK))
	}
	if n := len(d.series); n != 3 {
		t.Errorf("%d series kept, want 3", n)
	}
}

func TestHistogramQuantile(t *testing.T) {
	var h histogram
	for i := 1; i <= 100; i++ {
		h.add(float64(i * 10)) // 10 .. 1000 ms
	}
	q := h.quantile(0.95)
	if q < 950 || q > 950*bucketBase*1.01 {
		t.Errorf("p95 = %.1f, want about 950 (at most 10%% over)", q)
	}
	if (&histogram{}).quantile(0.5) != 0 {
		t.Error("empty histogram quantile not 0")
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Window: time.Second, MinSamples: -1, MaxSeries: -1, Limits: Limits{ErrorRate: 2},
		Trials: map[string]Limits{"bad name": {}}}.Validate()
	for _, want := range []string{"window", "min samples", "max series", "rates", "bad name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "no limits") {
		t.Errorf("empty config: %v", err)
	}
}

func BenchmarkDetect(b *testing.B) {
	d, _ := New(Config{Limits: Limits{LatencyP95MS: 1e9, FirstTokenP95MS: 1e9, ErrorRate: 1, FallbackRate: 1}}, nil)
	in := sample("t", "m", 300, events.StatusOK)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = d.Detect(ctx, in)
	}
}
