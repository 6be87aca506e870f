#!/usr/bin/env bash
# pgo.sh refreshes the profiles the Go compiler optimises natgw with
# (profile-guided optimisation: app/default.pgo for bin/natgw, which
# bench/benchharness/default.pgo links to for the benchmark harness;
# `go build` picks a main package's default.pgo up by itself). The profile is a CPU profile
# of natgw's worker in the DPDK harness, 1 M established UDP flows,
# outbound then inbound, merged: the packet path natgw spends its time on.
# Measured effect on the 2-vCPU EPYC VM: about +3% Mpps at 1 M flows
# (BENCHMARKS.md). Rerun it after changing the packet path.
#
# Usage: sudo bench/pgo.sh        (root: DPDK needs hugepages)
# Environment: NATGW_PGO_FLOWS (1000000), NATGW_PGO_SECONDS (10),
# NATGW_BENCH_CPU (the worker's CPU; default the last one).
set -euo pipefail

readonly HUGEPAGES_SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
die() {
	printf 'pgo: %s\n' "$*" >&2
	exit 1
}
say() { printf 'pgo: %s\n' "$*"; }

((EUID == 0)) || die "must run as root (DPDK needs hugepages): try sudo $0"
cd "$(dirname "$0")/.."
GO="${GO:-go}"
flows="${NATGW_PGO_FLOWS:-1000000}"
seconds="${NATGW_PGO_SECONDS:-10}"
ncpu="$(nproc)"
cpu="${NATGW_BENCH_CPU:-$((ncpu - 1))}"
[[ "$flows" =~ ^[0-9]+$ && "$seconds" =~ ^[0-9]+$ && "$cpu" =~ ^[0-9]+$ ]] ||
	die "NATGW_PGO_FLOWS, NATGW_PGO_SECONDS and NATGW_BENCH_CPU must be numbers"
((ncpu > 1 && cpu < ncpu)) || die "needs 2 CPUs and NATGW_BENCH_CPU below $ncpu"
main_lcore=0
((cpu != 0)) || main_lcore=1

scripts/install-deps.sh
# net_pcap keeps the whole pcap in mbufs: about 2.4 KB per flow.
need=$(((flows + 16384) * 2400 / 2097152 + 128))
orig="$(cat "$HUGEPAGES_SYSFS")"
work="$(mktemp -d /tmp/natgw-pgo.XXXXXX)"
cleanup() {
	[[ "$(cat "$HUGEPAGES_SYSFS")" == "$orig" ]] || echo "$orig" >"$HUGEPAGES_SYSFS" || true
	rm -rf "$work"
}
trap cleanup EXIT
((orig >= need)) || echo "$need" >"$HUGEPAGES_SYSFS"

"$GO" build -tags dpdk -o "$work/benchharness" ./bench/benchharness
say "profiling the worker: $flows flows, ${seconds}s per direction, CPU $cpu"
"$work/benchharness" natgw -dir "$work" -flows "$flows" -duration "$seconds" -warmup 2 \
	-cpu "$cpu" -l "$main_lcore" -cpuprofile 2>"$work/natgw.log" ||
	{
		tail -n 20 "$work/natgw.log" >&2
		die "the harness failed"
	}
"$GO" tool pprof -proto "$work/natgw-$flows-out.pprof" "$work/natgw-$flows-in.pprof" >"$work/merged.pgo"
cp "$work/merged.pgo" app/default.pgo
say "wrote app/default.pgo"
