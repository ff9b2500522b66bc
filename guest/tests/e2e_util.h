/*
 * guest/tests/e2e_util.h — helpers of the guest runtime's end-to-end tests:
 * TAP-style result lines, a temporary directory and network namespaces
 * removed at exit, commands, sending sequence-numbered frames from inside a
 * guest's namespace, reading a guest's `state`, golden comparisons.
 * Thread: the test's main thread. Errors: as noted per function.
 */
#ifndef PVNET_GUEST_TESTS_E2E_UTIL_H
#define PVNET_GUEST_TESTS_E2E_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "guest/tests/minitoolstack.h"

extern int e2e_pass, e2e_fail;
#define CHECK(cond, ...) do { if (cond) { e2e_pass++; printf("ok - " __VA_ARGS__); printf("\n"); } \
	else { e2e_fail++; printf("not ok - " __VA_ARGS__); printf(" (%s:%d)\n", __FILE__, __LINE__); } \
	fflush(stdout); } while (0)

/* Exit 77 unless root with /dev/net/tun and the programs built. */
void e2e_require(void);
/* A temporary directory (removed at exit with everything registered). */
const char *e2e_tmpdir(void);
/* A unique network namespace name (<= 15 chars), created now, deleted at exit. */
const char *e2e_netns(const char *tag);
/* Hosts and guests stopped at exit (in reverse order). */
void e2e_atexit_host(struct mts_host *h);
void e2e_atexit_guest(struct mts_guest *g);
/* Print the final "N passed, N failed" line; returns the exit code. */
int e2e_done(void);

/* Run a shell command (output discarded); its exit status. */
int e2e_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A shell command's first line of output as a number, or -1. */
long e2e_sh_num(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wait (polling every 10 ms, up to timeout_ms) until the guest's control
 * answer to `cmd` contains `needle` (`count` times at least). */
bool e2e_wait_control(const struct mts_guest *g, const char *cmd, const char *needle, unsigned count,
		      int timeout_ms);
/* A field of the guest's `state` for its first device: "race", "broken",
 * "queues" ... as a number (or -1). */
long e2e_state_num(const struct mts_guest *g, const char *key);
/* The guest's `trace-norm` after the first `skip` lines. malloc'd. */
char *e2e_trace_norm(const struct mts_guest *g, unsigned skip);
unsigned e2e_lines(const char *s);
/* Compare with guest/tests/golden/<name>; prints a diff-like note. */
bool e2e_golden(const char *got, const char *name);

/* Send sequence frames [first, first+count) on `ifname` in namespace
 * `netns`, `pps` per second (0: as fast as possible). Runs in a child
 * process; `sent` (shared memory, count/8 bytes, may be NULL) gets a bit per
 * frame the kernel accepted. Returns the child's pid. */
pid_t e2e_send_seq(const char *netns, const char *ifname, const uint8_t mac[6], uint32_t first,
		   uint32_t count, unsigned pps, uint8_t *sent);
/* Wait for it; returns the number of frames accepted (exit code / 256 is lost:
 * use the bitmap for exact numbers). */
int e2e_wait_child(pid_t pid);
/* A shared bitmap of n bits (munmap with e2e_free_bitmap). */
uint8_t *e2e_bitmap(uint32_t nbits);
void e2e_free_bitmap(uint8_t *b, uint32_t nbits);

#endif
