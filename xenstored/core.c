/*
 * The protocol engine. A request goes: framing (conn_input) -> dispatch
 * (table `handlers`, checks of type, privilege and transaction id done once
 * here) -> handler -> reply or error queued on the connection -> events of
 * the modification fired to every watching connection.
 *
 * Slow clients: replies are queued per connection and the connection is not
 * read while `outstanding` replies are unsent (throttled); watch events are
 * queued up to `watch_events` per connection, beyond that they are dropped
 * and counted, with a rate-limited log line. So a client that never reads
 * costs a bounded amount of memory and never stalls anyone else.
 */
#include "xenstored/core_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define DOMID_SELF_ 0x7FF0u   /* DOMID_SELF */

enum { F_PRIV = 1, F_NOTX = 2 };

static struct pv_ratelimit drop_rl = PV_RATELIMIT_INIT(5000, 5);

/* ---- output ------------------------------------------------------------- */

static struct omsg *omsg_new(uint32_t type, uint32_t req_id, uint32_t tx_id, size_t len)
{
	struct omsg *m = malloc(sizeof(*m) + sizeof(struct xsd_sockmsg) + len);
	struct xsd_sockmsg h = { .type = type, .req_id = req_id, .tx_id = tx_id,
				 .len = (uint32_t)len };

	if (!m)
		return NULL;
	m->next = NULL;
	m->len = (uint32_t)(sizeof(h) + len);
	m->sent = 0;
	m->event = false;
	memcpy(m->data, &h, sizeof(h));
	return m;
}

static void queue(struct xsd_conn *c, struct omsg *m)
{
	bool was_empty = !c->out;

	*c->out_tail = m;
	c->out_tail = &m->next;
	c->out_bytes += m->len;
	if (m->event)
		c->out_events++;
	else
		c->out_replies++;
	if (was_empty && c->core->ops->conn_output)
		c->core->ops->conn_output(c->core->arg, c);
}

static int reply_type(struct req *r, uint32_t type, const void *data, size_t len)
{
	struct omsg *m;

	if (len > XENSTORE_PAYLOAD_MAX) {
		static const char e2big[] = "E2BIG";
		type = XS_ERROR;
		data = e2big;
		len = sizeof(e2big);
	}
	m = omsg_new(type, r->hdr.req_id, r->hdr.tx_id, len);
	if (!m)
		return ENOMEM;
	memcpy(m->data + sizeof(struct xsd_sockmsg), data, len);
	queue(r->c, m);
	return 0;
}

int xsd_reply(struct req *r, const void *data, size_t len)
{
	return reply_type(r, r->hdr.type, data, len);
}

int xsd_reply_str(struct req *r, const char *s)
{
	return xsd_reply(r, s, strlen(s) + 1);
}

static const char *errname(int err)
{
	for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
		if (xsd_errors[i].errnum == err)
			return xsd_errors[i].errstring;
	return "EINVAL";
}

static void reply_error(struct req *r, int err)
{
	const char *name = errname(err);

	(void)reply_type(r, XS_ERROR, name, strlen(name) + 1);
}

int xsd_conn_output(struct xsd_conn *c, struct iovec *iov, int max)
{
	int n = 0;

	for (struct omsg *m = c->out; m && n < max; m = m->next, n++) {
		iov[n].iov_base = m->data + m->sent;
		iov[n].iov_len = m->len - m->sent;
	}
	return n;
}

void xsd_conn_sent(struct xsd_conn *c, size_t n)
{
	c->out_bytes -= n;
	while (n && c->out) {
		struct omsg *m = c->out;
		size_t left = m->len - m->sent;
		if (n < left) {
			m->sent += (uint32_t)n;
			return;
		}
		n -= left;
		c->out = m->next;
		if (m->event)
			c->out_events--;
		else
			c->out_replies--;
		free(m);
	}
	if (!c->out)
		c->out_tail = &c->out;
}

