/*
 * The node tree and the operations on it. See store.h for the contract and
 * store_impl.h for the node layout and the copy-on-write rule.
 *
 * Every modifying operation runs in two phases: a read-only walk that checks
 * permissions and quotas and records what a transaction saw, then a
 * modifying walk that copies shared nodes (xsd_cow) and can only fail on ENOMEM.
 * So a refused operation leaves the tree untouched.
 */
#include "xenstored/store_impl.h"

#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Node "size" for the node-size quota, as C xenstored counts it (x86_64). */
#define NODE_HDR_SIZE 24u
#define PATH_BUF      8192u

/* ---- walking ------------------------------------------------------------ */

struct walk {
	struct xsd_node *node;    /* the node, or NULL */
	struct xsd_node *parent;  /* its parent, if that exists */
	struct xsd_node *nearest; /* nearest existing node on the way (self included) */
	size_t nearest_len;       /* length of nearest's path ("/" counts 1) */
	unsigned depth;           /* components of the path */
	unsigned missing;         /* components below nearest */
};

/* Next component of a canonical path at *p: returns its length, advances *p. */
static size_t next_comp(const char **p, const char **comp)
{
	const char *s = *p, *e;

	if (*s == '/')
		s++;
	e = strchrnul(s, '/');
	*comp = s;
	*p = e;
	return (size_t)(e - s);
}

static void walk(struct xsd_node *root, const char *path, struct walk *w)
{
	const char *p = path, *comp;
	struct xsd_node *n = root, *parent = NULL;

	memset(w, 0, sizeof(*w));
	w->nearest = root;
	w->nearest_len = 1;
	while (*p) {
		size_t len = next_comp(&p, &comp);
		long i;
		if (!len)
			break;
		w->depth++;
		if (!n) {
			w->missing++;
			continue;
		}
		i = xsd_child_find(n, comp, len);
		parent = n;
		n = i < 0 ? NULL : n->child[i];
		if (n) {
			w->nearest = n;
			w->nearest_len = (size_t)(p - path);
		} else {
			w->missing++;
			if (w->missing > 1)
				parent = NULL;
		}
	}
	w->node = n;
	w->parent = w->missing > 1 ? NULL : parent;
}

struct xsd_node *xsd_tree_lookup(struct xsd_node *root, const char *path)
{
	struct walk w;

	walk(root, path, &w);
	return w.node;
}

/*
 * Modifying walk: make every node from the root down `ncomp` components of
 * `path` private, stamp tgen = g on each, return the slot that holds the
 * last one (for xsd_node_set_value). NULL: ENOMEM.
 */
static struct xsd_node **cow_path(struct view *v, const char *path, unsigned ncomp, uint64_t g,
				  struct xsd_node **parentp)
{
	struct xsd_node **slot = v->rootp, *n, *parent = NULL;
	const char *p = path, *comp;

	n = xsd_cow(slot);
	if (!n)
		return NULL;
	n->tgen = g;
	for (unsigned d = 0; d < ncomp; d++) {
		size_t len = next_comp(&p, &comp);
		long i = xsd_child_find(n, comp, len);
		assert(i >= 0);
		parent = n;
		slot = &n->child[i];
		n = xsd_cow(slot);
		if (!n)
			return NULL;
		n->tgen = g;
	}
	if (parentp)
		*parentp = parent;
	return slot;
}

/* ---- permissions -------------------------------------------------------- */

unsigned xsd_perm_for(const struct xsd_perm *p, unsigned n, const struct xsd_caller *c)
{
	const unsigned all = XSD_PERM_READ | XSD_PERM_WRITE | XSD_PERM_OWNER;

	if (c->priv || p[0].domid == c->domid || (c->has_target && p[0].domid == c->target))
		return all;
	for (unsigned i = 1; i < n; i++) {
		if (p[i].perms & XSD_PERM_IGNORE)
			continue;
		if (p[i].domid == c->domid || (c->has_target && p[i].domid == c->target))
			return p[i].perms & (XSD_PERM_READ | XSD_PERM_WRITE);
	}
	return p[0].perms & (XSD_PERM_READ | XSD_PERM_WRITE);
}

