# xenstored/tests/xsd_lib.sh — start a private pvnet-xenstored for a test.
# Source after tests/lib.sh. xsd_start DIR [options]: starts the daemon on
# DIR/socket (DIR absolute), kills it at exit, exports XENSTORED_PATH.
# xsd_stop: SIGTERM it and check it stopped cleanly and that no sanitizer
# (ASan/UBSan builds) reported anything: their reports go to DIR/san.*.
XSD=${PVNET_BUILD}/pvnet-xenstored
PY=/usr/bin/python3

xsd_start() {
	local d=$1; shift
	mkdir -p "$d"
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$d/san" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:log_path=$d/san" \
		"$XSD" --rundir "$d" --daemon --pidfile "$d/pid" --log-file "$d/log" "$@" || return 1
	XSD_DIR=$d
	XSD_PID=$(cat "$d/pid")
	pv_on_exit "kill $XSD_PID"
	export XENSTORED_PATH=$d/socket
}

xsd_stop() {
	local ok=0
	# Daemonised, it is reparented to PID 1, which may reap it late: a
	# zombie counts as gone.
	kill -TERM "$XSD_PID" 2>/dev/null || ok=1
	pv_wait_for 10 bash -c "! { [ -e /proc/$XSD_PID ] && ! grep -q '^State:.*Z' /proc/$XSD_PID/status; }" || ok=1
	grep -q stopped "$XSD_DIR/log" || ok=1
	if ls "$XSD_DIR"/san.* >/dev/null 2>&1; then
		cat "$XSD_DIR"/san.*
		ok=1
	fi
	return $ok
}

# Run a test program that prints its own "N passed, N failed", then stop the
# daemon and check it; exit status: both fine.
xsd_run_and_stop() {
	"$@"
	local rc=$?
	if xsd_stop; then echo "ok - daemon stopped cleanly, no sanitizer report"; else
		echo "not ok - daemon stopped cleanly, no sanitizer report"; rc=1; fi
	return $rc
}

# RSS of a process in KiB.
xsd_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
