// Package lcore is natgw's dataplane runtime: the poll-mode worker loops
// that own the flow tables, the management loop, the handoff rings between
// workers and the owner function (Toeplitz hash of the remote endpoint). The
// drivers live below it: afpacket (pure Go) and dpdk (cgo).
package lcore
