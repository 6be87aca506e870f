#!/usr/bin/env bash
# testbed_test.sh — end-to-end check of scripts/testbed.sh and the test
# servers, with real clients (curl, nc, ping, traceroute, iperf3).
#
# Usage: scripts/testbed_test.sh [kernel-nat|natgw|all]   (default: all)
#
#   kernel-nat  the testbed with the kernel doing the NAT: translations of
#               pool, instance and default SNAT, UDP and TCP echo, ping, ICMP
#               errors through the NAT (frag-needed, time exceeded), 1 MB
#               download and upload over the 1400-byte link, iperf3.
#   natgw       the bare gateway natgw will run in: no addresses, forwarding
#               off, offloads off, complete checksums seen through AF_PACKET;
#               rebuild of a half-built testbed; a second testbed left alone
#               by `down`.
#
# It uses its own prefix (NATGW_TB, default "ngwtb"), so a demo testbed under
# "ngw" is not disturbed, holds a lock so two runs don't share a testbed,
# and removes everything on exit, also on failure or interrupt. Each check
# prints "ok" or "FAIL" with the output it got; the last line counts them
# ("testbed: N passed, N failed"); the exit status is 0 only if all passed.
# Must run as root. Every command has a timeout.
set -Eeuo pipefail

export NATGW_TB="${NATGW_TB:-ngwtb}"
readonly P="$NATGW_TB"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly TB="${HERE}/testbed.sh"

passed=0
failed=0
started=$SECONDS
check_started_us=${EPOCHREALTIME/[.,]/}
took_s=
build_dir=

# tb runs testbed.sh without the test lock's descriptor, so servers it
# starts don't hold the lock.
tb() {
	timeout 120 "$TB" "$@" 8>&-
}

# inside runs a command in the inside namespace with a timeout.
inside() {
	local secs="$1"
	shift
	tb exec in timeout "$secs" "$@"
}

# took sets took_s to the time since the previous check ended ("1.23s").
took() {
	local now=${EPOCHREALTIME/[.,]/} us
	us=$((now - check_started_us))
	check_started_us=$now
	printf -v took_s '%d.%02ds' $((us / 1000000)) $((us % 1000000 / 10000))
}

pass() {
	passed=$((passed + 1))
	took
	printf 'ok   %s (%s)\n' "$1" "$took_s"
}

fail() {
	failed=$((failed + 1))
	took
	printf 'FAIL %s (%s)\n' "$1" "$took_s"
	if [[ -n "${2:-}" ]]; then
		printf '%s\n' "$2" | sed 's/^/     | /'
	fi
}

# check NAME CMD... passes when CMD exits 0.
check() {
	local name="$1" out
	shift
	if out="$("$@" 2>&1)"; then
		pass "$name"
	else
		fail "$name" "exit $?: $out"
	fi
}

# check_match NAME REGEX CMD... passes when CMD exits 0 and its output
# matches the extended regular expression REGEX.
check_match() {
	local name="$1" re="$2" out rc=0
	shift 2
	out="$("$@" 2>&1)" || rc=$?
	if ((rc == 0)) && [[ "$out" =~ $re ]]; then
		pass "$name"
	else
		fail "$name" "exit $rc, want /$re/, got: $out"
	fi
}

# check_fails NAME CMD... passes when CMD exits non-zero.
check_fails() {
	local name="$1" out
	shift
	if out="$("$@" 2>&1)"; then
		fail "$name" "succeeded but should fail: $out"
	else
		pass "$name"
	fi
}

# ours_left lists what of the testbed prefix is still there.
ours_left() {
	local prefix="$1"
	ip netns list | awk '{print $1}' | grep -E "^${prefix}-(in|gw|rt|srv)$" || true
	[[ ! -e "/run/${prefix}" ]] || echo "/run/${prefix}"
}

