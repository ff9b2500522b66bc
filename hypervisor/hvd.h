/*
 * hypervisor/hvd.h — inside pvnet-hypervisor: domains, connections, dispatch.
 *
 * What: struct hvd is one hypervisor (one host). Domains (domain.c) own their
 * I/O memory and grant table (sealed memfds the daemon also maps), their
 * event-channel ports and their per-domain socket. Connections (server.c)
 * act as the domain whose socket they came through; each owns its mapping
 * handles (a maptrack), the memory views it was given, its event-channel
 * ports and a queue of notices. dispatch.c decodes one request and runs it.
 * With opts.rundir == NULL no socket is created (the fuzz target drives
 * hvd_dispatch() on connections made by hvd_conn_new(h, dom, -1)).
 * Thread: everything runs on the loop thread.
 * Errors: 0 / >= 0 or -errno; peer mistakes are answered, never fatal.
 * Ownership: the hvd owns every domain and connection; hvd_free() releases
 * them all (connections closed, sockets unlinked).
 */
#ifndef PVNET_HYPERVISOR_HVD_H
#define PVNET_HYPERVISOR_HVD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "common/loop.h"
#include "hypervisor/evtchn_core.h"
#include "hypervisor/gnttab_core.h"
#include "hypervisor/hv.h"
#include "hypervisor/proto.h"

/* Defaults, documented in docs/hypervisor.md and --help. */
#define HVD_DEF_MEM_PAGES     16384u   /* 64 MiB of guest I/O memory */
#define HVD_DEF_GRANT_FRAMES  64u      /* Xen 4.17 gnttab_max_frames */
#define HVD_DEF_MAX_MAPTRACK  262144u  /* Xen 4.17: 1024 maptrack frames x 256 */
#define HVD_DEF_MAX_PORTS     1023u    /* libxl's default max_event_channels */
#define HVD_DEF_DOM0_PORTS    4095u    /* the 2-level ABI limit on x86-64 */
#define HVD_MAX_MEM_PAGES     (1u << 20)   /* 4 GiB per domain */
#define HVD_MAX_GRANT_FRAMES  HVP_MAX_GRANT_FRAMES
#define HVD_MAX_PORTS         HVP_MAX_PORT /* the FIFO ABI limit */
#define HVD_MAX_MAPTRACK      (1u << 22)
#define HVD_MAX_NOTICES       4096u        /* queued per connection */
#define HVD_MAX_CONNS_DOMU    64u          /* connections per unprivileged domain */

struct hvd_opts {
	const char *rundir;        /* NULL: no sockets */
	uint32_t mem_pages;
	uint32_t dom0_mem_pages;
	uint32_t grant_frames;
	uint32_t max_maptrack;
	uint32_t max_ports;
	uint32_t dom0_max_ports;
};

struct hvd_conn;

struct hvd_domain {
	struct hvd *h;
	uint32_t domid;
	uint32_t incarnation;      /* unique per created domain in this daemon */
	enum pv_domain_state state;
	unsigned shutdown_reason;
	char name[64];
	uint32_t max_maptrack;
	uint32_t mappings_held;
	uint32_t maptrack_cap;     /* entries allocated in its connections' tables */
	int memfd;                 /* -1: none (incoming, moved) */
	int gtfd;                  /* -1: no grant table (moved) */
	int statefd;               /* gt.st's memfd, shared with dom0 (GT_ATTACH) */
	struct hvd_gt gt;          /* gt.mem/gt.mem_pages describe the memory */
	struct hvd_evtchn ec;
	int listen_fd;             /* per-domain socket; -1 for dom0 / no rundir */
	char *sock_path;
	struct hvd_conn *suspender;   /* blocked in HVP_SUSPEND */
	unsigned nconns;
};

struct hvd_conn {
	struct hvd *h;
	struct hvd_domain *dom;
	int fd;                    /* socket; -1 for connections made by the fuzzer */
	/* Notices pending: a datagram socketpair made at HELLO. We only ever
	 * send on our end, with MSG_DONTWAIT (a client cannot make us block:
	 * it shares no open file with us); the client drains its end before it
	 * consumes. -1 before HELLO. */
	int notice_fd;             /* our end */
	int notice_peer;           /* the client's end, given at HELLO */
	uint32_t want;             /* HVP_WANT_* */
	struct hvd_maptrack mt;
	struct hvd_domain **views; /* domains whose memfd this connection got */
	bool attached;             /* got a grant state (GT_ATTACH): may hold its lock */
	unsigned nviews, cap_views;
	struct hvp_notice *nq;     /* queued notices, oldest first */
	unsigned nq_len, nq_cap;
	uint32_t nq_seq;
	uint16_t late_op;          /* HVP_SUSPEND / HVP_DOM_WAIT awaiting its reply */
	uint32_t late_seq;
	uint32_t wait_domid, wait_mask;
	int64_t wait_timer;
	void *out;                 /* a reply the socket could not take yet */
	size_t out_len;
	int out_fds[HVP_MAX_VIEWS];
	unsigned out_nfds;
	bool paused;               /* not reading: a late or backlogged reply */
	bool dead;                 /* the socket failed: close when back in its loop */
	bool involved;             /* scratch for hvd_domain_end() */
	struct hvd_conn *next, *prev;
	struct pv_ratelimit rl;
};

