#!/usr/bin/env bash
# Runs test_pyxs.py (python3-pyxs) against a private pvnet-xenstored.
source "$PVNET_SRC/tests/lib.sh"
source "$PVNET_SRC/xenstored/tests/xsd_lib.sh"
$PY -c 'import pyxs' 2>/dev/null || pv_skip "python3-pyxs missing"
xsd_start "$PV_TMP/xs" || { echo "not ok - daemon start"; exit 1; }
xsd_run_and_stop timeout 120 $PY "$PVNET_SRC/xenstored/tests/test_pyxs.py"
