package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stagegate/stagegate/incidents"
)

func init() {
	register(command{name: "audit", order: 55, run: cmdAudit, summary: "the hash-chained audit trail: verify | list | hold TRIAL | prune\n(opens the store directly)"})
}

const auditAbout = `stagegate audit — the audit trail: every incident transition, sign-in,
user, key and rule change, each entry holding the hash of the one before.

  stagegate audit verify [--json]
  stagegate audit list [--trial T] [--action PREFIX] [--limit N] [--json]
  stagegate audit hold TRIAL|'*' --reason TEXT [--lift]
  stagegate audit prune

verify  recomputes the chain from the oldest kept entry to the newest and
        names the first entry that was changed, removed or reordered; exit
        status 1 when the chain is broken.
list    shows entries, newest first.
hold    puts a trial (or, with '*', everything) under a legal hold: its
        entries are kept past their retention until the hold is lifted.
prune   removes the oldest entries past their trial's retention (at least
        180 days, or the trial's data_handling.retention_days) that no hold
        covers; the chain stays verifiable from the pruned anchor.

The commands open the incident store directly (--data-dir or --store).`

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runActions(ctx, "audit", auditAbout, map[string]action{
		"verify": auditVerify,
		"list":   auditList,
		"hold":   auditHold,
		"prune":  auditPrune,
	}, args, stdout, stderr)
}

// errAuditBroken is the exit error of a broken chain (its report is printed).
var errAuditBroken = errors.New("the audit trail is broken")

func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "print the verification as JSON")
	if err := parseFlags(fs, args, stderr, auditAbout); err != nil {
		return err
	}
	s, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	v, err := s.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else if v.OK {
		fmt.Fprintf(stdout, "audit trail intact: %d entries (%d-%d)", v.Entries, v.FirstSeq, v.LastSeq)
		if v.PrunedThrough > 0 {
			fmt.Fprintf(stdout, ", pruned through %d", v.PrunedThrough)
		}
		fmt.Fprintf(stdout, "; head %s\n", v.HeadHash)
	} else {
		fmt.Fprintf(stdout, "audit trail BROKEN at entry %d: %s\n", v.BrokenSeq, v.Problem)
	}
	if !v.OK {
		return fmt.Errorf("%w at entry %d", errAuditBroken, v.BrokenSeq)
	}
	return nil
}

func auditList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit list", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	trial := fs.String("trial", "", "entries of this trial only")
	action := fs.String("action", "", "entries whose action starts with this (incident., login, user.)")
	limit := fs.Int("limit", 50, "how many entries (newest first)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, stderr, auditAbout); err != nil {
		return err
	}
	s, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	list, err := s.AuditEntries(ctx, incidents.AuditFilter{Trial: *trial, ActionPrefix: *action, Limit: *limit})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"entries": list})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tWHEN\tACTOR\tACTION\tOBJECT\tTRIAL\tREASON")
	for _, e := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format(time.RFC3339), e.Actor, e.Action, e.Object, e.Trial,
			strings.ReplaceAll(e.Reason, "\n", " "))
	}
	return tw.Flush()
}

func auditHold(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "stagegate audit hold: TRIAL (or '*') is required\n\n%s\n", auditAbout)
		return errUsage
	}
	trial, rest := args[0], args[1:]
	fs := flag.NewFlagSet("audit hold", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	reason := fs.String("reason", "", "why (required: the case or order)")
	lift := fs.Bool("lift", false, "lift the hold instead")
	if err := parseFlags(fs, rest, stderr, auditAbout); err != nil {
		return err
	}
	actor, err := sf.actorName()
	if err != nil {
		return err
	}
	s, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.SetLegalHold(ctx, trial, !*lift, actor, *reason); err != nil {
		return err
	}
	if *lift {
		fmt.Fprintf(stdout, "legal hold on %s lifted\n", trial)
	} else {
		fmt.Fprintf(stdout, "legal hold on %s set: its audit entries are kept until the hold is lifted\n", trial)
	}
	return nil
}

func auditPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit prune", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	if err := parseFlags(fs, args, stderr, auditAbout); err != nil {
		return err
	}
	actor, err := sf.actorName()
	if err != nil {
		return err
	}
	s, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	p, err := s.PruneAudit(ctx, actor)
	if err != nil {
		return err
	}
	if p.Removed == 0 {
		fmt.Fprintf(stdout, "nothing pruned: %s\n", p.Why)
		return nil
	}
	fmt.Fprintf(stdout, "pruned %d entries through %d", p.Removed, p.Through)
	if p.Why != "" {
		fmt.Fprintf(stdout, "; kept from %d on: %s", p.StoppedAt, p.Why)
	}
	fmt.Fprintln(stdout)
	return nil
}
