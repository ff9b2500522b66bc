#!/usr/bin/env bash
# Things that go wrong around a guest, and what the toolstack must still do:
# - the guest runtime's control socket cannot be held by a client that never
#   sends, sends a byte at a time, or never reads its (large) answer; pvnet's
#   queries to a runtime that is stopped (SIGSTOP) return instead of hanging;
# - `pvnet destroy` with a damaged guest.conf (domid=0) leaves domain 0 alone;
# - `pvnet migrate --cancel` (a checkpoint) whose vif does not reconnect fails,
#   and one on a degraded host is refused;
# - a killed supervisor takes its daemons along; a stale supervisor.pid whose
#   pid went to another process is not trusted; host-destroy --force destroys
#   every guest even when there are more than its message can list.
# Every command that could hang runs under `timeout`, so a regression fails.
. "${PVNET_SRC:-$(dirname "$0")/../..}/tests/lib.sh"
pv_require_root
pv_require_tun
. "$PVNET_SRC/toolstack/tests/lab.sh"
command -v xenstore-ls >/dev/null || pv_skip "needs xenstore-utils"
command -v python3 >/dev/null || pv_skip "needs python3"

G2=td$sfx      # the guest whose guest.conf gets damaged
pv_on_exit "ip netns pids pvnet-g-$G2 | xargs -r kill -9; ip netns del pvnet-g-$G2"

# timed CMD...: run CMD; its stdout in $out, stderr in $PV_TMP/err, exit
# status in $rc, wall time in $ms (milliseconds).
timed() {
	local t0
	t0=$(date +%s%N)
	out=$("$@" 2>"$PV_TMP/err"); rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}


# stall MODE: a client of the guest's control socket, in the background
# ($stall): "silent" connects and sends nothing; "trickle" sends a byte every
# 0.5 s and never a newline; "noread" asks for the JSON trace and never reads.
# Each then just holds its connection open (30 s at most).
stall() {
	python3 - "$SOCK" "$1" >/dev/null 2>&1 <<-'EOF' &
	import socket, sys, time
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.connect(sys.argv[1])
	if sys.argv[2] == "noread":
	    s.sendall(b"trace-json\n")
	elif sys.argv[2] == "trickle":
	    for _ in range(60):
	        s.send(b"s")
	        time.sleep(0.5)
	time.sleep(30)
	EOF
	stall=$!
	pv_on_exit "kill $stall"
}
# After `timed`: pvnet stats / trace / list gave a real answer, within LIMIT ms.
stats_answered() { [ "$rc" -eq 0 ] && grep -q '"devices"' <<<"$out" && [ "$ms" -lt "${1:-60000}" ]; }
trace_answered() { [ "$rc" -eq 0 ] && grep -q xen_netfront <<<"$out" && [ "$ms" -lt "${1:-60000}" ]; }
list_answered() { [ "$rc" -eq 0 ] && grep -q "^$G " <<<"$out" && [ "$ms" -lt "${1:-60000}" ]; }

pv_check "lab comes up (switch, client, host)" bash -c "$PV -q switch-create $SW && $PV -q client-create $CL --switch $SW --ip $GIP.1/24 && $PV -q host-create $HA --switch $SW --max-queues 8"
pv_check "guest boots with 8 queues" $PV -q create "$G" --host "$HA" --queues 8 --vif "ip=$GIP.2/24"
D=$(sed -n 's/^domid=//p' "$PVNET_ROOT/guests/$G/guest.conf")
SOCK=$PVNET_ROOT/guests/$G/control.sock

# ---- the control socket ---------------------------------------------------------------
# An answer larger than the socket's send buffer, so that a client that does
# not read it blocks the server's write: eth0 down and up 400 times, 18
# trace events each with 8 queues.
wmem=$(cat /proc/sys/net/core/wmem_default)
for i in $(seq 400); do echo "link set eth0 down"; echo "link set eth0 up"; done | ip -n "$GNS" -batch -
big_trace() { [ "$(timeout 10 $PV trace "$G" --json | wc -c)" -gt $((2 * wmem)) ]; }
pv_check "the JSON trace outgrows twice the socket send buffer ($wmem bytes)" pv_wait_for 10 big_trace
pv_check "the guest answers after the link flapping" pv_wait_for 5 guest_ping 1

