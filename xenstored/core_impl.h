/*
 * xenstored/core_impl.h — internals of the protocol engine shared by core.c
 * (framing, dispatch, handlers) and control.c (CONTROL commands).
 */
#ifndef PVNET_XENSTORED_CORE_IMPL_H
#define PVNET_XENSTORED_CORE_IMPL_H

#include <errno.h>

#include "common/xen.h"
#include "xenstored/core.h"
#include "xenstored/domtab.h"
#include "xenstored/path.h"
#include "xenstored/watch.h"

struct omsg {
	struct omsg *next;
	uint32_t len;    /* header + payload */
	uint32_t sent;
	bool event;
	uint8_t data[];
};

struct conn_tx {
	struct conn_tx *next;
	uint32_t id;
	struct xsd_txn *tx;
};

struct xsd_domain {
	unsigned domid;
	bool introduced;
	bool has_target;
	unsigned target;
	unsigned nwatches;
	unsigned ntx;             /* open transactions, all its connections */
	unsigned nconns;
	struct xsd_conn *conns;
};

struct xsd_conn {
	struct xsd_core *core;
	struct xsd_domain *dom;
	struct xsd_conn *dnext, *dprev;   /* the domain's connections */
	struct xsd_caller caller;
	uint64_t seq;                     /* creation order (watch event order) */
	void *user;
	bool dead;                        /* its domain was released */
	bool broken;                      /* protocol violation: input refused */
	/* input: header, then payload (plus a NUL guard) */
	uint8_t hdrbuf[sizeof(struct xsd_sockmsg)];
	struct xsd_sockmsg hdr;
	size_t have;
	char payload[XENSTORE_PAYLOAD_MAX + 1];
	/* output */
	struct omsg *out, **out_tail;
	size_t out_bytes;
	unsigned out_replies, out_events;
	unsigned long dropped;
	/* state */
	struct conn_tx *txs;
	unsigned ntx;
	uint32_t next_txid;
	struct xsd_watch *watches;
};

struct xsd_core {
	struct xsd_config cfg;
	struct xsd_store *st;
	struct xsd_watches watches;
	const struct xsd_core_ops *ops;
	void *arg;
	struct xsd_domtab doms;       /* struct xsd_domain * per domid */
	struct xsd_evlist ev;         /* scratch, reused per request */
	uint64_t conn_seq;
	char path[XSD_PATH_BUF];      /* scratch canonical path */
};

/* One request being handled. */
struct req {
	struct xsd_conn *c;
	struct xsd_sockmsg hdr;
	char *data;
	unsigned len;
	struct conn_tx *tx;
};

/* The domain record of `domid`, or NULL. */
struct xsd_domain *xsd_domain_find(struct xsd_core *core, unsigned domid);
/* Reply helpers (core.c): 0 or ENOMEM. */
int xsd_reply(struct req *r, const void *data, size_t len);
int xsd_reply_str(struct req *r, const char *s);
/* CONTROL (control.c). */
int xsd_do_control(struct req *r);
/* Split the payload into exactly `n` NUL-terminated strings, or EINVAL. */
int xsd_get_args(struct req *r, const char **vec, unsigned n);
/* Number of NUL-terminated strings in the payload (trailing bytes ignored). */
unsigned xsd_count_args(const struct req *r);

#endif
