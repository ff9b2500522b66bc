/*
 * xenstored/core.h — the protocol engine: connections, message framing,
 * the dispatch table, domains, watches and transactions per connection.
 *
 * No sockets and no file descriptors: the server (server.c) feeds bytes in
 * with xsd_conn_input() and takes bytes out with xsd_conn_output()/sent(),
 * and the core calls back through xsd_core_ops when a domain is introduced
 * or released or a connection gets output. The fuzzer drives it directly.
 * Thread: the daemon's loop thread only.
 * Errors: functions return 0 / counts, or -errno; wire errors go to the peer.
 * Ownership: the core owns connections created with xsd_conn_new until
 * xsd_conn_free(); the server frees them (also the dead ones of a released
 * domain, after the domain_gone callback).
 */
#ifndef PVNET_XENSTORED_CORE_H
#define PVNET_XENSTORED_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "xenstored/store.h"

struct xsd_config {
	struct xsd_limits lim;
	unsigned watches;       /* per unprivileged domain: 128 (E2BIG) */
	unsigned transactions;  /* per unprivileged connection: 10 (ENOSPC) */
	unsigned outstanding;   /* unsent replies at which a connection is not read: 20 */
	unsigned path_max;      /* 2048 */
	unsigned watch_events;  /* unsent watch events kept per connection: 1024 */
	unsigned conns;         /* connections per unprivileged domain: 64 */
};
#define XSD_CONFIG_DEFAULT { .lim = XSD_LIMITS_DEFAULT, .watches = 128, .transactions = 10, \
	.outstanding = 20, .path_max = 2048, .watch_events = 1024, .conns = 64 }

/* Unsent watch events are also dropped once a connection has this many
 * bytes of output queued. */
#define XSD_EVENT_BYTES_MAX (1u << 20)

struct xsd_core;
struct xsd_conn;

struct xsd_core_ops {
	/* A new domain was introduced: make its socket. 0 or -errno (-> EIO). */
	int (*domain_new)(void *arg, unsigned domid);
	/* A domain was released: its connections are dead; free them and
	 * remove its socket. Called from inside another connection's request. */
	void (*domain_gone)(void *arg, unsigned domid);
	/* Connection `c` has output and had none before. */
	void (*conn_output)(void *arg, struct xsd_conn *c);
};

struct xsd_core *xsd_core_new(const struct xsd_config *cfg, const struct xsd_core_ops *ops,
			      void *arg);
/* Every connection must have been freed. */
void xsd_core_free(struct xsd_core *core);
struct xsd_store *xsd_core_store(struct xsd_core *core);
struct xsd_config *xsd_core_config(struct xsd_core *core);

/* A connection acting as `domid` (privileged: the dom0 socket). NULL with
 * errno ENOMEM, or EMFILE when an unprivileged domain has `conns` already. */
struct xsd_conn *xsd_conn_new(struct xsd_core *core, unsigned domid, bool priv);
void xsd_conn_free(struct xsd_conn *c);
unsigned xsd_conn_domid(const struct xsd_conn *c);
void xsd_conn_set_user(struct xsd_conn *c, void *user);
void *xsd_conn_user(const struct xsd_conn *c);

/* Feed bytes from the peer; complete requests are handled at once. Returns
 * the bytes consumed (fewer than len once the connection is throttled), or
 * -EPROTO if the connection must be dropped (payload over 4096 bytes; every
 * later call says -EPROTO too), or -EPIPE if it is dead (its domain was
 * released). */
long xsd_conn_input(struct xsd_conn *c, const void *buf, size_t len);
/* Too many unsent replies: stop reading until output drains. */
bool xsd_conn_throttled(const struct xsd_conn *c);
bool xsd_conn_dead(const struct xsd_conn *c);

/* Pending output as up to `max` iovecs; returns their count. */
int xsd_conn_output(struct xsd_conn *c, struct iovec *iov, int max);
/* `n` bytes of the pending output were sent. */
void xsd_conn_sent(struct xsd_conn *c, size_t n);
size_t xsd_conn_pending(const struct xsd_conn *c);
/* Watch events dropped on this connection because it did not read. */
unsigned long xsd_conn_dropped(const struct xsd_conn *c);

#endif
