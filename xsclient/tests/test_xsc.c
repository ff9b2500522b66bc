/*
 * xsclient tests: batches and transactions against a real pvnet-xenstored
 * (dom0 and an introduced domain, whose outstanding-request quota is 20), a
 * real EAGAIN conflict, and a hostile fake daemon (bad type, oversized
 * length, unknown req_id, silence) that must give clean errors; req_ids that
 * wrap past 2^32 (a batch straddling the wrap) are accepted, against both.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "xsclient/xsc.h"

static char dir[64], sock[128];
static pid_t daemon_pid;

static int start_daemon(void **state)
{
	char prog[512];
	const char *b = getenv("PVNET_BUILD");
	int p[2];
	char c;

	snprintf(dir, sizeof(dir), "/tmp/pvnet-xsc.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/socket", dir);
	snprintf(prog, sizeof(prog), "%s/pvnet-xenstored", b ? b : "build");
	if (pipe(p) < 0)
		return -1;
	daemon_pid = fork();
	if (daemon_pid == 0) {
		char fd[16];
		snprintf(fd, sizeof(fd), "%d", p[1]);
		close(p[0]);
		execl(prog, prog, "--rundir", dir, "--ready-fd", fd, "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		return -1;
	close(p[0]);
	return 0;
}

static int stop_daemon(void **state)
{
	int st;
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, &st, 0);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#define W(p, v) { .type = XS_WRITE, .path = (p), .value = (v), .len = sizeof(v) - 1 }
#define R(p) { .type = XS_READ, .path = (p) }

static void test_batch(void **state)
{
	struct xsc *c = xsc_open(sock);
	struct xsc_op ops[] = { W("/t/a", "1"), W("/t/b", "two"), R("/t/a"), R("/t/b"), R("/t/none"),
				{ .type = XS_DIRECTORY, .path = "/t" }, { .type = XS_RM, .path = "/t/a" }, R("/t/a") };

	assert_non_null(c);
	assert_int_equal(xsc_batch(c, 0, ops, 8), 0);
	assert_int_equal(ops[0].err, 0);
	assert_string_equal(ops[2].result, "1");
	assert_string_equal(ops[3].result, "two");
	assert_int_equal(ops[3].rlen, 3);
	assert_int_equal(ops[4].err, ENOENT);
	assert_int_equal(ops[5].rlen, 4); /* "a\0b\0" */
	assert_int_equal(ops[6].err, 0);
	assert_int_equal(ops[7].err, ENOENT);
	xsc_ops_free(ops, 8);
	/* Bad requests are refused before anything is sent. */
	struct xsc_op bad = { .type = XS_INTRODUCE, .path = "1" };
	assert_int_equal(xsc_batch(c, 0, &bad, 1), -EINVAL);
	xsc_close(c);
}

static void test_transaction_and_many(void **state)
{
	struct xsc *c = xsc_open(sock);
	struct xsc_op ops[200];
	char paths[200][32];

	for (int i = 0; i < 200; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/many/k%d", i);
		ops[i] = (struct xsc_op){ .type = XS_WRITE, .path = paths[i], .value = paths[i], .len = (unsigned)strlen(paths[i]) };
	}
	assert_int_equal(xsc_transaction(c, ops, 200, 5), 0);
	for (int i = 0; i < 200; i++)
		ops[i] = (struct xsc_op){ .type = XS_READ, .path = paths[i] };
	assert_int_equal(xsc_batch(c, 0, ops, 200), 0);
	for (int i = 0; i < 200; i++)
		assert_string_equal(ops[i].result, paths[i]);
	xsc_ops_free(ops, 200);
	/* A failing op aborts the transaction: nothing is written. */
	struct xsc_op two[] = { W("/abort/x", "1"), W("/bad//path", "1") };
	assert_int_equal(xsc_transaction(c, two, 2, 3), -EINVAL);
	struct xsc_op chk[] = { R("/abort/x") };
	assert_int_equal(xsc_batch(c, 0, chk, 1), 0);
	assert_int_equal(chk[0].err, ENOENT);
	xsc_close(c);
}

/* A domain connection: the daemon stops reading at 20 outstanding requests;
 * a pipelined batch of 120 must still complete. */
