/*
 * Request decoding and dispatch: one table, indexed by op, gives each
 * request's exact shape (a fixed payload, or `count` elements of a fixed
 * size, at most HVP_MAX_BATCH), the fds it carries, whether it needs dom0,
 * and whether the calling domain must still be alive (not moved). Every
 * check happens here once; handlers see well-formed requests only. The
 * request is already private memory (copied out of the socket), so there is
 * nothing to re-read. A malformed message gets an error reply (-EBADMSG,
 * -EPROTO, -ENOSYS, -EINVAL, -EPERM) and the connection goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/util.h"
#include "hypervisor/hvd.h"

#define LATE (-100000)  /* the handler answers later (hvd_late_reply) */
#define PRIV 1u         /* dom0 only */
#define LIVE 2u         /* the caller's domain has not ended */

struct ctx {
	struct hvd *h;
	struct hvd_conn *c;
	const struct hvp_hdr *req;
	const uint8_t *in;
	int *fds;
	unsigned nfds;
	uint8_t *out;          /* reply payload */
	size_t out_len;
	uint32_t count, arg[2];
	int send[HVP_MAX_VIEWS];
	unsigned nsend;
};

static bool privileged(const struct ctx *x) { return x->c->dom->domid == 0; }
static uint32_t own(const struct ctx *x) { return x->c->dom->domid; }

static void add_fd(struct ctx *x, int fd)
{
	if (x->nsend < HVP_MAX_VIEWS)
		x->send[x->nsend++] = fd;
}

/* A domain that still has its grant table, memory, ports (not moved). */
static struct hvd_domain *live_domain(struct hvd *h, uint32_t domid)
{
	struct hvd_domain *d = hvd_domain_get(h, domid);
	return d && d->gtfd >= 0 ? d : NULL;
}

/* ---- connection and memory ------------------------------------------------- */

static int op_hello(struct ctx *x)
{
	struct hvd_conn *c = x->c;
	struct hvp_hello *o = (void *)x->out;

	if (c->notice_fd < 0) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
			return -errno;
		c->notice_fd = sv[0];
		c->notice_peer = sv[1];
		if (c->nq_len)
			hvd_notice_signal(c);
	}
	c->want = privileged(x) ? x->req->arg[0] & HVP_WANT_DOMAIN_GONE : 0;
	o->domid = own(x);
	o->state = c->dom->state;
	o->max_port = c->dom->ec.max_port;
	o->mem_pages = c->dom->gt.mem_pages;
	x->out_len = sizeof(*o);
	add_fd(x, c->notice_peer);
	return 0;
}

static int op_notices(struct ctx *x)
{
	struct hvd_conn *c = x->c;
	struct hvp_notice *o = (void *)x->out;
	unsigned max = x->req->count && x->req->count < HVP_MAX_NOTICES ? x->req->count
									  : HVP_MAX_NOTICES;
	unsigned n = 0;

	if ((x->req->arg[0] & 1) && c->nq_len) {
		n = PV_MIN(max, c->nq_len);
		memcpy(o, c->nq, n * sizeof(*o));
		memmove(c->nq, c->nq + n, (c->nq_len - n) * sizeof(*o));
		c->nq_len -= n;
		/* The client drained its end before asking: what is left
		 * must show again. */
		if (c->nq_len)
			hvd_notice_signal(c);
	} else if (!(x->req->arg[0] & 1)) {
		for (unsigned i = 0; i < c->nq_len && n < max; i++)
			if ((int32_t)(c->nq[i].seq - x->req->arg[1]) > 0)
				o[n++] = c->nq[i];
	}
	x->count = n;
	x->out_len = n * sizeof(*o);
	return (int)n;
}

static int op_mem_get(struct ctx *x)
{
	struct hvd_domain *d = x->c->dom;

	if (!d->gt.mem)
		return -EAGAIN; /* incoming: not imported yet */
	x->arg[0] = d->gt.mem_pages;
	add_fd(x, d->memfd);
	return 0;
}

static int op_gt_setup(struct ctx *x)
{
	x->arg[0] = x->c->dom->gt.nr_entries;
	add_fd(x, x->c->dom->gtfd);
	return 0;
}

