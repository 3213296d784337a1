// Command stagegate runs the Stagegate regulatory sandbox: flags → config →
// sandbox.New → Run(ctx). Each sub-command is one role or tool, registered by its
// own file with register().
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one sub-command.
type command struct {
	name    string
	summary string // one line for the command list
	order   int    // position in the list
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a sub-command; each command's file calls it from init.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("stagegate: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func init() {
	register(command{name: "version", summary: "print the version", order: 900, run: func(_ context.Context, _ []string, stdout, _ io.Writer) error {
		fmt.Fprintln(stdout, "stagegate", version)
		return nil
	}})
}

func usage() string {
	list := make([]command, 0, len(commands))
	for _, c := range commands {
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].order != list[j].order {
			return list[i].order < list[j].order
		}
		return list[i].name < list[j].name
	})
	var b strings.Builder
	b.WriteString("stagegate — a regulatory sandbox for staged LLM deployment and risk monitoring\n\n")
	b.WriteString("Usage:\n  stagegate <command> [flags]\n\nCommands:\n")
	for _, c := range list {
		lines := strings.Split(c.summary, "\n")
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "  %-10s %s\n", "", l)
		}
	}
	fmt.Fprintf(&b, "  %-10s %s\n", "help", "show this help, or 'stagegate help <command>'")
	b.WriteString("\nRun 'stagegate <command> --help' for the flags of a command.\n")
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a sub-command and returns the exit status; ctx ends on SIGINT/SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	name, rest := args[0], args[1:]
	var err error
	switch name {
	case "help", "-h", "--help", "-help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage())
		return 0
	case "--version", "-version":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "stagegate: unknown command %q\n\n%s", name, usage())
		return 2
	}
	err = c.run(ctx, rest, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "stagegate: %v\n", err)
		return 1
	}
}

// errUsage marks a usage error already reported to the user.
var errUsage = errors.New("usage")

// parseFlags parses with a help text that says what the command does.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer, about string) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return nil
}

// leadingArg takes the positional argument that comes before a command's flags
// (a trial, an experiment name); a help flag in its place passes through to the
// flag set, anything else missing prints usage.
func leadingArg(args []string, stderr io.Writer, usage string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return "", args, nil
		}
		fmt.Fprintln(stderr, usage)
		return "", nil, errUsage
	}
	return args[0], args[1:], nil
}
