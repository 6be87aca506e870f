#!/usr/bin/env bash
# bench.sh — natgw's benchmark (SPEC §9, issues 4, 6 and 20), run by `make bench`.
#
# Usage: bench/bench.sh [--quick] [--help]
#
#   --quick   previous method only: 1 K flows, 3 s per measurement, short
#             Go benchmarks (a smoke test of the whole chain)
#
# The RFC 9693 method (issue 20; bench/benchharness rfc9693, report in
# bench/results/rfc9693.md with SVG charts) runs first:
#   - a rate-controlled generator on its own CPU (CPU 0) feeds natgw's
#     worker (last CPU) through DPDK ring devices, RFC 4814 pseudorandom
#     ports; a frame a full ring refuses is lost;
#   - phase 1: connections (first packet out, reply back, both translated)
#     at a rate found by zero-loss binary search, from an empty table; then
#     the table is filled with the N flows;
#   - phase 2: established 64-byte UDP traffic in both directions at once,
#     two-way throughput by zero-loss binary search (loss tolerance 0);
#     latency p50/p99/p99.9 at 10, 50 and 90 % of it;
#   - the tear-down rate under 50 % load: half the flows idle out while
#     the other half carry the load (bench/README.md; two more steps);
#   - flows live in a table sized for the peak (NATGW_BENCH_CAPACITY);
#   - in-process (benchharness rfc9693: natgw's runtime in the harness,
#     net_ring devices), then through `natgw run` (benchharness
#     rfc9693-run: the natgw binary built here with a deployment-style
#     configuration, joined to the generator's process by net_memif
#     devices, read through its own /metrics; natgw's memory per live
#     flow and per flow of capacity).
# Quick mode (the default of `make bench` on a small VM): 3 s elementary
# steps; in-process 1 K, 64 K, 1 M and 16 M flows, through natgw run 1 K
# and 1 M; about 10-14 minutes (bench/README.md), then the previous method
# (about 12): some 25 minutes in all.
# NATGW_BENCH_REFERENCE=1: 60 s steps (RFC 9693's reference), 1 K, 64 K,
# 1 M and 16 M flows both ways, about three hours. Then the previous
# method (issue 6) runs, unless NATGW_BENCH_PREVIOUS=0.
#
# Runs, as root, on any Linux host with DPDK (Debian: scripts/install-deps.sh
# installs it; nothing is installed silently by this script itself):
#   1. the Go micro-benchmarks of nat and portalloc (go test -bench);
#   2. the DPDK harness (bench/benchharness, natgw's real runtime and
#      DPDK driver, one worker core), at each flow count N: the connection
#      establishment rate (the first pass over the pcap creates N flows;
#      N / first-to-last flow, from the worker's counters sampled every
#      ~1 ms, no drop allowed); throughput of 64-byte UDP frames of
#      established flows from a net_pcap infinite_rx source into a net_null
#      sink, outbound and inbound, with the poll-gap counts (>100 us, >1 ms,
#      >10 ms); and the connection tear-down rate N / (T_N - T_0) (RFC 9693:
#      the clock jumps past the UDP idle timeout, the idle worker expires
#      the N flows in T_N, the same jump on the empty table takes T_0);
#   3. dpdk-testpmd --forward-mode=macswap on the same vdevs and pcap files,
#      one forwarding core (NATGW_BENCH_PMD_DURATION seconds each: its
#      rate is steady; natgw's longer run is for the worker stall);
# and writes bench/results/report.md and bench/results/report.json.
#
# Environment (defaults in brackets):
#   NATGW_BENCH_REFERENCE  1: the RFC 9693 reference run (60 s steps, all scales)
#   NATGW_BENCH_RFC_FLOWS  live flows of the RFC 9693 method ["1000 1000000";
#                          reference "1000 64000 1000000 16000000"]
#   NATGW_BENCH_RUN_FLOWS  live flows through natgw run ["1000 1000000"; reference
#                          "1000 64000 1000000 16000000"; "" skips it]
#   NATGW_BENCH_MGMT       natgw run's management endpoint [127.0.0.1:19693]
#   NATGW_BENCH_CAPACITY   natgw's flow_capacity in the RFC 9693 method [16777216]
#   NATGW_BENCH_STEP       seconds per elementary step [3; reference 60]
#   NATGW_BENCH_RING       frames per ring between the generator and natgw
#                          (RFC 9693 method: -ring, natgw's rx_descriptors) [4096]
#   NATGW_BENCH_PREVIOUS   0: skip the previous method (issue 6) [1]
#   NATGW_BENCH_FLOWS      flow counts ["1000 1000000"]
#   NATGW_BENCH_DURATION   seconds natgw is measured per direction [60]: issue 6
#                          asks for the worker stall (longest gap between two
#                          polls) of a 60 s run
#   NATGW_BENCH_PMD_DURATION  seconds testpmd is measured per pcap [10]
#   NATGW_BENCH_WARMUP     seconds of warm-up before measuring [2]
#   NATGW_BENCH_CPU        CPU of natgw's worker and testpmd's forwarding core [last CPU]
#   NATGW_BENCH_HUGEPAGES  2 MB hugepages to reserve while running [2048]; the
#                          previous number is restored on exit
#   NATGW_BENCH_PROFILE    1: CPU profiles of natgw's measured intervals, kept in
#                          the work directory (go tool pprof WORK/benchharness WORK/natgw-*.pprof)
#   NATGW_BENCH_SESSION_LOG  1: run each flow count a second time with NAT
#                          session logging on (IPFIX to a sink on the
#                          loopback), for the establishment rate with and without
#   NATGW_BENCH_WORK       work directory (pcaps, raw results, logs) [mktemp -d]
#   NATGW_BENCH_OUT        report directory [bench/results]
#   NATGW_BENCH_GOBENCHTIME  go test -benchtime [1s]
#   GO                     go command [go]
set -euo pipefail