static unsigned perm_node(const struct xsd_node *n, const struct xsd_caller *c)
{
	return xsd_perm_for(node_perms(n), n->nperms, c);
}

int xsd_perm_parse(const char *s, struct xsd_perm *out)
{
	unsigned long v = 0;
	const char *d = s + 1;

	switch (s[0]) {
	case 'n': out->perms = XSD_PERM_NONE; break;
	case 'r': out->perms = XSD_PERM_READ; break;
	case 'w': out->perms = XSD_PERM_WRITE; break;
	case 'b': out->perms = XSD_PERM_READ | XSD_PERM_WRITE; break;
	default: return EINVAL;
	}
	if (!*d)
		return EINVAL;
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			return EINVAL;
		v = v * 10 + (unsigned long)(*d - '0');
		if (v > XSD_DOMID_MAX)
			return EINVAL;
	}
	out->domid = (uint32_t)v;
	return 0;
}

/*
 * Access to `w->node` with rights `need`. A missing node answers ENOENT only
 * if the nearest existing ancestor grants `need`, else EACCES (hiding).
 */
static int check_access(const struct walk *w, const struct xsd_caller *c, unsigned need)
{
	if (w->node)
		return (perm_node(w->node, c) & need) == need ? 0 : EACCES;
	return (perm_node(w->nearest, c) & need) == need ? ENOENT : EACCES;
}

/* ---- accounting --------------------------------------------------------- */

static struct acct_ent *acct_find(struct xsd_acct *a, unsigned domid, bool add)
{
	for (unsigned i = 0; i < a->n; i++)
		if (a->e[i].domid == domid)
			return &a->e[i];
	if (!add)
		return NULL;
	if (a->n == a->cap) {
		unsigned cap = a->cap ? a->cap * 2 : 4;
		struct acct_ent *e = realloc(a->e, cap * sizeof(*e));
		if (!e)
			return NULL;
		a->e = e;
		a->cap = cap;
	}
	a->e[a->n] = (struct acct_ent){ .domid = domid };
	return &a->e[a->n++];
}

static long acct_count(struct view *v, unsigned domid)
{
	uint32_t *o = xsd_domtab_get(&v->st->owned, domid, sizeof(*o), false);
	long n = o ? *o : 0;
	struct acct_ent *e = v->acct ? acct_find(v->acct, domid, false) : NULL;

	return e ? n + e->delta : n;
}

static uint32_t *owned(struct xsd_store *st, unsigned domid)
{
	return xsd_domtab_get(&st->owned, domid, sizeof(uint32_t), true);
}

/* Node count changes. ENOMEM only when a count or delta slot cannot be
 * made; a delta's live slot is made now so that xsd_acct_apply cannot fail. */
static int acct_add(struct view *v, unsigned domid, long delta)
{
	uint32_t *o = owned(v->st, domid);
	struct acct_ent *e;

	if (!o)
		return ENOMEM;
	if (!v->acct) {
		*o = (uint32_t)((long)*o + delta);
		v->st->nnodes = (unsigned long)((long)v->st->nnodes + delta);
		return 0;
	}
	e = acct_find(v->acct, domid, true);
	if (!e)
		return ENOMEM;
	e->delta += (int32_t)delta;
	return 0;
}

void xsd_acct_apply(struct xsd_store *st, struct xsd_acct *a)
{
	for (unsigned i = 0; i < a->n; i++) {
		uint32_t *o = owned(st, a->e[i].domid);   /* exists: see acct_add */
		*o = (uint32_t)((long)*o + a->e[i].delta);
		st->nnodes = (unsigned long)((long)st->nnodes + a->e[i].delta);
	}
	a->n = 0;
}

void xsd_acct_fini(struct xsd_acct *a)
{
	free(a->e);
	memset(a, 0, sizeof(*a));
}

/* ---- events ------------------------------------------------------------- */

static struct xsd_event *ev_add(struct xsd_evlist *l, const char *path, size_t len, bool exact)
{
	struct xsd_event *e;

