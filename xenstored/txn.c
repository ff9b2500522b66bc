/*
 * Transactions: snapshot at start, record what was touched, check at commit,
 * replay on success.
 *
 * Start grabs a reference to the live root: O(1). The transaction works on
 * its own copy-on-write tree, so it reads its own writes and nobody else
 * sees them. Each path it reads or writes is recorded with what it saw
 * (REC_NODE: existence/value/ACL, REC_DIR: child list, REC_TREE: the whole
 * subtree, for RM), including absent results and implicitly created parents.
 *
 * Commit: a recorded path "changed" if it exists in the live tree now but
 * not in the snapshot or vice versa, or if its live node carries a
 * generation newer than the start (gen / cgen / tgen for the three flags).
 * Any change -> EAGAIN. Otherwise the logged operations are replayed on a
 * copy-on-write copy of the live root; only if all succeed does that copy
 * become the live root (atomic), and the replay's events are returned.
 * Unrelated paths never conflict; a path nobody else touched never conflicts.
 *
 * First access: a transaction that has not touched anything yet has
 * observed nothing, so when its first access is a read we may move its
 * snapshot to that moment (as C xenstored >= 4.9 snapshots each node at its
 * first access). This keeps read-modify-write loops from failing on commits
 * that landed between their START and their first READ. A transaction whose
 * first access is a write keeps the START snapshot: a node created or
 * changed by others since START then makes it fail (pyxs relies on this).
 */
#include "xenstored/path.h"
#include "xenstored/store_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct xsd_txn *xsd_txn_start(struct xsd_store *st, const struct xsd_caller *c)
{
	struct xsd_txn *tx = calloc(1, sizeof(*tx));

	if (!tx)
		return NULL;
	tx->base = st->root;
	tx->root = st->root;
	st->root->refs += 2;
	tx->start_gen = st->gen;
	tx->c = *c;
	/* The per-transaction node quota travels with the caller. */
	tx->lim_nodes = c->priv ? 0 : st->lim.txn_nodes;
	/* Bytes: a node's worth (value and path at their limits) per node of
	 * the quota, so a transaction within its node quota always fits. */
	tx->lim_bytes = c->priv ? 0 : (size_t)st->lim.txn_nodes * (st->lim.node_size + XSD_PATH_BUF);
	xsd_map_init(&tx->recs);
	tx->ops_tail = &tx->ops;
	return tx;
}

void xsd_txn_free(struct xsd_txn *tx)
{
	uint32_t pos = 0;
	struct txn_rec *rec;

	if (!tx)
		return;
	while ((rec = xsd_map_next(&tx->recs, &pos)))
		free(rec);
	xsd_map_fini(&tx->recs);
	while (tx->ops) {
		struct txn_op *op = tx->ops;
		tx->ops = op->next;
		free(op->path);
		free(op->data);
		free(op);
	}
	xsd_acct_fini(&tx->acct);
	xsd_node_unref(tx->base);
	xsd_node_unref(tx->root);
	free(tx);
}

void xsd_txn_first_read(struct xsd_store *st, struct xsd_txn *tx)
{
	if (tx->recs.n || tx->ops || tx->start_gen == st->gen)
		return;
	xsd_node_unref(tx->base);
	xsd_node_unref(tx->root);
	tx->base = tx->root = st->root;
	st->root->refs += 2;
	tx->start_gen = st->gen;
}

unsigned xsd_txn_nrecords(const struct xsd_txn *tx) { return tx->recs.n; }

int xsd_txn_record(struct xsd_txn *tx, const char *path, size_t len, unsigned flags)
{
	struct txn_rec *rec = xsd_map_get(&tx->recs, path, len);

	if (rec) {
		rec->flags |= flags;
		return 0;
	}
	if (tx->lim_nodes && tx->recs.n >= tx->lim_nodes)
		return ENOSPC;
	rec = malloc(sizeof(*rec) + len + 1);
	if (!rec)
		goto nomem;
	memcpy(rec->path, path, len);
	rec->path[len] = '\0';
	rec->len = (uint32_t)len;
	rec->flags = flags;
	if (xsd_map_put(&tx->recs, rec->path, len, rec)) {
		free(rec);
		goto nomem;
	}
	return 0;
nomem:
	tx->failed = true;
	return ENOMEM;
}

static size_t op_dlen(enum txn_op_type type, unsigned len)
{
	return type == OP_SETPERMS ? len * sizeof(struct xsd_perm) : len;
}

/* A WRITE of the path the last logged operation wrote replaces it. */
static bool rewrites_last(const struct xsd_txn *tx, enum txn_op_type type, const char *path)
{
	return type == OP_WRITE && tx->last_op && tx->last_op->type == OP_WRITE &&
	       !strcmp(tx->last_op->path, path);
}

bool xsd_txn_room(const struct xsd_txn *tx, enum txn_op_type type, const char *path, unsigned len)
{
	size_t add = op_dlen(type, len);

	if (!tx->lim_nodes)
		return true;
	if (rewrites_last(tx, type, path))
		return tx->op_bytes - tx->last_op->len + add <= tx->lim_bytes;
	return tx->nops < 4u * tx->lim_nodes && tx->op_bytes + strlen(path) + add <= tx->lim_bytes;
}

