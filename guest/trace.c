#include "guest/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xen.h"
#include "common/sbuf.h"
#include "common/util.h"

struct gr_trace {
	pthread_mutex_t lock;
	uint64_t t0;
	uint64_t seq;
	unsigned cap;
	struct gr_trace_rec *ring;   /* record with seq s lives at (s - 1) % cap */
	int fd;
	enum gr_trace_fmt file_fmt;
	bool log;
};

static const char *const ev_names[GR_EV__COUNT] = {
	[GR_EV_PROBE] = "probe",
	[GR_EV_BACKEND_CHANGED] = "backend_changed",
	[GR_EV_CONNECT] = "connect",
	[GR_EV_SWITCH_STATE] = "switch_state",
	[GR_EV_NOTIFY_PEERS] = "notify_peers",
	[GR_EV_OPEN] = "open",
	[GR_EV_CLOSE] = "close",
	[GR_EV_SUSPEND] = "suspend",
	[GR_EV_RESUME] = "resume",
	[GR_EV_DISCONNECT_BACKEND] = "disconnect_backend",
	[GR_EV_DEVICE_DETACH] = "device_detach",
	[GR_EV_DEVICE_ATTACH] = "device_attach",
	[GR_EV_TX_START_QUEUE] = "netif_tx_start_queue",
	[GR_EV_TX_STOP_QUEUE] = "netif_tx_stop_queue",
	[GR_EV_TX_WAKE_QUEUE] = "netif_tx_wake_queue",
	[GR_EV_BROKEN] = "broken",
	[GR_EV_REMOVE] = "remove",
};

/* The Linux function each event stands for, for the kernel-log rendering. */
static const char *const ev_funcs[GR_EV__COUNT] = {
	[GR_EV_PROBE] = "netfront_probe",
	[GR_EV_BACKEND_CHANGED] = "netback_changed",
	[GR_EV_CONNECT] = "xennet_connect",
	[GR_EV_SWITCH_STATE] = "xenbus_switch_state",
	[GR_EV_NOTIFY_PEERS] = "netdev_notify_peers",
	[GR_EV_OPEN] = "xennet_open",
	[GR_EV_CLOSE] = "xennet_close",
	[GR_EV_SUSPEND] = "do_suspend",
	[GR_EV_RESUME] = "netfront_resume",
	[GR_EV_DISCONNECT_BACKEND] = "xennet_disconnect_backend",
	[GR_EV_DEVICE_DETACH] = "netif_device_detach",
	[GR_EV_DEVICE_ATTACH] = "netif_device_attach",
	[GR_EV_TX_START_QUEUE] = "netif_tx_start_queue",
	[GR_EV_TX_STOP_QUEUE] = "netif_tx_stop_queue",
	[GR_EV_TX_WAKE_QUEUE] = "netif_tx_wake_queue",
	[GR_EV_BROKEN] = "xennet_broken",
	[GR_EV_REMOVE] = "xennet_remove",
};

static const char *const state_names[] = {
	"Unknown", "Initialising", "InitWait", "Initialised", "Connected",
	"Closing", "Closed", "Reconfiguring", "Reconfigured",
};

const char *gr_ev_name(enum gr_ev ev)
{
	return (unsigned)ev < GR_EV__COUNT ? ev_names[ev] : "unknown";
}

const char *gr_how_name(enum gr_how how)
{
	switch (how) {
	case GR_HOW_NETLINK: return "netlink";
	case GR_HOW_IOCTL: return "ioctl";
	default: return "unknown";
	}
}

const char *gr_xenbus_state_name(int state)
{
	if (state < 0 || (size_t)state >= PV_ARRAY_SIZE(state_names))
		return "Unknown";
	return state_names[state];
}

struct gr_trace *gr_trace_new(unsigned capacity)
{
	struct gr_trace *t;

	if (capacity < 16)
		capacity = 16;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ring = calloc(capacity, sizeof(*t->ring));
	if (!t->ring) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->cap = capacity;
	t->t0 = pv_now_ns();
	t->fd = -1;
	return t;
}

void gr_trace_free(struct gr_trace *t)
{
	if (!t)
		return;
	if (t->fd >= 0)
		close(t->fd);
	pthread_mutex_destroy(&t->lock);
	free(t->ring);
	free(t);
}

