#!/usr/bin/env bash
# testbed.sh — natgw's test network: four network namespaces joined by veth
# pairs, with the addresses of SPEC §8. Nothing here sends a packet outside
# the testbed's own namespaces.
#
# Usage:
#   scripts/testbed.sh up [--kernel-nat]   build the testbed (rebuilds if any part exists)
#   scripts/testbed.sh down                remove it (idempotent)
#   scripts/testbed.sh status              namespaces, addresses, routes, servers;
#                                          exit 0 up, 1 partly built, 3 down
#   scripts/testbed.sh exec NS CMD...      run CMD in namespace NS (in, gw, rt, srv)
#   scripts/testbed.sh servers start|stop|status   test servers in the srv namespace
#
# Every name is prefixed by $NATGW_TB (default "ngw"), so several testbeds can
# coexist; `down` removes exactly the four namespaces of its own prefix and
# ends only the processes running inside them.
#
# Topology (interface names are the same in every testbed):
#
#   ${P}-in            ${P}-gw                     ${P}-rt                  ${P}-srv
#   eth0 ──────────── veth-in   veth-out ──────── to-gw   to-srv ──(MTU 1400)── eth0
#   10.0.x.x/16        (natgw)                    198.19.0.1/24            198.18.0.10-12/24
#                                                 198.18.0.1/24
#
#   ${P}-in   inside hosts, all on eth0 in 10.0.0.0/16: pool members 10.0.1.4,
#             10.0.1.5, 10.0.2.1-10.0.2.4 (pool "web": 10.0.1.4, 10.0.1.5,
#             10.0.2.0/28), the instance 10.0.3.7 and 10.0.9.9 (default
#             SNAT). Default route via 10.0.0.1 with source 10.0.9.9, so
#             traffic that doesn't bind an address takes default SNAT; bind
#             with curl --interface, ping -I, nc -s, iperf3 -B.
#   ${P}-gw   the NAT. natgw mode (default): veth-in and veth-out up, no
#             addresses, ip_forward 0 — natgw runs here (`exec gw natgw run`).
#             --kernel-nat: the kernel does the NAT instead: 10.0.0.1/16 on
#             veth-in, 198.19.0.2/24 plus the frontends 198.19.1.10 (pool),
#             198.19.1.20 (default SNAT) and the instance public 198.19.1.50
#             as /32 on veth-out, default via 198.19.0.1, and an nft table:
#             instance 10.0.3.7 <-> 198.19.1.50 (1:1), pool members to
#             198.19.1.10, any other 10.0.0.0/8 source to 198.19.1.20.
#             In both modes checksum and segmentation offloads are off on
#             both ends of both gw links (rx, tx, tso, gso, gro): AF_PACKET
#             would otherwise see frames with partial checksums, and the
#             receiving kernels verify every checksum natgw writes.
#   ${P}-rt   the "internet" router: 198.19.0.1/24 towards gw, route
#             198.19.1.0/24 via 198.19.0.2; 198.18.0.1/24 towards srv on
#             an MTU 1400 link; ip_forward 1, ICMP errors not rate-limited.
#             It knows no route to 10.0.0.0/8: replies only come back
#             through the NAT.
#   ${P}-srv  the servers 198.18.0.10, .11, .12 (MTU 1400), default via
#             198.18.0.1 with advmss 1460: servers announce an MSS larger
#             than their link, so inside clients send full 1500-byte
#             segments and the router answers ICMP fragmentation-needed,
#             which must travel back through the NAT (path MTU discovery,
#             [S8]). Servers themselves send at most 1400 bytes.
#
# Fixed MAC addresses, for static [[neighbor]] entries:
#   in/eth0 02:4e:47:01:00:02   gw/veth-in  02:4e:47:01:00:01
#   gw/veth-out 02:4e:47:02:00:02   rt/to-gw 02:4e:47:02:00:01
#   rt/to-srv 02:4e:47:03:00:01   srv/eth0 02:4e:47:03:00:02
#
# Servers (`servers start`, in ${P}-srv, listening on every server address):
#   echoserver (scripts/echoserver): HTTP :8080 (answers "IP:PORT" the
#   server saw; /bytes?n=N; POST /upload), UDP echo :9000 (reply prefixed
#   with "IP:PORT "), TCP echo :9001; and `iperf3 -s` on :5201. Pid files and
#   logs live in /run/${P}/. NATGW_ECHOSERVER=PATH uses a prebuilt binary
#   instead of `go build`.
#
# Must run as root. Every failing step stops the script with the command that
# failed; a failed `up` tears down what it built.
set -Eeuo pipefail

