/*
 * xenstored/store.h — the xenstore database: a copy-on-write, refcounted node
 * tree with permissions, per-domain node accounting, transactions, and the
 * watch events that modifications produce.
 *
 * Pure: no sockets, no syscalls; single-threaded (the daemon's loop thread).
 * Errors: 0 or a positive errno from the wire table (EINVAL, EACCES, ENOENT,
 * ENOSPC, EAGAIN, E2BIG, EPERM, ENOMEM, ...), as C xenstored's handlers do.
 * Paths given to the store are canonical (xsd_path_canon): absolute, or a
 * special "@name" where noted.
 * Ownership: the store owns every node. Pointers and node handles returned by
 * the read functions stay valid until the next modifying call on the store
 * (including commits). A transaction belongs to its caller until it is passed
 * to xsd_txn_commit() or xsd_txn_free(), which consume it. Events appended to
 * an xsd_evlist belong to the list (xsd_evlist_clear frees them).
 *
 * Transactions (design in docs/xenstored.md): start = grab the root (O(1));
 * the transaction works on its own copy-on-write tree and records each path
 * it touched; commit fails with EAGAIN iff a recorded path changed in the live
 * tree since the start, otherwise its operations are replayed on the live
 * tree atomically and their events are returned.
 */
#ifndef PVNET_XENSTORED_STORE_H
#define PVNET_XENSTORED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XSD_PERM_NONE   0u
#define XSD_PERM_READ   1u
#define XSD_PERM_WRITE  2u
#define XSD_PERM_OWNER  4u  /* computed only, never stored */
#define XSD_PERM_IGNORE 8u  /* entry names a released domain */

#define XSD_DOMID_MAX 65535u

struct xsd_perm {
	uint32_t domid;
	uint32_t perms; /* XSD_PERM_READ | XSD_PERM_WRITE | XSD_PERM_IGNORE */
};

/* Who performs an operation. */
struct xsd_caller {
	unsigned domid;
	bool priv;        /* dom0 socket: all rights, no quotas */
	bool has_target;  /* SET_TARGET: acts for `target` too */
	unsigned target;
};

/* Quotas applied to unprivileged callers (C xenstored 4.17 defaults). */
struct xsd_limits {
	unsigned nodes;      /* nodes owned per domain: 1000 */
	unsigned node_size;  /* bytes (header + perms + value + child names): 2048 */
	unsigned perms;      /* entries per node: 5 */
	unsigned txn_nodes;  /* distinct nodes touched per transaction: 1024 */
};
#define XSD_LIMITS_DEFAULT { .nodes = 1000, .node_size = 2048, .perms = 5, .txn_nodes = 1024 }

struct xsd_node;
struct xsd_store;
struct xsd_txn;

/* A modification, for the watch layer. */
struct xsd_event {
	char *path;              /* absolute, or "@introduceDomain"/"@releaseDomain" */
	bool exact;              /* only watches on exactly `path` fire */
	struct xsd_node *node;   /* the node (new or removed), ref held; NULL for @ */
	struct xsd_node *parent; /* its parent, ref held, or NULL */
	struct xsd_perm *oldp;   /* SET_PERMS / special events: extra ACL that grants */
	unsigned noldp;
};

struct xsd_evlist {
	struct xsd_event *ev;
	unsigned n, cap;
};

/* May caller `c` be told about event `e`? (read access to node, parent, or old ACL) */
bool xsd_event_visible(const struct xsd_event *e, const struct xsd_caller *c);
void xsd_evlist_clear(struct xsd_evlist *l);
/* Append a special event ("@introduceDomain" / "@releaseDomain"). 0 or ENOMEM. */
int xsd_event_special(struct xsd_store *st, struct xsd_evlist *l, const char *name);

/* Store life cycle. Creates /, /tool, /tool/xenstored, /local, /local/domain,
 * /local/domain/0, all "n0". NULL on ENOMEM. */
struct xsd_store *xsd_store_new(const struct xsd_limits *lim);
void xsd_store_free(struct xsd_store *st);
struct xsd_limits *xsd_store_limits(struct xsd_store *st);

/* Access mask (XSD_PERM_READ|WRITE|OWNER) an ACL grants to `c`. */
unsigned xsd_perm_for(const struct xsd_perm *p, unsigned n, const struct xsd_caller *c);
/* Parse "r5" etc. 0 or EINVAL. */
int xsd_perm_parse(const char *s, struct xsd_perm *out);

/* Reads. `tx` NULL = the live store. */
int xsd_read(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
	     const char *path, const void **val, unsigned *len);
int xsd_get_perms(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
		  const char *path, const struct xsd_perm **perms, unsigned *n);
/* Directory: returns the node; walk it with xsd_node_nchildren/child_name. */
int xsd_directory(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
		  const char *path, const struct xsd_node **dir);
unsigned xsd_node_nchildren(const struct xsd_node *n);
const char *xsd_node_child_name(const struct xsd_node *n, unsigned i, unsigned *len);
/* Generation of the node's child list (DIRECTORY_PART). */
uint64_t xsd_node_cgen(const struct xsd_node *n);

/* Modifications. With tx NULL they apply to the live store and append their
 * events to `ev` (may be NULL); inside a transaction events come at commit. */
int xsd_write(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
	      const char *path, const void *val, unsigned len, struct xsd_evlist *ev);
int xsd_mkdir(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
	      const char *path, struct xsd_evlist *ev);
int xsd_rm(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
	   const char *path, struct xsd_evlist *ev);
/* `path` may also be "@introduceDomain" / "@releaseDomain". */
int xsd_set_perms(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
		  const char *path, const struct xsd_perm *p, unsigned n, struct xsd_evlist *ev);
/* ACL of a special path ("@..."), or NULL if unknown. */
const struct xsd_perm *xsd_special_perms(struct xsd_store *st, const char *name, unsigned *n);

/* Transactions. start: NULL on ENOMEM. commit: 0, EAGAIN (conflict), ENOSPC
 * (quota at commit), ENOMEM; consumes `tx` either way. */
struct xsd_txn *xsd_txn_start(struct xsd_store *st, const struct xsd_caller *c);
int xsd_txn_commit(struct xsd_store *st, struct xsd_txn *tx, struct xsd_evlist *ev);
void xsd_txn_free(struct xsd_txn *tx);
/* Number of distinct paths the transaction has recorded. */
unsigned xsd_txn_nrecords(const struct xsd_txn *tx);

/* Domain going away: remove every node it owns (with subtree, events for
 * each), and mark ACL entries naming it as ignored. */
int xsd_store_domain_gone(struct xsd_store *st, unsigned domid, struct xsd_evlist *ev);
/* Nodes owned by `domid` in the live store. */
unsigned xsd_store_domain_nodes(const struct xsd_store *st, unsigned domid);
/* Total nodes in the live tree. */
unsigned long xsd_store_nnodes(const struct xsd_store *st);

/* Consistency check of the live tree: refcounts, names, child-name lengths,
 * ownership counts. 0 or EIO. */
int xsd_store_check(struct xsd_store *st);

/* Test hook: node objects currently allocated in the process. */
long xsd_node_live_count(void);

#endif
