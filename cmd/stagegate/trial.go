package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/stagegate/stagegate/policies/trial"
)

func init() {
	register(command{name: "trial", order: 35, run: cmdTrial, summary: "define trials: apply -f FILE | list | show ID | revisions ID (admin API;\nevery change is kept as a numbered revision with who made it)"})
}

const trialAbout = `stagegate trial — a regulator's trial definitions, stored with every revision.

  stagegate trial apply -f TRIAL.yaml [--actor NAME] [--comment TEXT] [--dry-run]
  stagegate trial list
  stagegate trial show ID [--revision N] [--source] [--json]
  stagegate trial revisions ID

apply      checks the file locally (every problem with its line and field), then
           sends it to the admin API, which checks it again, compiles and tests
           the policy it names, and stores it as the trial's next revision
           (the same file applied twice makes no new revision).
list       shows each trial's latest revision.
show       shows a revision (default the latest): the definition, or --source
           for the YAML as applied.
revisions  lists every revision: number, when, who, comment.

The admin token comes from $STAGEGATE_ADMIN_TOKEN (or --token-env, --token-file;
it is never taken on the command line); --admin or $STAGEGATE_ADMIN names the
admin API.`

func cmdTrial(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runActions(ctx, "trial", trialAbout, map[string]action{
		"apply":     trialApply,
		"list":      trialList,
		"show":      trialShow,
		"revisions": trialRevisions,
	}, args, stdout, stderr)
}

