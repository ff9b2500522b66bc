#!/usr/bin/env bash
# netback benchmark: guest <-> host throughput through pvnet-netback, against
# a plain TAP-to-TAP relay (nb-relay: the same syscalls, no ring) and a veth
# pair, measured in the same run on the same machine.
#
#   guest netns: eth0 10.77.0.2 ──(veth | nb-relay | nb-front ⇄ rings ⇄ pvnet-netback)──
#   host netns:  bridge xenbr0 10.77.0.1
#
# For each variant and queue count: iperf3 TCP guest->host and host->guest
# (-P queues streams), and 64-byte UDP datagrams per second received in each
# direction. nb-front stands in for pvnet's netfront (see nbfront.c).
# Relay and netback runs alternate PVNET_BENCH_REPEAT times (default 2) and the
# best of each figure is kept: the machine is shared, interference only lowers.
# Environment: PVNET_BENCH_SECONDS (default 4), PVNET_BENCH_QUEUES ("1 2 4"),
# PVNET_BENCH_REPEAT (2).
# Prints the figures and the netback/relay ratios; never fails on speed.
set -u
. "$(dirname "$0")/../../tests/lib.sh"
pv_require_root
pv_require_tun
command -v iperf3 >/dev/null || pv_skip "needs iperf3"
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
SECS=${PVNET_BENCH_SECONDS:-4}
QUEUES=${PVNET_BENCH_QUEUES:-"1 2 4"}
REPEAT=${PVNET_BENCH_REPEAT:-2}
for p in nb-relay nb-front pvnet-netback pvnet-xenstored pvnet-hypervisor; do
	[ -x "$PVNET_BUILD/$p" ] || [ -x "$PVNET_BUILD/netback/bench/$p" ] || pv_skip "$p not built"
done
RELAY=$PVNET_BUILD/netback/bench/nb-relay
FRONT=$PVNET_BUILD/netback/bench/nb-front

# A JSON field of iperf3's output: tcp -> Gbit/s received, udp -> kpps received.
parse() { # kind file
	$PY - "$1" "$2" <<'EOF'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
try:
    d = json.load(open(path))
    e = d["end"]
    if kind == "tcp":
        print("%.2f" % (e["sum_received"]["bits_per_second"] / 1e9))
    else:
        s = e["sum"]
        print("%.0f" % ((s["packets"] - s["lost_packets"]) / s["seconds"] / 1e3))
except Exception:
    print("-")
EOF
}

# Run the four measurements between the two namespaces; prints 4 numbers.
measure() { # hostns guestns streams
	local h=$1 g=$2 n=$3 out=$PV_TMP/iperf.json r=()
	ip netns exec "$h" iperf3 -s -B 10.77.0.1 -D -I "$PV_TMP/iperf.pid" >/dev/null 2>&1
	sleep 0.3
	for args in "-P $n" "-P $n -R" "-u -b 0 -l 64" "-u -b 0 -l 64 -R"; do
		ip netns exec "$g" timeout $((SECS + 20)) iperf3 -c 10.77.0.1 -t "$SECS" $args --json >"$out" 2>/dev/null
		case $args in *-u*) r+=("$(parse udp "$out")") ;; *) r+=("$(parse tcp "$out")") ;; esac
	done
	kill "$(cat "$PV_TMP/iperf.pid" 2>/dev/null)" 2>/dev/null
	sleep 0.2
	echo "${r[@]}"
}

# Fresh host and guest namespaces (the previous pair is deleted).
NS_SEQ=0
H=""
G=""
drop_ns() {
	local ns
	for ns in "$H" "$G"; do
		[ -n "$ns" ] || continue
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
}
fresh() {
	drop_ns
	NS_SEQ=$((NS_SEQ + 1))
	H="nbbh$(printf '%x' $$)$NS_SEQ"
	G="nbbg$(printf '%x' $$)$NS_SEQ"
	pv_netns_add "$H"
	pv_netns_add "$G"
}

