#!/usr/bin/env bash
# Runs the libxenstore client test against a private pvnet-xenstored.
source "$PVNET_SRC/tests/lib.sh"
source "$PVNET_SRC/xenstored/tests/xsd_lib.sh"
xsd_start "$PV_TMP/xs" --quota-nodes 20 --quota-watches 4 || { echo "not ok - daemon start"; exit 1; }
xsd_run_and_stop timeout 60 "$PVNET_BUILD/xenstored/tests/test-xsd-libxs" "$PV_TMP/xs"