	if (l->n == l->cap) {
		unsigned cap = l->cap ? l->cap * 2 : 8;
		struct xsd_event *ne = realloc(l->ev, cap * sizeof(*ne));
		if (!ne)
			return NULL;
		l->ev = ne;
		l->cap = cap;
	}
	e = &l->ev[l->n];
	memset(e, 0, sizeof(*e));
	e->path = strndup(path, len);
	if (!e->path)
		return NULL;
	e->exact = exact;
	l->n++;
	return e;
}

static void ev_nodes(struct xsd_event *e, struct xsd_node *node, struct xsd_node *parent)
{
	if (node)
		node->refs++;
	if (parent)
		parent->refs++;
	e->node = node;
	e->parent = parent;
}

static void ev_oldp(struct xsd_event *e, const struct xsd_perm *p, unsigned n)
{
	e->oldp = malloc(n * sizeof(*p));
	if (e->oldp) {
		memcpy(e->oldp, p, n * sizeof(*p));
		e->noldp = n;
	}
}

void xsd_evlist_clear(struct xsd_evlist *l)
{
	for (unsigned i = 0; i < l->n; i++) {
		free(l->ev[i].path);
		free(l->ev[i].oldp);
		xsd_node_unref(l->ev[i].node);
		xsd_node_unref(l->ev[i].parent);
	}
	free(l->ev);
	memset(l, 0, sizeof(*l));
}

bool xsd_event_visible(const struct xsd_event *e, const struct xsd_caller *c)
{
	if (c->priv)
		return true;
	if (e->oldp && (xsd_perm_for(e->oldp, e->noldp, c) & XSD_PERM_READ))
		return true;
	if (e->node && (perm_node(e->node, c) & XSD_PERM_READ))
		return true;
	return e->parent && (perm_node(e->parent, c) & XSD_PERM_READ);
}

static int special_idx(const char *name)
{
	if (!strcmp(name, "@introduceDomain"))
		return 0;
	if (!strcmp(name, "@releaseDomain"))
		return 1;
	return -1;
}

const struct xsd_perm *xsd_special_perms(struct xsd_store *st, const char *name, unsigned *n)
{
	int i = special_idx(name);

	if (i < 0)
		return NULL;
	*n = st->nspecial[i];
	return st->special[i];
}

int xsd_event_special(struct xsd_store *st, struct xsd_evlist *l, const char *name)
{
	int i = special_idx(name);
	struct xsd_event *e;

	assert(i >= 0);
	e = ev_add(l, name, strlen(name), true);
	if (!e)
		return ENOMEM;
	ev_oldp(e, st->special[i], st->nspecial[i]);
	return e->oldp ? 0 : ENOMEM;
}

/* ---- store life cycle --------------------------------------------------- */

struct xsd_store *xsd_store_new(const struct xsd_limits *lim)
{
	static const char *const init[] = { "/tool/xenstored", "/local/domain/0" };
	const struct xsd_perm n0 = { 0, XSD_PERM_NONE };
	const struct xsd_caller dom0 = { .domid = 0, .priv = true };
	struct xsd_store *st = calloc(1, sizeof(*st));
	struct view v = { .st = st, .c = &dom0 };

	if (!st)
		return NULL;
	st->lim = *lim;
	st->root = xsd_node_new("", 0, NULL, 0);
	if (!st->root || !owned(st, 0))
		goto fail;
	st->root->p.one = n0;
	*owned(st, 0) = 1;
	st->nnodes = 1;
	v.rootp = &st->root;
	for (int i = 0; i < 2; i++) {
		st->special[i] = malloc(sizeof(n0));
		if (!st->special[i])
			goto fail;
		st->special[i][0] = n0;
		st->nspecial[i] = 1;
	}
	for (size_t i = 0; i < sizeof(init) / sizeof(init[0]); i++)
		if (xsd_view_write(&v, init[i], "", 0, true))
			goto fail;
	return st;
fail:
	xsd_store_free(st);
	return NULL;
}

