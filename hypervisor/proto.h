/*
 * hypervisor/proto.h — the wire protocol between the client library and
 * pvnet-hypervisor. Private to hypervisor/ (clients use hv.h, gnttab.h,
 * evtchn.h).
 *
 * What: SOCK_SEQPACKET over UNIX sockets, one message = one request or one
 * reply: a fixed header (magic, version, op, seq, count, ret, notice_seq, two
 * scalar arguments), then `count` fixed-size elements or one fixed payload,
 * then nothing else; fds travel as SCM_RIGHTS. The client sends one request
 * and waits for its reply (suspend and domain wait answer late); the daemon
 * never sends anything unasked. Where Xen has a hypercall structure for the
 * operation, the element is that structure (gnttab_map_grant_ref_t,
 * gnttab_unmap_grant_ref_t, gnttab_copy_t, evtchn_alloc_unbound_t,
 * evtchn_bind_interdomain_t, evtchn_status_t), filled in as Xen fills it.
 * Asynchronous notices are queued in the daemon per connection; a reply's
 * notice_seq tells the client a newer one exists, a datagram socket (given
 * at HELLO) is readable while the queue is not empty (the client drains it
 * before HVP_NOTICES consumes; the daemon signals again if notices are
 * left), and HVP_NOTICES reads the queue.
 * Thread: definitions only. Errors: ret is >= 0 or -errno.
 */
#ifndef PVNET_HYPERVISOR_PROTO_H
#define PVNET_HYPERVISOR_PROTO_H

#include <stdint.h>

#include "common/xen.h"
#include "hypervisor/hv.h"

#define HVP_MAGIC   0x56485650u  /* "PVHV" little-endian */
#define HVP_VERSION 2

#define HVP_MAX_BATCH 256       /* elements per message; clients split larger batches */
#define HVP_MAX_VIEWS 16        /* memfds one map reply may carry */
#define HVP_MAX_LIST  64        /* domain infos per list reply */
#define HVP_MAX_NOTICES 128     /* notices per reply */
#define HVP_MAX_MSG   16384     /* no message is longer */
#define HVP_MAX_PORT  131071u   /* no event-channel port above (the FIFO ABI's limit) */
#define HVP_MAX_GRANT_FRAMES 1024u /* no grant table is larger (512 v1 entries per frame) */
/* An event channel's flags memfd: at least this long; side s's pending flag
 * is the uint32_t at offset s * HVP_EC_FLAG_STRIDE (own cache lines). */
#define HVP_EC_FLAGS_SIZE 4096u
#define HVP_EC_FLAG_STRIDE 64u

enum hvp_op {
	HVP_HELLO = 1,        /* -> hvp_hello + notice socket */
	HVP_NOTICES,          /* arg0: 1 consume / 0 peek, arg1: after seq; count: max */
	HVP_MEM_GET,          /* -> arg0 pages + memfd */
	HVP_GT_SETUP,         /* -> arg0 entries + grant-table memfd */
	HVP_MAP,              /* count x gnttab_map_grant_ref_t -> same + views + memfds */
	HVP_UNMAP,            /* count x gnttab_unmap_grant_ref_t -> same */
	HVP_COPY,             /* count x gnttab_copy_t -> count x int16 status */
	HVP_EC_ALLOC_UNBOUND, /* evtchn_alloc_unbound_t -> same + arg0 side + 3 fds (our
			       * doorbell, the peer's, flags memfd) */
	HVP_EC_BIND,          /* evtchn_bind_interdomain_t -> same + arg0 side + 3 fds (likewise) */
	HVP_EC_CLOSE,         /* arg0 port */
	HVP_EC_STATUS,        /* evtchn_status_t -> same */
	HVP_SUSPEND,          /* -> ret 1 (cancelled) or 0 + hvp_resume */
	HVP_SHUTDOWN,         /* arg0 reason */
	HVP_DOM_CREATE,       /* hvp_domcfg -> arg0 domid */
	HVP_DOM_DESTROY,      /* arg0 domid */
	HVP_DOM_INFO,         /* arg0 domid -> hvp_dominfo */
	HVP_DOM_LIST,         /* arg0 first domid -> count x hvp_dominfo, arg1 total */
	HVP_DOM_WAIT,         /* hvp_wait -> late reply */
	HVP_DOM_RESUME,       /* arg0 domid */
	HVP_DOM_EXPORT,       /* arg0 domid -> arg0 pages + memfd */
	HVP_DOM_IMPORT,       /* arg0 domid, arg1 pages + memfd */
	HVP_DOM_MOVED,        /* arg0 domid + hvp_resume */
	HVP_DOM_SOCKET,       /* arg0 domid -> count bytes of path */
	HVP_GT_ATTACH,        /* arg0 domid -> hvp_attach + 3 memfds (grant table, state, memory) */
	HVP_OP_COUNT
};