// trialRevision is a stored revision as the admin API shows it.
type trialRevision struct {
	Trial     string    `json:"trial"`
	Revision  int       `json:"revision"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	Digest    string    `json:"digest"`
	Source    string    `json:"source"`
}

func trialApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("trial apply", flag.ContinueOnError)
	cf := addClientFlags(fset)
	file := fset.String("f", "", "trial definition YAML file (required)")
	actor := fset.String("actor", defaultActor(), "who applies it (recorded with the revision)")
	comment := fset.String("comment", "", "why (recorded with the revision)")
	dryRun := fset.Bool("dry-run", false, "check only; store nothing")
	if err := parseFlags(fset, args, stderr, trialAbout); err != nil {
		return err
	}
	if *file == "" {
		fmt.Fprintln(stderr, "-f FILE is required")
		return errUsage
	}
	src, err := readBounded(*file, trial.MaxBytes)
	if err != nil {
		return err
	}
	// The same checks the server makes, with the same messages, before any
	// network round trip.
	if _, err := trial.Parse(*file, src); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Trial       string         `json:"trial"`
		Created     bool           `json:"created"`
		Revision    *trialRevision `json:"revision"`
		PolicyCheck map[string]any `json:"policy_check"`
		InService   bool           `json:"in_service"`
	}
	err = c.call(ctx, "POST", "/api/v1/trials", map[string]any{
		"definition": string(src), "file": *file, "actor": *actor, "comment": *comment, "dry_run": *dryRun,
	}, &out)
	if err != nil {
		return explainTrialFailure(err)
	}
	check := "policy check skipped"
	if rev, ok := out.PolicyCheck["revision"].(string); ok {
		check = fmt.Sprintf("policy %s: %v Rego tests and %v corpus cases passed", rev, out.PolicyCheck["tests"], out.PolicyCheck["cases"])
	} else if s, ok := out.PolicyCheck["skipped"].(string); ok {
		check = "policy check skipped: " + s
	}
	switch {
	case *dryRun:
		fmt.Fprintf(stdout, "trial %s is valid (dry run, nothing stored); %s\n", out.Trial, check)
	case out.Created:
		fmt.Fprintf(stdout, "trial %s revision %d applied by %s; %s\n", out.Trial, out.Revision.Revision, out.Revision.CreatedBy, check)
	default:
		fmt.Fprintf(stdout, "trial %s unchanged (revision %d has the same definition)\n", out.Trial, out.Revision.Revision)
	}
	if !*dryRun {
		if out.InService {
			fmt.Fprintln(stdout, "in service on the gateway now; other gateways follow within gateway.trial_refresh")
		} else {
			fmt.Fprintln(stdout, "stored; the gateways put it into service within gateway.trial_refresh")
		}
	}
	return nil
}

// explainTrialFailure turns the admin API's refusal into a readable error:
// the definition's problems, or the policy check's failures.
func explainTrialFailure(err error) error {
	var af *apiFailure
	if !errors.As(err, &af) {
		return err
	}
	var body struct {
		Error struct {
			Message  string          `json:"message"`
			Problems []trial.Problem `json:"problems"`
		} `json:"error"`
		Report struct {
			Tests []struct {
				Name  string `json:"name"`
				Pass  bool   `json:"pass"`
				Error string `json:"error"`
			} `json:"tests"`
			Cases []struct {
				Where    string   `json:"where"`
				Pass     bool     `json:"pass"`
				Problems []string `json:"problems"`
			} `json:"cases"`
		} `json:"report"`
	}
	if json.Unmarshal(af.Body, &body) != nil {
		return err
	}
	msg := body.Error.Message
	for _, p := range body.Error.Problems {
		msg += "\n  " + p.String()
	}
	for _, t := range body.Report.Tests {
		if !t.Pass {
			msg += "\n  FAIL test " + t.Name + " " + t.Error
		}
	}
	for _, c := range body.Report.Cases {
		if !c.Pass {
			msg += "\n  FAIL case " + c.Where
			for _, p := range c.Problems {
				msg += "\n       " + p
			}
		}
	}
	return fmt.Errorf("the admin API refused the trial (HTTP %d %s): %s", af.Status, af.Code, msg)
}

func trialList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("trial list", flag.ContinueOnError)
	cf := addClientFlags(fset)
	if err := parseFlags(fset, args, stderr, trialAbout); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Trials []struct {
			trialRevision
			Title string    `json:"title"`
			Start time.Time `json:"start"`
			End   time.Time `json:"end"`
		} `json:"trials"`
	}
	if err := c.call(ctx, "GET", "/api/v1/trials", nil, &out); err != nil {
		return err
	}
	if len(out.Trials) == 0 {
		fmt.Fprintln(stdout, "no trials applied yet (stagegate trial apply -f TRIAL.yaml)")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRIAL\tREVISION\tWINDOW\tCHANGED\tBY\tTITLE")
	for _, t := range out.Trials {
		fmt.Fprintf(tw, "%s\t%d\t%s – %s\t%s\t%s\t%s\n", t.Trial, t.Revision, t.Start.Format("2006-01-02"), t.End.Format("2006-01-02"),
			t.CreatedAt.Format(time.RFC3339), t.CreatedBy, t.Title)
	}
	return tw.Flush()
}

// trialIDArg takes the trial id that comes first, before the flags.
func trialIDArg(args []string, stderr io.Writer, action string) (string, []string, error) {
	if len(args) == 0 || len(args[0]) == 0 || args[0][0] == '-' {
		fmt.Fprintf(stderr, "stagegate trial %s ID: the trial id comes first\n", action)
		return "", nil, errUsage
	}
	return args[0], args[1:], nil
}

func trialShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	id, args, err := trialIDArg(args, stderr, "show")
	if err != nil {
		return err
	}
	fset := flag.NewFlagSet("trial show", flag.ContinueOnError)
	cf := addClientFlags(fset)
	revision := fset.Int("revision", 0, "revision number (default the latest)")
	source := fset.Bool("source", false, "print the YAML as applied")
	asJSON := fset.Bool("json", false, "print the answer as JSON")
	if err := parseFlags(fset, args, stderr, trialAbout); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	path := "/api/v1/trials/" + url.PathEscape(id)
	if *revision > 0 {
		path += "?revision=" + strconv.Itoa(*revision)
	}
	var out struct {
		Revision   trialRevision   `json:"revision"`
		Definition json.RawMessage `json:"definition"`
	}
	if err := c.call(ctx, "GET", path, nil, &out); err != nil {
		return err
	}
	r := out.Revision
	switch {
	case *source:
		_, err = io.WriteString(stdout, r.Source)
		return err
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(stdout, "trial %s, revision %d, applied %s by %s", r.Trial, r.Revision, r.CreatedAt.Format(time.RFC3339), r.CreatedBy)
	if r.Comment != "" {
		fmt.Fprintf(stdout, " (%s)", r.Comment)
	}
	fmt.Fprintf(stdout, "\ndigest %s\n\n%s", r.Digest, r.Source)
	return nil
}

func trialRevisions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	id, args, err := trialIDArg(args, stderr, "revisions")
	if err != nil {
		return err
	}
	fset := flag.NewFlagSet("trial revisions", flag.ContinueOnError)
	cf := addClientFlags(fset)
	if err := parseFlags(fset, args, stderr, trialAbout); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Revisions []trialRevision `json:"revisions"`
	}
	if err := c.call(ctx, "GET", "/api/v1/trials/"+url.PathEscape(id)+"/revisions", nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tAPPLIED\tBY\tCOMMENT")
	for _, r := range out.Revisions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Revision, r.CreatedAt.Format(time.RFC3339), r.CreatedBy, r.Comment)
	}
	return tw.Flush()
}
