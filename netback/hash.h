/*
 * netback/hash.h — a vif's receive-side hashing, as set through the control
 * ring (feature-ctrl-ring; Linux xen-netback hash.c and xenvif_select_queue).
 *
 * What: the state a frontend configures with control requests — algorithm
 * (NONE or TOEPLITZ), enabled hash types, a 40-byte Toeplitz key and a
 * mapping table of up to 128 queue numbers — and the functions over it:
 * nb_hash_ctrl() answers one control request as Linux v5.13 does (same
 * statuses, a mapping update applied only when all of it is valid);
 * nb_hash_frame() hashes a frame over the headers of the most specific
 * enabled type (IPv4/IPv6 addresses, plus TCP ports when the packet is TCP
 * and not a fragment); nb_hash_queue() picks the queue for a hash
 * (mapping[hash % size], or hash % queues with no table);
 * nb_hash_table() expands the key into per-byte lookup tables (the hash is
 * linear in its input bits), which the TAP's steering program uses
 * (netback/steer.h).
 * Parsing differs from Linux's flow dissector in two ways, both documented
 * in docs/netback.md: no VLAN tags, no IPv6 extension headers (such a
 * packet is hashed as IPv6 only).
 * Thread: pure functions on caller-owned state. Errors: control requests
 * answer XEN_NETIF_CTRL_STATUS_*; nothing else fails.
 */
#ifndef PVNET_NETBACK_HASH_H
#define PVNET_NETBACK_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/xen.h"

#define NB_HASH_KEY_SIZE 40u      /* XEN_NETBK_MAX_HASH_KEY_SIZE */
#define NB_HASH_MAPPING_MAX 128u  /* XEN_NETBK_MAX_HASH_MAPPING_SIZE */
#define NB_HASH_INPUT_MAX 36u     /* IPv6 addresses + TCP ports */
#define NB_HASH_TYPES (XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP | \
		       XEN_NETIF_CTRL_HASH_TYPE_IPV6 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP)

struct nb_hash {
	uint32_t alg;                          /* XEN_NETIF_CTRL_HASH_ALGORITHM_* */
	uint32_t flags;                        /* enabled XEN_NETIF_CTRL_HASH_TYPE_* */
	uint8_t key[NB_HASH_KEY_SIZE];         /* missing octets zero */
	uint32_t size;                         /* mapping entries; 0: hash % queues */
	uint32_t mapping[NB_HASH_MAPPING_MAX]; /* each < nqueues */
	unsigned nqueues;                      /* of the vif: the bound for mapping entries */
};

/* Copy `len` bytes (at most a page) from offset 0 of the frontend's grant
 * `ref` into `dst`: GNTST_okay or the grant copy's GNTST_* status. */
typedef int16_t (*nb_hash_copy_fn)(void *ctx, grant_ref_t ref, void *dst, size_t len);

/* Algorithm NONE, no types, zero key, no table. */
void nb_hash_init(struct nb_hash *h, unsigned nqueues);

/* Answer one control request: rsp gets id, type, status and data. true if
 * the state changed (the steering must follow). Unknown types, and the
 * static-grant ones, answer NOT_SUPPORTED. */
bool nb_hash_ctrl(struct nb_hash *h, const struct xen_netif_ctrl_request *req,
		  struct xen_netif_ctrl_response *rsp, nb_hash_copy_fn copy, void *ctx);

/* Toeplitz over `len` bytes with a NB_HASH_KEY_SIZE key (Xen's reference
 * routine from xen/io/netif.h). */
uint32_t nb_toeplitz(const uint8_t *key, const uint8_t *buf, size_t len);
/* t[p][b]: what byte value b at input position p contributes to the hash;
 * the hash of buf is the XOR of t[p][buf[p]]. */
void nb_hash_table(const uint8_t *key, uint32_t t[NB_HASH_INPUT_MAX][256]);

/* The hash of an Ethernet frame under h (algorithm TOEPLITZ): true with the
 * hash and the type's bit number (_XEN_NETIF_CTRL_HASH_TYPE_*, as a HASH
 * extra carries it), false when no enabled type applies. */
bool nb_hash_frame(const struct nb_hash *h, const uint8_t *frame, size_t len, uint32_t *hash,
		   unsigned *type);
/* The queue for a frame of this hash (0 for a frame without one). */
unsigned nb_hash_queue(const struct nb_hash *h, uint32_t hash);

#endif
