package eval

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/monitors"
)

// targetBytes is the interaction size of the throughput measure (issue 6:
// "~1 KB interactions").
const targetBytes = 1024

// Interactions builds about n interactions of ~1 KB from the data set rows:
// each takes one row's prompt and response and pads the prompt with the
// prompts of the following rows. The mix keeps the data sets' share of risky
// text.
func Interactions(data map[string][]Row, n int) []*events.Interaction {
	var all []*Row
	for _, f := range Files {
		for i := range data[f] {
			all = append(all, &data[f][i])
		}
	}
	if len(all) == 0 {
		return nil
	}
	out := make([]*events.Interaction, 0, n)
	for i := 0; len(out) < n; i++ {
		r := all[i%len(all)]
		prompt := r.Prompt
		for j := 1; len(prompt)+len(r.Response) < targetBytes && j < len(all); j++ {
			prompt += "\n" + all[(i+j)%len(all)].Prompt
		}
		resp := r.Response
		if len(prompt)+len(resp) > 2*targetBytes {
			// Cut long rows to ~1 KB at a rune boundary.
			prompt = cut(prompt, targetBytes/2)
			resp = cut(resp, targetBytes/2)
		}
		out = append(out, &events.Interaction{
			Schema: events.SchemaInteraction, ID: r.ID, Trial: "bench", Status: events.StatusOK,
			Request:  events.Request{Messages: []events.Message{{Role: "user", Content: prompt}}},
			Response: events.Response{Content: resp},
		})
	}
	return out
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Measure runs every detector over the interactions with procs goroutines
// (and GOMAXPROCS=procs) for at least minDur, and reports the rate.
func Measure(ctx context.Context, dets []monitors.Detector, ins []*events.Interaction, procs int, minDur time.Duration) Throughput {
	prev := runtime.GOMAXPROCS(procs)
	defer runtime.GOMAXPROCS(prev)
	total := 0
	for _, in := range ins {
		total += len(in.Request.Messages[0].Content) + len(in.Response.Content)
	}
	var done atomic.Int64
	cpu0 := cpuTime()
	start := time.Now()
	for time.Since(start) < minDur {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range procs {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(ins) {
						return
					}
					for _, d := range dets {
						_, _ = d.Detect(ctx, ins[i])
					}
					done.Add(1)
				}
			})
		}
		wg.Wait()
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	t := Throughput{
		PerSecond: float64(done.Load()) / el.Seconds(), Procs: procs, Workers: procs,
		AvgBytes: total / max(1, len(ins)), Interactions: int(done.Load()),
	}
	if cpu > 0 {
		t.PerCPUSecond = float64(done.Load()) / cpu.Seconds()
	}
	return t
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
