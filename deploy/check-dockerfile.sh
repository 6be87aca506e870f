#!/usr/bin/env bash
# check-dockerfile.sh — check natgw's Dockerfile where Docker can't build it.
#
# Usage: deploy/check-dockerfile.sh [--no-run] [--dockerfile FILE] [--binary FILE] [--keep]
#
#   --no-run           parse and check only; don't run the build stage
#   --dockerfile FILE  the Dockerfile (default: Dockerfile at the repository root)
#   --binary FILE      with --no-run, the natgw binary whose libraries the
#                      runtime stage must provide (default: bin/natgw when it
#                      was built with DPDK; otherwise that check is skipped)
#   --keep             keep the temporary build directory and print its path
#
# Checks:
#   1. syntax: every instruction is a Dockerfile instruction, continuation
#      lines are joined, ARGs before the first FROM only; every FROM names
#      its stage (AS name), uniquely, from a pinned image tag; the Go image
#      matches go.mod's Go release; COPY --from names an earlier stage and
#      every other COPY source exists in the build context (the repository);
#      ENTRYPOINT and CMD in exec form are valid JSON arrays.
#   2. the build stage ("build") runs: its RUN commands are run in order, as
#      root, on this host (Debian 12, the image's release) in a temporary
#      copy of the repository standing for its WORKDIR, with its ARG and ENV
#      defaults; then every COPY --from=build source must exist there.
#      Skipped with --no-run.
#   3. the runtime stage (the last one): every package its apt-get install
#      names has an installation candidate (apt-cache policy), the DPDK
#      plugins natgw needs at run time are listed, and every shared library
#      of the built binary (ldd; with --no-run, bin/natgw when it was built
#      with DPDK) comes from a listed package or one they depend on.
# Prints one line per check and a summary; exits 1 when a check fails.
set -euo pipefail

readonly PROG=check-dockerfile
readonly INSTRUCTIONS=" FROM RUN CMD LABEL EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL HEALTHCHECK SHELL "
# EAL loads these as plugins: ldd can't see them, natgw can't run without.
readonly RUNTIME_PLUGINS=(librte-mempool-ring23 librte-bus-pci23 librte-bus-vdev23)
# The build stage's RUN commands may only write inside the build copy and
# apt's own state; anything that deletes elsewhere is refused.
readonly UNSAFE_RUN='(^|[;&|[:space:]])rm[[:space:]]+(-[a-zA-Z]+[[:space:]]+)*/'

repo="$(cd "$(dirname "$0")/.." && pwd)"
dockerfile="$repo/Dockerfile"
do_run=1
keep=0
binary=""
failed=0
passed=0

usage() { sed -n '2,/^set -euo pipefail$/ s/^# \{0,1\}//p' "$0"; }
ok() {
	passed=$((passed + 1))
	printf 'ok    %s\n' "$*"
}
fail() {
	failed=$((failed + 1))
	printf 'FAIL  %s\n' "$*"
}
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

# Parsed Dockerfile: instruction i has keyword kw[i], arguments args[i],
# line line[i] and stage stage_of[i] (-1 before the first FROM).
kw=()
args=()
line=()
stage_of=()
stage_names=()
stage_images=()
declare -A global_args=()

