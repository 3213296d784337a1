// Command stagegate-bench is Stagegate's benchmark harness (`make bench`). On
// loopback, in one run, it starts the simulator (a fixed short answer, and a
// variant answering after 1 s) and measures side by side, interleaved a b c d per
// round: (a) direct calls to the simulator, (b) a minimal httputil.ReverseProxy
// in front of it, (c) `stagegate up` with the full path on and the monitors in
// the same process, (d) the same with the monitors in a separate `stagegate
// monitor` process. Each server is its own process, so its CPU (utime+stime) and
// peak RSS (VmHWM) come from /proc. Every answer is checked, not just its status.
// Results, the targets of issue 3 and a history line go to BENCHMARKS.md.
//
// Sub-commands: `soak` (a long open-loop run against (c) with RSS sampled),
// `profile` (CPU and heap profiles of (c) under load), and `proxy` (case (b),
// started by the harness itself).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "proxy":
		err = runProxy(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "soak":
		err = cmdSoak(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "profile":
		err = cmdProfile(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "fuzz":
		err = cmdFuzz(ctx, args[1:], stdout, stderr)
	default:
		err = cmdBench(ctx, args, stdout, stderr)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(stderr, "stagegate-bench: %v\n", err)
		return 1
	}
}

// common are the flags every mode that starts servers takes.
type common struct {
	stagegate string
	workDir   string
	keep      bool
	command   string
	// dupWindow sets nats.duplicate_window of the gateways under test (0: the default).
	dupWindow time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.stagegate, "stagegate", "", "the stagegate binary to run (default: go build it into the work dir)")
	fs.StringVar(&c.workDir, "work-dir", "", "where data dirs and configs go (default: a new temp dir, removed at the end)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work dir")
	fs.StringVar(&c.command, "command", "", "the command to record in the report (default: this command line)")
	fs.DurationVar(&c.dupWindow, "duplicate-window", 0, "nats.duplicate_window of the gateways under test (default: Stagegate's default)")
}

// benchOptions configure one harness run.
type benchOptions struct {
	common
	Out             string
	Micro           string
	Quick           bool
	Plan            plan
	ProfileDir      string
	ProfileDuration time.Duration
	DecideCalls     int
}

