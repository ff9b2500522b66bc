/*
 * xsclient/xsc.h — a pipelining xenstore client for batches of requests.
 *
 * What: libxenstore sends one request and waits for its reply; a frontend
 * writing forty keys in a transaction pays forty round trips, and during a
 * migration every round trip is blackout. xsc sends a whole batch in one
 * write and then collects the replies, matched by req_id (the wire protocol
 * of xen/io/xs_wire.h allows it; pvnet-xenstored and C xenstored both answer
 * pipelined requests). xsc_transaction() wraps a batch in
 * TRANSACTION_START/END and retries it on EAGAIN. Only what batches need:
 * READ, WRITE, MKDIR, RM, DIRECTORY, SET_PERMS. Watches stay with libxenstore.
 * Every reply is treated as peer input: its length, type and req_id are
 * checked, and a bad reply ends the connection's use (-EPROTO).
 * Thread: one xsc per thread (no locking).
 * Errors: -errno for the call (transport, -ETIMEDOUT, -EPROTO, -EAGAIN);
 * per operation `err` holds the daemon's answer as a positive errno.
 * Ownership: results are malloc'd; free them with xsc_ops_free().
 */
#ifndef PVNET_XSCLIENT_XSC_H
#define PVNET_XSCLIENT_XSC_H

#include <stddef.h>
#include <stdint.h>

#include "common/xen.h"

struct xsc;

struct xsc_op {
	uint32_t type;        /* XS_READ, XS_WRITE, XS_MKDIR, XS_RM, XS_DIRECTORY, XS_SET_PERMS */
	const char *path;
	const void *value;    /* XS_WRITE: the value (not NUL-terminated);
			       * XS_SET_PERMS: "n7\0r0\0" (each permission NUL-terminated) */
	unsigned len;
	int err;              /* out: 0 or the daemon's error as a positive errno */
	char *result;         /* out (READ, DIRECTORY): malloc'd, NUL-terminated;
			       * DIRECTORY: names separated by NULs */
	unsigned rlen;        /* out: bytes of result (without the added NUL) */
};

/* Connect to a xenstored socket. NULL + errno on failure. */
struct xsc *xsc_open(const char *path);
/* Use an already connected stream socket (it becomes the xsc's). */
struct xsc *xsc_attach_fd(int fd);
void xsc_close(struct xsc *c);
/* Milliseconds a batch may take before -ETIMEDOUT (default 10000). */
void xsc_set_timeout(struct xsc *c, int ms);
/* For tests: the req_id of the next request (ids wrap past 2^32; reaching
 * the wrap by sending 2^32 requests would take hours). */
void xsc_set_next_req_id(struct xsc *c, uint32_t id);
uint32_t xsc_next_req_id(const struct xsc *c);

/* Send ops[0..n) in transaction `tx` (0 = none) in one go, then read every
 * reply. 0 if all replies arrived (look at each op's err), -errno if not. */
int xsc_batch(struct xsc *c, uint32_t tx, struct xsc_op *ops, unsigned n);
/* START, the batch, END(commit); retried from scratch on EAGAIN up to
 * max_tries times. 0, -EAGAIN when tries ran out, -<err> of the first op that
 * failed (the transaction is then aborted), or a transport error. */
int xsc_transaction(struct xsc *c, struct xsc_op *ops, unsigned n, unsigned max_tries);
void xsc_ops_free(struct xsc_op *ops, unsigned n);

/* Decode one reply (exposed for the fuzzer and tests): checks `hdr` against
 * the request it answers and fills `op`. 0, or -EPROTO. */
int xsc_decode_reply(const struct xsd_sockmsg *hdr, const uint8_t *payload, uint32_t want_type,
		     struct xsc_op *op);
/* Daemon error name -> positive errno (EINVAL for unknown names). */
int xsc_errno(const char *name, size_t len);

#endif
