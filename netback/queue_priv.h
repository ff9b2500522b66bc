/*
 * netback/queue_priv.h — the queue thread's state, shared by queue.c (thread,
 * events, set-up and teardown), tx.c (guest -> host) and rx.c (host -> guest).
 * Everything here belongs to the queue thread except `cfg` (immutable), the
 * stats (relaxed atomics) and the rate (atomics written by the main thread).
 */
#ifndef PVNET_NETBACK_QUEUE_PRIV_H
#define PVNET_NETBACK_QUEUE_PRIV_H

#include <pthread.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/loop.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/gnttab.h"
#include "netback/hash.h"
#include "netback/queue.h"
#include "netback/rxplan.h"
#include "netback/storm.h"
#include "netback/txparse.h"

#define NB_TX_BATCH 64u          /* packets per tx round (NAPI weight 64) */
#define NB_RX_BATCH 64u          /* frames per rx round (RX_BATCH_SIZE 64) */
#define NB_RX_SPILL (64u * 1024u + 4096u)
#define NB_RX_POLL_NS 1000000u   /* no feature-rx-notify: look for rx slots every 1 ms */
/* Guest transmit by grant copy: every data slot of a round is copied into a
 * page of its own of dom0 memory (a slot never crosses a page), so a round
 * takes at most this many slots (8 GSO frames of 16 slots); a queue that
 * cannot get that memory maps instead. */
#define NB_TX_COPY_PAGES 128u

/* One rx request of the mapped window [rx.req_cons, rx_mapped). */
struct nb_rx_slotmap {
	struct netif_rx_request req;  /* copied once from the ring */
	uint32_t handle;
	int16_t status;               /* GNTST_* of its mapping */
	uint8_t *page;                /* mapped page (status okay) */
};

struct nb_queue {
	struct nb_queue_cfg cfg;
	char name[32];                /* "vif5.0-q1" for logs */
	pthread_t thread;
	bool thread_started;
	int stop_efd;                 /* wakes the thread: stop, or go */
	_Atomic bool stop_flag;
	_Atomic bool go;              /* nb_queue_go: the rings may be served */

	/* set-up handshake with nb_queue_start */
	pthread_mutex_t init_lock;
	pthread_cond_t init_cond;
	bool init_done;
	int init_err;
	char init_msg[160];

	/* hypervisor handles (this thread's own) */
	struct pv_gnttab *gt;
	struct pv_evtchn *ec;
	int ec_watch;                 /* the loop watch the events come by: a tag watch
				       * (< -1, handle attached) or the handle's fd; -1 none */
	unsigned empty_wakes;         /* consecutive wake-ups without an event */
	evtchn_port_t tx_port, rx_port;   /* local ports; equal when shared */
	uint32_t tx_ring_handle, rx_ring_handle;
	bool tx_ring_mapped, rx_ring_mapped;
	netif_tx_back_ring_t tx;
	netif_rx_back_ring_t rx;
	struct pv_loop *loop;

	/* state */
	bool dead;        /* the domain went away: never touch its memory again */
	bool idle;        /* vif disabled: stop processing */
	bool tx_kick, rx_kick;
	bool tx_unmask_pending;  /* tx port left masked while the tx ring is busy (NAPI) */
	bool tap_readable;
	bool rx_blocked;  /* waiting for the frontend to post rx buffers */
	bool tap_watched;
	uint64_t rx_blocked_since;   /* start of the current wait for rx buffers (stall) */
	uint64_t rx_drain_since;     /* start of the current drain window */
	bool stalled;
	RING_IDX rx_seen_prod;       /* newest rx req_prod seen (event or load): spurious check */
	struct nb_storm storm_tx, storm_rx;
	struct nb_unmask { struct nb_queue *q; unsigned which; int64_t timer; } unmask[3];  /* tx, rx, ctrl */
	int64_t timer_rx, timer_credit;
	struct pv_ratelimit rl;

	/* tx credit scheduling (`rate`, Linux tx_credit_exceeded) */
	_Atomic uint64_t credit_bytes, credit_usec;
	_Atomic unsigned rate_gen;  /* bumped by nb_queue_set_rate */
	unsigned rate_seen;
	uint64_t remaining_credit, credit_window_start;
	bool rate_limited;

	/* tx scratch */
	struct netif_tx_request *tx_reqs;       /* [ring size] */
	struct nb_tx_pkt *tx_pkts;              /* [NB_TX_BATCH] */
	struct pv_gnttab_map_op *tx_ops;        /* [ring size] */
	struct pv_gnttab_copy_seg *tx_copy;     /* [NB_TX_COPY_PAGES] */
	uint16_t *tx_copy_off, *tx_copy_len;    /* [ring size]: each tx_ops[i]'s slot */
	uint8_t *copybuf;                       /* NB_TX_COPY_PAGES pages of dom0 memory (NULL: map) */
	int64_t copybuf_frame;
	uint8_t *rxbuf;                         /* NB_RX_MAX_SLOTS pages of dom0 memory (NULL: map) */
	int64_t rxbuf_frame;
	struct pv_gnttab_copy_seg rx_copy[NB_RX_MAX_SLOTS];
	char tx_fatal[128];                     /* found this round, reported at the flush */