int gr_trace_set_file(struct gr_trace *t, const char *path, enum gr_trace_fmt fmt)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&t->lock);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = fd;
	t->file_fmt = fmt;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void gr_trace_set_log(struct gr_trace *t, int on)
{
	pthread_mutex_lock(&t->lock);
	t->log = on != 0;
	pthread_mutex_unlock(&t->lock);
}

void gr_trace_rec_init(struct gr_trace_rec *r, enum gr_ev ev, const char *node, const char *ifname)
{
	memset(r, 0, sizeof(*r));
	r->ev = ev;
	r->queue = -1;
	r->state = r->state2 = -1;
	if (node)
		pv_strlcpy(r->node, node, sizeof(r->node));
	if (ifname)
		pv_strlcpy(r->ifname, ifname, sizeof(r->ifname));
}

void gr_trace_emit(struct gr_trace *t, struct gr_trace_rec *r)
{
	char line[1024];
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	r->seq = ++t->seq;
	r->t_ns = pv_now_ns() - t->t0;
	t->ring[(r->seq - 1) % t->cap] = *r;
	if (t->fd >= 0) {
		n = gr_trace_render(r, t->file_fmt, line, sizeof(line));
		(void)pv_write_all(t->fd, line, n);
	}
	if (t->log) {
		n = gr_trace_render(r, GR_TRACE_KLOG, line, sizeof(line));
		if (n > 0)
			line[n - 1] = '\0';
		pv_debug("trace: %s", line);
	}
	pthread_mutex_unlock(&t->lock);
}

unsigned gr_trace_snapshot(struct gr_trace *t, uint64_t after_seq, struct gr_trace_rec *out, unsigned max)
{
	unsigned n = 0;
	uint64_t first, s;

	pthread_mutex_lock(&t->lock);
	first = t->seq > t->cap ? t->seq - t->cap + 1 : 1;
	if (after_seq + 1 > first)
		first = after_seq + 1;
	for (s = first; s <= t->seq && n < max; s++)
		out[n++] = t->ring[(s - 1) % t->cap];
	pthread_mutex_unlock(&t->lock);
	return n;
}

uint64_t gr_trace_last_seq(struct gr_trace *t)
{
	uint64_t s;
	pthread_mutex_lock(&t->lock);
	s = t->seq;
	pthread_mutex_unlock(&t->lock);
	return s;
}

uint64_t gr_trace_dropped(struct gr_trace *t)
{
	uint64_t d;
	pthread_mutex_lock(&t->lock);
	d = t->seq > t->cap ? t->seq - t->cap : 0;
	pthread_mutex_unlock(&t->lock);
	return d;
}

/* ,"key":"value" */
static void sb_json_kv(struct pv_sbuf *b, const char *key, const char *s)
{
	pv_sbuf_printf(b, ",\"%s\":", key);
	pv_sbuf_json_str(b, s);
}

static const char *rec_dev(const struct gr_trace_rec *r)
{
	return r->ifname[0] ? r->ifname : r->node;
}

static void render_klog(const struct gr_trace_rec *r, struct pv_sbuf *b)
{
	const char *fn = (unsigned)r->ev < GR_EV__COUNT ? ev_funcs[r->ev] : "?";

	pv_sbuf_printf(b, "[%5llu.%06llu] ", (unsigned long long)(r->t_ns / 1000000000u),
		  (unsigned long long)(r->t_ns % 1000000000u / 1000u));
	switch (r->ev) {
	case GR_EV_SUSPEND:
		pv_sbuf_printf(b, "xen_manage: %s() suspending xenstore...", fn);
		break;
	case GR_EV_TX_START_QUEUE:
	case GR_EV_TX_STOP_QUEUE:
	case GR_EV_TX_WAKE_QUEUE:
		pv_sbuf_printf(b, "xen_netfront: %s() %s, tx-%d", fn, rec_dev(r), r->queue);
		break;
	case GR_EV_BACKEND_CHANGED:
		pv_sbuf_printf(b, "xen_netfront: %s() %s backend_state=XenbusState%s dev->state=XenbusState%s",
			  fn, r->node, gr_xenbus_state_name(r->state), gr_xenbus_state_name(r->state2));
		break;
	case GR_EV_SWITCH_STATE:
		pv_sbuf_printf(b, "xen_netfront: %s() %s XenbusState%s", fn, r->node,
			  gr_xenbus_state_name(r->state));
		break;
	case GR_EV_OPEN:
	case GR_EV_CLOSE:
		pv_sbuf_printf(b, "xen_netfront: %s() %s by %s", fn, rec_dev(r), gr_how_name(r->how));
		break;
	case GR_EV_BROKEN:
		pv_sbuf_printf(b, "xen_netfront: %s: Disabled for further use: %s", rec_dev(r), r->text);
		break;
	case GR_EV_PROBE:
	case GR_EV_CONNECT:
	case GR_EV_RESUME:
	case GR_EV_REMOVE:
		pv_sbuf_printf(b, "xen_netfront: %s() %s", fn, r->node);
		break;
	default:
		pv_sbuf_printf(b, "xen_netfront: %s() %s", fn, rec_dev(r));
		break;
	}
	if (r->text[0] && r->ev != GR_EV_BROKEN)
		pv_sbuf_printf(b, " (%s)", r->text);
}

