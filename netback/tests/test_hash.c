/* Unit tests for netback/hash: Toeplitz, lookup tables, control requests, frame hashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "netback/hash.h"

/* The key of Microsoft's RSS verification suite. */
static const uint8_t ms_key[NB_HASH_KEY_SIZE] = {
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
	0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
	0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

struct v4case {
	uint8_t src[4], dst[4];
	uint16_t sport, dport;
	uint32_t ip, tcp;
};

static const struct v4case v4cases[] = {
	{ { 66, 9, 149, 187 }, { 161, 142, 100, 80 }, 2794, 1766, 0x323e8fc2, 0x51ccc178 },
	{ { 199, 92, 111, 2 }, { 65, 69, 140, 83 }, 14230, 4739, 0xd718262a, 0xc626b0ea },
	{ { 24, 19, 198, 95 }, { 12, 22, 207, 184 }, 12898, 38024, 0xd2d0a5de, 0x5c2b394a },
};

static size_t v4input(const struct v4case *c, uint8_t *in, bool ports)
{
	memcpy(in, c->src, 4);
	memcpy(in + 4, c->dst, 4);
	if (!ports)
		return 8;
	in[8] = (uint8_t)(c->sport >> 8);
	in[9] = (uint8_t)c->sport;
	in[10] = (uint8_t)(c->dport >> 8);
	in[11] = (uint8_t)c->dport;
	return 12;
}

static void test_toeplitz_vectors(void **state)
{
	uint8_t in[NB_HASH_INPUT_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(v4cases) / sizeof(v4cases[0]); i++) {
		assert_int_equal(nb_toeplitz(ms_key, in, v4input(&v4cases[i], in, false)), v4cases[i].ip);
		assert_int_equal(nb_toeplitz(ms_key, in, v4input(&v4cases[i], in, true)), v4cases[i].tcp);
	}
}

static uint32_t table_hash(uint32_t t[NB_HASH_INPUT_MAX][256], const uint8_t *in, size_t n)
{
	uint32_t h = 0;

	for (size_t p = 0; p < n; p++)
		h ^= t[p][in[p]];
	return h;
}

/* The per-byte tables (what the steering program looks up) give the
 * reference routine's hash for any key and input. */
static void test_table_matches(void **state)
{
	static uint32_t t[NB_HASH_INPUT_MAX][256];
	uint8_t key[NB_HASH_KEY_SIZE], in[NB_HASH_INPUT_MAX];

	(void)state;
	srand(7);
	for (int round = 0; round < 50; round++) {
		for (size_t i = 0; i < sizeof(key); i++)
			key[i] = (uint8_t)rand();
		if (round == 0)
			memcpy(key, ms_key, sizeof(key));
		nb_hash_table(key, t);
		for (int k = 0; k < 20; k++) {
			size_t n = (size_t)(rand() % (int)(NB_HASH_INPUT_MAX + 1));
			for (size_t i = 0; i < n; i++)
				in[i] = (uint8_t)rand();
			assert_int_equal(table_hash(t, in, n), nb_toeplitz(key, in, n));
		}
	}
}

/* ---- control requests ------------------------------------------------------- */

struct fake_fe {
	uint8_t page[PV_PAGE_SIZE];
	grant_ref_t good;
	int copies;
};

static int16_t fake_copy(void *ctx, grant_ref_t ref, void *dst, size_t len)
{
	struct fake_fe *fe = ctx;

	fe->copies++;
	if (ref != fe->good)
		return GNTST_bad_gntref;
	assert_true(len <= PV_PAGE_SIZE);
	memcpy(dst, fe->page, len);
	return GNTST_okay;
}

static uint32_t ctrl(struct nb_hash *h, struct fake_fe *fe, uint16_t type, uint32_t d0, uint32_t d1,
		     uint32_t d2, uint32_t *data, bool *changed)
{
	struct xen_netif_ctrl_request req = { .id = 77, .type = type, .data = { d0, d1, d2 } };
	struct xen_netif_ctrl_response rsp;
	bool c = nb_hash_ctrl(h, &req, &rsp, fake_copy, fe);

	assert_int_equal(rsp.id, 77);
	assert_int_equal(rsp.type, type);
	if (data)
		*data = rsp.data;
	if (changed)
		*changed = c;
	return rsp.status;
}

#define OK XEN_NETIF_CTRL_STATUS_SUCCESS
#define INVAL XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER
#define NOTSUP XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED

static void test_ctrl_algorithm_and_flags(void **state)
{
	struct fake_fe fe = { .good = 5 };
	struct nb_hash h;
	uint32_t data = 99;
	bool changed;

	(void)state;
	nb_hash_init(&h, 4);
	/* Before an algorithm: flags cannot be read or set. */
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS, 0, 0, 0, &data, NULL), NOTSUP);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, XEN_NETIF_CTRL_HASH_TYPE_IPV4, 0, 0,
			      NULL, NULL), INVAL);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, 2, 0, 0, NULL, NULL), INVAL);
	assert_int_equal(h.alg, XEN_NETIF_CTRL_HASH_ALGORITHM_NONE);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
			      XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ, 0, 0, NULL, &changed), OK);
	assert_true(changed);
	/* GET_HASH_FLAGS answers the supported types. */
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS, 0, 0, 0, &data, NULL), OK);
	assert_int_equal(data, NB_HASH_TYPES);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, 1u << 4, 0, 0, NULL, NULL), INVAL);
	assert_int_equal(h.flags, 0);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS,
			      XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP, 0, 0, NULL,
			      &changed), OK);
	assert_true(changed);
	assert_int_equal(h.flags, XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP);
	/* Unknown types and the static-grant ones. */
	for (uint16_t t = XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE; t <= 12; t++)
		assert_int_equal(ctrl(&h, &fe, t, 0, 0, 0, NULL, NULL), NOTSUP);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_INVALID, 0, 0, 0, NULL, NULL), NOTSUP);
	assert_int_equal(ctrl(&h, &fe, 0xffff, 0, 0, 0, NULL, NULL), NOTSUP);
}

