#!/usr/bin/env bash
# Install what pvnet needs to build, test and run, if it is missing.
# Debian 12 packages only; needs root (or sudo) when something is missing.
set -euo pipefail

PKGS=(
	# build
	meson ninja-build gcc clang pkg-config libc6-dev
	libxen-dev libxenstore4 libmnl-dev libcmocka-dev
	# sanitizers and libFuzzer
	libclang-rt-14-dev
	# real xenstore clients and Xen's own tests
	xenstore-utils xen-utils-4.17 python3-pyxs python3
	# networking for the lab, tests and demo
	iproute2 iputils-ping iperf3 tcpdump arping net-tools ethtool procps
	# tools used by tests
	valgrind psmisc
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "pvnet: installing missing packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "pvnet: need root to install ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
