/*
 * netback/queue.h — one netif queue of a vif: its thread and data path.
 *
 * What: nb_queue_spawn() starts the queue's thread, which opens its own grant
 * table and event channel handles on the hypervisor, maps the frontend's tx
 * and rx rings (read-write), checks them (req_prod - rsp_prod <= RING_SIZE,
 * as BACK_RING_ATTACH users do), binds the event channel(s), and reports back:
 * nb_queue_ready() waits for that (so a vif's queues set up in parallel) and,
 * on failure, frees the queue and gives Linux's "mapping shared-frames ..."
 * message. The thread then waits for nb_queue_go() (called once the vif's
 * carrier is on, as Linux's xenvif_up enables NAPI only then, so nothing the
 * frontend queued meets a dead port) and moves frames: guest tx requests are mapped in
 * one batch and written to the queue's TAP fd straight from the mapped pages
 * (writev); frames read from the TAP land straight in the mapped rx buffers
 * (readv). Responses are pushed only after the grants are unmapped.
 * nb_queue_stop() asks the thread to stop, joins it (everything unmapped and
 * unbound) and frees the queue.
 * Misbehaviour found by the thread is reported with nb_vif_fatal() (the vif
 * is disabled, as xenvif_fatal_tx_err); the queue then stops touching the
 * rings and leaves its ports masked until it is stopped.
 * Thread: start/stop from the main thread; the counters may be read from any
 * thread at any time (relaxed atomics, one writer).
 * Errors: 0 or -errno, with a message in `err`.
 */
#ifndef PVNET_NETBACK_QUEUE_H
#define PVNET_NETBACK_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/xen.h"
#include "hypervisor/hv.h"
#include "netback/keys.h"

struct nb_vif;

/* One direction of traffic; "from_guest" is the frontend's tx ring (frames
 * written to the TAP), "to_guest" its rx ring (frames read from the TAP). */
struct nb_dir_stats {
	_Atomic uint64_t packets, bytes;
	_Atomic uint64_t dropped;   /* accepted from the ring / TAP, then not delivered */
	_Atomic uint64_t errors;    /* answered NETIF_RSP_ERROR / rx error responses */
	_Atomic uint64_t first_ns;  /* CLOCK_MONOTONIC of the first frame since connect, 0 if none */
	_Atomic uint64_t last_ns;   /* ... of the last frame */
};

struct nb_qstats {
	struct nb_dir_stats from_guest, to_guest;
	_Atomic uint64_t gso_csum_fixups;   /* GSO without csum_blank (Linux rx_gso_checksum_fixup) */
	_Atomic uint64_t sw_csum;           /* to_guest checksums completed in software */
	_Atomic uint64_t spurious_events;   /* events without work (storm accounting) */
	_Atomic uint64_t map_batches;       /* grant map round trips */
	_Atomic uint64_t copy_batches;      /* grant copy batches (in-process for dom0) */
	_Atomic uint64_t hv_copy_batches;   /* ... of which the hypervisor did some (--hypervisor-copies) */
	_Atomic uint64_t unmap_batches;     /* grant unmap round trips (both directions) */
	_Atomic uint64_t rx_stalls;         /* "Guest Rx stalled" episodes */
	_Atomic uint64_t credit_waits;      /* tx stopped for `rate` credit */
};

/* dom0's own I/O memory, where grant copies land (mapped once by the main
 * thread; pages handed out by its allocator, which is thread-safe). */
struct nb_own_mem {
	void *base;
	size_t npages;
	struct pv_pagealloc *pa;
};

struct nb_queue_cfg {
	struct nb_vif *vif;
	unsigned id;
	uint32_t domid;                /* frontend domain */
	grant_ref_t tx_ring_ref, rx_ring_ref;
	evtchn_port_t tx_evtchn, rx_evtchn;  /* equal: one shared channel */
	int tap_fd;                    /* this queue's TAP fd */
	struct nb_vif_caps caps;
	unsigned fatal_slots;
	const char *hv_path;           /* hypervisor socket (dom0) */
	/* Handles opened ahead (nb_vif_create), or NULL: the queue then opens
	 * its own. Owned by the queue from nb_queue_spawn on, even on failure. */
	struct pv_gnttab *gt;
	struct pv_evtchn *ec;
	const struct nb_own_mem *own;  /* for the small-packet copy path (NULL: maps only) */
	uint64_t credit_bytes, credit_usec;  /* `rate`; credit_usec 0 = unlimited */
	bool affinity;                 /* pin the thread: domid + devid + id (pv_pin_thread_index) */
	bool hv_copies;                /* every grant copy through the hypervisor (pv_gnttab_set_local) */
	/* Queue 0 of a frontend with a control ring (feature-ctrl-ring): its
	 * ring and channel, served by this queue's thread (netback/ctrlring.c). */
	bool ctrl;
	grant_ref_t ctrl_ring_ref;
	evtchn_port_t ctrl_evtchn;
	unsigned nqueues;              /* the vif's queues: what the hash table may name */
};

struct nb_queue;
struct pv_gnttab;
struct pv_evtchn;

int nb_queue_spawn(const struct nb_queue_cfg *cfg, struct nb_queue **out, char *err, size_t errlen);
int nb_queue_ready(struct nb_queue *q, char *err, size_t errlen);
/* Let a ready queue serve its rings. */
void nb_queue_go(struct nb_queue *q);
/* Stops and frees the queue; its final counters are copied to *final if
 * not NULL. */
void nb_queue_stop(struct nb_queue *q, struct nb_qstats *final);
const struct nb_qstats *nb_queue_stats(const struct nb_queue *q);
/* Change the rate limit live (the `rate` watch). */
void nb_queue_set_rate(struct nb_queue *q, uint64_t credit_bytes, uint64_t credit_usec);

#endif