parse() {
	local n=0 text="" start=0 raw stage=-1
	while IFS= read -r raw || [[ -n "$raw" ]]; do
		n=$((n + 1))
		raw="${raw%$'\r'}"
		if [[ -z "$text" ]]; then
			[[ "$raw" =~ ^[[:space:]]*(#|$) ]] && continue
			start=$n
		elif [[ "$raw" =~ ^[[:space:]]*# ]]; then
			continue # comment inside a continued instruction
		fi
		if [[ "$raw" =~ \\[[:space:]]*$ ]]; then
			text+="${raw%\\*} "
			continue
		fi
		text+="$raw"
		local word="${text#"${text%%[![:space:]]*}"}"
		local k="${word%%[[:space:]]*}" rest=""
		[[ "$word" == *[[:space:]]* ]] && rest="${word#*[[:space:]]}"
		rest="${rest#"${rest%%[![:space:]]*}"}"
		k="${k^^}"
		if [[ "$INSTRUCTIONS" != *" $k "* ]]; then
			fail "line $start: unknown instruction '$k'"
		elif [[ "$k" == FROM ]]; then
			stage=$((stage + 1))
		elif ((stage < 0)) && [[ "$k" != ARG ]]; then
			fail "line $start: $k before the first FROM (only ARG may come first)"
		fi
		kw+=("$k")
		args+=("$rest")
		line+=("$start")
		stage_of+=("$stage")
		text=""
	done <"$dockerfile"
	[[ -z "$text" ]] || fail "line $start: the last instruction ends with a line continuation"
	((${#kw[@]} > 0)) || die "$dockerfile has no instruction"
}

# expand substitutes ${NAME} and $NAME from the associative array named $2.
expand() {
	local s="$1" name
	local -n vars_ref="$2"
	for name in "${!vars_ref[@]}"; do
		s="${s//\$\{$name\}/${vars_ref[$name]}}"
		s="${s//\$$name/${vars_ref[$name]}}"
	done
	printf '%s' "$s"
}

check_syntax() {
	local i a name value image
	for i in "${!kw[@]}"; do
		((stage_of[i] < 0)) || break
		a="${args[i]}"
		name="${a%%=*}"
		value=""
		[[ "$a" == *=* ]] && value="${a#*=}"
		global_args[$name]="$value"
	done
	local go_release
	go_release="$(awk '$1 == "go" { split($2, v, "."); print v[1] "." v[2]; exit }' "$repo/go.mod")"
	for i in "${!kw[@]}"; do
		[[ "${kw[i]}" == FROM ]] || continue
		local words=() w
		read -r -a words <<<"${args[i]}"
		local rest=()
		for w in "${words[@]}"; do
			[[ "$w" == --* ]] || rest+=("$w")
		done
		image="$(expand "${rest[0]:-}" global_args)"
		if ((${#rest[@]} != 3)) || [[ "${rest[1]^^}" != AS ]]; then
			fail "line ${line[i]}: FROM ${args[i]}: name the stage (FROM image AS name)"
			stage_names+=("")
		else
			name="${rest[2]}"
			if [[ " ${stage_names[*]} " == *" $name "* ]]; then
				fail "line ${line[i]}: stage name '$name' is used twice"
			fi
			stage_names+=("$name")
		fi
		stage_images+=("$image")
		if [[ "$image" != *:* || "$image" == *:latest ]]; then
			fail "line ${line[i]}: image '$image' is not pinned to a release tag"
		elif [[ "$image" == golang:* && -n "$go_release" && "${image#golang:}" != "$go_release"* ]]; then
			fail "line ${line[i]}: $image is not Go $go_release (go.mod)"
		else
			ok "line ${line[i]}: stage ${stage_names[-1]:-?} from $image"
		fi
	done
	for i in "${!kw[@]}"; do
		case "${kw[i]}" in
		COPY | ADD) check_copy "$i" ;;
		ENTRYPOINT | CMD) check_exec_form "$i" "${args[i]}" ;;
		HEALTHCHECK)
			[[ "${args[i]}" =~ (^|[[:space:]])CMD[[:space:]] || "${args[i]}" == NONE ]] ||
				fail "line ${line[i]}: HEALTHCHECK needs CMD or NONE"
			;;
		esac
	done
}

# check_exec_form checks that an exec-form instruction is a JSON array of
# strings.
check_exec_form() {
	local i="$1" a="$2"
	[[ "$a" == \[* ]] || return 0
	if command -v jq >/dev/null 2>&1; then
		if jq -e 'type == "array" and length > 0 and all(type == "string")' >/dev/null 2>&1 <<<"$a"; then
			ok "line ${line[i]}: ${kw[i]} is a JSON array"
		else
			fail "line ${line[i]}: ${kw[i]} $a is not a JSON array of strings"
		fi
	else
		ok "line ${line[i]}: ${kw[i]} exec form (jq not installed: JSON not checked)"
	fi
}

# copy_from and copy_src hold the --from stage and the sources of COPY i.
check_copy() {
	local i="$1" words=() w from="" srcs=() src
	read -r -a words <<<"${args[i]}"
	if [[ "${args[i]}" == \[* ]]; then
		fail "line ${line[i]}: ${kw[i]} in JSON form is not checked by this script; use the plain form"
		return 0
	fi
	for w in "${words[@]}"; do
		case "$w" in
		--from=*) from="${w#--from=}" ;;
		--*) ;;
		*) srcs+=("$w") ;;
		esac
	done
	if ((${#srcs[@]} < 2)); then
		fail "line ${line[i]}: ${kw[i]} needs a source and a destination"
		return 0
	fi
	unset 'srcs[-1]'
	if [[ -n "$from" ]]; then
		local s found=0
		for ((s = 0; s < stage_of[i]; s++)); do
			[[ "${stage_names[s]}" == "$from" ]] && found=1
		done
		if ((found)); then
			ok "line ${line[i]}: ${kw[i]} --from=$from names an earlier stage"
		else
			fail "line ${line[i]}: ${kw[i]} --from=$from is not an earlier stage (stages: ${stage_names[*]})"
		fi
		return 0
	fi
	for src in "${srcs[@]}"; do
		# shellcheck disable=SC2206 # the source may be a glob
		local matches=("$repo"/$src)
		if [[ -e "${matches[0]}" ]]; then
			ok "line ${line[i]}: ${kw[i]} source $src exists"
		else
			fail "line ${line[i]}: ${kw[i]} source $src does not exist in the build context $repo"
		fi
	done
}

# stage_index prints the index of the stage named $1, or of the last stage
# for "last".
stage_index() {
	local s
	if [[ "$1" == last ]]; then
		printf '%s' $((${#stage_names[@]} - 1))
		return 0
	fi
	for s in "${!stage_names[@]}"; do
		[[ "${stage_names[s]}" == "$1" ]] && printf '%s' "$s" && return 0
	done
	return 1
}

# run_build runs the build stage's RUN commands in a copy of the repository
# and prints the path of the copy.
run_build() {
	local b
	b="$(stage_index build)" || {
		fail "no stage named 'build'"
		return 0
	}
	if ((EUID != 0)); then
		fail "running the build stage needs root (its RUN commands use apt-get); use --no-run"
		return 0
	fi
	# shellcheck disable=SC1091 # the host's own file
	if [[ "$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")" != "${stage_images[b]##*-}" ]]; then
		printf 'note  this host is not %s: the build stage may behave differently in the image\n' "${stage_images[b]##*-}"
	fi
	workdir_copy="$(mktemp -d /tmp/natgw-dockerfile.XXXXXX)"
	((keep)) || trap 'rm -rf "$workdir_copy"' EXIT
	# The build context without .git and bin/: `make build` must make bin/natgw.
	tar -C "$repo" --exclude=./.git --exclude=./bin -cf - . | tar -C "$workdir_copy" -xf -
	local i workdir="/" cmd log
	declare -A vars=()
	for i in "${!kw[@]}"; do
		((stage_of[i] == b)) || continue
		case "${kw[i]}" in
		WORKDIR) workdir="$(expand "${args[i]}" vars)" ;;
		ARG | ENV)
			local a="${args[i]}" name value=""
			name="${a%%[= ]*}"
			[[ "$a" == *[=\ ]* ]] && value="${a#*[= ]}"
			value="${value#\"}" value="${value%\"}"
			[[ "${kw[i]}" == ARG && -z "$value" && -v "global_args[$name]" ]] && value="${global_args[$name]}"
			vars[$name]="$value"
			;;
		RUN)
			cmd="${args[i]}"
			if [[ "$cmd" =~ $UNSAFE_RUN ]]; then
				fail "line ${line[i]}: not run on this host (it deletes outside the build directory): $cmd"
				continue
			fi
			log="$(mktemp)"
			local env=() name
			for name in "${!vars[@]}"; do env+=("$name=${vars[$name]}"); done
			if (cd "$workdir_copy" && env "${env[@]}" DEBIAN_FRONTEND=noninteractive \
				PATH="/usr/local/go/bin:$PATH" sh -ec "$cmd") >"$log" 2>&1; then
				ok "line ${line[i]}: RUN $cmd (in $workdir, here $workdir_copy)"
			else
				fail "line ${line[i]}: RUN $cmd failed:"
				tail -n 30 "$log" | sed 's/^/      /'
			fi
			rm -f "$log"
			;;
		esac
	done
	build_workdir="$workdir"
	# What later stages copy from the build stage must be there.
	for i in "${!kw[@]}"; do
		[[ "${kw[i]}" == COPY && "${args[i]}" == *--from=build* ]] || continue
		local words=() w srcs=()
		read -r -a words <<<"${args[i]}"
		for w in "${words[@]}"; do [[ "$w" == --* ]] || srcs+=("$w"); done
		unset 'srcs[-1]'
		for w in "${srcs[@]}"; do
			local rel="${w#"$workdir"}"
			rel="${rel#/}"
			if [[ "$w" != "$workdir"* ]]; then
				fail "line ${line[i]}: COPY --from=build $w is outside the build WORKDIR $workdir: not checked"
			elif [[ -e "$workdir_copy/$rel" ]]; then
				ok "line ${line[i]}: the build stage made $w"
			else
				fail "line ${line[i]}: the build stage did not make $w"
			fi
		done
	done
	built_binary="$workdir_copy/bin/natgw"
}

# runtime_packages prints the packages the runtime stage's apt-get install
# names.
runtime_packages() {
	local r i
	r="$(stage_index last)"
	for i in "${!kw[@]}"; do
		if ((stage_of[i] != r)) || [[ "${kw[i]}" != RUN ]]; then continue; fi
		awk '{
			for (j = 1; j <= NF; j++) {
				if ($j == "install" && $(j - 1) ~ /apt(-get)?$/) { on = 1; continue }
				if ($j == "&&" || $j == ";" || $j == "||") on = 0
				else if (on && $j !~ /^-/) print $j
			}
		}' <<<"${args[i]}"
	done
}

check_runtime() {
	local pkgs=() p
	mapfile -t pkgs < <(runtime_packages | sort -u)
	if ((${#pkgs[@]} == 0)); then
		fail "the runtime stage installs no package"
		return 0
	fi
	# One apt-cache call for all (each costs half a second).
	local have missing=()
	have=" $(apt-cache policy "${pkgs[@]}" 2>/dev/null | awk '
		/^[^ ]/ { pkg = $1; sub(/:$/, "", pkg) }
		/^  Candidate:/ && $2 != "(none)" { print pkg }' | tr '\n' ' ') "
	for p in "${pkgs[@]}"; do
		[[ "$have" == *" $p "* ]] || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		ok "runtime stage: apt has a candidate for all ${#pkgs[@]} packages"
	else
		fail "runtime stage: apt has no candidate for: ${missing[*]}"
	fi
	for p in "${RUNTIME_PLUGINS[@]}"; do
		if [[ " ${pkgs[*]} " == *" $p "* ]]; then
			ok "runtime stage installs EAL plugin $p"
		else
			fail "runtime stage does not install $p (EAL loads it at run time; ldd can't see it)"
		fi
	done
	local bin="${built_binary:-${binary:-$repo/bin/natgw}}" libs
	libs="$(ldd "$bin" 2>/dev/null || true)"
	if [[ "$libs" != *librte_* ]]; then
		if [[ -z "$built_binary" && -z "$binary" ]]; then
			printf 'skip  libraries: %s is missing or built without DPDK (make build with libdpdk-dev, or drop --no-run)\n' "$bin"
		else
			fail "$bin is missing or not linked against DPDK (built without the dpdk tag?)"
		fi
		return 0
	fi
	# Every package the listed ones pull in.
	local closure
	closure=" $(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances "${pkgs[@]}" 2>/dev/null |
		awk '/^[^ <]/ { print $1 } /Depends:/ && $2 !~ /^</ { print $2 }' | sort -u | tr '\n' ' ') "
	local lib path pkg bad=()
	while read -r lib path; do
		[[ -n "$path" && -e "$path" ]] || continue
		pkg="$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)"
		pkg="${pkg%%:*}"
		if [[ -z "$pkg" ]]; then
			bad+=("$lib (no package owns $path)")
		elif [[ "$closure" != *" $pkg "* ]]; then
			bad+=("$lib (package $pkg)")
		fi
	done < <(awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' <<<"$libs")
	if ((${#bad[@]} == 0)); then
		ok "runtime stage provides every library of $(basename "$bin") (ldd)"
	else
		fail "runtime stage lacks libraries of $bin: ${bad[*]}"
	fi
}

main() {
	while (($# > 0)); do
		case "$1" in
		--no-run) do_run=0 ;;
		--keep) keep=1 ;;
		--dockerfile | --binary)
			(($# >= 2)) || die "$1 needs a file"
			if [[ "$1" == --dockerfile ]]; then dockerfile="$2"; else binary="$2"; fi
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
	[[ -r "$dockerfile" ]] || die "cannot read $dockerfile"
	workdir_copy=""
	built_binary=""
	build_workdir=""
	parse
	check_syntax
	if ((do_run)); then
		run_build
	else
		printf 'skip  the build stage is not run (--no-run)\n'
	fi
	check_runtime
	if [[ -n "$workdir_copy" ]]; then
		if ((keep)); then
			printf 'kept  %s (the build stage WORKDIR %s)\n' "$workdir_copy" "$build_workdir"
		else
			rm -rf "$workdir_copy"
		fi
	fi
	printf '%s: %d passed, %d failed\n' "$PROG" "$passed" "$failed"
	((failed == 0))
}

main "$@"
