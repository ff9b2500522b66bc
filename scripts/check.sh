#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test suite
# (unit, integration, end-to-end), then the same suites under AddressSanitizer
# + UBSan, then each libFuzzer target for a short time. Ends with the line
# "N passed, N failed".
# Environment: PVNET_FUZZ_SECONDS (default 20), PVNET_SKIP_ASAN=1, PVNET_SKIP_FUZZ=1.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1
logs=()

run_suite() { # builddir label meson-test-args...
	local dir=$1 label=$2; shift 2
	echo "== $label"
	meson test -C "$dir" --print-errorlogs --no-rebuild "$@"
	logs+=("$dir/meson-logs/testlog.json")
	cp "$dir/meson-logs/testlog.json" "$dir/meson-logs/testlog-$label.json" 2>/dev/null || true
	logs[-1]="$dir/meson-logs/testlog-$label.json"
}

scripts/build.sh build || { echo "0 passed, 1 failed"; exit 1; }
run_suite build plain --no-suite fuzz --no-suite bench

if [ "${PVNET_SKIP_ASAN:-0}" != 1 ]; then
	scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		|| { echo "0 passed, 1 failed"; exit 1; }
	run_suite build-asan asan --no-suite fuzz --no-suite bench --no-suite slow
fi

if [ "${PVNET_SKIP_FUZZ:-0}" != 1 ]; then
	CC=clang scripts/build.sh build-fuzz -Dfuzz=true -Db_lundef=false \
		|| { echo "0 passed, 1 failed"; exit 1; }
	run_suite build-fuzz fuzz --suite fuzz
fi

scripts/summary.py "${logs[@]}"
