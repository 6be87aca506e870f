#!/usr/bin/env bash
# setup-host.sh — prepare a bare-metal host for natgw's DPDK dataplane.
#
# Usage: deploy/setup-host.sh [--dry-run] [--config FILE] [--nic PCI]...
#                              [--cores LIST] [--hugepages N] [--hugepages-1g N]
#                              [--mount systemd|fstab] [--no-bind] [--verbose]
#
#   --dry-run, -n     change nothing; print what would be done and a report
#   --config FILE     take the NICs (inside.port, outside.port and eal_args -a)
#                     and the worker count from a natgw configuration
#   --nic PCI         a NIC to bind to vfio-pci (repeatable), like 0000:3b:00.0
#   --cores LIST      the cores natgw runs on (workers + 1), like 2-6: checked
#                     against isolcpus, nohz_full, rcu_nocbs and the NICs' NUMA node
#   --hugepages N     2 MB hugepages to reserve, now and at every boot (default 512)
#   --hugepages-1g N  1 GB hugepages (default 0); reliable only from the kernel
#                     command line, which this script prints but does not edit
#   --mount MODE      make the hugetlbfs mounts persistent with systemd mount
#                     units or /etc/fstab (default: systemd when it runs the host)
#   --no-bind         do the checks and hugepages, bind no NIC
#   --verbose, -v     say what is already in place, not only what changes
#
# What it does, each step only when not already done (idempotent):
#   1. hugepages: vm.nr_hugepages in /etc/sysctl.d/80-natgw-hugepages.conf,
#      raised now if lower (never lowered); hugetlbfs on /dev/hugepages (and
#      /dev/hugepages1G for 1 GB pages) mounted now and at boot.
#   2. IOMMU: checks /sys/kernel/iommu_groups and the kernel command line;
#      loads vfio-pci now and at boot (/etc/modules-load.d/natgw-vfio.conf).
#   3. NICs: binds each to vfio-pci with dpdk-devbind.py (package dpdk), and
#      with driverctl (when installed) so the binding survives a reboot. It
#      refuses a NIC that carries the default route or an SSH session, or sits
#      in an IOMMU group with devices still used by the kernel.
#   4. CPU isolation: reports which of --cores are isolated and what to add.
# Kernel command line changes (IOMMU, 1 GB pages, isolation) are printed as
# advice: editing the boot loader is left to the operator.
#
# Exit status: 0 when everything is in place (with --dry-run: when the plan
# is safe, even if it lists problems); 1 when a problem stops it or a NIC is
# refused; 2 for a bad command line. It must run as root (except --dry-run).
set -euo pipefail

readonly PROG=setup-host
readonly SYSCTL_FILE=/etc/sysctl.d/80-natgw-hugepages.conf
readonly MODULES_FILE=/etc/modules-load.d/natgw-vfio.conf
readonly HP2M_SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
readonly HP1G_SYSFS=/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages
readonly HP2M_MOUNT=/dev/hugepages
readonly HP1G_MOUNT=/dev/hugepages1G
readonly TARGET_DRIVER=vfio-pci
# Tests point these elsewhere; on a host they are the kernel's.
SYSFS="${NATGW_SETUP_SYSFS:-/sys}"
CMDLINE_FILE="${NATGW_SETUP_CMDLINE:-/proc/cmdline}"

dry_run=0
verbose=0
bind=1
config=""
cores=""
hugepages_2m=512
hugepages_1g=0
mount_mode=""
nics=()
workers=0
problems=()
advice=()
cmdline_add=()

say() { printf '%s: %s\n' "$PROG" "$*"; }
info() { if ((verbose || dry_run)); then say "$*"; fi; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}
usage() { sed -n '2,/^set -euo pipefail$/ s/^# \{0,1\}//p' "$0"; }

# problem records something that stops a real run; the report lists them.
problem() {
	problems+=("$*")
	printf '%s: problem: %s\n' "$PROG" "$*" >&2
}

# refuse stops at once, in every mode: the plan itself is unsafe.
refuse() {
	printf '%s: refused: %s\n' "$PROG" "$*" >&2
	exit 1
}

# suggest records advice that is not a problem (the host works without it).
suggest() { advice+=("$*"); }

# run executes its arguments, or only prints them with --dry-run.
run() {
	if ((dry_run)); then
		printf 'would run: %s\n' "$*"
		return 0
	fi
	info "running: $*"
	"$@"
}

