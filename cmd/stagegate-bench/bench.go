package main

import (
	"context"
	"fmt"
	"time"
)

// plan is what one harness run measures.
type plan struct {
	Loads        []loadSpec
	Rounds       int
	Duration     time.Duration // measured window of a load against the fast simulator
	SlowDuration time.Duration // schedule length of a load against the 1 s simulator
	Warmup       time.Duration // unmeasured load before each window
	SlowWarmup   time.Duration // the same before a 1 s answer window (it opens the connections the window keeps busy)
	DrainTimeout time.Duration
	Retries      int // how often a load's group is measured again when the reference was disturbed
}

// fullLoads are the loads of `make bench`, lighter before heavier, so the first
// round's 1000/s windows see a gateway that has not yet been through c=128 or
// 2000/s (Go returns memory to the OS lazily; peak RSS is read per window).
func fullLoads() []loadSpec {
	var ls []loadSpec
	for _, stream := range []bool{false, true} {
		ls = append(ls, loadSpec{Concurrency: 1, Stream: stream}, loadSpec{Concurrency: 32, Stream: stream},
			loadSpec{Rate: 500, Stream: stream}, loadSpec{Rate: 1000, Stream: stream})
	}
	for _, stream := range []bool{false, true} {
		ls = append(ls, loadSpec{Concurrency: 128, Stream: stream}, loadSpec{Rate: 2000, Stream: stream})
	}
	for _, stream := range []bool{false, true} {
		ls = append(ls, loadSpec{Rate: 500, Stream: stream, Slow: true})
	}
	return ls
}

// quickLoads are a smoke run's: one closed, one open, one 1 s load.
func quickLoads() []loadSpec {
	return []loadSpec{
		{Concurrency: 32},
		{Rate: 500, Stream: true},
		{Rate: 100, Slow: true},
	}
}

// cell is what one case measured under one load, summed over the rounds.
type cell struct {
	Out        outcome
	CPU        time.Duration // the server process (for c and d: the gateway process)
	CPUMonitor time.Duration // d: the separate monitor process
	Peak       int64         // peak RSS of the server process over the windows
	PeakMon    int64
	FirstPeak  int64   // peak RSS in the first round's window, before the heavier loads of that round
	Lost       float64 // interactions the gateway failed to publish
	Notes      []string
}

// cpuPerRequest is server CPU per answered request.
func (c *cell) cpuPerRequest() time.Duration {
	if c.Out.OK == 0 {
		return 0
	}
	return c.CPU / time.Duration(c.Out.OK)
}

func (c *cell) monitorCPUPerRequest() time.Duration {
	if c.Out.OK == 0 {
		return 0
	}
	return c.CPUMonitor / time.Duration(c.Out.OK)
}

// throughput is answered requests per second of window.
func (c *cell) throughput() float64 {
	if c.Out.Elapsed <= 0 {
		return 0
	}
	return float64(c.Out.OK) / c.Out.Elapsed.Seconds()
}

// sustained tells whether an open-loop rate was kept: every request answered,
// none failed, throughput within 5% of the rate, and no queue building up (p99
// under 100 ms above the answer's own delay).
func (c *cell) sustained(l loadSpec) bool {
	if l.Rate == 0 {
		return true
	}
	bound := 100 * time.Millisecond
	if l.Slow {
		bound += slowDelay
	}
	return c.Out.Errors == 0 && c.Out.OK == c.Out.Sent && c.throughput() >= 0.95*l.Rate && summarize(c.Out.Latency).P99 <= bound
}

// results are every cell of a run.
type results struct {
	Plan      plan
	Cells     [][numCases]*cell // [load][case]
	Discarded []string          // groups measured again because the reference was disturbed
}