readonly HUGEPAGES_SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
readonly FREE_SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages

die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}

say() { printf 'bench: %s\n' "$*"; }

usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; }

quick=0
while (($# > 0)); do
	case "$1" in
	--quick) quick=1 ;;
	--help | -h)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument: $1"
		;;
	esac
	shift
done

((EUID == 0)) || die "must run as root (DPDK needs hugepages): try sudo $0"
cd "$(dirname "$0")/.."

GO="${GO:-go}"
flows="${NATGW_BENCH_FLOWS:-1000 1000000}"
duration="${NATGW_BENCH_DURATION:-60}"
pmd_duration="${NATGW_BENCH_PMD_DURATION:-10}"
warmup="${NATGW_BENCH_WARMUP:-2}"
gobenchtime="${NATGW_BENCH_GOBENCHTIME:-1s}"
ncpu="$(nproc)"
cpu="${NATGW_BENCH_CPU:-$((ncpu - 1))}"
want_pages="${NATGW_BENCH_HUGEPAGES:-2048}"
out="${NATGW_BENCH_OUT:-bench/results}"
notes=()
reference="${NATGW_BENCH_REFERENCE:-0}"
rfc_flows="${NATGW_BENCH_RFC_FLOWS:-1000 64000 1000000 16000000}"
run_flows="${NATGW_BENCH_RUN_FLOWS-1000 1000000}"
rfc_step="${NATGW_BENCH_STEP:-3}"
if [[ "$reference" == 1 ]]; then
	run_flows="${NATGW_BENCH_RUN_FLOWS-1000 64000 1000000 16000000}"
	rfc_step="${NATGW_BENCH_STEP:-60}"
fi
mgmt="${NATGW_BENCH_MGMT:-127.0.0.1:19693}"
capacity="${NATGW_BENCH_CAPACITY:-16777216}"
# Rings of 4096 frames between the generator and natgw, both modes: the
# usual production RX ring (the maximum of ixgbe, i40e and ice), which an
# operator sets with dataplane.rx_descriptors. 1024 (natgw's default)
# holds 0.7 ms at 1.5 Mpps a direction, shorter than this VM's 0.8-2 ms
# vCPU stalls, and the zero-loss search then measures the stalls
# (BENCHMARKS.md, "Ring depth and zero loss"). The report states the size.
ring="${NATGW_BENCH_RING:-4096}"
previous="${NATGW_BENCH_PREVIOUS:-1}"
[[ "$rfc_step" =~ ^[0-9]+(\.[0-9]+)?$ && "$capacity" =~ ^[0-9]+$ ]] ||
	die "NATGW_BENCH_STEP must be a number of seconds and NATGW_BENCH_CAPACITY a number of flows"
rfc_notes=()
if [[ "$reference" != 1 ]]; then
	rfc_notes+=("quick run: ${rfc_step} s elementary steps (RFC 9693's reference is 60 s: NATGW_BENCH_REFERENCE=1), flows: $rfc_flows in-process, ${run_flows:-none} through natgw run")
fi
if ((quick)); then
	flows=1000 duration=3 pmd_duration=3 warmup=1 gobenchtime=100ms
	notes+=("--quick run: 1 K flows, 3 s per measurement, Go benchmarks at -benchtime 100ms; not a reference run")
fi
[[ "$duration" =~ ^[0-9]+$ && "$pmd_duration" =~ ^[0-9]+$ && "$warmup" =~ ^[0-9]+$ && "$want_pages" =~ ^[0-9]+$ && "$cpu" =~ ^[0-9]+$ ]] ||
	die "NATGW_BENCH_DURATION, _PMD_DURATION, _WARMUP, _HUGEPAGES and _CPU must be numbers"
