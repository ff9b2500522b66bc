#!/usr/bin/env bash
# Xen's own test-xenstore (xen-utils-4.17) against pvnet-xenstored: all 12
# tests, then 10 s of random mode, then several copies in parallel.
source "$PVNET_SRC/tests/lib.sh"
source "$PVNET_SRC/xenstored/tests/xsd_lib.sh"
TX=/usr/lib/xen-4.17/bin/test-xenstore
[ -x $TX ] || pv_skip "$TX missing (xen-utils-4.17)"

xsd_start "$PV_TMP/xs" || { echo "not ok - daemon start"; exit 1; }
n=$($TX -l | wc -l)
pv_check "test-xenstore lists 12 tests ($n)" test "$n" -eq 12
pv_check "test-xenstore: all tests pass" $TX
pv_check "test-xenstore -i 20" $TX -i 20
pv_check "test-xenstore -r 10 (random)" $TX -r 10
pids=()
for i in 1 2 3 4; do $TX -i 10 >/dev/null & pids+=($!); done
ok=0
for p in "${pids[@]}"; do wait "$p" || ok=1; done
pv_check "4 test-xenstore in parallel" test $ok -eq 0
pv_check "store consistent afterwards" bash -c '[ "$(/usr/lib/xen-4.17/bin/xenstore-control check)" = OK ]'
pv_check "test-xenstore cleaned up" bash -c '! xenstore-ls /local/domain/0/xenstore-test 2>/dev/null | grep -q .'
pv_check "daemon stopped cleanly, no sanitizer report" xsd_stop
pv_done
