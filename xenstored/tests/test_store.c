/*
 * Unit tests of the pure store: tree, permissions, quotas, events,
 * transactions, domain removal, path rules. Every test ends with a
 * consistency check and, after freeing the store, zero live nodes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xenstored/path.h"
#include "xenstored/map.h"
#include "xenstored/store.h"
#include "xenstored/watch.h"

static const struct xsd_caller dom0 = { .domid = 0, .priv = true };
static const struct xsd_caller dom5 = { .domid = 5 };
static const struct xsd_caller dom6 = { .domid = 6 };

static int setup(void **state)
{
	struct xsd_limits lim = XSD_LIMITS_DEFAULT;

	*state = xsd_store_new(&lim);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct xsd_store *st = *state;

	assert_int_equal(xsd_store_check(st), 0);
	xsd_store_free(st);
	assert_int_equal(xsd_node_live_count(), 0);
	return 0;
}

/* Read as a NUL-terminated string (static buffer), or NULL on error. */
static const char *rd(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
		      const char *path, int *err)
{
	static char buf[4200];
	const void *v;
	unsigned len;
	int e = xsd_read(st, tx, c, path, &v, &len);

	if (err)
		*err = e;
	if (e)
		return NULL;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

static int wr(struct xsd_store *st, struct xsd_txn *tx, const struct xsd_caller *c,
	      const char *path, const char *val)
{
	return xsd_write(st, tx, c, path, val, (unsigned)strlen(val), NULL);
}

static int perms(struct xsd_store *st, const struct xsd_caller *c, const char *path,
		 const char *spec)
{
	struct xsd_perm p[16];
	unsigned n = 0;
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
		assert_int_equal(xsd_perm_parse(t, &p[n++]), 0);
	return xsd_set_perms(st, NULL, c, path, p, n, NULL);
}

/* Children of `path` joined by ',' */
static const char *dir(struct xsd_store *st, struct xsd_txn *tx, const char *path)
{
	static char buf[4096];
	const struct xsd_node *d;
	size_t len = 0;

	buf[0] = '\0';
	if (xsd_directory(st, tx, &dom0, path, &d))
		return NULL;
	for (unsigned i = 0; i < xsd_node_nchildren(d); i++) {
		unsigned l;
		const char *name = xsd_node_child_name(d, i, &l);
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%.*s", i ? "," : "",
					(int)l, name);
	}
	return buf;
}

static void test_initial_tree(void **state)
{
	struct xsd_store *st = *state;
	const struct xsd_perm *p;
	unsigned n;

	assert_string_equal(dir(st, NULL, "/"), "tool,local");
	assert_string_equal(dir(st, NULL, "/local/domain"), "0");
	assert_string_equal(dir(st, NULL, "/tool"), "xenstored");
	assert_int_equal(xsd_get_perms(st, NULL, &dom0, "/", &p, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].domid, 0);
	assert_int_equal(p[0].perms, XSD_PERM_NONE);
	assert_int_equal(xsd_store_nnodes(st), 6);
}

static void test_write_read_rm(void **state)
{
	struct xsd_store *st = *state;
	int e;

	assert_int_equal(wr(st, NULL, &dom0, "/a/b/c", "v"), 0);
	assert_string_equal(rd(st, NULL, &dom0, "/a/b/c", NULL), "v");
	assert_string_equal(rd(st, NULL, &dom0, "/a/b", NULL), "");
	assert_null(rd(st, NULL, &dom0, "/a/x", &e));
	assert_int_equal(e, ENOENT);
	/* MKDIR keeps an existing value; children keep creation order. */
	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/a/b/c", NULL), 0);
	assert_string_equal(rd(st, NULL, &dom0, "/a/b/c", NULL), "v");
	assert_int_equal(wr(st, NULL, &dom0, "/a/z", ""), 0);
	assert_int_equal(wr(st, NULL, &dom0, "/a/m", ""), 0);
	assert_string_equal(dir(st, NULL, "/a"), "b,z,m");
	/* Binary values. */
	assert_int_equal(xsd_write(st, NULL, &dom0, "/a/bin", "x\0y", 3, NULL), 0);
	{
		const void *v;
		unsigned len;
		assert_int_equal(xsd_read(st, NULL, &dom0, "/a/bin", &v, &len), 0);
		assert_int_equal(len, 3);
		assert_memory_equal(v, "x\0y", 3);
	}
	/* RM: subtree; missing node fine if parent exists; else ENOENT; never "/". */
	assert_int_equal(xsd_rm(st, NULL, &dom0, "/a/b", NULL), 0);
	assert_null(rd(st, NULL, &dom0, "/a/b/c", &e));
	assert_int_equal(xsd_rm(st, NULL, &dom0, "/a/b", NULL), 0);
	assert_int_equal(xsd_rm(st, NULL, &dom0, "/a/b/c", NULL), ENOENT);
	assert_int_equal(xsd_rm(st, NULL, &dom0, "/", NULL), EINVAL);
	assert_string_equal(dir(st, NULL, "/a"), "z,m,bin");
}

