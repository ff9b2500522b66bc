/*
 * Node objects: allocation, copy-on-write, values and ACLs, and the ordered
 * child list with its lazily built hash index. See store_impl.h.
 */
#include "xenstored/store_impl.h"

#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* Child lists longer than this get a hash index; shorter ones are scanned
 * (a length compare per child, cheap next to the index's memory). */
#define INDEX_MIN     128u

static long live_nodes;

long xsd_node_live_count(void) { return live_nodes; }

/* ---- nodes -------------------------------------------------------------- */

/* One allocation: header, name, NUL, value. NULL on ENOMEM. */
struct xsd_node *xsd_node_new(const char *name, size_t len, const void *val, unsigned vlen)
{
	struct xsd_node *n = calloc(1, sizeof(*n) + len + 1 + vlen);

	if (!n)
		return NULL;
	memcpy(n->data, name, len);
	n->namelen = (uint16_t)len;
	if (vlen)
		memcpy(n->data + len + 1, val, vlen);
	n->vlen = vlen;
	n->refs = 1;
	n->nperms = 1;
	live_nodes++;
	return n;
}

static void node_free_one(struct xsd_node *n)
{
	if (n->nperms > 1)
		free(n->p.many);
	if (n->child) {
		free(n->child[-1]);   /* the child index */
		free(n->child - 1);
	}
	free(n);
	live_nodes--;
}

void xsd_node_unref(struct xsd_node *n)
{
	if (!n || --n->refs)
		return;
	for (uint32_t i = 0; i < n->nchild; i++)
		xsd_node_unref(n->child[i]);
	node_free_one(n);
}

int xsd_node_set_perms(struct xsd_node *n, const struct xsd_perm *p, unsigned np)
{
	struct xsd_perm *copy = NULL;

	assert(np >= 1 && np <= UINT16_MAX);
	if (np > 1) {
		copy = malloc(np * sizeof(*p));
		if (!copy)
			return ENOMEM;
		memcpy(copy, p, np * sizeof(*p));
	}
	if (n->nperms > 1)
		free(n->p.many);
	if (copy)
		n->p.many = copy;
	else
		n->p.one = p[0];
	n->nperms = (uint16_t)np;
	return 0;
}

/*
 * New value for the private node in *slot. A value that does not fit the
 * room after the name moves the node (realloc): the slot is updated, and
 * nothing else points to a private node.
 */
int xsd_node_set_value(struct xsd_node **slot, const void *val, unsigned len)
{
	struct xsd_node *n = *slot;

	assert(n->refs == 1);
	if (sizeof(*n) + n->namelen + 1 + len > malloc_usable_size(n)) {
		n = realloc(n, sizeof(*n) + n->namelen + 1 + len);
		if (!n)
			return ENOMEM;
		*slot = n;
	}
	if (len)
		memcpy(node_value(n), val, len);
	n->vlen = len;
	return 0;
}

/* Room of a child array holding n children: 4, then powers of two. */
static uint32_t child_cap(uint32_t n)
{
	uint32_t cap = 4;

	while (cap < n)
		cap *= 2;
	return cap;
}

/* A private copy of a shared node; the children become shared. */
static struct xsd_node *node_copy(struct xsd_node *n)
{
	struct xsd_node *c = xsd_node_new(node_name(n), n->namelen, node_value(n), n->vlen);

	if (!c)
		return NULL;
	c->gen = n->gen;
	c->cgen = n->cgen;
	c->tgen = n->tgen;
	if (xsd_node_set_perms(c, node_perms(n), n->nperms))
		goto fail;
	if (n->nchild) {
		struct xsd_node **a = malloc((1 + child_cap(n->nchild)) * sizeof(*a));
		if (!a)
			goto fail;
		a[0] = NULL;
		c->child = a + 1;
		for (uint32_t i = 0; i < n->nchild; i++) {
			c->child[i] = n->child[i];
			c->child[i]->refs++;
		}
		c->nchild = n->nchild;
	}
	return c;
fail:
	xsd_node_unref(c);
	return NULL;
}

/* Make *slot exclusively ours (copy if shared). NULL on ENOMEM. */
struct xsd_node *xsd_cow(struct xsd_node **slot)
{
	struct xsd_node *n = *slot, *c;

	if (n->refs == 1)
		return n;
	c = node_copy(n);
	if (!c)
		return NULL;
	n->refs--;
	*slot = c;
	return c;
}

/* ---- children ----------------------------------------------------------- */

static uint32_t child_hash(const struct xsd_node *c)
{
	return xsd_hash(node_name(c), c->namelen);
}

/* The index lives in the slot before child[0]. */
static struct child_index **index_slot(struct xsd_node *n)
{
	return (struct child_index **)(void *)(n->child - 1);
}

static void index_insert(struct xsd_node *n, struct child_index *x, uint32_t i)
{
	uint32_t mask = x->cap - 1, h = child_hash(n->child[i]) & mask;

	while (x->slot[h])
		h = (h + 1) & mask;
	x->slot[h] = i + 1;
}

static void index_drop(struct xsd_node *n)
{
	if (n->child) {
		free(*index_slot(n));
		*index_slot(n) = NULL;
	}
}

static struct child_index *index_build(struct xsd_node *n)
{
	struct child_index *x;
	uint32_t cap = 64;

	while (cap < n->nchild * 2)
		cap *= 2;
	x = calloc(1, sizeof(*x) + cap * sizeof(x->slot[0]));
	if (!x)
		return NULL; /* lookups fall back to a linear scan */
	x->cap = cap;
	*index_slot(n) = x;
	for (uint32_t i = 0; i < n->nchild; i++)
		index_insert(n, x, i);
	return x;
}

static bool child_is(const struct xsd_node *c, const char *name, size_t len)
{
	return c->namelen == len && !memcmp(node_name(c), name, len);
}

/* Index of the child called name[0..len), or -1. */
long xsd_child_find(struct xsd_node *n, const char *name, size_t len)
{
	struct child_index *x = NULL;
	uint32_t mask;

	if (n->nchild > INDEX_MIN) {
		x = *index_slot(n);
		if (!x)
			x = index_build(n);
	}
	if (!x) {
		for (uint32_t i = 0; i < n->nchild; i++)
			if (child_is(n->child[i], name, len))
				return i;
		return -1;
	}
	mask = x->cap - 1;
	for (uint32_t s = xsd_hash(name, len) & mask;; s = (s + 1) & mask) {
		uint32_t i = x->slot[s];
		if (!i)
			return -1;
		if (child_is(n->child[i - 1], name, len))
			return i - 1;
	}
}

int xsd_child_add(struct xsd_node *n, struct xsd_node *c)
{
	struct child_index *x;

	if (!n->child || n->nchild == child_cap(n->nchild)) {
		struct xsd_node **a = n->child ? n->child - 1 : NULL;
		a = realloc(a, (1 + child_cap(n->nchild + 1)) * sizeof(*a));
		if (!a)
			return ENOMEM;
		if (!n->child)
			a[0] = NULL;
		n->child = a + 1;
	}
	n->child[n->nchild++] = c;
	x = *index_slot(n);
	if (x) {
		if (n->nchild * 2 > x->cap)
			index_drop(n);  /* rebuilt bigger on the next lookup */
		else
			index_insert(n, x, n->nchild - 1);
	}
	return 0;
}

/* Unlink child i (keeping the order) and return it with its reference. */
struct xsd_node *xsd_child_del(struct xsd_node *n, uint32_t i)
{
	struct xsd_node *c = n->child[i];

	memmove(&n->child[i], &n->child[i + 1], (n->nchild - i - 1) * sizeof(*n->child));
	n->nchild--;
	index_drop(n);
	return c;
}

/* Bytes of the child-name list (for the node-size quota). */
unsigned xsd_names_len(const struct xsd_node *n)
{
	unsigned len = 0;

	for (uint32_t i = 0; i < n->nchild; i++)
		len += n->child[i]->namelen + 1u;
	return len;
}

unsigned xsd_node_nchildren(const struct xsd_node *n) { return n->nchild; }
uint64_t xsd_node_cgen(const struct xsd_node *n) { return n->cgen; }

const char *xsd_node_child_name(const struct xsd_node *n, unsigned i, unsigned *len)
{
	*len = n->child[i]->namelen;
	return node_name(n->child[i]);
}

