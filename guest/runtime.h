/*
 * guest/runtime.h — the guest runtime ("a small guest kernel"): options, the
 * hypervisor context, the freezer, and the pieces that implement netfront's
 * struct nf_ops.
 *
 * What: struct gr_rt ties together the xenbus frontend bus (xenbus.c), the
 * hypervisor context (grant table, memory; replaced by a move), the data
 * threads (nf_data.c), the TAP netdev side (nf_tap.c) and the control socket
 * (control.c).
 * Threads:
 *  - main thread: the event loop (xenstore watches, link monitor, signals,
 *    timers); runs every xenbus/netfront lifecycle step and the suspend call
 *    ("xenwatch" and "stop_machine" at once);
 *  - data threads: one per tx queue of each netdev (nf_data.c);
 *  - control thread: answers the control socket (control.c).
 * The freezer parks every data thread at a safe point (no lock held):
 * gr_freeze() returns once all are parked; gr_thaw() lets them go.
 * Errors: -errno. Ownership: main() owns the gr_rt.
 */
#ifndef PVNET_GUEST_RUNTIME_H
#define PVNET_GUEST_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/loop.h"
#include "hypervisor/hv.h"
#include "guest/netfront.h"
#include "guest/trace.h"

struct xs_handle;
struct xsc;
struct pv_hv;
struct pv_gntshr;
struct pv_pagealloc;
struct gr_ifwatch;

struct gr_opts {
	const char *xenstore_path;     /* this domain's xenstore socket */
	const char *hypervisor_path;   /* this domain's hypervisor socket */
	const char *netns;             /* /run/netns/<name>, or NULL: stay */
	const char *control_path;      /* control socket, or NULL */
	const char *trace_file;
	enum gr_trace_fmt trace_file_fmt;
	unsigned trace_capacity;
	unsigned max_queues;           /* xennet_max_queues */
	enum nf_mode mode;
	unsigned notify_count;         /* announcement rounds per netdev_notify_peers */
	unsigned notify_interval_ms;
	unsigned connect_timeout_ms;   /* 0: wait forever (Linux) */
	unsigned txqueuelen;
	bool no_announce_first;        /* announce only on backend Connected, as Linux */
	bool no_affinity;              /* leave data threads to the scheduler (default: pinned, nf_data.c) */
};

/* The grant table and memory of one incarnation of the domain. */
struct gr_hvctx {
	struct pv_hv *hv;
	struct pv_gntshr *gs;
	char path[256];
	uint32_t domid;
};

struct gr_dev;   /* a bus device (xenbus.c) */

struct gr_rt {
	struct gr_opts o;
	struct pv_loop *loop;
	struct gr_trace *trace;
	struct gr_ifwatch *ifw;
	int sigfd;

	/* xenstore (main thread only) */
	struct xs_handle *xs;
	struct xsc *xsc;               /* pipelined batches, or NULL */
	struct xs_handle *old_xs;      /* the old host's, closed soon after a move */
	struct xsc *old_xsc;
	int64_t old_xs_timer;
	char xs_path[256];
	bool xs_suspended;

	/* hypervisor: the current context; queues keep the one they used */
	struct gr_hvctx *hvc;
	void *mem_base;
	size_t mem_pages;
	struct pv_mem_id mem_id;       /* which memory object is mapped at mem_base */
	struct pv_pagealloc *pa;

	/* devices: the list changes on the main thread under devs_lock */
	pthread_mutex_t devs_lock;
	struct gr_dev *devs;

	/* freezer */
	pthread_mutex_t fz_lock;
	pthread_cond_t fz_cond;
	atomic_bool freezing;
	unsigned fz_parked, fz_threads;

	/* announcement repeats waiting on a timer (nf_tap.c) */
	struct gr_announce_more *announces;

	/* counters for `state` */
	_Atomic uint64_t suspends, suspends_cancelled, moves;
	uint64_t t0;                   /* CLOCK_MONOTONIC at start */
	bool stopping;
	int exit_code;
	unsigned shutdown_reason;      /* SHUTDOWN_* once a shutdown began */
};

/* ---- hypervisor context (hvctx.c) ---------------------------------------- */
struct gr_hvctx *gr_hvctx_open(const char *path);
void gr_hvctx_close(struct gr_hvctx *c);
/* Map the domain's memory (at `at` after a move) and set up the allocator. */
int gr_memory_map(struct gr_rt *rt, struct gr_hvctx *c);

/* ---- freezer (nf_data.c) --------------------------------------------------- */
void gr_freeze(struct gr_rt *rt);
void gr_thaw(struct gr_rt *rt);

/* ---- nf_ops pieces ---------------------------------------------------------- */
/* nf_data.c: rings, grants, channels, data threads */
int nfd_queue_setup(void *env, struct nf_queue *q, bool split);
void nfd_queue_teardown(void *env, struct nf_queue *q);
void nfd_queue_start(void *env, struct nf_queue *q);
void nfd_kick(void *env, struct nf_dev *d, unsigned txq);
int nfd_threads_start(struct gr_rt *rt, struct nf_dev *d);
void nfd_threads_stop(struct gr_rt *rt, struct nf_dev *d);
/* nf_tap.c: the netdev */
int nft_register(void *env, struct nf_dev *d, const uint8_t mac[6]);
void nft_unregister(void *env, struct nf_dev *d);
int nft_update(void *env, struct nf_dev *d);
int nft_carrier(void *env, struct nf_dev *d, bool on);
int nft_set_queues(void *env, struct nf_dev *d, unsigned n);
void nft_notify_peers(void *env, struct nf_dev *d, char *summary, size_t len);
struct nf_txbuf *nft_announce_frames(void *env, struct nf_dev *d);

/* The ops netfront runs on in this runtime (xenbus.c). */
extern const struct nf_ops gr_nf_ops;

/* ---- bus (xenbus.c) --------------------------------------------------------- */
int gr_bus_start(struct gr_rt *rt);
void gr_bus_stop(struct gr_rt *rt);
/* eth<handle> went up or down (from the link monitor). */
void gr_bus_link_changed(struct gr_rt *rt, int ifindex, bool up, enum gr_how how);

/* Iterate the devices' netfronts (control thread): holds devs_lock. */
void gr_bus_foreach(struct gr_rt *rt, void (*fn)(void *arg, struct nf_dev *d), void *arg);

/* ---- control socket (control.c) --------------------------------------------- */
struct gr_control;
struct gr_control *gr_control_start(struct gr_rt *rt, const char *path);
void gr_control_stop(struct gr_control *c);
/* Render a command's answer into a malloc'd string (also used by tests). */
char *gr_control_answer(struct gr_rt *rt, const char *cmd);

#endif
