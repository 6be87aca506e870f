#!/usr/bin/env bash
# testbed-cluster.sh — two natgw nodes behind ECMP, announced by BGP to two
# FRR routers (issue 17), in network namespaces with the addresses of
# SPEC §8. Nothing here sends a packet outside the testbed's namespaces.
#
# Usage:
#   scripts/testbed-cluster.sh up [--hash l3|l4]   build it (rebuilds if any part exists)
#   scripts/testbed-cluster.sh down                remove it (idempotent)
#   scripts/testbed-cluster.sh routers start|stop  FRR (zebra + bgpd) in ir and or
#   scripts/testbed-cluster.sh servers start|stop  echo server and iperf3 in srv
#   scripts/testbed-cluster.sh hash l3|l4          the inside router's ECMP hash
#   scripts/testbed-cluster.sh status              namespaces, routes, BGP sessions
#   scripts/testbed-cluster.sh exec NS CMD...      run CMD in NS (in ir a b or srv mg)
#   scripts/testbed-cluster.sh vtysh NS CMD        a vtysh command on router ir or or
#
# Names start with $NATGW_TB (default "ngc"). `up` also writes each node's
# configuration to /run/$P/node-a.toml and node-b.toml; natgw is started by
# the caller: ip netns exec $P-a natgw run --config /run/$P/node-a.toml.
#
# Topology:
#
#  $P-in            $P-ir (FRR AS 65001)      $P-a / $P-b (natgw AS 65010)   $P-or (FRR AS 65002)      $P-srv
#  eth0 ──────── to-in   br-in ─┬─ in ── natgw a ── out ─┬─ br-out   to-srv ──────── eth0
#  10.2.0.10-17  10.2.0.1/24     │ 10.1.0.1/24            │ 198.19.0.1/24  198.18.0.1/24   198.18.0.10-12
#                                └─ in ── natgw b ── out ─┘
#                 mg ─────────────── mg (a: 10.254.0.11, b: 10.254.0.12) ─────── mg
#                 10.254.0.1          all on the bridge br-mg in $P-mg          10.254.0.2
#
#   in   inside hosts 10.2.0.10-10.2.0.17/24, default via the inside router.
#   ir   inside router: br-in (10.1.0.1/24) bridges the nodes' inside ports;
#        BGP from the nodes over the management network (bgp listen range
#        10.254.0.0/24, maximum-paths 8, timers 1/3): the nodes' default
#        routes become one Linux multipath route; fib_multipath_hash_policy
#        1 (L4, flows spread) or 0 (L3, --hash l3: every fragment of a
#        datagram takes its flow's path).
#   a, b natgw nodes: ports "in" (inside 10.1.0.11 / .12) and "out" (outside
#        198.19.0.11 / .12) without kernel addresses (AF_PACKET); "mg" with
#        10.254.0.11 / .12 for BGP and nothing else. Each lists the other's
#        inside address in bgp.cluster_peers (a drain redirects new flows
#        to it). Frontends: a 198.19.1.11,
#        b 198.19.1.12 (default SNAT of 10.2.0.0/16, a routed prefix behind
#        10.1.0.1).
#   or   outside router: br-out (198.19.0.1/24) bridges the nodes' outside
#        ports; learns each node's frontend /32 by BGP; to-srv 198.18.0.1/24.
#   srv  servers 198.18.0.10-12: echoserver (HTTP :8080, UDP echo :9000, TCP
#        echo :9001) and iperf3 :5201.
#   mg   the management bridge br-mg.
#
# FRR runs per namespace with its own configuration, pid files and vty and
# zserv sockets under /run/$P/frr/NS (the system's frr service is not used).
# Must run as root.
set -Eeuo pipefail

readonly P="${NATGW_TB:-ngc}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO
readonly STATE_DIR="/run/${P}"
readonly LOCK_FILE="/run/lock/natgw-testbed-${P}.lock"
readonly NAMESPACES=(in ir a b or srv mg)
readonly INSIDE_HOSTS=(10.2.0.10 10.2.0.11 10.2.0.12 10.2.0.13 10.2.0.14 10.2.0.15 10.2.0.16 10.2.0.17)
readonly SERVER_ADDRS=(198.18.0.10 198.18.0.11 198.18.0.12)
readonly FRR=/usr/lib/frr

die() {
	printf 'testbed-cluster: error: %s\n' "$*" >&2
	exit 1
}