static void test_ctrl_key(void **state)
{
	struct fake_fe fe = { .good = 5 };
	struct nb_hash h;
	uint8_t zero[NB_HASH_KEY_SIZE] = { 0 };

	(void)state;
	nb_hash_init(&h, 4);
	memcpy(fe.page, ms_key, sizeof(ms_key));
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 5, NB_HASH_KEY_SIZE, 0, NULL, NULL), OK);
	assert_memory_equal(h.key, ms_key, sizeof(ms_key));
	/* Too long, or a grant that does not copy: refused, key unchanged. */
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 5, NB_HASH_KEY_SIZE + 1, 0, NULL, NULL),
			 INVAL);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 6, 8, 0, NULL, NULL), INVAL);
	assert_memory_equal(h.key, ms_key, sizeof(ms_key));
	/* A shorter key: the missing octets are zero. */
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 5, 4, 0, NULL, NULL), OK);
	assert_memory_equal(h.key, ms_key, 4);
	assert_memory_equal(h.key + 4, zero, NB_HASH_KEY_SIZE - 4);
	/* Length 0 clears it without touching the grant. */
	fe.copies = 0;
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 1234, 0, 0, NULL, NULL), OK);
	assert_int_equal(fe.copies, 0);
	assert_memory_equal(h.key, zero, sizeof(zero));
}

static void test_ctrl_mapping(void **state)
{
	struct fake_fe fe = { .good = 5 };
	uint32_t *ent = (uint32_t *)(void *)fe.page, data;
	struct nb_hash h;

	(void)state;
	nb_hash_init(&h, 4);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE, 0, 0, 0, &data, NULL), OK);
	assert_int_equal(data, NB_HASH_MAPPING_MAX);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, NB_HASH_MAPPING_MAX + 1, 0, 0,
			      NULL, NULL), INVAL);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 8, 0, 0, NULL, NULL), OK);
	assert_int_equal(h.size, 8);
	for (unsigned i = 0; i < 8; i++)
		ent[i] = (i * 3) % 4;
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 5, 6, 2, NULL, NULL), OK);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(h.mapping[i], i < 2 ? 0 : ((i - 2) * 3) % 4);
	/* Past the table, wrapping, more than a page: refused. */
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 5, 7, 2, NULL, NULL), INVAL);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 5, 2, 0xffffffffu, NULL, NULL),
			 INVAL);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 5, 0xfffffffeu, 4, NULL, NULL),
			 INVAL);
	/* A queue that does not exist, or a bad grant: nothing applied. */
	ent[0] = 1;
	ent[1] = 4;
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 5, 2, 0, NULL, NULL), INVAL);
	assert_int_equal(h.mapping[0], 0);
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 9, 1, 0, NULL, NULL), INVAL);
	assert_int_equal(h.mapping[0], 0);
	/* A new size zeroes the table. */
	assert_int_equal(ctrl(&h, &fe, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 4, 0, 0, NULL, NULL), OK);
	for (unsigned i = 0; i < NB_HASH_MAPPING_MAX; i++)
		assert_int_equal(h.mapping[i], 0);
}

