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
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/sandbox"
)

// The rollout and model commands talk to a running sandbox's admin API. The admin
// token is read from an environment variable or a file named by flag, never given
// on the command line.

func init() {
	register(command{name: "rollout", order: 40, run: cmdRollout, summary: "move a candidate model through gated stages: apply -f PLAN | status TRIAL |\nlist | abort | promote | pause | resume TRIAL (admin API)"})
}

// Defaults of the admin client.
const (
	defaultAdminTokenEnv = "STAGEGATE_ADMIN_TOKEN"
	adminURLEnv          = "STAGEGATE_ADMIN"
	actorEnv             = "STAGEGATE_ACTOR"
	deployClientTimeout  = 90 * time.Second // covers a model check on add
	maxAdminAnswer       = 8 << 20
)

// deployClient calls the admin API.
type deployClient struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags are the flags every admin command shares.
type clientFlags struct {
	admin, tokenEnv, tokenFile *string
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	def := os.Getenv(adminURLEnv)
	if def == "" {
		def = "http://" + sandbox.DefaultAdminAddr
	}
	return clientFlags{
		admin:     fs.String("admin", def, "admin API base URL (or $"+adminURLEnv+")"),
		tokenEnv:  fs.String("token-env", defaultAdminTokenEnv, "environment variable holding the admin token"),
		tokenFile: fs.String("token-file", "", "file holding the admin token (instead of --token-env)"),
	}
}

func (f clientFlags) client() (*deployClient, error) {
	u, err := url.Parse(*f.admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin %q: want a URL like http://127.0.0.1:8081", *f.admin)
	}
	var tok string
	if *f.tokenFile != "" {
		raw, err := os.ReadFile(*f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(raw))
	} else {
		tok = os.Getenv(*f.tokenEnv)
	}
	if tok == "" {
		return nil, fmt.Errorf("no admin token: set $%s (the demo's is %s) or use --token-file", *f.tokenEnv, sandbox.DemoAdminKey)
	}
	return &deployClient{base: strings.TrimRight(*f.admin, "/"), token: tok, http: &http.Client{Timeout: deployClientTimeout}}, nil
}

// apiFailure is an error answer of the admin API.
type apiFailure struct {
	Status  int
	Message string
	Code    string
	Body    []byte
}

func (e *apiFailure) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// call sends body (nil for GET) and decodes a 200 answer into out; other statuses
// become *apiFailure with the server's message.
func (c *deployClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w (is `stagegate up` running?)", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Message, Code string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Error.Message == "" {
			e.Error.Message = strings.TrimSpace(string(raw))
		}
		return &apiFailure{Status: resp.StatusCode, Message: e.Error.Message, Code: e.Error.Code, Body: raw}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	return nil
}

// defaultActor is who the commands record when --actor is not given.
func defaultActor() string {
	if a := os.Getenv(actorEnv); a != "" {
		return a
	}
	return os.Getenv("USER")
}

const rolloutAbout = `stagegate rollout — move a trial's candidate model through gated stages.

  stagegate rollout apply -f PLAN.yaml --actor NAME [--reason TEXT]
  stagegate rollout status TRIAL [--json]
  stagegate rollout list
  stagegate rollout abort|promote|pause|resume TRIAL --actor NAME --reason TEXT

apply    starts the plan (see examples/rollout.yaml) at its first step; applying
         again restarts it. The plan is checked locally first, with line numbers.
status   shows the step, the traffic split, the current gate's live numbers and
         outcome, and the history of transitions (time, from, to, cause, actor).
abort    sends every user of the trial back to the baseline at once.
promote  ends a pause step, or gives the approval a gate asks for.
pause    holds the rollout where it is (the kill switch still acts); resume
         continues it.

Every action is recorded with --actor (default $STAGEGATE_ACTOR or $USER) and
--reason. The admin token comes from $STAGEGATE_ADMIN_TOKEN (or --token-env,
--token-file).`

func cmdRollout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintln(stderr, rolloutAbout)
			return flag.ErrHelp
		}
		fmt.Fprintln(stderr, rolloutAbout)
		return errUsage
	}
	action, rest := args[0], args[1:]
	switch action {
	case "apply":
		return rolloutApply(ctx, rest, stdout, stderr)
	case "status":
		return rolloutStatus(ctx, rest, stdout, stderr)
	case "list":
		return rolloutList(ctx, rest, stdout, stderr)
	case "abort", "promote", "pause", "resume":
		return rolloutManual(ctx, action, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "unknown rollout action %q\n\n%s\n", action, rolloutAbout)
	return errUsage
}

