package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// version is the release this binary was built from, set at build time with
// -ldflags "-X main.version=v1.2.3" (the Makefile does this).
var version = "dev"

// Exit codes of every command.
const (
	// exitOK means the command did what it was asked.
	exitOK = 0
	// exitFail means the command ran and the answer is no (an invalid
	// configuration) or it failed at run time.
	exitFail = 1
	// exitUsage means the command line was wrong.
	exitUsage = 2
)

// command is one natgw subcommand.
type command struct {
	// name is the word that selects the command.
	name string
	// synopsis is the command's usage line, without "natgw ".
	synopsis string
	// summary says in a few words what the command does.
	summary string
	// run executes the command with the arguments after its name and
	// returns the process exit code.
	run func(args []string, stdout, stderr io.Writer) int
}

// commands returns the command table, in the order usage lists them.
func commands() []command {
	return []command{
		{"run", "run --config FILE", "run the appliance in the foreground", cmdRun},
		{"validate", "validate --config FILE", "check a configuration file", cmdValidate},
		{"plan", "plan --config FILE [--mgmt URL] [--json]", "what loading FILE would do to the running appliance (applies nothing)", cmdPlan},
		{"cluster-check", "cluster-check FILE FILE...", "check the configurations of nodes behind ECMP together", cmdClusterCheck},
		{"version", "version", "print the version", cmdVersion},
		{"ctl", "ctl [--mgmt URL] [--json] [--token-file F] status | mapping IP | flows [--private IP] [--limit N] | reload [--yes] | drain", "query a running appliance", cmdCtl},
		{"help", "help", "print this help", cmdHelp},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args (the command line without the program name) to a
// command and returns the exit code. Tests call it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "natgw: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// usage writes the list of commands to w.
func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("usage: natgw COMMAND [ARGS]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  natgw %s\n        %s\n", c.synopsis, c.summary)
	}
	io.WriteString(w, b.String())
}

// cmdHelp prints the usage. It exits with exitUsage, like running natgw
// without a command, so scripts never mistake help output for a result.
func cmdHelp(args []string, stdout, stderr io.Writer) int {
	usage(stderr)
	return exitUsage
}