void xsd_store_free(struct xsd_store *st)
{
	if (!st)
		return;
	xsd_node_unref(st->root);
	xsd_domtab_fini(&st->owned);
	xsd_domtab_fini(&st->released);
	free(st->special[0]);
	free(st->special[1]);
	free(st);
}

struct xsd_limits *xsd_store_limits(struct xsd_store *st) { return &st->lim; }

unsigned xsd_store_domain_nodes(const struct xsd_store *st, unsigned domid)
{
	uint32_t *o = xsd_domtab_get((struct xsd_domtab *)&st->owned, domid, sizeof(*o), false);

	return o ? *o : 0;
}

unsigned long xsd_store_nnodes(const struct xsd_store *st) { return st->nnodes; }

/* ---- views -------------------------------------------------------------- */

static void view_init(struct view *v, struct xsd_store *st, struct xsd_txn *tx,
		      const struct xsd_caller *c, struct xsd_evlist *ev)
{
	v->st = st;
	v->c = c;
	v->tx = tx;
	if (tx) {
		v->rootp = &tx->root;
		v->acct = &tx->acct;
		v->ev = NULL;
	} else {
		v->rootp = &st->root;
		v->acct = NULL;
		v->ev = ev;
	}
}

static int record(struct view *v, const char *path, size_t len, unsigned flags)
{
	return v->tx ? xsd_txn_record(v->tx, path, len, flags) : 0;
}

static size_t node_size(unsigned nperms, unsigned vlen, unsigned names)
{
	return NODE_HDR_SIZE + 8u * nperms + vlen + names;
}

static bool too_big(const struct view *v, size_t size)
{
	return !v->c->priv && size >= v->st->lim.node_size;
}

/* ---- reads -------------------------------------------------------------- */

static int read_node(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
		     const char *path, unsigned flags, struct xsd_node **out)
{
	struct view v;
	struct walk w;
	int r;

	if (tx)
		xsd_txn_first_read(st, tx);
	view_init(&v, st, tx, c, NULL);
	walk(*v.rootp, path, &w);
	/* A read refused (EACCES) is not recorded: else a commit's EAGAIN
	 * would tell the caller that a node it may not read has changed. */
	r = check_access(&w, c, XSD_PERM_READ);
	if (r == EACCES)
		return r;
	{
		int rr = record(&v, path, strlen(path), flags);
		if (rr)
			return rr;
	}
	if (r)
		return r;
	*out = w.node;
	return 0;
}

int xsd_read(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
	     const char *path, const void **val, unsigned *len)
{
	struct xsd_node *n;
	int r = read_node(st, tx, c, path, REC_NODE, &n);

	if (r)
		return r;
	*val = node_value(n);
	*len = n->vlen;
	return 0;
}

int xsd_get_perms(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
		  const char *path, const struct xsd_perm **perms, unsigned *np)
{
	struct xsd_node *n;
	int r = read_node(st, tx, c, path, REC_NODE, &n);

	if (r)
		return r;
	*perms = node_perms(n);
	*np = n->nperms;
	return 0;
}

int xsd_directory(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
		  const char *path, const struct xsd_node **dir)
{
	struct xsd_node *n;
	int r = read_node(st, tx, c, path, REC_NODE | REC_DIR, &n);

	if (!r)
		*dir = n;
	return r;
}

/* ---- write / mkdir ------------------------------------------------------ */

static int write_existing(struct view *v, const char *path, const struct walk *w,
			  const void *val, unsigned len, bool mkdir)
{
	struct xsd_node *n = w->node, *parent, **slot;
	uint64_t g;
	int r;

	r = check_access(w, v->c, XSD_PERM_WRITE);
	if (!r)
		r = record(v, path, strlen(path), REC_NODE);
	if (r || mkdir)
		return r;
	if (!v->c->priv && too_big(v, node_size(n->nperms, len, xsd_names_len(n))))
		return ENOSPC;
	g = ++v->st->gen;
	slot = cow_path(v, path, w->depth, g, &parent);
	if (!slot || xsd_node_set_value(slot, val, len))
		return ENOMEM;
	n = *slot;
	n->gen = g;
	if (v->ev) {
		struct xsd_event *e = ev_add(v->ev, path, strlen(path), false);
		if (!e)
			return ENOMEM;
		ev_nodes(e, n, parent);
	}
	return 0;
}

