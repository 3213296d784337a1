package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	register(command{name: "key", order: 45, run: cmdKey, summary: "pilot API keys: create --trial T --tenant X (shown once; only its hash is kept)\n| list | show ID | revoke ID (admin API)"})
}

const keyAbout = `stagegate key — pilot API keys for the gateway.

  stagegate key create --trial T --tenant X [--cohort C] [--name N] [--attr k=v ...]
  stagegate key list [--trial T] [--revoked] [--json]
  stagegate key show ID
  stagegate key revoke ID [--reason TEXT]

create  asks the admin API for a new key (sg_live_ and 32 base32 characters)
        and prints it ONCE: Stagegate stores only its SHA-256 hash, so a lost
        key cannot be shown again — revoke it and create another. The gateway
        accepts it at once, without a restart.
list    shows the keys created this way (id, prefix, trial, tenant, cohort,
        created, revoked); never a key.
revoke  stops a key at once; it is kept, revoked, for the audit trail.

The admin token comes from $STAGEGATE_ADMIN_TOKEN (or --token-env, --token-file;
it is never taken on the command line); --admin or $STAGEGATE_ADMIN names the
admin API.`

func cmdKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runActions(ctx, "key", keyAbout, map[string]action{
		"create": keyCreate,
		"list":   keyList,
		"show":   keyShow,
		"revoke": keyRevoke,
	}, args, stdout, stderr)
}

// apiKey is a stored key as the admin API shows it.
type apiKey struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Prefix     string            `json:"prefix"`
	Trial      string            `json:"trial"`
	Tenant     string            `json:"tenant"`
	Cohort     string            `json:"cohort"`
	Attributes map[string]string `json:"attributes"`
	CreatedAt  time.Time         `json:"created_at"`
	CreatedBy  string            `json:"created_by"`
	RevokedAt  time.Time         `json:"revoked_at"`
	RevokedBy  string            `json:"revoked_by"`
}

// attrFlag collects repeated --attr k=v.
type attrFlag map[string]string

func (a attrFlag) String() string { return "" }

func (a attrFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", v)
	}
	a[k] = val
	return nil
}

func keyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("key create", flag.ContinueOnError)
	cf := addClientFlags(fs)
	trialID := fs.String("trial", "", "trial the key belongs to (required)")
	tenant := fs.String("tenant", "", "tenant (company or app) using the key (required)")
	cohort := fs.String("cohort", "", "cohort of the key's users")
	name := fs.String("name", "", "a label for the key, shown in listings")
	actor := fs.String("actor", defaultActor(), "who creates it (audit trail)")
	attrs := attrFlag{}
	fs.Var(attrs, "attr", "user attribute visible to the policy, name=value (repeatable)")
	if err := parseFlags(fs, args, stderr, keyAbout); err != nil {
		return err
	}
	if *trialID == "" || *tenant == "" {
		fmt.Fprintln(stderr, "--trial and --tenant are required")
		return errUsage
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Key    string `json:"key"`
		APIKey apiKey `json:"api_key"`
		Notice string `json:"notice"`
	}
	body := map[string]any{"trial": *trialID, "tenant": *tenant, "cohort": *cohort, "name": *name, "actor": *actor}
	if len(attrs) > 0 {
		body["attributes"] = map[string]string(attrs)
	}
	if err := c.call(ctx, "POST", "/api/v1/keys", body, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API key %s for trial %s, tenant %s:\n\n  %s\n\n%s\n", out.APIKey.ID, out.APIKey.Trial, out.APIKey.Tenant, out.Key, out.Notice)
	return nil
}

func keyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("key list", flag.ContinueOnError)
	cf := addClientFlags(fs)
	trialID := fs.String("trial", "", "only this trial's keys")
	revoked := fs.Bool("revoked", false, "include revoked keys")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, stderr, keyAbout); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *trialID != "" {
		q.Set("trial", *trialID)
	}
	if *revoked {
		q.Set("revoked", "true")
	}
	var out struct {
		Keys       []apiKey `json:"keys"`
		ConfigKeys int      `json:"config_keys"`
	}
	if err := c.call(ctx, "GET", "/api/v1/keys?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out.Keys)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tTRIAL\tTENANT\tCOHORT\tNAME\tCREATED\tREVOKED")
	for _, k := range out.Keys {
		rev := "-"
		if !k.RevokedAt.IsZero() {
			rev = k.RevokedAt.UTC().Format(time.RFC3339) + " by " + k.RevokedBy
		}
		fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Trial, k.Tenant, dash(k.Cohort), dash(k.Name),
			k.CreatedAt.UTC().Format(time.RFC3339), rev)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if out.ConfigKeys > 0 {
		fmt.Fprintf(stdout, "\n(and %d key(s) from the configuration file)\n", out.ConfigKeys)
	}
	return nil
}

func keyShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	id, rest := splitID(args)
	fs := flag.NewFlagSet("key show", flag.ContinueOnError)
	cf := addClientFlags(fs)
	if err := parseFlags(fs, rest, stderr, keyAbout); err != nil {
		return err
	}
	if id == "" {
		fmt.Fprintln(stderr, "usage: stagegate key show ID")
		return errUsage
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var k apiKey
	if err := c.call(ctx, "GET", "/api/v1/keys/"+url.PathEscape(id), nil, &k); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "id:       %s\nprefix:   %s…\ntrial:    %s\ntenant:   %s\ncohort:   %s\nname:     %s\ncreated:  %s by %s\n",
		k.ID, k.Prefix, k.Trial, k.Tenant, dash(k.Cohort), dash(k.Name), k.CreatedAt.UTC().Format(time.RFC3339), k.CreatedBy)
	if len(k.Attributes) > 0 {
		names := make([]string, 0, len(k.Attributes))
		for n := range k.Attributes {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(stdout, "attr:     %s=%s\n", n, k.Attributes[n])
		}
	}
	if !k.RevokedAt.IsZero() {
		fmt.Fprintf(stdout, "revoked:  %s by %s\n", k.RevokedAt.UTC().Format(time.RFC3339), k.RevokedBy)
	}
	return nil
}

func keyRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	id, rest := splitID(args)
	fs := flag.NewFlagSet("key revoke", flag.ContinueOnError)
	cf := addClientFlags(fs)
	reason := fs.String("reason", "", "why (audit trail)")
	actor := fs.String("actor", defaultActor(), "who revokes it (audit trail)")
	if err := parseFlags(fs, rest, stderr, keyAbout); err != nil {
		return err
	}
	if id == "" {
		fmt.Fprintln(stderr, "usage: stagegate key revoke ID [--reason TEXT]")
		return errUsage
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var k apiKey
	if err := c.call(ctx, "POST", "/api/v1/keys/"+url.PathEscape(id)+"/revoke", map[string]string{"actor": *actor, "reason": *reason}, &k); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %s (%s…, trial %s) revoked; the gateway refuses it from now on\n", k.ID, k.Prefix, k.Trial)
	return nil
}

// splitID takes a leading positional ID off args.
func splitID(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