static void test_big_directory(void **state)
{
	struct xsd_store *st = *state;
	char path[64];

	/* Past the child index threshold: lookups, deletes, re-adds. */
	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "/big/n%d", i);
		assert_int_equal(wr(st, NULL, &dom0, path, path), 0);
	}
	for (int i = 0; i < 300; i += 3) {
		snprintf(path, sizeof(path), "/big/n%d", i);
		assert_int_equal(xsd_rm(st, NULL, &dom0, path, NULL), 0);
	}
	for (int i = 0; i < 300; i++) {
		int e;
		snprintf(path, sizeof(path), "/big/n%d", i);
		const char *v = rd(st, NULL, &dom0, path, &e);
		if (i % 3 == 0)
			assert_int_equal(e, ENOENT);
		else
			assert_string_equal(v, path);
	}
	assert_int_equal(xsd_store_check(st), 0);
}

static void test_permissions(void **state)
{
	struct xsd_store *st = *state;
	const struct xsd_perm *p;
	unsigned n;
	int e;

	/* What libxl does: a home owned by dom0, readable by the domain, and a
	 * guest-owned subdirectory. */
	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/local/domain/5", NULL), 0);
	assert_int_equal(perms(st, &dom0, "/local/domain/5", "n0 r5"), 0);
	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/local/domain/5/data", NULL), 0);
	assert_int_equal(perms(st, &dom0, "/local/domain/5/data", "n5"), 0);

	assert_null(rd(st, NULL, &dom5, "/local", &e));
	assert_int_equal(e, EACCES);
	assert_non_null(rd(st, NULL, &dom5, "/local/domain/5", NULL));
	assert_int_equal(wr(st, NULL, &dom5, "/local/domain/5/x", "1"), EACCES);
	/* Hiding: missing below a readable node is ENOENT, else EACCES. */
	assert_null(rd(st, NULL, &dom5, "/local/domain/5/nope", &e));
	assert_int_equal(e, ENOENT);
	assert_null(rd(st, NULL, &dom5, "/local/domain/0/nope", &e));
	assert_int_equal(e, EACCES);
	assert_null(rd(st, NULL, &dom6, "/local/domain/5/nope", &e));
	assert_int_equal(e, EACCES);

	/* Created nodes copy the ancestor's ACL, with the creator as owner. */
	assert_int_equal(perms(st, &dom0, "/local/domain/5/data", "n5 r6"), 0);
	assert_int_equal(wr(st, NULL, &dom5, "/local/domain/5/data/a/b", "1"), 0);
	assert_int_equal(xsd_get_perms(st, NULL, &dom5, "/local/domain/5/data/a", &p, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].domid, 5);
	assert_int_equal(p[1].domid, 6);
	assert_int_equal(p[1].perms, XSD_PERM_READ);
	assert_string_equal(rd(st, NULL, &dom6, "/local/domain/5/data/a/b", NULL), "1");
	assert_int_equal(wr(st, NULL, &dom6, "/local/domain/5/data/a/b", "2"), EACCES);
	/* Privileged creators keep the ancestor's owner. */
	assert_int_equal(wr(st, NULL, &dom0, "/local/domain/5/data/by0", "1"), 0);
	assert_int_equal(xsd_get_perms(st, NULL, &dom0, "/local/domain/5/data/by0", &p, &n), 0);
	assert_int_equal(p[0].domid, 5);
	assert_int_equal(xsd_store_domain_nodes(st, 5), 4);

	/* Owner changes: only privileged callers. */
	assert_int_equal(perms(st, &dom5, "/local/domain/5/data/a", "n6"), EPERM);
	assert_int_equal(perms(st, &dom5, "/local/domain/5/data/a/b", "n5 b6"), 0);
	assert_int_equal(wr(st, NULL, &dom6, "/local/domain/5/data/a/b", "2"), 0);
	/* SET_PERMS needs ownership. */
	assert_int_equal(perms(st, &dom6, "/local/domain/5/data/a", "n5"), EACCES);
	assert_int_equal(perms(st, &dom0, "/local/domain/5/data/a", "n6"), 0);
	assert_int_equal(xsd_store_domain_nodes(st, 6), 1);

	/* SET_TARGET: acts as the target's owner. */
	{
		struct xsd_caller dm = { .domid = 7, .has_target = true, .target = 5 };
		assert_string_equal(rd(st, NULL, &dm, "/local/domain/5/data/a/b", NULL), "2");
		assert_int_equal(wr(st, NULL, &dm, "/local/domain/5/data/t", "x"), 0);
	}
	/* Special paths: own ACLs, owner-only. */
	assert_int_equal(perms(st, &dom0, "@releaseDomain", "n0 r5"), 0);
	assert_int_equal(perms(st, &dom5, "@releaseDomain", "n0"), EACCES);
	assert_int_equal(perms(st, &dom0, "@nope", "n0"), ENOENT);
}