on_err() {
	printf 'testbed-cluster: command failed (exit %d) at line %d: %s\n' "$?" "$1" "$2" >&2
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR

usage() { sed -n '2,18s/^# \{0,1\}//p' "$0"; }

nsx() {
	local ns="$1"
	shift
	ip netns exec "${P}-${ns}" "$@"
}

ns_exists() { [[ -e "/run/netns/${P}-$1" ]]; }

require_root() { ((EUID == 0)) || die "must run as root"; }

check_prefix() {
	[[ "$P" =~ ^[A-Za-z][A-Za-z0-9_-]{0,11}$ ]] ||
		die "NATGW_TB='$P': use 1-12 letters, digits, '_' or '-', starting with a letter"
}

lock() {
	mkdir -p "$(dirname "$LOCK_FILE")"
	exec 9>"$LOCK_FILE"
	flock -w 120 9 || die "another testbed-cluster.sh holds $LOCK_FILE"
}

# stop_pidfile ends the process of a pid file if it is still the program
# named (its /proc/PID/comm), then removes the file.
stop_pidfile() {
	local file="$1" comm="$2" pid i
	[[ -f "$file" ]] || return 0
	pid="$(cat "$file" 2>/dev/null || true)"
	rm -f "$file"
	[[ "$pid" =~ ^[0-9]+$ && "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == "$comm" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		[[ -e "/proc/$pid" ]] || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# kill_ns_processes ends every process still inside one of our namespaces.
kill_ns_processes() {
	local ns="$1" pids i
	pids="$(ip netns pids "${P}-${ns}" 2>/dev/null || true)"
	[[ -n "$pids" ]] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		pids="$(ip netns pids "${P}-${ns}" 2>/dev/null || true)"
		[[ -n "$pids" ]] || return 0
		sleep 0.05
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
}

routers_stop() {
	local r d
	for r in ir or; do
		for d in bgpd zebra; do
			stop_pidfile "${STATE_DIR}/frr/${r}/${d}.pid" "$d"
		done
	done
}

servers_stop() {
	stop_pidfile "${STATE_DIR}/echoserver.pid" echoserver
	stop_pidfile "${STATE_DIR}/iperf3.pid" iperf3
}

teardown() {
	local ns
	routers_stop
	servers_stop
	for ns in "${NAMESPACES[@]}"; do
		if ns_exists "$ns"; then
			kill_ns_processes "$ns"
			ip netns del "${P}-${ns}"
		fi
	done
	# Only our own files.
	rm -rf "${STATE_DIR}/frr"
	rm -f "${STATE_DIR}"/{node-a.toml,node-b.toml,natgw-a.log,natgw-b.log,echoserver,echoserver.log,iperf3.log,iperf3.out}
	rmdir "$STATE_DIR" 2>/dev/null || true
}

offloads_off() { nsx "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null; }

# link NS_A IF_A NS_B IF_B [MAC_A]: a veth pair between two namespaces.
link() {
	local extra=()
	[[ -z "${5:-}" ]] || extra=(address "$5")
	ip -n "${P}-$1" link add "$2" "${extra[@]}" type veth peer name "$4" netns "${P}-$3"
}

# bridge_port NS BRIDGE IF: IF becomes a port of BRIDGE in NS.
bridge_port() {
	nsx "$1" ip link set "$3" master "$2"
	nsx "$1" ip link set "$3" up
}

set_hash() {
	case "$1" in
	l3) nsx ir sysctl -qw net.ipv4.fib_multipath_hash_policy=0 ;;
	l4) nsx ir sysctl -qw net.ipv4.fib_multipath_hash_policy=1 ;;
	*) die "hash: l3 or l4" ;;
	esac
}

build() {
	local hash="$1" ns a n
	for ns in "${NAMESPACES[@]}"; do
		ip netns add "${P}-${ns}"
		nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		nsx "$ns" ip link set lo up
	done
	nsx ir ip link add br-in type bridge
	nsx or ip link add br-out type bridge
	nsx mg ip link add br-mg type bridge

	# Inside hosts and the inside router.
	link in eth0 ir to-in
	for a in "${INSIDE_HOSTS[@]}"; do
		nsx in ip addr add "${a}/24" dev eth0
	done
	nsx in ip link set eth0 up
	nsx in ip route add default via 10.2.0.1 dev eth0 src 10.2.0.10
	nsx ir ip addr add 10.2.0.1/24 dev to-in
	nsx ir ip link set to-in up

	# The nodes: in/out for natgw (AF_PACKET, no addresses, offloads off),
	# mg for BGP.
	n=1
	for node in a b; do
		link "$node" in ir "in-${node}" "02:4e:47:1${n}:00:01"
		link "$node" out or "out-${node}" "02:4e:47:2${n}:00:01"
		link "$node" mg mg "mg-${node}"
		offloads_off "$node" in
		offloads_off "$node" out
		offloads_off ir "in-${node}"
		offloads_off or "out-${node}"
		nsx "$node" ip link set in up
		nsx "$node" ip link set out up
		nsx "$node" ip addr add "10.254.0.1${n}/24" dev mg
		nsx "$node" ip link set mg up
		nsx "$node" sysctl -qw net.ipv4.ip_forward=0
		bridge_port ir br-in "in-${node}"
		bridge_port or br-out "out-${node}"
		bridge_port mg br-mg "mg-${node}"
		n=$((n + 1))
	done
	link ir mg mg mg-ir
	link or mg mg mg-or
	bridge_port mg br-mg mg-ir
	bridge_port mg br-mg mg-or
	nsx mg ip link set br-mg up
	nsx ir ip addr add 10.254.0.1/24 dev mg
	nsx ir ip link set mg up
	nsx or ip addr add 10.254.0.2/24 dev mg
	nsx or ip link set mg up

	nsx ir ip addr add 10.1.0.1/24 dev br-in
	nsx ir ip link set br-in up
	nsx ir sysctl -qw net.ipv4.ip_forward=1
	set_hash "$hash"

	# Outside router and servers.
	link or to-srv srv eth0
	nsx or ip addr add 198.19.0.1/24 dev br-out
	nsx or ip link set br-out up
	nsx or ip addr add 198.18.0.1/24 dev to-srv
	nsx or ip link set to-srv up
	nsx or sysctl -qw net.ipv4.ip_forward=1
	for a in "${SERVER_ADDRS[@]}"; do
		nsx srv ip addr add "${a}/24" dev eth0
	done
	nsx srv ip link set eth0 up
	nsx srv ip route add default via 198.18.0.1 dev eth0
}

# node_config N ID PEER writes node N's natgw configuration; PEER is the
# other node's inside address (bgp.cluster_peers).
node_config() {
	local node="$1" id="$2" peer="$3"
	cat >"${STATE_DIR}/node-${node}.toml" <<EOF
# natgw node ${node} of the ${P} cluster testbed (scripts/testbed-cluster.sh).
[dataplane]
driver = "afpacket"
workers = 1
flow_capacity = 65536

[inside]
port = "in"
address = "10.1.0.1${id}/24"

[[inside.routed]]
prefix = "10.2.0.0/16"
via = "10.1.0.1"

[outside]
port = "out"
address = "198.19.0.1${id}/24"
gateway = "198.19.0.1"

[[frontend]]
name = "fe-${node}"
address = "198.19.1.1${id}"

[default_snat]
sources = ["10.2.0.0/16"]
frontends = ["fe-${node}"]
ports_per_member = 4096

[mgmt]
listen = "127.0.0.1:9650"

[bgp]
local_as = 65010
source_address = "10.254.0.1${id}"
hold_time = "3s"
hold_down = "2s"
drain_deadline = "20s"
drain_on_sigterm = true
cluster_peers = ["${peer}"]

[[bgp.inside_peer]]
name = "ir"
address = "10.254.0.1"
as = 65001

[[bgp.outside_peer]]
name = "or"
address = "10.254.0.2"
as = 65002
EOF
}

# frr_conf ROUTER AS ID writes a router's FRR configuration.
frr_conf() {
	local r="$1" as="$2" id="$3" dir="${STATE_DIR}/frr/$1"
	mkdir -p "$dir"
	printf 'hostname %s-%s\nlog file %s/zebra.log\n' "$P" "$r" "$dir" >"${dir}/zebra.conf"
	cat >"${dir}/bgpd.conf" <<EOF
frr defaults datacenter
hostname ${P}-${r}
log file ${dir}/bgpd.log
router bgp ${as}
 bgp router-id ${id}
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor NATGW peer-group
 neighbor NATGW remote-as external
 neighbor NATGW timers 1 3
 neighbor NATGW advertisement-interval 0
 bgp listen range 10.254.0.0/24 peer-group NATGW
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
EOF
}

routers_start() {
	[[ -x "${FRR}/zebra" && -x "${FRR}/bgpd" ]] || die "FRR not installed (run scripts/install-deps.sh)"
	routers_stop
	local r dir i
	for r in ir or; do
		dir="${STATE_DIR}/frr/${r}"
		mkdir -p "${dir}/vty"
		# FRR drops to its own user (the package's frr, in frrvty).
		chown -R frr:frr "$dir"
		nsx "$r" "${FRR}/zebra" -d -u frr -g frr -f "${dir}/zebra.conf" -i "${dir}/zebra.pid" \
			-z "${dir}/zserv.api" --vty_socket "${dir}/vty" -A 127.0.0.1 -P 0 \
			</dev/null >>"${dir}/zebra.out" 2>&1 9>&-
		for ((i = 0; i < 100; i++)); do
			[[ -S "${dir}/zserv.api" ]] && break
			sleep 0.05
		done
		# The daemons must not keep the caller's stdout open (a pipe would
		# never end).
		nsx "$r" "${FRR}/bgpd" -d -u frr -g frr -f "${dir}/bgpd.conf" -i "${dir}/bgpd.pid" \
			-z "${dir}/zserv.api" --vty_socket "${dir}/vty" -A 127.0.0.1 -P 0 \
			</dev/null >>"${dir}/bgpd.out" 2>&1 9>&-
	done
	for r in ir or; do
		for ((i = 0; i < 100; i++)); do
			nsx "$r" ss -Hltn 'sport = :179' | grep -q . && break
			sleep 0.05
		done
		nsx "$r" ss -Hltn 'sport = :179' | grep -q . || die "bgpd in ${P}-${r} does not listen (see ${STATE_DIR}/frr/${r}/bgpd.log)"
	done
}

servers_start() {
	servers_stop
	local bin="${NATGW_ECHOSERVER:-}"
	if [[ -z "$bin" ]]; then
		local go="${GO:-}"
		[[ -n "$go" ]] || go="$(command -v go || echo /usr/local/go/bin/go)"
		bin="${STATE_DIR}/echoserver"
		(cd "$REPO" && "$go" build -o "$bin" ./scripts/echoserver)
	fi
	ip netns exec "${P}-srv" "$bin" -http :8080 -udp :9000 -tcp :9001 -quiet \
		</dev/null >>"${STATE_DIR}/echoserver.log" 2>&1 9>&- &
	echo $! >"${STATE_DIR}/echoserver.pid"
	nsx srv iperf3 -s -D --pidfile "${STATE_DIR}/iperf3.pid" --logfile "${STATE_DIR}/iperf3.log" \
		</dev/null >>"${STATE_DIR}/iperf3.out" 2>&1 9>&-
	local i
	for ((i = 0; i < 100; i++)); do
		nsx srv ss -Hltn 'sport = :8080' | grep -q . && return 0
		sleep 0.05
	done
	die "echoserver does not listen (see ${STATE_DIR}/echoserver.log)"
}

cmd_up() {
	local hash=l4
	while (($# > 0)); do
		case "$1" in
		--hash)
			hash="${2:-}"
			shift
			;;
		*) die "up: unknown argument: $1" ;;
		esac
		shift
	done
	[[ "$hash" == l3 || "$hash" == l4 ]] || die "--hash l3 or l4"
	require_root
	lock
	teardown
	trap 'rc=$?; if ((rc != 0)); then echo "testbed-cluster: up failed, tearing down ${P}" >&2; teardown >/dev/null 2>&1 || true; fi' EXIT
	build "$hash"
	mkdir -p "$STATE_DIR"
	node_config a 1 10.1.0.12
	node_config b 2 10.1.0.11
	frr_conf ir 65001 10.254.0.1
	frr_conf or 65002 10.254.0.2
	trap - EXIT
	echo "testbed-cluster ${P} up (ECMP hash ${hash})"
}

vtysh_ns() {
	local r="$1"
	shift
	nsx "$r" vtysh --vty_socket "${STATE_DIR}/frr/${r}/vty" -c "$*"
}

cmd_status() {
	require_root
	local ns r
	for ns in "${NAMESPACES[@]}"; do
		ns_exists "$ns" || {
			echo "== ${P}-${ns}: missing"
			continue
		}
	done
	for r in ir or; do
		ns_exists "$r" || continue
		echo "== ${P}-${r}: routes"
		nsx "$r" ip route show | sed 's/^/  /'
		if [[ -S "${STATE_DIR}/frr/${r}/vty/bgpd.vty" ]]; then
			echo "== ${P}-${r}: BGP"
			vtysh_ns "$r" "show bgp summary" | sed 's/^/  /' || true
		fi
	done
}

main() {
	check_prefix
	(($# > 0)) || {
		usage >&2
		exit 2
	}
	local cmd="$1"
	shift
	case "$cmd" in
	up) cmd_up "$@" ;;
	down)
		require_root
		lock
		teardown
		;;
	routers)
		require_root
		case "${1:-}" in
		start) routers_start ;;
		stop) routers_stop ;;
		*) die "usage: routers start|stop" ;;
		esac
		;;
	servers)
		require_root
		case "${1:-}" in
		start) servers_start ;;
		stop) servers_stop ;;
		*) die "usage: servers start|stop" ;;
		esac
		;;
	hash)
		require_root
		set_hash "${1:-}"
		;;
	status) cmd_status ;;
	exec)
		(($# >= 2)) || die "usage: exec NS CMD..."
		local ns="$1"
		shift
		exec ip netns exec "${P}-${ns}" "$@"
		;;
	vtysh)
		(($# >= 2)) || die "usage: vtysh ir|or CMD"
		vtysh_ns "$@"
		;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		die "unknown command: $cmd"
		;;
	esac
}

main "$@"