size_t xsd_conn_pending(const struct xsd_conn *c) { return c->out_bytes; }
unsigned long xsd_conn_dropped(const struct xsd_conn *c) { return c->dropped; }
bool xsd_conn_throttled(const struct xsd_conn *c) { return c->out_replies >= c->core->cfg.outstanding; }
bool xsd_conn_dead(const struct xsd_conn *c) { return c->dead; }
unsigned xsd_conn_domid(const struct xsd_conn *c) { return c->caller.domid; }
void xsd_conn_set_user(struct xsd_conn *c, void *user) { c->user = user; }
void *xsd_conn_user(const struct xsd_conn *c) { return c->user; }

/* ---- watch events ------------------------------------------------------- */

static void send_event(struct xsd_conn *c, const char *path, const char *token)
{
	size_t pl = strlen(path) + 1, tl = strlen(token) + 1;
	struct omsg *m;

	/* A deep path with a long token would not fit a message: every client
	 * takes a longer one for a broken stream. Dropped, as C xenstored does. */
	if (pl + tl > XENSTORE_PAYLOAD_MAX) {
		pv_log_rl(&drop_rl, PV_LOG_WARN, "domain %u: a watch event of %zu bytes dropped (over %u)",
			  c->caller.domid, pl + tl, XENSTORE_PAYLOAD_MAX);
		return;
	}
	if (c->out_events >= c->core->cfg.watch_events || c->out_bytes >= XSD_EVENT_BYTES_MAX) {
		if (!c->dropped++ || !(c->dropped & (c->dropped - 1)))
			pv_log_rl(&drop_rl, PV_LOG_WARN,
				  "domain %u connection does not read: %lu watch events dropped",
				  c->caller.domid, c->dropped);
		return;
	}
	m = omsg_new(XS_WATCH_EVENT, 0, 0, pl + tl);
	if (!m)
		return;
	m->event = true;
	memcpy(m->data + sizeof(struct xsd_sockmsg), path, pl);
	memcpy(m->data + sizeof(struct xsd_sockmsg) + pl, token, tl);
	queue(c, m);
}

/* SET_TARGET may have changed what the connection's domain acts for. */
static void refresh_caller(struct xsd_conn *c)
{
	c->caller.has_target = c->dom->has_target;
	c->caller.target = c->dom->target;
}

static void deliver(struct xsd_watch *w, const struct xsd_event *e, void *arg)
{
	struct xsd_conn *c = w->owner;

	(void)arg;
	refresh_caller(c);
	if (c->dead || !xsd_event_visible(e, &c->caller))
		return;
	send_event(c, e->path + (strlen(e->path) >= w->strip ? w->strip : 0), w->token);
}

static void fire(struct xsd_core *core, struct xsd_evlist *ev)
{
	for (unsigned i = 0; i < ev->n; i++)
		xsd_watch_fire(&core->watches, &ev->ev[i], deliver, NULL);
	xsd_evlist_clear(ev);
}

static void fire_special(struct xsd_core *core, const char *name)
{
	if (!xsd_event_special(core->st, &core->ev, name))
		fire(core, &core->ev);
	else
		xsd_evlist_clear(&core->ev);
}

/* ---- domains and connections -------------------------------------------- */

static struct xsd_domain **domain_slot(struct xsd_core *core, unsigned domid, bool create)
{
	return xsd_domtab_get(&core->doms, domid, sizeof(struct xsd_domain *), create);
}

struct xsd_domain *xsd_domain_find(struct xsd_core *core, unsigned domid)
{
	struct xsd_domain **slot = domain_slot(core, domid, false);

	return slot ? *slot : NULL;
}

static struct xsd_domain *domain_get(struct xsd_core *core, unsigned domid, bool create)
{
	struct xsd_domain **slot = domain_slot(core, domid, create);
	struct xsd_domain *d;

	if (!slot || *slot || !create)
		return slot ? *slot : NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->domid = domid;
	*slot = d;
	return d;
}

