package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Markers delimiting the sections the harness rewrites in BENCHMARKS.md; the
// rest of the file (notes, the history) is kept as written.
const (
	markLatestBegin = "<!-- stagegate-bench:latest:begin -->"
	markLatestEnd   = "<!-- stagegate-bench:latest:end -->"
	markSoakBegin   = "<!-- stagegate-bench:soak:begin -->"
	markSoakEnd     = "<!-- stagegate-bench:soak:end -->"
	historyHeading  = "## History"
)

// machine describes where a run happened.
type machine struct {
	Cores   int
	CPU     string
	MemGB   float64
	Kernel  string
	Go      string
	Commit  string
	Date    time.Time
	Command string
	// LoadStart and LoadEnd are /proc/loadavg around the run: on a shared
	// machine they tell how much else was running.
	LoadStart, LoadEnd string
}

func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func describeMachine(command string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC(), Command: command, CPU: "unknown", LoadStart: loadavg()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(raw), "MemTotal: %f kB", &kb); err == nil {
			m.MemGB = kb / (1 << 20)
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Commit += " + uncommitted changes"
		}
	}
	return m
}

func (m machine) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "- **Date:** %s\n", m.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- **Machine:** %d cores, %s, %.1f GiB RAM, Linux %s\n", m.Cores, m.CPU, m.MemGB, m.Kernel)
	fmt.Fprintf(&b, "- **Go:** %s; commit %s\n", m.Go, orDash(m.Commit))
	fmt.Fprintf(&b, "- **Command:** `%s`\n", m.Command)
	if m.LoadStart != "" {
		fmt.Fprintf(&b, "- **Load average** (1, 5, 15 min) at start: %s; at end: %s (the harness itself adds about 2)\n", m.LoadStart, orDash(m.LoadEnd))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// report is everything one harness run found.
type report struct {
	Machine     machine
	Results     *results
	Decide      decideResult
	DecideFresh decideResult
	Micro       []microResult
	Profile     string // summary of the profile, when taken
	Quick       bool
}

func mb(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 0, 64) }

// resultsTable is one row per load and case.
func (r *report) resultsTable() string {
	var b strings.Builder
	b.WriteString("| load | case | req/s | p50 | p90 | p99 | p99.9 | +p50 vs a | +p99 vs a | TTFT p50 | +TTFT p50 | errors | peak RSS MB | server CPU ms/req |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for li, l := range r.Results.Plan.Loads {
		row := r.Results.Cells[li]
		direct := summarize(row[caseDirect].Out.Latency)
		directTTFT := summarize(row[caseDirect].Out.TTFT)
		for c := range numCases {
			x := row[c]
			lat := summarize(x.Out.Latency)
			tput := fmt.Sprintf("%.0f", x.throughput())
			if !x.sustained(l) {
				tput += " ✗"
			}
			addP50, addP99, ttft, addTTFT := "—", "—", "—", "—"
			if c != caseDirect {
				addP50, addP99 = signedMS(lat.P50-direct.P50), signedMS(lat.P99-direct.P99)
			}
			if l.Stream {
				t := summarize(x.Out.TTFT)
				ttft = ms(t.P50)
				if c != caseDirect {
					addTTFT = signedMS(t.P50 - directTTFT.P50)
				}
			}
			errs := strconv.Itoa(x.Out.Errors)
			if x.Lost > 0 {
				errs += fmt.Sprintf(" (+%.0f unpublished)", x.Lost)
			}
			peak, cpu := mb(x.Peak), ms(x.cpuPerRequest())
			if c == caseSplit {
				peak += " + " + mb(x.PeakMon) + " mon"
				cpu += " + " + ms(x.monitorCPUPerRequest()) + " mon"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				l, caseNames[c], tput, ms(lat.P50), ms(lat.P90), ms(lat.P99), ms(lat.P999), addP50, addP99, ttft, addTTFT, errs, peak, cpu)
		}
	}
	return b.String()
}

// find returns the cells of the load equal to l, or nil when the plan has none.
func (r *report) find(l loadSpec) *[numCases]*cell {
	for i, x := range r.Results.Plan.Loads {
		if x == l {
			return &r.Results.Cells[i]
		}
	}
	return nil
}

