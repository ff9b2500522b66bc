/*
 * A libxenstore (Debian libxenstore4) client against pvnet-xenstored:
 * watches, transactions retried on EAGAIN, DIRECTORY_PART via a big
 * directory, and an introduced domain connecting through its own socket:
 * EACCES outside its rights, EPERM on owner change, quotas (the daemon is
 * started with --quota-nodes 20 --quota-watches 4), @introduceDomain /
 * @releaseDomain, and RELEASE cleanup.
 * usage: test-xsd-libxs RUNDIR   (daemon already serving RUNDIR/socket)
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xenstore.h>

static int passed, failed;
static const char *rundir;

#define CHECK(desc, cond) do { \
	if (cond) { passed++; printf("ok - %s\n", desc); } \
	else { failed++; printf("not ok - %s (errno %d %s, line %d)\n", desc, errno, strerror(errno), __LINE__); } \
} while (0)

static struct xs_handle *open_as(const char *sock)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", rundir, sock);
	setenv("XENSTORED_PATH", path, 1);
	return xs_open(0);
}

static bool read_is(struct xs_handle *h, xs_transaction_t t, const char *path, const char *want)
{
	unsigned len;
	char *v = xs_read(h, t, path, &len);
	bool ok = v && strcmp(v, want) == 0;

	free(v);
	return ok;
}

static bool fails_with(bool ok, int err)
{
	return !ok && errno == err;
}

/* Next watch event's path within 5 s, or NULL. Caller frees. */
static char *next_event(struct xs_handle *h, const char *token)
{
	struct pollfd p = { .fd = xs_fileno(h), .events = POLLIN };

	while (poll(&p, 1, 5000) == 1) {
		unsigned n;
		char **v = xs_read_watch(h, &n);
		if (!v)
			return NULL;
		if (!strcmp(v[XS_WATCH_TOKEN], token)) {
			char *path = strdup(v[XS_WATCH_PATH]);
			free(v);
			return path;
		}
		free(v);
	}
	return NULL;
}

static bool event_is(struct xs_handle *h, const char *token, const char *want)
{
	char *p = next_event(h, token);
	bool ok = p && !strcmp(p, want);

	if (!ok)
		fprintf(stderr, "event for %s: got %s, want %s\n", token, p ? p : "(none)", want);
	free(p);
	return ok;
}

/* Skip earlier events until `want` arrives. */
static bool event_seen(struct xs_handle *h, const char *token, const char *want)
{
	char *p;

	while ((p = next_event(h, token))) {
		bool ok = !strcmp(p, want);
		free(p);
		if (ok)
			return true;
	}
	return false;
}

static void test_watch_and_transactions(struct xs_handle *h0, struct xs_handle *h1)
{
	xs_transaction_t t;
	int tries = 0;
	bool ok;

	CHECK("watch", xs_watch(h0, "/lx", "tok"));
	CHECK("initial watch event", event_is(h0, "tok", "/lx"));
	CHECK("write from another handle", xs_write(h1, XBT_NULL, "/lx/a", "1", 1));
	CHECK("event for the write", event_is(h0, "tok", "/lx/a"));
	CHECK("rm", xs_rm(h1, XBT_NULL, "/lx/a"));
	CHECK("event for the rm", event_is(h0, "tok", "/lx/a"));

	/* A forced conflict: EAGAIN, then the retry loop succeeds. */
	CHECK("counter", xs_write(h0, XBT_NULL, "/lx/c", "0", 1));
	for (;;) {
		unsigned len;
		char *v, buf[16];
		t = xs_transaction_start(h1);
		v = xs_read(h1, t, "/lx/c", &len);
		if (!v)
			break;
		if (tries++ == 0)
			xs_write(h0, XBT_NULL, "/lx/c", "10", 2);   /* interferes once */
		snprintf(buf, sizeof(buf), "%d", atoi(v) + 1);
		free(v);
		xs_write(h1, t, "/lx/c", buf, (unsigned)strlen(buf));
		ok = xs_transaction_end(h1, t, false);
		if (ok || errno != EAGAIN)
			break;
	}
	CHECK("transaction retried after EAGAIN", tries == 2 && read_is(h0, XBT_NULL, "/lx/c", "11"));
	/* Events of a transaction come at commit only. */
	t = xs_transaction_start(h1);
	xs_write(h1, t, "/lx/tx", "v", 1);
	CHECK("uncommitted write invisible", !xs_read(h0, XBT_NULL, "/lx/tx", NULL) && errno == ENOENT);
	CHECK("commit", xs_transaction_end(h1, t, false));
	CHECK("event at commit", event_seen(h0, "tok", "/lx/tx"));
	t = xs_transaction_start(h1);
	xs_write(h1, t, "/lx/aborted", "v", 1);
	CHECK("abort", xs_transaction_end(h1, t, true));
	CHECK("aborted write gone", !xs_read(h0, XBT_NULL, "/lx/aborted", NULL));
	CHECK("unwatch", xs_unwatch(h0, "/lx", "tok"));
}