static void test_quotas(void **state)
{
	struct xsd_store *st = *state;
	char path[64], big[2100];
	struct xsd_perm p[6];

	xsd_store_limits(st)->nodes = 10;
	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/local/domain/5", NULL), 0);
	assert_int_equal(perms(st, &dom0, "/local/domain/5", "n5"), 0);
	/* Node counted already: the home (owned by 5). */
	for (int i = 0; i < 9; i++) {
		snprintf(path, sizeof(path), "/local/domain/5/n%d", i);
		assert_int_equal(wr(st, NULL, &dom5, path, "x"), 0);
	}
	assert_int_equal(wr(st, NULL, &dom5, "/local/domain/5/over", "x"), ENOSPC);
	assert_int_equal(wr(st, NULL, &dom5, "/local/domain/5/n0", "rewrite ok"), 0);
	assert_int_equal(xsd_rm(st, NULL, &dom5, "/local/domain/5/n0", NULL), 0);
	assert_int_equal(wr(st, NULL, &dom5, "/local/domain/5/a/b", "x"), ENOSPC);
	assert_int_equal(wr(st, NULL, &dom5, "/local/domain/5/a", "x"), 0);
	/* Privileged callers are exempt. */
	assert_int_equal(wr(st, NULL, &dom0, "/local/domain/5/by0/x/y", "x"), 0);
	/* Node size: 24 + 8 per perm + value >= 2048 fails. */
	memset(big, 'x', sizeof(big));
	assert_int_equal(xsd_write(st, NULL, &dom5, "/local/domain/5/n1", big, 2048 - 32, NULL), ENOSPC);
	assert_int_equal(xsd_write(st, NULL, &dom5, "/local/domain/5/n1", big, 2048 - 33, NULL), 0);
	assert_int_equal(xsd_write(st, NULL, &dom0, "/local/domain/5/n1", big, 2100, NULL), 0);
	/* Permissions per node. */
	for (int i = 0; i < 6; i++)
		p[i] = (struct xsd_perm){ i ? 10u + (unsigned)i : 5u, XSD_PERM_READ };
	assert_int_equal(xsd_set_perms(st, NULL, &dom5, "/local/domain/5/n2", p, 6, NULL), ENOSPC);
	assert_int_equal(xsd_set_perms(st, NULL, &dom5, "/local/domain/5/n2", p, 5, NULL), 0);
}

/* ---- events and watches ------------------------------------------------- */

struct seen {
	char buf[4096];
	size_t len;
};

static void collect(struct xsd_watch *w, const struct xsd_event *e, void *arg)
{
	struct seen *s = arg;

	s->len += (size_t)snprintf(s->buf + s->len, sizeof(s->buf) - s->len, "%s%s@%s",
				   s->len ? " " : "", e->path + w->strip, w->token);
}

static const char *fire_all(struct xsd_watches *t, struct xsd_evlist *ev)
{
	static struct seen s;

	s.len = 0;
	s.buf[0] = '\0';
	for (unsigned i = 0; i < ev->n; i++)
		xsd_watch_fire(t, &ev->ev[i], collect, &s);
	xsd_evlist_clear(ev);
	return s.buf;
}