static void domain_put(struct xsd_core *core, struct xsd_domain *d)
{
	if (d->introduced || d->nconns || d->domid == 0)
		return;
	*domain_slot(core, d->domid, false) = NULL;
	free(d);
}

static void conn_drop_state(struct xsd_conn *c)
{
	while (c->txs) {
		struct conn_tx *t = c->txs;
		c->txs = t->next;
		xsd_txn_free(t->tx);
		free(t);
	}
	c->dom->ntx -= c->ntx;
	c->ntx = 0;
	for (struct xsd_watch *w = c->watches; w; w = w->cnext)
		c->dom->nwatches--;
	xsd_watch_del_all(&c->core->watches, &c->watches);
}

struct xsd_conn *xsd_conn_new(struct xsd_core *core, unsigned domid, bool priv)
{
	struct xsd_domain *d = domain_get(core, domid, true);
	struct xsd_conn *c;

	if (!d) {
		errno = ENOMEM;
		return NULL;
	}
	if (!priv && d->nconns >= core->cfg.conns) {
		errno = EMFILE;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		domain_put(core, d);
		errno = ENOMEM;
		return NULL;
	}
	c->core = core;
	c->seq = ++core->conn_seq;
	c->dom = d;
	c->caller.domid = domid;
	c->caller.priv = priv;
	c->out_tail = &c->out;
	c->next_txid = 1;
	c->dnext = d->conns;
	if (d->conns)
		d->conns->dprev = c;
	d->conns = c;
	d->nconns++;
	return c;
}

void xsd_conn_free(struct xsd_conn *c)
{
	if (!c)
		return;
	conn_drop_state(c);
	xsd_conn_sent(c, c->out_bytes);
	if (c->dprev)
		c->dprev->dnext = c->dnext;
	else
		c->dom->conns = c->dnext;
	if (c->dnext)
		c->dnext->dprev = c->dprev;
	c->dom->nconns--;
	domain_put(c->core, c->dom);
	free(c);
}

struct xsd_core *xsd_core_new(const struct xsd_config *cfg, const struct xsd_core_ops *ops,
			      void *arg)
{
	struct xsd_core *core = calloc(1, sizeof(*core));

	if (!core)
		return NULL;
	core->cfg = *cfg;
	core->ops = ops;
	core->arg = arg;
	xsd_watches_init(&core->watches);
	core->st = xsd_store_new(&cfg->lim);
	if (!core->st || !domain_get(core, 0, true)) {
		xsd_core_free(core);
		return NULL;
	}
	xsd_domain_find(core, 0)->introduced = true;
	return core;
}

void xsd_core_free(struct xsd_core *core)
{
	if (!core)
		return;
	for (unsigned i = xsd_domtab_next(&core->doms, 0); i <= XSD_DOMID_MAX;
	     i = xsd_domtab_next(&core->doms, i + 1))
		free(xsd_domain_find(core, i));
	xsd_domtab_fini(&core->doms);
	xsd_evlist_clear(&core->ev);
	xsd_watches_fini(&core->watches);
	xsd_store_free(core->st);
	free(core);
}

struct xsd_store *xsd_core_store(struct xsd_core *core) { return core->st; }
struct xsd_config *xsd_core_config(struct xsd_core *core) { return &core->cfg; }

/* ---- argument helpers --------------------------------------------------- */

unsigned xsd_count_args(const struct req *r)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->len; i++)
		n += r->data[i] == '\0';
	return n;
}

int xsd_get_args(struct req *r, const char **vec, unsigned n)
{
	unsigned k = 0;

	if (!r->len || r->data[r->len - 1] != '\0' || xsd_count_args(r) != n)
		return EINVAL;
	for (unsigned i = 0; i < r->len; i += (unsigned)strlen(r->data + i) + 1)
		vec[k++] = r->data + i;
	return 0;
}

static int canon(struct req *r, const char *in, bool special, char *out)
{
	return xsd_path_canon(in, r->c->caller.domid, r->c->core->cfg.path_max, special, out);
}

