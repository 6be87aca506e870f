#!/usr/bin/env bash
# bench-veth.sh — natgw against the kernel's nft NAT on the veth testbed
# (issue 6): the same generator (iperf3, UDP, 64-byte payloads, as fast as
# it can send, from pool member 10.0.1.4 to 198.18.0.10) through
#   kernel   scripts/testbed.sh up --kernel-nat (nft SNAT in the gateway namespace)
#   afpacket natgw, AF_PACKET driver, 1 worker
#   dpdk     natgw, DPDK driver over net_af_packet vdevs, 1 worker (if built in)
# and the packets per second the server received, TRIALS runs each.
# Writes one line per run to stdout ("mode trial received_pps sent lost")
# and a Markdown table to $OUT (default bench/results/veth.md). Run as root.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NATGW_TB="${NATGW_TB:-ngwbench}"
TRIALS="${TRIALS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
OUT="${OUT:-bench/results/veth.md}"
TB=scripts/testbed.sh
BIN="$PWD/bin/natgw"
CFG="$(mktemp -d)"
trap '"$TB" down >/dev/null 2>&1 || true; rm -rf "$CFG"' EXIT

[[ $EUID -eq 0 ]] || { echo "bench-veth: run as root" >&2; exit 1; }
[[ -x "$BIN" ]] || make -s build

# natgw's configuration for a driver: scripts/demo.toml with one worker.
config() {
	local driver=$1
	sed -e 's/^workers = .*/workers = 1/' scripts/demo.toml > "$CFG/$driver.toml"
	if [[ $driver == dpdk ]]; then
		sed -i -e 's/^driver = .*/driver = "dpdk"\neal_args = ["-l", "0", "--no-pci", "--vdev=net_af_packet0,iface=veth-in,qpairs=2", "--vdev=net_af_packet1,iface=veth-out,qpairs=2"]/' \
			-e 's/^port = "veth-in".*/port = "net_af_packet0"/' -e 's/^port = "veth-out".*/port = "net_af_packet1"/' "$CFG/$driver.toml"
	fi
	echo "$CFG/$driver.toml"
}

# measure prints "received_pps sent lost" of one iperf3 run.
measure() {
	local line
	line=$("$TB" exec in timeout $((SECONDS_PER_RUN + 10)) iperf3 -c 198.18.0.10 -B 10.0.1.4 -u -l 64 -b 0 \
		-t "$SECONDS_PER_RUN" -f m 2>&1 | grep -E 'receiver$' | tail -1)
	# [  5]   0.00-5.26  sec  59.3 MBytes  94.6 Mbits/sec  0.010 ms  283905/970710 (29%)  receiver
	awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) { split($i, a, "/"); lost = a[1]; sent = a[2] }
	       if ($3 ~ /-/) { split($3, t, "-"); secs = t[2] } }
	     END { if (secs == 0 || sent == 0) exit 1; printf "%.0f %d %d\n", (sent - lost) / secs, sent, lost }' <<<"$line"
}

run_mode() {
	local mode=$1 cfg
	if [[ $mode == kernel ]]; then
		"$TB" up --kernel-nat >/dev/null
	else
		"$TB" up >/dev/null
	fi
	"$TB" servers start >/dev/null
	if [[ $mode != kernel ]]; then
		cfg=$(config "$mode")
		"$TB" exec gw "$BIN" run --config "$cfg" >"$CFG/$mode.log" 2>&1 &
		for _ in $(seq 50); do
			"$TB" exec in curl -s -m 1 -o /dev/null --interface 10.0.1.4 http://198.18.0.10:8080/ && break
			sleep 0.2
		done
	fi
	for trial in $(seq "$TRIALS"); do
		echo "$mode $trial $(measure)"
	done
	"$TB" down >/dev/null
}

modes=(kernel afpacket)
if ldd "$BIN" 2>/dev/null | grep -q librte_; then # natgw was built with the DPDK driver
	modes+=(dpdk)
fi
results="$CFG/results"
for m in "${modes[@]}"; do run_mode "$m" | tee -a "$results"; done

mkdir -p "$(dirname "$OUT")"
{
	echo "| path | received packets/s (median of $TRIALS) | runs |"
	echo "|---|---|---|"
	for m in "${modes[@]}"; do
		pps=$(awk -v m="$m" '$1 == m { print $3 }' "$results" | sort -n)
		med=$(awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }' <<<"$pps")
		echo "| $m | $med | $(paste -sd, <<<"$pps") |"
	done
	echo
	echo "iperf3 UDP, 64-byte payloads, -b 0, ${SECONDS_PER_RUN} s per run, 10.0.1.4 -> 198.18.0.10;"
	echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores, $(uname -r), $(date -u +%F)."
} >"$OUT"
cat "$OUT"
