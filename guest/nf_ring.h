/*
 * guest/nf_ring.h — netfront's ring bookkeeping, pure: no locks, no syscalls.
 *
 * What: the tx id free list and pending marks, building the tx requests of
 * one packet, collecting tx responses (xennet_tx_buf_gc) and rx responses
 * (xennet_get_extras + xennet_get_responses), with the Linux 5.16+ hardening
 * (RING_COPY_RESPONSE into a local copy, RING_RESPONSE_PROD_OVERFLOW, id range
 * and pending checks) and pvnet's stricter rules (docs/guest.md "Misbehaving
 * backends"). Every value read from the shared ring is copied first, then
 * checked; nothing is read or written outside the ring page and the caller's
 * arrays whatever the backend writes.
 * Thread: the caller serialises access to one ring (tx_lock / rx_lock).
 * Errors: NF_RING_BROKEN (< 0) means the backend broke the protocol; *reason
 * then names the rule (a static string) and the device must be disabled.
 * Ownership: rings and arrays belong to the caller (struct nf_queue).
 */
#ifndef PVNET_GUEST_NF_RING_H
#define PVNET_GUEST_NF_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "common/xen.h"
#include "netif/offload.h"

#define NF_TX_RING_SIZE PV_NET_TX_RING_SIZE   /* 256 */
#define NF_RX_RING_SIZE PV_NET_RX_RING_SIZE   /* 256 */
/* Pages of one packet of up to XEN_NETIF_MAX_TX_SIZE (65535) bytes. */
#define NF_MAX_PKT_PAGES ((XEN_NETIF_MAX_TX_SIZE + PV_PAGE_SIZE - 1) / PV_PAGE_SIZE)
/* Ring slots one tx packet may need: its pages + one GSO extra. Linux stops
 * the queue below MAX_XEN_SKB_FRAGS + 2 = 19 free slots. */
#define NF_TX_MAX_SLOTS (NF_MAX_PKT_PAGES + 1)
/* rx: Linux accepts XEN_NETIF_NR_SLOTS_MIN (18) data slots, 19 when the
 * first slot is <= RX_COPY_THRESHOLD (256) bytes. */
#define NF_RX_MAX_SLOTS (XEN_NETIF_NR_SLOTS_MIN + 1)
#define NF_RX_COPY_THRESHOLD 256
/* Linux's NET_RX_SLOTS_MIN: refill does not push below this many. */
#define NF_RX_SLOTS_MIN (XEN_NETIF_NR_SLOTS_MIN + 1)
#define NF_TX_ID_NONE 0xFFFFu

#define NF_RING_BROKEN (-71) /* -EPROTO */

/* ---- tx bookkeeping ---------------------------------------------------- */

/* Per id, what we published (private memory, never read back from the ring):
 * enough to re-post a packet whose requests got no response. */
struct nf_txinfo {
	RING_IDX slot;                      /* ring index of its request */
	uint16_t next;                      /* next id of the same packet or NONE */
	uint16_t len;                       /* bytes in this id's page */
	bool first;
	uint32_t pkt_len;                   /* first id: whole packet */
	struct nif_offload o;               /* first id: offload */
};

struct nf_txbook {
	uint16_t head;                      /* first free id or NF_TX_ID_NONE */
	uint16_t nfree;
	uint16_t link[NF_TX_RING_SIZE];     /* free-list links (Linux's tx_link) */
	uint8_t pending[NF_TX_RING_SIZE];   /* published, awaiting a response */
	uint16_t slot_id[NF_TX_RING_SIZE];  /* ring slot -> id (NONE: an extra slot) */
	uint16_t nulls_due;                 /* extra slots published, not yet answered */
	struct nf_txinfo info[NF_TX_RING_SIZE];
};

void nf_txbook_init(struct nf_txbook *b);
/* NF_TX_ID_NONE if empty. */
uint16_t nf_txids_get(struct nf_txbook *b);
void nf_txids_put(struct nf_txbook *b, uint16_t id);

