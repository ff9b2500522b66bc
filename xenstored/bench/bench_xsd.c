/*
 * bench-xsd: requests per second of a xenstore daemon, for pvnet-xenstored
 * and Xen 4.17's C xenstored side by side, plus resident memory per 10,000
 * nodes. Never fails on speed: it prints figures.
 * usage: bench-xsd SECONDS NAME SOCKET PID [NAME SOCKET PID]
 *
 * One single-threaded client drives several connections through poll(),
 * each keeping a few requests in flight (pipelined), so the figure is the
 * daemon's throughput rather than one round trip's latency.
 * Rows: read, write, directory (50 children), watch delivery (one writer,
 * 50 watchers: events delivered per second), contended transactions (4
 * clients incrementing one counter: commits per second, EAGAIN retried).
 * SECONDS per row and daemon is split into PVNET_BENCH_ROUNDS (default 5)
 * rounds that alternate between the daemons; each figure is a median.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/xen.h"

#define MAXC 64
#define MAXROUNDS 15

struct bconn {
	int fd;
	uint8_t in[1 << 16];
	size_t inlen;
	uint8_t out[1 << 16];
	size_t outlen;
	bool batch;         /* queue requests until flush_out() */
	unsigned inflight;
	unsigned seq;
	/* transaction state */
	int tstate;
	uint32_t txid;
	long val;
};

struct target {
	const char *name, *sock;
	int pid;
	double runs[5][MAXROUNDS]; /* per row, one figure per round */
	double rate[5];            /* median of the rounds */
	double eagains, commits;   /* transaction row, summed over rounds */
	double eagain;             /* EAGAIN per commit */
	double mem_kib;
};

static double secs = 1.0;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int xconnect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror(path);
		exit(2);
	}
	return fd;
}

static void flush_out(struct bconn *c)
{
	if (c->outlen && write(c->fd, c->out, c->outlen) != (ssize_t)c->outlen) {
		perror("write");
		exit(2);
	}
	c->outlen = 0;
}

static void xsend(struct bconn *c, uint32_t type, uint32_t tx, const void *p, size_t len)
{
	struct xsd_sockmsg h = { type, ++c->seq, tx, (uint32_t)len };

	if (c->outlen + sizeof(h) + len > sizeof(c->out))
		flush_out(c);
	memcpy(c->out + c->outlen, &h, sizeof(h));
	memcpy(c->out + c->outlen + sizeof(h), p, len);
	c->outlen += sizeof(h) + len;
	c->inflight++;
	if (!c->batch)
		flush_out(c);
}

static void xsend_str(struct bconn *c, uint32_t type, uint32_t tx, const char *s)
{
	xsend(c, type, tx, s, strlen(s) + 1);
}

/* Blocking call for setup: returns the reply type, payload into out. */
static uint32_t xcall(struct bconn *c, uint32_t type, const void *p, size_t len, char *out)
{
	struct xsd_sockmsg h;

	xsend(c, type, 0, p, len);
	for (;;) {
		char tmp[XENSTORE_PAYLOAD_MAX + 1];
		if (read(c->fd, &h, sizeof(h)) != sizeof(h))
			exit(2);
		if (h.len && read(c->fd, out ? out : tmp, h.len) != (ssize_t)h.len)
			exit(2);
		if (h.type != XS_WATCH_EVENT)
			break;
	}
	c->inflight--;
	return h.type;
}

static void setup_write(struct bconn *c, const char *path, const char *val)
{
	char buf[512];
	size_t pl = strlen(path) + 1, vl = strlen(val);

	memcpy(buf, path, pl);
	memcpy(buf + pl, val, vl);
	xcall(c, XS_WRITE, buf, pl + vl, NULL);
}

typedef void (*next_fn)(struct bconn *c, int idx);
/* Called per message received; returns how many "units" it completes. */
typedef unsigned (*reply_fn)(struct bconn *c, int idx, const struct xsd_sockmsg *h, const char *p);

