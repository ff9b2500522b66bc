# xenstored/tests/xsd_lib.sh — start a private pvnet-xenstored for a test.
# Source after tests/lib.sh. xsd_start DIR [options]: starts the daemon on
# DIR/socket (DIR absolute), kills it at exit, exports XENSTORED_PATH.
# xsd_ref_start DIR: the same with Xen 4.17's C xenstored (reference).
XSD=${PVNET_BUILD}/pvnet-xenstored
PY=/usr/bin/python3

xsd_start() {
	local d=$1; shift
	mkdir -p "$d"
	"$XSD" --rundir "$d" --daemon --pidfile "$d/pid" --log-file "$d/log" "$@" || return 1
	XSD_PID=$(cat "$d/pid")
	pv_on_exit "kill $XSD_PID"
	export XENSTORED_PATH=$d/socket
}

# RSS of a process in KiB.
xsd_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