/* One path argument, canonicalised into core->path. */
static int path_arg(struct req *r, const char **path)
{
	const char *v[1];
	int e = xsd_get_args(r, v, 1);

	if (!e)
		e = canon(r, v[0], false, r->c->core->path);
	*path = r->c->core->path;
	return e;
}

/* A decimal domain id as C xenstored's atoi() reads it. */
static unsigned atoi_domid(const char *s)
{
	return (unsigned)atoi(s);
}

static int domid_arg(struct req *r, unsigned *domid)
{
	const char *v[1];
	char *end;
	unsigned long d;
	int e = xsd_get_args(r, v, 1);

	if (e)
		return e;
	errno = 0;
	d = strtoul(v[0], &end, 10);
	if (errno || end == v[0] || *end || d > XSD_DOMID_MAX)
		return EINVAL;
	*domid = (unsigned)d;
	return 0;
}

static struct xsd_txn *txn(struct req *r)
{
	return r->tx ? r->tx->tx : NULL;
}

/* ---- handlers: the store ------------------------------------------------ */

static int do_read(struct req *r)
{
	const char *path;
	const void *val;
	unsigned len;
	int e = path_arg(r, &path);

	if (!e)
		e = xsd_read(r->c->core->st, txn(r), &r->c->caller, path, &val, &len);
	return e ? e : xsd_reply(r, val, len);
}

static int do_get_perms(struct req *r)
{
	const struct xsd_perm *p;
	const char *path;
	char buf[XENSTORE_PAYLOAD_MAX + 16];
	unsigned n;
	size_t len = 0;
	int e = path_arg(r, &path);

	if (!e)
		e = xsd_get_perms(r->c->core->st, txn(r), &r->c->caller, path, &p, &n);
	if (e)
		return e;
	for (unsigned i = 0; i < n && len < XENSTORE_PAYLOAD_MAX; i++) {
		static const char letter[] = "nrwb";
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%c%u",
					letter[p[i].perms & 3], p[i].domid) + 1;
	}
	return xsd_reply(r, buf, len);
}

static int do_directory(struct req *r)
{
	const struct xsd_node *dir;
	const char *path;
	char *buf;
	size_t len = 0;
	unsigned n;
	int e = path_arg(r, &path);

	if (!e)
		e = xsd_directory(r->c->core->st, txn(r), &r->c->caller, path, &dir);
	if (e)
		return e;
	n = xsd_node_nchildren(dir);
	buf = malloc(XENSTORE_PAYLOAD_MAX);
	if (!buf)
		return ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		unsigned l;
		const char *name = xsd_node_child_name(dir, i, &l);
		if (len + l + 1 > XENSTORE_PAYLOAD_MAX) {
			free(buf);
			return E2BIG;
		}
		memcpy(buf + len, name, l + 1);
		len += l + 1;
	}
	e = xsd_reply(r, buf, len);
	free(buf);
	return e;
}

/* <gen>\0 then the child list from byte `offset`, whole names that fit, and
 * an extra \0 once the end of the list is reached. */
static int do_directory_part(struct req *r)
{
	const struct xsd_node *dir;
	const char *v[2];
	char *buf;
	size_t len, pos = 0;
	unsigned long off;
	unsigned n, l;
	bool end = true;
	int e = xsd_get_args(r, v, 2);

	if (!e)
		e = canon(r, v[0], false, r->c->core->path);
	if (!e)
		e = xsd_directory(r->c->core->st, txn(r), &r->c->caller, r->c->core->path, &dir);
	if (e)
		return e;
	off = strtoul(v[1], NULL, 10);
	buf = malloc(XENSTORE_PAYLOAD_MAX);
	if (!buf)
		return ENOMEM;
	len = (size_t)snprintf(buf, XENSTORE_PAYLOAD_MAX, "%llu",
			       (unsigned long long)xsd_node_cgen(dir)) + 1;
	n = xsd_node_nchildren(dir);
	for (unsigned i = 0; i < n; i++) {
		const char *name = xsd_node_child_name(dir, i, &l);
		size_t from = 0;
		if (pos + l + 1 <= off) {
			pos += l + 1;
			continue;
		}
		if (off > pos)
			from = off - pos;
		if (len + (l + 1 - from) + 1 > XENSTORE_PAYLOAD_MAX) {
			end = false;
			break;
		}
		memcpy(buf + len, name + from, l + 1 - from);
		len += l + 1 - from;
		pos += l + 1;
	}
	if (end)
		buf[len++] = '\0';
	e = xsd_reply(r, buf, len);
	free(buf);
	return e;
}