stall noread
sleep 1.5
timed timeout 5 $PV list
pv_check "pvnet list is not held by it (${ms} ms)" list_answered 3000
timed timeout 15 $PV stats "$G"
pv_check "a client that never reads its answer holds the runtime a few seconds at most (stats answered after ${ms} ms, status $rc)" stats_answered
pv_check "it did hold it for a while (>= 500 ms: the answer did not fit the send buffer)" test "$ms" -ge 500
kill $stall 2>/dev/null

stall silent
sleep 0.3
timed timeout 15 $PV stats "$G"
pv_check "a client that connects and sends nothing does not hold it (stats answered after ${ms} ms)" stats_answered 3000
kill $stall 2>/dev/null

stall trickle
sleep 0.3
timed timeout 15 $PV trace "$G"
pv_check "a client that sends a byte every 0.5 s without a newline does not hold it (trace answered after ${ms} ms)" trace_answered 3000
kill $stall 2>/dev/null

gpid=$(sed -n 's/^guest.pid=//p' "$PVNET_ROOT/guests/$G/status")
if [ -n "$gpid" ] && kill -STOP "$gpid"; then
	pv_on_exit "kill -CONT $gpid"
	timed timeout 15 $PV stats "$G"
	pv_check "pvnet stats against a stopped guest runtime returns (after ${ms} ms, status $rc) instead of hanging" test "$rc" -ne 124 -a "$ms" -lt 10000
	pv_check "and reports an error, not an empty answer taken for success" test "$rc" -ne 0 -a "$rc" -ne 124
	kill -CONT "$gpid"
else
	pv_check "the guest runtime's pid ($gpid) can be stopped" false
fi
timed timeout 15 $PV stats "$G"
pv_check "the runtime answers again once continued" stats_answered

# ---- destroy never removes domain 0 -------------------------------------------------------
pv_check "a second guest boots" $PV -q create "$G2" --host "$HA" --queues 1 --vif "ip=$GIP.3/24"
sed -i 's/^domid=.*/domid=0/' "$PVNET_ROOT/guests/$G2/guest.conf"
timed timeout 60 $PV -q destroy "$G2"
echo "# pvnet destroy with domid=0 in guest.conf: status $rc, $(head -c 300 "$PV_TMP/err")"
pv_check "destroy with a guest.conf saying domid=0 finishes" test "$rc" -ne 124
xs() { timeout 10 $PV xenstore "$HA" "$@"; }
pv_check "/local/domain/0 survives it" bash -c "[ \"\$($PV xenstore $HA xenstore-read /local/domain/0/name)\" = Domain-0 ]"
pv_check "so do the other guest's backend nodes, Connected" bash -c "[ \"\$($PV xenstore $HA xenstore-read /local/domain/0/backend/vif/$D/0/state)\" = 4 ]"
pv_check "and its domain's nodes" xs xenstore-exists "/local/domain/$D/device/vif/0"
pv_check "the other guest still answers" guest_ping
pv_check "the host is still healthy" bash -c "$PV host-list | grep '^$HA ' | grep -q ' running '"

