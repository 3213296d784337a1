package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/sandbox"
)

func init() {
	register(command{name: "user", order: 50, run: cmdUser, summary: "console accounts: add NAME --role R [--trials a,b] | list | set NAME ...\n(regulator, company, reviewer, admin; opens the store directly)"})
}

const userAbout = `stagegate user — accounts of the reviewers' console and the review API.

  stagegate user add NAME --role ROLE [--trials T1,T2] [--org ORG] [--display NAME]
                          [--password-stdin | --no-password]
  stagegate user list [--json]
  stagegate user set NAME [--role ROLE] [--trials T1,T2] [--disable | --enable]
                          [--password-stdin]

Roles: reviewer (works the queue of the trials assigned with --trials),
company (sees its own trials: --trials), regulator (oversees --trials:
decides escalated incidents, reads reports and the audit trail), admin
(everything). Passwords are stored as Argon2id hashes. Without
--password-stdin, add generates a password and prints it once;
--no-password makes an account that signs in only through the trusted
reverse proxy (console.proxy_user_header). Disabling an account or changing
its password or role ends its sessions. Every change is in the audit trail.

The commands open the incident store directly (--data-dir, or --store for a
SQLite file or a postgres:// URL), also while the sandbox runs.`

// storeFlags locate the incident store for the commands that open it directly.
type storeFlags struct {
	dataDir, store, actor *string
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		dataDir: fs.String("data-dir", sandbox.DefaultDataDir, "the sandbox's data dir (the store is DATA-DIR/stagegate.db)"),
		store:   fs.String("store", "", "the incident store: a SQLite file or a postgres:// URL (overrides --data-dir)"),
		actor:   fs.String("actor", defaultActor(), "who makes the change (recorded in the audit trail)"),
	}
}

// open opens the store; a missing SQLite file is an error, not a new database.
func (f storeFlags) open(ctx context.Context) (*incidents.SQLStore, error) {
	target := *f.store
	if target == "" {
		target = filepath.Join(*f.dataDir, "stagegate.db")
	}
	if !incidents.IsPostgresDSN(target) {
		if _, err := os.Stat(target); err != nil {
			return nil, fmt.Errorf("no incident store at %s (start the sandbox once with `stagegate up`, or pass --data-dir / --store): %w", target, err)
		}
	}
	s, err := incidents.Open(ctx, target, nil)
	if err != nil {
		return nil, fmt.Errorf("open the incident store %s: %w", incidents.RedactDSN(target), err)
	}
	return s, nil
}

func (f storeFlags) actorName() (string, error) {
	if strings.TrimSpace(*f.actor) == "" {
		return "", errors.New("--actor is required (or set $STAGEGATE_ACTOR)")
	}
	return *f.actor, nil
}

func cmdUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runActions(ctx, "user", userAbout, map[string]action{
		"add":  userAdd,
		"list": userList,
		"set":  userSet,
	}, args, stdout, stderr)
}

// nameArg takes the leading NAME argument before the flags.
func nameArg(args []string, stderr io.Writer, action string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "stagegate user %s: NAME is required\n\n%s\n", action, userAbout)
		return "", nil, errUsage
	}
	return args[0], args[1:], nil
}

// readPassword reads one line from stdin.
func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(stdin, incidents.MaxPasswordBytes+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// stdin is where --password-stdin reads (tests replace it).
var stdin io.Reader = os.Stdin

func splitTrials(s string) []string {
	out := []string{}
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func userAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name, rest, err := nameArg(args, stderr, "add")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	role := fs.String("role", "", "regulator, company, reviewer or admin (required)")
	trials := fs.String("trials", "", "comma-separated trials the user may see (not for admin)")
	org := fs.String("org", "", "organisation (company, authority)")
	display := fs.String("display", "", "name shown in the console")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	noPassword := fs.Bool("no-password", false, "no password: sign-in only through the trusted reverse proxy")
	if err := parseFlags(fs, rest, stderr, userAbout); err != nil {
		return err
	}
	actor, err := sf.actorName()
	if err != nil {
		return err
	}
	if *pwStdin && *noPassword {
		return errors.New("--password-stdin and --no-password exclude each other")
	}
	pw, generated := "", false
	switch {
	case *pwStdin:
		if pw, err = readPassword(stdin); err != nil {
			return err
		}
	case !*noPassword:
		pw, generated = rand.Text(), true // 26 characters, 130 bits
	}
	s, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	u := incidents.User{Name: name, Role: *role, Org: *org, Display: *display, Trials: splitTrials(*trials)}
	if err := s.AddUser(ctx, u, pw, actor); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s added (%s", name, *role)
	if len(u.Trials) > 0 {
		fmt.Fprintf(stdout, ", trials %s", strings.Join(u.Trials, ", "))
	}
	fmt.Fprintln(stdout, ")")
	if generated {
		fmt.Fprintf(stdout, "password: %s\n(shown once; it is stored only as an Argon2id hash)\n", pw)
	}
	return nil
}

func userList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user list", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, stderr, userAbout); err != nil {
		return err
	}
	s, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	list, err := s.Users(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"users": list})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tORG\tTRIALS\tSIGN-IN\tSTATE")
	for _, u := range list {
		signIn, state := "password", "active"
		if !u.HasPassword {
			signIn = "proxy only"
		}
		if u.Disabled {
			state = "disabled"
		}
		trials := strings.Join(u.Trials, ",")
		if u.Role == incidents.RoleAdmin {
			trials = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, u.Org, trials, signIn, state)
	}
	return tw.Flush()
}

func userSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name, rest, err := nameArg(args, stderr, "set")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("user set", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	role := fs.String("role", "", "new role")
	trials := fs.String("trials", "", "new comma-separated trials (replaces the list; \"-\" for none)")
	disable := fs.Bool("disable", false, "disable the account (ends its sessions)")
	enable := fs.Bool("enable", false, "enable the account")
	pwStdin := fs.Bool("password-stdin", false, "read a new password from the first line of stdin")
	if err := parseFlags(fs, rest, stderr, userAbout); err != nil {
		return err
	}
	actor, err := sf.actorName()
	if err != nil {
		return err
	}
	var c incidents.UserChange
	if *role != "" {
		c.Role = role
	}
	if *trials != "" {
		list := splitTrials(strings.TrimPrefix(*trials, "-"))
		c.Trials = &list
	}
	switch {
	case *disable && *enable:
		return errors.New("--disable and --enable exclude each other")
	case *disable || *enable:
		c.Disabled = disable
	}
	if *pwStdin {
		pw, err := readPassword(stdin)
		if err != nil {
			return err
		}
		c.Password = &pw
	}
	if c == (incidents.UserChange{}) {
		return errors.New("nothing to change: give --role, --trials, --disable, --enable or --password-stdin")
	}
	s, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.UpdateUser(ctx, name, c, actor); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s updated\n", name)
	return nil
}
