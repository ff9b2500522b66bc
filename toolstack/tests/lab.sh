# toolstack/tests/lab.sh — a private pvnet lab for end-to-end tests. Source
# after tests/lib.sh. Creates a state root and short unique names, and
# destroys everything at exit (guests, hosts, clients, switches, root).
PV=${PVNET_BUILD}/pvnet
export PVNET_ROOT=$PV_TMP/root
sfx=$(printf '%x' $(( $$ % 4096 )))
SW=ts$sfx; CL=tc$sfx; HA=tA$sfx; HB=tB$sfx; G=tg$sfx
GNS=pvnet-g-$G; CNS=pvnet-c-$CL
GIP=10.$(( ($$ >> 8) % 200 + 20 )).$(( $$ % 250 + 1 ))
_lab_cleanup() {
	local g h
	for g in $(ls "$PVNET_ROOT/guests" 2>/dev/null); do $PV -q destroy "$g" >/dev/null 2>&1; done
	for h in $(ls "$PVNET_ROOT/hosts" 2>/dev/null); do $PV -q host-destroy --force "$h" >/dev/null 2>&1; done
	$PV -q client-destroy "$CL" >/dev/null 2>&1
	$PV -q switch-destroy "$SW" >/dev/null 2>&1
	# Anything a failed step left behind.
	for ns in pvnet-g-$G pvnet-h-$HA pvnet-h-$HB pvnet-c-$CL pvnet-s-$SW; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9
		ip netns del "$ns" 2>/dev/null
	done
	pkill -f "$PVNET_ROOT/" 2>/dev/null
}
pv_on_exit _lab_cleanup

# lab_up [host-B max queues]: switch, client $GIP.1, hosts A (8 queues) and B.
lab_up() {
	$PV -q switch-create "$SW" && $PV -q client-create "$CL" --switch "$SW" --ip "$GIP.1/24" &&
	$PV -q host-create "$HA" --switch "$SW" --max-queues 8 &&
	$PV -q host-create "$HB" --switch "$SW" --max-queues "${1:-8}"
}

# Fail loudly if a daemon died or a sanitizer complained in any log.
lab_healthy() {
	local bad=0 f
	for f in "$PVNET_ROOT"/hosts/*/status "$PVNET_ROOT"/guests/*/status; do
		[ -f "$f" ] || continue
		if grep -q '^state=degraded' "$f"; then echo "# $f: $(grep ^state= "$f")"; bad=1; fi
	done
	for f in "$PVNET_ROOT"/hosts/*/*.log "$PVNET_ROOT"/guests/*/*.log; do
		[ -f "$f" ] || continue
		if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f"; then
			echo "# sanitizer report in $f:"; grep -m5 -E 'ERROR:|runtime error:|#[0-9] ' "$f" | sed 's/^/#   /'; bad=1
		fi
	done
	return $bad
}

guest_ping() { ip netns exec "$CNS" ping -c "${1:-3}" -i 0.2 -W 2 "$GIP.2" >/dev/null; }