static int modified(struct req *r, int e)
{
	if (e) {
		xsd_evlist_clear(&r->c->core->ev);
		return e;
	}
	/* As C xenstored: watch events go out before the reply. */
	fire(r->c->core, &r->c->core->ev);
	return xsd_reply_str(r, "OK");
}

static int do_write(struct req *r)
{
	char *nul = memchr(r->data, '\0', r->len);
	struct xsd_evlist *ev = &r->c->core->ev;
	const char *path = r->c->core->path;
	int e;

	if (!nul)
		return EINVAL;
	e = canon(r, r->data, false, r->c->core->path);
	if (!e)
		e = xsd_write(r->c->core->st, txn(r), &r->c->caller, path, nul + 1,
			      (unsigned)(r->data + r->len - nul - 1), ev);
	return modified(r, e);
}

/* MKDIR and RM: one path argument. */
static int do_mkdir_rm(struct req *r)
{
	int (*op)(struct xsd_store *, struct xsd_txn *, const struct xsd_caller *, const char *,
		  struct xsd_evlist *) = r->hdr.type == XS_MKDIR ? xsd_mkdir : xsd_rm;
	const char *path;
	int e = path_arg(r, &path);

	if (!e)
		e = op(r->c->core->st, txn(r), &r->c->caller, path, &r->c->core->ev);
	return modified(r, e);
}

static int do_set_perms(struct req *r)
{
	unsigned n = xsd_count_args(r), i = 0;
	struct xsd_perm *p;
	const char *s;
	int e;

	if (n < 2 || r->data[r->len - 1] != '\0')
		return EINVAL;
	e = canon(r, r->data, true, r->c->core->path);
	if (e)
		return e;
	p = calloc(n - 1, sizeof(*p));
	if (!p)
		return ENOMEM;
	for (s = r->data + strlen(r->data) + 1; !e && i < n - 1; s += strlen(s) + 1)
		e = xsd_perm_parse(s, &p[i++]);
	if (!e)
		e = xsd_set_perms(r->c->core->st, txn(r), &r->c->caller, r->c->core->path, p,
				  n - 1, &r->c->core->ev);
	free(p);
	return modified(r, e);
}

/* ---- handlers: watches and transactions --------------------------------- */

static int do_watch(struct req *r)
{
	struct xsd_conn *c = r->c;
	const char *v[2];
	size_t strip;
	int e = xsd_get_args(r, v, 2);

	if (!e)
		e = canon(r, v[0], true, c->core->path);
	if (e)
		return e;
	if (!c->caller.priv && c->dom->nwatches >= c->core->cfg.watches)
		return E2BIG;
	strip = (v[0][0] == '/' || v[0][0] == '@') ? 0 : xsd_home_len(c->caller.domid);
	e = xsd_watch_add(&c->core->watches, &c->watches, c, c->seq, c->core->path, v[1], strip);
	if (e)
		return e;
	c->dom->nwatches++;
	e = xsd_reply_str(r, "OK");
	send_event(c, v[0], v[1]);
	return e;
}

static int do_unwatch(struct req *r)
{
	struct xsd_conn *c = r->c;
	const char *v[2];
	int e = xsd_get_args(r, v, 2);

	if (!e)
		e = canon(r, v[0], true, c->core->path);
	if (!e)
		e = xsd_watch_del(&c->core->watches, &c->watches, c, c->core->path, v[1]);
	if (e)
		return e;
	c->dom->nwatches--;
	return xsd_reply_str(r, "OK");
}

