#!/usr/bin/env bash
# End to end through the toolstack (issue 6): ping and iperf3 through a guest;
# `ip link set eth0 down/up` and `ifconfig eth0 down/up` give the field notes'
# traces; a checkpoint changes nothing; migration to a host whose backend
# offers fewer queues and back; stats of guest and host.
. "${PVNET_SRC:-$(dirname "$0")/../..}/tests/lib.sh"
pv_require_root
pv_require_tun
. "$PVNET_SRC/toolstack/tests/lab.sh"

trace_lines() { $PV trace "$G" | wc -l; }
# New trace lines since line $1, without timestamps.
trace_since() { $PV trace "$G" | tail -n +$(($1 + 1)) | sed 's/^\[[ 0-9.]*\] //'; }
count() { grep -c -- "$1" <<<"$2"; }

pv_check "lab comes up (host B offers 2 queues)" lab_up 2
pv_check "guest with 8 queues boots on A" $PV -q create "$G" --host "$HA" --queues 8 --vif "ip=$GIP.2/24"
pv_check "client pings the guest" guest_ping 5

boot=$($PV trace "$G" | sed 's/^\[[ 0-9.]*\] //')
pv_check "boot trace: probe, InitWait->connect, Connected, notify_peers" \
	bash -c 'grep -q "netfront_probe" <<<"$0" && grep -q "backend_state=XenbusStateInitWait" <<<"$0" &&
		 grep -q "xennet_connect" <<<"$0" && grep -q "netdev_notify_peers" <<<"$0"' "$boot"
pv_check "boot trace: open by netlink starts tx-0..tx-7" \
	bash -c 'grep -q "xennet_open() eth0 by netlink" <<<"$0" && [ $(grep -c "netif_tx_start_queue() eth0, tx-" <<<"$0") -eq 8 ]' "$boot"

ip netns exec "$GNS" iperf3 -s -1 -D >/dev/null 2>&1; sleep 0.3
bps=$(ip netns exec "$CNS" iperf3 -c "$GIP.2" -t 2 -J 2>/dev/null | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))' 2>/dev/null)
pv_check "iperf3 TCP through the guest (${bps:-0} bit/s)" test "${bps:-0}" -gt 0

n=$(trace_lines)
ip netns exec "$GNS" ip link set eth0 down; sleep 0.3; ip netns exec "$GNS" ip link set eth0 up; sleep 0.3
t=$(trace_since "$n")
pv_check "ip link down: xennet_close stops tx-0..tx-7" \
	bash -c 'grep -q "xennet_close() eth0" <<<"$0" && [ $(grep -c "netif_tx_stop_queue() eth0, tx-" <<<"$0") -eq 8 ]' "$t"
pv_check "ip link up: xennet_open by netlink starts tx-0..tx-7" \
	bash -c 'grep -q "xennet_open() eth0 by netlink" <<<"$0" && [ $(grep -c "netif_tx_start_queue() eth0, tx-" <<<"$0") -eq 8 ]' "$t"

n=$(trace_lines)
ip netns exec "$GNS" ifconfig eth0 down; sleep 0.3; ip netns exec "$GNS" ifconfig eth0 up; sleep 0.3
t=$(trace_since "$n")
pv_check "ifconfig down: close by ioctl, 8 stops" \
	bash -c 'grep -q "xennet_close() eth0 by ioctl" <<<"$0" && [ $(grep -c "netif_tx_stop_queue() eth0, tx-" <<<"$0") -eq 8 ]' "$t"
pv_check "ifconfig up: open by ioctl, 8 starts" \
	bash -c 'grep -q "xennet_open() eth0 by ioctl" <<<"$0" && [ $(grep -c "netif_tx_start_queue() eth0, tx-" <<<"$0") -eq 8 ]' "$t"
pv_check "guest answers after down/up" guest_ping

domid=$(grep ^domid= "$PVNET_ROOT/guests/$G/guest.conf")
n=$(trace_lines)
pv_check "checkpoint (suspend, resume cancelled)" $PV -q migrate "$G" --cancel --no-probe
t=$(trace_since "$n")
pv_check "checkpoint: same domain" test "$domid" = "$(grep ^domid= "$PVNET_ROOT/guests/$G/guest.conf")"
pv_check "checkpoint: no reconnect, no queue stop/wake" \
	bash -c '! grep -qE "xennet_connect|disconnect_backend|netif_tx_(stop|wake)_queue" <<<"$0"' "$t"
pv_check "guest answers after the checkpoint" guest_ping

pv_check "migrate to B (2 queues offered)" $PV -q migrate "$G" "$HB"
pv_check "guest answers on B" guest_ping
qB=$($PV stats "$HB" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vifs"][0]["queues"])' 2>/dev/null)
pv_check "B's vif has 2 queues (${qB:-?})" test "${qB:-0}" = 2
# After the move (new domid) both ends of each queue share a CPU again.
vifB=vif$(sed -n 's/^domid=//p' "$PVNET_ROOT/guests/$G/guest.conf").0
nbB=$(pgrep -f -- "pvnet-netback .*$PVNET_ROOT/hosts/$HB/" | head -1)
gp=$(pgrep -f -- "pvnet-guest .*$PVNET_ROOT/" | head -1)
pv_wait_for 2 pv_queues_pinned "$nbB" "$vifB" "$gp" eth0 2  # netfront pins as its queues come up
pv_check "on B, both ends of each queue on one CPU: $(pv_queues_share_cpus "$nbB" "$vifB" "$gp" eth0 2)" \
	pv_queues_share_cpus "$nbB" "$vifB" "$gp" eth0 2
pv_check "migrate back to A (8 queues)" $PV -q migrate "$G" "$HA"
qA=$($PV stats "$HA" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vifs"][0]["queues"])' 2>/dev/null)
pv_check "A's vif has 8 queues again (${qA:-?})" test "${qA:-0}" = 8
# Back on A under a new domid: netfront pinned its threads again by it.
domA=$(sed -n 's/^domid=//p' "$PVNET_ROOT/guests/$G/guest.conf")
nbA=$(pgrep -f -- "pvnet-netback .*$PVNET_ROOT/hosts/$HA/" | head -1)
pv_wait_for 2 pv_queues_pinned "$nbA" "vif$domA.0" "$gp" eth0 8
pv_check "back on A (domid $domA), both ends of each queue on one CPU: $(pv_queues_share_cpus "$nbA" "vif$domA.0" "$gp" eth0 8)" \
	pv_queues_share_cpus "$nbA" "vif$domA.0" "$gp" eth0 8
pv_check "guest answers on A" guest_ping
pv_check "guest stats answer JSON" bash -c "$PV stats $G | python3 -c 'import json,sys; json.load(sys.stdin)'"
pv_check "host-list shows both hosts running" bash -c "[ \$($PV host-list | grep -c ' running ') -eq 2 ]"
pv_check "no daemon died, no sanitizer report" lab_healthy
pv_done
