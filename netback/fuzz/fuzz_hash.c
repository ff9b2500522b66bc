/*
 * libFuzzer target: what a frontend controls on the control ring — a
 * sequence of control requests with the pages their grants point at — and
 * then frames hashed under the state it built. Checks the invariants the
 * steering relies on: the table never longer than its maximum, every entry
 * a queue that exists, nb_hash_queue() always a queue.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netback/hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
	const uint8_t *p;
	size_t n;
};

/* The "granted page": whatever input is left; grant refs above 7 fail. */
static int16_t copy(void *ctx, grant_ref_t ref, void *dst, size_t len)
{
	const struct src *s = ctx;

	if (ref > 7 || len > PV_PAGE_SIZE)
		return GNTST_bad_gntref;
	memset(dst, 0, len);
	memcpy(dst, s->p, len < s->n ? len : s->n);
	return GNTST_okay;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nb_hash h;
	struct src s = { data, size };
	uint32_t hash;
	unsigned type;

	if (size < 1)
		return 0;
	nb_hash_init(&h, 1u + data[0] % 16u);
	s.p++;
	s.n--;
	while (s.n >= sizeof(struct xen_netif_ctrl_request)) {
		struct xen_netif_ctrl_request req;
		struct xen_netif_ctrl_response rsp;

		memcpy(&req, s.p, sizeof(req));
		s.p += sizeof(req);
		s.n -= sizeof(req);
		req.type %= 12;   /* mostly the known ones */
		(void)nb_hash_ctrl(&h, &req, &rsp, copy, &s);
		if (rsp.id != req.id || h.size > NB_HASH_MAPPING_MAX)
			abort();
		for (unsigned i = 0; i < h.size; i++)
			if (h.mapping[i] >= h.nqueues)
				abort();
		if (req.type == XEN_NETIF_CTRL_TYPE_INVALID)
			break;   /* the rest is frame data */
	}
	if (!nb_hash_frame(&h, s.p, s.n, &hash, &type))
		hash = 0;
	else if (type > _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP)
		abort();
	if (nb_hash_queue(&h, hash) >= h.nqueues)
		abort();
	return 0;
}
