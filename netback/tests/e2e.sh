#!/usr/bin/env bash
# netback end to end with pvnet's own netfront: the toolstack builds a host
# (pvnet-xenstored, pvnet-hypervisor, pvnet-netback in its namespace, bridge
# xenbr0) and a guest (pvnet-guest, eth0 in its namespace) with two queues;
# real traffic (ping, TCP both ways) goes guest <-> host through the vif, and
# netback's view of it is checked: Connected, queues, GSO frames both ways,
# counters and timestamps, no misbehaviour reported; destroying the guest
# removes the vif.
set -u
. "$(dirname "$0")/../../tests/lib.sh"
pv_require_root
pv_require_tun
command -v iperf3 >/dev/null || pv_skip "needs iperf3"
PVNET=$PVNET_BUILD/pvnet
for p in pvnet pvnet-guest pvnet-netback pvnet-xenstored pvnet-hypervisor; do
	[ -x "$PVNET_BUILD/$p" ] || pv_skip "$p not built"
done
PY=/usr/bin/python3
ROOT=$PV_TMP/root
HOST=$(pv_name nbe)
GUEST=$(pv_name nbf)
P="$PVNET --root $ROOT --quiet"
pv_on_exit "$P host-destroy $HOST --force"
pv_on_exit "$P destroy $GUEST"
HNS=pvnet-h-$HOST
GNS=pvnet-g-$GUEST

# A field of netback's stats for the guest's vif, via the toolstack.
field() { # python expression on v (the vif object)
	$P stats "$HOST" | $PY -c "import json, sys
v = [x for x in json.load(sys.stdin)['vifs'] if x['domid'] == $DOMID][0]
print($1)"
}

pv_check "host created" $P host-create "$HOST" --max-queues 4
pv_check "guest created with 2 queues" $P create "$GUEST" --host "$HOST" --vif ip=10.78.0.2/24 --queues 2
DOMID=$($P --json list 2>/dev/null | $PY -c "import json, sys
d = json.load(sys.stdin)
g = d if isinstance(d, list) else d.get('guests', [])
print([x for x in g if x.get('name') == '$GUEST'][0]['domid'])" 2>/dev/null)
[ -n "$DOMID" ] || DOMID=$(ls "$ROOT/guests/$GUEST" >/dev/null 2>&1 && sed -n 's/^domid=//p' "$ROOT/guests/$GUEST/guest.conf")
VIF=vif$DOMID.0
ip -n "$HNS" addr add 10.78.0.1/24 dev xenbr0
ip -n "$HNS" link set xenbr0 up

pv_check "netback: $VIF Connected" test "$(field "v['state_name']")" = Connected
pv_check "netback: 2 queues" test "$(field "v['queues']")" = 2
pv_check "netback: $VIF is on xenbr0" sh -c "ip -n $HNS -o link show $VIF | grep -q 'master xenbr0'"
quiet() { "$@" >/dev/null 2>&1; }
pv_check "ping guest -> host" quiet ip netns exec "$GNS" ping -c 3 -i 0.2 -W 2 10.78.0.1
pv_check "ping host -> guest" quiet ip netns exec "$HNS" ping -c 3 -i 0.2 -W 2 10.78.0.2

ip netns exec "$HNS" iperf3 -s -B 10.78.0.1 -D -I "$PV_TMP/iperf.pid" >/dev/null 2>&1
pv_on_exit "kill \$(cat $PV_TMP/iperf.pid)"
sleep 0.3
pv_check "TCP guest -> host" quiet ip netns exec "$GNS" iperf3 -c 10.78.0.1 -t 2 -P 2
pv_check "TCP host -> guest" quiet ip netns exec "$GNS" iperf3 -c 10.78.0.1 -t 2 -P 2 -R

# GSO both ways: frames larger than an MTU went through the rings.
pv_check "GSO frames from the guest" test "$(field "int(v['from_guest']['bytes'] / max(1, v['from_guest']['packets']) > 1514)")" = 1
pv_check "GSO frames to the guest" test "$(field "int(v['to_guest']['bytes'] / max(1, v['to_guest']['packets']) > 1514)")" = 1
pv_check "both queues carried traffic" test "$(field "sum(1 for q in v['per_queue'] if q['from_guest']['packets'] + q['to_guest']['packets'] > 0)")" = 2
pv_check "timestamps: first <= last, both ways" test "$(field "int(0 < v['from_guest']['first_ns'] <= v['from_guest']['last_ns'] and 0 < v['to_guest']['first_ns'] <= v['to_guest']['last_ns'])")" = 1
pv_check "no errors, not disabled" test "$(field "int(v['from_guest']['errors'] == 0 and v['to_guest']['errors'] == 0 and not v['disabled'])")" = 1
NBLOG=$ROOT/hosts/$HOST/netback.log
pv_check "netback logged the connection" grep -q "connected $VIF: 2 queue(s)" "$NBLOG"
pv_check "netback logged no fatal error" sh -c "! grep -q 'fatal error' $NBLOG"
if [ -n "${PVNET_EVTCHN_LEVEL:-}" ]; then
	pv_check "event channels waited for level-triggered (PVNET_EVTCHN_LEVEL)" \
		grep -q "event channels on the handle's fd (level-triggered)" "$NBLOG"
	pv_check "netfront too" sh -c "grep -rq 'event channel on the handle.s fd (level-triggered)' $ROOT/guests/$GUEST"
else
	pv_check "event channels attached (edge-triggered)" \
		sh -c "! grep -q 'level-triggered' $NBLOG"
fi

# Both ends of each queue on one CPU (docs/netback.md), different CPUs for
# the two queues when there are two.
NBPID=$(pgrep -f -- "pvnet-netback .*$ROOT/" | head -1)
GPID=$(pgrep -f -- "pvnet-guest .*$ROOT/" | head -1)
pv_wait_for 2 pv_queues_pinned "$NBPID" "$VIF" "$GPID" eth0 2
pv_check "both ends of each queue pinned to one CPU: $(pv_queues_share_cpus "$NBPID" "$VIF" "$GPID" eth0 2)" \
	pv_queues_share_cpus "$NBPID" "$VIF" "$GPID" eth0 2
if [ "$(nproc)" -ge 2 ]; then
	pv_check "queues 0 and 1 on different CPUs" \
		test "$(pv_thread_cpus "$NBPID" "$VIF-q0")" != "$(pv_thread_cpus "$NBPID" "$VIF-q1")"
fi

pv_check "guest destroyed" $P destroy "$GUEST"
pv_check "$VIF removed" pv_wait_for 5 sh -c "! ip -n $HNS link show $VIF >/dev/null 2>&1"
pv_done
