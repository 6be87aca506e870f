package main

// driverHints tells, for a driver that may be missing from this binary,
// how to build it in; run.go may append it to its "not built into this
// binary" error.
var driverHints = map[string]string{
	"dpdk": "rebuild with -tags dpdk (make build does so when pkg-config finds libdpdk; scripts/install-deps.sh installs it)",
}
