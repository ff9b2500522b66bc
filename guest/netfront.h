/*
 * guest/netfront.h — the netfront device: Linux xen-netfront's lifecycle.
 *
 * What: one struct nf_dev per device/vif/<handle>. The lifecycle functions
 * (nf_probe, nf_backend_changed, nf_connect, nf_resume, nf_open, nf_close,
 * nf_remove) follow Linux function by function (docs/guest.md) and emit the
 * trace events of the field notes. They reach the outside world only through
 * struct nf_ops (xenstore, rings/grants/channels, the TAP netdev), so the
 * whole state machine runs in unit tests with recording fakes.
 *
 * Two modes: NF_MODE_FIXED (Linux v5.15+, commit 042b2046d0f0: detach the
 * device before tearing the rings down on resume, attach it when reconnected)
 * and NF_MODE_LINUX_5_13 (the field notes' ordering: no queue stop/start/wake
 * across migration). In both modes a transmit that reaches a netfront queue
 * while it is torn down or rebuilt (nf_xmit_begin) is detected, counted in
 * `race` and dropped, never run against stale rings.
 *
 * Threads and locks (docs/guest.md has the full picture):
 *  - the main thread ("xenwatch") runs every lifecycle function;
 *  - one data thread per tx queue ("softirq/NAPI" of that queue) transmits
 *    from TAP queue N and polls netfront queue N; it calls nf_xmit_begin with
 *    txq[N].xmit_lock held, and takes queue->tx_lock / rx_lock;
 *  - the control thread reads counters (atomics) and state under dev->lock.
 *  Lock order: txq.xmit_lock (ascending index) -> queue.tx_lock -> queue.rx_lock
 *  -> dev->lock. Flags read by data threads are atomics.
 * Errors: -errno. Nothing here exits or aborts on peer input.
 * Ownership: the bus (xenbus.c) owns the nf_dev; nf_dev_free() after
 * nf_remove().
 */
#ifndef PVNET_GUEST_NETFRONT_H
#define PVNET_GUEST_NETFRONT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/xen.h"
#include "guest/nf_ring.h"
#include "guest/trace.h"
#include "netif/offload.h"
#include "netif/tap.h"

#define NF_MAX_QUEUES NIF_TAP_MAX_QUEUES   /* 16 */
#define NF_DEFAULT_MAX_QUEUES 8            /* MAX_QUEUES_DEFAULT (v4.11, 034702a64a66) */

enum nf_mode { NF_MODE_FIXED = 0, NF_MODE_LINUX_5_13 = 1 };

/* Per-queue counters: written by the queue's data thread (or the main thread
 * while the queue is down), read by anyone. */
struct nf_qstats {
	_Atomic uint64_t tx_packets, tx_bytes, tx_dropped, tx_errors;
	_Atomic uint64_t rx_packets, rx_bytes, rx_dropped, rx_errors;
	_Atomic uint64_t tx_reposted;      /* re-posted after a move (fixed mode) */
	_Atomic uint64_t tx_race;          /* transmits that hit this queue index in the window */
	_Atomic uint64_t events, spurious_events;
	_Atomic uint64_t rx_gso_checksum_fixup;
	_Atomic uint64_t tx_announce;      /* announcement frames sent ahead after a move */
};

/* A frame waiting to be transmitted ahead of the TAP (re-posted frames after
 * a move, frames drained from detached TAP queues). */
struct nf_txbuf {
	struct nf_txbuf *next;
	struct nif_offload o;
	uint32_t len;
	bool replay;                       /* counts as tx_reposted when sent */
	bool announce;                     /* an announcement sent ahead (holds the gate) */
	uint8_t data[];
};

struct nf_dev;

/* netfront_queue: rings, grants, event channels of one queue. The slots are
 * part of the device and never freed while it exists; "destroy and create"
 * re-initialises them, so a racing data thread never touches freed memory. */