/* ---- grant tables ------------------------------------------------------------ */

static bool has_view(const struct hvd_conn *c, const struct hvd_domain *d)
{
	for (unsigned i = 0; i < c->nviews; i++)
		if (c->views[i] == d)
			return true;
	return false;
}

static int add_view(struct hvd_conn *c, struct hvd_domain *d)
{
	if (c->nviews == c->cap_views) {
		unsigned ncap = c->cap_views ? c->cap_views * 2 : 4;
		struct hvd_domain **v = realloc(c->views, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->views = v;
		c->cap_views = ncap;
	}
	c->views[c->nviews++] = d;
	return 0;
}

static int op_map(struct ctx *x)
{
	const struct gnttab_map_grant_ref *in = (const void *)x->in;
	struct gnttab_map_grant_ref *o = (void *)x->out;
	struct hvp_view views[HVP_MAX_VIEWS];
	struct hvd_conn *c = x->c;
	unsigned nv = 0, i;

	for (i = 0; i < x->req->count; i++) {
		struct hvd_domain *g = live_domain(x->h, in[i].dom);
		bool need = g && g->gt.mem && !has_view(c, g);

		if (need && nv == HVP_MAX_VIEWS)
			break; /* the client sends the rest again */
		o[i] = in[i];
		hvd_gt_map(&c->mt, g ? &g->gt : NULL, (domid_t)own(x), &o[i]);
		if (o[i].status != GNTST_okay || !need)
			continue;
		if (add_view(c, g) < 0) {
			struct gnttab_unmap_grant_ref u = { .handle = o[i].handle };
			hvd_gt_unmap(&c->mt, &u);
			o[i].status = GNTST_no_space;
			continue;
		}
		views[nv] = (struct hvp_view){ g->domid, g->incarnation, g->gt.mem_pages };
		add_fd(x, g->memfd);
		nv++;
	}
	memcpy(o + i, views, nv * sizeof(views[0]));
	x->count = i;
	x->arg[0] = nv;
	x->out_len = i * sizeof(*o) + nv * sizeof(views[0]);
	return 0;
}

static int op_unmap(struct ctx *x)
{
	const struct gnttab_unmap_grant_ref *in = (const void *)x->in;
	struct gnttab_unmap_grant_ref *o = (void *)x->out;

	for (uint32_t i = 0; i < x->req->count; i++) {
		o[i] = in[i];
		hvd_gt_unmap(&x->c->mt, &o[i]);
	}
	x->count = x->req->count;
	x->out_len = x->count * sizeof(*o);
	return 0;
}

static struct hvd_gt *copy_lookup(void *ctx, domid_t domid)
{
	struct ctx *x = ctx;
	struct hvd_domain *d = live_domain(x->h, domid == DOMID_SELF ? own(x) : domid);
	return d ? &d->gt : NULL;
}

static int op_copy(struct ctx *x)
{
	const struct gnttab_copy *in = (const void *)x->in;
	int16_t *st = (void *)x->out;

	for (uint32_t i = 0; i < x->req->count; i++)
		st[i] = hvd_gt_copy(copy_lookup, x, &x->c->dom->gt, &in[i]);
	x->count = x->req->count;
	x->out_len = x->count * sizeof(*st);
	return 0;
}

/* dom0 copies in-process (gnttab.c): the granter's table, state and memory. */
static int op_gt_attach(struct ctx *x)
{
	struct hvd_domain *g = live_domain(x->h, x->req->arg[0]);
	struct hvp_attach *a = (void *)x->out;

	if (!g || g->domid == 0)
		return -ESRCH;
	if (!g->gt.mem || g->statefd < 0)
		return -EAGAIN;
	*a = (struct hvp_attach){ g->domid, g->incarnation, g->gt.nr_entries, g->gt.mem_pages };
	add_fd(x, g->gtfd);
	add_fd(x, g->statefd);
	add_fd(x, g->memfd);
	x->c->attached = true;
	x->out_len = sizeof(*a);
	return 0;
}

/* ---- event channels ---------------------------------------------------------- */

static void reply_port(struct ctx *x, const struct hvd_port *p)
{
	add_fd(x, p->chan->bell[p->side]);   /* ours to watch */
	add_fd(x, p->chan->bell[!p->side]);  /* the peer's: ours to ring */
	add_fd(x, p->chan->flags);         /* both sides' pending flags */
	x->arg[0] = p->side;
}

static int op_ec_alloc_unbound(struct ctx *x)
{
	struct evtchn_alloc_unbound a;
	struct hvd_chan *ch;
	int port;

	memcpy(&a, x->in, sizeof(a));
	if (a.dom != DOMID_SELF && a.dom != own(x))
		return -EPERM;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	/* Ready from the start, and never read (evtchn.c). */
	for (int i = 0; i < 2; i++)
		ch->bell[i] = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	ch->flags = hvd_sealed_memfd("pvnet-evtchn", HVP_EC_FLAGS_SIZE);
	port = ch->bell[0] < 0 || ch->bell[1] < 0 || ch->flags < 0 ? -EMFILE
		: hvd_ec_alloc_unbound(&x->c->dom->ec, a.remote_dom, ch, x->c);
	if (port < 0) {
		hvd_chan_free(ch);
		return port;
	}
	a.port = (evtchn_port_t)port;
	memcpy(x->out, &a, sizeof(a));
	x->out_len = sizeof(a);
	reply_port(x, &x->c->dom->ec.ports[port]);
	return 0;
}

static int op_ec_bind(struct ctx *x)
{
	struct evtchn_bind_interdomain b;
	struct hvd_domain *rd;
	const struct hvd_port *p;
	int port;

	memcpy(&b, x->in, sizeof(b));
	rd = live_domain(x->h, b.remote_dom == DOMID_SELF ? own(x) : b.remote_dom);
	port = hvd_ec_bind(&x->c->dom->ec, rd ? &rd->ec : NULL, b.remote_port, x->c);
	if (port < 0)
		return port;
	/* A new binding is pending once, for what the peer sent before it:
	 * the binder sets its own flag (evtchn.c), and its doorbell is ready
	 * from the start. */
	p = &x->c->dom->ec.ports[port];
	b.local_port = (evtchn_port_t)port;
	memcpy(x->out, &b, sizeof(b));
	x->out_len = sizeof(b);
	reply_port(x, p);
	return 0;
}

static int op_ec_close(struct ctx *x)
{
	return hvd_port_close(x->c, x->req->arg[0]);
}

static int op_ec_status(struct ctx *x)
{
	struct evtchn_status s;
	struct hvd_domain *d;
	uint32_t domid;
	int r;

	memcpy(&s, x->in, sizeof(s));
	domid = s.dom == DOMID_SELF ? own(x) : s.dom;
	if (domid != own(x) && !privileged(x))
		return -EPERM;
	d = live_domain(x->h, domid);
	if (!d)
		return -ESRCH;
	r = hvd_ec_status(&d->ec, s.port, &s);
	if (r < 0)
		return r;
	memcpy(x->out, &s, sizeof(s));
	x->out_len = sizeof(s);
	return 0;
}

/* ---- the calling guest's lifecycle ------------------------------------------- */

static void pause_for_late_reply(struct ctx *x)
{
	x->c->late_op = x->req->op;
	x->c->late_seq = x->req->seq;
	x->c->paused = true;
}

static int op_suspend(struct ctx *x)
{
	struct hvd_domain *d = x->c->dom;

	if (d->domid == 0 || d->state != PV_DOM_RUNNING)
		return -EINVAL;
	d->shutdown_reason = SHUTDOWN_suspend;
	d->suspender = x->c;
	pause_for_late_reply(x);
	hvd_domain_set_state(x->h, d, PV_DOM_SUSPENDED);
	return LATE;
}

static int op_shutdown(struct ctx *x)
{
	struct hvd_domain *d = x->c->dom;
	uint32_t why = x->req->arg[0];

	if (d->domid == 0 || d->state != PV_DOM_RUNNING ||
	    (why != SHUTDOWN_poweroff && why != SHUTDOWN_reboot && why != SHUTDOWN_crash &&
	     why != SHUTDOWN_watchdog))
		return -EINVAL;
	d->shutdown_reason = why;
	hvd_domain_set_state(x->h, d, PV_DOM_SHUTDOWN);
	return 0;
}

/* ---- domain control (dom0) --------------------------------------------------- */

static struct hvd_domain *target(struct ctx *x)
{
	return hvd_domain_get(x->h, x->req->arg[0]);
}

static int op_dom_create(struct ctx *x)
{
	struct hvp_domcfg cfg;
	struct hvd_domain *d;
	int r;

	memcpy(&cfg, x->in, sizeof(cfg));
	r = hvd_domain_create(x->h, &cfg, &d);
	if (r < 0)
		return r;
	pv_info("d%u created (%s%s, %u pages)", d->domid, d->name,
		cfg.incoming ? ", incoming" : "", d->gt.mem_pages);
	x->arg[0] = d->domid;
	return 0;
}

static int op_dom_destroy(struct ctx *x)
{
	struct hvd_domain *d = target(x);

	if (!d)
		return -ESRCH;
	if (d->domid == 0)
		return -EINVAL;
	pv_info("d%u destroyed", d->domid);
	hvd_domain_destroy(x->h, d);
	return 0;
}

static int op_dom_info(struct ctx *x)
{
	struct hvd_domain *d = target(x);

	if (!d)
		return -ESRCH;
	hvd_domain_info(d, (void *)x->out);
	x->out_len = sizeof(struct hvp_dominfo);
	return 0;
}

static int op_dom_list(struct ctx *x)
{
	struct hvp_dominfo *o = (void *)x->out;
	unsigned n = 0;

	for (uint32_t id = x->req->arg[0]; id < DOMID_FIRST_RESERVED && n < HVP_MAX_LIST; id++)
		if (x->h->dom[id])
			hvd_domain_info(x->h->dom[id], &o[n++]);
	x->count = n;
	x->arg[1] = x->h->ndomains;
	x->out_len = n * sizeof(*o);
	return (int)x->h->ndomains;
}

static void wait_timeout(struct pv_loop *loop, void *arg)
{
	struct hvd_conn *c = arg;

	c->wait_timer = 0;
	hvd_late_reply(c, -ETIMEDOUT, NULL, 0);
}

static int op_dom_wait(struct ctx *x)
{
	struct hvp_wait w;
	struct hvd_domain *d;

	memcpy(&w, x->in, sizeof(w));
	d = hvd_domain_get(x->h, w.domid);
	if (!d)
		return -ESRCH;
	if (w.state_mask & (1u << d->state))
		return 0;
	if (w.timeout_ms == 0)
		return -ETIMEDOUT;
	x->c->wait_domid = w.domid;
	x->c->wait_mask = w.state_mask;
	x->c->wait_timer = 0;
	if (w.timeout_ms > 0 && x->h->loop) {
		int64_t t = pv_loop_add_timer(x->h->loop, (uint64_t)w.timeout_ms * 1000000u,
					      wait_timeout, x->c);
		if (t < 0)
			return (int)t;
		x->c->wait_timer = t;
	}
	pause_for_late_reply(x);
	return LATE;
}

static int op_dom_resume(struct ctx *x)
{
	struct hvd_domain *d = target(x);
	struct hvd_conn *s;

	if (!d)
		return -ESRCH;
	if (d->state != PV_DOM_SUSPENDED)
		return -EINVAL;
	s = d->suspender;
	d->suspender = NULL;
	d->shutdown_reason = 0;
	hvd_domain_set_state(x->h, d, PV_DOM_RUNNING);
	if (s)
		hvd_late_reply(s, 1, NULL, 0);
	return 0;
}

static int op_dom_export(struct ctx *x)
{
	struct hvd_domain *d = target(x);

	if (!d)
		return -ESRCH;
	if (d->state != PV_DOM_SUSPENDED || d->memfd < 0)
		return -EINVAL;
	x->arg[0] = d->gt.mem_pages;
	add_fd(x, d->memfd);
	return 0;
}

static int op_dom_import(struct ctx *x)
{
	struct hvd_domain *d = target(x);
	int r;

	if (!d)
		return -ESRCH;
	if (d->state != PV_DOM_INCOMING)
		return -EINVAL;
	r = hvd_domain_set_memory(d, x->fds[0], x->req->arg[1]);
	if (r < 0)
		return r;
	x->fds[0] = -1; /* the domain owns it now */
	hvd_domain_set_state(x->h, d, PV_DOM_RUNNING);
	pv_info("d%u imported %u pages", d->domid, d->gt.mem_pages);
	return 0;
}

static int op_dom_moved(struct ctx *x)
{
	struct hvd_domain *d = target(x);
	struct hvp_resume info;
	struct hvd_conn *s;

	if (!d)
		return -ESRCH;
	if (d->domid == 0 || d->state != PV_DOM_SUSPENDED)
		return -EINVAL;
	memcpy(&info, x->in, sizeof(info));
	info.hypervisor_path[sizeof(info.hypervisor_path) - 1] = '\0';
	info.start_info[sizeof(info.start_info) - 1] = '\0';
	s = d->suspender;
	d->suspender = NULL;
	hvd_domain_end(x->h, d);
	hvd_domain_set_state(x->h, d, PV_DOM_MOVED);
	if (s)
		hvd_late_reply(s, 0, &info, sizeof(info));
	pv_info("d%u moved away (now d%u at %s)", d->domid, info.new_domid, info.hypervisor_path);
	return 0;
}

static int op_dom_socket(struct ctx *x)
{
	struct hvd_domain *d = target(x);
	size_t n;

	if (!d)
		return -ESRCH;
	if (!d->sock_path)
		return -ENOENT;
	n = strlen(d->sock_path) + 1;
	if (n > HVP_MAX_MSG - sizeof(struct hvp_hdr))
		return -ENAMETOOLONG;
	memcpy(x->out, d->sock_path, n);
	x->count = (uint32_t)n;
	x->out_len = n;
	return 0;
}

/* ---- the table ------------------------------------------------------------------ */

struct op_desc {
	const char *name;
	uint16_t elem;      /* batch: element size (count elements follow) */
	uint16_t size;      /* otherwise: the payload size */
	uint8_t nfds;
	uint8_t flags;
	int (*fn)(struct ctx *x);
};

static const struct op_desc ops[HVP_OP_COUNT] = {
	[HVP_HELLO]            = { "hello", 0, 0, 0, 0, op_hello },
	[HVP_NOTICES]          = { "notices", 0, 0, 0, 0, op_notices },
	[HVP_MEM_GET]          = { "mem_get", 0, 0, 0, LIVE, op_mem_get },
	[HVP_GT_SETUP]         = { "gt_setup", 0, 0, 0, LIVE, op_gt_setup },
	[HVP_MAP]              = { "map", sizeof(struct gnttab_map_grant_ref), 0, 0, LIVE, op_map },
	[HVP_UNMAP]            = { "unmap", sizeof(struct gnttab_unmap_grant_ref), 0, 0, 0, op_unmap },
	[HVP_COPY]             = { "copy", sizeof(struct gnttab_copy), 0, 0, LIVE, op_copy },
	[HVP_EC_ALLOC_UNBOUND] = { "alloc_unbound", 0, sizeof(struct evtchn_alloc_unbound), 0, LIVE,
				   op_ec_alloc_unbound },
	[HVP_EC_BIND]          = { "bind_interdomain", 0, sizeof(struct evtchn_bind_interdomain), 0,
				   LIVE, op_ec_bind },
	[HVP_EC_CLOSE]         = { "close", 0, 0, 0, 0, op_ec_close },
	[HVP_EC_STATUS]        = { "status", 0, sizeof(struct evtchn_status), 0, LIVE, op_ec_status },
	[HVP_SUSPEND]          = { "suspend", 0, 0, 0, LIVE, op_suspend },
	[HVP_SHUTDOWN]         = { "shutdown", 0, 0, 0, LIVE, op_shutdown },
	[HVP_DOM_CREATE]       = { "create", 0, sizeof(struct hvp_domcfg), 0, PRIV, op_dom_create },
	[HVP_DOM_DESTROY]      = { "destroy", 0, 0, 0, PRIV, op_dom_destroy },
	[HVP_DOM_INFO]         = { "info", 0, 0, 0, PRIV, op_dom_info },
	[HVP_DOM_LIST]         = { "list", 0, 0, 0, PRIV, op_dom_list },
	[HVP_DOM_WAIT]         = { "wait", 0, sizeof(struct hvp_wait), 0, PRIV, op_dom_wait },
	[HVP_DOM_RESUME]       = { "resume", 0, 0, 0, PRIV, op_dom_resume },
	[HVP_DOM_EXPORT]       = { "export", 0, 0, 0, PRIV, op_dom_export },
	[HVP_DOM_IMPORT]       = { "import", 0, 0, 1, PRIV, op_dom_import },
	[HVP_DOM_MOVED]        = { "moved", 0, sizeof(struct hvp_resume), 0, PRIV, op_dom_moved },
	[HVP_DOM_SOCKET]       = { "socket", 0, 0, 0, PRIV, op_dom_socket },
	[HVP_GT_ATTACH]        = { "gt_attach", 0, 0, 0, PRIV, op_gt_attach },
};

/* Is the message well formed for its op? 0 or the error to answer. */
static int check(const struct hvd_conn *c, const struct hvp_hdr *req, size_t len, unsigned nfds)
{
	const struct op_desc *d;
	size_t body = len - sizeof(*req);

	if (req->magic != HVP_MAGIC || req->version != HVP_VERSION)
		return -EPROTO;
	if (req->op == 0 || req->op >= HVP_OP_COUNT)
		return -ENOSYS;
	d = &ops[req->op];
	if (d->elem ? req->count > HVP_MAX_BATCH || body != (size_t)req->count * d->elem
		    : body != d->size)
		return -EBADMSG;
	if (nfds < d->nfds)
		return -EBADMSG;
	if ((d->flags & PRIV) && c->dom->domid != 0)
		return -EPERM;
	if ((d->flags & LIVE) && c->dom->gtfd < 0)
		return -ESRCH;
	return 0;
}

void hvd_dispatch(struct hvd_conn *c, size_t len, int *fds, unsigned nfds)
{
	struct hvd *h = c->h;
	struct hvp_hdr req = { 0 };
	struct ctx x = { .h = h, .c = c, .req = &req, .fds = fds, .nfds = nfds,
			 .in = h->rx.bytes + sizeof(req), .out = h->tx.bytes + sizeof(req) };
	int ret;

	if (len >= sizeof(req)) {
		memcpy(&req, h->rx.bytes, sizeof(req));
		ret = len > HVP_MAX_MSG ? -EMSGSIZE : check(c, &req, len, nfds);
	} else {
		ret = -EBADMSG;
	}
	if (ret == 0)
		ret = ops[req.op].fn(&x);
	else if (ret != -EPERM && ret != -ESRCH)
		pv_log_rl(&c->rl, PV_LOG_WARN, "d%u: malformed request (op %u, %zu bytes): %s",
			  c->dom->domid, req.op, len, strerror(-ret));
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (ret == LATE) {
		if (c->fd >= 0 && h->loop)
			hvd_conn_watch(c);
		return;
	}
	if (ret < 0) {
		x.out_len = 0;
		x.count = 0;
		x.nsend = 0;
	}
	h->tx.hdr = (struct hvp_hdr){ .magic = HVP_MAGIC, .version = HVP_VERSION, .op = req.op,
				      .seq = req.seq, .count = x.count, .ret = ret,
				      .notice_seq = c->nq_seq, .arg = { x.arg[0], x.arg[1] } };
	hvd_send(c, h->tx.bytes, sizeof(req) + x.out_len, x.send, x.nsend);
}

void hvd_late_reply(struct hvd_conn *c, int ret, const void *payload, size_t len)
{
	union {
		struct hvp_hdr hdr;
		uint8_t bytes[sizeof(struct hvp_hdr) + sizeof(struct hvp_resume)];
	} m;

	if (!c->late_op || len > sizeof(struct hvp_resume))
		return;
	if (c->wait_timer > 0 && c->h->loop)
		pv_loop_cancel_timer(c->h->loop, c->wait_timer);
	c->wait_timer = 0;
	m.hdr = (struct hvp_hdr){ .magic = HVP_MAGIC, .version = HVP_VERSION, .op = c->late_op,
				  .seq = c->late_seq, .ret = ret, .notice_seq = c->nq_seq };
	if (len)
		memcpy(m.bytes + sizeof(m.hdr), payload, len);
	c->late_op = 0;
	c->paused = false;
	hvd_send(c, m.bytes, sizeof(m.hdr) + len, NULL, 0);
	hvd_conn_watch(c);
}

/* ---- invariants (tests and fuzzing) -------------------------------------------- */

#define BAD(...) do { pv_err("invariant: " __VA_ARGS__); return -EUCLEAN; } while (0)

static int check_ports(struct hvd *h, struct hvd_domain *d)
{
	uint32_t open = 0;

	for (uint32_t p = 1; d->ec.ports && p <= d->ec.max_port; p++) {
		const struct hvd_port *pt = &d->ec.ports[p];
		const struct hvd_port *peer;
		struct hvd_domain *rd;
		struct hvd_conn *c;

		if (pt->state == EVTCHNSTAT_closed)
			continue;
		open++;
		for (c = h->conns; c && c != pt->owner; c = c->next)
			;
		if (!c || c->dom != d)
			BAD("d%u port %u owned by no connection of the domain", d->domid, p);
		if (pt->state == EVTCHNSTAT_unbound && pt->chan->refs != 1)
			BAD("d%u port %u unbound with %u refs", d->domid, p, pt->chan->refs);
		if (pt->state != EVTCHNSTAT_interdomain)
			continue;
		rd = hvd_domain_get(h, pt->remote_dom);
		peer = rd && rd->ec.ports && pt->remote_port <= rd->ec.max_port
			? &rd->ec.ports[pt->remote_port] : NULL;
		if (!peer || peer->state != EVTCHNSTAT_interdomain || peer->chan != pt->chan ||
		    peer->side == pt->side || peer->remote_dom != d->domid ||
		    peer->remote_port != p || pt->chan->refs != 2)
			BAD("d%u port %u: broken interdomain pairing", d->domid, p);
	}
	if (open != d->ec.in_use)
		BAD("d%u: %u ports open, %u counted", d->domid, open, d->ec.in_use);
	return 0;
}

int hvd_check(struct hvd *h)
{
	for (uint32_t id = 0; id < DOMID_FIRST_RESERVED; id++) {
		struct hvd_domain *d = h->dom[id];
		uint32_t pins = 0, held = 0, mapped = 0;
		struct hvd_conn *c;

		if (!d)
			continue;
		if (d->domid != id)
			BAD("d%u in slot %u", d->domid, id);
		for (uint32_t r = 0; d->gt.active && r < d->gt.nr_entries; r++)
			pins += d->gt.active[r].rd + d->gt.active[r].wr;
		for (c = h->conns; c; c = c->next) {
			uint32_t used = 0;
			for (uint32_t k = 0; k < c->mt.cap; k++) {
				const struct hvd_map *m = &c->mt.e[k];
				used += m->flags != 0;
				mapped += m->flags && m->gt == &d->gt;
			}
			if (used != c->mt.used)
				BAD("connection of d%u: %u handles, %u counted", c->dom->domid, used,
				    c->mt.used);
			if (c->dom == d)
				held += used;
			if (c->nq_len > HVD_MAX_NOTICES)
				BAD("notice queue over its limit");
		}
		if (d->gt.st ? pins != d->gt.st->pins || pins != mapped : pins || mapped)
			BAD("d%u: %u pins, %u counted, %u mappings", id, pins,
			    d->gt.st ? d->gt.st->pins : 0, mapped);
		if (held != d->mappings_held)
			BAD("d%u holds %u handles, %u counted", id, held, d->mappings_held);
		if (check_ports(h, d) < 0)
			return -EUCLEAN;
	}
	return 0;
}
