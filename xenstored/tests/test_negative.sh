#!/usr/bin/env bash
# Hostile and slow clients (test_negative.py) against a private daemon.
source "$PVNET_SRC/tests/lib.sh"
source "$PVNET_SRC/xenstored/tests/xsd_lib.sh"
xsd_start "$PV_TMP/xs" || { echo "not ok - daemon start"; exit 1; }
xsd_run_and_stop timeout 120 $PY "$PVNET_SRC/xenstored/tests/test_negative.py" "$PV_TMP/xs/socket" "$XSD_PID" "$PV_TMP/xs/log"