// measureAll runs the rounds: per round, per load, the cases a b c d in turn, so
// drift (thermal, noisy neighbours) hits every case alike. When the reference
// itself, direct calls to the simulator, fails or cannot keep an open-loop rate,
// the machine was disturbed (on a shared machine another job took the cores):
// that load's group of four is discarded and measured once more, and the report
// says so.
func measureAll(ctx context.Context, e *env, p plan, progress func(string)) (*results, error) {
	r := &results{Plan: p, Cells: make([][numCases]*cell, len(p.Loads))}
	for i := range r.Cells {
		for c := range numCases {
			r.Cells[i][c] = &cell{}
		}
	}
	for round := range p.Rounds {
		for li, l := range p.Loads {
			var group [numCases]*cell
			for attempt := 0; ; attempt++ {
				for c := range numCases {
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					w, err := measureWindow(ctx, e, c, l, p)
					if err != nil {
						return nil, fmt.Errorf("round %d, %s, %s: %w", round+1, l, caseNames[c], err)
					}
					group[c] = w
					progress(fmt.Sprintf("round %d/%d  %-30s %-28s %8.0f req/s  p50 %s ms  p99 %s ms  cpu %s ms/req  errors %d",
						round+1, p.Rounds, l, caseNames[c], w.throughput(), ms(summarize(w.Out.Latency).P50),
						ms(summarize(w.Out.Latency).P99), ms(w.cpuPerRequest()), w.Out.Errors))
				}
				ref := group[caseDirect]
				if ref.Out.Errors == 0 && ref.sustained(l) || attempt >= p.Retries {
					break
				}
				r.Discarded = append(r.Discarded, fmt.Sprintf("round %d, %s: direct calls got %d errors at %.0f req/s (p99 %s ms); the group was measured again",
					round+1, l, ref.Out.Errors, ref.throughput(), ms(summarize(ref.Out.Latency).P99)))
				progress("reference disturbed; measuring this load again: " + r.Discarded[len(r.Discarded)-1])
			}
			for c := range numCases {
				if round == 0 {
					group[c].FirstPeak = group[c].Peak
				}
				r.Cells[li][c].add(group[c])
			}
		}
	}
	return r, nil
}

func (c *cell) add(w *cell) {
	c.Out.merge(w.Out)
	c.CPU += w.CPU
	c.CPUMonitor += w.CPUMonitor
	c.Peak = max(c.Peak, w.Peak)
	c.FirstPeak = max(c.FirstPeak, w.FirstPeak)
	c.PeakMon = max(c.PeakMon, w.PeakMon)
	c.Lost += w.Lost
	c.Notes = append(c.Notes, w.Notes...)
}

// measureWindow is one measured window: warm up, let the monitors catch up, then
// load for the window while the server's CPU and peak RSS are read around it.
func measureWindow(ctx context.Context, e *env, c int, l loadSpec, p plan) (*cell, error) {
	slow := 0
	if l.Slow {
		slow = 1
	}
	t := e.targets[c][slow]
	b := e.bodies[slow]
	main, mon := e.serverProc(c, l.Slow)
	d := p.Duration
	if l.Slow {
		d = p.SlowDuration
	}
	warm := p.Warmup
	if l.Slow {
		warm = p.SlowWarmup
	}
	if warm > 0 {
		_ = l.run(ctx, t, warm, e.chk, b)
	}
	lost0, err := e.drain(ctx, c, p.DrainTimeout)
	if err != nil {
		return nil, err
	}
	w := &cell{}
	cpu0, err := cpuTime(main.pid())
	if err != nil {
		return nil, err
	}
	var mcpu0 time.Duration
	resetPeak(main.pid())
	if mon != nil {
		if mcpu0, err = cpuTime(mon.pid()); err != nil {
			return nil, err
		}
		resetPeak(mon.pid())
	}
	w.Out = l.run(ctx, t, d, e.chk, b)
	lost1, err := e.drain(ctx, c, p.DrainTimeout)
	if err != nil {
		w.Notes = append(w.Notes, err.Error())
	}
	w.Lost = lost1 - lost0
	cpu1, err := cpuTime(main.pid())
	if err != nil {
		return nil, err
	}
	w.CPU = cpu1 - cpu0
	if w.Peak, err = peakRSS(main.pid()); err != nil {
		return nil, err
	}
	if mon != nil {
		mcpu1, err := cpuTime(mon.pid())
		if err != nil {
			return nil, err
		}
		w.CPUMonitor = mcpu1 - mcpu0
		if w.PeakMon, err = peakRSS(mon.pid()); err != nil {
			return nil, err
		}
	}
	for _, pr := range []*proc{main, mon} {
		if pr != nil {
			if err := pr.alive(); err != nil {
				return nil, err
			}
		}
	}
	return w, nil
}