struct nf_queue {
	struct nf_dev *dev;
	unsigned id;
	pthread_mutex_t tx_lock;           /* tx ring, tx ids, backlog */
	pthread_mutex_t rx_lock;           /* rx ring, event channel handle */
	/* Under both locks (readers hold either): */
	bool live;                         /* rings and channels set up */
	bool stale;                        /* after a move: grants and channels are void */
	uint64_t gen;                      /* bumped by every setup */
	/* tx */
	netif_tx_front_ring_t tx;
	struct nf_txbook txb;
	grant_ref_t tx_ring_ref;
	grant_ref_t grant_tx_ref[NF_TX_RING_SIZE];
	uint8_t *tx_page[NF_TX_RING_SIZE];
	uint32_t tx_frame[NF_TX_RING_SIZE];
	struct nf_txbuf *backlog, *backlog_tail;
	unsigned backlog_len;
	/* rx */
	netif_rx_front_ring_t rx;
	grant_ref_t rx_ring_ref;
	grant_ref_t grant_rx_ref[NF_RX_RING_SIZE];
	uint8_t *rx_page[NF_RX_RING_SIZE];
	uint32_t rx_frame[NF_RX_RING_SIZE];
	/* channels: one handle per queue, used by its data thread */
	void *ec;                          /* struct pv_evtchn * (nf_data.c) */
	evtchn_port_t tx_evtchn, rx_evtchn;
	void *hvctx;                       /* struct gr_hvctx * the grants were made with */
	/* announcements sent ahead (tx_lock): ids awaiting their response */
	uint8_t ann_id[NF_TX_RING_SIZE];
	unsigned ann_pending;
	/* event storm detection (data thread only) */
	uint64_t storm_window_start;
	unsigned storm_events, storm_spurious;
	struct nf_qstats st;
};

/* netdev_queue: one per TAP queue (num_tx_queues), for the device's life. */
struct nf_txq {
	pthread_mutex_t xmit_lock;         /* HARD_TX_LOCK / netif_tx_lock */
	atomic_bool stopped;               /* __QUEUE_STATE_DRV_XOFF */
	void *thread;                      /* data thread (nf_data.c) */
};

struct nf_features {                   /* read from the backend at connect */
	bool rx_copy, sg, gso_tcpv4, gso_tcpv6, ipv6_csum, split_evtchn, xdp_headroom;
	bool have_max_queues;
	unsigned backend_max_queues;
	bool trusted;                      /* frontend `trusted` (default 1) */
};

struct nf_params {
	unsigned max_queues;               /* xennet_max_queues (1..NF_MAX_QUEUES) */
	enum nf_mode mode;
	bool announce_first;               /* fixed mode: announce ahead of the queued frames */
	char ifname[16];                   /* name of the netdev ("eth0") */
};

struct nf_kv {
	char key[48];
	char value[24];
};

/* One key of a batched read. */
struct nf_rkey {
	bool backend;                      /* of the backend dir, else the frontend's */
	const char *key;
	char buf[32];                      /* out: the value (truncation is -E2BIG) */
	int r;                             /* out: length or -errno (-ENOENT if absent) */
};
#define NF_RKEYS_MAX 16

