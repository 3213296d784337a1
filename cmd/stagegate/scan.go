package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/stagegate/stagegate/monitors/offline"
	"github.com/stagegate/stagegate/monitors/suite"
)

func init() {
	register(command{name: "scan", order: 40, run: cmdScan, summary: "run the risk detectors over JSON lines (files or stdin) and print\none JSON line of findings per input line"})
}

func cmdScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	disable := fs.String("disable", "", "comma-separated detectors to leave out (known: "+strings.Join(suite.Names(), ", ")+")")
	only := fs.String("only", "", "comma-separated detectors to run (default all)")
	maxLine := fs.Int("max-line-bytes", offline.DefaultMaxLineBytes, "longest accepted input line; longer lines are rejected")
	timings := fs.Bool("timings", false, `add "timings_us" (per detector and "total", in microseconds) to every output line`)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `stagegate scan [flags] [FILE...] — run the risk detectors offline.

Reads JSON lines from each FILE in order, or from standard input when no FILE
(or "-") is given. Each line is an object with "prompt", "response" and an
optional "id" (string or number; other fields are ignored). Writes one JSON
line per input line to standard output:

  {"id": ..., "findings": [{"detector", "category", "severity", "score",
    "spans": [{"field": "prompt"|"response", "start", "end", "kind"}],
    "explanation"}]}

Span offsets "start" and "end" count Unicode code points (not bytes) of the
field's text, end exclusive. category is one of pii, prompt_injection,
jailbreak, toxicity, unsafe_advice. Lines without an id get "FILE:LINE".

A bad line (not JSON, longer than --max-line-bytes, no prompt or response) is
reported on standard error as FILE:LINE: reason and skipped; scanning goes on
and the exit status is 1 at the end. Usage errors exit with 2.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	cfg := suite.Config{Disable: splitList(*disable)}
	if *only != "" {
		keep := splitList(*only)
		for _, n := range keep {
			if !contains(suite.Names(), n) {
				fmt.Fprintf(stderr, "--only: unknown detector %q (known: %s)\n", n, strings.Join(suite.Names(), ", "))
				return errUsage
			}
		}
		for _, n := range suite.Names() {
			if !contains(keep, n) {
				cfg.Disable = append(cfg.Disable, n)
			}
		}
	}
	dets, err := suite.Default(cfg, suite.Deps{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	if len(dets) == 0 {
		fmt.Fprintln(stderr, "no detector left to run")
		return errUsage
	}
	sc, err := offline.New(offline.Config{MaxLineBytes: *maxLine, Timings: *timings}, dets, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	var srcs []offline.Source
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, name := range files {
		if name == "-" {
			srcs = append(srcs, offline.Source{Name: "-", R: os.Stdin})
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		srcs = append(srcs, offline.Source{Name: name, R: f})
	}
	_, err = sc.Run(ctx, srcs, stdout, stderr)
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
