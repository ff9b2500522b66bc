#!/usr/bin/env bash
# Build every pvnet program into build/ (configuring it the first time).
# usage: scripts/build.sh [BUILDDIR [meson options...]]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}; shift || true
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" "$@" >/dev/null
fi
ninja -C "$dir" >/dev/null
