package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// soakResult is a long open-loop run against gateway (c) with RSS sampled.
type soakResult struct {
	Rate     float64
	Duration time.Duration
	Every    time.Duration
	Out      outcome
	RSS      []int64 // sampled every Every from the start of the load
	Lost     float64
	Drained  bool
}

// runSoakLoad runs rate req/s (plain) against (c) for d, sampling the gateway's
// RSS. With profDir set it also saves heap profiles of the gateway after the
// first minute and at the end, so growth can be traced to its allocation sites
// (go tool pprof -diff_base heap-1m.pprof heap-end.pprof).
func runSoakLoad(ctx context.Context, e *env, rate float64, d, every time.Duration, profDir string, progress func(string)) (soakResult, error) {
	res := soakResult{Rate: rate, Duration: d, Every: every}
	if profDir != "" {
		if err := os.MkdirAll(profDir, 0o755); err != nil {
			return res, err
		}
	}
	t := e.targets[caseGateway][0]
	pid := e.gwC.pid()
	if r, err := rss(pid); err == nil {
		res.RSS = append(res.RSS, r)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				r, err := rss(pid)
				if err != nil {
					return
				}
				mu.Lock()
				res.RSS = append(res.RSS, r)
				n := len(res.RSS)
				mu.Unlock()
				progress(fmt.Sprintf("soak %s: RSS %s MB", time.Duration(n-1)*every, mb(r)))
				if profDir != "" && time.Duration(n-1)*every >= time.Minute && time.Duration(n-2)*every < time.Minute {
					if err := e.fetchProfile(ctx, e.adminC, "/debug/pprof/heap", filepath.Join(profDir, "heap-1m.pprof")); err != nil {
						progress("heap profile: " + err.Error())
					}
				}
			}
		}
	})
	res.Out = loadSpec{Rate: rate}.run(ctx, t, d, e.chk, e.bodies[0])
	close(stop)
	wg.Wait()
	if profDir != "" {
		if err := e.fetchProfile(ctx, e.adminC, "/debug/pprof/heap", filepath.Join(profDir, "heap-end.pprof")); err != nil {
			progress("heap profile: " + err.Error())
		}
	}
	lost, err := e.drain(ctx, caseGateway, 5*time.Minute)
	res.Lost, res.Drained = lost, err == nil
	return res, nil
}

// growth compares the RSS after the first tenth of the run (warm-up: pools,
// caches and JetStream buffers fill) with the end, and fits a line to the second
// half. No growth: the end is within 10% of the warm level, and the second half
// rises less than 1 MB per minute.
func (s soakResult) growth() (warm, end int64, slopeMBPerMin float64, ok bool) {
	n := len(s.RSS)
	if n < 4 {
		return 0, 0, 0, false
	}
	warm = s.RSS[max(n/10, 1)]
	end = s.RSS[n-1]
	half := s.RSS[n/2:]
	var sx, sy, sxx, sxy float64
	for i, v := range half {
		x := float64(i) * s.Every.Minutes()
		y := float64(v) / (1 << 20)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	k := float64(len(half))
	if den := k*sxx - sx*sx; den > 0 {
		slopeMBPerMin = (k*sxy - sx*sy) / den
	}
	return warm, end, slopeMBPerMin, float64(end) <= 1.1*float64(warm) && slopeMBPerMin < 1
}

func (s soakResult) markdown(m machine) string {
	var b strings.Builder
	b.WriteString("## Soak\n\n")
	b.WriteString(m.markdown())
	lat := summarize(s.Out.Latency)
	warm, end, slope, ok := s.growth()
	fmt.Fprintf(&b, "- **Load:** open loop %g req/s, plain, against (c) (full path, monitors in process) for %s; RSS of the gateway process sampled every %s\n\n", s.Rate, s.Duration, s.Every)
	b.WriteString("| answered | errors | unpublished | throughput req/s | p50 ms | p99 ms | p99.9 ms | RSS after warm-up MB | RSS at end MB | peak sample MB | slope, 2nd half | no growth |\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	var peak int64
	for _, r := range s.RSS {
		peak = max(peak, r)
	}
	tput := 0.0
	if s.Out.Elapsed > 0 {
		tput = float64(s.Out.OK) / s.Out.Elapsed.Seconds()
	}
	fmt.Fprintf(&b, "| %d | %d | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %+.2f MB/min | %s |\n\n",
		s.Out.OK, s.Out.Errors, s.Lost, tput, ms(lat.P50), ms(lat.P99), ms(lat.P999), mb(warm), mb(end), mb(peak), slope, passIf(ok && s.Out.Errors == 0))
	if !s.Drained {
		b.WriteString("The monitors had not caught up 5 minutes after the load ended.\n\n")
	}
	b.WriteString("RSS samples (MB): ")
	parts := make([]string, len(s.RSS))
	for i, r := range s.RSS {
		parts[i] = mb(r)
	}
	b.WriteString(strings.Join(parts, " ") + "\n\n")
	b.WriteString("No growth means: RSS at the end within 10% of RSS after the first tenth of the run, and a least-squares slope under 1 MB/min over the second half.\n")
	for _, s := range s.Out.Sample {
		fmt.Fprintf(&b, "- error: %s\n", s)
	}
	return b.String()
}

func (s soakResult) historyLine(m machine) string {
	lat := summarize(s.Out.Latency)
	warm, end, slope, ok := s.growth()
	return fmt.Sprintf("- %s, commit %s, `%s`, load average %s → %s: soak %g/s for %s, %d answered, %d errors; p50 %s p99 %s ms; RSS %s → %s MB (%+.2f MB/min), %s.",
		m.Date.Format("2006-01-02 15:04 MST"), orDash(m.Commit), m.Command, firstField(m.LoadStart), firstField(m.LoadEnd), s.Rate, s.Duration, s.Out.OK, s.Out.Errors,
		ms(lat.P50), ms(lat.P99), mb(warm), mb(end), slope, map[bool]string{true: "no growth", false: "GROWTH"}[ok])
}
