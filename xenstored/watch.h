/*
 * xenstored/watch.h — the watch table: which (path, token) pairs each
 * connection watches, and which watches an event fires.
 *
 * Pure, single-threaded. Lookup is by path: an event on /a/b/c checks the
 * watches registered on /, /a, /a/b and /a/b/c (or only the exact path for
 * RM descendants and @special events), so cost is O(depth), not O(watches).
 * The watches an event fires are called in C xenstored's order: by owner
 * (the `oseq` given at registration: connection creation order), then by
 * registration.
 * Errors: 0 or positive errno (EEXIST, ENOENT, ENOMEM).
 * Ownership: the table owns its watches; `owner` is an opaque pointer (the
 * connection) that the table never dereferences.
 */
#ifndef PVNET_XENSTORED_WATCH_H
#define PVNET_XENSTORED_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "xenstored/map.h"
#include "xenstored/store.h"

struct xsd_watch {
	struct xsd_watch *next, *prev;         /* same path */
	struct xsd_watch *cnext, *cprev;       /* same owner */
	void *owner;
	uint64_t oseq;  /* owner's order */
	uint64_t seq;   /* registration order */
	char *token;
	size_t strip;   /* bytes of the event path to drop (relative watch) */
	size_t plen;
	char path[];    /* canonical path or @name */
};

struct xsd_watches {
	struct xsd_map map;   /* path -> first watch on it */
	unsigned n;
	uint64_t next_seq;
	struct xsd_watch **hits;  /* scratch for xsd_watch_fire */
	unsigned hcap;
};

void xsd_watches_init(struct xsd_watches *t);
/* All watches must have been removed. */
void xsd_watches_fini(struct xsd_watches *t);
/* Register; `*list` is the owner's list head. EEXIST for a duplicate. */
int xsd_watch_add(struct xsd_watches *t, struct xsd_watch **list, void *owner, uint64_t oseq,
		  const char *path, const char *token, size_t strip);
/* Remove the owner's (path, token) watch, or ENOENT. */
int xsd_watch_del(struct xsd_watches *t, struct xsd_watch **list, void *owner,
		  const char *path, const char *token);
/* Remove every watch on the owner's list. */
void xsd_watch_del_all(struct xsd_watches *t, struct xsd_watch **list);

typedef void (*xsd_watch_fn)(struct xsd_watch *w, const struct xsd_event *e, void *arg);
/* Call fn for every watch `e` fires. fn must not change the table. */
void xsd_watch_fire(struct xsd_watches *t, const struct xsd_event *e, xsd_watch_fn fn, void *arg);

#endif
