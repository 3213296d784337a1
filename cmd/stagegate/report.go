package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/sandbox/console"
)

func init() {
	register(command{name: "report", order: 60, run: cmdReport, summary: "a trial's report for the regulator: report TRIAL --format html|json|csv\n[--out FILE] (from the store, or --via-admin from the running sandbox)"})
}

const reportAbout = `stagegate report — a trial's report for the regulator.

  stagegate report TRIAL [--format html|json|csv] [--out FILE]
                         [--data-dir DIR | --store TARGET] [--confidence 0.95]
  stagegate report TRIAL --via-admin [--admin URL] [--format ...] [--out FILE]

It holds: traffic by stage and model; incidents by category, severity and
verdict; confirmed-incident rates per model with Wilson confidence intervals
(the rollout gates' own); review times against the targets and Art. 73
reporting deadlines; reviewer agreement (Cohen's kappa) on second reviews;
the rollout history; policy and trial revisions; the audit chain's status;
and an Art. 73-style initial report draft for every confirmed serious incident.

By default it reads the incident store directly (no rollout history, which
lives with the running sandbox). --via-admin asks the running sandbox's
review API instead (admin token from $STAGEGATE_ADMIN_TOKEN), which adds the
rollout's state and history. The console offers the same download on the
trial's page.`

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, reportAbout)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "stagegate report: TRIAL comes first\n\n%s\n", reportAbout)
		return errUsage
	}
	trial, rest := args[0], args[1:]
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	cf := addClientFlags(fs)
	format := fs.String("format", incidents.FormatHTML, "html, json or csv")
	out := fs.String("out", "", "write the report to this file (default stdout)")
	confidence := fs.Float64("confidence", console.DefaultConfidence, "confidence of the rate intervals")
	viaAdmin := fs.Bool("via-admin", false, "ask the running sandbox's review API (adds the rollout history)")
	if err := parseFlags(fs, rest, stderr, reportAbout); err != nil {
		return err
	}
	if !incidents.ValidReportFormat(*format) {
		return fmt.Errorf("--format %q: want html, json or csv", *format)
	}
	var body []byte
	if *viaAdmin {
		c, err := cf.client()
		if err != nil {
			return err
		}
		if body, err = fetchReport(ctx, c, trial, *format); err != nil {
			return err
		}
	} else {
		s, err := sf.open(ctx)
		if err != nil {
			return err
		}
		defer s.Close()
		rep, err := console.BuildReport(ctx, s, trial, *confidence, nil)
		if err != nil {
			return err
		}
		var b strings.Builder
		if err := rep.Write(&b, *format); err != nil {
			return err
		}
		body = []byte(b.String())
	}
	if *out == "" {
		_, err := stdout.Write(body)
		return err
	}
	if err := os.WriteFile(*out, body, 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(stderr, "report of trial %s written to %s (%d bytes, %s)\n", trial, *out, len(body), *format)
	return nil
}

// fetchReport downloads the report from the review API.
func fetchReport(ctx context.Context, c *deployClient, trial, format string) ([]byte, error) {
	u := c.base + "/api/v1/review/trials/" + url.PathEscape(trial) + "/report?format=" + url.QueryEscape(format)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w (is `stagegate up` running?)", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	if len(body) > maxAdminAnswer {
		return nil, errors.New("admin API: the report is larger than the client accepts")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin API: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return body, nil
}
