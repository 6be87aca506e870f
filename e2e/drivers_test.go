package e2e

// drivers names the dataplane drivers built into the natgw binary the
// suite builds: the same as this test binary's (tb.build passes on the
// dpdk build tag). AF_PACKET is always there; drivers_dpdk_test.go adds
// dpdk.
var drivers = map[string]bool{"afpacket": true}
