package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The fuzz mode runs each fuzz target for a bounded time (`go test -fuzz`,
// never part of `make test`) and writes FUZZ.md: per target, how long it ran,
// how many inputs it tried, how much new coverage it found and whether it
// failed (with the failing input's path, which go test saves under the
// package's testdata/fuzz so it becomes a regression seed).

// fuzzResult is one target's run.
type fuzzResult struct {
	Pkg, Name   string
	Elapsed     string // as go test last reported it
	Execs       int64
	Interesting int64 // new interesting inputs in this run
	Corpus      int64 // total corpus (seeds, testdata and cache) at the end
	Passed      bool
	Failure     string // the failing input's path or the last error line
}

// fuzzProgress is go test's periodic fuzzing line.
var fuzzProgress = regexp.MustCompile(`fuzz: elapsed: (\S+), execs: (\d+) \([^)]*\), new interesting: (\d+) \(total: (\d+)\)`)

// parseFuzzOutput reads the output of one `go test -fuzz` run.
func parseFuzzOutput(pkg, name, out string, runErr error) fuzzResult {
	r := fuzzResult{Pkg: pkg, Name: name, Passed: runErr == nil}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if m := fuzzProgress.FindStringSubmatch(line); m != nil {
			r.Elapsed = strings.TrimSuffix(m[1], ",")
			r.Execs, _ = strconv.ParseInt(m[2], 10, 64)
			r.Interesting, _ = strconv.ParseInt(m[3], 10, 64)
			r.Corpus, _ = strconv.ParseInt(m[4], 10, 64)
		}
		if !r.Passed {
			switch {
			case strings.HasPrefix(line, "Failing input written to "):
				r.Failure = strings.TrimPrefix(line, "Failing input written to ")
			case r.Failure == "" && (strings.Contains(line, "panic:") || strings.HasPrefix(line, "--- FAIL")):
				r.Failure = line
			}
		}
	}
	if !r.Passed && r.Failure == "" && runErr != nil {
		r.Failure = runErr.Error()
	}
	return r
}

func fuzzMarkdown(m machine, fuzztime time.Duration, rs []fuzzResult) string {
	var b strings.Builder
	b.WriteString("# Fuzzing\n\nWritten by `make fuzz` (`stagegate-bench fuzz`): every parser of outside input runs under\n")
	b.WriteString("`go test -fuzz` for a bounded time, seeded from `f.Add` and `testdata/fuzz/<target>/`. A failing\n")
	b.WriteString("input is saved there by go test, so it stays a regression test of `make test`.\n\n")
	b.WriteString(m.markdown())
	fmt.Fprintf(&b, "- **Time per target:** %s\n\n", fuzztime)
	b.WriteString("| package | target | ran | inputs tried | new interesting | corpus at end | result |\n|---|---|--:|--:|--:|--:|---|\n")
	failed := 0
	var execs int64
	for _, r := range rs {
		res := "pass"
		if !r.Passed {
			res, failed = "**FAIL**: "+r.Failure, failed+1
		}
		execs += r.Execs
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %d | %d | %d | %s |\n", r.Pkg, r.Name, orDash(r.Elapsed), r.Execs, r.Interesting, r.Corpus, res)
	}
	fmt.Fprintf(&b, "\n%d targets, %d inputs in all, %d failed.\n", len(rs), execs, failed)
	return b.String()
}

func cmdFuzz(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fuzztime := fs.Duration("fuzztime", 20*time.Second, "how long each target runs")
	out := fs.String("out", "FUZZ.md", "report file to write")
	command := fs.String("command", "", "the command to record in the report (default: this command line)")
	goBin := fs.String("go", "go", "the go command")
	fs.Usage = func() {
		fmt.Fprint(stderr, "stagegate-bench fuzz [flags] PKG:Target ... — run each fuzz target for --fuzztime and write the report\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *fuzztime <= 0 {
		return errors.New("name at least one PKG:Target and a positive --fuzztime")
	}
	if *command == "" {
		*command = strings.Join(append([]string{"stagegate-bench", "fuzz"}, args...), " ")
	}
	m := describeMachine(*command)
	var rs []fuzzResult
	for _, t := range fs.Args() {
		pkg, name, ok := strings.Cut(t, ":")
		if !ok || pkg == "" || name == "" {
			return fmt.Errorf("target %q: want PKG:Target, e.g. ./gateway:FuzzDecodeChatRequest", t)
		}
		fmt.Fprintf(stdout, "== %s (%s)\n", name, pkg)
		cmd := exec.CommandContext(ctx, *goBin, "test", "-run", "^$", "-fuzz", "^"+name+"$", "-fuzztime", fuzztime.String(), pkg)
		raw, err := cmd.CombinedOutput()
		_, _ = stdout.Write(raw)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rs = append(rs, parseFuzzOutput(pkg, name, string(raw), err))
	}
	m.LoadEnd = loadavg()
	if err := os.WriteFile(*out, []byte(fuzzMarkdown(m, *fuzztime, rs)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	for _, r := range rs {
		if !r.Passed {
			return fmt.Errorf("fuzz target %s (%s) failed: %s", r.Name, r.Pkg, r.Failure)
		}
	}
	return nil
}