/* Drive `n` connections for `secs`; returns completed units per second. */
static double drive(struct bconn *cs, int n, unsigned window, next_fn next, reply_fn on_reply,
		    int nsenders)
{
	struct pollfd pfd[MAXC];
	unsigned long units = 0;
	double t0, t1;

	for (int i = 0; i < n; i++) {
		pfd[i] = (struct pollfd){ .fd = cs[i].fd, .events = POLLIN };
		cs[i].batch = true;
	}
	for (int i = 0; i < nsenders; i++) {
		for (unsigned w = 0; w < window; w++)
			next(&cs[i], i);
		flush_out(&cs[i]);
	}
	t0 = now();
	t1 = t0 + secs;
	while (now() < t1) {
		if (poll(pfd, (nfds_t)n, 1000) <= 0)
			break;
		for (int i = 0; i < n; i++) {
			struct bconn *c = &cs[i];
			ssize_t r;
			size_t off = 0;
			if (!(pfd[i].revents & POLLIN))
				continue;
			r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
			if (r <= 0)
				exit(2);
			c->inlen += (size_t)r;
			while (c->inlen - off >= sizeof(struct xsd_sockmsg)) {
				struct xsd_sockmsg h;
				char p[XENSTORE_PAYLOAD_MAX + 1];
				memcpy(&h, c->in + off, sizeof(h));
				if (c->inlen - off < sizeof(h) + h.len)
					break;
				memcpy(p, c->in + off + sizeof(h), h.len);
				p[h.len] = '\0';
				off += sizeof(h) + h.len;
				if (h.type != XS_WATCH_EVENT)
					c->inflight--;
				units += on_reply(c, i, &h, p);
			}
			memmove(c->in, c->in + off, c->inlen - off);
			c->inlen -= off;
			flush_out(c);
		}
	}
	t1 = now();
	for (int i = 0; i < n; i++) {
		flush_out(&cs[i]);
		cs[i].batch = false;
	}
	/* Drain what is still in flight so the next row starts clean. */
	for (int i = 0; i < n; i++) {
		while (cs[i].inflight) {
			struct xsd_sockmsg h;
			char p[XENSTORE_PAYLOAD_MAX];
			if (cs[i].inlen) {
				/* consume buffered messages */
				memcpy(&h, cs[i].in, sizeof(h));
				size_t m = sizeof(h) + h.len;
				if (cs[i].inlen >= m) {
					memmove(cs[i].in, cs[i].in + m, cs[i].inlen - m);
					cs[i].inlen -= m;
					if (h.type != XS_WATCH_EVENT)
						cs[i].inflight--;
					continue;
				}
			}
			ssize_t r = read(cs[i].fd, cs[i].in + cs[i].inlen, sizeof(cs[i].in) - cs[i].inlen);
			if (r <= 0)
				exit(2);
			cs[i].inlen += (size_t)r;
			(void)p;
		}
	}
	return (double)units / (t1 - t0);
}

/* ---- rows ---------------------------------------------------------------- */

static void next_read(struct bconn *c, int idx)
{
	char p[64];

	snprintf(p, sizeof(p), "/bench/r/k%u", (c->seq + (unsigned)idx) % 100);
	xsend_str(c, XS_READ, 0, p);
}

static void next_write(struct bconn *c, int idx)
{
	char p[64];
	int n = snprintf(p, sizeof(p), "/bench/w/c%d/k%u", idx, c->seq % 100);

	memcpy(p + n + 1, "0123456789abcdef", 16);
	xsend(c, XS_WRITE, 0, p, (size_t)n + 17);
}

static void next_dir(struct bconn *c, int idx)
{
	(void)idx;
	xsend_str(c, XS_DIRECTORY, 0, "/bench/d");
}