static void test_watches(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_watches t;
	struct xsd_watch *l1 = NULL, *l2 = NULL;
	struct xsd_evlist ev = { 0 };
	int o1, o2;

	xsd_watches_init(&t);
	assert_int_equal(xsd_watch_add(&t, &l1, &o1, 1, "/a", "t1", 0), 0);
	assert_int_equal(xsd_watch_add(&t, &l1, &o1, 1, "/a", "t1", 0), EEXIST);
	assert_int_equal(xsd_watch_add(&t, &l1, &o1, 1, "/a", "t2", 0), 0);
	assert_int_equal(xsd_watch_add(&t, &l2, &o2, 2, "/a/b/c", "deep", 0), 0);
	assert_int_equal(xsd_watch_add(&t, &l2, &o2, 2, "/local/domain/0/r", "rel", 16), 0);
	assert_int_equal(xsd_watch_add(&t, &l2, &o2, 2, "/", "root", 0), 0);

	/* One WRITE creating ancestors: one event, for the written path. */
	assert_int_equal(xsd_write(st, NULL, &dom0, "/a/b/c/d", "1", 1, &ev), 0);
	assert_string_equal(fire_all(&t, &ev), "/a/b/c/d@t1 /a/b/c/d@t2 /a/b/c/d@deep /a/b/c/d@root");
	/* Reads never fire; a sibling does not fire the deep watch. */
	assert_int_equal(xsd_write(st, NULL, &dom0, "/a/x", "1", 1, &ev), 0);
	assert_string_equal(fire_all(&t, &ev), "/a/x@t1 /a/x@t2 /a/x@root");
	/* RM of an ancestor: exact events for removed descendants, leaves first;
	 * per event, owners in order, then registration order (as C). */
	assert_int_equal(xsd_rm(st, NULL, &dom0, "/a/b", &ev), 0);
	assert_string_equal(fire_all(&t, &ev), "/a/b/c@deep /a/b@t1 /a/b@t2 /a/b@root");
	/* Relative watches see relative paths. */
	assert_int_equal(xsd_write(st, NULL, &dom0, "/local/domain/0/r/s", "1", 1, &ev), 0);
	assert_string_equal(fire_all(&t, &ev), "r/s@rel /local/domain/0/r/s@root");
	/* SET_PERMS fires; MKDIR of an existing node does not. */
	assert_int_equal(perms(st, &dom0, "/a/x", "n0 r1"), 0);
	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/a/x", &ev), 0);
	assert_int_equal(ev.n, 0);
	assert_int_equal(xsd_watch_del(&t, &l1, &o1, "/a", "t1"), 0);
	assert_int_equal(xsd_watch_del(&t, &l1, &o1, "/a", "t1"), ENOENT);
	assert_int_equal(xsd_write(st, NULL, &dom0, "/a", "1", 1, &ev), 0);
	assert_string_equal(fire_all(&t, &ev), "/a@t2 /a@root");
	xsd_watch_del_all(&t, &l1);
	xsd_watch_del_all(&t, &l2);
	assert_int_equal(t.n, 0);
	xsd_watches_fini(&t);
}

static void test_event_visibility(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_evlist ev = { 0 };

	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/v/p", NULL), 0);
	assert_int_equal(perms(st, &dom0, "/v/p", "n0 r5"), 0);
	assert_int_equal(xsd_write(st, NULL, &dom0, "/v/p/secret", "1", 1, &ev), 0);
	assert_int_equal(perms(st, &dom0, "/v/p/secret", "n0"), 0);
	assert_int_equal(ev.n, 1);
	/* The new node inherited "n0 r5": visible to 5, not to 6. */
	assert_true(xsd_event_visible(&ev.ev[0], &dom5));
	assert_false(xsd_event_visible(&ev.ev[0], &dom6));
	assert_true(xsd_event_visible(&ev.ev[0], &dom0));
	xsd_evlist_clear(&ev);
	/* Losing access by SET_PERMS still tells the watcher (old ACL). */
	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/w", NULL), 0);
	assert_int_equal(perms(st, &dom0, "/w", "n0 r5"), 0);
	{
		struct xsd_perm p = { 0, XSD_PERM_NONE };
		assert_int_equal(xsd_set_perms(st, NULL, &dom0, "/w", &p, 1, &ev), 0);
	}
	assert_int_equal(ev.n, 1);
	assert_true(xsd_event_visible(&ev.ev[0], &dom5));
	xsd_evlist_clear(&ev);
	/* Special events follow their ACL. */
	assert_int_equal(xsd_event_special(st, &ev, "@releaseDomain"), 0);
	assert_false(xsd_event_visible(&ev.ev[0], &dom5));
	xsd_evlist_clear(&ev);
	assert_int_equal(perms(st, &dom0, "@releaseDomain", "n0 r5"), 0);
	assert_int_equal(xsd_event_special(st, &ev, "@releaseDomain"), 0);
	assert_true(xsd_event_visible(&ev.ev[0], &dom5));
	xsd_evlist_clear(&ev);
}

