//go:build dpdk

// Package dpdk is natgw's own cgo binding to the system DPDK (Debian 12's
// libdpdk-dev 22.11, found with pkg-config libdpdk): the DPDK port driver
// of SPEC §3. All of natgw's import "C" and unsafe for DPDK live here, and
// the package builds only with the dpdk build tag, so a binary built
// without DPDK still has the AF_PACKET driver.
//
// # What it owns
//
//   - EAL: one rte_eal_init per process (Start), from the configured
//     eal_args with a program name, --file-prefix natgw-<pid> and
//     --in-memory added (EALArgs); rte_eal_cleanup when the Session and
//     every Port opened from it are closed. DPDK cannot initialise EAL
//     twice in one process: a second Start fails with ErrEALUsed.
//   - The packet mempool, shared by all ports, sized by MempoolSize.
//   - Ports (Session.OpenPort, implementing lcore.Port): found by PCI
//     address or vdev name, Workers RX queues and Workers+1 TX queues (the
//     last is the management core's), promiscuous, link, MTU, counters,
//     xstats, and RSS: natgw's Toeplitz key and a redirection table equal
//     to lcore.Owner's, hashing the remote endpoint (destination inside,
//     source outside), when the device supports it; otherwise software
//     ownership, logged and reported by Port.RSS.
//   - Queues (implementing lcore.Queue): C-memory burst arrays, one cgo
//     call per burst (see queue.go for how mbufs and descriptors are owned).
//
// # Which core runs it
//
// Start, OpenPort, Close, Stats, Counters, XStats, LinkUp run on the
// management core (they allocate and take mutexes). A Queue's RxBurst,
// TxBurst and Free run on the worker that owns the queue — or, for the
// last queue, the management core — never allocate and never lock.
//
// # Threading rules
//
//   - A Queue is used by one goroutine at a time. Worker queues register
//     their OS thread with EAL (rte_thread_register) on the first receive,
//     so the mempool's per-lcore cache is used; lcore.Worker.Run locks the
//     goroutine to its thread. A goroutine that is not locked still works
//     (every thread gets its own lcore id), only less efficiently.
//   - Port.Close and Session.Close only after every worker has stopped.
//   - EAL pins the thread that calls rte_eal_init to the main lcore's CPU;
//     Start restores that thread's affinity so Go's scheduler is not
//     confined to one CPU. EAL's own lcore threads idle (natgw launches
//     nothing on them); give eal_args "-l" a single core (or cores the
//     workers don't need) to keep them out of the way.
//   - GOMAXPROCS: each worker spins on one OS thread, so GOMAXPROCS must be
//     at least workers+1 (the management core, HTTP API and Go's own work
//     share the rest); app's dpdk driver raises it to that when lower.
package dpdk