	/* rx */
	struct nb_rx_layout rx_layout;          /* extras: GSO, if the frontend takes it */
	struct nb_rx_layout rx_layout_h;        /* ... and a HASH extra */
	const struct nb_rx_layout *rxl;         /* the one in use (rx_hashing) */
	struct nb_hash rx_hash;                 /* the vif's hash (control ring), copied */
	unsigned rx_hash_gen;
	bool rx_hashing;                        /* Toeplitz with types enabled: HASH extras */
	struct nb_rx_slotmap *rx_win;           /* [ring size], by index & mask */
	RING_IDX rx_mapped;                     /* end of the mapped window */
	struct pv_gnttab_map_op *rx_ops;

	/* The round's end (nb_q_flush): grants of both directions unmapped in
	 * one batch, then the responses of both rings pushed. */
	uint32_t *unmap;                        /* [2 x ring size] */
	int16_t *unmap_status;
	unsigned nunmap;
	bool tx_dirty, rx_dirty;                /* responses written, not yet pushed */
	uint8_t *spill;

	struct nb_ctrl *ctrl;                   /* the control ring (queue 0), or NULL */
	bool ctrl_failed;                       /* set-up failed at the control ring */
	bool ctrl_kick;                         /* control requests left for the next turn */

	struct nb_qstats st;
};

/* tx.c / rx.c: one bounded round; true if more work is already waiting.
 * A round writes its responses into the ring and queues its grants in
 * q->unmap; nb_q_flush() unmaps them and pushes (both directions at once). */
bool nb_tx_round(struct nb_queue *q);
bool nb_rx_round(struct nb_queue *q);
void nb_q_flush(struct nb_queue *q);
/* rx.c: unmap every rx buffer still held (teardown). */
void nb_rx_release(struct nb_queue *q);
/* rx.c: throw away what waits in the TAP (drain timeout). */
void nb_rx_drain(struct nb_queue *q);

/* ctrlring.c: the control ring of queue 0 (cfg.ctrl). Set-up maps and
 * binds it (0 or -errno, q->ctrl_failed set); nb_ctrl_event() answers what
 * the frontend queued, applies the hash to the TAP's steering before the
 * responses go, and says whether there was work; nb_ctrl_port() is the
 * local port (0: none); teardown detaches the steering and unmaps (before
 * the handles close). */
int nb_ctrl_setup(struct nb_queue *q);
bool nb_ctrl_event(struct nb_queue *q);
evtchn_port_t nb_ctrl_port(const struct nb_queue *q);
struct nb_storm *nb_ctrl_storm(struct nb_queue *q);
void nb_ctrl_teardown(struct nb_queue *q);

/* queue.c helpers for tx.c / rx.c */
void nb_q_fatal(struct nb_queue *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nb_q_tap_watch(struct nb_queue *q, bool on);
void nb_q_notify(struct nb_queue *q, evtchn_port_t port);
/* The domain's grants failed with GNTST_bad_domain: it is gone. */
void nb_q_domain_gone(struct nb_queue *q);
/* The same when the hypervisor has marked the domain ended (one load,
 * pv_gnttab_granter_gone): before every round and every push. */
void nb_q_check_gone(struct nb_queue *q);
/* Call after every grant-table call, before touching a ring or a mapped
 * page: the library applies a revocation (our views of a dead or moved
 * domain become PROT_NONE) before any of its calls returns, and leaves the
 * notice queued; this takes it and returns true if the domain is gone. */
bool nb_q_revoked(struct nb_queue *q);
/* One grant-copy batch of the queue's frontend (segs[0..n)): counted; a
 * failed call is fatal; a batch the hypervisor did (not all in this process)
 * may have applied a revocation of our views, checked then (nb_q_revoked).
 * false if the queue must stop. */
bool nb_q_copy(struct nb_queue *q, unsigned n, struct pv_gnttab_copy_seg *segs);

static inline void nb_stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline void nb_stat_frame(struct nb_dir_stats *d, uint64_t bytes, uint64_t now)
{
	nb_stat_add(&d->packets, 1);
	nb_stat_add(&d->bytes, bytes);
	if (atomic_load_explicit(&d->first_ns, memory_order_relaxed) == 0)
		atomic_store_explicit(&d->first_ns, now, memory_order_relaxed);
	atomic_store_explicit(&d->last_ns, now, memory_order_relaxed);
}

#endif
