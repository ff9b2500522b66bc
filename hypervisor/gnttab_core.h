/*
 * hypervisor/gnttab_core.h — the hypervisor's grant-table logic (v1), pure.
 *
 * What: GNTTABOP_map_grant_ref, unmap_grant_ref and copy, checked against the
 * granter's shared grant_entry_v1_t array in the order Xen 4.17 checks them
 * and answered with the same GNTST_* codes (docs/hypervisor.md has the table).
 * An active entry per ref holds read and write pin counts plus the frame and
 * domid cached at the first pin, as Xen's active_grant_entry does; the
 * GTF_reading/GTF_writing bits of the shared entry follow the pins, set with a
 * compare-and-swap on the combined flags+domid word (retried 4 times, then
 * "unstable entry") and cleared with an atomic and.
 * Mapping handles live in a maptrack (one per connection) whose entries count
 * against the mapping domain's limit.
 * No sockets and no syscalls but the lock's futex: memory in, GNTST_* out.
 * Thread: the daemon's loop thread, and dom0 processes copying in-process
 * (hvd_gt_attach) under the state's lock; the granter writes the shared
 * entries concurrently from its own process, hence the atomics on them.
 * Errors: GNTST_* per operation; init functions return 0 or -errno.
 * Ownership: a hvd_gt owns its active array, not the shared entries nor the
 * memory it points at (the caller maps and unmaps those).
 */
#ifndef PVNET_HYPERVISOR_GNTTAB_CORE_H
#define PVNET_HYPERVISOR_GNTTAB_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/xen.h"

/* Pin counts are 8 bits in Xen; a new pin is refused once one reaches 0x80.
 * They change only under the state's lock (below). */
struct hvd_gt_active {
	uint32_t frame;   /* cached at the first pin */
	domid_t domid;    /* the domain that holds the pins */
	uint8_t rd;       /* read-only pins (maps and copies in progress) */
	uint8_t wr;       /* writable pins */
};

/* The part of a granting domain's grant state that dom0's processes share
 * with the hypervisor (docs/hypervisor.md, "Grant copy in dom0"): a robust,
 * process-shared lock, then the active entries (at HVD_GT_STATE_HDR).
 * Pins change only under the lock; a dom0 process that copies in-process
 * pins, copies and unpins within one hold, so whenever the lock is free the
 * pins are the hypervisor's mappings and nothing else. A holder that dies
 * leaves `rebuild` set (robust mutex: EOWNERDEAD) and the hypervisor recounts
 * the pins from its maptracks before anything else pins. */
#define HVD_GT_STATE_MAGIC 0x54534750u  /* "PGST" */
#define HVD_GT_STATE_HDR   4096u
struct hvd_gt_state {
	pthread_mutex_t lock;
	uint32_t magic;
	uint32_t nr_entries;
	uint32_t dead;        /* the granter is gone (destroyed or moved): pin nothing */
	uint32_t rebuild;     /* a holder died: pins to be recounted by the hypervisor */
	uint32_t pins;        /* sum of all pin counts */
};
_Static_assert(sizeof(struct hvd_gt_state) <= HVD_GT_STATE_HDR, "state header fits");

/* Bytes of a state for `nr_entries` entries (header + active array). */
size_t hvd_gt_state_size(uint32_t nr_entries);

/* A granting domain as the grant operations see it. */
struct hvd_gt {
	grant_entry_v1_t *shared;      /* nr_entries entries, shared with the granter */
	struct hvd_gt_active *active;  /* nr_entries entries, in *st */
	struct hvd_gt_state *st;
	uint32_t nr_entries;
	domid_t domid;
	bool own_state;                /* st was allocated by hvd_gt_init */
	bool autolock;                 /* pin/unpin take the lock themselves (the daemon) */
	uint8_t *mem;                  /* the granter's I/O memory (NULL: none yet) */
	uint32_t mem_pages;
	/* Called under the lock when the pins must be recounted (a holder died). */
	void (*recount)(void *ctx, struct hvd_gt *gt);
	void *recount_ctx;
};

/* The hypervisor's view: `state` is hvd_gt_state_size() bytes of zeroed shared
 * memory, initialised here (NULL: private memory, owned). 0 or -errno. */
int hvd_gt_init(struct hvd_gt *gt, grant_entry_v1_t *shared, uint32_t nr_entries, domid_t domid,
		void *state);
/* A dom0 process's view of a state the hypervisor initialised: -EPROTO if
 * it does not describe `nr_entries` entries. The caller locks around pins. */
int hvd_gt_attach(struct hvd_gt *gt, grant_entry_v1_t *shared, uint32_t nr_entries,
		  domid_t domid, void *state, uint8_t *mem, uint32_t mem_pages);