/* Create the missing tail of `path` under w->nearest; the last node gets val. */
static int write_create(struct view *v, const char *path, const struct walk *w,
			const void *val, unsigned len)
{
	struct xsd_node *anc = w->nearest, *n, *parent, **slot;
	const struct xsd_perm *ap = node_perms(anc);
	struct xsd_perm perms[8], *pp = perms;
	unsigned np = anc->nperms, owner, first = w->depth - w->missing;
	const char *p, *comp;
	size_t clen;
	uint64_t g;
	int r;

	r = check_access(w, v->c, XSD_PERM_WRITE);
	if (r != ENOENT)
		return r ? r : EIO;
	/* New nodes copy the ancestor's ACL; an unprivileged creator owns them. */
	if (np > 8) {
		pp = malloc(np * sizeof(*pp));
		if (!pp)
			return ENOMEM;
	}
	memcpy(pp, ap, np * sizeof(*pp));
	if (!v->c->priv)
		pp[0].domid = v->c->domid;
	owner = pp[0].domid;

	/* Quotas, before anything changes. */
	r = ENOSPC;
	if (!v->c->priv && acct_count(v, owner) + (long)w->missing > (long)v->st->lim.nodes)
		goto out;
	p = path + w->nearest_len;
	clen = next_comp(&p, &comp);
	if (!v->c->priv &&
	    too_big(v, node_size(anc->nperms, anc->vlen, xsd_names_len(anc) + (unsigned)clen + 1)))
		goto out;
	for (const char *q = p; *q;) {
		size_t l = next_comp(&q, &comp);
		if (too_big(v, node_size(np, 0, (unsigned)l + 1)))
			goto out;
	}
	if (too_big(v, node_size(np, len, 0)))
		goto out;

	/* What a transaction saw: the ancestor and every created node. */
	r = record(v, path, w->nearest_len, REC_NODE);
	for (const char *q = path + w->nearest_len; !r && *q;) {
		next_comp(&q, &comp);
		r = record(v, path, (size_t)(q - path), REC_NODE);
	}
	if (r)
		goto out;

	r = ENOMEM;
	g = ++v->st->gen;
	slot = cow_path(v, path, first, g, NULL);
	if (!slot)
		goto out;
	parent = *slot;
	p = path + w->nearest_len;
	for (unsigned d = first; d < w->depth; d++) {
		clen = next_comp(&p, &comp);
		n = xsd_node_new(comp, clen, val, *p ? 0 : len);
		if (!n)
			goto out;
		n->gen = n->cgen = n->tgen = g;
		if (xsd_node_set_perms(n, pp, np) || xsd_child_add(parent, n)) {
			xsd_node_unref(n);
			goto out;
		}
		parent->cgen = g;
		if (acct_add(v, owner, 1))
			goto out;
		if (!*p && v->ev) {
			struct xsd_event *e = ev_add(v->ev, path, strlen(path), false);
			if (!e)
				goto out;
			ev_nodes(e, n, parent);
		}
		parent = n;
	}
	r = 0;
out:
	if (r == ENOMEM && v->tx)
		v->tx->failed = true;
	if (pp != perms)
		free(pp);
	return r;
}

int xsd_view_write(struct view *v, const char *path, const void *val, unsigned len, bool mkdir)
{
	struct walk w;

	walk(*v->rootp, path, &w);
	if (w.node)
		return write_existing(v, path, &w, val, len, mkdir);
	return write_create(v, path, &w, val, len);
}

/* ---- rm ----------------------------------------------------------------- */

/*
 * Events and accounting for a removed subtree rooted at n (path in buf).
 * Post-order, children in stored order, as C xenstored removes (and
 * reports) nodes from the leaves up.
 */