static int do_transaction_start(struct req *r)
{
	struct xsd_conn *c = r->c;
	struct conn_tx *t;
	char buf[16];

	if (r->tx)
		return EBUSY;
	/* Per domain, not per connection: a domain may open many
	 * connections (a Xen domU has one ring). */
	if (!c->caller.priv && c->dom->ntx >= c->core->cfg.transactions)
		return ENOSPC;
	t = calloc(1, sizeof(*t));
	if (!t)
		return ENOMEM;
	t->tx = xsd_txn_start(c->core->st, &c->caller);
	if (!t->tx) {
		free(t);
		return ENOMEM;
	}
	/* Ids: decimal, never 0, not one still open on this connection. */
	for (;;) {
		struct conn_tx *o = c->txs;
		t->id = c->next_txid++;
		while (o && o->id != t->id)
			o = o->next;
		if (t->id && !o)
			break;
	}
	t->next = c->txs;
	c->txs = t;
	c->ntx++;
	c->dom->ntx++;
	snprintf(buf, sizeof(buf), "%u", t->id);
	return xsd_reply_str(r, buf);
}

static int do_transaction_end(struct req *r)
{
	struct xsd_conn *c = r->c;
	struct conn_tx **pp;
	const char *v[1];
	struct xsd_txn *tx;
	int e;

	e = xsd_get_args(r, v, 1);
	if (e || (strcmp(v[0], "T") && strcmp(v[0], "F")))
		return EINVAL;
	if (!r->tx)
		return ENOENT;
	for (pp = &c->txs; *pp != r->tx; pp = &(*pp)->next)
		;
	*pp = r->tx->next;
	tx = r->tx->tx;
	free(r->tx);
	r->tx = NULL;
	c->ntx--;
	c->dom->ntx--;
	if (v[0][0] == 'F') {
		xsd_txn_free(tx);
		return xsd_reply_str(r, "OK");
	}
	return modified(r, xsd_txn_commit(c->core->st, tx, &c->core->ev));
}

static int do_reset_watches(struct req *r)
{
	conn_drop_state(r->c);
	return xsd_reply_str(r, "OK");
}

/* ---- handlers: domains -------------------------------------------------- */

static int do_get_domain_path(struct req *r)
{
	const char *v[1];
	char buf[40];
	int e = xsd_get_args(r, v, 1);

	if (e)
		return e;
	snprintf(buf, sizeof(buf), "/local/domain/%u", atoi_domid(v[0]));
	return xsd_reply_str(r, buf);
}

static int do_introduce(struct req *r)
{
	struct xsd_core *core = r->c->core;
	struct xsd_domain *d;
	const char *v[3];
	char *end;
	unsigned long domid;
	long port;
	int e = xsd_get_args(r, v, 3);

	if (e)
		return e;
	domid = strtoul(v[0], &end, 10);
	if (end == v[0] || *end || domid == 0 || domid >= DOMID_SELF_)
		return EINVAL;
	port = strtol(v[2], NULL, 10);
	if (port <= 0)
		return EINVAL;
	d = domain_get(core, (unsigned)domid, true);
	if (!d)
		return ENOMEM;
	if (d->introduced) {
		/* Re-introduction (after resume): reset the connections' state. */
		for (struct xsd_conn *c = d->conns; c; c = c->dnext)
			conn_drop_state(c);
		return xsd_reply_str(r, "OK");
	}
	if (core->ops->domain_new && core->ops->domain_new(core->arg, d->domid) < 0) {
		domain_put(core, d);
		return EIO;
	}
	d->introduced = true;
	fire_special(core, "@introduceDomain");
	return xsd_reply_str(r, "OK");
}

static int known_domain(struct req *r, unsigned domid, struct xsd_domain **out)
{
	struct xsd_domain *d = domain_get(r->c->core, domid, false);

	if (!d || !d->introduced)
		return ENOENT;
	*out = d;
	return 0;
}