void hvd_gt_fini(struct hvd_gt *gt);
/* Entries with type GTF_permit_access (for domain info). */
uint32_t hvd_gt_in_use(const struct hvd_gt *gt);

/* Take the state's lock within `timeout_ms`: 0; 1 if the previous holder
 * died (st->rebuild is then set and the lock consistent again); -ETIMEDOUT;
 * -ENOTRECOVERABLE. With autolock, a recount runs before returning. */
int hvd_gt_lock(struct hvd_gt *gt, int timeout_ms);
void hvd_gt_unlock(struct hvd_gt *gt);
/* Recount: zero every pin, let the caller add its mappings back
 * (hvd_mt_repin), then fix the shared flags and clear st->rebuild. Under the lock. */
void hvd_gt_recount_begin(struct hvd_gt *gt);
void hvd_gt_recount_end(struct hvd_gt *gt);

/* Would `ref` be pinned for `ldomid` now? The GNTST_* a first pin would give,
 * from one read of the shared entry, nothing pinned (advisory: the granter
 * may change the entry right after). */
int16_t hvd_gt_check(const struct hvd_gt *gt, grant_ref_t ref, domid_t ldomid, bool readonly);

/* Pin `ref` for `ldomid` (a map when `mapflag`, else a copy): GNTST_okay and
 * *frame, or the GNTST_* code; on failure nothing is left pinned. */
int16_t hvd_gt_pin(struct hvd_gt *gt, grant_ref_t ref, domid_t ldomid, bool readonly,
		   bool mapflag, uint32_t *frame);
void hvd_gt_unpin(struct hvd_gt *gt, grant_ref_t ref, bool readonly);

/* ---- maptrack ------------------------------------------------------------ */

struct hvd_map {
	struct hvd_gt *gt;   /* granter; NULL when free or revoked */
	grant_ref_t ref;
	uint16_t flags;      /* GNTMAP_* of the mapping; 0 = free entry */
	bool revoked;        /* the granter ended: unmap just releases the handle */
	uint32_t next_free;
};

struct hvd_maptrack {
	struct hvd_map *e;
	uint32_t cap;
	uint32_t used;       /* entries holding a handle (live or revoked) */
	uint32_t free_head;
	uint32_t *held;      /* the mapping domain's handle count */
	uint32_t limit;      /* the mapping domain's maximum */
	uint32_t *capacity;  /* the domain's entries allocated, all its tables (or NULL) */
};

void hvd_mt_init(struct hvd_maptrack *mt, uint32_t *held, uint32_t limit);
/* Charge this table's allocated entries to `capacity` too (the domain's
 * total, shared by its tables): it may not pass twice the limit, so tables
 * grown to their peak on many connections cannot hold unbounded memory. */
void hvd_mt_charge(struct hvd_maptrack *mt, uint32_t *capacity);
/* Unmap everything still mapped and free the table. */
void hvd_mt_fini(struct hvd_maptrack *mt);
/* Drop every live mapping of `gt`'s grants: their handles stay allocated
 * (unmap then succeeds) but no longer pin anything. Returns how many. */
unsigned hvd_mt_revoke(struct hvd_maptrack *mt, const struct hvd_gt *gt);
/* Add the pins of this table's live mappings of `gt` back (a recount). */
void hvd_mt_repin(const struct hvd_maptrack *mt, struct hvd_gt *gt);
/* Whether the maptrack holds a live mapping of `gt`'s grants. */
bool hvd_mt_maps(const struct hvd_maptrack *mt, const struct hvd_gt *gt);

/* GNTTABOP_map_grant_ref: `rgt` is the granter (NULL if no such domain).
 * Fills op->status, and on success op->handle and op->dev_bus_addr (the byte
 * offset of the page in the granter's memory). */
void hvd_gt_map(struct hvd_maptrack *mt, struct hvd_gt *rgt, domid_t ldomid,
		struct gnttab_map_grant_ref *op);
/* GNTTABOP_unmap_grant_ref by handle; fills op->status. */
void hvd_gt_unmap(struct hvd_maptrack *mt, struct gnttab_unmap_grant_ref *op);

/* GNTTABOP_copy of one segment for domain `self` (its own memory is the
 * non-gref side, addressed by frame). `lookup` resolves a granting domid
 * (DOMID_SELF included) to its table, or NULL. Copies and returns GNTST_*. */
typedef struct hvd_gt *(*hvd_gt_lookup_fn)(void *ctx, domid_t domid);
int16_t hvd_gt_copy(hvd_gt_lookup_fn lookup, void *ctx, struct hvd_gt *self,
		    const struct gnttab_copy *op);

#endif