static int rm_subtree(struct view *v, struct xsd_node *n, struct xsd_node *parent,
		      char *buf, size_t len, bool exact)
{
	int r = acct_add(v, node_owner(n), -1);

	for (uint32_t i = 0; !r && i < n->nchild; i++) {
		struct xsd_node *c = n->child[i];
		size_t l = len + (len > 1) + c->namelen;
		if (l >= PATH_BUF)
			return EIO;
		if (len > 1)
			buf[len] = '/';
		memcpy(buf + len + (len > 1), node_name(c), c->namelen);
		buf[l] = '\0';
		r = rm_subtree(v, c, n, buf, l, true);
		buf[len] = '\0';
	}
	if (!r && v->ev) {
		struct xsd_event *e = ev_add(v->ev, buf, len, exact);
		if (!e)
			return ENOMEM;
		ev_nodes(e, n, parent);
	}
	return r;
}

/* Unlink child i of `parent` (private), with events; g stamps the parent. */
static int rm_child(struct view *v, struct xsd_node *parent, uint32_t i, const char *path,
		    size_t len, uint64_t g)
{
	char *buf = malloc(PATH_BUF);
	struct xsd_node *n;
	int r;

	if (!buf)
		return ENOMEM;
	memcpy(buf, path, len);
	buf[len] = '\0';
	n = xsd_child_del(parent, i);
	parent->cgen = parent->tgen = g;
	r = rm_subtree(v, n, parent, buf, len, false);
	if (r && v->tx)
		v->tx->failed = true;
	xsd_node_unref(n);
	free(buf);
	return r;
}

int xsd_view_rm(struct view *v, const char *path)
{
	size_t plen = strlen(path);
	const char *comp, *p;
	struct xsd_node *parent, **slot;
	struct walk w;
	uint64_t g;
	int r;

	if (!strcmp(path, "/"))
		return EINVAL;
	walk(*v->rootp, path, &w);
	r = check_access(&w, v->c, XSD_PERM_WRITE);
	if (r == ENOENT && w.parent)
		r = record(v, path, plen, REC_NODE); /* nothing to remove: fine */
	else if (!r)
		r = record(v, path, plen, REC_NODE | REC_TREE);
	if (r || !w.node)
		return r;
	p = strrchr(path, '/');
	r = record(v, path, p == path ? 1 : (size_t)(p - path), REC_NODE);
	if (r)
		return r;
	g = ++v->st->gen;
	slot = cow_path(v, path, w.depth - 1, g, NULL);
	if (!slot)
		return ENOMEM;
	parent = *slot;
	next_comp(&p, &comp);
	return rm_child(v, parent, (uint32_t)xsd_child_find(parent, comp, (size_t)(path + plen - comp)),
			path, plen, g);
}

/* ---- set_perms ---------------------------------------------------------- */

int xsd_view_set_perms(struct view *v, const char *path, const struct xsd_perm *p, unsigned np)
{
	struct xsd_node *n, *parent, **slot;
	struct walk w;
	uint64_t g;
	unsigned oldowner;
	int r;

	walk(*v->rootp, path, &w);
	r = check_access(&w, v->c, XSD_PERM_WRITE | XSD_PERM_OWNER);
	if (r)
		return r;
	n = w.node;
	oldowner = node_owner(n);
	if (!v->c->priv) {
		if (np > v->st->lim.perms)
			return ENOSPC;
		if (p[0].domid != oldowner)
			return EPERM;
		if (too_big(v, node_size(np, n->vlen, xsd_names_len(n))))
			return ENOSPC;
	}
	r = record(v, path, strlen(path), REC_NODE);
	if (r)
		return r;
	g = ++v->st->gen;
	if (v->ev) {
		struct xsd_event *e = ev_add(v->ev, path, strlen(path), false);
		if (!e)
			return ENOMEM;
		ev_oldp(e, node_perms(n), n->nperms);
		if (!e->oldp)
			return ENOMEM;
	}
	slot = cow_path(v, path, w.depth, g, &parent);
	if (!slot || xsd_node_set_perms(*slot, p, np))
		return ENOMEM;
	n = *slot;
	n->gen = g;
	if (v->ev)
		ev_nodes(&v->ev->ev[v->ev->n - 1], n, parent);
	if (oldowner != p[0].domid && (acct_add(v, oldowner, -1) || acct_add(v, p[0].domid, 1))) {
		if (v->tx)
			v->tx->failed = true;
		return ENOMEM;
	}
	return 0;
}