struct hvp_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t seq;         /* chosen by the client, echoed */
	uint32_t count;       /* elements following the header */
	int32_t ret;          /* reply: >= 0 or -errno; request: 0 */
	uint32_t notice_seq;  /* reply: seq of the newest queued notice */
	uint32_t arg[2];
};

/* HELLO: arg0 of the request = PVN_WANT_* bits (which notices to queue). */
#define HVP_WANT_DOMAIN_GONE 1u  /* every domain's end, not only related ones */

struct hvp_hello {
	uint32_t domid;
	uint32_t state;       /* enum pv_domain_state */
	uint32_t max_port;
	uint32_t mem_pages;
};

struct hvp_notice {
	uint32_t type;        /* enum pv_notice_type */
	uint32_t domid;
	uint32_t port;
	uint32_t incarnation; /* MAPPINGS_REVOKED: which incarnation's views */
	uint32_t seq;
	uint32_t pad;
};

/* A memfd view carried by a map reply (fds in the same order). */
struct hvp_view {
	uint32_t domid;
	uint32_t incarnation;
	uint32_t mem_pages;
};

/* GT_ATTACH (dom0 only): a granting domain's grant table, grant state
 * (gnttab_core.h: struct hvd_gt_state) and memory, for copies in-process. */
struct hvp_attach {
	uint32_t domid;
	uint32_t incarnation;
	uint32_t nr_entries;
	uint32_t mem_pages;
};

struct hvp_domcfg {
	uint32_t domid;
	uint32_t mem_pages;
	uint32_t grant_frames;
	uint32_t max_ports;
	uint32_t max_maptrack;
	uint32_t incoming;
	char name[64];
};

struct hvp_dominfo {
	uint32_t domid;
	uint32_t state;
	uint32_t shutdown_reason;
	uint32_t mem_pages;
	uint32_t grant_entries;
	uint32_t grants_in_use;
	uint32_t mappings_held;
	uint32_t ports_in_use;
	char name[64];
};

struct hvp_wait {
	uint32_t domid;
	uint32_t state_mask;
	int32_t timeout_ms;
	uint32_t pad;
};

struct hvp_resume {
	uint32_t new_domid;
	char hypervisor_path[256];
	char start_info[1024];
};

_Static_assert(sizeof(struct hvp_hdr) == 32, "header size");
_Static_assert(sizeof(struct gnttab_map_grant_ref) == 32, "map op size");
_Static_assert(sizeof(struct gnttab_unmap_grant_ref) == 24, "unmap op size");
_Static_assert(sizeof(struct gnttab_copy) == 40, "copy op size");
_Static_assert(sizeof(struct hvp_hdr) + HVP_MAX_BATCH * sizeof(struct gnttab_copy) <= HVP_MAX_MSG,
	       "a full copy batch fits a message");
_Static_assert(sizeof(struct hvp_hdr) + HVP_MAX_BATCH * sizeof(struct gnttab_map_grant_ref) +
	       HVP_MAX_VIEWS * sizeof(struct hvp_view) <= HVP_MAX_MSG, "a full map reply fits");
_Static_assert(sizeof(struct hvp_hdr) + HVP_MAX_LIST * sizeof(struct hvp_dominfo) <= HVP_MAX_MSG,
	       "a full list reply fits");
_Static_assert(sizeof(struct hvp_hdr) + HVP_MAX_NOTICES * sizeof(struct hvp_notice) <= HVP_MAX_MSG,
	       "a full notice reply fits");
_Static_assert(sizeof(struct pv_resume_info) == sizeof(struct hvp_resume), "resume info");

#endif