// quickOptions are the defaults of --quick: a smoke run of a few seconds.
func quickOptions() benchOptions {
	return benchOptions{
		Quick: true,
		Plan: plan{Loads: quickLoads(), Rounds: 1, Duration: 400 * time.Millisecond, SlowDuration: 400 * time.Millisecond,
			Warmup: 100 * time.Millisecond, DrainTimeout: time.Minute, Retries: 1},
		ProfileDuration: 2 * time.Second,
		DecideCalls:     2000,
	}
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stagegate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchOptions
	o.register(fs)
	fs.StringVar(&o.Out, "out", "BENCHMARKS.md", "report file to update")
	fs.StringVar(&o.Micro, "micro", "", "output of go test -bench -benchmem to summarise in the report")
	fs.BoolVar(&o.Quick, "quick", false, "smoke run: three loads, one short round")
	dur := fs.Duration("duration", 1500*time.Millisecond, "measured window per load and case")
	slowDur := fs.Duration("slow-duration", 2*time.Second, "schedule length of the 1 s answer loads")
	warm := fs.Duration("warmup", 300*time.Millisecond, "unmeasured load before each window")
	slowWarm := fs.Duration("slow-warmup", time.Second, "unmeasured load before each 1 s answer window")
	rounds := fs.Int("rounds", 2, "rounds (each runs every load against a b c d in turn)")
	retries := fs.Int("retries", 1, "how often a load's four windows are measured again when direct calls (the reference) failed or fell behind")
	fs.StringVar(&o.ProfileDir, "profile", "", "also write CPU, heap and allocation profiles of gateway (c) under load to this dir")
	fs.DurationVar(&o.ProfileDuration, "profile-duration", 10*time.Second, "length of the profiled load")
	fs.IntVar(&o.DecideCalls, "decide-calls", 20000, "timed Decide calls")
	fs.Usage = func() {
		fmt.Fprint(stderr, `stagegate-bench — measure Stagegate against the simulator and a bare Go proxy, on loopback.

Usage:
  stagegate-bench [flags]           the benchmark (make bench); updates --out
  stagegate-bench soak [flags]      a long open-loop run against the full gateway, RSS sampled (make soak)
  stagegate-bench profile [flags]   CPU and heap profiles of the gateway under load (make profile)
  stagegate-bench fuzz [flags] PKG:Target ...   each fuzz target for a bounded time; writes FUZZ.md (make fuzz)

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.Plan = plan{Loads: fullLoads(), Rounds: *rounds, Duration: *dur, SlowDuration: *slowDur, Warmup: *warm, SlowWarmup: *slowWarm, DrainTimeout: 2 * time.Minute, Retries: *retries}
	if o.Quick {
		q := quickOptions()
		o.Plan.Loads = q.Plan.Loads
		for name, v := range map[string]func(){
			"duration": func() { o.Plan.Duration = q.Plan.Duration }, "slow-duration": func() { o.Plan.SlowDuration = q.Plan.SlowDuration },
			"warmup": func() { o.Plan.Warmup = q.Plan.Warmup }, "slow-warmup": func() { o.Plan.SlowWarmup = q.Plan.SlowWarmup }, "rounds": func() { o.Plan.Rounds = q.Plan.Rounds },
			"decide-calls": func() { o.DecideCalls = q.DecideCalls }, "profile-duration": func() { o.ProfileDuration = q.ProfileDuration },
		} {
			if !set[name] {
				v()
			}
		}
	}
	if o.Plan.Rounds < 1 || o.Plan.Duration <= 0 || o.Plan.SlowDuration <= 0 || o.Plan.Warmup < 0 || o.DecideCalls < 100 {
		return errors.New("want --rounds ≥ 1, positive durations and --decide-calls ≥ 100")
	}
	if o.command == "" {
		o.command = strings.Join(append([]string{"stagegate-bench"}, args...), " ")
	}
	rep, err := runBench(ctx, o, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s\nwrote %s\n", rep.historyLine(), o.Out)
	return nil
}

// prepare makes the work dir and finds or builds the binaries.
func (c *common) prepare(ctx context.Context) (dir, bin, self string, cleanup func(), err error) {
	checkClockTicks()
	dir = c.workDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "stagegate-bench-"); err != nil {
			return "", "", "", nil, err
		}
	} else if err = os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", nil, err
	}
	cleanup = func() {
		if !c.keep && c.workDir == "" {
			_ = os.RemoveAll(dir)
		}
	}
	bin = c.stagegate
	if bin == "" {
		if bin, err = buildStagegate(ctx, dir); err != nil {
			cleanup()
			return "", "", "", nil, err
		}
	}
	if self, err = os.Executable(); err != nil {
		cleanup()
		return "", "", "", nil, err
	}
	return dir, bin, self, cleanup, nil
}

// runBench is the whole benchmark: Decide on a quiet machine first, then the
// servers, the rounds, the optional profile, and the report.
func runBench(ctx context.Context, o benchOptions, log io.Writer) (*report, error) {
	dir, bin, self, cleanup, err := o.prepare(ctx)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rep := &report{Machine: describeMachine(o.command), Quick: o.Quick}
	if rep.Decide, err = measureDecide(ctx, o.DecideCalls, 0); err != nil {
		return nil, fmt.Errorf("decide: %w", err)
	}
	if rep.DecideFresh, err = measureDecide(ctx, o.DecideCalls, -1); err != nil {
		return nil, fmt.Errorf("decide without memo: %w", err)
	}
	fmt.Fprintf(log, "Decide p50 %s µs (memo hits %.0f%%), without memo %s µs\n", us(rep.Decide.Dist.P50), rep.Decide.MemoHits*100, us(rep.DecideFresh.Dist.P50))
	if o.Micro != "" {
		raw, err := os.ReadFile(o.Micro)
		if err != nil {
			return nil, fmt.Errorf("--micro: %w", err)
		}
		rep.Micro = parseMicro(raw)
	}
	e, err := startEnv(ctx, dir, bin, self, log, o.dupWindow)
	if err != nil {
		return nil, err
	}
	defer e.stop()
	fmt.Fprintf(log, "servers up in %s; %d loads × %d cases × %d rounds\n", dir, len(o.Plan.Loads), numCases, o.Plan.Rounds)
	if rep.Results, err = measureAll(ctx, e, o.Plan, func(s string) { fmt.Fprintln(log, s) }); err != nil {
		return nil, err
	}
	rep.Machine.LoadEnd = loadavg()
	if o.ProfileDir != "" {
		fmt.Fprintf(log, "profiling gateway (c) for %s\n", o.ProfileDuration)
		if rep.Profile, err = profileGateway(ctx, e, caseGateway, o.ProfileDir, o.ProfileDuration); err != nil {
			return nil, err
		}
	}
	if err := updateFile(o.Out, markLatestBegin, markLatestEnd, rep.latest(), rep.historyLine()); err != nil {
		return nil, err
	}
	return rep, nil
}

func cmdSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	out := fs.String("out", "BENCHMARKS.md", "report file to update")
	rate := fs.Float64("rate", 1000, "requests per second (open loop, plain, against gateway (c))")
	d := fs.Duration("duration", 10*time.Minute, "how long")
	every := fs.Duration("every", 10*time.Second, "RSS sampling interval")
	profDir := fs.String("profile", "", "save heap profiles of the gateway after 1 minute and at the end into this dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *d <= 0 || *every <= 0 || *every > *d {
		return errors.New("want a positive --rate and --duration, and 0 < --every ≤ --duration")
	}
	if c.command == "" {
		c.command = strings.Join(append([]string{"stagegate-bench", "soak"}, args...), " ")
	}
	dir, bin, self, cleanup, err := c.prepare(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	e, err := startEnv(ctx, dir, bin, self, stdout, c.dupWindow)
	if err != nil {
		return err
	}
	defer e.stop()
	m := describeMachine(c.command)
	res, err := runSoakLoad(ctx, e, *rate, *d, *every, *profDir, func(s string) { fmt.Fprintln(stdout, s) })
	if err != nil {
		return err
	}
	m.LoadEnd = loadavg()
	if err := updateFile(*out, markSoakBegin, markSoakEnd, res.markdown(m), res.historyLine(m)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\nwrote %s\n", res.historyLine(m), *out)
	return nil
}

func cmdProfile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	dir := fs.String("dir", "bin/bench/profiles", "where the profiles go")
	d := fs.Duration("duration", 20*time.Second, "length of the profiled load")
	which := fs.String("case", "c", "the gateway to profile: c (monitors in process) or d (monitors apart)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	gw := caseGateway
	switch *which {
	case "c":
	case "d":
		gw = caseSplit
	default:
		return fmt.Errorf("--case %q: want c or d", *which)
	}
	work, bin, self, cleanup, err := c.prepare(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	e, err := startEnv(ctx, work, bin, self, stdout, c.dupWindow)
	if err != nil {
		return err
	}
	defer e.stop()
	// Warm the pools and the JIT-free Go runtime alike before profiling.
	_ = loadSpec{Concurrency: 32}.run(ctx, e.targets[gw][0], time.Second, e.chk, e.bodies[0])
	summary, err := profileGateway(ctx, e, gw, *dir, *d)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, summary)
	return nil
}