/* Free tx request slots (Linux: NET_TX_RING_SIZE - (req_prod_pvt - rsp_cons)). */
unsigned nf_tx_free_slots(const netif_tx_front_ring_t *tx);

/* Write the requests of one packet at tx->req_prod_pvt: `npages` pages with
 * ids idv[i] and grant refs refs[i], data at offset 0, `len` bytes in all
 * (first request's size = len), offload `o` (a GSO extra slot after the
 * first request). Marks the ids pending. The caller checked
 * nf_tx_free_slots() >= NF_TX_MAX_SLOTS. Returns the ring slots used. */
unsigned nf_tx_build(netif_tx_front_ring_t *tx, struct nf_txbook *b, const uint16_t *idv,
		     const grant_ref_t *refs, unsigned npages, uint32_t len,
		     const struct nif_offload *o);

/* Called for each completed id; return < 0 if its grant cannot be ended
 * (still mapped by the backend: XSA-396) to break the device. */
typedef int (*nf_tx_done_fn)(void *arg, uint16_t id, int16_t status);

/* xennet_tx_buf_gc: consume every tx response, calling done() per id and
 * returning the id to the free list. Returns the number of completed ids, or
 * NF_RING_BROKEN with *reason. Re-arms rsp_event (RING_FINAL_CHECK). */
int nf_tx_gc(netif_tx_front_ring_t *tx, struct nf_txbook *b, nf_tx_done_fn done, void *arg,
	     const char **reason);

/* Packets published and never answered, oldest first (from the private
 * record): fn gets the ids of each packet whose every id is still pending.
 * Returns how many pending packets were skipped because part of them was
 * already answered (their pages may have been reused). */
typedef void (*nf_tx_pending_fn)(void *arg, const uint16_t *ids, unsigned n,
				 const struct nf_txinfo *first);
unsigned nf_tx_pending_walk(const netif_tx_front_ring_t *tx, const struct nf_txbook *b,
			    nf_tx_pending_fn fn, void *arg);

/* ---- rx ----------------------------------------------------------------- */

enum nf_rx_err {
	NF_RX_OK = 0,
	NF_RX_ERR_STATUS,        /* a slot with a negative status (backend error) */
	NF_RX_ERR_MISSING_EXTRA, /* extra_info flag but no extra slot yet */
	NF_RX_ERR_BAD_EXTRA,     /* unknown extra type */
	NF_RX_ERR_BAD_GSO,       /* GSO extra with size 0 or an unknown type */
	NF_RX_ERR_NEED_SLOTS,    /* more_data on the last response available */
	NF_RX_ERR_EMPTY,         /* a zero-length packet */
};

struct nf_rx_slot {
	RING_IDX idx;            /* ring index: the buffer posted there */
	uint16_t offset;
	uint16_t len;
};

struct nf_rx_pkt {
	RING_IDX first;          /* ring index of the first response */
	unsigned nslots;         /* ring slots consumed: data + extras */
	unsigned ndata;
	struct nf_rx_slot data[NF_RX_MAX_SLOTS];
	uint16_t flags;          /* NETRXF_* of the first response */
	bool has_gso;
	struct netif_extra_info gso;
	uint32_t len;            /* sum of the data slots */
	enum nf_rx_err err;      /* != OK: drop the packet (slots still consumed) */
};

/* Check the response producer against what was posted: call once per poll
 * with the rsp_prod read (once) from the shared ring. 0 or NF_RING_BROKEN. */
int nf_rx_check_prod(const netif_rx_front_ring_t *rx, RING_IDX prod, const char **reason);

/* Collect the packet starting at rx->rsp_cons (requires prod != rsp_cons and a
 * checked prod), copying every response. Advances rx->rsp_cons past the
 * slots it consumed. Returns 1 with *pkt filled (pkt->err says whether to
 * drop it), or NF_RING_BROKEN with *reason. */
int nf_rx_next(netif_rx_front_ring_t *rx, RING_IDX prod, struct nf_rx_pkt *pkt,
	       const char **reason);

#endif