readonly P="${NATGW_TB:-ngw}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO
readonly STATE_DIR="/run/${P}"
readonly LOCK_FILE="/run/lock/natgw-testbed-${P}.lock"
readonly NAMESPACES=(in gw rt srv)

readonly INSIDE_HOSTS=(10.0.9.9 10.0.1.4 10.0.1.5 10.0.2.1 10.0.2.2 10.0.2.3 10.0.2.4 10.0.3.7)
readonly SERVER_ADDRS=(198.18.0.10 198.18.0.11 198.18.0.12)
readonly FRONTENDS=(198.19.1.10 198.19.1.20 198.19.1.50)

die() {
	printf 'testbed: error: %s\n' "$*" >&2
	exit 1
}

# on_err names the failed command and the chain of calls that ran it.
on_err() {
	local rc=$? line=$1 cmd=$2 i trace=""
	for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
		trace+=" <- ${FUNCNAME[i + 1]}:${BASH_LINENO[i]}"
	done
	printf 'testbed: command failed (exit %d) at testbed.sh:%d%s: %s\n' "$rc" "$line" "$trace" "$cmd" >&2
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR

usage() {
	sed -n '2,13s/^# \{0,1\}//p' "$0"
}

# nsx runs a command in one of the testbed's namespaces (in, gw, rt, srv).
nsx() {
	local ns="$1"
	shift
	ip netns exec "${P}-${ns}" "$@"
}

ns_exists() {
	[[ -e "/run/netns/${P}-$1" ]]
}

require_root() {
	((EUID == 0)) || die "must run as root"
}

require_commands() {
	local c missing=()
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	((${#missing[@]} == 0)) || die "missing commands: ${missing[*]} (run scripts/install-deps.sh)"
}

check_prefix() {
	[[ "$P" =~ ^[A-Za-z][A-Za-z0-9_-]{0,19}$ ]] ||
		die "NATGW_TB='$P': use 1-20 letters, digits, '_' or '-', starting with a letter"
}

# lock serialises up, down and servers of one prefix.
lock() {
	mkdir -p "$(dirname "$LOCK_FILE")"
	exec 9>"$LOCK_FILE"
	flock -w 120 9 || die "another testbed.sh holds $LOCK_FILE"
}

# stop_servers ends the servers named in our pid files, each only if its
# pid still belongs to the program the file was written for, and removes the
# files. All get SIGTERM at once; any still alive after 5 s get SIGKILL.
stop_servers() {
	local name file pid pids=() i
	for name in echoserver iperf3; do
		file="${STATE_DIR}/${name}.pid"
		[[ -f "$file" ]] || continue
		pid="$(cat "$file" 2>/dev/null || true)"
		rm -f "$file"
		[[ "$pid" =~ ^[0-9]+$ ]] || continue
		[[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == "$name" ]] || continue
		kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
	done
	for ((i = 0; i < 100; i++)); do
		local alive=()
		for pid in "${pids[@]}"; do
			[[ ! -e "/proc/$pid" ]] || alive+=("$pid")
		done
		((${#alive[@]} > 0)) || return 0
		pids=("${alive[@]}")
		sleep 0.05
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
}

# kill_ns_processes ends every process still inside one of our namespaces
# (servers, a natgw under test, a stray client), by pid.
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

teardown() {
	local ns
	stop_servers
	for ns in "${NAMESPACES[@]}"; do
		if ns_exists "$ns"; then
			kill_ns_processes "$ns"
			ip netns del "${P}-${ns}"
		fi
	done
	# Only our own files: /run/${P} might be a directory of something else.
	rm -f "${STATE_DIR}"/{mode,echoserver,echoserver.pid,echoserver.log,iperf3.pid,iperf3.log,iperf3.out}
	rmdir "$STATE_DIR" 2>/dev/null || true
}

# offloads_off turns off checksum and segmentation offloads on one link end.
offloads_off() {
	nsx "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null
}

# veth_pair creates a veth pair between two namespaces with fixed MACs.
veth_pair() {
	local ns_a="$1" if_a="$2" mac_a="$3" ns_b="$4" if_b="$5" mac_b="$6"
	ip -n "${P}-${ns_a}" link add "$if_a" address "$mac_a" type veth \
		peer name "$if_b" address "$mac_b" netns "${P}-${ns_b}"
}

build_common() {
	local ns a
	for ns in "${NAMESPACES[@]}"; do
		ip netns add "${P}-${ns}"
		# No IPv6: no router solicitations or DAD noise on natgw's ports.
		nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		nsx "$ns" ip link set lo up
	done

	veth_pair gw veth-in 02:4e:47:01:00:01 in eth0 02:4e:47:01:00:02
	veth_pair gw veth-out 02:4e:47:02:00:02 rt to-gw 02:4e:47:02:00:01
	veth_pair rt to-srv 02:4e:47:03:00:01 srv eth0 02:4e:47:03:00:02

	offloads_off in eth0
	offloads_off gw veth-in
	offloads_off gw veth-out
	offloads_off rt to-gw

	# Inside hosts.
	for a in "${INSIDE_HOSTS[@]}"; do
		nsx in ip addr add "${a}/16" dev eth0
	done
	nsx in ip link set eth0 up
	nsx in ip route add default via 10.0.0.1 dev eth0 src 10.0.9.9

	# Gateway namespace: links up, the mode decides the rest.
	nsx gw ip link set veth-in up
	nsx gw ip link set veth-out up
	nsx gw sysctl -qw net.ipv4.ip_forward=0

	# Router.
	nsx rt ip addr add 198.19.0.1/24 dev to-gw
	nsx rt ip link set to-srv mtu 1400
	nsx rt ip addr add 198.18.0.1/24 dev to-srv
	nsx rt ip link set to-gw up
	nsx rt ip link set to-srv up
	nsx rt ip route add 198.19.1.0/24 via 198.19.0.2 dev to-gw
	nsx rt sysctl -qw net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000

	# Servers.
	nsx srv ip link set eth0 mtu 1400
	for a in "${SERVER_ADDRS[@]}"; do
		nsx srv ip addr add "${a}/24" dev eth0
	done
	nsx srv ip link set eth0 up
	nsx srv ip route add default via 198.18.0.1 dev eth0 advmss 1460
	nsx srv sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000
}

build_kernel_nat() {
	local a
	nsx gw ip addr add 10.0.0.1/16 dev veth-in
	nsx gw ip addr add 198.19.0.2/24 dev veth-out
	for a in "${FRONTENDS[@]}"; do
		nsx gw ip addr add "${a}/32" dev veth-out
	done
	nsx gw ip route add default via 198.19.0.1 dev veth-out
	nsx gw sysctl -qw net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0
	nsx gw nft -f - <<'EOF'
table ip natgw_testbed {
	set pool_web {
		type ipv4_addr
		flags interval
		elements = { 10.0.1.4, 10.0.1.5, 10.0.2.0/28 }
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "veth-out" ip daddr 198.19.1.50 dnat to 10.0.3.7
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "veth-out" ip saddr 10.0.3.7 snat to 198.19.1.50
		oifname "veth-out" ip saddr @pool_web snat to 198.19.1.10
		oifname "veth-out" ip saddr 10.0.0.0/8 snat to 198.19.1.20
	}
}
EOF
}

cmd_up() {
	local mode=natgw
	while (($# > 0)); do
		case "$1" in
		--kernel-nat) mode=kernel-nat ;;
		*) die "up: unknown argument: $1" ;;
		esac
		shift
	done
	require_root
	require_commands ip ethtool sysctl flock
	[[ "$mode" != kernel-nat ]] || require_commands nft
	lock
	teardown
	trap 'rc=$?; if ((rc != 0)); then echo "testbed: up failed, tearing down ${P}" >&2; teardown >/dev/null 2>&1 || true; fi' EXIT
	build_common
	if [[ "$mode" == kernel-nat ]]; then
		build_kernel_nat
	fi
	mkdir -p "$STATE_DIR"
	echo "$mode" >"${STATE_DIR}/mode"
	trap - EXIT
	echo "testbed ${P} up (${mode})"
}

cmd_down() {
	(($# == 0)) || die "down takes no arguments"
	require_root
	lock
	teardown
}

cmd_status() {
	(($# == 0)) || die "status takes no arguments"
	require_root
	local ns up=0 mode=unknown
	for ns in "${NAMESPACES[@]}"; do
		! ns_exists "$ns" || up=$((up + 1))
	done
	if ((up == 0)); then
		echo "testbed ${P}: down"
		exit 3
	fi
	[[ ! -f "${STATE_DIR}/mode" ]] || mode="$(cat "${STATE_DIR}/mode")"
	echo "testbed ${P}: ${up}/${#NAMESPACES[@]} namespaces, mode ${mode}"
	for ns in "${NAMESPACES[@]}"; do
		echo
		if ! ns_exists "$ns"; then
			echo "== ${P}-${ns}: missing"
			continue
		fi
		echo "== ${P}-${ns} (ip_forward=$(nsx "$ns" sysctl -n net.ipv4.ip_forward))"
		nsx "$ns" ip -br addr show | grep -v '^lo ' | sed 's/^/  /' || true
		nsx "$ns" ip route show | sed 's/^/  route: /'
		if [[ "$ns" == gw ]]; then
			local ifc
			for ifc in veth-in veth-out; do
				printf '  offloads %s: %s\n' "$ifc" "$(nsx gw ethtool -k "$ifc" 2>/dev/null |
					awk -F': ' '/^(rx-checksumming|tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload):/ {printf "%s=%s ", $1, $2}')"
			done
			if nsx gw nft list table ip natgw_testbed >/dev/null 2>&1; then
				echo "  nft: table ip natgw_testbed loaded"
			fi
		fi
	done
	echo
	servers_status
	((up == ${#NAMESPACES[@]})) || exit 1
}

cmd_exec() {
	(($# >= 2)) || die "usage: exec NS CMD..."
	local ns="$1"
	shift
	case "$ns" in
	in | gw | rt | srv) ;;
	*) die "exec: unknown namespace '$ns' (in, gw, rt, srv)" ;;
	esac
	ns_exists "$ns" || die "namespace ${P}-${ns} does not exist (run: $0 up)"
	exec ip netns exec "${P}-${ns}" "$@"
}

pid_alive() {
	local file="$1" comm="$2" pid
	[[ -f "$file" ]] || return 1
	pid="$(cat "$file" 2>/dev/null || true)"
	[[ "$pid" =~ ^[0-9]+$ && "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == "$comm" ]]
}

servers_status() {
	local name
	for name in echoserver iperf3; do
		if pid_alive "${STATE_DIR}/${name}.pid" "$name"; then
			echo "server ${name}: running, pid $(cat "${STATE_DIR}/${name}.pid")"
		else
			echo "server ${name}: stopped"
		fi
	done
}

# wait_listening waits until the srv namespace listens on a port.
wait_listening() {
	local proto="$1" port="$2" i
	for ((i = 0; i < 100; i++)); do
		if nsx srv ss -Hln"${proto}" "sport = :${port}" | grep -q .; then
			return 0
		fi
		sleep 0.05
	done
	die "nothing listens on ${proto} port ${port} in ${P}-srv after 5 s (see ${STATE_DIR}/*.log)"
}

servers_start() {
	require_commands iperf3 ss
	ns_exists srv || die "namespace ${P}-srv does not exist (run: $0 up)"
	stop_servers
	mkdir -p "$STATE_DIR"

	local bin="${NATGW_ECHOSERVER:-}"
	if [[ -z "$bin" ]]; then
		local go="${GO:-}"
		[[ -n "$go" ]] || go="$(command -v go || echo /usr/local/go/bin/go)"
		[[ -x "$go" ]] || die "go not found (set GO or NATGW_ECHOSERVER)"
		bin="${STATE_DIR}/echoserver"
		(cd "$REPO" && "$go" build -o "$bin" ./scripts/echoserver)
	fi
	[[ -x "$bin" ]] || die "echoserver binary $bin is not executable"

	# A plain command, not the nsx function, so that the background job is
	# `ip netns exec` itself, which execs the server: $! is the server's pid.
	ip netns exec "${P}-srv" "$bin" -http :8080 -udp :9000 -tcp :9001 \
		</dev/null >>"${STATE_DIR}/echoserver.log" 2>&1 9>&- &
	echo $! >"${STATE_DIR}/echoserver.pid"
	# 9>&-: the servers must not inherit (and hold) the testbed lock.
	nsx srv iperf3 -s -D --pidfile "${STATE_DIR}/iperf3.pid" --logfile "${STATE_DIR}/iperf3.log" \
		</dev/null >>"${STATE_DIR}/iperf3.out" 2>&1 9>&-

	wait_listening t 8080
	wait_listening u 9000
	wait_listening t 9001
	wait_listening t 5201
	pid_alive "${STATE_DIR}/echoserver.pid" echoserver || die "echoserver is not running (see ${STATE_DIR}/echoserver.log)"
}

cmd_servers() {
	(($# == 1)) || die "usage: servers start|stop|status"
	require_root
	case "$1" in
	start)
		lock
		servers_start
		;;
	stop)
		lock
		stop_servers
		;;
	status) servers_status ;;
	*) die "usage: servers start|stop|status" ;;
	esac
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
	down) cmd_down "$@" ;;
	status) cmd_status "$@" ;;
	exec) cmd_exec "$@" ;;
	servers) cmd_servers "$@" ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		die "unknown command: $cmd"
		;;
	esac
}

main "$@"