static void test_big_directory(struct xs_handle *h0)
{
	char path[128];
	unsigned n = 0;
	char **names;

	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "/bigdir/a-fairly-long-child-name-number-%04d", i);
		xs_write(h0, XBT_NULL, path, "", 0);
	}
	/* > 4096 bytes of names: DIRECTORY says E2BIG, libxenstore then uses
	 * DIRECTORY_PART. */
	names = xs_directory(h0, XBT_NULL, "/bigdir", &n);
	CHECK("300 children through DIRECTORY_PART", names && n == 300 &&
	      !strcmp(names[299], "a-fairly-long-child-name-number-0299"));
	free(names);
	CHECK("rm big dir", xs_rm(h0, XBT_NULL, "/bigdir"));
}

static void test_domain(struct xs_handle *h0)
{
	struct xs_permissions home[2] = { { 0, XS_PERM_NONE }, { 5, XS_PERM_READ } };
	struct xs_permissions own5 = { 5, XS_PERM_NONE }, give[1] = { { 6, XS_PERM_NONE } };
	struct xs_handle *h5;
	char path[512], *p, name[64];
	struct stat sb;
	unsigned len;
	int made = 0;

	CHECK("watch @introduceDomain", xs_watch(h0, "@introduceDomain", "intro"));
	CHECK("initial @introduceDomain event", event_is(h0, "intro", "@introduceDomain"));
	CHECK("watch @releaseDomain", xs_watch(h0, "@releaseDomain", "rel"));
	CHECK("initial @releaseDomain event", event_is(h0, "rel", "@releaseDomain"));

	/* The toolstack's part: the domain's home, then INTRODUCE. */
	CHECK("mkdir home", xs_mkdir(h0, XBT_NULL, "/local/domain/5"));
	CHECK("home perms n0 r5", xs_set_permissions(h0, XBT_NULL, "/local/domain/5", home, 2));
	CHECK("mkdir data", xs_mkdir(h0, XBT_NULL, "/local/domain/5/data"));
	CHECK("data owned by 5", xs_set_permissions(h0, XBT_NULL, "/local/domain/5/data", &own5, 1));
	CHECK("not introduced yet", !xs_is_domain_introduced(h0, 5));
	CHECK("introduce 5", xs_introduce_domain(h0, 5, 0x1234, 7));
	CHECK("@introduceDomain fired", event_is(h0, "intro", "@introduceDomain"));
	CHECK("is introduced", xs_is_domain_introduced(h0, 5));
	snprintf(path, sizeof(path), "%s/domains/5.sock", rundir);
	CHECK("domain socket exists", stat(path, &sb) == 0 && S_ISSOCK(sb.st_mode));
	p = xs_get_domain_path(h0, 5);
	CHECK("domain path", p && !strcmp(p, "/local/domain/5"));
	free(p);

	h5 = open_as("domains/5.sock");
	CHECK("domain 5 connects", h5 != NULL);
	if (!h5)
		return;
	CHECK("EACCES reading dom0's nodes", !xs_read(h5, XBT_NULL, "/local/domain/0", &len) && errno == EACCES);
	CHECK("EACCES (hidden) for a missing dom0 node", !xs_read(h5, XBT_NULL, "/local/domain/0/x/y", &len) && errno == EACCES);
	CHECK("reads its home", read_is(h5, XBT_NULL, "/local/domain/5", ""));
	CHECK("EACCES writing its read-only home", fails_with(xs_write(h5, XBT_NULL, "name", "x", 1), EACCES));
	CHECK("relative write in its own dir", xs_write(h5, XBT_NULL, "data/x", "1", 1));
	CHECK("dom0 sees it", read_is(h0, XBT_NULL, "/local/domain/5/data/x", "1"));
	CHECK("EPERM changing the owner", fails_with(xs_set_permissions(h5, XBT_NULL, "data/x", give, 1), EPERM));
	CHECK("EACCES on privileged ops", fails_with(xs_introduce_domain(h5, 9, 1, 1), EACCES));
	CHECK("transaction in its dir", ({
		xs_transaction_t t = xs_transaction_start(h5);
		t && xs_write(h5, t, "data/t", "v", 1) && xs_transaction_end(h5, t, false);
	}));

	/* Quotas: --quota-nodes 20 (data, x, t already count 3). */
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "data/n%d", i);
		if (!xs_write(h5, XBT_NULL, name, "", 0))
			break;
		made++;
	}
	CHECK("node quota: ENOSPC after 17 more nodes", made == 17 && errno == ENOSPC);
	CHECK("dom0 is exempt", xs_write(h0, XBT_NULL, "/local/domain/5/data/by0/a/b", "", 0));
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		xs_watch(h5, "data", name);
	}
	CHECK("watch quota: E2BIG at the 5th", fails_with(xs_watch(h5, "data", "w4"), E2BIG));
	CHECK("watch event with a relative path", event_is(h5, "w0", "data"));
	CHECK("no @releaseDomain for an unprivileged watcher", xs_watch(h5, "@releaseDomain", "x") || errno == E2BIG);

	/* RELEASE: connection closed, socket gone, owned nodes removed. */
	CHECK("watch the domain's data", xs_watch(h0, "/local/domain/5/data/x", "gone"));
	CHECK("initial", event_is(h0, "gone", "/local/domain/5/data/x"));
	CHECK("release 5", xs_release_domain(h0, 5));
	/* Removal events first, then @releaseDomain (as one stream). */
	CHECK("owned node removal fires watches", event_is(h0, "gone", "/local/domain/5/data/x"));
	CHECK("@releaseDomain fired", event_is(h0, "rel", "@releaseDomain"));
	CHECK("owned nodes removed", !xs_read(h0, XBT_NULL, "/local/domain/5/data", &len) && errno == ENOENT);
	CHECK("home (owned by dom0) kept", read_is(h0, XBT_NULL, "/local/domain/5", ""));
	CHECK("socket removed", stat(path, &sb) < 0 && errno == ENOENT);
	CHECK("domain connection closed", !xs_read(h5, XBT_NULL, "/local/domain/5", &len));
	CHECK("no longer introduced", !xs_is_domain_introduced(h0, 5));
	CHECK("second release: ENOENT", fails_with(xs_release_domain(h0, 5), ENOENT));
	xs_close(h5);
	/* ACL entries naming 5 were disabled at release, so a new domain 5
	 * inherits nothing: the toolstack sets them again. */
	CHECK("home perms again", xs_set_permissions(h0, XBT_NULL, "/local/domain/5", home, 2));
	CHECK("re-introduce 5", xs_introduce_domain(h0, 5, 0x1234, 7));
	h5 = open_as("domains/5.sock");
	CHECK("domain 5 connects again", h5 && read_is(h5, XBT_NULL, "/local/domain/5", ""));
	if (h5)
		xs_close(h5);
	CHECK("release again", xs_release_domain(h0, 5));
}

int main(int argc, char **argv)
{
	struct xs_handle *h0, *h1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s RUNDIR\n", argv[0]);
		return 2;
	}
	rundir = argv[1];
	h0 = open_as("socket");
	h1 = open_as("socket");
	if (!h0 || !h1) {
		printf("not ok - xs_open\n0 passed, 1 failed\n");
		return 1;
	}
	test_watch_and_transactions(h0, h1);
	test_big_directory(h0);
	test_domain(h0);
	xs_close(h1);
	xs_close(h0);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
