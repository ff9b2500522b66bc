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

# --no-affinity reaches both daemons and is kept in the host's and the
# guest's files (pinning itself is checked in test_e2e.sh).
H3=tC$sfx
G3=y$G
pv_check "a host created --no-affinity" $PV -q host-create "$H3" --switch "$SW" --max-queues 2 --no-affinity
pv_check "a guest created --no-affinity on it (2 queues)" \
	$PV -q create "$G3" --host "$H3" --vif "mac=00:16:3e:0a:0b:03,ip=$GIP.4/24" --queues 2 --no-affinity
pv_check "it answers" ip netns exec "$CNS" ping -c 2 -i 0.2 -W 2 "$GIP.4"
pv_check "host.conf and guest.conf say affinity=off" \
	bash -c "grep -qx 'affinity=off' '$PVNET_ROOT/hosts/$H3/host.conf' && grep -qx 'affinity=off' '$PVNET_ROOT/guests/$G3/guest.conf'"
pv_check "and the pinned lab's say affinity=on" \
	bash -c "grep -qx 'affinity=on' '$PVNET_ROOT/hosts/$HA/host.conf' && grep -qx 'affinity=on' '$PVNET_ROOT/guests/$G/guest.conf'"
D3=$(sed -n 's/^domid=//p' "$PVNET_ROOT/guests/$G3/guest.conf")
nb3=$(pgrep -f -- "pvnet-netback .*$PVNET_ROOT/hosts/$H3/" | head -1)
gp3=$(pgrep -f -- "pvnet-guest .*$PVNET_ROOT/guests/$G3/" | head -1)
# Each queue thread may run on every CPU its process may use.
unpinned() { # pid thread
	local all t
	all=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$1/status")
	t=$(pv_thread_cpus "$1" "$2")
	echo "# $2: ${t:-no such thread} (process: $all)"
	[ -n "$t" ] && [ "$t" = "$all" ]
}
if [ "$(nproc)" -lt 2 ]; then
	echo "# one CPU: a pinned thread could not be told from an unpinned one; not checked"
else
	for k in 0 1; do
		pv_check "netback's vif$D3.0-q$k is not pinned" unpinned "${nb3:-0}" "vif$D3.0-q$k"
		pv_check "netfront's eth0-q$k is not pinned" unpinned "${gp3:-0}" "eth0-q$k"
	done
fi
pv_check "destroy that guest and host" bash -c "$PV -q destroy $G3 && $PV -q host-destroy $H3"

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