# write_file writes content to path unless it already holds exactly that.
write_file() {
	local path="$1" content="$2"
	if [[ -f "$path" && "$(cat "$path")" == "$content" ]]; then
		info "$path is up to date"
		return 0
	fi
	if ((dry_run)); then
		printf 'would write %s:\n' "$path"
		printf '%s\n' "$content" | sed 's/^/    /'
		return 0
	fi
	mkdir -p "$(dirname "$path")"
	printf '%s\n' "$content" >"$path.natgw-tmp"
	mv "$path.natgw-tmp" "$path"
	say "wrote $path"
}

# cmdline_has reports whether the kernel command line has parameter $1
# (as "name" or "name=...").
cmdline_has() {
	local p
	for p in $(cat "$CMDLINE_FILE" 2>/dev/null || true); do
		[[ "$p" == "$1" || "$p" == "$1="* ]] && return 0
	done
	return 1
}

# cmdline_value prints the value of kernel parameter $1 (the last one).
cmdline_value() {
	local p v=""
	for p in $(cat "$CMDLINE_FILE" 2>/dev/null || true); do
		[[ "$p" == "$1="* ]] && v="${p#*=}"
	done
	printf '%s' "$v"
}

# expand_cpus prints the CPUs of a list like "1,3-5" one per line; flags of
# isolcpus ("managed_irq,domain,2-5") are skipped.
expand_cpus() {
	local part lo hi
	local IFS=,
	for part in $1; do
		if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
			lo="${BASH_REMATCH[1]}" hi="${BASH_REMATCH[2]}"
			((lo <= hi)) || continue
			seq "$lo" "$hi"
		elif [[ "$part" =~ ^[0-9]+$ ]]; then
			printf '%s\n' "$part"
		fi
	done
}

# in_list reports whether $1 is one of the following arguments.
in_list() {
	local x="$1" y
	shift
	for y in "$@"; do
		[[ "$x" == "$y" ]] && return 0
	done
	return 1
}

# ---------------------------------------------------------------- config

