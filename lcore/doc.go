// Package lcore is natgw's dataplane runtime: the poll-mode worker loops
// that own the flow tables, the management loop, the handoff rings between
// workers and the owner function (Toeplitz hash of the remote endpoint),
// and the fragment table (fragment.go): every fragment goes through the
// worker tracking its datagram, which holds later fragments that arrive
// before the first, then on to the flow's owner. The drivers live below
// it: afpacket (pure Go; its fanout program delivers frames to their
// owner's queue) and dpdk (cgo).
//
// Which core runs what: Worker.PollOnce and everything it calls (classify,
// translate, forward, glean, the query slots) run on one worker lcore,
// locked to its OS thread and, with dataplane.worker_cpus, pinned to its
// CPU (PinThread). Manager.Run runs on the management core. NewRuntime,
// Start, Stop and ConfineProcess (which keeps the process's other threads
// off the worker CPUs, before the driver starts) run on the goroutine that
// starts natgw.
package lcore
