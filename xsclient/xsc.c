#include "xsclient/xsc.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"

struct xsc {
	int fd;
	uint32_t next_id;
	int timeout_ms;
	int broken;   /* after a protocol error the stream cannot be trusted */
};

struct xsc *xsc_open(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct xsc *c;

	if (!path || strlen(path) >= sizeof(a.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	strcpy(a.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		errno = e;
		return NULL;
	}
	c->next_id = 1;
	c->timeout_ms = 10000;
	return c;
}

struct xsc *xsc_attach_fd(int fd)
{
	struct xsc *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	c->next_id = 1;
	c->timeout_ms = 10000;
	return c;
}

void xsc_close(struct xsc *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

void xsc_set_timeout(struct xsc *c, int ms) { c->timeout_ms = ms; }
void xsc_set_next_req_id(struct xsc *c, uint32_t id) { c->next_id = id; }
uint32_t xsc_next_req_id(const struct xsc *c) { return c->next_id; }

int xsc_errno(const char *name, size_t len)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(xsd_errors); i++)
		if (strlen(xsd_errors[i].errstring) == len && !memcmp(xsd_errors[i].errstring, name, len))
			return xsd_errors[i].errnum;
	return EINVAL;
}

int xsc_decode_reply(const struct xsd_sockmsg *hdr, const uint8_t *payload, uint32_t want_type,
		     struct xsc_op *op)
{
	if (hdr->len > XENSTORE_PAYLOAD_MAX)
		return -EPROTO;
	if (hdr->type == XS_ERROR) {
		/* "<ENAME>\0"; be lenient about the terminator, strict about size. */
		size_t n = strnlen((const char *)payload, hdr->len);
		if (n == 0)
			return -EPROTO;
		op->err = xsc_errno((const char *)payload, n);
		return 0;
	}
	if (hdr->type != want_type)
		return -EPROTO;
	op->err = 0;
	if (want_type == XS_READ || want_type == XS_DIRECTORY || want_type == XS_TRANSACTION_START) {
		op->result = malloc(hdr->len + 1);
		if (!op->result)
			return -ENOMEM;
		memcpy(op->result, payload, hdr->len);
		op->result[hdr->len] = '\0';
		op->rlen = hdr->len;
	}
	return 0;
}

static int append_msg(uint8_t **buf, size_t *len, size_t *cap, uint32_t type, uint32_t id, uint32_t tx,
		      const char *path, const void *val, unsigned vlen)
{
	bool with_value = type == XS_WRITE || type == XS_SET_PERMS;
	size_t plen = strlen(path) + 1 + (with_value ? vlen : 0);
	struct xsd_sockmsg h = { .type = type, .req_id = id, .tx_id = tx, .len = (uint32_t)plen };

	if (plen > XENSTORE_PAYLOAD_MAX)
		return -E2BIG;
	if (*len + sizeof(h) + plen > *cap) {
		size_t ncap = (*cap ? *cap * 2 : 4096) + sizeof(h) + plen;
		uint8_t *n = realloc(*buf, ncap);
		if (!n)
			return -ENOMEM;
		*buf = n;
		*cap = ncap;
	}
	memcpy(*buf + *len, &h, sizeof(h));
	memcpy(*buf + *len + sizeof(h), path, strlen(path) + 1);
	if (with_value && vlen)
		memcpy(*buf + *len + sizeof(h) + strlen(path) + 1, val, vlen);
	*len += sizeof(h) + plen;
	return 0;
}

/* Read exactly len bytes before the deadline. */
static int read_until(struct xsc *c, void *buf, size_t len, uint64_t deadline)
{
	size_t got = 0;

	while (got < len) {
		/* MSG_DONTWAIT: the deadline holds even on a blocking socket. */
		ssize_t n = recv(c->fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		uint64_t now = pv_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
	}
	return 0;
}

/* One reply; watch events (not requested here, but legal) are skipped. */
static int read_reply(struct xsc *c, struct xsd_sockmsg *h, uint8_t *payload, uint64_t deadline)
{
	for (;;) {
		int r;
		/* A daemon streaming watch events cannot hold us past it. */
		if (pv_now_ns() >= deadline)
			return -ETIMEDOUT;
		r = read_until(c, h, sizeof(*h), deadline);
		if (r < 0)
			return r;
		if (h->len > XENSTORE_PAYLOAD_MAX)
			return -EPROTO;
		r = read_until(c, payload, h->len, deadline);
		if (r < 0)
			return r;
		if (h->type != XS_WATCH_EVENT)
			return 0;
	}
}

/* Send a buffer, reading (and keeping) replies when the socket is full so
 * that a daemon limiting outstanding requests cannot deadlock us. */
static int exchange(struct xsc *c, const uint8_t *out, size_t outlen, uint32_t first_id,
		    const uint32_t *types, struct xsc_op *ops, unsigned n)
{
	uint64_t deadline = pv_now_ns() + (uint64_t)c->timeout_ms * 1000000u;
	static __thread uint8_t payload[XENSTORE_PAYLOAD_MAX + 1];
	size_t sent = 0;
	unsigned got = 0;
	uint8_t *seen = calloc(n ? n : 1, 1);
	int r = 0;

	if (!seen)
		return -ENOMEM;
	while (got < n) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN | (sent < outlen ? POLLOUT : 0) };
		uint64_t now = pv_now_ns();
		if (now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, (int)((deadline - now) / 1000000u) + 1) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if ((p.revents & POLLOUT) && sent < outlen) {
			ssize_t w = send(c->fd, out + sent, outlen - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				r = -errno;
				break;
			}
			if (w > 0)
				sent += (size_t)w;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			struct xsd_sockmsg h;
			unsigned idx;
			if ((r = read_reply(c, &h, payload, deadline)) < 0)
				break;
			idx = h.req_id - first_id;
			/* Unknown or repeated req_id: the stream is not ours to trust. */
			if (idx >= n || seen[idx]) {   /* modulo 2^32: ids may wrap */
				r = -EPROTO;
				break;
			}
			seen[idx] = 1;
			if ((r = xsc_decode_reply(&h, payload, types[idx], &ops[idx])) < 0)
				break;
			got++;
		}
	}
	free(seen);
	if (r == 0 && sent != outlen)
		r = -EPROTO;
	return r;
}