static unsigned reply_one(struct bconn *c, int idx, const struct xsd_sockmsg *h, const char *p)
{
	(void)p;
	if (h->type == XS_ERROR) {
		fprintf(stderr, "error reply: %s\n", p);
		exit(2);
	}
	if (h->type == XS_WATCH_EVENT)
		return 0;
	return 1 + 0 * (unsigned)idx + 0 * c->seq;
}

static next_fn cur_next;
static unsigned reply_and_next(struct bconn *c, int idx, const struct xsd_sockmsg *h, const char *p)
{
	unsigned u = reply_one(c, idx, h, p);

	cur_next(c, idx);
	return u;
}

/* Watch delivery: connection 0 writes, 1..n-1 watch; units = events seen. */
static void next_wwrite(struct bconn *c, int idx)
{
	(void)idx;
	xsend(c, XS_WRITE, 0, "/bench/wd/x\0v", 13);
}

static unsigned reply_watch(struct bconn *c, int idx, const struct xsd_sockmsg *h, const char *p)
{
	(void)p;
	if (h->type == XS_WATCH_EVENT)
		return 1;
	if (idx == 0)
		next_wwrite(c, idx);
	return 0;
}

/* Contended transactions: start, read counter, write counter+1, commit. */
static unsigned long eagains;

static void next_tx(struct bconn *c, int idx)
{
	(void)idx;
	c->tstate = 0;
	xsend_str(c, XS_TRANSACTION_START, 0, "");
}

static unsigned reply_tx(struct bconn *c, int idx, const struct xsd_sockmsg *h, const char *p)
{
	char buf[64];
	int n;

	if (h->type == XS_WATCH_EVENT)
		return 0;
	switch (c->tstate) {
	case 0:
		c->txid = (uint32_t)strtoul(p, NULL, 10);
		c->tstate = 1;
		xsend_str(c, XS_READ, c->txid, "/bench/ctr");
		return 0;
	case 1:
		c->val = strtol(p, NULL, 10);
		c->tstate = 2;
		n = snprintf(buf, sizeof(buf), "/bench/ctr");
		n += 1 + snprintf(buf + n + 1, sizeof(buf) - (size_t)n - 1, "%ld", c->val + 1);
		xsend(c, XS_WRITE, c->txid, buf, (size_t)n);
		return 0;
	case 2:
		c->tstate = 3;
		xsend(c, XS_TRANSACTION_END, c->txid, "T", 2);
		return 0;
	default:
		next_tx(c, idx);
		if (h->type == XS_TRANSACTION_END)
			return 1;
		eagains++;          /* retried, not counted */
		return 0;
	}
}

static void open_conns(struct bconn *cs, int n, const char *sock)
{
	for (int i = 0; i < n; i++) {
		memset(&cs[i], 0, sizeof(cs[i]));
		cs[i].fd = xconnect(sock);
	}
}

static void close_conns(struct bconn *cs, int n)
{
	for (int i = 0; i < n; i++)
		close(cs[i].fd);
}

static long rss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

/* Memory first, on the fresh daemon: RSS growth for 10,000 new nodes
 * (100 dirs x 100 keys); then the nodes the rows use. */
static void setup(struct target *t)
{
	static struct bconn c;
	char path[128];
	long r0, r1;

	open_conns(&c, 1, t->sock);
	r0 = rss_kib(t->pid);
	for (int g = 0; g < 100; g++) {
		for (int k = 0; k < 100; k++) {
			snprintf(path, sizeof(path), "/mem/g%02d/key%02d", g, k);
			setup_write(&c, path, "value-123");
		}
	}
	r1 = rss_kib(t->pid);
	t->mem_kib = (double)(r1 - r0);
	xcall(&c, XS_RM, "/mem", 5, NULL);

	for (int i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "/bench/r/k%d", i);
		setup_write(&c, path, "some value of moderate size");
	}
	for (int i = 0; i < 50; i++) {
		snprintf(path, sizeof(path), "/bench/d/child-%02d", i);
		setup_write(&c, path, "");
	}
	setup_write(&c, "/bench/ctr", "0");
	close_conns(&c, 1);
}

