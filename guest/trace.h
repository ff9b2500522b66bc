/*
 * guest/trace.h — the guest runtime's named trace events.
 *
 * What: one record per lifecycle step of the field notes (probe,
 * backend_changed, connect, switch_state, notify_peers, open, close, suspend,
 * resume, disconnect_backend, device_detach/attach, netif_tx_start/stop/
 * wake_queue per tx-N) plus broken and remove. Records go into a bounded
 * in-memory ring (oldest dropped first) and, optionally, to a file. Three
 * renderings of a record:
 *   GR_TRACE_KLOG  the kernel-log style of the field notes,
 *                  "[  445.195381] xen_netfront: netif_tx_start_queue() eth0, tx-0"
 *                  (time since the runtime started);
 *   GR_TRACE_JSON  one JSON object per line;
 *   GR_TRACE_NORM  "name arg arg..." without time, for golden comparisons.
 * Thread: every function may be called from any thread (one mutex inside).
 * Errors: int functions return 0 / count or -errno; emitting never fails the
 * caller (a failed file write is dropped).
 * Ownership: the caller owns the gr_trace; records are copied in and out.
 */
#ifndef PVNET_GUEST_TRACE_H
#define PVNET_GUEST_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gr_ev {
	GR_EV_PROBE = 0,
	GR_EV_BACKEND_CHANGED,   /* state = backend state, state2 = our state */
	GR_EV_CONNECT,
	GR_EV_SWITCH_STATE,      /* state = new frontend state */
	GR_EV_NOTIFY_PEERS,      /* text = what was announced */
	GR_EV_OPEN,              /* how */
	GR_EV_CLOSE,             /* how */
	GR_EV_SUSPEND,
	GR_EV_RESUME,
	GR_EV_DISCONNECT_BACKEND,
	GR_EV_DEVICE_DETACH,
	GR_EV_DEVICE_ATTACH,
	GR_EV_TX_START_QUEUE,    /* queue */
	GR_EV_TX_STOP_QUEUE,     /* queue */
	GR_EV_TX_WAKE_QUEUE,     /* queue */
	GR_EV_BROKEN,            /* text = reason */
	GR_EV_REMOVE,
	GR_EV__COUNT
};

/* How an interface went up or down (open/close). */
enum gr_how { GR_HOW_UNKNOWN = 0, GR_HOW_NETLINK, GR_HOW_IOCTL };

enum gr_trace_fmt { GR_TRACE_KLOG = 0, GR_TRACE_JSON, GR_TRACE_NORM };

#define GR_TRACE_TEXT 96

struct gr_trace_rec {
	uint64_t seq;            /* filled by gr_trace_emit: 1, 2, ... */
	uint64_t t_ns;           /* filled by gr_trace_emit: since gr_trace_new */
	enum gr_ev ev;
	int queue;               /* tx-N for queue events, else -1 */
	int state, state2;       /* XenbusState values, -1 if unused */
	enum gr_how how;
	char node[32];           /* xenbus node, e.g. "device/vif/0" */
	char ifname[16];         /* "eth0", or "" before the netdev exists */
	char text[GR_TRACE_TEXT];
};

struct gr_trace;

/* capacity: records kept in memory (>= 16). NULL + errno on failure. */
struct gr_trace *gr_trace_new(unsigned capacity);
void gr_trace_free(struct gr_trace *t);
/* Also append every record, rendered in `fmt`, to `path`. 0 or -errno. */
int gr_trace_set_file(struct gr_trace *t, const char *path, enum gr_trace_fmt fmt);
/* Also pass every rendered klog line to pv_log at debug level. */
void gr_trace_set_log(struct gr_trace *t, int on);

/* Stamp (seq, time) and store a copy of `r`. */
void gr_trace_emit(struct gr_trace *t, struct gr_trace_rec *r);
/* Convenience: start a record with the common fields (queue/state = -1). */
void gr_trace_rec_init(struct gr_trace_rec *r, enum gr_ev ev, const char *node,
		       const char *ifname);

/* Copy the kept records with seq > after_seq, oldest first, at most max.
 * Returns how many were copied. */
unsigned gr_trace_snapshot(struct gr_trace *t, uint64_t after_seq,
			   struct gr_trace_rec *out, unsigned max);
/* Number of records emitted so far (the last seq). */
uint64_t gr_trace_last_seq(struct gr_trace *t);
/* Records that fell out of the ring. */
uint64_t gr_trace_dropped(struct gr_trace *t);

/* Render one record as one line with its trailing '\n' (truncated to fit).
 * Returns the length written (excluding the NUL). */
size_t gr_trace_render(const struct gr_trace_rec *r, enum gr_trace_fmt fmt,
		       char *buf, size_t len);

/* False for records a golden comparison ignores: backend_changed events with
 * a backend state netfront does nothing about (Initialising, Initialised,
 * Reconfiguring, Reconfigured, Unknown), whose presence depends on how fast
 * the backend probes. */
bool gr_trace_norm_keep(const struct gr_trace_rec *r);

const char *gr_ev_name(enum gr_ev ev);
const char *gr_how_name(enum gr_how how);
/* "Initialising", "InitWait", ... ("Unknown" for out-of-range values). */
const char *gr_xenbus_state_name(int state);

#endif
