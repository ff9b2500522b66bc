#!/usr/bin/env bash
# Errors a user can make get one clear line and a non-zero exit, and leave
# nothing half-built (issue 6).
. "${PVNET_SRC:-$(dirname "$0")/../..}/tests/lib.sh"
pv_require_root
pv_require_tun
. "$PVNET_SRC/toolstack/tests/lab.sh"

# expect_err DESC CMD...: non-zero exit, exactly one stderr line "pvnet: ...".
expect_err() {
	local desc=$1; shift
	local out rc
	out=$("$@" 2>&1 >/dev/null); rc=$?
	if [ $rc -ne 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ $out == pvnet:* || $out == usage:* ]]; then
		_pv_pass=$((_pv_pass + 1)); echo "ok - $desc: $out"
	else
		_pv_fail=$((_pv_fail + 1)); echo "not ok - $desc (rc=$rc): $out"
	fi
}
snapshot() { { ip netns list | awk '{print $1}' | grep '^pvnet-' ; find "$PVNET_ROOT" -maxdepth 2 2>/dev/null | grep -v '/lock$'; } | sort; }

expect_err "unknown verb" $PV frobnicate
expect_err "unknown option" $PV --bogus host-list
expect_err "bad host name" $PV host-create 'bad name!'
expect_err "too long host name" $PV host-create abcdefghijklmnop
expect_err "unknown host" $PV host-destroy nosuchhost
expect_err "guest on an unknown host" $PV create g1 --host nosuchhost
expect_err "unknown guest" $PV destroy nosuchguest
expect_err "migrate an unknown guest" $PV migrate nosuchguest "$HA"
expect_err "client on an unknown switch" $PV client-create c1 --switch nosuchsw
if command -v setpriv >/dev/null; then
	expect_err "running without root" setpriv --reuid=65534 --regid=65534 --clear-groups $PV host-list
fi

pv_check "lab comes up" lab_up
before=$(snapshot)
expect_err "duplicate host" $PV host-create "$HA"
expect_err "duplicate switch" $PV switch-create "$SW"
expect_err "bad vif setting" $PV create "$G" --host "$HA" --vif colour=blue
expect_err "bad MAC" $PV create "$G" --host "$HA" --vif mac=zz:00:00:00:00:01
expect_err "two vifs, one MAC" $PV create "$G" --host "$HA" --vif mac=00:16:3e:00:00:01 --vif mac=00:16:3e:00:00:01
expect_err "bad queue count" $PV create "$G" --host "$HA" --queues 99
pv_check "failed creates left nothing behind" test "$before" = "$(snapshot)"

pv_check "create a guest" $PV -q create "$G" --host "$HA" --vif "mac=00:16:3e:00:00:01,ip=$GIP.2/24"
expect_err "duplicate guest" $PV create "$G" --host "$HB"
expect_err "duplicate MAC" $PV create "x$G" --host "$HB" --vif mac=00:16:3e:00:00:01
expect_err "migrate to the host it is on" $PV migrate "$G" "$HA"
expect_err "migrate to an unknown host" $PV migrate "$G" nosuchhost
expect_err "checkpoint on another host" $PV migrate "$G" "$HB" --cancel
expect_err "destroy a host with running guests" $PV host-destroy "$HA"
expect_err "detach a vif the guest does not have" $PV network-detach "$G" 7
pv_check "the guest still answers" guest_ping
pv_check "no daemon died" lab_healthy
pv_done
