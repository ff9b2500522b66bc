/*
 * xenstored/store_impl.h — internals shared by store.c (tree, operations)
 * and txn.c (transactions). Not for use outside the store.
 *
 * A node is refcounted; a node with refs > 1 is shared (by the live tree,
 * transaction snapshots and pending events) and is never modified in place:
 * a modifying walk copies it first (cow()). Generations, stamped from the
 * store's global counter: `gen` when value or ACL change (or creation),
 * `cgen` when the child list changes, `tgen` when anything in the subtree
 * changes. They drive transaction conflict checks and DIRECTORY_PART.
 */
#ifndef PVNET_XENSTORED_STORE_IMPL_H
#define PVNET_XENSTORED_STORE_IMPL_H

#include "xenstored/domtab.h"
#include "xenstored/map.h"
#include "xenstored/store.h"

struct child_index {
	uint32_t cap;           /* power of two */
	uint32_t slot[];        /* child index + 1, 0 = empty */
};

struct xsd_node {
	uint32_t refs;
	uint32_t nchild;          /* array room: child_cap(nchild) or more */
	uint32_t vlen;            /* value bytes (room: malloc_usable_size) */
	uint16_t nperms;
	uint16_t namelen;
	uint64_t gen, cgen, tgen;
	union {
		struct xsd_perm one;    /* nperms == 1 */
		struct xsd_perm *many;  /* nperms > 1 */
	} p;
	/* Children in creation order. The allocation starts one slot before
	 * child[0]: that slot holds the lazily built child_index (or NULL),
	 * so leaves pay nothing for it. */
	struct xsd_node **child;
	char data[];              /* name, NUL, value */
};

struct acct_ent {
	uint32_t domid;
	int32_t delta;
};

/* Per-domain node count changes not yet applied to the live counts. */
struct xsd_acct {
	struct acct_ent *e;
	unsigned n, cap;
};

struct xsd_store {
	struct xsd_node *root;
	uint64_t gen;
	struct xsd_domtab owned;  /* uint32_t live node count per domain */
	struct xsd_domtab released; /* uint64_t: gen of the domain's last release */
	unsigned long nnodes;     /* live tree */
	struct xsd_limits lim;
	struct xsd_perm *special[2];
	unsigned nspecial[2];
};

enum txn_op_type { OP_WRITE, OP_MKDIR, OP_RM, OP_SETPERMS };

struct txn_op {
	struct txn_op *next;
	enum txn_op_type type;
	unsigned len;       /* value bytes, or number of perms */
	char *path;
	void *data;         /* value or struct xsd_perm[] */
};

/* What a transaction saw of a path. */
#define REC_NODE 1u  /* existence, value, ACL */
#define REC_DIR  2u  /* child list */
#define REC_TREE 4u  /* anything below (RM) */

struct txn_rec {
	unsigned flags;
	uint32_t len;
	char path[];
};

struct xsd_txn {
	struct xsd_node *base;    /* live root at start */
	struct xsd_node *root;    /* the transaction's own tree */
	uint64_t start_gen;
	struct xsd_caller c;
	struct xsd_acct acct;
	struct xsd_map recs;      /* path -> struct txn_rec */
	struct txn_op *ops, **ops_tail;
	struct txn_op *last_op;
	unsigned nops;            /* logged operations */
	size_t op_bytes;          /* their paths and data */
	unsigned lim_nodes;       /* distinct paths allowed, 0 = no limit */
	size_t lim_bytes;         /* logged bytes allowed, 0 = no limit */
	bool failed;              /* internal failure: commit says ENOMEM */
};

/* Where an operation applies. */
struct view {
	struct xsd_store *st;
	struct xsd_node **rootp;
	struct xsd_acct *acct;    /* NULL: adjust the live counts directly */
	struct xsd_txn *tx;       /* record accesses and log ops, or NULL */
	struct xsd_evlist *ev;    /* append events, or NULL */
	const struct xsd_caller *c;
};

/* node.c: node objects and child lists. */
static inline const struct xsd_perm *node_perms(const struct xsd_node *n)
{
	return n->nperms == 1 ? &n->p.one : n->p.many;
}

static inline unsigned node_owner(const struct xsd_node *n)
{
	return node_perms(n)[0].domid;
}

static inline const char *node_name(const struct xsd_node *n) { return n->data; }
static inline char *node_value(struct xsd_node *n) { return n->data + n->namelen + 1; }

/* One allocation: header, name, value. NULL on ENOMEM. */
struct xsd_node *xsd_node_new(const char *name, size_t len, const void *val, unsigned vlen);
/* Drop a reference; the last one frees the node and unrefs its children. */
void xsd_node_unref(struct xsd_node *n);
int xsd_node_set_perms(struct xsd_node *n, const struct xsd_perm *p, unsigned np);
/* New value for the private node in *slot; may move it (updates *slot). */
int xsd_node_set_value(struct xsd_node **slot, const void *val, unsigned len);
/* Make *slot exclusively ours (copy if shared). NULL on ENOMEM. */
struct xsd_node *xsd_cow(struct xsd_node **slot);
/* Index of the child called name[0..len), or -1. */
long xsd_child_find(struct xsd_node *n, const char *name, size_t len);
int xsd_child_add(struct xsd_node *n, struct xsd_node *c);
/* Unlink child i (order kept); returns it with its reference. */
struct xsd_node *xsd_child_del(struct xsd_node *n, uint32_t i);
/* Bytes of the child-name list (node-size quota). */
unsigned xsd_names_len(const struct xsd_node *n);

/* store.c: walking and operations. */
struct xsd_node *xsd_tree_lookup(struct xsd_node *root, const char *path);
/* Apply an operation through a view (store.c). */
int xsd_view_write(struct view *v, const char *path, const void *val, unsigned len, bool mkdir);
int xsd_view_rm(struct view *v, const char *path);
int xsd_view_set_perms(struct view *v, const char *path, const struct xsd_perm *p, unsigned n);
void xsd_acct_apply(struct xsd_store *st, struct xsd_acct *a);
void xsd_acct_fini(struct xsd_acct *a);

/* txn.c: a read is about to happen in `tx`; if it is the transaction's first
 * access, move its snapshot to now (see txn.c). */
void xsd_txn_first_read(struct xsd_store *st, struct xsd_txn *tx);
/* txn.c: note an access; 0, ENOSPC (too many nodes) or ENOMEM. */
int xsd_txn_record(struct xsd_txn *tx, const char *path, size_t len, unsigned flags);
/* txn.c: may an unprivileged transaction log this operation? Its log is
 * bounded: 4 operations per node of its quota, and that many nodes' worth
 * of bytes (a rewrite of the path just written replaces it). */
bool xsd_txn_room(const struct xsd_txn *tx, enum txn_op_type type, const char *path, unsigned len);
/* txn.c: log a successful modification for replay at commit. */
int xsd_txn_log(struct xsd_txn *tx, enum txn_op_type type, const char *path,
	    const void *data, unsigned len);

#endif