/* ---- public modification entry points ----------------------------------- */

static int modify(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
		  struct xsd_evlist *ev, enum txn_op_type type, const char *path,
		  const void *data, unsigned len)
{
	struct view v;
	int r;

	if (tx && !xsd_txn_room(tx, type, path, len))
		return ENOSPC;   /* before anything changes in its view */
	view_init(&v, st, tx, c, ev);
	switch (type) {
	case OP_WRITE: r = xsd_view_write(&v, path, data, len, false); break;
	case OP_MKDIR: r = xsd_view_write(&v, path, NULL, 0, true); break;
	case OP_RM: r = xsd_view_rm(&v, path); break;
	default: r = xsd_view_set_perms(&v, path, data, len); break;
	}
	if (!r && tx)
		r = xsd_txn_log(tx, type, path, data, len);
	return r;
}

int xsd_write(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
	      const char *path, const void *val, unsigned len, struct xsd_evlist *ev)
{
	return modify(st, tx, c, ev, OP_WRITE, path, val, len);
}

int xsd_mkdir(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
	      const char *path, struct xsd_evlist *ev)
{
	return modify(st, tx, c, ev, OP_MKDIR, path, NULL, 0);
}

int xsd_rm(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
	   const char *path, struct xsd_evlist *ev)
{
	return modify(st, tx, c, ev, OP_RM, path, NULL, 0);
}

int xsd_set_perms(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
		  const char *path, const struct xsd_perm *p, unsigned n, struct xsd_evlist *ev)
{
	int i;
	struct xsd_perm *copy;

	if (n < 1 || n > UINT16_MAX)
		return EINVAL;
	if (path[0] != '@')
		return modify(st, tx, c, ev, OP_SETPERMS, path, p, n);
	/* Special paths: their own ACL, changed at once, no event. */
	i = special_idx(path);
	if (i < 0)
		return ENOENT;   /* as C xenstored: no such special node */
	if ((xsd_perm_for(st->special[i], st->nspecial[i], c) & (XSD_PERM_WRITE | XSD_PERM_OWNER)) !=
	    (XSD_PERM_WRITE | XSD_PERM_OWNER))
		return EACCES;
	if (!c->priv && (n > st->lim.perms || p[0].domid != st->special[i][0].domid))
		return n > st->lim.perms ? ENOSPC : EPERM;
	copy = malloc(n * sizeof(*p));
	if (!copy)
		return ENOMEM;
	memcpy(copy, p, n * sizeof(*p));
	free(st->special[i]);
	st->special[i] = copy;
	st->nspecial[i] = n;
	return 0;
}

/* ---- domains going away ------------------------------------------------- */

static bool names_domain(const struct xsd_node *n, unsigned domid)
{
	const struct xsd_perm *p = node_perms(n);

	if (p[0].domid == domid)
		return true;
	for (unsigned i = 1; i < n->nperms; i++)
		if (p[i].domid == domid && !(p[i].perms & XSD_PERM_IGNORE))
			return true;
	return false;
}

static bool gone_needed(const struct xsd_node *n, unsigned domid)
{
	if (names_domain(n, domid))
		return true;
	for (uint32_t i = 0; i < n->nchild; i++)
		if (gone_needed(n->child[i], domid))
			return true;
	return false;
}