/* ---- transactions ------------------------------------------------------- */

static void test_txn_isolation(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_evlist ev = { 0 };
	struct xsd_txn *tx;

	assert_int_equal(wr(st, NULL, &dom0, "/t/a", "a"), 0);
	tx = xsd_txn_start(st, &dom0);
	assert_non_null(tx);
	/* test-xenstore "ta rmw": in-tx sees b, outside still a. */
	assert_string_equal(rd(st, tx, &dom0, "/t/a", NULL), "a");
	assert_int_equal(wr(st, tx, &dom0, "/t/a", "b"), 0);
	assert_int_equal(wr(st, tx, &dom0, "/t/new/x", "n"), 0);
	assert_string_equal(rd(st, tx, &dom0, "/t/a", NULL), "b");
	assert_string_equal(rd(st, NULL, &dom0, "/t/a", NULL), "a");
	assert_null(rd(st, NULL, &dom0, "/t/new/x", NULL));
	assert_string_equal(dir(st, tx, "/t"), "a,new");
	assert_string_equal(dir(st, NULL, "/t"), "a");
	assert_int_equal(xsd_txn_commit(st, tx, &ev), 0);
	assert_int_equal(ev.n, 2);   /* events only at commit */
	xsd_evlist_clear(&ev);
	assert_string_equal(rd(st, NULL, &dom0, "/t/a", NULL), "b");
	assert_string_equal(rd(st, NULL, &dom0, "/t/new/x", NULL), "n");

	/* Abort: nothing happens. */
	tx = xsd_txn_start(st, &dom0);
	assert_int_equal(xsd_rm(st, tx, &dom0, "/t", NULL), 0);
	assert_null(rd(st, tx, &dom0, "/t/a", NULL));
	xsd_txn_free(tx);
	assert_string_equal(rd(st, NULL, &dom0, "/t/a", NULL), "b");
}

