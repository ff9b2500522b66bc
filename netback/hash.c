/*
 * The control ring's hashing state (netback/hash.h).
 */
#define XEN_NETIF_DEFINE_TOEPLITZ  /* Xen's reference routine, from netif.h */
#include "netback/hash.h"

#include <string.h>

void nb_hash_init(struct nb_hash *h, unsigned nqueues)
{
	memset(h, 0, sizeof(*h));
	h->alg = XEN_NETIF_CTRL_HASH_ALGORITHM_NONE;
	h->nqueues = nqueues;
}

uint32_t nb_toeplitz(const uint8_t *key, const uint8_t *buf, size_t len)
{
	return xen_netif_toeplitz_hash(key, NB_HASH_KEY_SIZE, buf, (unsigned)len);
}

void nb_hash_table(const uint8_t *key, uint32_t t[NB_HASH_INPUT_MAX][256])
{
	for (unsigned p = 0; p < NB_HASH_INPUT_MAX; p++) {
		uint32_t bit[8];

		/* The 32 key bits starting at input bit 8p + i: what bit i
		 * (from the MSB) of byte p contributes when set. */
		for (unsigned i = 0; i < 8; i++) {
			unsigned start = 8 * p + i;
			uint64_t w = 0;

			for (unsigned k = 0; k < 5; k++) {
				unsigned byte = start / 8 + k;
				w = (w << 8) | (byte < NB_HASH_KEY_SIZE ? key[byte] : 0);
			}
			bit[i] = (uint32_t)(w >> (8 - start % 8));
		}
		for (unsigned b = 0; b < 256; b++) {
			uint32_t v = 0;

			for (unsigned i = 0; i < 8; i++)
				if (b & (0x80u >> i))
					v ^= bit[i];
			t[p][b] = v;
		}
	}
}

/* ---- control requests (Linux xenvif_ctrl_action / hash.c) ----------------- */

