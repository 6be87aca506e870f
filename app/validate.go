package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

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
	if _, err := config.Load(*path); err != nil {
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
	return exitOK
}
