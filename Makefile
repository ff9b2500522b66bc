# Convenience wrapper around Meson/Ninja. Every target installs missing Debian
# packages first (scripts/deps.sh), so on a fresh Debian 12 machine as root:
#   make          build every program into build/
#   make demo     the main job: two hosts, a guest, traffic, live migration, report
#   make check    every test (plain, then ASan+UBSan, then fuzz smoke), summary line last
#   make bench    the benchmarks (figures go in BENCHMARKS.md)
.PHONY: all build deps demo check bench clean
all: build
deps:
	@scripts/deps.sh
build: deps
	@scripts/build.sh build
demo: build
	@./build/pvnet demo
check:
	@scripts/check.sh
bench: build
	@meson test -C build --suite bench --verbose --no-rebuild
clean:
	rm -rf build build-asan build-fuzz
