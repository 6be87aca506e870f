package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/natgw/natgw/mgmt/config"
)

// cmdClusterCheck implements "natgw cluster-check FILE FILE...": each
// node's configuration must be valid, and together they must not share
// a public address (nor inside address, BGP source or router id), since
// nodes behind ECMP share no state (issue 17). It prints "N nodes: ok"
// or every problem, and returns exitFail on any.
func cmdClusterCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("natgw cluster-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), "usage: natgw cluster-check FILE FILE...") }
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() < 2 {
		fmt.Fprintln(stderr, "natgw cluster-check: name the configuration file of every node (two at least)")
		fs.Usage()
		return exitUsage
	}
	var nodes []config.Node
	failed := false
	for _, path := range fs.Args() {
		c, err := config.Load(path)
		if err != nil {
			printConfigError(stderr, err)
			failed = true
			continue
		}
		nodes = append(nodes, config.Node{Name: path, Config: c})
	}
	if failed {
		return exitFail
	}
	if err := config.CheckCluster(nodes); err != nil {
		printConfigError(stderr, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%d nodes: ok\n", len(nodes))
	return exitOK
}

// printConfigError prints each problem of a configuration error on its
// own line.
func printConfigError(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e)
		}
		return
	}
	fmt.Fprintf(w, "natgw: %v\n", err)
}
