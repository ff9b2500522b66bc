/*
 * Control socket and the statistics JSON (see ctl.h).
 */
#include "netback/ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sbuf.h"
#include "common/util.h"
#include "netback/xenbus.h"

#define CTL_MAX_CLIENTS 16
#define CTL_LINE_MAX 256

struct ctl_client {
	int fd;
	size_t len;
	char buf[CTL_LINE_MAX];
};

struct nb_ctl {
	struct pv_loop *loop;
	struct nb_daemon *d;
	int fd;
	char path[108];
	struct ctl_client clients[CTL_MAX_CLIENTS];
};

/* ---- stats --------------------------------------------------------------- */

#define LD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

struct dir_sum {
	unsigned long long packets, bytes, dropped, errors, first_ns, last_ns;
};

static void dir_add(struct dir_sum *s, const struct nb_dir_stats *d)
{
	unsigned long long f = LD(d->first_ns), l = LD(d->last_ns);

	s->packets += LD(d->packets);
	s->bytes += LD(d->bytes);
	s->dropped += LD(d->dropped);
	s->errors += LD(d->errors);
	if (f && (!s->first_ns || f < s->first_ns))
		s->first_ns = f;
	if (l > s->last_ns)
		s->last_ns = l;
}

static void dir_json(struct pv_sbuf *b, const char *name, const struct dir_sum *s)
{
	pv_sbuf_printf(b, "\"%s\":{\"packets\":%llu,\"bytes\":%llu,\"dropped\":%llu,\"errors\":%llu,"
		  "\"first_ns\":%llu,\"last_ns\":%llu}", name, s->packets, s->bytes, s->dropped, s->errors,
		  s->first_ns, s->last_ns);
}

struct misc_sum {
	unsigned long long gso_csum_fixups, sw_csum, spurious_events, map_batches, copy_batches,
			   hv_copy_batches, unmap_batches, rx_stalls, credit_waits;
};

static void misc_add(struct misc_sum *m, const struct nb_qstats *q)
{
	m->gso_csum_fixups += LD(q->gso_csum_fixups);
	m->sw_csum += LD(q->sw_csum);
	m->spurious_events += LD(q->spurious_events);
	m->map_batches += LD(q->map_batches);
	m->copy_batches += LD(q->copy_batches);
	m->hv_copy_batches += LD(q->hv_copy_batches);
	m->unmap_batches += LD(q->unmap_batches);
	m->rx_stalls += LD(q->rx_stalls);
	m->credit_waits += LD(q->credit_waits);
}

static void misc_json(struct pv_sbuf *b, const struct misc_sum *m)
{
	pv_sbuf_printf(b, "\"gso_csum_fixups\":%llu,\"sw_csum\":%llu,\"spurious_events\":%llu,"
		  "\"map_batches\":%llu,\"copy_batches\":%llu,\"hv_copy_batches\":%llu,"
		  "\"unmap_batches\":%llu,\"rx_stalls\":%llu,\"credit_waits\":%llu",
		  m->gso_csum_fixups, m->sw_csum, m->spurious_events, m->map_batches, m->copy_batches,
		  m->hv_copy_batches, m->unmap_batches, m->rx_stalls, m->credit_waits);
}

struct sums {
	struct dir_sum from, to;
	struct misc_sum misc;
};

static void sums_add(struct sums *s, const struct nb_qstats *q)
{
	dir_add(&s->from, &q->from_guest);
	dir_add(&s->to, &q->to_guest);
	misc_add(&s->misc, q);
}

static void sums_json(struct pv_sbuf *b, const struct sums *s)
{
	dir_json(b, "from_guest", &s->from);
	pv_sbuf_printf(b, ",");
	dir_json(b, "to_guest", &s->to);
	pv_sbuf_printf(b, ",");
	misc_json(b, &s->misc);
}

struct json_ctx {
	struct pv_sbuf *b;
	const char *only;
	unsigned n;
};

static void vif_json(void *arg, const struct nb_dev_info *info)
{
	struct json_ctx *c = arg;
	struct pv_sbuf *b = c->b;
	struct nb_vif *vif = info->vif;
	struct sums all = { 0 };
	unsigned nq = vif ? nb_vif_nqueues(vif) : 0;
	char name[32];

	snprintf(name, sizeof(name), "vif%u.%u", info->domid, info->devid);
	if (c->only && strcmp(c->only, name) != 0)
		return;
	pv_sbuf_printf(b, "%s{\"name\":", c->n++ ? "," : "");
	pv_sbuf_json_str(b, name);
	pv_sbuf_printf(b, ",\"domid\":%u,\"devid\":%u,\"backend\":", info->domid, info->devid);
	pv_sbuf_json_str(b, info->backend);
	pv_sbuf_printf(b, ",\"frontend\":");
	pv_sbuf_json_str(b, info->frontend);
	pv_sbuf_printf(b, ",\"bridge\":");
	pv_sbuf_json_str(b, info->bridge);
	pv_sbuf_printf(b, ",\"state\":%d,\"state_name\":\"%s\",\"frontend_state\":%d,\"frontend_state_name\":\"%s\"",
		  info->state, nb_xb_state_name(info->state), info->frontend_state,
		  nb_xb_state_name(info->frontend_state));
	pv_sbuf_printf(b, ",\"connected\":%s,\"disabled\":%s,\"reason\":",
		  vif && nb_vif_connected(vif) ? "true" : "false", vif && nb_vif_disabled(vif) ? "true" : "false");
	pv_sbuf_json_str(b, vif ? nb_vif_reason(vif) : "");
	pv_sbuf_printf(b, ",\"queues\":%u,\"connected_ns\":%llu", nq,
		  vif ? (unsigned long long)nb_vif_connected_ns(vif) : 0ULL);
	for (unsigned q = 0; q < nq; q++)
		sums_add(&all, nb_vif_queue_stats(vif, q));
	/* The vif netdev's view, as Linux counts: tx = to the guest, rx = from
	 * it (what the toolstack reads for a migration's blackout). */
	pv_sbuf_printf(b, ",\"first_tx_ns\":%llu,\"last_tx_ns\":%llu,\"first_rx_ns\":%llu,\"last_rx_ns\":%llu",
		  all.to.first_ns, all.to.last_ns, all.from.first_ns, all.from.last_ns);
	pv_sbuf_printf(b, ",");
	sums_json(b, &all);
	pv_sbuf_printf(b, ",\"per_queue\":[");
	for (unsigned q = 0; q < nq; q++) {
		struct sums one = { 0 };

		sums_add(&one, nb_vif_queue_stats(vif, q));
		pv_sbuf_printf(b, "%s{\"queue\":%u,", q ? "," : "", q);
		sums_json(b, &one);
		pv_sbuf_printf(b, "}");
	}
	pv_sbuf_printf(b, "]}");
}

