# tests/lib.sh — shared helpers for pvnet's shell tests. Source it.
#
# - pv_require_root / pv_require_tun: exit 77 (meson "skip") with a reason
#   when the test truly cannot run here.
# - pv_name PREFIX: a unique, <=15-char name for a netns/bridge/veth/TAP.
# - pv_netns_add NAME: create a namespace and remember it for cleanup.
# - pv_on_exit CMD...: run CMD at exit (reverse order), even when a test fails.
# - pv_check DESC CMD...: run CMD, count a pass/fail, print "ok"/"not ok".
# - pv_done: print "N passed, N failed" and exit non-zero on failure.
# Binaries come from $PVNET_BUILD (set by meson; default ./build).
# PV_KEEP=DIR: before cleaning up, copy the test's scratch directory (state
# root, daemons' logs) to DIR, to look at after a failure.
set -u

PVNET_BUILD=${PVNET_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}
PVNET_SRC=${PVNET_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PV_TMP=$(mktemp -d /tmp/pvnet-test.XXXXXX)
_pv_cleanups=()
_pv_pass=0
_pv_fail=0
_pv_seq=0

pv_on_exit() { _pv_cleanups+=("$*"); }

_pv_cleanup() {
	local i
	if [ -n "${PV_KEEP:-}" ]; then
		mkdir -p "$PV_KEEP" && cp -a "$PV_TMP/." "$PV_KEEP/" 2>/dev/null
	fi
	for ((i = ${#_pv_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_pv_cleanups[$i]}" >/dev/null 2>&1 || true
	done
	rm -rf "$PV_TMP"
}
trap _pv_cleanup EXIT
trap 'exit 130' INT TERM

pv_skip() { echo "SKIP: $*"; exit 77; }
pv_require_root() { [ "$(id -u)" -eq 0 ] || pv_skip "needs root (network namespaces, TAP devices)"; }
pv_require_tun() { [ -c /dev/net/tun ] || pv_skip "needs /dev/net/tun"; }

# Unique short name: prefix + pid (base 36) + sequence, at most 15 chars.
pv_name() {
	_pv_seq=$((_pv_seq + 1))
	local n="$1$(printf '%x' $$)${_pv_seq}"
	echo "${n:0:15}"
}

pv_netns_add() {
	ip netns add "$1" || return 1
	pv_on_exit "ip netns pids $1 | xargs -r kill -9; ip netns del $1"
	ip -n "$1" link set lo up
}

pv_check() {
	local desc=$1; shift
	if "$@"; then
		_pv_pass=$((_pv_pass + 1)); echo "ok - $desc"
	else
		_pv_fail=$((_pv_fail + 1)); echo "not ok - $desc"
	fi
}

# Wait until CMD succeeds, polling every 20 ms, for at most SECONDS.
pv_wait_for() {
	local secs=$1; shift
	local deadline=$((SECONDS + secs))
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.02
	done
}

# The CPUs a thread (by name) of process PID may run on (Cpus_allowed_list).
pv_thread_cpus() { # pid thread-name
	local t
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] && sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status"
	done
}

# The CPU pv_pin_thread_index(INDEX) picks in process PID: the (INDEX mod
# n)-th of the n CPUs the process may use.
pv_index_cpu() { # pid index
	local list part lo hi cpus=() parts=()
	list=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
	IFS=, read -ra parts <<<"$list"
	for part in "${parts[@]}"; do
		lo=${part%-*}; hi=${part#*-}
		for ((; lo <= hi; lo++)); do cpus+=("$lo"); done
	done
	[ ${#cpus[@]} -gt 0 ] && echo "${cpus[$(($2 % ${#cpus[@]}))]}"
}

# Does each of the first N queues have netback's thread (VIF-qK in NBPID) and
# netfront's (IF-qK in GPID) pinned to the same single CPU, the one the pin
# rule gives (pv_queue_cpu_index: domid + devid + K, from VIF's name
# vifDOMID.DEVID)? Prints the CPUs.
pv_queues_share_cpus() { # nbpid vif gpid ifname n
	local k a b want ok=0 dd=${2#vif}
	for k in $(seq 0 $(($5 - 1))); do
		a=$(pv_thread_cpus "$1" "$2-q$k")
		b=$(pv_thread_cpus "$3" "$4-q$k")
		want=$(pv_index_cpu "$1" $((${dd%.*} + ${dd#*.} + k)))
		printf 'q%s: %s/%s (rule: %s) ' "$k" "${a:-none}" "${b:-none}" "${want:-?}"
		case $a in ''|*[-,]*) ok=1 ;; esac
		[ "$a" = "$b" ] && [ "$a" = "$want" ] || ok=1
	done
	echo
	return $ok
}
pv_queues_pinned() { pv_queues_share_cpus "$@" >/dev/null; }

pv_done() {
	echo "$_pv_pass passed, $_pv_fail failed"
	[ "$_pv_fail" -eq 0 ]
}
