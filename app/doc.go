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
// The package's tests include natgw's end-to-end suites, which build the
// binary and run it on the veth testbed of scripts/testbed.sh: TestE2E
// (translation with real clients, issue 3), TestE2EMgmt (the management
// plane's acceptance, issue 5), TestE2EFaults (faults survived, issue 7)
// and TestSoak (flow churn for NATGW_SOAK, default 5m). Their shared
// fixtures live in e2e_testbed_test.go, e2e_natgw_test.go and
// e2e_api_test.go.
package main