# ---- a checkpoint whose vif does not reconnect fails ------------------------------------
timed timeout 30 $PV -q migrate "$G" --cancel --no-probe
pv_check "a checkpoint of a healthy guest succeeds (${ms} ms)" test "$rc" -eq 0
nbpid=$(sed -n 's/^netback.pid=//p' "$PVNET_ROOT/hosts/$HA/status")
# A netback that is alive but does not serve (stopped): the host still says
# running. Its vif closes (a cancelled suspend reconnects nothing, so a mute
# backend alone leaves both ends Connected in xenstore): the frontend follows.
kill -STOP "$nbpid"
pv_on_exit "kill -CONT $nbpid"
xs xenstore-write "/local/domain/0/backend/vif/$D/0/state" 6
pv_check "the frontend closes" pv_wait_for 5 bash -c "[ \"\$($PV xenstore $HA xenstore-read /local/domain/$D/device/vif/0/state)\" = 6 ]"
timed timeout 30 $PV migrate "$G" --cancel --no-probe
pv_check "a checkpoint whose vif does not reconnect fails (status $rc after ${ms} ms)" test "$rc" -ne 0 -a "$rc" -ne 124
pv_check "and says so: $(head -c 200 "$PV_TMP/err")" grep -q "vif 0 of domain $D did not connect" "$PV_TMP/err"
kill -CONT "$nbpid"
# A dead netback: the host is degraded, and a checkpoint there is refused
# before the guest is touched (as create refuses a degraded host).
kill -9 "$nbpid"
pv_check "the host's netback is dead" pv_wait_for 5 bash -c "$PV host-list | grep -q 'degraded: netback killed'"
timed timeout 30 $PV migrate "$G" --cancel --no-probe
pv_check "a checkpoint on the degraded host is refused (status $rc after ${ms} ms)" test "$rc" -ne 0 -a "$rc" -ne 124
pv_check "and says why: $(head -c 200 "$PV_TMP/err")" grep -q "host '$HA' is not healthy: degraded: netback killed" "$PV_TMP/err"

# ---- supervisors -------------------------------------------------------------------------
HC=tC$sfx
pv_check "a third host comes up" $PV -q host-create "$HC"
hcdir=$PVNET_ROOT/hosts/$HC
spid=$(sed -n 's/^pid=//p' "$hcdir/supervisor.pid")
xspid=$(sed -n 's/^xenstored.pid=//p' "$hcdir/status")
kill -9 "$spid"
pv_check "its xenstored's pid is known ($xspid)" test -n "$xspid"
pv_check "its daemons do not outlive a killed supervisor" pv_wait_for 5 bash -c "! kill -0 $xspid 2>/dev/null || grep -q '^State:.Z' /proc/$xspid/status"
pv_check "and host-list says so" pv_wait_for 5 bash -c "$PV host-list | grep '^$HC ' | grep -q 'supervisor gone'"
# A stale pid file whose pid now belongs to somebody else.
sleep 600 & victim=$!
pv_on_exit "kill $victim 2>/dev/null"
sed -i "s/^pid=.*/pid=$victim/" "$hcdir/supervisor.pid"
pv_check "a stale supervisor.pid naming another process is not taken for the supervisor" bash -c "$PV host-list | grep '^$HC ' | grep -q 'supervisor gone'"
# host-destroy --force with more guests than its 512-byte message lists: each
# is destroyed (here: state directories of guests that never ran).
for i in $(seq 45); do
	mkdir -p "$PVNET_ROOT/guests/fk$sfx$i" &&
	printf 'name=fk%s%s\nhost=%s\ndomid=%s\nvifs=0\n' "$sfx" "$i" "$HC" $((30000 + i)) >"$PVNET_ROOT/guests/fk$sfx$i/guest.conf"
done
timed timeout 60 $PV -q host-destroy --force "$HC"
pv_check "host-destroy --force of a host with 45 guests finishes (status $rc)" test "$rc" -eq 0
pv_check "and destroyed every one of them" bash -c "! ls -d $PVNET_ROOT/guests/fk$sfx* 2>/dev/null | grep -q ."
pv_check "without signalling the process the stale pid file named" kill -0 "$victim"
kill "$victim"
pv_check "no sanitizer report in any log" bash -c "! grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' $PVNET_ROOT/hosts/*/*.log $PVNET_ROOT/guests/*/*.log 2>/dev/null"
pv_done
