/* Unit tests for netback/steer: the TAP steering program, run by the kernel
 * (BPF_PROG_TEST_RUN) on frames, must pick the queue nb_hash_frame() and
 * nb_hash_queue() pick. Needs CAP_BPF (root): skipped with the reason
 * otherwise. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/bpf.h>

#include "netback/hash.h"
#include "netback/steer.h"

static struct nb_steer st = { -1, -1, -1, 0 };
static char why[512];
static int open_err;

static int setup(void **state)
{
	(void)state;
	open_err = nb_steer_open(&st, why, sizeof(why));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nb_steer_close(&st);
	return 0;
}

/* What the program returns for a frame (the kernel's test run hands a
 * socket filter the packet after its link-layer header, where a TAP's
 * steering program sees it from the Ethernet header: 14 bytes go first). */
static uint32_t run(const uint8_t *frame, size_t len)
{
	uint8_t in[256] = { 0 };
	union bpf_attr attr;

	assert_true(len + 14 <= sizeof(in));
	in[12] = 0x88;   /* an ethertype the kernel does not parse further */
	in[13] = 0xb5;
	memcpy(in + 14, frame, len);
	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = (uint32_t)st.prog_fd;
	attr.test.data_in = (uint64_t)(uintptr_t)in;
	attr.test.data_size_in = (uint32_t)(len + 14);
	attr.test.repeat = 1;
	if (syscall(SYS_bpf, BPF_PROG_TEST_RUN, &attr, sizeof(attr)) != 0)
		fail_msg("test run of a %zu-byte frame: %s", len, strerror(errno));
	return attr.test.retval;
}

static size_t mk_frame(uint8_t *f, unsigned kind, unsigned seed)
{
	memset(f, 0, 128);
	for (unsigned i = 0; i < 12; i++)
		f[i] = (uint8_t)(0x10 + i);
	switch (kind) {
	case 0: case 1: case 2: case 3:   /* IPv4: TCP, UDP, TCP fragment, TCP with options */
		f[12] = 0x08;
		f[14] = kind == 3 ? 0x47 : 0x45;
		f[20] = kind == 2 ? 0x20 : 0x40;
		f[23] = kind == 1 ? 17 : 6;
		for (unsigned i = 0; i < 8; i++)
			f[26 + i] = (uint8_t)(seed * 31 + i * 17);
		for (unsigned i = 0; i < 4; i++)
			f[14 + (f[14] & 15) * 4 + i] = (uint8_t)(seed * 7 + i * 3);
		return 14 + 28 + 20 + 8;
	case 4: case 5:                   /* IPv6: TCP, UDP */
		f[12] = 0x86;
		f[13] = 0xDD;
		f[14] = 0x60;
		f[20] = kind == 4 ? 6 : 17;
		for (unsigned i = 0; i < 36; i++)
			f[22 + i] = (uint8_t)(seed * 13 + i * 5);
		return 14 + 40 + 20;
	default:                          /* ARP */
		f[12] = 0x08;
		f[13] = 0x06;
		return 60;
	}
}

static void check_one(const struct nb_hash *h, const uint8_t *f, size_t len)
{
	uint32_t hash = 0;
	unsigned type;

	if (!nb_hash_frame(h, f, len, &hash, &type))
		hash = 0;
	assert_int_equal(run(f, len), nb_hash_queue(h, hash));
}

/* Whole frames of every kind, and every kind cut short at every length. */
static void check_all(const struct nb_hash *h)
{
	uint8_t f[128];

	assert_int_equal(nb_steer_update(&st, h), 0);
	for (unsigned kind = 0; kind < 7; kind++)
		for (unsigned seed = 0; seed < 40; seed++) {
			size_t len = mk_frame(f, kind, seed);

			check_one(h, f, len);
			if (seed == 0)
				for (size_t cut = 1; cut < len; cut++)
					check_one(h, f, cut);
		}
}

static void test_program_matches(void **state)
{
	struct nb_hash h;

	(void)state;
	if (open_err == -EPERM) {
		fprintf(stderr, "# skipped: %s (needs CAP_BPF: run as root)\n", why);
		skip();
	}
	if (open_err < 0)
		fail_msg("%s", why);
	nb_hash_init(&h, 4);
	h.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
	for (unsigned i = 0; i < NB_HASH_KEY_SIZE; i++)
		h.key[i] = (uint8_t)(i * 37 + 11);
	for (uint32_t flags = 0; flags <= NB_HASH_TYPES; flags++) {
		h.flags = flags;
		h.size = 0;
		check_all(&h);
		h.size = 7;
		for (unsigned i = 0; i < h.size; i++)
			h.mapping[i] = (i * 5 + flags) % 4;
		check_all(&h);
	}
	h.size = NB_HASH_MAPPING_MAX;
	for (unsigned i = 0; i < h.size; i++)
		h.mapping[i] = (i / 3) % 4;
	check_all(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_program_matches),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