static void test_domain_quota(void **state)
{
	struct xsc *c0 = xsc_open(sock), *d;
	char dsock[160];
	struct xsc_op intro[] = { { .type = XS_MKDIR, .path = "/local/domain/7/data" },
				  { .type = XS_SET_PERMS, .path = "/local/domain/7/data", .value = "n7\0r0", .len = 6 } };
	struct xsc_op ops[120];
	char paths[120][32];

	assert_non_null(c0);
	/* Introduce first: the owner of a node must be a known domain. */
	/* INTRODUCE is not a batch op: send it with libxenstore's wire form. */
	{
		struct xsd_sockmsg h = { .type = XS_INTRODUCE, .req_id = 99, .len = 7 };
		char buf[64];
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		strcpy(a.sun_path, sock);
		assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
		memcpy(buf, &h, sizeof(h));
		memcpy(buf + sizeof(h), "7\0" "1\0" "1\0", 6);
		h.len = 6;
		memcpy(buf, &h, sizeof(h));
		assert_int_equal(write(s, buf, sizeof(h) + 6), (ssize_t)(sizeof(h) + 6));
		assert_true(read(s, buf, sizeof(buf)) > (ssize_t)sizeof(h));
		close(s);
	}
	assert_int_equal(xsc_batch(c0, 0, intro, 2), 0);
	assert_int_equal(intro[0].err, 0);
	assert_int_equal(intro[1].err, 0);
	snprintf(dsock, sizeof(dsock), "%s/domains/7.sock", dir);
	d = xsc_open(dsock);
	assert_non_null(d);
	for (int i = 0; i < 120; i++) {
		snprintf(paths[i], sizeof(paths[i]), "data/k%d", i);
		ops[i] = (struct xsc_op){ .type = XS_WRITE, .path = paths[i], .value = "v", .len = 1 };
	}
	assert_int_equal(xsc_batch(d, 0, ops, 120), 0);
	for (int i = 0; i < 120; i++)
		assert_int_equal(ops[i].err, 0);
	/* Outside its rights: EACCES per op, the batch goes on. */
	struct xsc_op deny[] = { W("/local/domain/0/nope", "1"), R("data/k3") };
	assert_int_equal(xsc_batch(d, 0, deny, 2), 0);
	assert_int_equal(deny[0].err, EACCES);
	assert_string_equal(deny[1].result, "v");
	xsc_ops_free(deny, 2);
	xsc_close(d);
	xsc_close(c0);
}

/* req_ids wrap past 2^32: a batch and a transaction straddling the wrap, on
 * the real daemon (it echoes each req_id; replies with ids below the batch's
 * first one were refused as unknown). */
static void test_id_wrap(void **state)
{
	struct xsc *c = xsc_open(sock);
	struct xsc_op ops[40];
	char paths[40][32];

	assert_non_null(c);
	xsc_set_timeout(c, 10000);
	xsc_set_next_req_id(c, 0xFFFFFFFFu - 19);   /* ids ...FFEC..FFFF, 0..19 */
	for (int i = 0; i < 40; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/wrap/k%d", i);
		ops[i] = (struct xsc_op){ .type = XS_WRITE, .path = paths[i], .value = paths[i], .len = (unsigned)strlen(paths[i]) };
	}
	assert_int_equal(xsc_batch(c, 0, ops, 40), 0);
	for (int i = 0; i < 40; i++)
		assert_int_equal(ops[i].err, 0);
	assert_int_equal(xsc_next_req_id(c), 20);
	/* And on from there: the connection is not broken. */
	for (int i = 0; i < 40; i++)
		ops[i] = (struct xsc_op){ .type = XS_READ, .path = paths[i] };
	assert_int_equal(xsc_batch(c, 0, ops, 40), 0);
	for (int i = 0; i < 40; i++)
		assert_string_equal(ops[i].result, paths[i]);
	xsc_ops_free(ops, 40);
	xsc_close(c);

	/* A transaction: START is id 0xFFFFFFFE, its batch 0xFFFFFFFF and 0. */
	c = xsc_open(sock);
	assert_non_null(c);
	xsc_set_timeout(c, 10000);
	xsc_set_next_req_id(c, 0xFFFFFFFEu);
	struct xsc_op tx[] = { W("/wrap/tx", "1"), R("/wrap/k0") };
	assert_int_equal(xsc_transaction(c, tx, 2, 3), 0);
	assert_string_equal(tx[1].result, "/wrap/k0");
	xsc_ops_free(tx, 2);
	struct xsc_op chk[] = { R("/wrap/tx") };
	assert_int_equal(xsc_batch(c, 0, chk, 1), 0);
	assert_string_equal(chk[0].result, "1");
	xsc_ops_free(chk, 1);
	xsc_close(c);
}

/* ---- a hostile fake daemon --------------------------------------------- */

struct fake {
	int fd;
	int mode;  /* 0 wrong type, 1 huge len, 2 unknown req_id, 3 silence, 4 EAGAIN then ok,
		    * 5 every reply twice, 6 half a header then silence, 7 watch events
		    * without end, 8 right answers, each pair of replies in reverse order */
	int saw_id0;  /* a request with req_id 0 came (the client's ids wrapped) */
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	uint8_t buf[8192];
	int starts = 0;
	struct xsd_sockmsg held;   /* mode 8: the first reply of a pair */
	int holding = 0;

