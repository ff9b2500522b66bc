#!/usr/bin/env bash
# Benchmark: pvnet-xenstored against Xen 4.17's C xenstored (the reference,
# ../shared/tools/ref-xenstored/run), both started here in temp rundirs.
# PVNET_BENCH_SECONDS per row and daemon (default 1). Prints a table.
source "$PVNET_SRC/tests/lib.sh"
source "$PVNET_SRC/xenstored/tests/xsd_lib.sh"
secs=${PVNET_BENCH_SECONDS:-1}
xsd_start "$PV_TMP/pv" || exit 1
args=("$secs" pvnet "$PV_TMP/pv/socket" "$XSD_PID")
ref=""
for r in "$PVNET_SRC/../shared/tools/ref-xenstored/run" /work/shared/tools/ref-xenstored/run; do
	[ -x "$r" ] && { ref=$r; break; }
done
if [ -n "$ref" ]; then
	mkdir -p "$PV_TMP/ref"
	# Its own database directory, so that it never meets another instance;
	# XENSTORED_PATH (set for pvnet) would also move its socket.
	env -u XENSTORED_PATH XENSTORED_ROOTDIR=$PV_TMP/ref "$ref" "$PV_TMP/ref" >"$PV_TMP/ref.log" 2>&1 &
	rpid=$!
	pv_on_exit "kill $rpid"
	pv_wait_for 10 test -S "$PV_TMP/ref/socket"
	args+=(C-xenstored "$PV_TMP/ref/socket" "$rpid")
else
	echo "reference C xenstored not found: pvnet figures only"
fi
"$PVNET_BUILD/xenstored/bench/bench-xsd" "${args[@]}" || { cat "$PV_TMP/ref.log"; ls -la "$PV_TMP/ref"; exit 1; }
