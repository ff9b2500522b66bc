#!/usr/bin/env bash
# The main job, short: `pvnet demo --migrations 2` must build its lab, move
# the guest twice under load with the TCP stream alive, report, and leave
# nothing behind.
. "${PVNET_SRC:-$(dirname "$0")/../..}/tests/lib.sh"
pv_require_root
pv_require_tun
out=$("$PVNET_BUILD/pvnet" demo --migrations 2 --queues 4 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
pv_check "demo exits 0" test $rc -eq 0
pv_check "it shows the first migration's trace" grep -q "netfront_resume()" <<<"$out"
pv_check "two migrations in the table" bash -c "grep -cE '^  [12] +d' <<<\"\$0\" | grep -q 2" "$out"
pv_check "blackout summary printed" grep -q "network blackout over 2 migrations" <<<"$out"
pv_check "the TCP stream survived" grep -q "survived every migration" <<<"$out"
sfx=$(sed -n 's/.*booting guest dg\([0-9a-f]*\) .*/\1/p' <<<"$out")
pv_check "nothing left behind (namespaces *$sfx)" bash -c "[ -n \"$sfx\" ] && ! ip netns list | grep -E '^pvnet-[hcsg]-d(A|B|sw|cl|g)$sfx( |\$)'"
pv_check "no demo root left" bash -c '! ls -d /run/pvnet-demo-* 2>/dev/null'
pv_done
