/*
 * netif/tests/netns_test.h — the preamble of tests that need TAP devices:
 * root and /dev/net/tun, then a private network namespace (everything the
 * test creates exists only there and vanishes with the process), loopback up.
 * Returns 0, or 77 (meson's "skipped") after printing why it cannot run.
 * Thread: call first, from main(), before any thread exists.
 */
#ifndef PVNET_NETIF_TESTS_NETNS_TEST_H
#define PVNET_NETIF_TESTS_NETNS_TEST_H

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netif/link.h"

static inline int nif_test_enter_netns(void)
{
	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
		printf("SKIP: needs root and /dev/net/tun\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIP: cannot create a network namespace: %s\n", strerror(errno));
		return 77;
	}
	nif_link_set_up(nif_link_index("lo"), true);
	return 0;
}

#endif
