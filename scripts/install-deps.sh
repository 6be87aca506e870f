#!/usr/bin/env bash
# install-deps.sh — install what natgw's tests, linters (shellcheck for
# make lint), testbed and benchmarks need on Debian 12, and reserve 2 MB
# hugepages for DPDK.
#
# Usage: scripts/install-deps.sh [--dry-run] [--verbose]
#
#   --dry-run   print what would be done and change nothing
#   --verbose   say what is done, not only what fails
#
# coturn, stun-server, nfdump (nfcapd) and rsyslog ship system services;
# the tests start their own turnserver, stund, nfcapd and rsyslogd in a
# namespace, so the services are kept from starting at install (a
# temporary policy-rc.d, when none exists) and stay disabled (their
# /etc/default files say so, systemd units are disabled) and stopped.
# prometheus is there for promtool (the alert rules' tests) and is kept
# off the same way.
# frr (the cluster testbed's routers) is kept off the same way: the
# testbed starts its own zebra and bgpd per namespace.
#
# Idempotent: packages already installed are left alone and `apt-get update`
# runs only when something is missing; hugepages are only ever raised to
# NATGW_HUGEPAGES (default 512 pages of 2 MB), never lowered; hugetlbfs is
# mounted on /dev/hugepages only when nothing is mounted there.
# Quiet on success; on failure it says what failed (with the tail of apt's
# output) and exits non-zero. It must run as root.
set -euo pipefail

# Debian 12 ships dpdk-testpmd in dpdk-dev, not in dpdk; the PMD libraries
# for the virtual devices the tests and benchmarks use are named explicitly
# because dpdk only recommends them.
readonly PACKAGES=(
	iproute2 ethtool iperf3 curl nftables netcat-openbsd iputils-ping
	traceroute libdpdk-dev dpdk dpdk-dev pkg-config tcpdump procps
	librte-net-af-packet23 librte-net-pcap23 librte-net-null23
	librte-net-ring23 librte-mempool-ring23
	python3 lua5.3 shellcheck
	make gcc libc6-dev
	coturn stun-client stun-server
	nfdump tshark rsyslog prometheus frr
)
# Commands that must work once the packages are in (package: command).
readonly COMMANDS=(
	iproute2:ip ethtool:ethtool iperf3:iperf3 curl:curl nftables:nft
	netcat-openbsd:nc iputils-ping:ping traceroute:traceroute
	dpdk-dev:dpdk-testpmd pkg-config:pkg-config tcpdump:tcpdump procps:sysctl
	python3:python3 lua5.3:luac5.3 shellcheck:shellcheck
	make:make gcc:gcc
	coturn:turnserver coturn:turnutils_natdiscovery stun-client:stun stun-server:stund
	nfdump:nfcapd nfdump:nfdump tshark:tshark rsyslog:rsyslogd prometheus:promtool frr:vtysh
)
readonly HUGEPAGES="${NATGW_HUGEPAGES:-512}"
readonly HUGEPAGES_SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
readonly HUGEPAGES_MOUNT=/dev/hugepages

dry_run=0
verbose=0

die() {
	printf 'install-deps: error: %s\n' "$*" >&2
	exit 1
}

say() {
	if ((verbose || dry_run)); then
		printf 'install-deps: %s\n' "$*"
	fi
}

usage() {
	sed -n '2,26s/^# \{0,1\}//p' "$0"
}

# run executes its arguments, or only prints them with --dry-run.
run() {
	if ((dry_run)); then
		printf 'would run: %s\n' "$*"
		return 0
	fi
	say "running: $*"
	"$@"
}

# run_logged is run with the command's output kept in a log that is shown
# only when the command fails.
run_logged() {
	if ((dry_run)); then
		printf 'would run: %s\n' "$*"
		return 0
	fi
	say "running: $*"
	local log
	log="$(mktemp)"
	if ! "$@" >"$log" 2>&1; then
		printf 'install-deps: error: command failed: %s\n' "$*" >&2
		tail -n 30 "$log" | sed 's/^/    /' >&2
		rm -f "$log"
		exit 1
	fi
	rm -f "$log"
}

is_installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