struct nf_ops {
	/* xenbus: read a key of the frontend (backend=false) or backend dir.
	 * -ENOENT if absent. */
	int (*read)(void *env, struct nf_dev *d, bool backend, const char *key, char *buf, size_t len);
	/* Optional: read k[0..n) in one round trip; each k[i].r says how its
	 * read went. Without it, read() is called per key. */
	int (*read_keys)(void *env, struct nf_dev *d, struct nf_rkey *k, unsigned n);
	/* Write a key of the frontend dir, outside any transaction. */
	int (*write)(void *env, struct nf_dev *d, const char *key, const char *value);
	/* Write keys of the frontend dir in one transaction (retry on EAGAIN). */
	int (*write_txn)(void *env, struct nf_dev *d, const struct nf_kv *kv, unsigned n);
	/* xenbus_dev_fatal: record the error and switch to Closing. */
	void (*fatal)(void *env, struct nf_dev *d, int err, const char *msg);
	/* setup_netfront: ring pages, grants, one or two event channels. On
	 * failure everything it did is undone. */
	int (*queue_setup)(void *env, struct nf_queue *q, bool split);
	/* Release what setup made (called with the queue's locks held and
	 * q->live already false). */
	void (*queue_teardown)(void *env, struct nf_queue *q);
	/* After carrier on: notify the backend and post rx buffers. */
	void (*queue_start)(void *env, struct nf_queue *q);
	/* register_netdev: create the TAP (num_tx_queues queues) with `mac`. */
	int (*netdev_register)(void *env, struct nf_dev *d, const uint8_t mac[6]);
	void (*netdev_unregister)(void *env, struct nf_dev *d);
	/* netdev_update_features: TAP offloads and MTU from the features. */
	int (*netdev_update)(void *env, struct nf_dev *d);
	int (*netdev_carrier)(void *env, struct nf_dev *d, bool on);
	/* Mirror n active queues on the TAP: drain the TAP queues >= n into
	 * backlogs and detach them, attach the ones < n. Called with every
	 * txq.xmit_lock held. */
	int (*netdev_set_queues)(void *env, struct nf_dev *d, unsigned n);
	/* A txq's state changed: its data thread should look again. */
	void (*kick)(void *env, struct nf_dev *d, unsigned txq);
	/* netdev_notify_peers: GARP + unsolicited NA (repeated by the env).
	 * Writes a short summary of what it sent. */
	void (*notify_peers)(void *env, struct nf_dev *d, char *summary, size_t len);
	/* Optional: the frames of one announcement round (GARP + unsolicited
	 * NA for eth0's addresses) as a txbuf list, each marked `announce`;
	 * NULL if there is none. */
	struct nf_txbuf *(*announce_frames)(void *env, struct nf_dev *d);
};

struct nf_dev {
	/* xenbus_device */
	char nodename[32];                 /* "device/vif/0" (relative) */
	char otherend[128];                /* backend dir */
	uint32_t otherend_id;
	unsigned handle;
	int state;                         /* our XenbusState (main thread) */
	int backend_state;                 /* last seen */
	bool probing;                      /* waiting for the backend to leave Closed/Unknown */
	bool backend_seen;                 /* backend was live in this incarnation */

	struct nf_params p;
	const struct nf_ops *ops;
	void *env;
	struct gr_trace *trace;

	pthread_mutex_t lock;              /* for readers of the fields below */
	struct nf_features feat;
	uint8_t mac[6];
	bool registered;                   /* the netdev (TAP) exists */
	atomic_bool running;               /* IFF_UP as netfront saw it (open/close) */
	atomic_bool present;               /* __LINK_STATE_PRESENT (detach/attach) */
	atomic_bool carrier;
	atomic_bool broken;
	char broken_reason[96];
	atomic_bool resetting;             /* resume's disconnect .. end of reconnect */
	_Atomic unsigned num_queues;       /* real_num_tx_queues (netfront queues) */
	_Atomic unsigned tap_queues;       /* TAP queues attached */
	bool queues_created;               /* info->queues != NULL */
	char last_error[96];
	_Atomic uint64_t race;             /* the v5.13 race counter */
	_Atomic uint64_t resumes, connects;

	struct nif_tap tap;
	unsigned num_txq;                  /* num_tx_queues = p.max_queues */
	struct nf_txq txq[NF_MAX_QUEUES];
	struct nf_queue queues[NF_MAX_QUEUES];
	struct nf_txbuf *replay;           /* frames to re-post after a move */
	bool moved;                        /* resumed, not yet reconnected */
	/* The announcement gate (fixed mode, after a move): while set, only
	 * queue 0, whose ring starts with the announcement, transmits; it
	 * opens when the backend answered the announcement, at the deadline,
	 * or when the device disconnects. */
	atomic_bool ann_gate;
	_Atomic uint64_t ann_shut_ns;      /* when the gate was shut (deadline: + NF_ANNOUNCE_GATE_NS) */
	_Atomic uint64_t ann_gate_ns;      /* how long the last gate was shut */
};

