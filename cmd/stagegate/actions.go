package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// action runs one action of a command with the arguments after its name.
type action func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// runActions is the body of a command made of actions (stagegate trial
// apply|list|show|...): no action prints about as a usage error, a help
// argument prints it as help, an unknown action is a usage error naming it.
func runActions(ctx context.Context, name, about string, actions map[string]action, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, about)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	run, ok := actions[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "stagegate %s: unknown action %q\n\n%s\n", name, args[0], about)
		return errUsage
	}
	return run(ctx, args[1:], stdout, stderr)
}
