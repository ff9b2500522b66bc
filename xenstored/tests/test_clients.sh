#!/usr/bin/env bash
# pvnet-xenstored against Debian's xenstore-utils (libxenstore underneath),
# plus the daemon's own command line: --help, --daemon, SIGTERM cleanup.
source "$PVNET_SRC/tests/lib.sh"
source "$PVNET_SRC/xenstored/tests/xsd_lib.sh"

D=$PV_TMP/xs
export XC=/usr/lib/xen-4.17/bin/xenstore-control
xsd_start "$D" || { echo "not ok - daemon start"; exit 1; }

pv_check "socket exists" test -S "$D/socket"
pv_check "initial tree" bash -c '[ "$(xenstore-ls / | head -1)" = "tool = \"\"" ] && xenstore-exists /local/domain/0'
pv_check "write/read" bash -c 'xenstore-write /a/b hello && [ "$(xenstore-read /a/b)" = hello ]'
pv_check "several keys in one write" bash -c 'xenstore-write /m/x 1 /m/y 2 && [ "$(xenstore-read /m/x /m/y | tr "\n" " ")" = "1 2 " ]'
pv_check "relative path on the dom0 socket" bash -c 'xenstore-write rel/x 1 && [ "$(xenstore-read /local/domain/0/rel/x)" = 1 ]'
pv_check "implicit parents" bash -c '[ "$(xenstore-read /a)" = "" ]'
pv_check "list" bash -c '[ "$(xenstore-list /m | tr "\n" " ")" = "x y " ]'
pv_check "ls" bash -c 'xenstore-ls /m | grep -qx "x = \"1\""'
pv_check "exists / not exists" bash -c 'xenstore-exists /a/b && ! xenstore-exists /a/nope'
pv_check "rm subtree" bash -c 'xenstore-rm /m && ! xenstore-exists /m/x && ! xenstore-exists /m'
pv_check "read missing fails" bash -c '! xenstore-read /nope 2>/dev/null'
pv_check "chmod and ls -p" bash -c 'xenstore-chmod /a/b n0 r5 && xenstore-ls -p /a | grep -q "(n0,r5)"'
pv_check "chmod -r" bash -c 'xenstore-write /r/s/t 1 && xenstore-chmod -r /r b7 && xenstore-ls -p /r | grep -c "(b7)" | grep -qx 2'
pv_check "invalid path refused" bash -c '! xenstore-write "/bad//path" 1 2>/dev/null'

# Watches: the initial event, then one per change (paths as given).
out=$PV_TMP/watch.out
timeout 5 xenstore-watch -n 3 /w >"$out" &
wpid=$!
pv_wait_for 5 grep -qx /w "$out"
xenstore-write /w/y 2
xenstore-rm /w
wait $wpid
pv_check "xenstore-watch sees initial, write and rm" bash -c "[ \"\$(tr '\n' ' ' <$out)\" = '/w /w/y /w ' ]"
timeout 5 xenstore-watch -n 2 relw >"$out" &
wpid=$!
pv_wait_for 5 grep -qx relw "$out"
xenstore-write /local/domain/0/relw/k 1
wait $wpid
pv_check "relative watch reports relative paths" bash -c "[ \"\$(tr '\n' ' ' <$out)\" = 'relw relw/k ' ]"

pv_check "xenstore-control quota" bash -c '$XC quota | grep -q "^nodes  *: *1000"'
pv_check "xenstore-control check" bash -c '[ "$($XC check)" = OK ]'

# Command line.
pv_check "--help lists every option" bash -c "$XSD --help | grep -c -- '--' | awk '\$1 >= 16 { ok = 1 } END { exit !ok }' && $XSD --help | grep -q -- --quota-watches"
pv_check "no --rundir is a usage error" bash -c "! $XSD 2>/dev/null"
pv_check "bad quota value refused" bash -c "! $XSD --rundir $PV_TMP/x2 --quota-nodes abc 2>/dev/null"
pv_check "log file written" grep -q "serving $D/socket" "$D/log"
pv_check "a second daemon on the same rundir refuses to start" bash -c "! $XSD --rundir $D 2>/dev/null && xenstore-exists /local"
pv_check "--log-level debug traces requests by name" bash -c "$XC log on >/dev/null && xenstore-read /a/b >/dev/null && grep -q 'READ req_id' $D/log && $XC log off >/dev/null"

# SIGTERM: exits and removes its sockets (domain ones too).
$PY - "$D/socket" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
p = b"3\x000\x001\x00"
s.sendall(struct.pack("<IIII", 8, 1, 0, len(p)) + p); s.recv(64)
PY
pv_check "introduced domain socket exists" test -S "$D/domains/3.sock"
pv_check "SIGTERM stops the daemon cleanly, no sanitizer report" xsd_stop
pv_check "sockets removed" bash -c "[ ! -e $D/socket ] && [ ! -e $D/domains/3.sock ] && [ ! -e $D/pid ]"

# --daemon with relative paths (it changes directory to /).
(cd "$PV_TMP" && "$XSD" --rundir rel --daemon --pidfile rel.pid --log-file rel.log)
pv_check "--daemon with relative paths" bash -c "[ -S $PV_TMP/rel/socket ] && [ -s $PV_TMP/rel.pid ] && grep -q serving $PV_TMP/rel.log"
[ -s "$PV_TMP/rel.pid" ] && kill "$(cat "$PV_TMP/rel.pid")"

# Foreground with --ready-fd.
F=$PV_TMP/fg
mkdir -p "$F"
exec 9>"$PV_TMP/ready"
"$XSD" --rundir "$F" --ready-fd 9 2>"$F/err" &
fpid=$!
exec 9>&-
pv_on_exit "kill $fpid"
pv_wait_for 5 grep -q ready "$PV_TMP/ready"
pv_check "foreground + --ready-fd" bash -c "grep -q ready $PV_TMP/ready && XENSTORED_PATH=$F/socket xenstore-exists /local"
kill -INT $fpid; wait $fpid
pv_check "SIGINT exit status 0" test $? -eq 0
pv_done
