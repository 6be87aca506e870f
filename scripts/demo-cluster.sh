#!/usr/bin/env bash
# demo-cluster.sh — two natgw nodes behind ECMP, announced by BGP to two FRR
# routers (scripts/testbed-cluster.sh): watch the routers learn the nodes,
# flows spread over both, a node killed and its routes gone, and a drain.
# Run as root (make demo-cluster does all of this).
#
#   DEMO_KEEP=1 scripts/demo-cluster.sh   leave everything running and print
#                                         the commands to explore it
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NATGW_TB="${NATGW_TB:-ngc}"
TB=scripts/testbed-cluster.sh
BIN="$PWD/bin/natgw"
RUN="/run/${NATGW_TB}"

[[ $EUID -eq 0 ]] || { echo "demo-cluster: run as root (network namespaces)" >&2; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
	if [[ "${DEMO_KEEP:-0}" != 1 ]]; then
		"$TB" down >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

# start_node N starts natgw node N in its namespace.
start_node() {
	ip netns exec "${NATGW_TB}-$1" "$BIN" run --config "${RUN}/node-$1.toml" >"${RUN}/natgw-$1.log" 2>&1 &
}
inside_route() { "$TB" exec ir ip route show default; }
# spread opens N connections from the inside hosts and counts, per public
# address, what the server saw.
spread() {
	local n="$1" i
	for ((i = 0; i < n; i++)); do
		"$TB" exec in curl -s -m 2 --interface "10.2.0.1$((i % 8))" http://198.18.0.10:8080/ || echo failed
	done | cut -d: -f1 | sort | uniq -c | sed 's/^/   /'
}

say "building natgw and the cluster testbed (FRR routers, 2 nodes)"
make -s build
"$TB" up >/dev/null
"$TB" routers start
"$TB" servers start
start_node a
start_node b
for _ in $(seq 100); do
	[[ "$(inside_route | grep -c nexthop)" == 2 ]] && break
	sleep 0.1
done

say "the inside router's default route: one nexthop per node (BGP, ECMP)"
inside_route
say "the outside router: each node's frontend, a /32 via that node"
"$TB" exec or ip route show proto bgp
say "node a's view: natgw ctl status"
ip netns exec "${NATGW_TB}-a" "$BIN" ctl status | sed -n '/^BGP/,$p'

say "40 connections from 8 inside hosts: the servers saw both nodes' frontends"
spread 40

say "kill -9 node a: its sessions drop, the routers forget it"
kill -9 "$(ip netns pids "${NATGW_TB}-a")"
sleep 0.5
inside_route
say "new connections all go through node b"
spread 10

say "node a again: back in ECMP once ready and announced by gratuitous ARP"
start_node a
for _ in $(seq 100); do
	[[ "$(inside_route | grep -c nexthop)" == 2 ]] && break
	sleep 0.1
done
inside_route

say "natgw ctl drain on node b: inside route withdrawn first, then it exits"
ip netns exec "${NATGW_TB}-b" "$BIN" ctl drain
sleep 0.5
inside_route
spread 10

if [[ "${DEMO_KEEP:-0}" == 1 ]]; then
	trap - EXIT
	say "left running; explore with"
	cat <<EOM
  $TB status
  $TB vtysh ir 'show bgp summary'
  ip netns exec ${NATGW_TB}-a $BIN ctl status
  $TB exec in curl http://198.18.0.10:8080/
  $TB down
EOM
fi
