package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stagegate/stagegate/deploy"
)

func init() {
	register(command{name: "model", order: 41, run: cmdModel, summary: "onboard a pilot model (an OpenAI-compatible endpoint): add | list (admin API)"})
}

const modelAbout = `stagegate model — onboard OpenAI-compatible models.

  stagegate model add --name NAME --base-url URL [--api-key-env VAR | --api-key-file PATH]
                      [--upstream-model ID] [--timeout 60s] [--max-concurrency N] [--dry-run]
  stagegate model list

add checks the model before registering it: it lists the server's models, sends
one tiny completion and streams one, and says in plain words what failed. The API
key is given by reference: the name of an environment variable, or a file path,
both resolved by the Stagegate server process; the key itself is never sent to or
stored by Stagegate's registry.`

func cmdModel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, modelAbout)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return flag.ErrHelp
		}
		return errUsage
	}
	switch args[0] {
	case "add":
		return modelAdd(ctx, args[1:], stdout, stderr)
	case "list":
		return modelList(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "unknown model action %q\n\n%s\n", args[0], modelAbout)
	return errUsage
}

func modelAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("model add", flag.ContinueOnError)
	cf := addClientFlags(fs)
	name := fs.String("name", "", "model name in Stagegate (letters, digits, '-', '_'; required)")
	baseURL := fs.String("base-url", "", "OpenAI-compatible base URL ending in /v1 (required)")
	upstream := fs.String("upstream-model", "", "model id sent upstream (default --name)")
	keyEnv := fs.String("api-key-env", "", "environment variable of the server process holding the API key")
	keyFile := fs.String("api-key-file", "", "file on the server holding the API key")
	timeout := fs.Duration("timeout", 0, "bound on one call (default: the gateway's upstream timeout)")
	maxConc := fs.Int("max-concurrency", 0, "bound on concurrent calls (0: unbounded)")
	actor := fs.String("actor", defaultActor(), "who registers the model (recorded)")
	dryRun := fs.Bool("dry-run", false, "run the check only, register nothing")
	if err := parseFlags(fs, args, stderr, "stagegate model add — check and register an OpenAI-compatible model."); err != nil {
		return err
	}
	spec := deploy.ModelSpec{Name: *name, BaseURL: *baseURL, UpstreamModel: *upstream, APIKeyEnv: *keyEnv,
		APIKeyFile: *keyFile, Timeout: deploy.Duration(*timeout), MaxConcurrency: *maxConc}
	if err := spec.Validate(); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	body := struct {
		deploy.ModelSpec
		Actor  string `json:"actor"`
		DryRun bool   `json:"dry_run"`
	}{spec, *actor, *dryRun}
	var out struct {
		Model      deploy.ModelSpec   `json:"model"`
		Check      deploy.CheckReport `json:"check"`
		Registered bool               `json:"registered"`
	}
	err = c.call(ctx, http.MethodPost, "/api/v1/models", body, &out)
	var f *apiFailure
	if errors.As(err, &f) && f.Code == "model_check_failed" {
		var failed struct {
			Check deploy.CheckReport `json:"check"`
		}
		if json.Unmarshal(f.Body, &failed) == nil {
			fmt.Fprint(stdout, failed.Check.String())
		}
		return fmt.Errorf("model %s was not registered: fix what failed above and add it again", spec.Name)
	}
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, out.Check.String())
	if out.Registered {
		fmt.Fprintf(stdout, "registered model %s (added by %s); use it as a rollout's candidate\n", out.Model.Name, out.Model.AddedBy)
	} else {
		fmt.Fprintln(stdout, "dry run: nothing registered")
	}
	return nil
}

func modelList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("model list", flag.ContinueOnError)
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args, stderr, "stagegate model list — configured and registered models."); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Registered []deploy.ModelSpec `json:"registered"`
		Configured []string           `json:"configured"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/models", nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tBASE URL\tKEY FROM\tADDED")
	for _, n := range out.Configured {
		fmt.Fprintf(tw, "%s\tconfiguration\t\t\t\n", n)
	}
	for _, m := range out.Registered {
		key := "-"
		switch {
		case m.APIKeyEnv != "":
			key = "$" + m.APIKeyEnv
		case m.APIKeyFile != "":
			key = m.APIKeyFile
		}
		fmt.Fprintf(tw, "%s\tregistered\t%s\t%s\t%s by %s\n", m.Name, m.BaseURL, key, m.AddedAt.Format(time.RFC3339), m.AddedBy)
	}
	return tw.Flush()
}