// trialArg takes the TRIAL that follows an action, before its flags.
func trialArg(args []string, stderr io.Writer, action string) (string, []string, error) {
	return leadingArg(args, stderr, "usage: stagegate rollout "+action+" TRIAL [flags]")
}

func rolloutApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rollout apply", flag.ContinueOnError)
	cf := addClientFlags(fs)
	file := fs.String("f", "", "rollout plan YAML file (required)")
	actor := fs.String("actor", defaultActor(), "who applies the plan")
	reason := fs.String("reason", "", "why")
	if err := parseFlags(fs, args, stderr, "stagegate rollout apply -f PLAN.yaml — start a rollout plan at its first step."); err != nil {
		return err
	}
	if *file == "" {
		fmt.Fprintln(stderr, "rollout apply: -f PLAN.yaml is required")
		return errUsage
	}
	raw, err := readBounded(*file, deploy.MaxSpecBytes)
	if err != nil {
		return err
	}
	if _, err := deploy.ParseSpec(*file, raw); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Rollout deploy.State `json:"rollout"`
	}
	if err := c.call(ctx, http.MethodPost, "/api/v1/rollouts", map[string]string{"plan": string(raw), "actor": *actor, "reason": *reason}, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied: rollout of trial %s, generation %d\n\n", out.Rollout.Trial(), out.Rollout.Generation)
	printRollout(stdout, &out.Rollout, 10)
	return nil
}

// readBounded reads a file of at most max bytes.
func readBounded(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(raw) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return raw, nil
}

func rolloutStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	trial, rest, err := trialArg(args, stderr, "status")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("rollout status", flag.ContinueOnError)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	history := fs.Int("history", 20, "how many of the latest transitions to show")
	if err := parseFlags(fs, rest, stderr, "stagegate rollout status TRIAL — step, traffic, live gate numbers and history."); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Rollout deploy.State `json:"rollout"`
	}
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/api/v1/rollouts/"+url.PathEscape(trial), nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		var buf bytes.Buffer
		_ = json.Indent(&buf, raw, "", "  ")
		fmt.Fprintln(stdout, buf.String())
		return nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	printRollout(stdout, &out.Rollout, *history)
	return nil
}

