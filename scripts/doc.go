// Package scripts holds natgw's test environment; it has no Go API of its
// own. It owns:
//
//   - install-deps.sh: installs the Debian packages the tests, the testbed
//     and the benchmarks need (iproute2, ethtool, iperf3, nftables, DPDK with
//     dpdk-testpmd, ...) and reserves 2 MB hugepages; idempotent, --dry-run.
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
//   - setup-host.sh: prepares a bare-metal host for the DPDK dataplane
//     (persistent hugepages, vfio-pci binding with dpdk-devbind.py, IOMMU
//     and CPU isolation checks); --dry-run changes nothing, and a NIC that
//     carries the default route or SSH is refused.
//   - check-dockerfile.sh: checks the repository's Dockerfile without
//     Docker (syntax, stages, COPY sources, the build stage's commands run
//     on this host, the runtime packages against apt and ldd).
//   - deploy_test.go: checks the deployment material of docs/OPERATIONS.md
//     (deploy/natgw.toml through the real loader, the systemd unit, the
//     alert rules and dashboard against SPEC §7's metric names, the two
//     scripts above) and fuzzes the loader with the example configurations.
//
// Nothing here runs on natgw's cores: the scripts run on the host as root,
// and the servers and clients inside the testbed's namespaces.
package scripts