guest_up() { # ifname-in-host-ns
	ip -n "$H" link set "$1" netns "$G"
	ip -n "$G" link set "$1" name eth0
	ip -n "$G" addr add 10.77.0.2/24 dev eth0
	ip -n "$G" link set eth0 up
	ip -n "$H" addr add 10.77.0.1/24 dev xenbr0 2>/dev/null
	ip -n "$H" link set xenbr0 up
	# Let IPv6 DAD and ARP settle.
	ip netns exec "$G" ping -c 1 -W 2 10.77.0.1 >/dev/null 2>&1
}

stop_bg() { # pid
	kill "$1" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
}

wait_ready() { # file
	for _ in $(seq 200); do grep -q ready "$1" 2>/dev/null && return 0; sleep 0.05; done
	return 1
}

declare -A R
echo "netback benchmark: ${SECS}s per run, best of $REPEAT, $(nproc) CPUs (shared with whatever else runs)"

fresh
ip -n "$H" link add xenbr0 type bridge
ip -n "$H" link add vh type veth peer name vg
ip -n "$H" link set vh master xenbr0 up
guest_up vg
R[veth]=$(measure "$H" "$G" 1)

# Element-wise maximum of two "a b c d" rows ("-" loses).
best() {
	$PY - "$1" "$2" <<'EOF2'
import sys
a, b = sys.argv[1].split(), sys.argv[2].split()
def f(x):
    try:
        return float(x)
    except ValueError:
        return -1.0
print(" ".join(x if f(x) >= f(y) else y for x, y in zip(a, b)) if a else sys.argv[2])
EOF2
}

# run_relay / run_netback leave their figures in OUT (no subshell: fresh()
# must update the namespace names).
run_relay() { # queues
	local rp
	OUT="- - - -"
	fresh
	ip -n "$H" link add xenbr0 type bridge
	ip netns exec "$H" "$RELAY" --queues "$1" --a eth0x --b vifr --bridge xenbr0 >"$PV_TMP/relay.out" 2>&1 &
	rp=$!
	if wait_ready "$PV_TMP/relay.out"; then
		guest_up eth0x
		OUT=$(measure "$H" "$G" "$1")
	fi
	stop_bg $rp
}

run_netback() { # queues
	local fp
	OUT="- - - -"
	fresh
	ip netns exec "$H" env PVNET_BUILD="$PVNET_BUILD" "$FRONT" --queues "$1" --tap eth0x \
		--netback-args "--max-queues 4" >"$PV_TMP/front.out" 2>&1 &
	fp=$!
	if wait_ready "$PV_TMP/front.out"; then
		guest_up eth0x
		OUT=$(measure "$H" "$G" "$1")
	else
		cat "$PV_TMP/front.out" >&2
	fi
	stop_bg $fp
}

for q in $QUEUES; do
	R[relay$q]="- - - -"
	R[netback$q]="- - - -"
	for _ in $(seq "$REPEAT"); do
		run_relay "$q"
		R[relay$q]=$(best "${R[relay$q]}" "$OUT")
		run_netback "$q"
		R[netback$q]=$(best "${R[netback$q]}" "$OUT")
	done
done
drop_ns

printf '\n%-9s %6s  %15s %15s  %16s %16s\n' variant queues "TCP g->h Gb/s" "TCP h->g Gb/s" "UDP64 g->h kpps" "UDP64 h->g kpps"
row() { printf '%-9s %6s  %15s %15s  %16s %16s\n' "$1" "$2" $3; }
row veth - "${R[veth]}"
for q in $QUEUES; do
	row relay "$q" "${R[relay$q]}"
	row netback "$q" "${R[netback$q]}"
done
echo
echo "netback / relay (targets: TCP >= 80%, UDP64 >= 60%):"
for q in $QUEUES; do
	$PY - "$q" "${R[netback$q]}" "${R[relay$q]}" <<'EOF'
import sys
q = sys.argv[1]
nb, rl = sys.argv[2].split(), sys.argv[3].split()
names = ["TCP g->h", "TCP h->g", "UDP64 g->h", "UDP64 h->g"]
out = []
for n, a, b in zip(names, nb, rl):
    try:
        out.append("%s %.0f%%" % (n, 100 * float(a) / float(b)))
    except (ValueError, ZeroDivisionError):
        out.append("%s -" % n)
print("  %s queue(s): %s" % (q, ", ".join(out)))
EOF
done
exit 0