static void render_json(const struct gr_trace_rec *r, struct pv_sbuf *b)
{
	pv_sbuf_printf(b, "{\"seq\":%llu,\"t\":%llu.%06llu", (unsigned long long)r->seq,
		  (unsigned long long)(r->t_ns / 1000000000u),
		  (unsigned long long)(r->t_ns % 1000000000u / 1000u));
	sb_json_kv(b, "event", gr_ev_name(r->ev));
	if (r->node[0])
		sb_json_kv(b, "node", r->node);
	if (r->ifname[0])
		sb_json_kv(b, "ifname", r->ifname);
	if (r->queue >= 0)
		pv_sbuf_printf(b, ",\"queue\":%d", r->queue);
	if (r->ev == GR_EV_BACKEND_CHANGED) {
		sb_json_kv(b, "backend_state", gr_xenbus_state_name(r->state));
		sb_json_kv(b, "state", gr_xenbus_state_name(r->state2));
	} else if (r->state >= 0) {
		sb_json_kv(b, "state", gr_xenbus_state_name(r->state));
	}
	if (r->ev == GR_EV_OPEN || r->ev == GR_EV_CLOSE)
		sb_json_kv(b, "how", gr_how_name(r->how));
	if (r->text[0])
		sb_json_kv(b, r->ev == GR_EV_BROKEN ? "reason" : "text", r->text);
	pv_sbuf_printf(b, "}");
}

static void render_norm(const struct gr_trace_rec *r, struct pv_sbuf *b)
{
	pv_sbuf_printf(b, "%s", gr_ev_name(r->ev));
	switch (r->ev) {
	case GR_EV_TX_START_QUEUE:
	case GR_EV_TX_STOP_QUEUE:
	case GR_EV_TX_WAKE_QUEUE:
		pv_sbuf_printf(b, " %s tx-%d", rec_dev(r), r->queue);
		break;
	case GR_EV_BACKEND_CHANGED:
		pv_sbuf_printf(b, " %s %s %s", r->node, gr_xenbus_state_name(r->state),
			  gr_xenbus_state_name(r->state2));
		break;
	case GR_EV_SWITCH_STATE:
		pv_sbuf_printf(b, " %s %s", r->node, gr_xenbus_state_name(r->state));
		break;
	case GR_EV_OPEN:
	case GR_EV_CLOSE:
		pv_sbuf_printf(b, " %s %s", rec_dev(r), gr_how_name(r->how));
		break;
	case GR_EV_SUSPEND:
		break;
	case GR_EV_PROBE:
	case GR_EV_CONNECT:
	case GR_EV_RESUME:
	case GR_EV_REMOVE:
		pv_sbuf_printf(b, " %s", r->node);
		break;
	default:
		pv_sbuf_printf(b, " %s", rec_dev(r));
		break;
	}
}

bool gr_trace_norm_keep(const struct gr_trace_rec *r)
{
	if (r->ev != GR_EV_BACKEND_CHANGED)
		return true;
	switch (r->state) {
	case XenbusStateInitWait:
	case XenbusStateConnected:
	case XenbusStateClosing:
	case XenbusStateClosed:
		return true;
	default:
		return false;
	}
}

size_t gr_trace_render(const struct gr_trace_rec *r, enum gr_trace_fmt fmt, char *buf, size_t len)
{
	struct pv_sbuf b;

	if (len < 2) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	pv_sbuf_fixed(&b, buf, len - 1); /* room for the newline */
	switch (fmt) {
	case GR_TRACE_KLOG: render_klog(r, &b); break;
	case GR_TRACE_JSON: render_json(r, &b); break;
	default: render_norm(r, &b); break;
	}
	buf[b.n++] = '\n';
	buf[b.n] = '\0';
	return b.n;
}
