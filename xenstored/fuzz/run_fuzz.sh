#!/bin/sh
# Run a libFuzzer target for ${PVNET_FUZZ_SECONDS:-20} s from a copy of its
# seed corpus (the committed seeds are never modified).
# usage: run_fuzz.sh FUZZER SEED_DIR
set -eu
work=$(mktemp -d /tmp/pvnet-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$2"/* "$work"/
exec "$1" -max_total_time="${PVNET_FUZZ_SECONDS:-20}" -max_len=4096 -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 "$work"
