#!/usr/bin/env bash
# Byte-for-byte comparison of replies and events with Xen 4.17's C xenstored
# (../shared/tools/ref-xenstored/run, Debian's xen-utils-4.17) on the same
# request sequence (compare.py).
source "$PVNET_SRC/tests/lib.sh"
source "$PVNET_SRC/xenstored/tests/xsd_lib.sh"
ref=""
for r in "$PVNET_SRC/../shared/tools/ref-xenstored/run" /work/shared/tools/ref-xenstored/run; do
	[ -x "$r" ] && { ref=$r; break; }
done
[ -n "$ref" ] && [ -x /usr/lib/xen-4.17/bin/xenstored ] || pv_skip "reference C xenstored not available"
mkdir -p "$PV_TMP/ref"
# Own database directory; no XENSTORED_PATH, which would move its socket.
env -u XENSTORED_PATH XENSTORED_ROOTDIR="$PV_TMP/ref" "$ref" "$PV_TMP/ref" >"$PV_TMP/ref.log" 2>&1 &
rpid=$!
pv_on_exit "kill $rpid"
xsd_start "$PV_TMP/xs" || { echo "not ok - daemon start"; exit 1; }
pv_wait_for 10 test -S "$PV_TMP/ref/socket" || pv_skip "reference C xenstored did not start"
xsd_run_and_stop timeout 60 $PY "$PVNET_SRC/xenstored/tests/compare.py" "$PV_TMP/xs/socket" "$PV_TMP/ref/socket"
