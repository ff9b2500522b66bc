#include "xenstored/watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void xsd_watches_init(struct xsd_watches *t)
{
	memset(t, 0, sizeof(*t));
	xsd_map_init(&t->map);
}

void xsd_watches_fini(struct xsd_watches *t)
{
	xsd_map_fini(&t->map);
	free(t->hits);
	t->hits = NULL;
	t->hcap = 0;
}

static struct xsd_watch *find(struct xsd_watches *t, void *owner, const char *path,
			      size_t plen, const char *token)
{
	for (struct xsd_watch *w = xsd_map_get(&t->map, path, plen); w; w = w->next)
		if (w->owner == owner && !strcmp(w->token, token))
			return w;
	return NULL;
}

int xsd_watch_add(struct xsd_watches *t, struct xsd_watch **list, void *owner, uint64_t oseq,
		  const char *path, const char *token, size_t strip)
{
	size_t plen = strlen(path);
	struct xsd_watch *w, *head;

	if (find(t, owner, path, plen, token))
		return EEXIST;
	w = calloc(1, sizeof(*w) + plen + 1);
	if (!w)
		return ENOMEM;
	memcpy(w->path, path, plen + 1);
	w->plen = plen;
	w->owner = owner;
	w->oseq = oseq;
	w->seq = ++t->next_seq;
	w->strip = strip;
	w->token = strdup(token);
	head = xsd_map_get(&t->map, path, plen);
	if (!w->token || (!head && xsd_map_put(&t->map, w->path, plen, w))) {
		free(w->token);
		free(w);
		return ENOMEM;
	}
	if (head) {
		/* Append, so watches on one path fire in registration order. */
		struct xsd_watch *last = head;
		while (last->next)
			last = last->next;
		last->next = w;
		w->prev = last;
	}
	w->cnext = *list;
	if (*list)
		(*list)->cprev = w;
	*list = w;
	t->n++;
	return 0;
}

static void unlink_watch(struct xsd_watches *t, struct xsd_watch **list, struct xsd_watch *w)
{
	if (w->prev) {
		w->prev->next = w->next;
	} else {
		xsd_map_del(&t->map, w->path, w->plen);
		if (w->next)
			xsd_map_put(&t->map, w->next->path, w->plen, w->next); /* slot just freed */
	}
	if (w->next)
		w->next->prev = w->prev;
	if (w->cprev)
		w->cprev->cnext = w->cnext;
	else
		*list = w->cnext;
	if (w->cnext)
		w->cnext->cprev = w->cprev;
	t->n--;
	free(w->token);
	free(w);
}

int xsd_watch_del(struct xsd_watches *t, struct xsd_watch **list, void *owner,
		  const char *path, const char *token)
{
	struct xsd_watch *w = find(t, owner, path, strlen(path), token);

	if (!w)
		return ENOENT;
	unlink_watch(t, list, w);
	return 0;
}

void xsd_watch_del_all(struct xsd_watches *t, struct xsd_watch **list)
{
	while (*list)
		unlink_watch(t, list, *list);
}

/* Collect the watches on path[0..len) (whose hash is `hash`) into t->hits;
 * false on ENOMEM. */
static bool collect(struct xsd_watches *t, const char *path, size_t len, uint32_t hash, unsigned *n)
{
	for (struct xsd_watch *w = xsd_map_get_hashed(&t->map, path, len, hash); w; w = w->next) {
		if (*n == t->hcap) {
			unsigned cap = t->hcap ? t->hcap * 2 : 64;
			struct xsd_watch **h = realloc(t->hits, cap * sizeof(*h));
			if (!h)
				return false;
			t->hits = h;
			t->hcap = cap;
		}
		t->hits[(*n)++] = w;
	}
	return true;
}

static bool before(const struct xsd_watch *a, const struct xsd_watch *b)
{
	return a->oseq != b->oseq ? a->oseq < b->oseq : a->seq < b->seq;
}

void xsd_watch_fire(struct xsd_watches *t, const struct xsd_event *e, xsd_watch_fn fn, void *arg)
{
	const char *p = e->path;
	size_t len = strlen(p);
	unsigned n = 0;

	if (!t->n)
		return;
	if (e->exact || p[0] == '@') {
		collect(t, p, len, xsd_hash(p, len), &n);
	} else {
		/* "/" and then every ancestor prefix, ending with the path
		 * itself; the prefixes' hashes are built along the path, so a
		 * deep path costs its length, not its length squared. */
		uint32_t h = xsd_hash(p, 1);
		collect(t, "/", 1, h, &n);
		for (size_t i = 2, done = 1; i <= len; i++)
			if (i == len || p[i] == '/') {
				h = xsd_hash_more(h, p + done, i - done);
				done = i;
				collect(t, p, i, h, &n);
			}
	}
	/* Insertion sort: the hits of each path are already in order. */
	for (unsigned i = 1; i < n; i++) {
		struct xsd_watch *w = t->hits[i];
		unsigned j = i;
		for (; j > 0 && before(w, t->hits[j - 1]); j--)
			t->hits[j] = t->hits[j - 1];
		t->hits[j] = w;
	}
	for (unsigned i = 0; i < n; i++)
		fn(t->hits[i], e, arg);
}