// target is one line of the targets table.
type targetCheck struct {
	What, Bound, Measured, Verdict string
	Met                            bool
}

func verdictRatio(measured, bound float64, atMost bool) (string, bool) {
	if atMost {
		if measured <= bound {
			return fmt.Sprintf("pass (%.0f%% headroom)", (1-measured/bound)*100), true
		}
		return fmt.Sprintf("**MISS** by %.0f%%", (measured/bound-1)*100), false
	}
	if measured >= bound {
		return fmt.Sprintf("pass (%.0f%% above)", (measured/bound-1)*100), true
	}
	return fmt.Sprintf("**MISS** by %.0f%%", (1-measured/bound)*100), false
}

func verdictAbs(measured, bound time.Duration) (string, bool) {
	if measured <= bound {
		return fmt.Sprintf("pass (%s ms headroom)", ms(bound-measured)), true
	}
	return fmt.Sprintf("**MISS** by %s ms", ms(measured-bound)), false
}

// targets checks the targets against this run.
func (r *report) targets() []targetCheck {
	var out []targetCheck
	missing := func(what, bound string) {
		out = append(out, targetCheck{What: what, Bound: bound, Measured: "not measured in this run", Verdict: "—"})
	}
	open1k := r.find(loadSpec{Rate: 1000})
	open1kS := r.find(loadSpec{Rate: 1000, Stream: true})
	c32 := r.find(loadSpec{Concurrency: 32})
	gw := []int{caseGateway, caseSplit}
	if open1k != nil {
		b := open1k[caseProxy].cpuPerRequest()
		for _, c := range gw {
			bound, what := 2.0, "CPU/request, full path, monitors in process (c) vs bare proxy (b), open 1000/s"
			if c == caseSplit {
				bound, what = 1.6, "CPU/request of the gateway process, monitors apart (d) vs (b), open 1000/s"
			}
			ratio := float64(open1k[c].cpuPerRequest()) / float64(max(b, 1))
			v, ok := verdictRatio(ratio, bound, true)
			out = append(out, targetCheck{what, fmt.Sprintf("≤ %.1f×", bound), fmt.Sprintf("%.2f× (%s vs %s ms)", ratio, ms(open1k[c].cpuPerRequest()), ms(b)), v, ok})
		}
		dl := summarize(open1k[caseDirect].Out.Latency)
		pl := summarize(open1k[caseProxy].Out.Latency)
		for _, c := range gw {
			gl := summarize(open1k[c].Out.Latency)
			for _, q := range []struct {
				name           string
				g, p, d, slack time.Duration
			}{{"p50", gl.P50, pl.P50, dl.P50, 150 * time.Microsecond}, {"p99", gl.P99, pl.P99, dl.P99, 500 * time.Microsecond}} {
				bound := q.p - q.d + q.slack
				v, ok := verdictAbs(q.g-q.d, bound)
				out = append(out, targetCheck{fmt.Sprintf("added %s over direct, %s, open 1000/s", q.name, caseNames[c]),
					fmt.Sprintf("≤ b's %s + %s = %s ms", signedMS(q.p-q.d), ms(q.slack), ms(bound)), signedMS(q.g-q.d) + " ms", v, ok})
			}
			errs := open1k[c].Out.Errors
			out = append(out, targetCheck{"errors at open 1000/s, " + caseNames[c], "0", strconv.Itoa(errs), passIf(errs == 0 && open1k[c].Lost == 0), errs == 0 && open1k[c].Lost == 0})
		}
		for _, c := range gw {
			peak := open1k[c].FirstPeak
			if open1kS != nil {
				peak = max(peak, open1kS[c].FirstPeak)
			}
			v, ok := verdictRatio(float64(peak)/(1<<20), 150, true)
			out = append(out, targetCheck{"peak RSS at 1000/s (first round, before c=128 and 2000/s), gateway process of " + caseNames[c], "≤ 150 MB", mb(peak) + " MB", v, ok})
		}
	} else {
		missing("CPU/request (c) and (d) vs (b), open 1000/s", "≤ 2.0× / ≤ 1.6×")
		missing("added latency over direct at open 1000/s", "≤ b + 0.15 ms p50, + 0.5 ms p99")
		missing("peak RSS at 1000/s", "≤ 150 MB")
	}
	if c32 != nil {
		b := c32[caseProxy].throughput()
		for _, c := range gw {
			ratio := c32[c].throughput() / max(b, 1)
			v, ok := verdictRatio(ratio, 0.5, false)
			out = append(out, targetCheck{"throughput, closed c=32 plain, " + caseNames[c] + " vs b", "≥ 0.5×", fmt.Sprintf("%.2f× (%.0f vs %.0f req/s)", ratio, c32[c].throughput(), b), v, ok})
		}
	} else {
		missing("throughput at c=32 vs bare proxy", "≥ 0.5×")
	}
	if open1kS != nil {
		d := summarize(open1kS[caseDirect].Out.TTFT).P50
		p := summarize(open1kS[caseProxy].Out.TTFT).P50
		for _, c := range gw {
			g := summarize(open1kS[c].Out.TTFT).P50
			bound := p - d + 300*time.Microsecond
			v, ok := verdictAbs(g-d, bound)
			out = append(out, targetCheck{"added TTFT p50, open 1000/s stream, " + caseNames[c], fmt.Sprintf("≤ b's %s + 0.3 = %s ms", signedMS(p-d), ms(bound)), signedMS(g-d) + " ms", v, ok})
		}
	} else {
		missing("added TTFT p50 at open 1000/s stream", "≤ b + 0.3 ms")
	}
	streamErrs, streams := 0, 0
	for li, l := range r.Results.Plan.Loads {
		if l.Stream {
			for _, c := range gw {
				streamErrs += r.Results.Cells[li][c].Out.Errors
				streams += r.Results.Cells[li][c].Out.Sent
			}
		}
	}
	out = append(out, targetCheck{"streams through the gateway: every chunk boundary and the order kept (each stream compared chunk by chunk)", "0 bad streams",
		fmt.Sprintf("%d bad of %d", streamErrs, streams), passIf(streamErrs == 0 && streams > 0), streamErrs == 0 && streams > 0})
	if r.Decide.Calls > 0 {
		v, ok := verdictRatio(float64(r.Decide.Dist.P50), float64(50*time.Microsecond), true)
		out = append(out, targetCheck{"Decide p50 on one core, demo policy, default engine (memo as configured)", "≤ 50 µs", us(r.Decide.Dist.P50) + " µs", v, ok})
	}
	out = append(out, targetCheck{"no RSS growth over a 10-minute soak at 1000/s", "no growth", "see the Soak section (`make soak`)", "—", true})
	return out
}