static int run(struct xsc *c, uint32_t tx, uint32_t *types, struct xsc_op *ops, unsigned n)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	uint32_t first = c->next_id;
	int r = 0;

	if (c->broken)
		return -EPROTO;
	for (unsigned i = 0; i < n && r == 0; i++)
		r = append_msg(&buf, &len, &cap, types[i], first + i, tx, ops[i].path, ops[i].value, ops[i].len);
	c->next_id += n;
	if (r == 0)
		r = exchange(c, buf, len, first, types, ops, n);
	free(buf);
	/* A stream that timed out or misbehaved may hold half a reply. */
	if (r == -EPROTO || r == -ETIMEDOUT)
		c->broken = 1;
	return r;
}

int xsc_batch(struct xsc *c, uint32_t tx, struct xsc_op *ops, unsigned n)
{
	uint32_t stack_types[64], *types = n <= 64 ? stack_types : malloc(n * sizeof(*types));
	int r;

	if (!types)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		ops[i].err = 0;
		ops[i].result = NULL;
		ops[i].rlen = 0;
		types[i] = ops[i].type;
		if (!ops[i].path || (types[i] != XS_READ && types[i] != XS_WRITE && types[i] != XS_MKDIR &&
				     types[i] != XS_RM && types[i] != XS_DIRECTORY && types[i] != XS_SET_PERMS) ||
		    (types[i] == XS_SET_PERMS && (ops[i].len == 0 || ((const char *)ops[i].value)[ops[i].len - 1]))) {
			if (types != stack_types)
				free(types);
			return -EINVAL;
		}
	}
	r = run(c, tx, types, ops, n);
	if (types != stack_types)
		free(types);
	return r;
}

/* TRANSACTION_START / END are single requests with their own payloads. */
static int simple(struct xsc *c, uint32_t type, uint32_t tx, const char *arg, struct xsc_op *out)
{
	struct xsc_op op = { .type = type, .path = arg };
	uint32_t t = type;
	int r = run(c, tx, &t, &op, 1);
	*out = op;
	return r;
}

int xsc_transaction(struct xsc *c, struct xsc_op *ops, unsigned n, unsigned max_tries)
{
	for (unsigned tries = 0; tries < max_tries; tries++) {
		struct xsc_op st, end;
		uint32_t tx;
		int r, bad = 0;

		r = simple(c, XS_TRANSACTION_START, 0, "", &st);
		if (r < 0)
			return r;
		if (st.err) {
			free(st.result);
			return -st.err;
		}
		/* The reply is the id as a decimal string, never 0. */
		r = pv_parse_u32(st.result && st.rlen && !st.result[st.rlen - 1] ? st.result : "", &tx);
		if (r < 0 && st.result)
			r = pv_parse_u32(st.result, &tx);
		free(st.result);
		if (r < 0 || tx == 0) {
			c->broken = 1;
			return -EPROTO;
		}
		r = xsc_batch(c, tx, ops, n);
		if (r < 0)
			return r;
		for (unsigned i = 0; i < n && !bad; i++)
			bad = ops[i].err;
		r = simple(c, XS_TRANSACTION_END, tx, bad ? "F" : "T", &end);
		if (r < 0)
			return r;
		if (bad)
			return -bad;
		if (end.err != EAGAIN)
			return end.err ? -end.err : 0;
		xsc_ops_free(ops, n);
	}
	return -EAGAIN;
}

void xsc_ops_free(struct xsc_op *ops, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(ops[i].result);
		ops[i].result = NULL;
		ops[i].rlen = 0;
	}
}
