/*
 * The control socket: one command per connection ("trace\n"), the answer,
 * then EOF. Commands and formats: docs/guest.md "Control socket". Runs in its
 * own thread so it answers while the main thread is blocked in the suspend
 * call or a xenstore request.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "guest/runtime.h"

struct gr_control {
	struct gr_rt *rt;
	int fd;
	char path[108];
	pthread_t th;
	atomic_bool stop;
};

static void answer_trace(struct gr_rt *rt, struct pv_sbuf *o, enum gr_trace_fmt fmt, bool filter)
{
	unsigned cap = rt->o.trace_capacity ? rt->o.trace_capacity : 16384;
	struct gr_trace_rec *recs = malloc(sizeof(*recs) * cap);
	unsigned n;
	char line[1024];

	if (!recs) {
		o->oom = true;
		return;
	}
	n = gr_trace_snapshot(rt->trace, 0, recs, cap);
	for (unsigned i = 0; i < n; i++) {
		if (filter && !gr_trace_norm_keep(&recs[i]))
			continue;
		gr_trace_render(&recs[i], fmt, line, sizeof(line));
		pv_sbuf_printf(o, "%s", line);
	}
	free(recs);
}

static const char *mode_name(enum nf_mode m)
{
	return m == NF_MODE_LINUX_5_13 ? "linux-5.13" : "fixed";
}

#define U(x) ((unsigned long long)atomic_load(&(x)))

static void queue_json(struct pv_sbuf *o, struct nf_dev *d, unsigned i)
{
	struct nf_queue *q = &d->queues[i];
	RING_IDX txp = 0, txc = 0, txr = 0, rxp = 0, rxc = 0, rxr = 0;
	unsigned backlog, tx_free = 0;
	bool live;

	pthread_mutex_lock(&q->tx_lock);
	pthread_mutex_lock(&q->rx_lock);
	live = q->live;
	if (live && q->tx.sring && q->rx.sring) {
		txp = q->tx.req_prod_pvt;
		txc = q->tx.rsp_cons;
		txr = __atomic_load_n(&q->tx.sring->rsp_prod, __ATOMIC_RELAXED);
		tx_free = nf_tx_free_slots(&q->tx);
		rxp = q->rx.req_prod_pvt;
		rxc = q->rx.rsp_cons;
		rxr = __atomic_load_n(&q->rx.sring->rsp_prod, __ATOMIC_RELAXED);
	}
	backlog = q->backlog_len;
	pthread_mutex_unlock(&q->rx_lock);
	pthread_mutex_unlock(&q->tx_lock);
	pv_sbuf_printf(o, "{\"id\":%u,\"live\":%s,\"txq\":\"%s\",\"tx_req_prod\":%u,\"tx_rsp_cons\":%u,"
		   "\"tx_rsp_prod\":%u,\"tx_free_slots\":%u,\"rx_req_prod\":%u,\"rx_rsp_cons\":%u,"
		   "\"rx_rsp_prod\":%u,\"tx_evtchn\":%u,\"rx_evtchn\":%u,\"backlog\":%u,",
		   i, live ? "true" : "false",
		   i < d->num_txq ? (atomic_load(&d->txq[i].stopped) ? "stopped" : "started") : "none",
		   txp, txc, txr, tx_free, rxp, rxc, rxr, live ? q->tx_evtchn : 0, live ? q->rx_evtchn : 0,
		   backlog);
	pv_sbuf_printf(o, "\"tx_packets\":%llu,\"tx_bytes\":%llu,\"tx_dropped\":%llu,\"tx_errors\":%llu,"
		   "\"tx_race\":%llu,\"tx_reposted\":%llu,\"tx_announce\":%llu,\"rx_packets\":%llu,\"rx_bytes\":%llu,"
		   "\"rx_dropped\":%llu,\"rx_errors\":%llu,\"rx_gso_checksum_fixup\":%llu,"
		   "\"events\":%llu,\"spurious_events\":%llu}",
		   U(q->st.tx_packets), U(q->st.tx_bytes), U(q->st.tx_dropped), U(q->st.tx_errors),
		   U(q->st.tx_race), U(q->st.tx_reposted), U(q->st.tx_announce), U(q->st.rx_packets),
		   U(q->st.rx_bytes),
		   U(q->st.rx_dropped), U(q->st.rx_errors), U(q->st.rx_gso_checksum_fixup),
		   U(q->st.events), U(q->st.spurious_events));
}

struct dev_ctx {
	struct pv_sbuf *o;
	unsigned n;
	bool json;
};

static void dev_json(void *arg, struct nf_dev *d)
{
	struct dev_ctx *c = arg;
	struct pv_sbuf *o = c->o;
	unsigned nq;

	if (c->n++)
		pv_sbuf_printf(o, ",");
	pthread_mutex_lock(&d->lock);
	pv_sbuf_printf(o, "\n  {\"node\":");
	pv_sbuf_json_str(o, d->nodename);
	pv_sbuf_printf(o, ",\"ifname\":");
	pv_sbuf_json_str(o, d->p.ifname);
	pv_sbuf_printf(o, ",\"state\":\"%s\",\"backend\":", gr_xenbus_state_name(d->state));
	pv_sbuf_json_str(o, d->otherend);
	pv_sbuf_printf(o, ",\"backend_id\":%u,\"backend_state\":\"%s\",\"registered\":%s,", d->otherend_id,
		   gr_xenbus_state_name(d->backend_state), d->registered ? "true" : "false");
	pv_sbuf_printf(o, "\"running\":%s,\"present\":%s,\"carrier\":%s,\"broken\":%s,\"broken_reason\":",
		   atomic_load(&d->running) ? "true" : "false", atomic_load(&d->present) ? "true" : "false",
		   atomic_load(&d->carrier) ? "true" : "false", atomic_load(&d->broken) ? "true" : "false");
	pv_sbuf_json_str(o, d->broken_reason);
	pv_sbuf_printf(o, ",\"last_error\":");
	pv_sbuf_json_str(o, d->last_error);
	pthread_mutex_unlock(&d->lock);
	nq = atomic_load(&d->num_queues);
	pv_sbuf_printf(o, ",\"race\":%llu,\"resumes\":%llu,\"connects\":%llu,\"announce_gate\":%s,"
		   "\"announce_gate_ms\":%.3f,\"num_queues\":%u,\"tap_queues\":%u,\"num_tx_queues\":%u,"
		   "\"queues\":[",
		   U(d->race), U(d->resumes), U(d->connects), atomic_load(&d->ann_gate) ? "true" : "false",
		   (double)atomic_load(&d->ann_gate_ns) / 1e6, nq, atomic_load(&d->tap_queues), d->num_txq);
	for (unsigned i = 0; i < PV_MAX(nq, d->num_txq); i++) {
		pv_sbuf_printf(o, "%s\n    ", i ? "," : "");
		queue_json(o, d, i);
	}
	pv_sbuf_printf(o, "]}");
}

static void dev_state(void *arg, struct nf_dev *d)
{
	struct dev_ctx *c = arg;
	struct pv_sbuf *o = c->o;

	pthread_mutex_lock(&d->lock);
	pv_sbuf_printf(o, "%s ifname=%s state=%s backend=%s backend_id=%u backend_state=%s running=%d "
		   "present=%d carrier=%d broken=%d race=%llu queues=%u tap_queues=%u num_tx_queues=%u",
		   d->nodename, d->p.ifname, gr_xenbus_state_name(d->state), d->otherend, d->otherend_id,
		   gr_xenbus_state_name(d->backend_state), atomic_load(&d->running),
		   atomic_load(&d->present), atomic_load(&d->carrier), atomic_load(&d->broken), U(d->race),
		   atomic_load(&d->num_queues), atomic_load(&d->tap_queues), d->num_txq);
	if (d->broken_reason[0])
		pv_sbuf_printf(o, " broken_reason=\"%s\"", d->broken_reason);
	if (d->last_error[0])
		pv_sbuf_printf(o, " last_error=\"%s\"", d->last_error);
	pv_sbuf_printf(o, "\n");
	pthread_mutex_unlock(&d->lock);
	c->n++;
}

char *gr_control_answer(struct gr_rt *rt, const char *cmd)
{
	struct pv_sbuf o = { 0 };
	struct dev_ctx c = { .o = &o };

	if (!strcmp(cmd, "trace")) {
		answer_trace(rt, &o, GR_TRACE_KLOG, false);
	} else if (!strcmp(cmd, "trace-json")) {
		answer_trace(rt, &o, GR_TRACE_JSON, false);
	} else if (!strcmp(cmd, "trace-norm")) {
		answer_trace(rt, &o, GR_TRACE_NORM, true);
	} else if (!strcmp(cmd, "stats")) {
		pv_sbuf_printf(&o, "{\"domid\":%u,\"mode\":\"%s\",\"suspends\":%llu,\"suspends_cancelled\":%llu,"
			   "\"moves\":%llu,\"devices\":[", rt->hvc ? rt->hvc->domid : 0, mode_name(rt->o.mode),
			   U(rt->suspends), U(rt->suspends_cancelled), U(rt->moves));
		gr_bus_foreach(rt, dev_json, &c);
		pv_sbuf_printf(&o, "]}\n");
	} else if (!strcmp(cmd, "state")) {
		pv_sbuf_printf(&o, "domid=%u mode=%s suspends=%llu suspends_cancelled=%llu moves=%llu "
			   "trace_events=%llu\n", rt->hvc ? rt->hvc->domid : 0, mode_name(rt->o.mode),
			   U(rt->suspends), U(rt->suspends_cancelled), U(rt->moves),
			   (unsigned long long)gr_trace_last_seq(rt->trace));
		gr_bus_foreach(rt, dev_state, &c);
	} else {
		pv_sbuf_printf(&o, "commands: trace, trace-json, trace-norm, stats, state\n");
	}
	if (o.oom) {
		free(o.p);
		return NULL;
	}
	if (!o.p)
		pv_sbuf_printf(&o, "%s", "");
	return o.p;
}

/* Write all of buf by `end` (ns, pv_now_ns clock), or give up: a client
 * that stops reading holds the control thread (and every later client) no
 * longer than that, however the kernel splits the writes. */