static void test_txn_conflicts(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_txn *tx, *t2;

	/* test-xenstore "ta err": a read keeps its value, then EAGAIN. */
	assert_int_equal(wr(st, NULL, &dom0, "/c/a", "a"), 0);
	tx = xsd_txn_start(st, &dom0);
	assert_string_equal(rd(st, tx, &dom0, "/c/a", NULL), "a");
	assert_int_equal(wr(st, NULL, &dom0, "/c/a", "b"), 0);
	assert_string_equal(rd(st, tx, &dom0, "/c/a", NULL), "a");
	assert_int_equal(wr(st, tx, &dom0, "/c/a", "c"), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), EAGAIN);
	assert_string_equal(rd(st, NULL, &dom0, "/c/a", NULL), "b");

	/* First access a read: the snapshot moves to it (nothing was observed
	 * before), so a commit that landed in between does not conflict. */
	tx = xsd_txn_start(st, &dom0);
	assert_int_equal(wr(st, NULL, &dom0, "/c/a", "b2"), 0);
	assert_string_equal(rd(st, tx, &dom0, "/c/a", NULL), "b2");
	assert_int_equal(wr(st, tx, &dom0, "/c/a", "c"), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), 0);
	assert_string_equal(rd(st, NULL, &dom0, "/c/a", NULL), "c");

	/* pyxs test_transaction_commit_retry: created outside after start. */
	tx = xsd_txn_start(st, &dom0);
	assert_int_equal(wr(st, NULL, &dom0, "/foo/bar", "x"), 0);
	assert_int_equal(wr(st, tx, &dom0, "/foo/bar", "y"), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), EAGAIN);

	/* Disjoint subtrees never conflict, in either commit order. */
	assert_int_equal(wr(st, NULL, &dom0, "/d/x", "0"), 0);
	assert_int_equal(wr(st, NULL, &dom0, "/d/y", "0"), 0);
	tx = xsd_txn_start(st, &dom0);
	t2 = xsd_txn_start(st, &dom0);
	assert_string_equal(rd(st, tx, &dom0, "/d/x", NULL), "0");
	assert_int_equal(wr(st, tx, &dom0, "/d/x", "1"), 0);
	assert_int_equal(wr(st, tx, &dom0, "/d/newx/k", "1"), 0);
	assert_string_equal(rd(st, t2, &dom0, "/d/y", NULL), "0");
	assert_int_equal(wr(st, t2, &dom0, "/d/y", "2"), 0);
	assert_int_equal(wr(st, t2, &dom0, "/d/newy/k", "2"), 0);
	assert_int_equal(wr(st, NULL, &dom0, "/elsewhere", "z"), 0);
	assert_int_equal(xsd_txn_commit(st, t2, NULL), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), 0);
	assert_string_equal(dir(st, NULL, "/d"), "x,y,newy,newx");

	/* A directory listing conflicts with a new child... */
	tx = xsd_txn_start(st, &dom0);
	assert_non_null(dir(st, tx, "/d"));
	assert_int_equal(wr(st, tx, &dom0, "/d/x", "3"), 0);
	assert_int_equal(wr(st, NULL, &dom0, "/d/another", "x"), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), EAGAIN);
	/* ...a value read does not. */
	tx = xsd_txn_start(st, &dom0);
	assert_non_null(rd(st, tx, &dom0, "/d", NULL));
	assert_int_equal(wr(st, tx, &dom0, "/d/x", "3"), 0);
	assert_int_equal(wr(st, NULL, &dom0, "/d/another2", "x"), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), 0);

	/* RM of a subtree conflicts with a change below it. */
	tx = xsd_txn_start(st, &dom0);
	assert_int_equal(xsd_rm(st, tx, &dom0, "/d", NULL), 0);
	assert_int_equal(wr(st, NULL, &dom0, "/d/newx/k", "changed"), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), EAGAIN);
	assert_string_equal(rd(st, NULL, &dom0, "/d/newx/k", NULL), "changed");

	/* An absent read conflicts with a later creation. */
	tx = xsd_txn_start(st, &dom0);
	assert_null(rd(st, tx, &dom0, "/absent", NULL));
	assert_int_equal(wr(st, tx, &dom0, "/other", "1"), 0);
	assert_int_equal(wr(st, NULL, &dom0, "/absent", "now"), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), EAGAIN);
	/* Read-only and empty transactions commit. */
	tx = xsd_txn_start(st, &dom0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), 0);
}

static void test_txn_quota(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_txn *tx;
	char path[64];
	int e = 0;

	xsd_store_limits(st)->txn_nodes = 8;
	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/local/domain/5", NULL), 0);
	assert_int_equal(perms(st, &dom0, "/local/domain/5", "n5"), 0);
	tx = xsd_txn_start(st, &dom5);
	for (int i = 0; i < 20 && !e; i++) {
		snprintf(path, sizeof(path), "/local/domain/5/k%d", i);
		e = wr(st, tx, &dom5, path, "x");
	}
	assert_int_equal(e, ENOSPC);
	assert_true(xsd_txn_nrecords(tx) <= 8);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), 0);
	assert_string_equal(rd(st, NULL, &dom0, "/local/domain/5/k0", NULL), "x");
	/* Node quota counts the transaction's creations. */
	xsd_store_limits(st)->nodes = 9;
	tx = xsd_txn_start(st, &dom5);
	e = 0;
	for (int i = 100; i < 120 && !e; i++) {
		snprintf(path, sizeof(path), "/local/domain/5/q%d", i);
		e = wr(st, tx, &dom5, path, "x");
	}
	assert_int_equal(e, ENOSPC);
	xsd_txn_free(tx);
}

/* A transaction's log of operations is bounded for unprivileged callers:
 * rewriting the path just written replaces its entry (no growth), other
 * rewrites count, up to 4 per node of the quota. */