char *nb_ctl_json(struct nb_daemon *d, const char *only)
{
	struct pv_sbuf b = { 0 };
	struct json_ctx c = { .b = &b, .only = only };

	pv_sbuf_printf(&b, "{\"now_ns\":%llu,\"vifs\":[", (unsigned long long)pv_now_ns());
	nb_backend_foreach(d, vif_json, &c);
	pv_sbuf_printf(&b, "]}");
	if (b.oom) {
		free(b.p);
		errno = ENOMEM;
		return NULL;
	}
	return b.p;
}

/* ---- the socket ---------------------------------------------------------- */

static void client_close(struct nb_ctl *c, struct ctl_client *cl)
{
	(void)pv_loop_del_fd(c->loop, cl->fd);
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
}

static void reply(struct ctl_client *cl, const char *s)
{
	if (pv_write_all(cl->fd, s, strlen(s)) < 0 || pv_write_all(cl->fd, "\n", 1) < 0)
		pv_debug("control client: write failed");
}

static void command(struct nb_ctl *c, struct ctl_client *cl, char *line)
{
	char *arg, *json;

	while (*line == ' ')
		line++;
	arg = strchr(line, ' ');
	if (arg) {
		*arg++ = '\0';
		while (*arg == ' ')
			arg++;
		if (!*arg)
			arg = NULL;
	}
	if (strcmp(line, "stats") == 0) {
		json = nb_ctl_json(c->d, arg);
		reply(cl, json ? json : "{\"error\":\"out of memory\"}");
		free(json);
	} else if (strcmp(line, "help") == 0) {
		reply(cl, "{\"commands\":[\"stats\",\"stats <vifname>\",\"help\"]}");
	} else {
		reply(cl, "{\"error\":\"unknown command (try help)\"}");
	}
}

static void on_client(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct nb_ctl *c = arg;
	struct ctl_client *cl = NULL;
	ssize_t n;
	char *nl;

	(void)loop; (void)events;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->clients[i].fd == fd)
			cl = &c->clients[i];
	if (!cl)
		return;
	n = read(fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len);
	if (n <= 0) {
		client_close(c, cl);
		return;
	}
	cl->len += (size_t)n;
	cl->buf[cl->len] = '\0';
	while ((nl = strchr(cl->buf, '\n')) != NULL) {
		*nl = '\0';
		if (nl > cl->buf && nl[-1] == '\r')
			nl[-1] = '\0';
		command(c, cl, cl->buf);
		cl->len -= (size_t)(nl + 1 - cl->buf);
		memmove(cl->buf, nl + 1, cl->len + 1);
	}
	if (cl->len == sizeof(cl->buf) - 1) {
		reply(cl, "{\"error\":\"line too long\"}");
		client_close(c, cl);
	}
}

static void on_accept(struct pv_loop *loop, int fd, uint32_t events, void *arg)
{
	struct nb_ctl *c = arg;
	/* Blocking, with a send timeout: a reply is written whole, and a client
	 * that does not read cannot hold the main thread for long. */
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	struct timeval tv = { .tv_sec = 1 };

	(void)events;
	if (cfd < 0)
		return;
	(void)setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (c->clients[i].fd < 0) {
			c->clients[i].fd = cfd;
			c->clients[i].len = 0;
			if (pv_loop_add_fd(loop, cfd, EPOLLIN, on_client, c) < 0) {
				close(cfd);
				c->clients[i].fd = -1;
			}
			return;
		}
	}
	close(cfd);  /* too many clients */
}

struct nb_ctl *nb_ctl_open(struct pv_loop *loop, struct nb_daemon *d, const char *path)
{
	struct nb_ctl *c = calloc(1, sizeof(*c));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int e;

	if (!c)
		return NULL;
	c->loop = loop;
	c->d = d;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		free(c);
		errno = ENAMETOOLONG;
		return NULL;
	}
	pv_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	pv_strlcpy(c->path, path, sizeof(c->path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		goto fail;
	(void)unlink(path);
	if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->fd, 8) < 0)
		goto fail;
	if ((e = pv_loop_add_fd(loop, c->fd, EPOLLIN, on_accept, c)) < 0) {
		errno = -e;
		goto fail;
	}
	return c;
fail:
	e = errno;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	errno = e;
	return NULL;
}

void nb_ctl_close(struct nb_ctl *c)
{
	if (!c)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			client_close(c, &c->clients[i]);
	(void)pv_loop_del_fd(c->loop, c->fd);
	close(c->fd);
	(void)unlink(c->path);
	free(c);
}