int xsd_txn_log(struct xsd_txn *tx, enum txn_op_type type, const char *path,
	    const void *data, unsigned len)
{
	size_t dlen = op_dlen(type, len);
	struct txn_op *op;

	if (rewrites_last(tx, type, path)) {
		void *d = dlen ? malloc(dlen) : NULL;
		op = tx->last_op;
		if (dlen && !d)
			goto nomem;
		if (dlen)
			memcpy(d, data, dlen);
		tx->op_bytes = tx->op_bytes - op->len + dlen;
		free(op->data);
		op->data = d;
		op->len = len;
		return 0;
	}
	op = calloc(1, sizeof(*op));
	if (!op)
		goto nomem;
	op->type = type;
	op->len = len;
	op->path = strdup(path);
	op->data = dlen ? malloc(dlen) : NULL;
	if (!op->path || (dlen && !op->data)) {
		free(op->path);
		free(op->data);
		free(op);
		goto nomem;
	}
	if (dlen)
		memcpy(op->data, data, dlen);
	*tx->ops_tail = op;
	tx->ops_tail = &op->next;
	tx->last_op = op;
	tx->nops++;
	tx->op_bytes += strlen(path) + dlen;
	return 0;
nomem:
	tx->failed = true;
	return ENOMEM;
}

static bool rec_changed(const struct xsd_store *st, const struct xsd_txn *tx,
			const struct txn_rec *rec)
{
	const struct xsd_node *cur = xsd_tree_lookup(st->root, rec->path);

	if (!cur)
		return xsd_tree_lookup(tx->base, rec->path) != NULL;
	/* A node created after the start carries a newer gen. */
	if (cur->gen > tx->start_gen)
		return true;
	if ((rec->flags & REC_DIR) && cur->cgen > tx->start_gen)
		return true;
	return (rec->flags & REC_TREE) && cur->tgen > tx->start_gen;
}

static int evlist_move(struct xsd_evlist *dst, struct xsd_evlist *src)
{
	if (!dst || !src->n)
		return 0;
	if (!dst->n) {
		struct xsd_evlist tmp = *dst;
		*dst = *src;
		*src = tmp;
		return 0;
	}
	if (dst->n + src->n > dst->cap) {
		struct xsd_event *e = realloc(dst->ev, (dst->n + src->n) * sizeof(*e));
		if (!e)
			return ENOMEM;
		dst->ev = e;
		dst->cap = dst->n + src->n;
	}
	memcpy(dst->ev + dst->n, src->ev, src->n * sizeof(*src->ev));
	dst->n += src->n;
	src->n = 0;
	return 0;
}

static int replay(struct xsd_store *st, struct xsd_txn *tx, struct xsd_evlist *ev)
{
	struct xsd_node *root = st->root;
	struct xsd_acct acct = { 0 };
	struct xsd_evlist local = { 0 };
	struct view v = { .st = st, .rootp = &root, .acct = &acct, .ev = &local, .c = &tx->c };
	int r = 0;

	root->refs++;
	for (struct txn_op *op = tx->ops; op && !r; op = op->next) {
		switch (op->type) {
		case OP_WRITE: r = xsd_view_write(&v, op->path, op->data, op->len, false); break;
		case OP_MKDIR: r = xsd_view_write(&v, op->path, NULL, 0, true); break;
		case OP_RM: r = xsd_view_rm(&v, op->path); break;
		case OP_SETPERMS: r = xsd_view_set_perms(&v, op->path, op->data, op->len); break;
		}
	}
	if (!r)
		r = evlist_move(ev, &local);
	if (r) {
		xsd_node_unref(root);
	} else {
		xsd_node_unref(st->root);
		st->root = root;
		xsd_acct_apply(st, &acct);
	}
	xsd_evlist_clear(&local);
	xsd_acct_fini(&acct);
	return r;
}

/* Does the transaction give rights (ACL entries, ownership) to a domain
 * released since it started? Its commit would undo that release: a later
 * domain with that id would inherit them (XSA-322's class). */
static bool names_released(struct xsd_store *st, const struct xsd_txn *tx)
{
	for (const struct txn_op *op = tx->ops; op; op = op->next) {
		const struct xsd_perm *p = op->data;
		if (op->type != OP_SETPERMS)
			continue;
		for (unsigned i = 0; i < op->len; i++) {
			const uint64_t *rel = p[i].domid ? xsd_domtab_get(&st->released, p[i].domid,
									  sizeof(*rel), false) : NULL;
			if (rel && *rel > tx->start_gen)
				return true;
		}
	}
	return false;
}

int xsd_txn_commit(struct xsd_store *st, struct xsd_txn *tx, struct xsd_evlist *ev)
{
	uint32_t pos = 0;
	struct txn_rec *rec;
	int r = 0;

	if (tx->failed) {
		r = ENOMEM;
		goto out;
	}
	while ((rec = xsd_map_next(&tx->recs, &pos))) {
		if (rec_changed(st, tx, rec)) {
			r = EAGAIN;
			goto out;
		}
	}
	/* Retried, it sees the release (as any transaction that read what the
	 * release removed already does). */
	if (names_released(st, tx)) {
		r = EAGAIN;
		goto out;
	}
	if (tx->ops)
		r = replay(st, tx, ev);
out:
	xsd_txn_free(tx);
	return r;
}