static void test_txn_log_bounded(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_txn *tx;
	char val[16];
	int e = 0, i;

	xsd_store_limits(st)->txn_nodes = 8;
	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/local/domain/5", NULL), 0);
	assert_int_equal(perms(st, &dom0, "/local/domain/5", "n5"), 0);
	tx = xsd_txn_start(st, &dom5);
	for (i = 0; i < 10000 && !e; i++) {
		snprintf(val, sizeof(val), "%d", i);
		e = wr(st, tx, &dom5, "/local/domain/5/same", val);
	}
	assert_int_equal(e, 0);
	/* Alternating two paths: each write is an entry, 32 at most. */
	for (i = 0; i < 100 && !e; i++)
		e = wr(st, tx, &dom5, i % 2 ? "/local/domain/5/a" : "/local/domain/5/b", "v");
	assert_int_equal(e, ENOSPC);
	assert_true(i <= 33);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), 0);
	assert_string_equal(rd(st, NULL, &dom0, "/local/domain/5/same", NULL), "9999");
	/* dom0 is not bounded. */
	tx = xsd_txn_start(st, &dom0);
	for (i = 0, e = 0; i < 100 && !e; i++)
		e = wr(st, tx, &dom0, i % 2 ? "/local/domain/5/a" : "/local/domain/5/b", "w");
	assert_int_equal(e, 0);
	assert_int_equal(i, 100);
	xsd_txn_free(tx);
}

/* A read the caller may not make leaves no trace in its transaction: the
 * commit must not tell it (by EAGAIN) that the node it could not read has
 * changed. */
static void test_txn_refused_read_not_recorded(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_txn *tx;

	assert_int_equal(wr(st, NULL, &dom0, "/secret", "1"), 0);
	assert_int_equal(perms(st, &dom0, "/secret", "n0"), 0);
	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/local/domain/5", NULL), 0);
	assert_int_equal(perms(st, &dom0, "/local/domain/5", "n5"), 0);
	tx = xsd_txn_start(st, &dom5);
	assert_int_equal(wr(st, tx, &dom5, "/local/domain/5/x", "v"), 0);
	assert_null(rd(st, tx, &dom5, "/secret", NULL));
	assert_null(rd(st, tx, &dom5, "/secret/missing", NULL));
	assert_int_equal(wr(st, NULL, &dom0, "/secret", "2"), 0);
	assert_int_equal(wr(st, NULL, &dom0, "/secret/missing", "now"), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), 0);
	/* Hashes of prefixes build up: what watch matching relies on. */
	assert_int_equal(xsd_hash_more(xsd_hash("/a/b", 4), "/c", 2), xsd_hash("/a/b/c", 6));
}

/* A release cannot be undone by a transaction open across it: giving the
 * released domain rights makes the commit fail (EAGAIN); retried, it is a
 * transaction after the release like any other. */
static void test_txn_across_release(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_txn *tx;

	assert_int_equal(wr(st, NULL, &dom0, "/backend/z", "v"), 0);
	tx = xsd_txn_start(st, &dom0);
	{
		struct xsd_perm p[2] = { { 0, 0 }, { 11, XSD_PERM_READ } };
		assert_int_equal(xsd_set_perms(st, tx, &dom0, "/backend/z", p, 2, NULL), 0);
	}
	assert_int_equal(xsd_store_domain_gone(st, 11, NULL), 0);
	assert_int_equal(xsd_txn_commit(st, tx, NULL), EAGAIN);
	/* Started after the release: commits. */
	tx = xsd_txn_start(st, &dom0);
	{
		struct xsd_perm p[2] = { { 0, 0 }, { 11, XSD_PERM_READ } };
		assert_int_equal(xsd_set_perms(st, tx, &dom0, "/backend/z", p, 2, NULL), 0);
	}
	assert_int_equal(xsd_txn_commit(st, tx, NULL), 0);
}

static void test_snapshot_cow(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_txn *tx;
	long before;

	assert_int_equal(wr(st, NULL, &dom0, "/s/a/b", "1"), 0);
	before = xsd_node_live_count();
	tx = xsd_txn_start(st, &dom0);
	/* Starting shares everything. */
	assert_int_equal(xsd_node_live_count(), before);
	/* A first access that writes keeps the START snapshot (copies / and s). */
	assert_int_equal(xsd_mkdir(st, tx, &dom0, "/s/x", NULL), 0);
	assert_int_equal(xsd_node_live_count(), before + 3);
	assert_int_equal(wr(st, NULL, &dom0, "/s/a/b", "2"), 0);
	/* The live write copied only the shared path: / s a b. */
	assert_int_equal(xsd_node_live_count(), before + 7);
	assert_string_equal(rd(st, tx, &dom0, "/s/a/b", NULL), "1");
	xsd_txn_free(tx);
	assert_int_equal(xsd_node_live_count(), before);
}

