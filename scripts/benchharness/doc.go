// Command benchharness is the DPDK throughput benchmark of SPEC §9 (issues
// 4 and 6), run by scripts/bench.sh and `make bench`. It owns:
//
//   - natgw (built with -tags dpdk): generates the traffic of K
//     established 64-byte UDP flows (pool members and default-SNAT sources
//     to many destinations) as a pcap file, runs natgw's real runtime
//     (lcore.NewRuntime, its management loop, one worker polling with
//     Worker.PollOnce) over the DPDK driver on virtual devices — a
//     net_pcap vdev replaying the pcap forever (infinite_rx=1) as the
//     source, net_null as the sink — warms up (the first pass creates the
//     flows), and measures packets translated per second from the
//     worker's counters. It then stops the worker, builds the reply pcap
//     from the flow table's public ports and measures the inbound
//     direction the same way. Result: natgw-K.json.
//   - testpmd: runs dpdk-testpmd --forward-mode=macswap with one
//     forwarding core on the same vdevs and pcap files, for the same time,
//     and reads its rate from its periodic statistics. Result:
//     testpmd-*.json.
//   - report: writes bench/report.md and bench/report.json from those
//     results, the Go micro-benchmarks' output and the machine's
//     description (CPU model, cores, kernel, DPDK version).
//
// # Which core runs what
//
// The harness is a separate program, not part of natgw. In the natgw
// subcommand the worker goroutine is locked to its OS thread and pinned to
// one CPU (-cpu, the core testpmd forwards on), the management loop and
// the harness's sampling share the other cores, and EAL's main lcore is
// given to -l (not the worker's CPU). The splitPort wrappers (splitport.go)
// run on the worker for queues 0..workers-1 and on the management core for
// the last queue; their sources are switched only while the worker is
// stopped.
//
// Only natgw_dpdk.go needs DPDK (the dpdk build tag); the rest builds and
// is tested without it.
package main
