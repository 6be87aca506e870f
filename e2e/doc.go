// Package e2e is natgw's end-to-end suite: it builds the natgw binary
// (./app, with the dpdk build tag when this test binary has it) and the
// echo server, brings up the veth testbed of scripts/testbed.sh, and runs
// natgw in the gateway namespace against real clients. It needs root and
// the tools scripts/install-deps.sh installs; without them its tests skip
// (NATGW_REQUIRE_TESTBED=1 NATGW_REQUIRE_E2E=1 make them fail instead).
//
// The suites: TestE2E (translation with real clients, issue 3),
// TestE2EMgmt (the management plane's acceptance, issue 5), TestE2EFaults
// (faults survived, issue 7), TestSoak (flow churn for NATGW_SOAK, default
// 5m) and the edge, fragment, hairpin, hostile-input, NAT-behaviour,
// reload and spoofing suites in e2e_*_test.go. Their shared fixtures live
// in e2e_testbed_test.go (the testbed and its namespaces),
// e2e_natgw_test.go (natgw's configuration and process) and
// e2e_api_test.go (the management API). Run them one at a time on a
// machine: each brings up its own testbed with natgw's fixed addresses.
//
// The package has no code outside its tests; this file only documents it.
package e2e