static void test_domain_gone(void **state)
{
	struct xsd_store *st = *state;
	struct xsd_evlist ev = { 0 };
	const struct xsd_perm *p;
	unsigned n;

	assert_int_equal(xsd_mkdir(st, NULL, &dom0, "/local/domain/5/device", NULL), 0);
	assert_int_equal(perms(st, &dom0, "/local/domain/5", "n0 r5"), 0);
	assert_int_equal(perms(st, &dom0, "/local/domain/5/device", "n5"), 0);
	assert_int_equal(wr(st, NULL, &dom5, "/local/domain/5/device/vif/0/state", "4"), 0);
	assert_int_equal(wr(st, NULL, &dom0, "/backend/vif/5/0/state", "4"), 0);
	assert_int_equal(perms(st, &dom0, "/backend/vif/5/0/state", "n0 r5"), 0);
	assert_int_equal(xsd_store_domain_gone(st, 5, &ev), 0);
	assert_int_equal(xsd_store_check(st), 0);
	assert_int_equal(xsd_store_domain_nodes(st, 5), 0);
	assert_string_equal(dir(st, NULL, "/local/domain/5"), "");
	/* Events: exact ones from the leaves up, then the removed root. */
	assert_int_equal(ev.n, 4);
	assert_string_equal(ev.ev[0].path, "/local/domain/5/device/vif/0/state");
	assert_true(ev.ev[0].exact);
	assert_string_equal(ev.ev[3].path, "/local/domain/5/device");
	assert_false(ev.ev[3].exact);
	xsd_evlist_clear(&ev);
	/* Entries naming domain 5 are now ignored. */
	assert_int_equal(xsd_get_perms(st, NULL, &dom0, "/backend/vif/5/0/state", &p, &n), 0);
	assert_int_equal(n, 2);
	assert_true(p[1].perms & XSD_PERM_IGNORE);
	assert_null(rd(st, NULL, &dom5, "/backend/vif/5/0/state", NULL));
}

static void test_paths(void **state)
{
	char out[XSD_PATH_BUF], longp[3000];

	(void)state;
	assert_int_equal(xsd_path_canon("/a/b", 0, 2048, false, out), 0);
	assert_string_equal(out, "/a/b");
	assert_int_equal(xsd_path_canon("x/y", 7, 2048, false, out), 0);
	assert_string_equal(out, "/local/domain/7/x/y");
	assert_int_equal(xsd_path_canon("/", 0, 2048, false, out), 0);
	assert_int_equal(xsd_path_canon("", 0, 2048, false, out), EINVAL);
	assert_int_equal(xsd_path_canon("/a//b", 0, 2048, false, out), EINVAL);
	assert_int_equal(xsd_path_canon("/a/", 0, 2048, false, out), EINVAL);
	assert_int_equal(xsd_path_canon("/a b", 0, 2048, false, out), EINVAL);
	assert_int_equal(xsd_path_canon("/a.b", 0, 2048, false, out), EINVAL);
	assert_int_equal(xsd_path_canon("@releaseDomain", 0, 2048, false, out), EINVAL);
	assert_int_equal(xsd_path_canon("@releaseDomain", 0, 2048, true, out), 0);
	/* Length: 2048 after /local/domain/<n>/, else 2048 in all. */
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[2049] = '\0';
	assert_int_equal(xsd_path_canon(longp, 0, 2048, false, out), EINVAL);
	longp[2048] = '\0';
	assert_int_equal(xsd_path_canon(longp, 0, 2048, false, out), 0);
	memset(longp, 'a', sizeof(longp));
	longp[2048] = '\0';
	assert_int_equal(xsd_path_canon(longp, 3, 2048, false, out), 0);
	longp[2048] = 'a';
	longp[2049] = '\0';
	assert_int_equal(xsd_path_canon(longp, 3, 2048, false, out), EINVAL);
	assert_int_equal(xsd_home_len(12), strlen("/local/domain/12/"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read_rm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quotas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_visibility, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_isolation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_conflicts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_log_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_refused_read_not_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_across_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_cow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_gone, setup, teardown),
		cmocka_unit_test(test_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