static void teardown(struct target *t)
{
	static struct bconn c;

	open_conns(&c, 1, t->sock);
	xcall(&c, XS_RM, "/bench", 7, NULL);
	close_conns(&c, 1);
}

/* One run of one row against one daemon, on fresh connections. */
static double row_rate(struct target *t, int row)
{
	static struct bconn cs[MAXC];
	static const next_fn nexts[3] = { next_read, next_write, next_dir };
	double rate;

	if (row == 3) {
		open_conns(cs, 51, t->sock);
		for (int i = 1; i < 51; i++)
			xcall(&cs[i], XS_WATCH, "/bench/wd\0tok", 14, NULL);
		rate = drive(cs, 51, 4, next_wwrite, reply_watch, 1);
		close_conns(cs, 51);
		return rate;
	}
	open_conns(cs, 4, t->sock);
	if (row == 4) {
		eagains = 0;
		rate = drive(cs, 4, 1, next_tx, reply_tx, 4);
		t->eagains += eagains;
		t->commits += rate * secs;
	} else {
		cur_next = nexts[row];
		rate = drive(cs, 4, 8, cur_next, reply_and_next, 4);
	}
	close_conns(cs, 4);
	return rate;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	static const char *rows[] = { "read", "write", "directory (50 children)",
				      "watch events (1 writer, 50 watchers)",
				      "transactions (4 clients, contended)" };
	struct target t[2];
	int nt = (argc - 2) / 3, rounds = 5;

	if (argc != 5 && argc != 8) {
		fprintf(stderr, "usage: %s SECONDS NAME SOCKET PID [NAME SOCKET PID]\n", argv[0]);
		return 2;
	}
	if (getenv("PVNET_BENCH_ROUNDS"))
		rounds = atoi(getenv("PVNET_BENCH_ROUNDS"));
	if (rounds < 1 || rounds > MAXROUNDS)
		rounds = 5;
	secs = atof(argv[1]) / rounds;
	for (int i = 0; i < nt; i++) {
		t[i] = (struct target){ .name = argv[2 + 3 * i], .sock = argv[3 + 3 * i],
					.pid = atoi(argv[4 + 3 * i]) };
		setup(&t[i]);
	}
	/* Rounds: each row runs on both daemons back to back, the order
	 * alternating, so that a change of load on this shared machine falls on
	 * both; each figure is the median of its rounds. */
	for (int k = 0; k < rounds; k++)
		for (int r = 0; r < 5; r++)
			for (int j = 0; j < nt; j++) {
				struct target *x = &t[(j + k) % nt];
				x->runs[r][k] = row_rate(x, r);
			}
	for (int i = 0; i < nt; i++) {
		for (int r = 0; r < 5; r++)
			t[i].rate[r] = median(t[i].runs[r], rounds);
		t[i].eagain = t[i].eagains / t[i].commits;
		teardown(&t[i]);
	}
	printf("(median of %d alternating rounds of %.2f s per row and daemon)\n", rounds, secs);
	printf("%-40s %12s", "requests per second", t[0].name);
	if (nt == 2)
		printf(" %12s %8s", t[1].name, "ratio");
	printf("\n");
	for (int r = 0; r < 5; r++) {
		printf("%-40s %12.0f", rows[r], t[0].rate[r]);
		if (nt == 2)
			printf(" %12.0f %7.2fx", t[1].rate[r], t[0].rate[r] / t[1].rate[r]);
		printf("\n");
	}
	printf("%-40s %12.2f", "  (EAGAIN per commit)", t[0].eagain);
	if (nt == 2)
		printf(" %12.2f", t[1].eagain);
	printf("\n");
	printf("%-40s %12.0f", "RSS KiB per 10,000 nodes", t[0].mem_kib);
	if (nt == 2)
		printf(" %12.0f %7.2fx", t[1].mem_kib, t[0].mem_kib / t[1].mem_kib);
	printf("\n");
	return 0;
}
