#!/usr/bin/env bash
# Toolstack lifecycle (issue 6): the xenstore layout libxl writes, seen with
# the real xenstore-ls through `pvnet xenstore`; network-attach and -detach on
# a running guest; a daemon that dies is reported and the host refused.
. "${PVNET_SRC:-$(dirname "$0")/../..}/tests/lib.sh"
pv_require_root
pv_require_tun
. "$PVNET_SRC/toolstack/tests/lab.sh"
command -v xenstore-ls >/dev/null || pv_skip "needs xenstore-utils"

pv_check "lab comes up" lab_up
pv_check "guest boots" $PV -q create "$G" --host "$HA" --vif "mac=00:16:3e:0a:0b:01,ip=$GIP.2/24"
D=$(sed -n 's/^domid=//p' "$PVNET_ROOT/guests/$G/guest.conf")
ls_p=$($PV xenstore "$HA" xenstore-ls -fp 2>&1)
has() { grep -qE -- "$1" <<<"$ls_p"; }
pv_check "pvnet xenstore runs the real xenstore-ls against the host" has "^/local/domain/0/name = \"Domain-0\""
pv_check "domain dir: n0 rD" has "^/local/domain/$D = \"\" +\(n0,r$D\)"
pv_check "control/shutdown owned by the guest" has "^/local/domain/$D/control/shutdown = \"\" +\(n$D\)"
pv_check "frontend dir: nD rB" has "^/local/domain/$D/device/vif/0 = \"\" +\(n$D,r0\)"
pv_check "frontend mac, backend-id, handle" bash -c "grep -q '^/local/domain/$D/device/vif/0/mac = \"00:16:3e:0a:0b:01\"' <<<\"\$0\" && grep -q '^/local/domain/$D/device/vif/0/backend-id = \"0\"' <<<\"\$0\"" "$ls_p"
pv_check "backend dir: nB rD" has "^/local/domain/0/backend/vif/$D/0 = \"\" +\(n0,r$D\)"
pv_check "backend bridge, script, online, frontend-id" bash -c "for k in 'bridge = \"xenbr0\"' 'script = \"/etc/xen/scripts/vif-bridge\"' 'online = \"1\"' 'frontend-id = \"$D\"'; do grep -q \"^/local/domain/0/backend/vif/$D/0/\$k\" <<<\"\$0\" || exit 1; done" "$ls_p"
pv_check "netback said hotplug-status connected" has "^/local/domain/0/backend/vif/$D/0/hotplug-status = \"connected\""
pv_check "both ends Connected" bash -c "grep -q '^/local/domain/$D/device/vif/0/state = \"4\"' <<<\"\$0\" && grep -q '^/local/domain/0/backend/vif/$D/0/state = \"4\"' <<<\"\$0\"" "$ls_p"
pv_check "toolstack's private copy under /libxl" has "^/libxl/$D/device/vif/0/frontend = "
pv_check "the guest wrote netfront's keys" bash -c "grep -qE '^/local/domain/$D/device/vif/0/(queue-0/)?tx-ring-ref = ' <<<\"\$0\" && grep -q 'request-rx-copy = \"1\"' <<<\"\$0\"" "$ls_p"

pv_check "network-attach a second vif" $PV -q network-attach "$G" "mac=00:16:3e:0a:0b:02,ip=$GIP.3/24"
pv_check "eth1 exists in the guest and answers" bash -c "ip -n $GNS link show eth1 >/dev/null && ip netns exec $CNS ping -c 2 -i 0.2 -W 2 $GIP.3 >/dev/null"
pv_check "list shows two vifs" bash -c "$PV list | grep -q '1:00:16:3e:0a:0b:02'"
pv_check "network-detach it" $PV -q network-detach "$G" 1
pv_check "its directories are gone" bash -c "! $PV xenstore $HA xenstore-exists /local/domain/0/backend/vif/$D/1 && ! $PV xenstore $HA xenstore-exists /local/domain/$D/device/vif/1"
pv_check "vif 0 still answers" guest_ping

# Many processes in the guest's namespace (a listing longer than 4 KiB was
# cut: a pid cut short is somebody else's, and the rest survived).
ip netns exec "$GNS" bash -c 'for i in $(seq 800); do sleep 987.654 & done' >/dev/null 2>&1
pv_check "destroy the guest" $PV -q destroy "$G"
pv_check "every process of its namespace went with it" bash -c "! pgrep -f '[s]leep 987.654' >/dev/null"
pkill -f 'sleep 987.654' 2>/dev/null
pv_check "its domain's nodes are gone" bash -c "! $PV xenstore $HA xenstore-exists /local/domain/$D && ! $PV xenstore $HA xenstore-exists /libxl/$D"

nbpid=$(sed -n 's/^netback.pid=//p' "$PVNET_ROOT/hosts/$HB/status")
kill -9 "$nbpid"
pv_check "a killed netback is reported" pv_wait_for 5 bash -c "$PV host-list | grep -q 'degraded: netback killed by signal 9'"
pv_check "and logged in the host's events" grep -q "netback (pid $nbpid) killed by signal 9" "$PVNET_ROOT/hosts/$HB/events.log"
out=$($PV create "x$G" --host "$HB" 2>&1); rc=$?
pv_check "a guest on the degraded host is refused ($out)" test $rc -ne 0
pv_check "the other host is healthy" bash -c "$PV host-list | grep '^$HA ' | grep -q ' running '"
pv_done