#define NF_ANNOUNCE_GATE_NS 1000000000ull  /* 1 s: a backend that never answers */

/* Allocate a device for `nodename` (handle parsed by the caller). */
struct nf_dev *nf_dev_new(const char *nodename, unsigned handle, const struct nf_params *p,
			  const struct nf_ops *ops, void *env, struct gr_trace *trace);
void nf_dev_free(struct nf_dev *d);

/* netfront_probe: carrier off, Initialising, wait for the backend. */
int nf_probe(struct nf_dev *d);
/* netback_changed (the otherend watch fired with `state`). */
void nf_backend_changed(struct nf_dev *d, int state);
/* xennet_connect; 0 on success. */
int nf_connect(struct nf_dev *d);
/* netfront_resume (called by the bus after xenbus_dev_resume re-read the
 * backend and set the in-memory state to Initialising). */
int nf_resume(struct nf_dev *d);
/* The frontend's hypervisor context changed under it (a move): every live
 * queue's grants and channels are void. Data threads are frozen. */
void nf_mark_stale(struct nf_dev *d);
/* xennet_open / xennet_close: eth0 went up / down. */
void nf_open(struct nf_dev *d, enum gr_how how);
void nf_close(struct nf_dev *d, enum gr_how how);
/* xennet_remove, after the bus close handshake: disconnect, unregister. */
void nf_remove(struct nf_dev *d);
/* "Disabled for further use": any thread; the first reason sticks. */
void nf_mark_broken(struct nf_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* xenbus_switch_state: write and trace if it changes. */
int nf_switch_state(struct nf_dev *d, int state);

/* ---- transmit entry (data threads) ------------------------------------- */

enum nf_xmit_verdict {
	NF_XMIT_OK,       /* transmit on *q (its tx_lock is held) */
	NF_XMIT_STOPPED,  /* txq stopped or TAP queue detached: don't dequeue */
	NF_XMIT_RACE,     /* queue torn down / rebuilt: dequeue, drop, nf_xmit_race() */
	NF_XMIT_DROP,     /* carrier off or broken: dequeue and drop (Linux drops) */
	NF_XMIT_FULL,     /* not enough ring slots: wait for tx completions */
};
/* Called by txq `txq`'s data thread with txq.xmit_lock held. */
enum nf_xmit_verdict nf_xmit_begin(struct nf_dev *d, unsigned txq, struct nf_queue **q);
/* A frame dequeued after NF_XMIT_RACE was dropped. */
void nf_xmit_race(struct nf_dev *d, unsigned txq);

/* Every txq.xmit_lock, ascending (netif_tx_lock). */
void nf_tx_lock_all(struct nf_dev *d);
void nf_tx_unlock_all(struct nf_dev *d);

/* Open the announcement gate (any thread) and kick the held queues;
 * `why` is logged when not NULL. */
void nf_announce_release(struct nf_dev *d, const char *why);

/* Free a txbuf list. */
void nf_txbuf_free_list(struct nf_txbuf *b);

/* ---- pure helpers (nf_keys.c) ------------------------------------------ */

/* Parse "xx:xx:xx:xx:xx:xx". 0 or -EINVAL. */
int nf_parse_mac(const char *s, uint8_t mac[6]);
/* xenbus_read_unsigned: the value, or `def` if absent or malformed. */
unsigned nf_parse_unsigned(const char *s, unsigned def);
/* The keys talk_to_netback writes in its transaction, in Linux's order.
 * Returns the count (<= max) or -ENOSPC. */
int nf_build_keys(const struct nf_dev *d, unsigned nqueues, struct nf_kv *kv, unsigned max);

#endif