func passIf(ok bool) string {
	if ok {
		return "pass"
	}
	return "**MISS**"
}

func us(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64)
}

// latest renders the section the harness owns.
func (r *report) latest() string {
	var b strings.Builder
	b.WriteString("## Latest run\n\n")
	if r.Quick {
		b.WriteString("**Quick smoke run: short windows, too few samples for the numbers to mean much.**\n\n")
	}
	b.WriteString(r.Machine.markdown())
	p := r.Results.Plan
	fmt.Fprintf(&b, "- **Plan:** %d round(s); each load runs a b c d in turn per round; windows of %s (1 s answer loads: %s of schedule), %s unmeasured warm-up before each (%s for 1 s answer loads)\n\n",
		p.Rounds, p.Duration, p.SlowDuration, p.Warmup, p.SlowWarmup)
	b.WriteString("### Targets\n\n| target | bound | measured | verdict |\n|---|---|---|---|\n")
	met, total := 0, 0
	for _, t := range r.targets() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.What, t.Bound, t.Measured, t.Verdict)
		if t.Verdict != "—" {
			total++
			if t.Met {
				met++
			}
		}
	}
	fmt.Fprintf(&b, "\n%d of %d measured targets met.\n\n", met, total)

	b.WriteString("### Results\n\n")
	b.WriteString("Latencies in ms at the client; open-loop latency counts from each request's scheduled send time. " +
		"`✗` marks an open-loop rate the case did not sustain (throughput under 95% of the rate, an error, or p99 more than 100 ms over the answer's own delay). " +
		"Server CPU is utime+stime of the server process from /proc over the window (for c and d including the wait until the monitors caught up), per answered request; " +
		"d shows the gateway process and the monitor process separately. Peak RSS is VmHWM, reset before each window.\n\n")
	b.WriteString(r.resultsTable())
	b.WriteString("\n")
	if s := r.sustainedSummary(); s != "" {
		b.WriteString(s + "\n")
	}
	if len(r.Results.Discarded) > 0 {
		b.WriteString("Groups measured again because the reference (direct calls) was disturbed:\n\n")
		for _, d := range r.Results.Discarded {
			fmt.Fprintf(&b, "- %s\n", d)
		}
		b.WriteString("\n")
	}
	var notes []string
	for li, l := range p.Loads {
		for c := range numCases {
			x := r.Results.Cells[li][c]
			for _, s := range x.Out.Sample {
				notes = append(notes, fmt.Sprintf("%s, %s: %s", l, caseNames[c], s))
			}
			for _, s := range x.Notes {
				notes = append(notes, fmt.Sprintf("%s, %s: %s", l, caseNames[c], s))
			}
		}
	}
	if len(notes) > 0 {
		b.WriteString("Errors and notes (first few per cell):\n\n")
		for i, n := range notes {
			if i == 30 {
				fmt.Fprintf(&b, "- … and %d more\n", len(notes)-30)
				break
			}
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}

	b.WriteString("### Policy decision\n\n")
	b.WriteString("`Decide` of the built-in demo policy, timed call by call with GOMAXPROCS=1 on 256 distinct realistic inputs, in the harness process before the servers start.\n\n")
	b.WriteString("| engine | calls | p50 µs | p90 µs | p99 µs | mean µs | allocs/call | memo hits |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, d := range []struct {
		name string
		r    decideResult
	}{{"default (memo as configured)", r.Decide}, {"memo off (fresh evaluation)", r.DecideFresh}} {
		if d.r.Calls == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %.0f | %.0f%% |\n", d.name, d.r.Calls, us(d.r.Dist.P50), us(d.r.Dist.P90), us(d.r.Dist.P99), us(d.r.Dist.Mean), d.r.Allocs, d.r.MemoHits*100)
	}
	b.WriteString("\n")
	if len(r.Micro) > 0 {
		b.WriteString("### Go micro-benchmarks\n\n")
		b.WriteString("From `go test -run '^$' -bench . -benchmem ./...` (the full output, benchstat-comparable, is in `bin/bench/micro.txt`).\n\n")
		b.WriteString(microTable(r.Micro))
		b.WriteString("\n")
	}
	if r.Profile != "" {
		b.WriteString("### Profile of the gateway under load\n\n")
		b.WriteString(r.Profile)
		b.WriteString("\n")
	}
	return b.String()
}

