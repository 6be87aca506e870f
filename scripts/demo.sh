#!/usr/bin/env bash
# demo.sh — natgw's main job on the embedded default: build natgw, build the
# testbed of SPEC §8 (network namespaces only), run natgw between the inside
# hosts and the "internet" with scripts/demo.toml, send real traffic through
# it and show what happened. Run as root (make demo does all of this).
#
#   DEMO_KEEP=1 scripts/demo.sh    leave natgw and the testbed running and
#                                  print the commands to explore them
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NATGW_TB="${NATGW_TB:-ngw}"
TB=scripts/testbed.sh
CONFIG=scripts/demo.toml
LOG="/run/${NATGW_TB}/natgw.log"
BIN="$PWD/bin/natgw"

[[ $EUID -eq 0 ]] || { echo "demo: run as root (network namespaces)" >&2; exit 1; }

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { "$TB" exec in "$@"; }
cleanup() {
	if [[ "${DEMO_KEEP:-0}" != 1 ]]; then
		"$TB" exec gw pkill -TERM -f "$BIN run" 2>/dev/null || true
		sleep 0.5
		"$TB" down >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

say "building natgw and the testbed"
make -s build
"$TB" up >/dev/null
"$TB" servers start >/dev/null
mkdir -p "/run/${NATGW_TB}"

say "starting natgw in namespace ${NATGW_TB}-gw: $BIN run --config $CONFIG"
"$TB" exec gw "$BIN" run --config "$CONFIG" >"$LOG" 2>&1 &
for _ in $(seq 50); do
	in_ns curl -s -m 1 -o /dev/null http://198.18.0.10:8080/ && break
	sleep 0.2
done
sed 's/^/  natgw: /' "$LOG"

say "pool member 10.0.1.4 (pool web, frontend 198.19.1.10, ports 1024-2047): the server sees"
in_ns curl -s -m 5 --interface 10.0.1.4 http://198.18.0.10:8080/
say "pool member 10.0.1.5 (its own block, 2048-3071): the server sees"
in_ns curl -s -m 5 --interface 10.0.1.5 http://198.18.0.10:8080/
say "instance 10.0.3.7 (1:1 on 198.19.1.50, source port kept: 40000): the server sees"
in_ns curl -s -m 5 --interface 10.0.3.7 --local-port 40000 http://198.18.0.10:8080/
say "any other inside host, 10.0.9.9 (default SNAT on 198.19.1.20): the server sees"
in_ns curl -s -m 5 http://198.18.0.11:8080/
say "inbound to the instance (allowed: tcp/8000-8100): a server in the instance answers"
in_ns sh -c 'echo "hello from the instance" | timeout 3 nc -l -s 10.0.3.7 -p 8000 -q 1 >/dev/null' &
listener=$!
sleep 0.3
"$TB" exec srv sh -c 'timeout 3 nc -q 2 198.19.1.50 8000 </dev/null' || true
wait "$listener" || true
say "UDP echo from 10.0.1.4"
echo "ping over udp" | in_ns timeout 3 nc -u -w1 -s 10.0.1.4 198.18.0.10 9000 || true
echo
say "ping through the NAT, and natgw answering for its own address"
in_ns ping -c 2 -W 2 -I 10.0.2.1 198.18.0.10 | tail -2
in_ns ping -c 1 -W 2 10.0.0.1 | tail -2
say "traceroute: natgw (10.0.0.1) answers TTL expiry, later hops come back through the NAT"
in_ns timeout 15 traceroute -n -q1 -w1 -s 10.0.1.4 198.18.0.10 || true
say "path MTU: a 1 MB upload over the 1400-byte link (ICMP fragmentation-needed crosses natgw)"
in_ns sh -c 'head -c 1000000 /dev/zero | curl -s -m 20 --interface 10.0.1.4 -X POST --data-binary @- http://198.18.0.10:8080/upload'
say "a denied destination (deny tcp to 198.18.0.12): the connection times out"
if in_ns curl -s -m 2 http://198.18.0.12:8080/; then echo "unexpected: reached it"; else echo "dropped, as configured"; fi
say "iperf3 for 3 seconds through natgw"
in_ns timeout 10 iperf3 -c 198.18.0.10 -B 10.0.1.5 -t 3 | tail -4
say "natgw's counters"
"$TB" exec gw pkill -HUP -f "$BIN run" || true   # a reload, for the log
sleep 1
grep -E 'reloaded|traffic|exhaust' "$LOG" | sed 's/^/  natgw: /' || true
if "$TB" exec gw curl -s -m 2 http://127.0.0.1:9650/metrics >/dev/null 2>&1; then
	"$TB" exec gw curl -s -m 2 http://127.0.0.1:9650/metrics | grep -E '^natgw_(packets|drops|flows_active)' | head -20
fi

if [[ "${DEMO_KEEP:-0}" == 1 ]]; then
	cat <<MSG

natgw is still running in namespace ${NATGW_TB}-gw (log: $LOG). Try:
  $TB exec in curl --interface 10.0.1.4 http://198.18.0.10:8080/
  $TB exec in ping -I 10.0.3.7 198.18.0.10
  $TB exec gw curl -s http://127.0.0.1:9650/metrics
  $TB status
Stop it with: $TB down
MSG
else
	say "done: natgw stopped, testbed removed (DEMO_KEEP=1 keeps them)"
fi
