package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// subcommands maps a subcommand to its function; the natgw subcommand is
// registered by natgw_dpdk.go when the harness is built with DPDK.
var subcommands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"testpmd": cmdTestpmd,
	"report":  cmdReport,
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run dispatches a command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(args) == 0 {
		fmt.Fprintf(stderr, "usage: benchharness %s ...\n", strings.Join(names, "|"))
		return 2
	}
	cmd, ok := subcommands[args[0]]
	if !ok {
		if args[0] == "natgw" {
			fmt.Fprintln(stderr, "benchharness: built without DPDK: build with -tags dpdk (needs libdpdk-dev)")
		} else {
			fmt.Fprintf(stderr, "benchharness: unknown subcommand %q (have %s)\n", args[0], strings.Join(names, ", "))
		}
		return 2
	}
	if err := cmd(args[1:], stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "benchharness %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// spareName is the one-frame pcap kept next to a benchmark pcap: net_pcap
// gets one queue pair per rx_pcap argument, and natgw wants two TX queues,
// so each source vdev names a second, unused, RX file.
func spareName(pcap string) string {
	return filepath.Join(filepath.Dir(pcap), "spare.pcap")
}