has_candidate() {
	local candidate
	candidate="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
	[[ -n "$candidate" && "$candidate" != "(none)" ]]
}

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		is_installed "$p" || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		say "all packages already installed"
		return 0
	fi
	say "missing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	run_logged apt-get update
	local unknown=()
	for p in "${missing[@]}"; do
		has_candidate "$p" || unknown+=("$p")
	done
	if ((${#unknown[@]} > 0)); then
		if ((dry_run)); then
			printf 'note: no candidate yet for %s (apt-get update has not run)\n' "${unknown[*]}"
		else
			die "apt has no installation candidate for: ${unknown[*]}"
		fi
	fi
	# Services must not start at install (nfcapd, rsyslogd would listen
	# on the host): invoke-rc.d asks policy-rc.d, and 101 means "not
	# now". An existing policy (containers ship one) is left alone.
	local policy=/usr/sbin/policy-rc.d made_policy=0
	if [[ ! -e "$policy" ]] && ((!dry_run)); then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	run_logged apt-get install -y --no-install-recommends "${missing[@]}"
	if ((made_policy)); then
		rm -f "$policy"
	fi
}

check_commands() {
	local entry cmd bad=()
	for entry in "${COMMANDS[@]}"; do
		cmd="${entry#*:}"
		command -v "$cmd" >/dev/null 2>&1 || bad+=("$cmd (package ${entry%%:*})")
	done
	if ! pkg-config --exists libdpdk 2>/dev/null; then
		bad+=("pkg-config libdpdk (package libdpdk-dev)")
	fi
	if ((${#bad[@]} > 0)); then
		if ((dry_run)); then
			printf 'note: not available yet: %s\n' "${bad[*]}"
			return 0
		fi
		die "installed, but still missing: ${bad[*]}"
	fi
}

# The system services of the STUN servers and the /etc/default variable
# that enables each under SysV init (service:file:variable=value).
readonly DAEMONS=(
	coturn:/etc/default/coturn:TURNSERVER_ENABLED=1
	stun:/etc/default/stun:START_DAEMON=true
	nfdump:-:-
	rsyslog:-:-
	prometheus:-:-
)

# keep_daemons_off keeps these system services off, so only the tests' own
# turnserver, stund, nfcapd and rsyslogd ever run, and no prometheus
# (nfdump, rsyslog and prometheus have no /etc/default switch: "-";
# under SysV init their links are
# disabled): under SysV init the enabling
# line of their /etc/default file is commented out (the packages ship it
# commented out or false); under systemd, where Debian's coturn unit starts
# on install whatever /etc/default/coturn says, the units are disabled and
# stopped. Processes are never killed by name: a test's turnserver in a
# namespace is not the service.
keep_daemons_off() {
	local entry service file setting
	for entry in "${DAEMONS[@]}"; do
		IFS=: read -r service file setting <<<"$entry"
		if [[ "$file" != - && -f "$file" ]] && grep -q "^[[:space:]]*${setting}" "$file"; then
			run sed -i "s/^[[:space:]]*${setting%%=*}=/#&/" "$file"
		fi
		if [[ "$file" == - && ! -d /run/systemd/system && -x "/etc/init.d/$service" ]] &&
			compgen -G "/etc/rc[2-5].d/S*$service" >/dev/null; then
			run_logged update-rc.d "$service" disable
		fi
		[[ -d /run/systemd/system ]] || continue
		if systemctl -q is-enabled "$service" 2>/dev/null || systemctl -q is-active "$service" 2>/dev/null; then
			run_logged systemctl disable --now "$service"
		fi
	done
}

# keep_frr_off keeps FRR's system service off: the cluster testbed
# (scripts/testbed-cluster.sh) starts zebra and bgpd in its own router
# namespaces with their own configuration. Under systemd the unit is
# disabled and stopped; under SysV init its boot links are disabled.
# Processes are never killed by name.
keep_frr_off() {
	if [[ -d /run/systemd/system ]]; then
		if systemctl -q is-enabled frr 2>/dev/null || systemctl -q is-active frr 2>/dev/null; then
			run_logged systemctl disable --now frr
		fi
	elif [[ -x /etc/init.d/frr ]] && command -v update-rc.d >/dev/null 2>&1 &&
		compgen -G '/etc/rc[2-5].d/S*frr' >/dev/null; then
		run_logged update-rc.d frr disable
	fi
}

reserve_hugepages() {
	[[ "$HUGEPAGES" =~ ^[0-9]+$ ]] || die "NATGW_HUGEPAGES must be a number, got '$HUGEPAGES'"
	[[ -w "$HUGEPAGES_SYSFS" || $dry_run -eq 1 ]] || die "$HUGEPAGES_SYSFS is not writable (no 2 MB hugepage support?)"
	local have
	have="$(cat "$HUGEPAGES_SYSFS")"
	if ((have >= HUGEPAGES)); then
		say "hugepages: $have of 2 MB reserved (want $HUGEPAGES)"
		return 0
	fi
	if ((dry_run)); then
		printf 'would run: echo %s > %s   (now %s)\n' "$HUGEPAGES" "$HUGEPAGES_SYSFS" "$have"
		return 0
	fi
	say "reserving $HUGEPAGES hugepages of 2 MB (had $have)"
	echo "$HUGEPAGES" >"$HUGEPAGES_SYSFS"
	have="$(cat "$HUGEPAGES_SYSFS")"
	((have >= HUGEPAGES)) || die "asked for $HUGEPAGES hugepages of 2 MB, the kernel gave $have (memory too small or fragmented)"
}

mount_hugetlbfs() {
	if mountpoint -q "$HUGEPAGES_MOUNT" 2>/dev/null; then
		local fstype
		fstype="$(findmnt -n -o FSTYPE --target "$HUGEPAGES_MOUNT")"
		[[ "$fstype" == hugetlbfs ]] || die "$HUGEPAGES_MOUNT is mounted as $fstype, not hugetlbfs"
		say "hugetlbfs already mounted on $HUGEPAGES_MOUNT"
		return 0
	fi
	run mkdir -p "$HUGEPAGES_MOUNT"
	run mount -t hugetlbfs -o pagesize=2M nodev "$HUGEPAGES_MOUNT"
}

main() {
	while (($# > 0)); do
		case "$1" in
		--dry-run | -n) dry_run=1 ;;
		--verbose | -v) verbose=1 ;;
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
	((EUID == 0)) || die "must run as root (try: sudo $0)"
	install_packages
	check_commands
	keep_daemons_off
	keep_frr_off
	reserve_hugepages
	mount_hugetlbfs
}

main "$@"