static int gone_walk(struct view *v, struct xsd_node **slot, char *buf, size_t len,
		     unsigned domid, uint64_t g)
{
	struct xsd_node *n = xsd_cow(slot);
	struct xsd_perm *p;
	int r;

	if (!n)
		return ENOMEM;
	n->tgen = g;
	p = n->nperms == 1 ? &n->p.one : n->p.many;
	for (unsigned i = 1; i < n->nperms; i++) {
		if (p[i].domid == domid && !(p[i].perms & XSD_PERM_IGNORE)) {
			p[i].perms |= XSD_PERM_IGNORE;
			n->gen = g;
		}
	}
	for (uint32_t i = n->nchild; i-- > 0;) {
		struct xsd_node *c = n->child[i];
		size_t l = len + (len > 1) + c->namelen;
		if (!gone_needed(c, domid))
			continue;
		if (l >= PATH_BUF)
			return EIO;
		if (len > 1)
			buf[len] = '/';
		memcpy(buf + len + (len > 1), node_name(c), c->namelen);
		buf[l] = '\0';
		if (node_owner(c) == domid)
			r = rm_child(v, n, i, buf, l, g);
		else
			r = gone_walk(v, &n->child[i], buf, l, domid, g);
		buf[len] = '\0';
		if (r)
			return r;
	}
	return 0;
}

int xsd_store_domain_gone(struct xsd_store *st, unsigned domid, struct xsd_evlist *ev)
{
	const struct xsd_caller dom0 = { .priv = true };
	struct view v;
	char *buf;
	int r;

	if (domid == 0 || domid > XSD_DOMID_MAX)
		return EINVAL;
	{
		/* When it went (a generation of its own): transactions started
		 * before may not give it rights (txn.c). */
		uint64_t *rel = xsd_domtab_get(&st->released, domid, sizeof(*rel), true);
		if (rel)
			*rel = ++st->gen;
	}
	view_init(&v, st, NULL, &dom0, ev);
	if (!gone_needed(st->root, domid))
		return 0;
	buf = malloc(PATH_BUF);
	if (!buf)
		return ENOMEM;
	strcpy(buf, "/");
	r = gone_walk(&v, &st->root, buf, 1, domid, ++st->gen);
	free(buf);
	return r;
}

/* ---- consistency check -------------------------------------------------- */

static int check_node(const struct xsd_node *n, struct xsd_domtab *owned_seen,
		      unsigned long *count, uint64_t maxgen)
{
	uint32_t *o;

	if (n->refs < 1 || n->nperms < 1 || (n->nchild && !n->child) ||
	    sizeof(*n) + n->namelen + 1 + n->vlen > malloc_usable_size((void *)n))
		return EIO;
	if (n->gen > maxgen || n->cgen > maxgen || n->tgen > maxgen)
		return EIO;
	if (memchr(node_name(n), '/', n->namelen))
		return EIO;
	o = xsd_domtab_get(owned_seen, node_owner(n), sizeof(*o), true);
	if (!o)
		return ENOMEM;
	(*o)++;
	(*count)++;
	for (uint32_t i = 0; i < n->nchild; i++) {
		const struct xsd_node *c = n->child[i];
		int r;
		if (!c->namelen || c->tgen > n->tgen)
			return EIO;
		r = check_node(c, owned_seen, count, maxgen);
		if (r)
			return r;
	}
	return 0;
}

int xsd_store_check(struct xsd_store *st)
{
	struct xsd_domtab seen = { 0 };
	unsigned long count = 0;
	int r = check_node(st->root, &seen, &count, st->gen);

	if (!r && count != st->nnodes)
		r = EIO;
	/* Every count seen must match, and every count kept must be seen. */
	for (unsigned d = xsd_domtab_next(&st->owned, 0); !r && d <= XSD_DOMID_MAX;
	     d = xsd_domtab_next(&st->owned, d + 1)) {
		uint32_t *a, *b;
		a = xsd_domtab_get(&seen, d, sizeof(*a), false);
		b = xsd_domtab_get(&st->owned, d, sizeof(*b), false);
		if ((a ? *a : 0) != *b)
			r = EIO;
	}
	for (unsigned d = xsd_domtab_next(&seen, 0); !r && d <= XSD_DOMID_MAX;
	     d = xsd_domtab_next(&seen, d + 1))
		if (*(uint32_t *)xsd_domtab_get(&seen, d, sizeof(uint32_t), false) &&
		    !xsd_domtab_get(&st->owned, d, sizeof(uint32_t), false))
			r = EIO;
	xsd_domtab_fini(&seen);
	return r;
}