func rolloutList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rollout list", flag.ContinueOnError)
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args, stderr, "stagegate rollout list — every rollout with its step and status."); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Rollouts []deploy.State `json:"rollouts"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/rollouts", nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRIAL\tCANDIDATE\tSTATUS\tSTEP\tTRAFFIC\tUPDATED")
	for i := range out.Rollouts {
		s := &out.Rollouts[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Trial(), s.Spec.Candidate, s.Status, stepName(s), trafficText(s), s.UpdatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func rolloutManual(ctx context.Context, action string, args []string, stdout, stderr io.Writer) error {
	trial, rest, err := trialArg(args, stderr, action)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("rollout "+action, flag.ContinueOnError)
	cf := addClientFlags(fs)
	actor := fs.String("actor", defaultActor(), "who does this (recorded)")
	reason := fs.String("reason", "", "why (required, recorded)")
	abouts := map[string]string{
		"abort":   "stagegate rollout abort TRIAL — send every user back to the baseline at once.",
		"promote": "stagegate rollout promote TRIAL — end a pause step, or approve a gate that asks for it.",
		"pause":   "stagegate rollout pause TRIAL — hold the rollout at its current step.",
		"resume":  "stagegate rollout resume TRIAL — continue a paused rollout.",
	}
	if err := parseFlags(fs, rest, stderr, abouts[action]); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Rollout deploy.State `json:"rollout"`
	}
	err = c.call(ctx, http.MethodPost, "/api/v1/rollouts/"+url.PathEscape(trial)+"/"+action, map[string]string{"actor": *actor, "reason": *reason}, &out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: done\n\n", action)
	printRollout(stdout, &out.Rollout, 5)
	return nil
}

// stepName names the current step ("2/5 gate", "completed").
func stepName(s *deploy.State) string {
	st := s.CurrentStep()
	if st == nil {
		return "completed"
	}
	return fmt.Sprintf("%d/%d %s", s.Step+1, len(s.Spec.Steps), st.Kind())
}

// percent renders 1/WeightScale units as a percentage.
func percent(units int) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", float64(units)*100/deploy.WeightScale), "0"), ".") + "%"
}

func trafficText(s *deploy.State) string {
	p := s.Plan()
	switch {
	case p.Stage == deploy.StageAborted:
		return "aborted: everyone on " + p.Baseline
	case p.ShadowSample > 0:
		return "shadow: " + percent(p.ShadowSample) + " of requests copied to the candidate"
	case len(p.Cohorts) > 0:
		return fmt.Sprintf("%s: %s of cohorts %s on the candidate", p.Stage, percent(p.CandidateWeight), strings.Join(p.Cohorts, ","))
	}
	return fmt.Sprintf("%s: %s of users on the candidate", p.Stage, percent(p.CandidateWeight))
}

// printRollout renders a rollout for people: where it is, why, the live gate
// numbers, and the newest history entries.
func printRollout(w io.Writer, s *deploy.State, history int) {
	fallback := "no"
	if s.Spec.Fallback() {
		fallback = "yes"
	}
	fmt.Fprintf(w, "rollout of trial %s (generation %d): %s\n", s.Trial(), s.Generation, strings.ToUpper(s.Status))
	if s.Message != "" {
		fmt.Fprintf(w, "  why:       %s\n", s.Message)
	}
	fmt.Fprintf(w, "  models:    candidate %s, baseline %s (per-request fallback to the baseline: %s)\n", s.Spec.Candidate, s.Spec.Baseline, fallback)
	fmt.Fprintf(w, "  traffic:   %s\n", trafficText(s))
	fmt.Fprintf(w, "  started:   %s; this step since %s\n\n", s.StartedAt.Format(time.RFC3339), s.StepStartedAt.Format(time.RFC3339))
	fmt.Fprintln(w, "steps:")
	for i, st := range s.Spec.Steps {
		mark := "   "
		switch {
		case i < s.Step:
			mark = "  ✓"
		case i == s.Step:
			mark = "  ▶"
		}
		fmt.Fprintf(w, "%s %d. %s\n", mark, i+1, st)
	}
	if g := s.Gate; g != nil {
		fmt.Fprintf(w, "\ngate (evaluated %s): %s\n", g.EvaluatedAt.Format(time.RFC3339), strings.ToUpper(string(g.Outcome)))
		fmt.Fprintf(w, "  interactions of %s since %s: %d (minimum %d)\n", g.Model, g.Since.Format(time.RFC3339), g.Interactions, g.MinInteractions)
		fmt.Fprintf(w, "  time in step: %s (minimum %s", g.Elapsed, g.MinDuration)
		if g.MaxDuration > 0 {
			fmt.Fprintf(w, ", fails after %s", g.MaxDuration)
		}
		fmt.Fprintln(w, ")")
		for _, rc := range g.Rates {
			fmt.Fprintf(w, "  %s ≥ %s: %d confirmed / %d = %.4f; %.0f%% Wilson bounds [%.4f, %.4f] (z %.4f); max %.4f → %s\n",
				rc.Category, rc.Severity, rc.Confirmed, rc.Interactions, rc.Rate, rc.Confidence*100, rc.Lower, rc.Upper, rc.Z, rc.MaxRate, rc.Outcome)
		}
		fmt.Fprintf(w, "  high/critical incidents awaiting review: %d %s\n", g.UnresolvedSevere, strings.Join(g.UnresolvedSevereIDs, " "))
		if g.ApprovalRequired {
			fmt.Fprintf(w, "  regulator approval: required, given: %v\n", g.Approved)
		}
		for _, r := range g.Reasons {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	}
	if len(s.History) == 0 || history <= 0 {
		return
	}
	fmt.Fprintln(w, "\nhistory (newest last):")
	from := max(0, len(s.History)-history)
	for _, h := range s.History[from:] {
		who := h.Actor
		if h.Reason != "" {
			who += ": " + h.Reason
		}
		fmt.Fprintf(w, "  %s  %s → %s\n      %s [%s]\n", h.At.Format(time.RFC3339), h.From, h.To, h.Cause, who)
	}
}