check_nothing_left() {
	local left
	left="$(ours_left "$P")"
	if [[ -z "$left" ]]; then
		pass "down leaves no namespace or state of ${P}"
	else
		fail "down leaves no namespace or state of ${P}" "left: $left"
	fi
}

offloads_all_off() {
	local ns="$1" ifc="$2" out
	out="$(tb exec "$ns" ethtool -k "$ifc")"
	local feature
	for feature in rx-checksumming tx-checksumming tcp-segmentation-offload \
		generic-segmentation-offload generic-receive-offload; do
		grep -q "^${feature}: off" <<<"$out" || {
			echo "$ns/$ifc: $(grep "^${feature}:" <<<"$out")"
			return 1
		}
	done
}

cleanup() {
	local rc=$?
	[[ -z "$build_dir" ]] || rm -rf "$build_dir"
	tb down >/dev/null 2>&1 || echo "testbed_test: cleanup: down failed" >&2
	NATGW_TB="${P}x" tb down >/dev/null 2>&1 || true
	exit "$rc"
}

# pmtu_learned shows the inside host's route to a server and fails unless
# it carries the path MTU of 1400 learned from ICMP fragmentation-needed.
pmtu_learned() {
	local out
	out="$(tb exec in ip route get "$1" from "$2")"
	echo "$out"
	grep -q 'mtu 1400' <<<"$out"
}

test_kernel_nat() {
	echo "# kernel-nat mode (${P})"
	check "up --kernel-nat" tb up --kernel-nat
	check "servers start" tb servers start
	check "offloads off on in/eth0" offloads_all_off in eth0
	check "offloads off on gw/veth-in" offloads_all_off gw veth-in
	check "offloads off on gw/veth-out" offloads_all_off gw veth-out
	check "offloads off on rt/to-gw" offloads_all_off rt to-gw
	check_fails "router has no route to the inside" tb exec rt ip route get 10.0.1.4

	check_match "pool member 10.0.1.4 seen as frontend 198.19.1.10" \
		'^198\.19\.1\.10:[0-9]+$' \
		inside 10 curl -sS -m 5 --interface 10.0.1.4 http://198.18.0.10:8080/
	check_match "instance 10.0.3.7 seen as 198.19.1.50, source port kept" \
		'^198\.19\.1\.50:40000$' \
		inside 10 curl -sS -m 5 --interface 10.0.3.7 --local-port 40000 http://198.18.0.10:8080/
	check_match "default SNAT host 10.0.9.9 seen as 198.19.1.20" \
		'^198\.19\.1\.20:[0-9]+$' \
		inside 10 curl -sS -m 5 http://198.18.0.11:8080/
	check_match "UDP echo from 10.0.2.1 through the NAT" \
		'^198\.19\.1\.10:[0-9]+ hello-udp$' \
		bash -c "printf 'hello-udp' | timeout 10 '$TB' exec in nc -u -w 1 -s 10.0.2.1 198.18.0.10 9000 8>&-"
	check_match "TCP echo from 10.0.1.5 through the NAT" \
		'^hello-tcp$' \
		bash -c "printf 'hello-tcp\n' | timeout 10 '$TB' exec in nc -N -w 5 -s 10.0.1.5 198.18.0.10 9001 8>&-"
	check_match "ping 198.18.0.10 from 10.0.1.4" \
		' 0% packet loss' \
		inside 10 ping -n -c 2 -i 0.2 -W 2 -I 10.0.1.4 198.18.0.10
	# The router answers a 1500-byte DF packet with fragmentation-needed;
	# ping only prints it if the NAT translated the ICMP error back.
	check_match "ICMP frag-needed from the router reaches 10.0.1.5 (mtu 1400)" \
		'mtu = 1400' \
		bash -c "timeout 10 '$TB' exec in ping -n -c 1 -W 2 -M do -s 1472 -I 10.0.1.5 198.18.0.12 8>&- || true"
	check_match "traceroute from 10.0.1.4: ICMP time exceeded of the router comes back" \
		'(^|[[:space:]])2 +198\.19\.0\.1[[:space:]].*(^|[[:space:]])3 +198\.18\.0\.10[[:space:]]' \
		inside 20 traceroute -n -q 1 -w 2 -m 5 -s 10.0.1.4 198.18.0.10
	check_match "1 MB download over the 1400-byte link (DF)" \
		'^1048576 200$' \
		inside 30 curl -sS -m 20 --interface 10.0.1.4 -o /dev/null -w '%{size_download} %{http_code}' \
		'http://198.18.0.10:8080/bytes?n=1048576'
	local upload
	upload="$(mktemp)"
	head -c 1048576 /dev/urandom >"$upload"
	check_match "1 MB upload over the 1400-byte link (needs PMTU discovery)" \
		'^198\.19\.1\.10:[0-9]+ 1048576$' \
		inside 30 curl -sS -m 20 --interface 10.0.1.4 -H 'Content-Type: application/octet-stream' \
		--data-binary "@${upload}" http://198.18.0.10:8080/upload
	rm -f "$upload"
	check "10.0.1.4 learned path MTU 1400 to 198.18.0.10 through the NAT" pmtu_learned 198.18.0.10 10.0.1.4
	check_match "iperf3 -t 2 from 10.0.2.2" \
		'receiver' \
		inside 30 iperf3 -c 198.18.0.10 -B 10.0.2.2 -t 2 --connect-timeout 3000
	check "servers stop" tb servers stop
	check "down" tb down
	check_nothing_left
}