/* ---- frames ----------------------------------------------------------------- */

static size_t mk_v4(uint8_t *f, const struct v4case *c, uint8_t proto, uint16_t frag)
{
	memset(f, 0, 64);
	f[12] = 0x08;
	f[14] = 0x45;
	f[20] = (uint8_t)(frag >> 8);
	f[21] = (uint8_t)frag;
	f[23] = proto;
	memcpy(f + 26, c->src, 4);
	memcpy(f + 30, c->dst, 4);
	f[34] = (uint8_t)(c->sport >> 8);
	f[35] = (uint8_t)c->sport;
	f[36] = (uint8_t)(c->dport >> 8);
	f[37] = (uint8_t)c->dport;
	return 64;
}

static void test_frame_hash(void **state)
{
	const struct v4case *c = &v4cases[0];
	struct nb_hash h;
	uint8_t f[128];
	uint32_t hash;
	unsigned type;
	size_t len;

	(void)state;
	nb_hash_init(&h, 4);
	memcpy(h.key, ms_key, sizeof(ms_key));
	len = mk_v4(f, c, 6, 0);
	assert_false(nb_hash_frame(&h, f, len, &hash, &type));   /* algorithm NONE */
	h.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
	assert_false(nb_hash_frame(&h, f, len, &hash, &type));   /* no type enabled */
	h.flags = XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
	assert_true(nb_hash_frame(&h, f, len, &hash, &type));
	assert_int_equal(hash, c->tcp);
	assert_int_equal(type, _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
	/* UDP and TCP fragments: addresses only. */
	len = mk_v4(f, c, 17, 0);
	assert_true(nb_hash_frame(&h, f, len, &hash, &type));
	assert_int_equal(hash, c->ip);
	assert_int_equal(type, _XEN_NETIF_CTRL_HASH_TYPE_IPV4);
	len = mk_v4(f, c, 6, 0x2000);
	assert_true(nb_hash_frame(&h, f, len, &hash, &type));
	assert_int_equal(hash, c->ip);
	h.flags = XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
	assert_false(nb_hash_frame(&h, f, len, &hash, &type));
	/* IPv6 + TCP: addresses then ports. */
	memset(f, 0, sizeof(f));
	f[12] = 0x86;
	f[13] = 0xDD;
	f[14] = 0x60;
	f[20] = 6;
	for (int i = 0; i < 36; i++)
		f[22 + i] = (uint8_t)(i * 7 + 1);
	h.flags = XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
	assert_true(nb_hash_frame(&h, f, 80, &hash, &type));
	assert_int_equal(hash, nb_toeplitz(ms_key, f + 22, 36));
	assert_int_equal(type, _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP);
	h.flags = XEN_NETIF_CTRL_HASH_TYPE_IPV6;
	assert_true(nb_hash_frame(&h, f, 80, &hash, &type));
	assert_int_equal(hash, nb_toeplitz(ms_key, f + 22, 32));
	/* Truncated or not IP. */
	assert_false(nb_hash_frame(&h, f, 40, &hash, &type));
	f[12] = 0x08;
	f[13] = 0x06;
	assert_false(nb_hash_frame(&h, f, 80, &hash, &type));
}

static void test_queue(void **state)
{
	struct nb_hash h;

	(void)state;
	nb_hash_init(&h, 3);
	assert_int_equal(nb_hash_queue(&h, 7), 1);
	h.size = 4;
	h.mapping[3] = 2;
	assert_int_equal(nb_hash_queue(&h, 7), 2);
	assert_int_equal(nb_hash_queue(&h, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toeplitz_vectors),
		cmocka_unit_test(test_table_matches),
		cmocka_unit_test(test_ctrl_algorithm_and_flags),
		cmocka_unit_test(test_ctrl_key),
		cmocka_unit_test(test_ctrl_mapping),
		cmocka_unit_test(test_frame_hash),
		cmocka_unit_test(test_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
