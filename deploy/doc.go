// Package deploy holds what an operator installs natgw with; it has no Go
// API of its own, only the tests of that material. It is for whoever puts
// natgw on a host (docs/OPERATIONS.md is their guide). It owns:
//
//   - natgw.toml: the commented production configuration example.
//   - natgw.service: the systemd unit (reload validates, then SIGHUP).
//   - prometheus-alerts.yml, grafana-dashboard.json: alert rules and the
//     dashboard, over SPEC §7's metrics only.
//   - setup-host.sh: prepares a bare-metal host for the DPDK dataplane
//     (persistent hugepages, vfio-pci binding with dpdk-devbind.py, IOMMU
//     and CPU isolation checks); --dry-run changes nothing, and a NIC that
//     carries the default route or SSH is refused.
//   - deploy_test.go: checks the above (the example through the real
//     loader, the unit, the rules and dashboard against SPEC §7's metric
//     names, setup-host.sh's dry runs, OPERATIONS.md's coverage) and fuzzes
//     the loader with the example configurations.
//   - dockerfile_test.go: checks the repository's Dockerfile: every shared
//     library of natgw built with DPDK (ldd) belongs to a Debian package
//     (dpkg -S) its runtime stage installs; where a Docker daemon runs, the
//     image is built and natgw version runs in it.
//
// The test environment (testbed, installer, demo) is in scripts/, the
// benchmarks in bench/.
package deploy