// sustainedSummary names the highest open-loop rate each case sustained.
func (r *report) sustainedSummary() string {
	var parts []string
	for _, stream := range []bool{false, true} {
		for c := range numCases {
			best, tried := 0.0, false
			for li, l := range r.Results.Plan.Loads {
				if l.Rate > 0 && !l.Slow && l.Stream == stream {
					tried = true
					if r.Results.Cells[li][c].sustained(l) {
						best = max(best, l.Rate)
					}
				}
			}
			if !tried {
				continue
			}
			kind := "plain"
			if stream {
				kind = "stream"
			}
			parts = append(parts, fmt.Sprintf("%s %s: %g/s", caseNames[c], kind, best))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "Highest open-loop rate sustained (of those tried): " + strings.Join(parts, "; ") + ".\n"
}

// historyLine is the one-line summary appended to the history.
func (r *report) historyLine() string {
	var parts []string
	if c32 := r.find(loadSpec{Concurrency: 32}); c32 != nil {
		parts = append(parts, fmt.Sprintf("c=32 plain b/c/d %.0f/%.0f/%.0f req/s", c32[caseProxy].throughput(), c32[caseGateway].throughput(), c32[caseSplit].throughput()))
	}
	if o := r.find(loadSpec{Rate: 1000}); o != nil {
		d := summarize(o[caseDirect].Out.Latency)
		parts = append(parts, fmt.Sprintf("CPU/req at 1000/s b/c/d %s/%s/%s ms", ms(o[caseProxy].cpuPerRequest()), ms(o[caseGateway].cpuPerRequest()), ms(o[caseSplit].cpuPerRequest())))
		parts = append(parts, fmt.Sprintf("added p50 b/c/d %s/%s/%s ms", ms(summarize(o[caseProxy].Out.Latency).P50-d.P50),
			ms(summarize(o[caseGateway].Out.Latency).P50-d.P50), ms(summarize(o[caseSplit].Out.Latency).P50-d.P50)))
		parts = append(parts, fmt.Sprintf("peak RSS c %s MB", mb(o[caseGateway].Peak)))
	}
	if r.Decide.Calls > 0 {
		parts = append(parts, fmt.Sprintf("Decide p50 %s µs (fresh %s µs)", us(r.Decide.Dist.P50), us(r.DecideFresh.Dist.P50)))
	}
	met, total := 0, 0
	for _, t := range r.targets() {
		if t.Verdict != "—" {
			total++
			if t.Met {
				met++
			}
		}
	}
	parts = append(parts, fmt.Sprintf("targets met %d/%d", met, total))
	kind := ""
	if r.Quick {
		kind = " (quick)"
	}
	return fmt.Sprintf("- %s%s, commit %s, `%s`, load average %s → %s: %s.", r.Machine.Date.Format("2006-01-02 15:04 MST"), kind, orDash(r.Machine.Commit),
		r.Machine.Command, firstField(r.Machine.LoadStart), firstField(r.Machine.LoadEnd), strings.Join(parts, "; "))
}

// firstField is the 1-minute figure of a load average, or "—".
func firstField(load string) string {
	if f := strings.Fields(load); len(f) > 0 {
		return f[0]
	}
	return "—"
}

// updateFile rewrites the section between begin and end in the report file
// (creating the file from the skeleton when missing) and appends line to the
// history.
func updateFile(path, begin, end, section, historyLine string) error {
	raw, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(raw)
	if strings.TrimSpace(doc) == "" {
		doc = skeleton
	}
	block := begin + "\n" + section + end
	if i, j := strings.Index(doc, begin), strings.Index(doc, end); i >= 0 && j > i {
		doc = doc[:i] + block + doc[j+len(end):]
	} else if h := strings.Index(doc, historyHeading); h >= 0 {
		doc = doc[:h] + block + "\n\n" + doc[h:]
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + block + "\n"
	}
	if !strings.Contains(doc, historyHeading) {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + historyHeading + "\n"
	}
	if historyLine != "" {
		doc = strings.TrimRight(doc, "\n") + "\n" + historyLine + "\n"
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

const skeleton = `# Benchmarks

Measured by the harness in ` + "`cmd/stagegate-bench`" + ` (` + "`make bench`" + `); the sections between the
stagegate-bench markers are rewritten by each run, the history below is appended to.

` + historyHeading + `
`

// microResult is one line of go test -bench output.
type microResult struct {
	Pkg, Name               string
	NsOp, BytesOp, AllocsOp float64
	HasMem                  bool
}

// parseMicro reads `go test -bench -benchmem` output.
func parseMicro(raw []byte) []microResult {
	var out []microResult
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/stagegate/stagegate/")
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		m := microResult{Pkg: pkg, Name: f[0]}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				m.NsOp = v
			case "B/op":
				m.BytesOp, m.HasMem = v, true
			case "allocs/op":
				m.AllocsOp = v
			}
		}
		if m.NsOp > 0 {
			out = append(out, m)
		}
	}
	return out
}

// hotPath are the packages whose micro-benchmarks the report shows: the request
// path (the full output has every package's).
var hotPath = map[string]bool{"gateway": true, "policies": true, "deploy": true, "events": true, "sandbox": true}

func microTable(ms []microResult) string {
	var b strings.Builder
	b.WriteString("| package | benchmark | ns/op | B/op | allocs/op |\n|---|---|--:|--:|--:|\n")
	other := 0
	for _, m := range ms {
		if !hotPath[m.Pkg] {
			other++
			continue
		}
		mem, allocs := "—", "—"
		if m.HasMem {
			mem, allocs = strconv.FormatFloat(m.BytesOp, 'f', 0, 64), strconv.FormatFloat(m.AllocsOp, 'f', 0, 64)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", m.Pkg, m.Name, strconv.FormatFloat(m.NsOp, 'f', -1, 64), mem, allocs)
	}
	if other > 0 {
		fmt.Fprintf(&b, "\n(%d benchmarks of other packages are in the full output.)\n", other)
	}
	return b.String()
}
