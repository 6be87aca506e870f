package main

import (
	"fmt"
	"io"
	"runtime"
)

// cmdVersion implements "natgw version": it prints
// "natgw <version> (<go version>, <GOOS>/<GOARCH>)".
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "natgw version: unexpected argument %q\nusage: natgw version\n", args[0])
		return exitUsage
	}
	fmt.Fprintln(stdout, versionLine())
	return exitOK
}

// versionLine returns the version as cmdVersion prints it.
func versionLine() string {
	return fmt.Sprintf("natgw %s (%s, %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