/* RELEASE and RESUME: one introduced domain other than 0. */
static int guest_arg(struct req *r, unsigned *domid, struct xsd_domain **d)
{
	int e = domid_arg(r, domid);

	if (!e && *domid == 0)
		e = EINVAL;
	return e ? e : known_domain(r, *domid, d);
}

static int do_release(struct req *r)
{
	struct xsd_core *core = r->c->core;
	struct xsd_domain *d;
	unsigned domid;
	int e = guest_arg(r, &domid, &d);

	if (e)
		return e;
	d->introduced = false;
	d->has_target = false;
	for (struct xsd_conn *c = d->conns; c; c = c->dnext) {
		conn_drop_state(c);
		c->dead = true;
	}
	/* Nobody may act as the released domain through a target any more. */
	for (unsigned i = xsd_domtab_next(&core->doms, 0); i <= XSD_DOMID_MAX;
	     i = xsd_domtab_next(&core->doms, i + 1)) {
		struct xsd_domain *o = xsd_domain_find(core, i);
		if (o && o->has_target && o->target == domid)
			o->has_target = false;
	}
	if (xsd_store_domain_gone(core->st, domid, &core->ev))
		pv_warn("domain %u: could not remove all of its nodes", domid);
	fire(core, &core->ev);
	fire_special(core, "@releaseDomain");
	e = xsd_reply_str(r, "OK");
	if (core->ops->domain_gone)
		core->ops->domain_gone(core->arg, domid);   /* frees d's connections */
	d = xsd_domain_find(core, domid);
	if (d)
		domain_put(core, d);
	return e;
}

static int do_is_domain_introduced(struct req *r)
{
	struct xsd_domain *d;
	unsigned domid;
	const char *v[1];
	int e = xsd_get_args(r, v, 1);

	if (e)
		return e;
	domid = atoi_domid(v[0]);
	if (domid == DOMID_SELF_)
		return xsd_reply_str(r, "T");
	d = domain_get(r->c->core, domid, false);
	return xsd_reply_str(r, d && d->introduced ? "T" : "F");
}

static int do_resume(struct req *r)
{
	struct xsd_domain *d;
	unsigned domid;
	int e = guest_arg(r, &domid, &d);

	/* The "shutdown reported" flag lives with the hypervisor here: nothing
	 * to clear, RESUME only validates the domain. */
	return e ? e : xsd_reply_str(r, "OK");
}

static int do_set_target(struct req *r)
{
	struct xsd_domain *d, *t;
	const char *v[2];
	unsigned long a, b;
	char *e1, *e2;
	int e = xsd_get_args(r, v, 2);

	if (e)
		return e;
	a = strtoul(v[0], &e1, 10);
	b = strtoul(v[1], &e2, 10);
	if (e1 == v[0] || *e1 || e2 == v[1] || *e2 || a > XSD_DOMID_MAX || b > XSD_DOMID_MAX)
		return EINVAL;
	e = known_domain(r, (unsigned)a, &d);
	if (!e)
		e = known_domain(r, (unsigned)b, &t);
	if (e)
		return e;
	d->has_target = true;
	d->target = t->domid;
	return xsd_reply_str(r, "OK");
}