gw_is_bare() {
	local ifc out
	for ifc in veth-in veth-out; do
		out="$(tb exec gw ip -4 -o addr show dev "$ifc")"
		[[ -z "$out" ]] || {
			echo "address on $ifc: $out"
			return 1
		}
		out="$(tb exec gw ip -o link show dev "$ifc")"
		grep -q 'state UP' <<<"$out" || {
			echo "$ifc not up: $out"
			return 1
		}
	done
	out="$(tb exec gw sysctl -n net.ipv4.ip_forward)"
	[[ "$out" == 0 ]] || {
		echo "ip_forward=$out"
		return 1
	}
	out="$(tb exec gw nft list ruleset 2>&1 || true)"
	[[ -z "$out" ]] || {
		echo "nft ruleset: $out"
		return 1
	}
	out="$(tb exec gw ip route show)"
	[[ -z "$out" ]] || {
		echo "routes: $out"
		return 1
	}
}

# checksums_complete captures, with AF_PACKET (tcpdump) on gw/veth-in as
# natgw will, a UDP datagram and a TCP SYN sent by an inside host, and fails
# unless both carry complete, correct checksums (with TX checksum offload on,
# they would be partial and tcpdump would call them bad).
checksums_complete() {
	local cap err pid i out
	cap="$(mktemp)"
	err="$(mktemp)"
	# Nobody answers ARP for 10.0.0.1 without natgw: a static entry lets
	# the inside host send.
	tb exec in ip neigh replace 10.0.0.1 lladdr 02:4e:47:01:00:01 dev eth0 nud permanent
	tb exec gw timeout 10 tcpdump -i veth-in -nn -vv -l -c 2 \
		'ip and src 10.0.1.4 and (udp dst port 9000 or tcp dst port 9001)' >"$cap" 2>"$err" &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		! grep -q 'listening on' "$err" || break
		sleep 0.05
	done
	printf x | tb exec in timeout 5 nc -u -w 0 -s 10.0.1.4 198.18.0.10 9000 || true
	tb exec in timeout 5 nc -z -w 1 -s 10.0.1.4 198.18.0.10 9001 || true # SYN, no answer
	wait "$pid" || true
	out="$(cat "$cap" "$err")"
	rm -f "$cap" "$err"
	tb exec in ip neigh del 10.0.0.1 dev eth0
	echo "$out"
	grep -q 'udp sum ok' <<<"$out" && grep -q 'cksum 0x[0-9a-f]* (correct)' <<<"$out" &&
		! grep -qiE 'bad udp cksum|incorrect' <<<"$out"
}

