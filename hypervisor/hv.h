/*
 * hypervisor/hv.h — client API of pvnet-hypervisor: connection, domains,
 * guest I/O memory, suspend/resume/move.  (Grants: gnttab.h; events: evtchn.h.)
 *
 * What: a process is a domain by the socket it connects to: <rundir>/socket is
 * dom0 (privileged: toolstack, backends); <rundir>/domains/<domid>.sock is that
 * domain (a guest runtime). The path may be NULL: then $PVNET_HYPERVISOR is used.
 * Each pv_hv is one connection; open one per thread that makes calls.
 *
 * Guest I/O memory: each domain (dom0 included) has one memfd of `mem_pages`
 * 4 KiB pages. Frame numbers are page indices in it. The domain maps it with
 * pv_hv_map_own_memory(); pages are handed out by a pv_pagealloc (below), which
 * belongs to the process, not to the connection, so it survives a move.
 *
 * Suspend and move (guest side): pv_hv_suspend() blocks until the toolstack
 * either resumes the domain cancelled (returns 1: same domid, grants and
 * channels intact) or moves it (returns 0 and fills pv_resume_info: the domain
 * now lives on another hypervisor with a new domid; every grant mapping and
 * event channel of the old incarnation is gone; the memory contents are kept
 * and pv_hv_map_own_memory(new_hv, old_base, ...) maps them at the same address).
 *
 * Thread: a pv_hv is not shared between threads without external locking.
 * Errors: int functions return >= 0 on success and -errno on failure (never
 * -1/errno); pointer functions return NULL and set errno. Nothing prints.
 * Ownership: pv_hv_close() releases the connection and everything bound to it
 * (mappings made through it are unmapped by the hypervisor).
 */
#ifndef PVNET_HYPERVISOR_HV_H
#define PVNET_HYPERVISOR_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PV_HV_ENV "PVNET_HYPERVISOR"
#define PV_DOMID_INVALID 0xFFFFFFFFu

struct pv_hv;

struct pv_hv *pv_hv_open(const char *path);
void pv_hv_close(struct pv_hv *hv);
uint32_t pv_hv_domid(const struct pv_hv *hv);
/* Readable when the hypervisor has queued asynchronous notices for this
 * connection (a peer domain died, a mapping was revoked); call
 * pv_hv_poll_notices() then. A dom0 pv_hv hears PV_NOTICE_DOMAIN_GONE for
 * every domain destroyed or moved away (up to 4096 queued; the oldest are
 * dropped beyond that). */
int pv_hv_fd(const struct pv_hv *hv);

enum pv_notice_type {
	PV_NOTICE_DOMAIN_GONE = 1,   /* domid destroyed or moved away */
	PV_NOTICE_PORT_CLOSED = 2,   /* the remote end of port closed */
	PV_NOTICE_MAPPINGS_REVOKED = 3, /* every mapping of domid's grants dropped */
};
struct pv_notice {
	enum pv_notice_type type;
	uint32_t domid;
	uint32_t port;
};
/* Non-blocking: copies at most `max` pending notices; returns how many. */
int pv_hv_poll_notices(struct pv_hv *hv, struct pv_notice *out, unsigned max);

/* ---- own memory --------------------------------------------------------- */

/* Map this domain's I/O memory read-write. If `at` is non-NULL the mapping is
 * placed exactly there (MAP_FIXED, replacing what was mapped), which is how a
 * moved guest keeps its addresses: *npages must then say how many pages the
 * caller owns at `at`, and memory of another size is refused (EPROTO) before
 * anything is mapped. Sets *npages. */
void *pv_hv_map_own_memory(struct pv_hv *hv, void *at, size_t *npages);
/* The same, remembering which memory object is mapped: when `at` already
 * maps the object the hypervisor hands out (same *id, same size: memory
 * moved with its domain), the mapping is kept as it is, so no page has to
 * be faulted in again; otherwise it is mapped and *id updated. */
struct pv_mem_id {
	uint64_t dev, ino;
	size_t npages;
};
void *pv_hv_map_own_memory_id(struct pv_hv *hv, void *at, size_t *npages, struct pv_mem_id *id);

/* A bitmap page allocator over a mapped memory region (process-owned). */
struct pv_pagealloc;
struct pv_pagealloc *pv_pagealloc_new(void *base, size_t npages, size_t first_free);
void pv_pagealloc_free(struct pv_pagealloc *pa);
/* Contiguous pages; returns the first frame or -ENOMEM. Thread-safe. */
int64_t pv_page_alloc(struct pv_pagealloc *pa, unsigned count);
void pv_page_free(struct pv_pagealloc *pa, uint32_t frame, unsigned count);
void *pv_page_addr(const struct pv_pagealloc *pa, uint32_t frame);
/* frame of an address inside the region, or -EINVAL. */
int64_t pv_page_frame(const struct pv_pagealloc *pa, const void *addr);