((cpu < ncpu)) || die "NATGW_BENCH_CPU=$cpu: this machine has CPUs 0-$((ncpu - 1))"
# EAL's main lcore goes on another CPU than the measured core.
main_lcore=0
((cpu != 0)) || main_lcore=1
((ncpu > 1)) || die "needs at least 2 CPUs: one measured core, one for EAL's main lcore and natgw's management core"

# 1. Dependencies (DPDK, dpdk-testpmd, hugetlbfs): the project's installer.
scripts/install-deps.sh

# 2. Hugepages: net_pcap with infinite_rx keeps a whole pcap in mbufs (1 M
# frames: about 2.5 GB). Raise the reservation for the run, restore it after.
orig_pages="$(cat "$HUGEPAGES_SYSFS")"
restore_pages() {
	if [[ -n "${orig_pages:-}" && "$(cat "$HUGEPAGES_SYSFS")" != "$orig_pages" ]]; then
		echo "$orig_pages" >"$HUGEPAGES_SYSFS" || true
	fi
}
work="${NATGW_BENCH_WORK:-}"
cleanup() {
	restore_pages
	if [[ -z "${NATGW_BENCH_WORK:-}" && "${NATGW_BENCH_PROFILE:-0}" != 1 && -n "${work:-}" ]]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT
if ((orig_pages < want_pages)); then
	say "reserving $want_pages hugepages of 2 MB for the run (was $orig_pages; restored on exit)"
	echo "$want_pages" >"$HUGEPAGES_SYSFS"
fi
max_flows=0
for f in $flows; do
	[[ "$f" =~ ^[0-9]+$ ]] || die "NATGW_BENCH_FLOWS: '$f' is not a number"
	((f > max_flows)) && max_flows=$f
done
# About 2.4 KB per mbuf (2176-byte buffers), plus 256 MB for the rest.
need_pages=$(((max_flows + 16384) * 2400 / 2097152 + 128))
free_pages="$(cat "$FREE_SYSFS")"
((free_pages >= need_pages)) ||
	die "$free_pages free hugepages of 2 MB, the largest run needs about $need_pages: raise NATGW_BENCH_HUGEPAGES or lower NATGW_BENCH_FLOWS"

if [[ -z "$work" ]]; then
	work="$(mktemp -d /tmp/natgw-bench.XXXXXX)"
else
	mkdir -p "$work"
fi
rm -f "$work"/natgw-*.json "$work"/testpmd-*.json
mkdir -p "$out"
say "work directory: $work"

# 3. The harness (needs the DPDK build tag).
pkg-config --exists libdpdk || die "pkg-config libdpdk fails: DPDK is not installed (scripts/install-deps.sh)"
"$GO" build -tags dpdk -o "$work/benchharness" ./bench/benchharness
# natgw itself, as `make build` builds it, for the runs through natgw run.
"$GO" build -trimpath -tags dpdk -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o "$work/natgw" ./app

# enough_memory FLOWS: whether a run of FLOWS live flows in the
# $capacity-flow table fits the memory available: the table (128 bytes per
# flow of capacity), the generator (9 bytes per flow; 16 counted) and 512 MB more.
enough_memory() {
	local need_kb avail_kb
	need_kb=$(((capacity * 128 + $1 * 16) / 1024 + 524288))
	avail_kb="$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)"
	if ((avail_kb < need_kb)); then
		say "skipping $1 flows: about $((need_kb / 1024)) MB needed, $((avail_kb / 1024)) MB available"
		rfc_notes+=("$1 flows not run: about $((need_kb / 1024)) MB of memory needed, $((avail_kb / 1024)) MB available")
		return 1
	fi
}

# 4. The RFC 9693 method (issue 20): generator on CPU 0 (or the first CPU
# that is not the worker's), natgw's worker on $cpu.
gen_cpu=0
((cpu != 0)) || gen_cpu=1
rm -f "$work"/rfc9693-*.json
for f in $rfc_flows; do
	[[ "$f" =~ ^[0-9]+$ ]] || die "NATGW_BENCH_RFC_FLOWS: '$f' is not a number"
	((f <= capacity)) || die "NATGW_BENCH_RFC_FLOWS: $f flows do not fit a table of NATGW_BENCH_CAPACITY=$capacity"
	enough_memory "$f" || continue
	say "RFC 9693: $f flows in a $capacity-flow table, ${rfc_step}s steps, worker on CPU $cpu, generator on CPU $gen_cpu"
	"$work/benchharness" rfc9693 -dir "$work" -flows "$f" -capacity "$capacity" -step "$rfc_step" \
		-cpu "$cpu" -gen-cpu "$gen_cpu" -l "$gen_cpu" -ring "$ring" 2>"$work/rfc9693-$f.log" | tee -a "$work/rfc9693.txt" ||
		{
			tail -n 20 "$work/rfc9693-$f.log" >&2
			say "RFC 9693 run of $f flows failed (log in $work/rfc9693-$f.log); the report shows its error"
		}
done
# Through natgw run: the binary above, its worker on $cpu (worker_cpus),
# the generator's process on $gen_cpu, memif sockets in the work directory.
for f in $run_flows; do
	[[ "$f" =~ ^[0-9]+$ ]] || die "NATGW_BENCH_RUN_FLOWS: '$f' is not a number"
	((f <= capacity)) || die "NATGW_BENCH_RUN_FLOWS: $f flows do not fit a table of NATGW_BENCH_CAPACITY=$capacity"
	enough_memory "$f" || continue
	say "RFC 9693 through natgw run: $f flows in a $capacity-flow table, ${rfc_step}s steps, worker on CPU $cpu, generator on CPU $gen_cpu"
	"$work/benchharness" rfc9693-run -natgw "$work/natgw" -dir "$work" -flows "$f" -capacity "$capacity" -step "$rfc_step" \
		-cpu "$cpu" -gen-cpu "$gen_cpu" -l "$gen_cpu" -mgmt "$mgmt" -sock-dir "$work/memif" -ring "$ring" 2>"$work/rfc9693-run-$f.log" |
		tee -a "$work/rfc9693.txt" ||
		{
			tail -n 20 "$work/rfc9693-run-$f.log" >&2
			say "RFC 9693 run of $f flows through natgw run failed (logs in $work/rfc9693-run-$f.log and $work/natgw-run-$f.log); the report shows its error"
		}
done
rfc_note_args=()
for n in "${rfc_notes[@]}"; do
	rfc_note_args+=(-note "$n")
done
"$work/benchharness" report9693 -dir "$work" -out "$out" -repo . "${rfc_note_args[@]}"
if [[ "$previous" == 0 ]]; then
	say "NATGW_BENCH_PREVIOUS=0: the previous method (issue 6) is skipped"
	exit 0
fi

# 5. Go micro-benchmarks of the translation path and port allocation.
say "Go micro-benchmarks (nat, portalloc), -benchtime $gobenchtime"
"$GO" test -run '^$' -bench . -benchmem -benchtime "$gobenchtime" ./nat/... ./portalloc/... | tee "$work/gobench.txt"

# 6. The previous method (issue 6): natgw, then testpmd on the pcaps natgw's run wrote, per flow count.
profile=()
[[ "${NATGW_BENCH_PROFILE:-0}" == 1 ]] && profile=(-cpuprofile)
for f in $flows; do
	say "natgw: $f flows, one worker on CPU $cpu, ${warmup}s warm-up + ${duration}s per direction"
	"$work/benchharness" natgw -dir "$work" -flows "$f" -duration "$duration" -warmup "$warmup" \
		-cpu "$cpu" -l "$main_lcore" "${profile[@]}" 2>"$work/natgw-$f.log" ||
		{
			tail -n 20 "$work/natgw-$f.log" >&2
			die "natgw harness failed ($f flows): log in $work/natgw-$f.log"
		}
	if [[ "${NATGW_BENCH_SESSION_LOG:-0}" == 1 ]]; then
		say "natgw: $f flows with NAT session logging on"
		"$work/benchharness" natgw -dir "$work" -flows "$f" -duration "$duration" -warmup "$warmup" \
			-cpu "$cpu" -l "$main_lcore" -session-log -o "$work/sessionlog-$f.json" 2>"$work/sessionlog-$f.log" ||
			{
				tail -n 20 "$work/sessionlog-$f.log" >&2
				die "natgw harness failed ($f flows, session logging on): log in $work/sessionlog-$f.log"
			}
	fi
	for dir in out in; do
		say "testpmd macswap: $dir-$f.pcap"
		"$work/benchharness" testpmd -pcap "$work/$dir-$f.pcap" -o "$work/testpmd-$dir-$f.json" \
			-duration "$pmd_duration" -warmup "$warmup" -l "$main_lcore,$cpu" -log "$work/testpmd-$dir-$f.log" ||
			die "testpmd failed on $dir-$f.pcap: log in $work/testpmd-$dir-$f.log"
	done
done

# 7. The previous method's report.
note_args=()
for n in "${notes[@]}"; do
	note_args+=(-note "$n")
done
"$work/benchharness" report -dir "$work" -gobench "$work/gobench.txt" -md "$out/report.md" -json "$out/report.json" -repo . "${note_args[@]}"
if [[ -n "${NATGW_BENCH_WORK:-}" || "${NATGW_BENCH_PROFILE:-0}" == 1 ]]; then
	say "raw results, pcaps, profiles and logs kept in $work"
fi
