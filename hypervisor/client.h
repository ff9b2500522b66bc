/*
 * hypervisor/client.h — one connection to pvnet-hypervisor, shared by the
 * pv_hv, pv_gnttab and pv_evtchn handles. Private to the client library.
 *
 * What: connect to a socket (its path decides which domain we are), HELLO
 * (domid, limits, the notice socket), then synchronous calls: one request,
 * one reply (with its fds). Notices: every reply says the seq of the newest
 * notice queued for us; hvc_sync() fetches the ones we have not seen and
 * hands each to the owner's `apply` callback (the gnttab handle revokes views
 * there) — by peeking (they stay queued for the user's poll) or, for owners
 * whose user never polls, by consuming them.
 * Thread: a connection is used by one thread at a time.
 * Errors: -errno; a dead socket gives -ECONNRESET, a reply that does not
 * match its request -EPROTO.
 * Ownership: fds received by hvc_call() belong to the caller.
 */
#ifndef PVNET_HYPERVISOR_CLIENT_H
#define PVNET_HYPERVISOR_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hypervisor/proto.h"

struct hvc {
	int fd;
	int notice_fd;
	uint32_t domid, state, max_port, mem_pages;
	uint32_t seq;
	uint32_t seen;          /* newest notice seq handed to `apply` */
	uint32_t latest;        /* newest notice seq a reply announced */
	bool consume;           /* hvc_sync() consumes instead of peeking */
	void (*apply)(void *owner, const struct hvp_notice *n);
	void *owner;
	/* the last reply */
	struct hvp_hdr rep;
	const uint8_t *rep_payload;
	size_t rep_len;
	int fds[HVP_MAX_VIEWS];
	unsigned nfds;
	union {
		struct hvp_hdr hdr;
		uint8_t bytes[HVP_MAX_MSG + 64];
	} buf;
};

struct hvc_req {
	uint16_t op;
	uint32_t count;
	uint32_t arg[2];
	const void *payload;
	size_t len;
	int fd;                 /* one fd to pass, or -1 */
};

/* path NULL: $PVNET_HYPERVISOR. `want`: HVP_WANT_* for HELLO. */
int hvc_open(struct hvc *c, const char *path, uint32_t want);
void hvc_close(struct hvc *c);
/* Send `rq`, wait for its reply (c->rep, c->rep_payload/len, c->fds/nfds:
 * the caller takes or closes the fds). Returns rep.ret, or -errno if the
 * call itself failed. */
int hvc_call(struct hvc *c, const struct hvc_req *rq);
/* Close fds of the last reply that nobody took. */
void hvc_drop_fds(struct hvc *c);
/* Apply notices announced by replies and not yet seen. 0 or -errno. */
int hvc_sync(struct hvc *c);
/* Consume up to `max` queued notices (applying each); returns how many. */
int hvc_poll_notices(struct hvc *c, struct pv_notice *out, unsigned max);
/* The socket path to use for `path` (NULL: the environment), or NULL. */
const char *hvc_path(const char *path);

#endif