test_natgw() {
	echo "# natgw mode (${P})"
	check "up" tb up
	check "gw is bare: links up, no addresses, no routes, no nft, ip_forward 0" gw_is_bare
	check "offloads off on in/eth0" offloads_all_off in eth0
	check "offloads off on gw/veth-in" offloads_all_off gw veth-in
	check "offloads off on gw/veth-out" offloads_all_off gw veth-out
	check "offloads off on rt/to-gw" offloads_all_off rt to-gw
	check_match "server link has MTU 1400" 'mtu 1400' tb exec srv ip -o link show dev eth0
	check_match "router routes the public range to natgw" '^198\.19\.1\.0/24 via 198\.19\.0\.2 ' \
		tb exec rt ip route show 198.19.1.0/24
	check_fails "without natgw nobody answers 10.0.0.1" inside 5 ping -n -c 1 -W 1 10.0.0.1
	check "AF_PACKET on gw/veth-in sees complete UDP and TCP checksums" checksums_complete
	check "servers start" tb servers start
	check_match "router reaches the echo server directly" '^198\.18\.0\.1:[0-9]+$' \
		tb exec rt timeout 10 curl -sS -m 5 http://198.18.0.10:8080/
	check "up again over a half-built testbed" bash -c "ip netns del '${P}-srv' && timeout 60 '$TB' up 8>&-"
	check_match "rebuilt testbed has all four namespaces" '4/4 namespaces, mode natgw' tb status
	check "a second testbed ${P}x comes up beside it" env NATGW_TB="${P}x" timeout 60 "$TB" up
	check "down" tb down
	check_nothing_left
	check_match "down leaves the other testbed alone" "${P}x-gw" ip netns list
	check "down is idempotent" tb down
	check "down of the second testbed" env NATGW_TB="${P}x" timeout 60 "$TB" down
	local left
	left="$(ours_left "${P}x")"
	if [[ -z "$left" ]]; then pass "second testbed gone"; else fail "second testbed gone" "left: $left"; fi
}

main() {
	local which="${1:-all}"
	case "$which" in
	all | kernel-nat | natgw) ;;
	*)
		echo "usage: $0 [kernel-nat|natgw|all]" >&2
		exit 2
		;;
	esac
	((EUID == 0)) || {
		echo "testbed_test: must run as root" >&2
		exit 1
	}
	local c missing=()
	for c in ip ethtool nft iperf3 curl nc ping traceroute tcpdump flock timeout ss; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	((${#missing[@]} == 0)) || {
		echo "testbed_test: missing commands: ${missing[*]} (run scripts/install-deps.sh)" >&2
		exit 1
	}

	mkdir -p /run/lock
	exec 8>"/run/lock/natgw-testbed-test-${P}.lock"
	flock -w 300 8 || {
		echo "testbed_test: another run holds the lock for ${P}" >&2
		exit 1
	}
	trap cleanup EXIT
	trap 'exit 130' INT TERM

	# Build the echo server once for every `servers start` of this run.
	if [[ -z "${NATGW_ECHOSERVER:-}" ]]; then
		local go="${GO:-}"
		[[ -n "$go" ]] || go="$(command -v go || echo /usr/local/go/bin/go)"
		build_dir="$(mktemp -d)"
		(cd "${HERE}/.." && timeout 300 "$go" build -o "${build_dir}/echoserver" ./scripts/echoserver)
		export NATGW_ECHOSERVER="${build_dir}/echoserver"
	fi

	[[ "$which" == natgw ]] || test_kernel_nat
	[[ "$which" == kernel-nat ]] || test_natgw

	echo "# took $((SECONDS - started)) s"
	echo "testbed: ${passed} passed, ${failed} failed"
	((failed == 0))
}

main "$@"
