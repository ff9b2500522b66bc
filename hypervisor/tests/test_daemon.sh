#!/usr/bin/env bash
# pvnet-hypervisor as a daemon: options, --daemon/--pidfile/--log-file, a
# second instance refused, clean stop on SIGTERM, restart over a killed one.
. "$PVNET_SRC/tests/lib.sh"
HV=$PVNET_BUILD/pvnet-hypervisor
dir=$PV_TMP/run
log=$PV_TMP/hv.log
pidf=$PV_TMP/hv.pid

pv_check "--help lists the options" bash -c \
	"'$HV' --help | grep -q -- --rundir && '$HV' --help | grep -q -- --max-ports && '$HV' --help | grep -q -- --log-file"
pv_check "--rundir is required (exit 2)" bash -c "'$HV' >/dev/null 2>&1; [ \$? -eq 2 ]"
pv_check "a bad number is refused (exit 2)" bash -c \
	"'$HV' --rundir '$dir' --max-ports 0 >/dev/null 2>&1; [ \$? -eq 2 ]"
pv_check "--daemon returns once ready" "$HV" --rundir "$dir" --daemon --pidfile "$pidf" --log-file "$log"
pid=$(cat "$pidf" 2>/dev/null)
pv_on_exit "kill -9 $pid"
pv_check "the dom0 socket exists" test -S "$dir/socket"
pv_check "the daemon runs" kill -0 "$pid"
pv_check "the log says where it serves" grep -q "serving in $dir" "$log"
pv_check "a second instance on the same rundir is refused" bash -c \
	"! '$HV' --rundir '$dir' --log-file '$PV_TMP/second.log' 2>/dev/null && grep -q 'in use' '$PV_TMP/second.log'"
pv_check "the first one still serves" test -S "$dir/socket"
kill -TERM "$pid"
pv_check "SIGTERM stops it" pv_wait_for 5 bash -c "! kill -0 $pid 2>/dev/null"
pv_check "its socket is removed" bash -c "! test -e '$dir/socket'"
pv_check "its pidfile is removed" bash -c "! test -e '$pidf'"

# A daemon killed hard leaves its sockets; the next one starts anyway.
"$HV" --rundir "$dir" --daemon --pidfile "$pidf" --log-file "$log"
pid=$(cat "$pidf")
touch "$dir/domains/7.sock"
kill -9 "$pid"
# kill(2) returns before the process is gone: until then its socket still
# answers and the new daemon rightly refuses (a zombie is gone enough).
pv_wait_for 5 bash -c "! kill -0 $pid 2>/dev/null || grep -q ') Z' /proc/$pid/stat"
pv_check "restart over a killed daemon" "$HV" --rundir "$dir" --daemon --pidfile "$pidf" --log-file "$log"
pid=$(cat "$pidf")
pv_on_exit "kill -9 $pid"
pv_check "stale domain sockets are cleared" bash -c "! test -e '$dir/domains/7.sock'"
kill -TERM "$pid"
pv_check "and it stops cleanly" pv_wait_for 5 bash -c "! kill -0 $pid 2>/dev/null"
pv_done
