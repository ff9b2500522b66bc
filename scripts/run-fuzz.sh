#!/usr/bin/env bash
# Run one libFuzzer target for $PVNET_FUZZ_SECONDS (default 20) seconds,
# starting from its committed seed corpus (copied, so the repo stays clean).
# usage: run-fuzz.sh FUZZER SEED_CORPUS_DIR [extra libFuzzer args]
set -euo pipefail
fuzzer=$(realpath "$1"); seeds=$(realpath -m "$2"); shift 2
work=$(mktemp -d /tmp/pvnet-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
[ -d "$seeds" ] && cp -r "$seeds"/. "$work/corpus/" 2>/dev/null || true
cd "$work"
# Not exec: the trap must run to remove the work directory. libFuzzer's own
# error exit code is 77, which meson reads as "skipped": a crash must fail.
"$fuzzer" -max_total_time="${PVNET_FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 \
	-error_exitcode=1 \
	-print_final_stats=1 "$@" corpus
