package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/policies/replay"
	"github.com/stagegate/stagegate/policies/trial"
	"github.com/stagegate/stagegate/sandbox"
)

func init() {
	register(command{name: "policy", order: 30, run: cmdPolicy, summary: "test a trial policy (Rego tests + decision corpus), or replay a candidate\npolicy on the trial's recorded traffic: test DIR | replay --trial ID --policy DIR"})
}

const policyAbout = `stagegate policy — write, test and preview a trial's policy.

  stagegate policy test DIR [--corpus FILE]... [-v] [--run REGEX] [--json]
  stagegate policy replay --trial ID --policy DIR [--since 24h] [--json]
                          [--data-dir DIR | --nats URL]

test    compiles the policy folder DIR (or builtin:NAME), runs its Rego unit
        tests (*_test.rego) with OPA's test runner, and decides every case of
        its decision corpus (*.corpus.yaml in DIR, plus --corpus files). Exit
        status 1 when anything fails.
replay  decides the trial's recorded interactions again with the policy in
        --policy and shows what would change: allowed→denied, denied→allowed,
        route and obligation changes, with example interaction ids.`

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runActions(ctx, "policy", policyAbout, map[string]action{
		"test":   policyTest,
		"replay": policyReplay,
	}, args, stdout, stderr)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// policyRoot opens a policy folder, or a built-in policy named builtin:NAME.
func policyRoot(ref string) (fs.FS, error) {
	if name, ok := strings.CutPrefix(ref, trial.BuiltinPrefix); ok {
		sub, err := fs.Sub(policies.Builtin(), "rego/"+name)
		if err == nil {
			_, err = fs.Stat(sub, ".")
		}
		if err != nil || name == "" {
			return nil, fmt.Errorf("no built-in policy %q (try builtin:demo or builtin:standard)", name)
		}
		return sub, nil
	}
	st, err := os.Stat(ref)
	if err != nil {
		return nil, fmt.Errorf("policy folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("policy %s: not a folder", ref)
	}
	return policies.LoadDir(ref), nil
}

// interspersed parses flags that may come before or after one positional
// argument (stagegate policy test DIR -v, or -v DIR).
func interspersed(fset *flag.FlagSet, args []string, stderr io.Writer, about string) (string, error) {
	var pos []string
	for {
		if err := parseFlagsOnly(fset, args, stderr, about); err != nil {
			return "", err
		}
		if fset.NArg() == 0 {
			break
		}
		pos = append(pos, fset.Arg(0))
		args = fset.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "want exactly one policy folder, got %d\n", len(pos))
		fset.Usage()
		return "", errUsage
	}
	return pos[0], nil
}

// parseFlagsOnly is parseFlags without the no-positional-arguments rule.
func parseFlagsOnly(fset *flag.FlagSet, args []string, stderr io.Writer, about string) error {
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", about)
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func policyTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("policy test", flag.ContinueOnError)
	var corpus stringList
	fset.Var(&corpus, "corpus", "a decision corpus file to check besides DIR's *.corpus.yaml (repeatable)")
	verbose := fset.Bool("v", false, "list passing tests and cases too")
	run := fset.String("run", "", "only tests and cases whose name matches this regular expression")
	query := fset.String("query", "", "decision rule (default "+policies.DefaultQuery+")")
	asJSON := fset.Bool("json", false, "print the report as JSON")
	dir, err := interspersed(fset, args, stderr, "stagegate policy test DIR — run a policy's Rego tests and decision corpus.")
	if err != nil {
		return err
	}
	root, err := policyRoot(dir)
	if err != nil {
		return err
	}
	var cases []policies.CorpusCase
	for _, f := range corpus {
		src, err := readBounded(f, policies.MaxCorpusBytes)
		if err != nil {
			return fmt.Errorf("--corpus: %w", err)
		}
		cs, err := policies.ParseCorpus(f, src)
		if err != nil {
			return err
		}
		cases = append(cases, cs...)
	}
	_, rep, err := policies.Check(ctx, policies.CheckConfig{Config: policies.Config{FS: root, Query: *query}, Corpus: cases, Run: *run})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(stdout, *verbose)
	}
	if n := rep.Failures(); n > 0 {
		return fmt.Errorf("%d of %d tests and cases failed", n, len(rep.Tests)+len(rep.Cases))
	}
	return nil
}