/* ---- guest lifecycle (the calling domain) --------------------------------- */

struct pv_resume_info {
	uint32_t new_domid;
	char hypervisor_path[256];  /* per-domain socket on the new hypervisor */
	char start_info[1024];      /* opaque text from the toolstack (NUL-terminated) */
};
/* SCHEDOP_shutdown(SHUTDOWN_suspend): 1 = cancelled, 0 = moved (info filled),
 * -errno on failure. Blocks. */
int pv_hv_suspend(struct pv_hv *hv, struct pv_resume_info *info);
/* SCHEDOP_shutdown with SHUTDOWN_poweroff / reboot / crash (xen/sched.h). */
int pv_hv_shutdown(struct pv_hv *hv, unsigned reason);

/* ---- domain control (dom0 only; others get -EPERM) ------------------------ */

enum pv_domain_state {
	PV_DOM_RUNNING = 1,
	PV_DOM_SUSPENDED = 2,  /* blocked in pv_hv_suspend() */
	PV_DOM_SHUTDOWN = 3,   /* shut down with `shutdown_reason` */
	PV_DOM_INCOMING = 4,   /* created for a move; waiting for pv_hv_domain_import */
	PV_DOM_MOVED = 5,      /* old incarnation after a move; awaits destroy */
};

struct pv_domain_config {
	uint32_t domid;        /* 0 = allocate as Xen does */
	uint32_t mem_pages;    /* I/O memory size (0 = default) */
	uint32_t grant_frames; /* grant table frames, 512 entries each (0 = default) */
	uint32_t max_ports;    /* event channel ports (0 = default) */
	uint32_t max_maptrack; /* grant mappings this domain may hold (0 = default) */
	bool incoming;         /* created to receive a moved domain */
	char name[64];
};

struct pv_domain_info {
	uint32_t domid;
	enum pv_domain_state state;
	unsigned shutdown_reason;  /* SHUTDOWN_* when state is SHUTDOWN/SUSPENDED */
	uint32_t mem_pages;
	uint32_t grant_entries;
	uint32_t grants_in_use;    /* entries with GTF_permit_access set */
	uint32_t mappings_held;    /* foreign grants this domain has mapped */
	uint32_t ports_in_use;
	char name[64];
};

int pv_hv_domain_create(struct pv_hv *hv, const struct pv_domain_config *cfg, uint32_t *domid);
int pv_hv_domain_destroy(struct pv_hv *hv, uint32_t domid);
int pv_hv_domain_info(struct pv_hv *hv, uint32_t domid, struct pv_domain_info *info);
/* Fills up to `max`; returns the number of domains (may exceed max). */
int pv_hv_domain_list(struct pv_hv *hv, struct pv_domain_info *out, unsigned max);
/* Wait until domid's state is in `state_mask` (1 << PV_DOM_*): 0 (at once if
 * it already is), -ETIMEDOUT, -ESRCH if the domain is unknown or destroyed
 * meanwhile. timeout_ms < 0: forever. */
int pv_hv_domain_wait(struct pv_hv *hv, uint32_t domid, unsigned state_mask, int timeout_ms);
/* Cancel a suspend: the guest's pv_hv_suspend() returns 1. -EINVAL if the
 * domain is not suspended (the same for export and moved). */
int pv_hv_domain_resume(struct pv_hv *hv, uint32_t domid);
/* Suspended domain: hand out its memory (memfd, dup'ed to the caller). */
int pv_hv_domain_export(struct pv_hv *hv, uint32_t domid, int *memfd, uint32_t *mem_pages);
/* Incoming domain: adopt `memfd` as its memory; it becomes RUNNING, waiting
 * for its guest to connect. */
int pv_hv_domain_import(struct pv_hv *hv, uint32_t domid, int memfd, uint32_t mem_pages);
/* Suspended domain: end the old incarnation (revoke every mapping of its
 * grants, close its channels, drop its grant table), answer its suspend call
 * with 0 and `info`; it becomes MOVED. */
int pv_hv_domain_moved(struct pv_hv *hv, uint32_t domid, const struct pv_resume_info *info);
/* Path of domid's socket on this hypervisor (for the toolstack). */
int pv_hv_domain_socket(struct pv_hv *hv, uint32_t domid, char *buf, size_t len);

#endif