# toml_strings prints the quoted strings of key $2 in section [$1] of the
# configuration, one per line (a string or an array, over several lines).
# It reads natgw's own files, not TOML in general: one key per line,
# double-quoted strings without escapes.
toml_strings() {
	awk -v want="$1" -v key="$2" '
		/^[[:space:]]*\[/ {
			s = $0; gsub(/[[:space:]\[\]]/, "", s); section = s; inkey = 0; next
		}
		section == want && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" { inkey = 1 }
		inkey {
			line = $0; sub(/#.*/, "", line); whole = line
			first = (line ~ "^[[:space:]]*" key "[[:space:]]*=")
			scalar = first && line !~ /=[[:space:]]*\[/
			if (first) sub(/^[^=]*=/, "", line)
			while (match(line, /"[^"]*"/)) {
				print substr(line, RSTART + 1, RLENGTH - 2)
				line = substr(line, RSTART + RLENGTH)
			}
			if (scalar || whole ~ /\]/) inkey = 0
		}' "$config"
}

# toml_number prints the number of key $2 in section [$1].
toml_number() {
	awk -v want="$1" -v key="$2" '
		/^[[:space:]]*\[/ { s = $0; gsub(/[[:space:]\[\]]/, "", s); section = s; next }
		section == want && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
			v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]#].*/, "", v); gsub(/_/, "", v); print v; exit
		}' "$config"
}

# read_config takes the NICs and the worker count from --config.
read_config() {
	[[ -r "$config" ]] || die "cannot read --config $config"
	local port args=() i
	for port in $(toml_strings inside port) $(toml_strings outside port); do
		nics+=("$port")
	done
	mapfile -t args < <(toml_strings dataplane eal_args)
	for ((i = 0; i < ${#args[@]}; i++)); do
		case "${args[i]}" in
		-a | --allow) ((i + 1 < ${#args[@]})) && nics+=("${args[i + 1]%%,*}") ;;
		--allow=*) nics+=("${args[i]#--allow=}") ;;
		esac
	done
	workers="$(toml_number dataplane workers)"
	[[ "$workers" =~ ^[0-9]+$ ]] || workers=1
	info "config $config: ports ${nics[*]:-none}, $workers workers"
}

# ---------------------------------------------------------------- hugepages

hugepages() {
	if [[ ! -e "$SYSFS/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages" ]]; then
		problem "this kernel has no 2 MB hugepages ($HP2M_SYSFS is missing)"
		return 0
	fi
	local have
	have="$(cat "$SYSFS/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")"
	write_file "$SYSCTL_FILE" "# natgw (deploy/setup-host.sh): 2 MB hugepages for DPDK's packet memory.
vm.nr_hugepages = $hugepages_2m"
	if ((have >= hugepages_2m)); then
		info "2 MB hugepages: $have reserved (want $hugepages_2m)"
	else
		run sysctl -q -w "vm.nr_hugepages=$hugepages_2m"
		if ((!dry_run)); then
			have="$(cat "$HP2M_SYSFS")"
			((have >= hugepages_2m)) || problem "asked for $hugepages_2m hugepages of 2 MB, the kernel gave $have (memory fragmented: add hugepages=$hugepages_2m to the kernel command line and reboot)"
		fi
	fi
	local node
	for node in "$SYSFS"/devices/system/node/node*/hugepages/hugepages-2048kB/nr_hugepages; do
		[[ -e "$node" ]] || continue
		info "  $(basename "$(dirname "$(dirname "$(dirname "$node")")")"): $(cat "$node") pages of 2 MB"
	done
	mount_hugetlbfs "$HP2M_MOUNT" 2M dev-hugepages.mount

	((hugepages_1g > 0)) || return 0
	if ! grep -qw pdpe1gb /proc/cpuinfo; then
		problem "--hugepages-1g: this CPU has no 1 GB pages (no pdpe1gb flag)"
		return 0
	fi
	if [[ "$(cmdline_value hugepagesz)" != 1G || "$(cmdline_value hugepages)" != "$hugepages_1g" ]]; then
		cmdline_add+=("default_hugepagesz=2M hugepagesz=1G hugepages=$hugepages_1g hugepagesz=2M hugepages=$hugepages_2m")
	fi
	have=0
	[[ -e "$SYSFS/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages" ]] &&
		have="$(cat "$SYSFS/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages")"
	if ((have < hugepages_1g)); then
		run sh -c "echo $hugepages_1g > $HP1G_SYSFS"
		if ((!dry_run)); then
			have="$(cat "$HP1G_SYSFS")"
			((have >= hugepages_1g)) || suggest "1 GB hugepages: the kernel gave $have of $hugepages_1g at run time; reserve them on the kernel command line (printed below) and reboot"
		fi
	else
		info "1 GB hugepages: $have reserved (want $hugepages_1g)"
	fi
	mount_hugetlbfs "$HP1G_MOUNT" 1G dev-hugepages1G.mount
}

# mount_hugetlbfs mounts hugetlbfs with pagesize $2 on $1 now and at boot
# (systemd mount unit $3, or /etc/fstab).
mount_hugetlbfs() {
	local dir="$1" size="$2" unit="$3"
	if mountpoint -q "$dir" 2>/dev/null; then
		local fstype opts
		fstype="$(findmnt -n -o FSTYPE --target "$dir")"
		opts="$(findmnt -n -o OPTIONS --target "$dir")"
		[[ "$fstype" == hugetlbfs ]] || problem "$dir is mounted as $fstype, not hugetlbfs"
		[[ "$size" == 2M || "$opts" == *"pagesize=$size"* ]] || problem "$dir is mounted with $opts, not pagesize=$size"
		info "hugetlbfs mounted on $dir ($opts)"
	fi
	if [[ "$mount_mode" == systemd ]]; then
		if [[ "$unit" == dev-hugepages.mount ]]; then
			# systemd ships this unit and mounts it at every boot.
			mountpoint -q "$dir" 2>/dev/null || run systemctl start dev-hugepages.mount
			return 0
		fi
		write_file "/etc/systemd/system/$unit" "# natgw (deploy/setup-host.sh): hugetlbfs with $size pages for DPDK.
[Unit]
Description=Huge pages of $size for DPDK (natgw)
DefaultDependencies=no
Before=sysinit.target
ConditionPathExists=/sys/kernel/mm/hugepages/hugepages-1048576kB

[Mount]
What=hugetlbfs
Where=$dir
Type=hugetlbfs
Options=pagesize=$size

[Install]
WantedBy=sysinit.target"
		run systemctl daemon-reload
		run systemctl enable "$unit"
		mountpoint -q "$dir" 2>/dev/null || run systemctl start "$unit"
		return 0
	fi
	if awk -v d="$dir" '$2 == d && $3 == "hugetlbfs" { found = 1 } END { exit !found }' /etc/fstab 2>/dev/null; then
		info "/etc/fstab mounts $dir"
	elif ((dry_run)); then
		printf 'would append to /etc/fstab: nodev %s hugetlbfs pagesize=%s 0 0\n' "$dir" "$size"
	else
		printf 'nodev %s hugetlbfs pagesize=%s 0 0\n' "$dir" "$size" >>/etc/fstab
		say "added $dir to /etc/fstab"
	fi
	if ! mountpoint -q "$dir" 2>/dev/null; then
		run mkdir -p "$dir"
		run mount -t hugetlbfs -o "pagesize=$size" nodev "$dir"
	fi
}

# ---------------------------------------------------------------- IOMMU

iommu() {
	local groups=0 vendor
	if [[ -d "$SYSFS/kernel/iommu_groups" ]]; then
		groups="$(find "$SYSFS/kernel/iommu_groups" -mindepth 1 -maxdepth 1 | wc -l)"
	fi
	vendor="$(awk -F': ' '/^vendor_id/ { print $2; exit }' /proc/cpuinfo)"
	if [[ "$vendor" == GenuineIntel ]] && ! cmdline_has intel_iommu; then
		cmdline_add+=("intel_iommu=on")
	fi
	cmdline_has iommu || cmdline_add+=("iommu=pt")
	if ((groups == 0)); then
		local how="enable VT-d / AMD-Vi in the firmware"
		[[ "$vendor" == GenuineIntel ]] && how+=" and add intel_iommu=on iommu=pt to the kernel command line"
		[[ "$vendor" == AuthenticAMD ]] && how+=" (AMD's IOMMU is on by default when the firmware enables it; add iommu=pt)"
		if ((bind && ${#nics[@]} > 0)); then
			problem "the IOMMU is off ($SYSFS/kernel/iommu_groups is empty): vfio-pci needs it; $how, then reboot"
		else
			suggest "the IOMMU is off ($SYSFS/kernel/iommu_groups is empty); vfio-pci will need it: $how"
		fi
	else
		info "IOMMU on: $groups groups"
	fi
	((bind)) || return 0
	if [[ -d "$SYSFS/bus/pci/drivers/$TARGET_DRIVER" ]] || modinfo "$TARGET_DRIVER" >/dev/null 2>&1; then
		write_file "$MODULES_FILE" "# natgw (deploy/setup-host.sh): DPDK's NIC driver.
$TARGET_DRIVER"
	fi
	if [[ -d "$SYSFS/bus/pci/drivers/$TARGET_DRIVER" ]]; then
		info "$TARGET_DRIVER is loaded"
	elif modinfo "$TARGET_DRIVER" >/dev/null 2>&1; then
		run modprobe "$TARGET_DRIVER"
	elif ((${#nics[@]} > 0)); then
		problem "kernel module $TARGET_DRIVER is not available for $(uname -r) (install the distribution kernel, linux-image-amd64)"
	else
		suggest "kernel module $TARGET_DRIVER is not available for $(uname -r): DPDK on PCI NICs will need it (the distribution kernel, linux-image-amd64, has it)"
	fi
}

# ---------------------------------------------------------------- NICs

# protected_devs prints the network interfaces that carry the default route
# or an SSH session, and every interface below them (bond and bridge
# members, VLAN parents), one per line.
protected_devs() {
	{
		ip -o route show default 2>/dev/null
		ip -o -6 route show default 2>/dev/null
	} | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1) }' |
		sed 's/^/route /'
	local addrs=() a ports=(22)
	if [[ -r /etc/ssh/sshd_config ]]; then
		mapfile -t ports < <(awk 'tolower($1) == "port" { print $2 }' /etc/ssh/sshd_config)
		((${#ports[@]} > 0)) || ports=(22)
	fi
	[[ -n "${SSH_CONNECTION:-}" ]] && addrs+=("$(awk '{ print $3 }' <<<"$SSH_CONNECTION")")
	while read -r local_addr; do
		local port="${local_addr##*:}" addr="${local_addr%:*}"
		addr="${addr#[}" addr="${addr%]}" addr="${addr%%%*}" addr="${addr#::ffff:}"
		in_list "$port" "${ports[@]}" && addrs+=("$addr")
	done < <(ss -Htn state established 2>/dev/null | awk '{ print $(NF - 1) }')
	for a in "${addrs[@]}"; do
		ip -o addr show 2>/dev/null | awk -v a="$a" '{ split($4, p, "/"); if (p[1] == a) print "ssh " $2 }'
	done
}

# lower_devs prints interface $1 and every interface below it.
lower_devs() {
	local dev="$1" depth="${2:-0}" lower
	printf '%s\n' "$dev"
	((depth < 8)) || return 0
	for lower in "$SYSFS/class/net/$dev"/lower_*; do
		[[ -e "$lower" ]] || continue
		lower_devs "${lower##*/lower_}" $((depth + 1))
	done
}

# normalise_pci prints a PCI address with its domain ("3b:00.0" ->
# "0000:3b:00.0"), or nothing when $1 is not a PCI address.
normalise_pci() {
	local a="${1,,}"
	if [[ "$a" =~ ^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]]; then
		printf '%s' "$a"
	elif [[ "$a" =~ ^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]]; then
		printf '0000:%s' "$a"
	fi
}

nic_driver() {
	local link="$SYSFS/bus/pci/devices/$1/driver"
	if [[ -e "$link" ]]; then basename "$(readlink -f "$link")"; else printf 'none'; fi
}

nic_netdevs() {
	local n
	# The interface is under net/, or one level down (virtio: virtio0/net/).
	for n in "$SYSFS/bus/pci/devices/$1"/net/* "$SYSFS/bus/pci/devices/$1"/*/net/*; do
		[[ -e "$n" ]] && basename "$n"
	done
	return 0
}

# why_protected prints why NIC $1 must not be taken from the kernel, or
# nothing. protected holds "reason dev" lines of protected_devs.
why_protected() {
	local pci="$1" netdev line reason dev lower
	for netdev in $(nic_netdevs "$pci"); do
		while read -r line; do
			[[ -n "$line" ]] || continue
			reason="${line%% *}" dev="${line#* }"
			while read -r lower; do
				[[ "$lower" == "$netdev" ]] || continue
				local via=""
				[[ "$dev" != "$netdev" ]] && via=" (through $dev)"
				if [[ "$reason" == route ]]; then
					printf '%s (%s) carries the default route%s: taking it from the kernel would cut this host off' "$pci" "$netdev" "$via"
				else
					printf '%s (%s) carries an SSH session%s: taking it from the kernel would cut you off' "$pci" "$netdev" "$via"
				fi
				return 0
			done < <(lower_devs "$dev")
		done <<<"$protected"
	done
}

# list_nics prints the PCI addresses of the host's network controllers.
list_nics() {
	local d
	for d in "$SYSFS"/bus/pci/devices/*; do
		[[ -e "$d/class" ]] || continue
		[[ "$(cat "$d/class")" == 0x02* ]] && basename "$d"
	done
	return 0
}

# survey reports the host's NICs when none was given.
survey() {
	local pci usable=0 why
	say "no NIC given (--nic or --config): the network controllers of this host are"
	for pci in $(list_nics); do
		why="$(why_protected "$pci")"
		printf '    %s driver=%s if=%s numa=%s%s\n' "$pci" "$(nic_driver "$pci")" \
			"$(nic_netdevs "$pci" | paste -sd, -)" "$(cat "$SYSFS/bus/pci/devices/$pci/numa_node" 2>/dev/null || echo -1)" \
			"${why:+  NOT usable: $why}"
		[[ -z "$why" ]] && usable=$((usable + 1))
	done
	if ((usable == 0)); then
		problem "this host has no PCI NIC that DPDK could use (see the list above): natgw needs two NICs besides the one carrying the host's own traffic; use driver = \"afpacket\" on kernel interfaces instead"
	else
		say "$usable NIC(s) could be given to DPDK: name two with --nic"
	fi
}

# check_group refuses to go on when NIC $1 shares its IOMMU group with
# devices a kernel driver still uses: vfio takes whole groups.
check_group() {
	local pci="$1" group member drv
	[[ -e "$SYSFS/bus/pci/devices/$pci/iommu_group" ]] || return 0
	group="$(basename "$(readlink -f "$SYSFS/bus/pci/devices/$pci/iommu_group")")"
	for member in "$SYSFS/kernel/iommu_groups/$group/devices"/*; do
		member="$(basename "$member")"
		[[ "$member" == "$pci" ]] && continue
		drv="$(nic_driver "$member")"
		case "$drv" in
		none | "$TARGET_DRIVER" | pcieport) ;;
		*)
			in_list "$member" "${pci_nics[@]}" && continue
			problem "$pci is in IOMMU group $group with $member (driver $drv): vfio-pci needs every device of the group; bind $member too (--nic) or move the card to another slot"
			;;
		esac
	done
}

bind_nics() {
	local raw pci why drv node
	pci_nics=()
	for raw in "${nics[@]}"; do
		pci="$(normalise_pci "$raw")"
		if [[ -z "$pci" ]]; then
			info "$raw is not a PCI address (a vdev or interface name): nothing to bind"
			continue
		fi
		in_list "$pci" "${pci_nics[@]}" || pci_nics+=("$pci")
	done
	if ((${#nics[@]} == 0)); then
		survey
		return 0
	fi
	# Safety first, for every NIC, before anything changes.
	for pci in "${pci_nics[@]}"; do
		why="$(why_protected "$pci")"
		[[ -z "$why" ]] || refuse "$why. Name another NIC; dpdk-devbind.py --status lists them."
	done
	for pci in "${pci_nics[@]}"; do
		if [[ ! -e "$SYSFS/bus/pci/devices/$pci" ]]; then
			problem "no PCI device $pci on this host (dpdk-devbind.py --status lists the NICs)"
			continue
		fi
		drv="$(nic_driver "$pci")"
		node="$(cat "$SYSFS/bus/pci/devices/$pci/numa_node" 2>/dev/null || echo -1)"
		nic_nodes+=("$node")
		check_group "$pci"
		if [[ "$drv" == "$TARGET_DRIVER" ]]; then
			info "$pci is bound to $TARGET_DRIVER (NUMA node $node)"
			continue
		fi
		local netdevs
		netdevs="$(nic_netdevs "$pci" | paste -sd, -)"
		say "$pci (driver $drv${netdevs:+, interface $netdevs}, NUMA node $node) goes to $TARGET_DRIVER"
		if ! command -v dpdk-devbind.py >/dev/null 2>&1; then
			problem "dpdk-devbind.py not found: apt-get install dpdk"
			continue
		fi
		run dpdk-devbind.py --bind="$TARGET_DRIVER" "$pci"
	done
	if command -v driverctl >/dev/null 2>&1; then
		for pci in "${pci_nics[@]}"; do
			[[ -e "$SYSFS/bus/pci/devices/$pci" ]] || continue
			if [[ "$(driverctl list-overrides 2>/dev/null | awk -v p="$pci" '$1 == p { print $2 }')" == "$TARGET_DRIVER" ]]; then
				info "$pci: driverctl keeps it on $TARGET_DRIVER at boot"
			else
				run driverctl set-override "$pci" "$TARGET_DRIVER"
			fi
		done
	elif ((${#pci_nics[@]} > 0)); then
		suggest "dpdk-devbind.py bindings last until reboot: apt-get install driverctl and run this again to make them persistent (or run it at boot before natgw.service)"
	fi
}

# ---------------------------------------------------------------- CPUs

cpus() {
	local online=() want=() c
	mapfile -t online < <(expand_cpus "$(cat "$SYSFS/devices/system/cpu/online" 2>/dev/null || echo 0)")
	if [[ -z "$cores" ]]; then
		if ((workers > 0)); then
			suggest "natgw needs $((workers + 1)) cores ($workers workers + 1); pass --cores to check their isolation"
		fi
		info "CPU isolation not checked (no --cores)"
		return 0
	fi
	mapfile -t want < <(expand_cpus "$cores")
	((${#want[@]} > 0)) || die "--cores $cores names no core"
	for c in "${want[@]}"; do
		in_list "$c" "${online[@]}" || problem "--cores: core $c is not online (online: $(cat "$SYSFS/devices/system/cpu/online" 2>/dev/null))"
	done
	if ((workers > 0 && ${#want[@]} < workers + 1)); then
		problem "--cores $cores gives ${#want[@]} core(s); natgw needs $((workers + 1)) ($workers workers + the management core)"
	fi
	if ((${#want[@]} >= ${#online[@]})); then
		problem "--cores $cores takes every online core: leave at least one to the host"
	fi
	local param list missing
	for param in nohz_full rcu_nocbs; do
		list="$(cmdline_value "$param")"
		missing=()
		for c in "${want[@]}"; do
			expand_cpus "$list" | grep -qx "$c" || missing+=("$c")
		done
		if ((${#missing[@]} > 0)); then
			cmdline_add+=("$param=$cores")
		else
			info "$param covers $cores"
		fi
	done
	if cmdline_has isolcpus; then
		suggest "isolcpus=$(cmdline_value isolcpus) is set: the kernel does not spread threads over isolated cores, so set dataplane.worker_cpus in natgw.toml (natgw then pins one worker per core itself and keeps its other threads off them)"
	fi
	# NUMA: the cores should be on the NICs' node.
	local node cnode
	for node in "${nic_nodes[@]}"; do
		((node >= 0)) || continue
		for c in "${want[@]}"; do
			cnode="$(find "$SYSFS/devices/system/cpu/cpu$c" -maxdepth 1 -name 'node*' -printf '%f\n' 2>/dev/null | head -n1)"
			cnode="${cnode#node}"
			if [[ -n "$cnode" && "$cnode" != "$node" ]]; then
				suggest "core $c is on NUMA node $cnode, a NIC on node $node: every packet crosses the interconnect; choose cores of node $node"
			fi
		done
	done
}

# ---------------------------------------------------------------- report

report() {
	if ((${#cmdline_add[@]} > 0)); then
		suggest "kernel command line: add \"${cmdline_add[*]}\" to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot"
	fi
	local a p
	for a in "${advice[@]}"; do
		say "advice: $a"
	done
	if ((${#problems[@]} == 0)); then
		if ((dry_run)); then say "dry run: nothing changed; the steps above would prepare this host"; else say "host ready for natgw"; fi
		return 0
	fi
	say "${#problems[@]} problem(s):"
	for p in "${problems[@]}"; do
		printf '    - %s\n' "$p"
	done
	if ((dry_run)); then
		say "dry run: nothing changed; a real run would stop on the problems above"
		return 0
	fi
	return 1
}

main() {
	while (($# > 0)); do
		case "$1" in
		--dry-run | -n) dry_run=1 ;;
		--verbose | -v) verbose=1 ;;
		--no-bind) bind=0 ;;
		--config | --nic | --cores | --hugepages | --hugepages-1g | --mount)
			(($# >= 2)) || {
				usage >&2
				printf '%s: error: %s needs a value\n' "$PROG" "$1" >&2
				exit 2
			}
			case "$1" in
			--config) config="$2" ;;
			--nic) nics+=("$2") ;;
			--cores) cores="$2" ;;
			--hugepages) hugepages_2m="$2" ;;
			--hugepages-1g) hugepages_1g="$2" ;;
			--mount) mount_mode="$2" ;;
			esac
			shift
			;;
		--help | -h)
			usage
			exit 0
			;;
		*)
			usage >&2
			printf '%s: error: unknown argument: %s\n' "$PROG" "$1" >&2
			exit 2
			;;
		esac
		shift
	done
	[[ "$hugepages_2m" =~ ^[0-9]+$ ]] || die "--hugepages must be a number, got '$hugepages_2m'"
	[[ "$hugepages_1g" =~ ^[0-9]+$ ]] || die "--hugepages-1g must be a number, got '$hugepages_1g'"
	if [[ -z "$mount_mode" ]]; then
		if [[ -d /run/systemd/system ]]; then mount_mode=systemd; else mount_mode=fstab; fi
	fi
	[[ "$mount_mode" == systemd || "$mount_mode" == fstab ]] || die "--mount must be systemd or fstab, got '$mount_mode'"
	((dry_run || EUID == 0)) || die "must run as root (try: sudo $0, or --dry-run to see the plan)"
	[[ -z "$config" ]] || read_config
	if ((dry_run)); then say "dry run: nothing will be changed"; fi

	protected="$(protected_devs | sort -u)"
	pci_nics=()
	nic_nodes=()
	say "[hugepages]"
	hugepages
	say "[iommu]"
	iommu
	say "[nics]"
	if ((bind)); then bind_nics; else info "--no-bind: NICs left alone"; fi
	say "[cpus]"
	cpus
	report
}

main "$@"
