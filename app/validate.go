package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/natgw/natgw/mgmt"
	"github.com/natgw/natgw/mgmt/config"
)

// cmdValidate implements "natgw validate --config FILE": it prints
// "FILE: ok" and returns exitOK for a valid configuration, or prints each
// problem on its own line to stderr and returns exitFail.
func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("natgw validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `FILE` to check")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: natgw validate --config FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "natgw validate: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if *path == "" {
		fmt.Fprintln(stderr, "natgw validate: --config FILE is required")
		fs.Usage()
		return exitUsage
	}
	c, err := config.Load(*path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stderr, e)
			}
		} else {
			fmt.Fprintf(stderr, "natgw validate: %v\n", err)
		}
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	drainNotes(stdout, c)
	return exitOK
}

// drainNotes prints, for each frontend c sets to drain, whether its pools'
// members all have blocks on other frontends, laid out from scratch (a
// running node keeps blocks where it can: natgw plan says what a reload
// would do).
func drainNotes(w io.Writer, c *config.Config) {
	if !slices.ContainsFunc(c.Frontends, func(f config.Frontend) bool { return f.Drain }) {
		return
	}
	p, err := mgmt.CompilePolicy(c, nil)
	if err != nil {
		fmt.Fprintf(w, "note: the draining frontends could not be checked: %v\n", err)
		return
	}
	for _, d := range mgmt.DrainingFrontends(p) {
		if len(d.Stuck) == 0 {
			fmt.Fprintf(w, "note: frontend %s drains: every pool block is on another frontend\n", d.Frontend)
			continue
		}
		fmt.Fprintf(w, "note: frontend %s drains, but its pools' other frontends have no room for %d members, whose blocks stay on it (new flows still use it): %s\n",
			d.Frontend, len(d.Stuck), strings.Join(d.Stuck, ", "))
	}
}
