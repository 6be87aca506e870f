// Package scripts holds natgw's test environment; it has no Go API of its
// own. It is for whoever runs or writes natgw's tests and demo. It owns:
//
//   - install-deps.sh: installs the Debian packages the tests, the testbed,
//     the linters and the benchmarks need (iproute2, ethtool, iperf3,
//     nftables, shellcheck, DPDK with dpdk-testpmd, ...) and reserves 2 MB
//     hugepages; idempotent, --dry-run.
//   - testbed.sh: the test network of SPEC §8 in four network namespaces
//     (${NATGW_TB}-in, -gw, -rt, -srv) joined by veth pairs. The gw
//     namespace is left bare for natgw (links up, no addresses, offloads
//     off), or with --kernel-nat does the NAT with nftables, for tests of
//     the testbed itself and comparisons with the kernel.
//   - echoserver: the servers' program (HTTP answering the client address
//     it saw, UDP and TCP echo, sized downloads and uploads), started with
//     iperf3 by `testbed.sh servers start`.
//   - testbed_test.sh: the end-to-end check of all of the above, which
//     TestTestbed runs under `go test ./scripts/...`.
//   - demo.sh, demo.toml: `make demo`, natgw on the testbed with real
//     traffic, and its configuration.
//   - trafficgen_test.go: checks the hardware traffic generator material
//     of bench/trex and bench/pktgen without the generators.
//
// Nothing here runs on natgw's cores: the scripts run on the host as root,
// and the servers and clients inside the testbed's namespaces. The
// benchmarks are in bench/, the deployment material in deploy/.
package scripts