static int no_handler(struct req *r)
{
	(void)r;
	return ENOSYS;
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct handler {
	const char *name;
	int (*fn)(struct req *r);
	unsigned flags;
} handlers[XS_TYPE_COUNT] = {
	[XS_CONTROL]              = { "CONTROL", xsd_do_control, F_PRIV },
	[XS_DIRECTORY]            = { "DIRECTORY", do_directory, 0 },
	[XS_READ]                 = { "READ", do_read, 0 },
	[XS_GET_PERMS]            = { "GET_PERMS", do_get_perms, 0 },
	[XS_WATCH]                = { "WATCH", do_watch, F_NOTX },
	[XS_UNWATCH]              = { "UNWATCH", do_unwatch, F_NOTX },
	[XS_TRANSACTION_START]    = { "TRANSACTION_START", do_transaction_start, 0 },
	[XS_TRANSACTION_END]      = { "TRANSACTION_END", do_transaction_end, 0 },
	[XS_INTRODUCE]            = { "INTRODUCE", do_introduce, F_PRIV },
	[XS_RELEASE]              = { "RELEASE", do_release, F_PRIV },
	[XS_GET_DOMAIN_PATH]      = { "GET_DOMAIN_PATH", do_get_domain_path, 0 },
	[XS_WRITE]                = { "WRITE", do_write, 0 },
	[XS_MKDIR]                = { "MKDIR", do_mkdir_rm, 0 },
	[XS_RM]                   = { "RM", do_mkdir_rm, 0 },
	[XS_SET_PERMS]            = { "SET_PERMS", do_set_perms, 0 },
	[XS_WATCH_EVENT]          = { "WATCH_EVENT", no_handler, 0 },
	[XS_ERROR]                = { "ERROR", no_handler, 0 },
	[XS_IS_DOMAIN_INTRODUCED] = { "IS_DOMAIN_INTRODUCED", do_is_domain_introduced, F_PRIV },
	[XS_RESUME]               = { "RESUME", do_resume, F_PRIV },
	[XS_SET_TARGET]           = { "SET_TARGET", do_set_target, F_PRIV },
	[XS_RESET_WATCHES]        = { "RESET_WATCHES", do_reset_watches, F_NOTX },
	[XS_DIRECTORY_PART]       = { "DIRECTORY_PART", do_directory_part, 0 },
};

static void dispatch(struct xsd_conn *c)
{
	struct req r = { .c = c, .hdr = c->hdr, .data = c->payload, .len = c->hdr.len };
	const struct handler *h = c->hdr.type < XS_TYPE_COUNT ? &handlers[c->hdr.type] : NULL;
	int e;

	c->payload[r.len] = '\0';   /* guard: string functions stop inside the buffer */
	pv_debug("domain %u: %s req_id %u tx_id %u len %u", c->caller.domid,
		 h && h->name ? h->name : "(unknown)", r.hdr.req_id, r.hdr.tx_id, r.len);
	refresh_caller(c);
	if (!h || !h->fn) {
		e = ENOSYS;
	} else if ((h->flags & F_PRIV) && !c->caller.priv) {
		e = EACCES;
	} else {
		e = 0;
		if (!(h->flags & F_NOTX) && r.hdr.tx_id) {
			for (r.tx = c->txs; r.tx && r.tx->id != r.hdr.tx_id; r.tx = r.tx->next)
				;
			if (!r.tx)
				e = ENOENT;
		}
		if (!e)
			e = h->fn(&r);
	}
	if (e)
		reply_error(&r, e);
}

long xsd_conn_input(struct xsd_conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t used = 0;

	if (c->broken)
		return -EPROTO;   /* once broken, always broken: never read past */
	if (c->dead)
		return -EPIPE;
	while (used < len && !xsd_conn_throttled(c) && !c->dead) {
		size_t hs = sizeof(c->hdrbuf), n;
		if (c->have < hs) {
			n = PV_MIN(hs - c->have, len - used);
			memcpy(c->hdrbuf + c->have, p + used, n);
			c->have += n;
			used += n;
			if (c->have < hs)
				break;
			memcpy(&c->hdr, c->hdrbuf, hs);
			if (c->hdr.len > XENSTORE_PAYLOAD_MAX) {
				c->broken = true;
				return -EPROTO;
			}
		}
		n = PV_MIN(c->hdr.len - (c->have - hs), len - used);
		memcpy(c->payload + (c->have - hs), p + used, n);
		c->have += n;
		used += n;
		if (c->have - hs < c->hdr.len)
			break;
		c->have = 0;
		dispatch(c);
	}
	return (long)used;
}
