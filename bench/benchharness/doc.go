// Command benchharness is the DPDK throughput benchmark of SPEC §9 (issues
// 4 and 6), run by bench/bench.sh and `make bench`. It owns:
//
//   - natgw (built with -tags dpdk): generates the traffic of K
//     established 64-byte UDP flows (pool members and default-SNAT sources
//     to many destinations) as a pcap file, runs natgw's real runtime
//     (lcore.NewRuntime, its management loop, one worker polling with
//     Worker.PollOnce) over the DPDK driver on virtual devices — a
//     net_pcap vdev replaying the pcap forever (infinite_rx=1) as the
//     source, net_null as the sink — and measures, from the worker's
//     counters:
//   - the connection establishment rate (RFC 9693): the first pass over
//     the pcap creates every flow; the created-flows counter is sampled
//     about every millisecond, and K / (first flow to last flow) is the
//     rate, valid only if all K flows were created with no drop. The
//     source is pull-based (frames come as fast as the worker takes
//     them), so this is the rate natgw takes new connections at, not a
//     binary search of an offered rate as on real NICs;
//   - packets translated per second outbound, after a warm-up; then,
//     with the worker stopped, it builds the reply pcap from the flow
//     table's public ports and measures the inbound direction the same
//     way. Each phase also reports the longest gap between two polls and
//     how many gaps exceeded 100 µs, 1 ms and 10 ms;
//   - the connection tear-down rate (RFC 9693): with no source attached
//     and the worker polling, the harness's dataplane clock (its own
//     lcore.RuntimeConfig.Clock: real milliseconds plus an offset) jumps
//     past the UDP idle timeout; T_N is the time from the management core
//     publishing the jumped expiry tick until the worker publishes 0
//     active UDP flows, T_0 the same on the empty table, and the rate is
//     K / (T_N - T_0), with the check that K flows expired idle.
//     Result: natgw-K.json.
//   - testpmd: runs dpdk-testpmd --forward-mode=macswap with one
//     forwarding core on the same vdevs and pcap files, for the same time,
//     and reads its rate from its periodic statistics. Result:
//     testpmd-*.json.
//   - rfc9693 (gen_dpdk.go, issue 20): the RFC 9693 method, natgw's runtime
//     and one worker joined by DPDK ring devices to a rate-controlled
//     generator on another CPU; the generator's packet path is C (genc.h,
//     driven by genc.go: one cgo call per trial), its flows, frames,
//     search and histogram are gen.go's. Result: rfc9693-FLOWS.json;
//     report9693 writes the report and charts.
//   - genceiling (genceiling.go): the generator alone over two ring
//     devices joined back to back, its zero-loss ceiling without natgw
//     (rfc9693 measures it first too); -engine go measures engine.go's
//     Go generator, which the in-memory tests still use.
//   - report: writes bench/results/report.md and bench/results/report.json
//     from those results, the Go micro-benchmarks' output and the
//     machine's description (CPU model, cores, kernel, DPDK version).
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
// stopped. The worker loop counts long poll gaps itself (atomics the
// sampling goroutine reads); the tear-down timing spins, yielding, on the
// sampling side while the worker polls on its own core.
//
// The files with the dpdk build tag (natgw_dpdk.go, gen_dpdk.go, genc.go,
// genceiling.go) need DPDK; the rest builds and is tested without it.
package main
