/* The client side of the hypervisor protocol (proto.h). */
#include "hypervisor/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"

const char *hvc_path(const char *path)
{
	return path ? path : getenv(PV_HV_ENV);
}

static int call_errno(void)
{
	return errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -errno;
}

static int send_req(struct hvc *c, const struct hvc_req *rq)
{
	struct hvp_hdr hdr = { .magic = HVP_MAGIC, .version = HVP_VERSION, .op = rq->op,
			       .seq = ++c->seq, .count = rq->count,
			       .arg = { rq->arg[0], rq->arg[1] } };
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)rq->payload, rq->len } };
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = rq->len ? 2 : 1 };
	ssize_t n;

	if (rq->fd >= 0) {
		struct cmsghdr *h;
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.b;
		msg.msg_controllen = sizeof(cm.b);
		h = CMSG_FIRSTHDR(&msg);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &rq->fd, sizeof(int));
	}
	do
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? call_errno() : 0;
}

void hvc_drop_fds(struct hvc *c)
{
	for (unsigned i = 0; i < c->nfds; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	c->nfds = 0;
}

int hvc_call(struct hvc *c, const struct hvc_req *rq)
{
	ssize_t n;
	int r;

	if (c->fd < 0)
		return -ECONNRESET;
	hvc_drop_fds(c);
	r = send_req(c, rq);
	if (r < 0)
		return r;
	c->nfds = HVP_MAX_VIEWS;
	n = pv_recv_fds(c->fd, c->buf.bytes, sizeof(c->buf.bytes), c->fds, &c->nfds);
	if (n < 0) {
		c->nfds = 0;
		return n == -EPIPE ? -ECONNRESET : (int)n;
	}
	if (n == 0)
		return -ECONNRESET;
	memcpy(&c->rep, c->buf.bytes, PV_MIN((size_t)n, sizeof(c->rep)));
	if ((size_t)n < sizeof(c->rep) || (size_t)n > HVP_MAX_MSG || c->rep.magic != HVP_MAGIC ||
	    c->rep.version != HVP_VERSION || c->rep.op != rq->op || c->rep.seq != c->seq) {
		/* Not the reply to this request: every later one would be
		 * off by one too. The connection is done (-ECONNRESET next). */
		hvc_drop_fds(c);
		close(c->fd);
		c->fd = -1;
		return -EPROTO;
	}
	/* An error is -errno: anything below -4095 is not one (and -INT_MIN
	 * would not even negate). */
	if (c->rep.ret < -4095) {
		hvc_drop_fds(c);
		return -EPROTO;
	}
	c->rep_payload = c->buf.bytes + sizeof(c->rep);
	c->rep_len = (size_t)n - sizeof(c->rep);
	c->latest = c->rep.notice_seq;
	return c->rep.ret;
}

static void apply_all(struct hvc *c, const struct hvp_notice *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (c->apply)
			c->apply(c->owner, &v[i]);
		if ((int32_t)(v[i].seq - c->seen) > 0)
			c->seen = v[i].seq;
	}
}

/* Fetch notices (peek after `seen`, or consume) into `out`. */
static int fetch(struct hvc *c, bool consume, struct hvp_notice *out, unsigned max)
{
	struct hvc_req rq = { .op = HVP_NOTICES, .count = max, .fd = -1,
			      .arg = { consume, c->seen } };
	unsigned n;
	int r;

	/* Consuming: drain the "pending" datagrams first; the hypervisor
	 * signals again if notices are left after this call or come later. */
	if (consume && c->notice_fd >= 0) {
		char b[16];
		while (recv(c->notice_fd, b, sizeof(b), MSG_DONTWAIT) > 0)
			;
	}
	r = hvc_call(c, &rq);

	hvc_drop_fds(c);
	if (r < 0)
		return r;
	n = c->rep.count;
	if (n > max || c->rep_len != n * sizeof(*out))
		return -EPROTO;
	memcpy(out, c->rep_payload, c->rep_len);
	apply_all(c, out, n);
	return (int)n;
}

int hvc_sync(struct hvc *c)
{
	struct hvp_notice v[HVP_MAX_NOTICES];
	int r = 0;

	if (!c->apply && !c->consume)
		return 0;
	for (int rounds = 0; c->latest != c->seen && rounds < 64; rounds++) {
		r = fetch(c, c->consume, v, HVP_MAX_NOTICES);
		if (r < 0)
			return r;
		if (r == 0) {
			c->seen = c->latest; /* consumed elsewhere already */
			break;
		}
	}
	return 0;
}

int hvc_poll_notices(struct hvc *c, struct pv_notice *out, unsigned max)
{
	struct hvp_notice v[HVP_MAX_NOTICES];
	int n = max ? fetch(c, true, v, PV_MIN(max, HVP_MAX_NOTICES)) : 0;

	for (int i = 0; i < n; i++)
		out[i] = (struct pv_notice){ (enum pv_notice_type)v[i].type, v[i].domid, v[i].port };
	return n;
}

int hvc_open(struct hvc *c, const char *path, uint32_t want)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct hvc_req rq = { .op = HVP_HELLO, .arg = { want, 0 }, .fd = -1 };
	struct hvp_hello hello;
	int r;

	memset(c, 0, sizeof(*c));
	c->fd = c->notice_fd = -1;
	path = hvc_path(path);
	if (!path)
		return -ENOENT;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto fail;
	}
	r = hvc_call(c, &rq);
	if (r >= 0 && (c->rep_len != sizeof(hello) || c->nfds != 1))
		r = -EPROTO;
	if (r < 0)
		goto fail;
	memcpy(&hello, c->rep_payload, sizeof(hello));
	if (hello.max_port > HVP_MAX_PORT) {   /* sizes our port tables */
		r = -EPROTO;
		goto fail;
	}
	c->domid = hello.domid;
	c->state = hello.state;
	c->max_port = hello.max_port;
	c->mem_pages = hello.mem_pages;
	c->notice_fd = c->fds[0];
	c->nfds = 0;
	return 0;
fail:
	hvc_close(c);
	return r;
}

void hvc_close(struct hvc *c)
{
	hvc_drop_fds(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->notice_fd >= 0)
		close(c->notice_fd);
	c->fd = c->notice_fd = -1;
}