struct hvd {
	struct hvd_opts o;
	struct pv_loop *loop;
	struct hvd_domain *dom[DOMID_FIRST_RESERVED];
	unsigned ndomains;
	uint32_t rover;            /* last domid allocated */
	uint32_t next_incarnation;
	struct hvd_conn *conns;
	struct pv_ratelimit rl;
	union {
		struct hvp_hdr hdr;
		uint8_t bytes[HVP_MAX_MSG + 64];
	} rx, tx;
};

/* ---- hvd: server.c -------------------------------------------------------- */
/* Create dom0 and, with a rundir, its socket. NULL + errno on failure. */
struct hvd *hvd_new(const struct hvd_opts *opts, struct pv_loop *loop);
void hvd_free(struct hvd *h);
/* A connection acting as `dom` over socket `fd` (-1: replies are dropped). */
struct hvd_conn *hvd_conn_new(struct hvd *h, struct hvd_domain *dom, int fd);
void hvd_conn_close(struct hvd_conn *c);
/* Send a reply of `len` bytes with fds (not closed); kept if the socket is
 * full, and the connection is not read until it has gone. */
void hvd_send(struct hvd_conn *c, const void *buf, size_t len, const int *fds, unsigned nfds);
/* Update what the loop watches for `c` (reading stops while paused). */
void hvd_conn_watch(struct hvd_conn *c);
/* Make the client's notice fd readable (queued notices). */
void hvd_notice_signal(struct hvd_conn *c);
/* Queue a notice (deduplicated) and signal the connection (hvd_notice_signal). */
void hvd_notice(struct hvd_conn *c, enum pv_notice_type type, uint32_t domid, uint32_t port,
		uint32_t incarnation);
/* Listening socket for a domain (no-op without rundir). */
int hvd_listen_domain(struct hvd *h, struct hvd_domain *d);

/* ---- domains: domain.c ------------------------------------------------------ */
struct hvd_domain *hvd_domain_get(struct hvd *h, uint32_t domid);
/* The domid a new domain gets (`want` 0: Xen's rule, next free after the last
 * allocated, wrapping below DOMID_FIRST_RESERVED): 0, -EEXIST, -EINVAL or
 * -ENOSPC. Moves h->rover when it allocates. */
int hvd_domid_pick(struct hvd *h, uint32_t want, uint32_t *out);
int hvd_domain_create(struct hvd *h, const struct hvp_domcfg *cfg, struct hvd_domain **out);
/* dom0: implicit, privileged, never destroyed. */
int hvd_domain_create_dom0(struct hvd *h);
void hvd_domain_destroy(struct hvd *h, struct hvd_domain *d);
/* End the incarnation: revoke its grants' mappings, drop its own mappings,
 * close its ports, free its grant table and memory. */
void hvd_domain_end(struct hvd *h, struct hvd_domain *d);
/* Take over the grant locks a dead dom0 process left held (its pins are
 * recounted); called when a connection that attached a grant state goes. */
void hvd_domain_check_locks(struct hvd *h);
void hvd_domain_set_state(struct hvd *h, struct hvd_domain *d, enum pv_domain_state st);
/* Adopt `memfd` (sealed memfd of >= pages pages) as d's memory: 0 or -errno. */
int hvd_domain_set_memory(struct hvd_domain *d, int memfd, uint32_t pages);
/* Release what a closing connection holds (mappings, ports, late calls). */
void hvd_conn_release(struct hvd_conn *c);
/* Close `port` of c's domain (owned by c): peers are told. */
int hvd_port_close(struct hvd_conn *c, evtchn_port_t port);
/* A memfd of `bytes` bytes sealed against shrinking, growing and resealing
 * (the fd, or -errno). */
int hvd_sealed_memfd(const char *name, size_t bytes);
/* Close a channel's fds (those >= 0) and free it. */
void hvd_chan_free(struct hvd_chan *ch);
void hvd_domain_info(struct hvd_domain *d, struct hvp_dominfo *out);

/* ---- requests: dispatch.c --------------------------------------------------- */
/* Handle one message from `c` (len bytes in h->rx, nfds fds now owned by the
 * dispatcher). Sends the reply unless the call answers later. */
void hvd_dispatch(struct hvd_conn *c, size_t len, int *fds, unsigned nfds);
/* Answer c's late call (HVP_SUSPEND / HVP_DOM_WAIT) with ret and payload. */
void hvd_late_reply(struct hvd_conn *c, int ret, const void *payload, size_t len);
/* Check the model's invariants (pins, handles, ports); 0 or -EUCLEAN. */
int hvd_check(struct hvd *h);

#endif