	for (;;) {
		struct xsd_sockmsg h;
		if (pv_read_full(f->fd, &h, sizeof(h)) != sizeof(h) || h.len > 4096 ||
		    pv_read_full(f->fd, buf, h.len) != (ssize_t)h.len)
			break;
		struct xsd_sockmsg r = h;
		const char *pl = "OK";
		size_t plen = 3;
		if (h.req_id == 0)
			f->saw_id0 = 1;
		if (f->mode == 0)
			r.type = XS_DIRECTORY;
		else if (f->mode == 1)
			r.len = 100000;
		else if (f->mode == 2)
			r.req_id = h.req_id + 1000;
		else if (f->mode == 3)
			continue;
		if (f->mode == 6) {
			if (pv_write_all(f->fd, &r, 8) < 0)
				return NULL;
			continue;
		}
		if (f->mode == 7) {
			struct xsd_sockmsg ev = { .type = XS_WATCH_EVENT, .len = 6 };
			for (;;)
				if (pv_write_all(f->fd, &ev, sizeof(ev)) < 0 || pv_write_all(f->fd, "/w\0t\0\0", 6) < 0)
					return NULL;
		}
		if (f->mode == 4) {
			if (h.type == XS_TRANSACTION_START) {
				pl = "5";
				plen = 2;
				starts++;
			} else if (h.type == XS_TRANSACTION_END && starts == 1) {
				r.type = XS_ERROR;
				pl = "EAGAIN";
				plen = 7;
			}
		}
		if (f->mode != 1)
			r.len = (uint32_t)plen;
		if (f->mode == 8) {
			if (!holding) {
				held = r;
				holding = 1;
				continue;
			}
			holding = 0;
			if (pv_write_all(f->fd, &r, sizeof(r)) < 0 || pv_write_all(f->fd, pl, plen) < 0 ||
			    pv_write_all(f->fd, &held, sizeof(held)) < 0 || pv_write_all(f->fd, pl, plen) < 0)
				return NULL;
			continue;
		}
		for (int k = 0; k < (f->mode == 5 ? 2 : 1); k++)
			if (pv_write_all(f->fd, &r, sizeof(r)) < 0 || (f->mode != 1 && pv_write_all(f->fd, pl, plen) < 0))
				return NULL;
	}
	return NULL;
}

/* The client's first req_id is `first` (its ids then go on from there). */
static void hostile_at(int mode, int expect, uint32_t first)
{
	int sv[2];
	struct fake f;
	pthread_t t;
	struct xsc *c;
	char path[128];
	int ls;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	static int seq;

	/* A listening socket the client can connect to. */
	snprintf(path, sizeof(path), "%s/fake%d.%d", dir, mode, seq++);
	ls = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(a.sun_path, path);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 1), 0);
	c = xsc_open(path);
	assert_non_null(c);
	xsc_set_timeout(c, 300);
	xsc_set_next_req_id(c, first);
	sv[0] = accept(ls, NULL, NULL);
	f.fd = sv[0];
	f.mode = mode;
	f.saw_id0 = 0;
	pthread_create(&t, NULL, fake_main, &f);
	struct xsc_op ops[] = { W("/x", "1"), R("/x") };
	int r = mode == 4 ? xsc_transaction(c, ops, 1, 3) : xsc_batch(c, 0, ops, 2);
	assert_int_equal(r, expect);
	if (expect == -EPROTO || expect == -ETIMEDOUT)
		assert_int_equal(xsc_batch(c, 0, ops, 1), -EPROTO); /* stays broken */
	if (expect == 0 && mode != 4) {
		assert_string_equal(ops[1].result, "OK");
		xsc_ops_free(ops, 2);
		assert_int_equal(xsc_batch(c, 0, ops, 2), 0);   /* and the next batch */
		assert_string_equal(ops[1].result, "OK");
	}
	xsc_ops_free(ops, 2);
	xsc_close(c);
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(t, NULL);
	close(sv[0]);
	close(ls);
	/* A test meant to cross the wrap did cross it. */
	if (first > 0xFFFFFFF0u && expect == 0)
		assert_true(f.saw_id0);
}

static void hostile(int mode, int expect) { hostile_at(mode, expect, 1); }

static void test_hostile(void **state)
{
	hostile(0, -EPROTO);     /* reply type differs from the request */
	hostile(1, -EPROTO);     /* length over XENSTORE_PAYLOAD_MAX */
	hostile(2, -EPROTO);     /* req_id we never sent */
	hostile(3, -ETIMEDOUT);  /* no answer */
	hostile(4, 0);           /* EAGAIN at commit, then success */
	hostile(5, -EPROTO);     /* a reply repeated (found by the fuzzer: it leaked) */
	hostile(6, -ETIMEDOUT);  /* half a header, then nothing (a blocking read hung) */
	hostile(7, -ETIMEDOUT);  /* watch events without end (skipped for ever) */
	hostile(8, 0);           /* replies out of order */
	/* req_ids wrap past 2^32 (they were refused once below the batch's first) */
	hostile_at(8, 0, 0xFFFFFFFFu);       /* ids 0xFFFFFFFF, 0: replies 0 first */
	hostile_at(4, 0, 0xFFFFFFFEu);       /* a transaction retried across it */
	hostile_at(2, -EPROTO, 0xFFFFFFFFu); /* an unknown id is still refused there */
	hostile_at(5, -EPROTO, 0xFFFFFFFFu); /* and a repeated one */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_transaction_and_many),
		cmocka_unit_test(test_domain_quota),
		cmocka_unit_test(test_id_wrap),
		cmocka_unit_test(test_hostile),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, start_daemon, stop_daemon);
}