// parseWindow reads a --since value: a Go duration (90m, 24h) or days (7d).
func parseWindow(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("--since %q: want a duration such as 24h, 90m or 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--since %q: want a duration such as 24h, 90m or 7d", s)
	}
	return d, nil
}

const replayAbout = `stagegate policy replay — what would a candidate policy have decided?

Reads the trial's recorded interactions from the JetStream INTERACTIONS stream,
decides the policy input recorded with each one again with the candidate policy,
and prints how the decisions would change, with example interaction ids.

Where the interactions come from:
  --nats URL       a NATS server holding the stream: a cluster, or a running
                   sandbox started with nats.listen set (works while it runs).
  --data-dir DIR   a sandbox data dir (default ./.stagegate): the stream's files
                   are copied to a temporary folder first and served from there,
                   so the sandbox's own store is never opened twice; safe while
                   it runs (the copy ends at what is on disk).`

func policyReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("policy replay", flag.ContinueOnError)
	trialID := fset.String("trial", "", "trial id (required)")
	dir := fset.String("policy", "", "candidate policy folder, or builtin:NAME (required)")
	query := fset.String("query", "", "decision rule (default "+policies.DefaultQuery+")")
	sinceFlag := fset.String("since", "24h", "replay interactions recorded in this window up to now (24h, 90m, 7d; 0 = all)")
	asJSON := fset.Bool("json", false, "print the report as JSON")
	natsURL := fset.String("nats", "", "NATS server URL to read the stream from")
	dataDir := fset.String("data-dir", "", "sandbox data dir to snapshot the stream from (default "+sandbox.DefaultDataDir+")")
	workers := fset.Int("workers", 0, "parallel decisions (default: the number of CPUs)")
	if err := parseFlags(fset, args, stderr, replayAbout); err != nil {
		return err
	}
	if *trialID == "" || *dir == "" {
		fmt.Fprintln(stderr, "--trial and --policy are required")
		fset.Usage()
		return errUsage
	}
	if *natsURL != "" && *dataDir != "" {
		return errors.New("use --nats or --data-dir, not both")
	}
	window, err := parseWindow(*sinceFlag)
	if err != nil {
		return err
	}
	root, err := policyRoot(*dir)
	if err != nil {
		return err
	}
	cand, err := policies.New(ctx, policies.Config{FS: root, Query: *query})
	if err != nil {
		return err
	}
	var js jetstream.JetStream
	if *natsURL != "" {
		nc, err := nats.Connect(*natsURL, nats.Name("stagegate-policy-replay"), nats.Timeout(10*time.Second))
		if err != nil {
			return fmt.Errorf("nats %s: %w", *natsURL, err)
		}
		defer nc.Close()
		if js, err = jetstream.New(nc); err != nil {
			return err
		}
	} else {
		if *dataDir == "" {
			*dataDir = sandbox.DefaultDataDir
		}
		snap, err := replay.OpenSnapshot(*dataDir)
		if err != nil {
			return err
		}
		defer snap.Close()
		js = snap.JetStream()
	}
	since := replay.Since(time.Now(), window)
	rep, err := replay.Run(ctx, cand, replay.Interactions(js, *trialID, since), replay.Config{Workers: *workers}, replay.Deps{})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Trial string    `json:"trial"`
			Since time.Time `json:"since,omitzero"`
			*replay.Report
		}{*trialID, since, rep})
	}
	from := "the beginning"
	if !since.IsZero() {
		from = since.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "Replay of trial %s, interactions since %s\n", *trialID, from)
	return rep.WriteTable(stdout)
}