static void write_by(int s, const char *buf, size_t len, uint64_t end)
{
	while (len) {
		ssize_t k = send(s, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k > 0) {
			buf += k;
			len -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return;
		uint64_t now = pv_now_ns();
		struct pollfd p = { .fd = s, .events = POLLOUT };
		if (now >= end || poll(&p, 1, (int)((end - now) / 1000000u) + 1) < 0)
			return;
	}
}

static void serve(struct gr_control *c, int s)
{
	uint64_t end = pv_now_ns() + 1000000000ull;
	char cmd[64];
	size_t n = 0;
	struct pollfd p = { .fd = s, .events = POLLIN };
	char *ans;

	/* A line (or EOF) within a second, in all. */
	while (n < sizeof(cmd) - 1 && pv_now_ns() < end &&
	       poll(&p, 1, (int)((end - pv_now_ns()) / 1000000u) + 1) == 1) {
		ssize_t k = read(s, cmd + n, sizeof(cmd) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		if (memchr(cmd, '\n', n))
			break;
	}
	cmd[n] = '\0';
	cmd[strcspn(cmd, "\r\n")] = '\0';
	ans = gr_control_answer(c->rt, cmd);
	/* The answer within 2 s, in all. */
	if (ans)
		write_by(s, ans, strlen(ans), pv_now_ns() + 2000000000ull);
	free(ans);
}

static void *control_main(void *arg)
{
	struct gr_control *c = arg;

	while (!atomic_load(&c->stop)) {
		int s = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (s < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		serve(c, s);
		close(s);
	}
	return NULL;
}

struct gr_control *gr_control_start(struct gr_rt *rt, const char *path)
{
	struct gr_control *c = calloc(1, sizeof(*c));
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int r;

	if (!c)
		return NULL;
	if (strlen(path) >= sizeof(a.sun_path)) {
		free(c);
		errno = ENAMETOOLONG;
		return NULL;
	}
	c->rt = rt;
	pv_strlcpy(c->path, path, sizeof(c->path));
	strcpy(a.sun_path, path);
	unlink(path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(c->fd, 16) < 0)
		goto fail;
	r = pthread_create(&c->th, NULL, control_main, c);
	if (r != 0) {
		errno = r;
		goto fail;
	}
	return c;
fail:
	r = errno;
	if (c->fd >= 0)
		close(c->fd);
	unlink(path);
	free(c);
	errno = r;
	return NULL;
}

void gr_control_stop(struct gr_control *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, true);
	shutdown(c->fd, SHUT_RDWR);
	pthread_join(c->th, NULL);
	close(c->fd);
	unlink(c->path);
	free(c);
}
