package replay

import (
	"context"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/testutil"
)

// BenchmarkReplay100k replays 100,000 recorded interactions of the standard
// trial (realistic payloads, ~1 KB each, in an on-disk JetStream stream) with
// the full rule library: read, decode, re-decide, compare. The target is under
// a minute on 2 cores. Run with -benchtime=1x; setup (recording) is not timed.
func BenchmarkReplay100k(b *testing.B) {
	const n = 100_000
	_, nc := testutil.JetStream(b)
	js := newJetStream(b, nc)
	record(b, js, mix(n, 9))
	b.ReportAllocs()
	var rep *Report
	for b.Loop() {
		var err error
		rep, err = Run(context.Background(), standardEngine(b, 0), Interactions(js, trialID, time.Time{}), Config{}, Deps{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Replayed != n || rep.Changed() != 0 {
			b.Fatalf("replayed %d, changed %d", rep.Replayed, rep.Changed())
		}
	}
	b.ReportMetric(rep.Seconds, "s/100k")
	b.ReportMetric(float64(n)/rep.Seconds, "interactions/s")
	b.ReportMetric(100*rep.MemoHitRate, "memo-hit-%")
}

// BenchmarkReplayUncached is the same decisions without the memo: every
// recorded input evaluated by OPA (records from memory, no stream).
func BenchmarkReplayUncached(b *testing.B) {
	const n = 20_000
	e := standardEngine(b, 0)
	recs := make([]Record, n)
	for i, in := range mix(n, 9) {
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = FromInteraction(interaction(i, d))
	}
	src := func(_ context.Context, yield func(Record) error) error {
		for _, r := range recs {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}
	var rep *Report
	for b.Loop() {
		var err error
		if rep, err = Run(context.Background(), standardEngine(b, -1), src, Config{}, Deps{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(rep.Seconds*100_000/n, "s/100k")
}