static uint32_t set_alg(struct nb_hash *h, uint32_t alg, bool *changed)
{
	if (alg != XEN_NETIF_CTRL_HASH_ALGORITHM_NONE && alg != XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ)
		return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
	*changed = h->alg != alg;
	h->alg = alg;
	return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

static uint32_t get_flags(const struct nb_hash *h, uint32_t *data)
{
	if (h->alg == XEN_NETIF_CTRL_HASH_ALGORITHM_NONE)
		return XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED;
	*data = NB_HASH_TYPES;   /* the types supported, not those enabled */
	return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

static uint32_t set_flags(struct nb_hash *h, uint32_t flags, bool *changed)
{
	if ((flags & ~(uint32_t)NB_HASH_TYPES) || h->alg == XEN_NETIF_CTRL_HASH_ALGORITHM_NONE)
		return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
	*changed = h->flags != flags;
	h->flags = flags;
	return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

static uint32_t set_key(struct nb_hash *h, grant_ref_t ref, uint32_t len, nb_hash_copy_fn copy,
			void *ctx, bool *changed)
{
	uint8_t key[NB_HASH_KEY_SIZE] = { 0 };

	if (len > NB_HASH_KEY_SIZE)
		return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
	if (len && copy(ctx, ref, key, len) != GNTST_okay)
		return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
	*changed = memcmp(h->key, key, sizeof(key)) != 0;
	memcpy(h->key, key, sizeof(key));
	return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

static uint32_t set_mapping_size(struct nb_hash *h, uint32_t size, bool *changed)
{
	if (size > NB_HASH_MAPPING_MAX)
		return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
	h->size = size;
	memset(h->mapping, 0, sizeof(h->mapping));
	*changed = true;
	return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

/* The new entries land in a copy of the table, which replaces it only if
 * every one of them names a queue (Linux's double-buffered mapping). */
static uint32_t set_mapping(struct nb_hash *h, grant_ref_t ref, uint32_t len, uint32_t off,
			    nb_hash_copy_fn copy, void *ctx, bool *changed)
{
	uint32_t m[NB_HASH_MAPPING_MAX];

	if (off > h->size || len > h->size - off || len > PV_PAGE_SIZE / sizeof(uint32_t))
		return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
	memcpy(m, h->mapping, sizeof(m));
	if (len && copy(ctx, ref, m + off, len * sizeof(uint32_t)) != GNTST_okay)
		return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
	for (uint32_t i = off; i < off + len; i++)
		if (m[i] >= h->nqueues)
			return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
	*changed = memcmp(h->mapping, m, sizeof(m)) != 0;
	memcpy(h->mapping, m, sizeof(m));
	return XEN_NETIF_CTRL_STATUS_SUCCESS;
}

bool nb_hash_ctrl(struct nb_hash *h, const struct xen_netif_ctrl_request *req,
		  struct xen_netif_ctrl_response *rsp, nb_hash_copy_fn copy, void *ctx)
{
	uint32_t status = XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED, data = 0;
	bool changed = false;

	switch (req->type) {
	case XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM:
		status = set_alg(h, req->data[0], &changed);
		break;
	case XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS:
		status = get_flags(h, &data);
		break;
	case XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS:
		status = set_flags(h, req->data[0], &changed);
		break;
	case XEN_NETIF_CTRL_TYPE_SET_HASH_KEY:
		status = set_key(h, req->data[0], req->data[1], copy, ctx, &changed);
		break;
	case XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE:
		status = XEN_NETIF_CTRL_STATUS_SUCCESS;
		data = NB_HASH_MAPPING_MAX;
		break;
	case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE:
		status = set_mapping_size(h, req->data[0], &changed);
		break;
	case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING:
		status = set_mapping(h, req->data[0], req->data[1], req->data[2], copy, ctx, &changed);
		break;
	default:
		break;
	}
	*rsp = (struct xen_netif_ctrl_response){ .id = req->id, .type = req->type, .status = status,
						 .data = data };
	return changed;
}

/* ---- frames ----------------------------------------------------------------- */

#define ETH_HLEN_ 14u

bool nb_hash_frame(const struct nb_hash *h, const uint8_t *f, size_t len, uint32_t *hash,
		   unsigned *type)
{
	uint8_t in[NB_HASH_INPUT_MAX];
	size_t n = 0;
	uint16_t proto;

	if (h->alg != XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ || len < ETH_HLEN_)
		return false;
	proto = (uint16_t)(f[12] << 8 | f[13]);
	if (proto == 0x0800) {
		const uint8_t *ip = f + ETH_HLEN_;
		size_t ihl;
		bool tcp;

		if (len < ETH_HLEN_ + 20 || (ip[0] >> 4) != 4 || (ip[0] & 15) < 5)
			return false;
		ihl = (size_t)(ip[0] & 15) * 4;
		/* TCP, not a fragment (offset or more-fragments), ports present. */
		tcp = ip[9] == 6 && !(((ip[6] << 8) | ip[7]) & 0x3fff) && len >= ETH_HLEN_ + ihl + 4;
		if (tcp && (h->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP)) {
			memcpy(in, ip + 12, 8);
			memcpy(in + 8, ip + ihl, 4);
			n = 12;
			*type = _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
		} else if (h->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4) {
			memcpy(in, ip + 12, 8);
			n = 8;
			*type = _XEN_NETIF_CTRL_HASH_TYPE_IPV4;
		}
	} else if (proto == 0x86DD) {
		const uint8_t *ip = f + ETH_HLEN_;
		bool tcp;

		if (len < ETH_HLEN_ + 40 || (ip[0] >> 4) != 6)
			return false;
		tcp = ip[6] == 6 && len >= ETH_HLEN_ + 44;
		if (tcp && (h->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP)) {
			memcpy(in, ip + 8, 32);
			memcpy(in + 32, ip + 40, 4);
			n = 36;
			*type = _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
		} else if (h->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6) {
			memcpy(in, ip + 8, 32);
			n = 32;
			*type = _XEN_NETIF_CTRL_HASH_TYPE_IPV6;
		}
	}
	if (!n)
		return false;
	*hash = nb_toeplitz(h->key, in, n);
	return true;
}

unsigned nb_hash_queue(const struct nb_hash *h, uint32_t hash)
{
	if (h->size)
		return h->mapping[hash % h->size];
	return h->nqueues ? hash % h->nqueues : 0;
}
