// Command natgw is the natgw appliance's single binary: it runs the
// appliance and offers the operator commands of SPEC §4 (validate, version,
// ctl). This package owns only the command line and the wiring of the other
// packages; it has no packet-path code. It runs in the process's main
// goroutine, before and around the cores that lcore and mgmt start.
//
// Commands are rows of the table returned by commands (main.go): to add
// one, write its func(args []string, stdout, stderr io.Writer) int in its
// own file and add a row.
//
// natgw's end-to-end suites, which build this binary and run it on the
// veth testbed of scripts/testbed.sh, are package e2e.
package main
