package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/policies/experiment"
)

func init() {
	register(command{name: "experiment", order: 37, run: cmdExperiment, summary: "compare policy variants on real traffic: apply -f FILE | start | stop --reason |\nconclude | report NAME [--json] | list | show NAME (admin API)"})
}

const experimentAbout = `stagegate experiment — compare variants of a trial's policy on real traffic.

  stagegate experiment apply -f EXPERIMENT.yaml [--actor NAME] [--dry-run]
  stagegate experiment start NAME [--actor NAME] [--reason TEXT]
  stagegate experiment stop NAME --reason TEXT [--actor NAME]
  stagegate experiment conclude NAME [--actor NAME] [--reason TEXT]
  stagegate experiment report NAME [--json]
  stagegate experiment list [--trial ID]
  stagegate experiment show NAME [--json]

apply     checks the file locally (every problem with its line and field), then
          sends it to the admin API, which compiles every variant's policy and
          stores the experiment as a draft (re-apply while it is a draft).
start     assigns users to the arms (sticky, by their pseudonymous id) on every
          gateway; stop returns everyone to the control policy (a guard-rail
          crossing or the planned end does the same by itself).
report    per-arm outcomes with 95% Wilson intervals, Newcombe intervals for
          the differences, samples against the minimum, the testing rule,
          sample-ratio check, guard-rails and a one-line conclusion.
conclude  closes a stopped experiment and records the report's conclusion.

Every transition is kept with who and why, and in the audit trail. The admin
token comes from $STAGEGATE_ADMIN_TOKEN (or --token-env, --token-file); --admin
or $STAGEGATE_ADMIN names the admin API.`

func cmdExperiment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runActions(ctx, "experiment", experimentAbout, map[string]action{
		"apply":    experimentApply,
		"start":    lifecycle("start"),
		"stop":     lifecycle("stop"),
		"conclude": lifecycle("conclude"),
		"report":   experimentReport,
		"list":     experimentList,
		"show":     experimentShow,
	}, args, stdout, stderr)
}

// lifecycle is the experiment action that moves an experiment through name
// (start, stop or conclude).
func lifecycle(name string) action {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return experimentAction(ctx, name, args, stdout, stderr)
	}
}

// experimentArg takes the NAME that follows an action, before its flags.
func experimentArg(args []string, stderr io.Writer, action string) (string, []string, error) {
	return leadingArg(args, stderr, "usage: stagegate experiment "+action+" NAME [flags]")
}

func experimentApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("experiment apply", flag.ContinueOnError)
	cf := addClientFlags(fs)
	file := fs.String("f", "", "experiment definition YAML file (required)")
	actor := fs.String("actor", defaultActor(), "who applies it (recorded)")
	dryRun := fs.Bool("dry-run", false, "check everything, store nothing")
	if err := parseFlags(fs, args, stderr, "stagegate experiment apply -f EXPERIMENT.yaml — check and store an experiment as a draft."); err != nil {
		return err
	}
	if *file == "" {
		fmt.Fprintln(stderr, "experiment apply: -f EXPERIMENT.yaml is required")
		return errUsage
	}
	raw, err := readBounded(*file, experiment.MaxDefinitionBytes)
	if err != nil {
		return err
	}
	if _, err := experiment.Parse(*file, raw); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out experiment.Applied
	if err := c.call(ctx, http.MethodPost, "/api/v1/experiments", map[string]any{"definition": string(raw), "file": *file, "actor": *actor, "dry_run": *dryRun}, &out); err != nil {
		return experimentFailure(err)
	}
	switch {
	case out.DryRun:
		fmt.Fprintf(stdout, "checked (dry run, nothing stored): experiment %s of trial %s\n", out.Definition.Name, out.Definition.Trial)
	case out.Created:
		fmt.Fprintf(stdout, "applied: experiment %s of trial %s, draft revision %d\n", out.Experiment.Name, out.Experiment.Trial, out.Experiment.Revision)
	default:
		fmt.Fprintf(stdout, "unchanged: experiment %s is already this definition (draft revision %d)\n", out.Experiment.Name, out.Experiment.Revision)
	}
	for _, v := range out.Variants {
		fmt.Fprintf(stdout, "  arm %s: policy revision %s compiles; %d tests and %d corpus cases, %d failing\n", v.Arm, v.Revision, v.Tests, v.Cases, v.Failures)
		if v.Problem != "" {
			fmt.Fprintf(stdout, "    note: %s\n", v.Problem)
		}
	}
	fmt.Fprintf(stdout, "  rule: %s\n", out.Rule)
	return nil
}

func experimentAction(ctx context.Context, action string, args []string, stdout, stderr io.Writer) error {
	name, rest, err := experimentArg(args, stderr, action)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("experiment "+action, flag.ContinueOnError)
	cf := addClientFlags(fs)
	actor := fs.String("actor", defaultActor(), "who does this (recorded)")
	reason := fs.String("reason", "", "why (recorded; required to stop)")
	abouts := map[string]string{
		"start":    "stagegate experiment start NAME — assign users to the arms on every gateway.",
		"stop":     "stagegate experiment stop NAME --reason TEXT — send every user back to the control policy.",
		"conclude": "stagegate experiment conclude NAME — close a stopped experiment with its report's conclusion.",
	}
	if err := parseFlags(fs, rest, stderr, abouts[action]); err != nil {
		return err
	}
	if action == "stop" && strings.TrimSpace(*reason) == "" {
		fmt.Fprintln(stderr, "experiment stop: --reason is required (it is recorded in the audit trail)")
		return errUsage
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Experiment incidents.Experiment `json:"experiment"`
		Report     *experiment.Report   `json:"report"`
	}
	if err := c.call(ctx, http.MethodPost, "/api/v1/experiments/"+url.PathEscape(name)+"/"+action, map[string]string{"actor": *actor, "reason": *reason}, &out); err != nil {
		return experimentFailure(err)
	}
	e := out.Experiment
	fmt.Fprintf(stdout, "%s: experiment %s of trial %s is now %s\n", action, e.Name, e.Trial, strings.ToUpper(e.Status))
	if out.Report != nil {
		fmt.Fprintf(stdout, "conclusion: %s\n", out.Report.Conclusion)
		if out.Report.Winner != "" {
			fmt.Fprintf(stdout, "winner: %s (promote its policy to the trial through the trial's policy folder; see README, For regulators)\n", out.Report.Winner)
		}
	}
	return nil
}

func experimentReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name, rest, err := experimentArg(args, stderr, "report")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("experiment report", flag.ContinueOnError)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, rest, stderr, "stagegate experiment report NAME — outcomes per arm, intervals, rule, sample ratio, guard-rails, conclusion."); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/api/v1/experiments/"+url.PathEscape(name)+"/report", nil, &raw); err != nil {
		return experimentFailure(err)
	}
	var out struct {
		Report experiment.Report `json:"report"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	if *asJSON {
		b, err := json.MarshalIndent(out.Report, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	return out.Report.WriteText(stdout)
}

func experimentList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("experiment list", flag.ContinueOnError)
	cf := addClientFlags(fs)
	trialID := fs.String("trial", "", "only this trial's experiments")
	if err := parseFlags(fs, args, stderr, "stagegate experiment list — every experiment with its status."); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	path := "/api/v1/experiments"
	if *trialID != "" {
		path += "?trial=" + url.QueryEscape(*trialID)
	}
	var out struct {
		Experiments []incidents.Experiment `json:"experiments"`
	}
	if err := c.call(ctx, http.MethodGet, path, nil, &out); err != nil {
		return experimentFailure(err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTRIAL\tSTATUS\tSTARTED\tSTOPPED\tCAUSE")
	for _, e := range out.Experiments {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Trial, e.Status, experimentTime(e.StartedAt), experimentTime(e.StoppedAt), e.StopCause)
	}
	return tw.Flush()
}

func experimentShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name, rest, err := experimentArg(args, stderr, "show")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("experiment show", flag.ContinueOnError)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	if err := parseFlags(fs, rest, stderr, "stagegate experiment show NAME — the definition, status and every transition."); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/api/v1/experiments/"+url.PathEscape(name), nil, &raw); err != nil {
		return experimentFailure(err)
	}
	if *asJSON {
		var buf bytes.Buffer
		_ = json.Indent(&buf, raw, "", "  ")
		fmt.Fprintln(stdout, buf.String())
		return nil
	}
	var out struct {
		Experiment  incidents.Experiment             `json:"experiment"`
		Transitions []incidents.ExperimentTransition `json:"transitions"`
		Rule        string                           `json:"rule"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	e := out.Experiment
	fmt.Fprintf(stdout, "experiment %s (trial %s): %s, definition revision %d by %s\n", e.Name, e.Trial, strings.ToUpper(e.Status), e.Revision, e.CreatedBy)
	if e.StopCause != "" {
		fmt.Fprintf(stdout, "  stopped %s (%s): %s\n", experimentTime(e.StoppedAt), e.StopCause, e.StopReason)
	}
	if e.Conclusion != "" {
		fmt.Fprintf(stdout, "  conclusion: %s\n", e.Conclusion)
	}
	if out.Rule != "" {
		fmt.Fprintf(stdout, "  rule: %s\n", out.Rule)
	}
	fmt.Fprintln(stdout, "\ntransitions:")
	for _, t := range out.Transitions {
		fmt.Fprintf(stdout, "  %s  %s → %s  by %s", experimentTime(t.At), t.From, t.To, t.Actor)
		if t.Cause != "" {
			fmt.Fprintf(stdout, " (%s)", t.Cause)
		}
		if t.Reason != "" {
			fmt.Fprintf(stdout, ": %s", t.Reason)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "\ndefinition:\n%s\n", e.Source)
	return nil
}

// experimentFailure prints a definition's problems one per line.
func experimentFailure(err error) error {
	f, ok := err.(*apiFailure)
	if !ok || f.Code != "invalid_experiment" {
		return err
	}
	var body struct {
		Error struct {
			Problems []experiment.Problem `json:"problems"`
		} `json:"error"`
	}
	if json.Unmarshal(f.Body, &body) != nil || len(body.Error.Problems) == 0 {
		return err
	}
	return &experiment.Error{Problems: body.Error.Problems}
}

func experimentTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}
