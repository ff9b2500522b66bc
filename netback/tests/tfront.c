/*
 * The test frontend and its environment (see tfront.h). The frontend side
 * follows Linux netfront's talk_to_netback/xennet_connect closely enough for
 * netback not to tell the difference, and stays simple where netfront is
 * clever: one page per tx slot index and per rx slot index, granted once;
 * responses are polled (the backend's notifications are still exercised:
 * the frontend keeps its event indices as netfront does).
 */
#include "netback/tests/tfront.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "netif/link.h"

#define TX_MASK (PV_NET_TX_RING_SIZE - 1u)
#define RX_MASK (PV_NET_RX_RING_SIZE - 1u)

/* ---- environment ---------------------------------------------------------- */

static void dom_close(struct tf_dom *d);

static pid_t spawn(char *const argv[], int timeout_ms)
{
	int p[2];
	pid_t pid;
	char buf[16];
	struct pollfd pfd;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char fdarg[16];
		char *args[40];
		int n = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fcntl(p[1], F_SETFD, 0);
		snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
		for (; argv[n] && n < 36; n++)
			args[n] = argv[n];
		args[n++] = "--ready-fd";
		args[n++] = fdarg;
		args[n] = NULL;
		execv(args[0], args);
		_exit(127);
	}
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	if (poll(&pfd, 1, timeout_ms) <= 0 || read(p[0], buf, sizeof(buf)) <= 0) {
		close(p[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -ETIMEDOUT;
	}
	close(p[0]);
	return pid;
}

static void stop_pid(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		pv_sleep_ns(10000000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static const char *build_dir(void)
{
	const char *b = getenv("PVNET_BUILD");
	return b ? b : "build";
}

int tf_env_start(struct tf_env *e, const struct tf_env_opts *o)
{
	char xsd[256], hvd[256], nbd[256], xsdir[150], hvdir[150], xslog[200], hvlog[200];
	char *argv[40], *extra = NULL;
	int n = 0, r, br;

	memset(e, 0, sizeof(*e));
	for (unsigned i = 0; i < NIF_TAP_MAX_QUEUES; i++)
		e->host.fds[i] = -1;
	snprintf(xsd, sizeof(xsd), "%s/pvnet-xenstored", build_dir());
	snprintf(hvd, sizeof(hvd), "%s/pvnet-hypervisor", build_dir());
	snprintf(nbd, sizeof(nbd), "%s/pvnet-netback", build_dir());
	if (access(xsd, X_OK) || access(hvd, X_OK) || access(nbd, X_OK))
		return 77;
	pv_strlcpy(e->dir, "/tmp/pvnb.XXXXXX", sizeof(e->dir));
	if (!mkdtemp(e->dir))
		return -errno;
	pv_strlcpy(e->bridge, o && o->bridge ? o->bridge : "xenbr0", sizeof(e->bridge));
	snprintf(xsdir, sizeof(xsdir), "%s/xs", e->dir);
	snprintf(hvdir, sizeof(hvdir), "%s/hv", e->dir);
	snprintf(e->nb_dir, sizeof(e->nb_dir), "%s/nb", e->dir);
	snprintf(e->xs_sock, sizeof(e->xs_sock), "%s/socket", xsdir);
	snprintf(e->hv_sock, sizeof(e->hv_sock), "%s/socket", hvdir);
	snprintf(e->nb_log, sizeof(e->nb_log), "%s/netback.log", e->dir);
	snprintf(e->ctl_sock, sizeof(e->ctl_sock), "%s/netback.sock", e->nb_dir);
	snprintf(xslog, sizeof(xslog), "%s/xenstored.log", e->dir);
	snprintf(hvlog, sizeof(hvlog), "%s/hypervisor.log", e->dir);

	/* The host: a bridge and a port for the tests' frames. */
	if ((r = nif_bridge_create(e->bridge)) < 0 || (br = nif_link_index(e->bridge)) < 0 ||
	    (r = nif_link_set_up(br, true)) < 0)
		return r < 0 ? r : br;
	if (!(o && o->no_host_port) &&
	    ((r = nif_tap_create(&e->host, "hostport0", 1)) < 0 ||
	     (r = nif_tap_set_offload(&e->host, o ? o->host_tun_flags : 0)) < 0 ||
	     (r = nif_link_set_master(e->host.ifindex, br)) < 0 ||
	     (r = nif_link_set_up(e->host.ifindex, true)) < 0))
		return r;

	argv[0] = xsd; argv[1] = "--rundir"; argv[2] = xsdir; argv[3] = "--log-file"; argv[4] = xslog;
	argv[5] = NULL;
	if ((e->xsd = spawn(argv, 10000)) < 0)
		return (int)e->xsd;
	argv[0] = hvd; argv[2] = hvdir; argv[4] = hvlog;
	if ((e->hvd = spawn(argv, 10000)) < 0)
		return (int)e->hvd;
	argv[n++] = nbd;
	argv[n++] = "--rundir"; argv[n++] = e->nb_dir;
	argv[n++] = "--log-file"; argv[n++] = e->nb_log;
	argv[n++] = "--log-level"; argv[n++] = "debug";
	argv[n++] = "--xenstore"; argv[n++] = e->xs_sock;
	argv[n++] = "--hypervisor"; argv[n++] = e->hv_sock;
	if (o && o->netback_args) {
		extra = strdup(o->netback_args);
		for (char *t = strtok(extra, " "); t && n < 36; t = strtok(NULL, " "))
			argv[n++] = t;
	}
	argv[n] = NULL;
	e->nbd = spawn(argv, 10000);
	free(extra);
	if (e->nbd < 0)
		return (int)e->nbd;
	setenv("XENSTORED_PATH", e->xs_sock, 1);
	e->xs = xs_open(0);
	e->hv = pv_hv_open(e->hv_sock);
	if (!e->xs || !e->hv)
		return -errno;
	return 0;
}

void tf_env_stop(struct tf_env *e)
{
	int idx;

	stop_pid(&e->nbd);
	for (unsigned i = 0; i < e->ndoms; i++) {
		dom_close(e->doms[i]);
		free(e->doms[i]);
	}
	e->ndoms = 0;
	if (e->xs)
		xs_close(e->xs);
	e->xs = NULL;
	if (e->hv)
		pv_hv_close(e->hv);
	e->hv = NULL;
	stop_pid(&e->hvd);
	stop_pid(&e->xsd);
	nif_tap_close(&e->host);
	if ((idx = nif_link_index(e->bridge)) > 0)
		nif_link_delete(idx);
	if (e->dir[0] && !getenv("TF_KEEP")) {
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", e->dir);
	}
}

static void dump_log(const char *who, const char *path, unsigned tail)
{
	char (*last)[256] = calloc(tail, sizeof(*last)), line[256];
	unsigned n = 0;
	bool in_report = false;
	FILE *f = fopen(path, "r");

	if (!f || !last) {
		printf("# %s: no log at %s\n", who, path);
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		/* Sanitizer reports in full, wherever they are. */
		if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "runtime error:") ||
		    strstr(line, "ERROR: LeakSanitizer"))
			in_report = true;
		if (in_report)
			printf("# %s: %s\n", who, line);
		if (in_report && strstr(line, "ABORTING"))
			in_report = false;
		pv_strlcpy(last[n++ % tail], line, sizeof(last[0]));
	}
	for (unsigned i = n > tail ? n - tail : 0; i < n; i++)
		printf("# %s: %s\n", who, last[i % tail]);
out:
	if (f)
		fclose(f);
	free(last);
}

void tf_env_dump_logs(struct tf_env *e)
{
	char path[200];

	dump_log("netback", e->nb_log, 30);
	snprintf(path, sizeof(path), "%s/hypervisor.log", e->dir);
	dump_log("hypervisor", path, 10);
	snprintf(path, sizeof(path), "%s/xenstored.log", e->dir);
	dump_log("xenstored", path, 5);
}

char *tf_ctl(struct tf_env *e, const char *cmd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *buf = malloc(1 << 20);
	size_t len = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || !buf)
		goto fail;
	pv_strlcpy(sa.sun_path, e->ctl_sock, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    pv_write_all(fd, cmd, strlen(cmd)) < 0 || pv_write_all(fd, "\n", 1) < 0)
		goto fail;
	while (len < (1 << 20) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			goto fail;
		n = read(fd, buf + len, (1 << 20) - 1 - len);
		if (n <= 0)
			goto fail;
		len += (size_t)n;
		buf[len] = '\0';
		if (memchr(buf, '\n', len)) {
			*strchr(buf, '\n') = '\0';
			close(fd);
			return buf;
		}
	}
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

char *tf_vif_stats(struct tf_env *e, const struct tf_vif *v)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "stats vif%u.%u", v->d->domid, v->devid);
	return tf_ctl(e, cmd);
}

unsigned long long tf_stat_in(const char *stats, const char *dir, const char *key,
			      unsigned long long missing)
{
	const char *p;
	char pat[64];

	if (!stats || !(p = strstr(stats, dir)))
		return missing;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if (!(p = strstr(p, pat)))
		return missing;
	return strtoull(p + strlen(pat), NULL, 10);
}

unsigned long long tf_vif_stat(struct tf_env *e, const struct tf_vif *v, const char *dir,
			       const char *key, unsigned long long missing)
{
	char *s = tf_vif_stats(e, v);
	unsigned long long val = tf_stat_in(s, dir, key, missing);

	free(s);
	return val;
}

bool tf_log_wait(struct tf_env *e, const char *needle, int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t += 20) {
		FILE *f = fopen(e->nb_log, "r");
		char line[1024];
		bool found = false;

		while (f && !found && fgets(line, sizeof(line), f))
			found = strstr(line, needle) != NULL;
		if (f)
			fclose(f);
		if (found)
			return true;
		pv_sleep_ns(20000000);
	}
	return false;
}

char *tf_xs_read(struct tf_env *e, const char *path)
{
	unsigned len;
	return xs_read(e->xs, XBT_NULL, path, &len);
}

bool tf_xs_wait(struct tf_env *e, const char *path, const char *value, int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t += 10) {
		char *v = tf_xs_read(e, path);
		bool ok = value ? (v && strcmp(v, value) == 0) : !v;

		free(v);
		if (ok)
			return true;
		pv_sleep_ns(10000000);
	}
	return false;
}

int tf_host_send(struct tf_env *e, const struct virtio_net_hdr *vh, const uint8_t *frame, size_t len)
{
	struct virtio_net_hdr z = { 0 };
	struct iovec iov[2] = { { (void *)(vh ? vh : &z), sizeof(z) }, { (void *)frame, len } };

	return writev(e->host.fds[0], iov, 2) < 0 ? -errno : 0;
}

ssize_t tf_host_recv(struct tf_env *e, struct virtio_net_hdr *vh, uint8_t *buf, size_t cap,
		     const uint8_t *dst, int timeout_ms)
{
	uint64_t end = pv_now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		struct iovec iov[2] = { { vh, sizeof(*vh) }, { buf, cap } };
		struct pollfd p = { .fd = e->host.fds[0], .events = POLLIN };
		uint64_t now = pv_now_ns();
		ssize_t n;

		if (now >= end)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) <= 0)
			continue;
		n = readv(e->host.fds[0], iov, 2);
		if (n < (ssize_t)sizeof(*vh) + 14)
			continue;
		n -= (ssize_t)sizeof(*vh);
		if (dst && memcmp(buf, dst, 6) != 0)
			continue;  /* IPv6 router solicitations and the like */
		return n;
	}
}

/* ---- domains --------------------------------------------------------------- */

static int dom_create(struct tf_env *e, struct tf_dom *d)
{
	struct pv_domain_config cfg;
	int r;

	memset(d, 0, sizeof(*d));
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.name, sizeof(cfg.name), "tfront");
	if ((r = pv_hv_domain_create(e->hv, &cfg, &d->domid)) < 0)
		return r;
	if ((r = pv_hv_domain_socket(e->hv, d->domid, d->sock, sizeof(d->sock))) < 0)
		return r;
	d->hv = pv_hv_open(d->sock);
	if (!d->hv)
		return -errno;
	d->mem = pv_hv_map_own_memory(d->hv, NULL, &d->npages);
	if (!d->mem)
		return -errno;
	d->pa = pv_pagealloc_new(d->mem, d->npages, 0);
	d->gs = pv_gntshr_open(d->hv);
	d->ec = pv_evtchn_open(d->sock);
	if (!d->pa || !d->gs || !d->ec)
		return -errno ? -errno : -ENOMEM;
	return 0;
}

static void dom_close(struct tf_dom *d)
{
	if (d->ec)
		pv_evtchn_close(d->ec);
	if (d->gs)
		pv_gntshr_close(d->gs);
	if (d->pa)
		pv_pagealloc_free(d->pa);
	if (d->hv)
		pv_hv_close(d->hv);
	memset(d, 0, sizeof(*d));
}

struct tf_dom *tf_dom_new(struct tf_env *e)
{
	struct tf_dom *d;
	int r;

	if (e->ndoms == PV_ARRAY_SIZE(e->doms) || !(d = calloc(1, sizeof(*d)))) {
		errno = ENOMEM;
		return NULL;
	}
	e->doms[e->ndoms++] = d;
	if ((r = dom_create(e, d)) < 0) {
		errno = -r;
		return NULL;
	}
	return d;
}

/* ---- the toolstack's part ------------------------------------------------- */

static int xs_printf(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int xs_printf(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
		     const char *fmt, ...)
{
	char path[300], val[300];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return xs_write(xs, t, path, val, (unsigned)strlen(val)) ? 0 : -errno;
}

int tf_vif_add(struct tf_env *e, struct tf_dom *d, unsigned devid, struct tf_vif *v)
{
	return tf_vif_add_bridge(e, d, devid, v, e->bridge);
}

int tf_vif_add_bridge(struct tf_env *e, struct tf_dom *d, unsigned devid, struct tf_vif *v,
		      const char *bridge)
{
	char mac[20];

	memset(v, 0, sizeof(*v));
	v->e = e;
	v->d = d;
	v->devid = devid;
	v->mac[0] = 0x00; v->mac[1] = 0x16; v->mac[2] = 0x3e;
	v->mac[3] = (uint8_t)(d->domid >> 8); v->mac[4] = (uint8_t)d->domid; v->mac[5] = (uint8_t)devid;
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", v->mac[0], v->mac[1], v->mac[2],
		 v->mac[3], v->mac[4], v->mac[5]);
	snprintf(v->fe, sizeof(v->fe), "/local/domain/%u/device/vif/%u", d->domid, devid);
	snprintf(v->be, sizeof(v->be), "/local/domain/0/backend/vif/%u/%u", d->domid, devid);
	for (int tries = 0; tries < 50; tries++) {
		xs_transaction_t t = xs_transaction_start(e->xs);
		int r = 0;

		if (t == XBT_NULL)
			return -errno;
		r |= xs_printf(e->xs, t, v->fe, "backend", "%s", v->be);
		r |= xs_printf(e->xs, t, v->fe, "backend-id", "0");
		r |= xs_printf(e->xs, t, v->fe, "state", "1");
		r |= xs_printf(e->xs, t, v->fe, "handle", "%u", devid);
		r |= xs_printf(e->xs, t, v->fe, "mac", "%s", mac);
		r |= xs_printf(e->xs, t, v->be, "frontend", "%s", v->fe);
		r |= xs_printf(e->xs, t, v->be, "frontend-id", "%u", d->domid);
		r |= xs_printf(e->xs, t, v->be, "online", "1");
		r |= xs_printf(e->xs, t, v->be, "state", "1");
		r |= xs_printf(e->xs, t, v->be, "script", "/etc/xen/scripts/vif-bridge");
		r |= xs_printf(e->xs, t, v->be, "mac", "%s", mac);
		r |= xs_printf(e->xs, t, v->be, "bridge", "%s", bridge);
		r |= xs_printf(e->xs, t, v->be, "handle", "%u", devid);
		r |= xs_printf(e->xs, t, v->be, "type", "vif");
		r |= xs_printf(e->xs, t, v->be, "hotplug-status", "%s", "");
		if (r) {
			xs_transaction_end(e->xs, t, true);
			return -EIO;
		}
		if (xs_transaction_end(e->xs, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

int tf_be_state(struct tf_vif *v)
{
	char path[200], *s;
	int st;

	snprintf(path, sizeof(path), "%s/state", v->be);
	s = tf_xs_read(v->e, path);
	st = s ? atoi(s) : -1;
	free(s);
	return st;
}

bool tf_wait_be_state(struct tf_vif *v, int state, int timeout_ms)
{
	for (int t = 0; t <= timeout_ms; t += 5) {
		if (tf_be_state(v) == state)
			return true;
		pv_sleep_ns(5000000);
	}
	return false;
}

void tf_set_fe_state(struct tf_vif *v, int state)
{
	(void)xs_printf(v->e->xs, XBT_NULL, v->fe, "state", "%d", state);
}

/* ---- the frontend's part --------------------------------------------------- */

static uint8_t *grant_page(struct tf_dom *d, bool readonly, grant_ref_t *ref)
{
	int64_t f = pv_page_alloc(d->pa, 1), r;

	if (f < 0)
		return NULL;
	r = pv_gnttab_grant_foreign_access(d->gs, 0, (uint32_t)f, readonly);
	if (r < 0) {
		pv_page_free(d->pa, (uint32_t)f, 1);
		return NULL;
	}
	*ref = (grant_ref_t)r;
	return pv_page_addr(d->pa, (uint32_t)f);
}

static void ungrant_page(struct tf_dom *d, void *page, grant_ref_t ref)
{
	int64_t f;

	if (!page)
		return;
	if (pv_gnttab_end_foreign_access_ref(d->gs, ref) == 0)
		pv_gnttab_free_refs(d->gs, 1, &ref);
	f = pv_page_frame(d->pa, page);
	if (f >= 0)
		pv_page_free(d->pa, (uint32_t)f, 1);
}

static int setup_queue(struct tf_vif *v, struct tf_queue *q, bool split, bool own_ec)
{
	struct tf_dom *d = v->d;
	int r;

	q->ec = d->ec;
	if (own_ec) {
		q->ec = pv_evtchn_open(d->sock);
		if (!q->ec)
			return -errno;
		q->own_ec = true;
	}
	q->tx_sring = grant_page(d, false, &q->tx_ring_ref);
	q->rx_sring = grant_page(d, false, &q->rx_ring_ref);
	if (!q->tx_sring || !q->rx_sring)
		return -ENOMEM;
	SHARED_RING_INIT((netif_tx_sring_t *)q->tx_sring);
	FRONT_RING_INIT(&q->tx, (netif_tx_sring_t *)q->tx_sring, PV_PAGE_SIZE);
	SHARED_RING_INIT((netif_rx_sring_t *)q->rx_sring);
	FRONT_RING_INIT(&q->rx, (netif_rx_sring_t *)q->rx_sring, PV_PAGE_SIZE);
	for (unsigned i = 0; i < PV_NET_TX_RING_SIZE; i++)
		if (!(q->tx_pages[i] = grant_page(d, true, &q->tx_refs[i])))
			return -ENOMEM;
	for (unsigned i = 0; i < PV_NET_RX_RING_SIZE; i++)
		if (!(q->rx_pages[i] = grant_page(d, false, &q->rx_refs[i])))
			return -ENOMEM;
	if ((r = pv_evtchn_bind_unbound_port(q->ec, 0)) < 0)
		return r;
	q->tx_port = q->rx_port = (evtchn_port_t)r;
	if (split) {
		if ((r = pv_evtchn_bind_unbound_port(q->ec, 0)) < 0)
			return r;
		q->rx_port = (evtchn_port_t)r;
	}
	return 0;
}

static int setup_ctrl(struct tf_vif *v)
{
	struct tf_ctrl *c = &v->ctrl;
	int r;

	c->sring = grant_page(v->d, false, &c->ref);
	c->data = grant_page(v->d, true, &c->data_ref);
	if (!c->sring || !c->data)
		return -ENOMEM;
	SHARED_RING_INIT((xen_netif_ctrl_sring_t *)c->sring);
	FRONT_RING_INIT(&c->ring, (xen_netif_ctrl_sring_t *)c->sring, PV_PAGE_SIZE);
	if ((r = pv_evtchn_bind_unbound_port(v->d->ec, 0)) < 0)
		return r;
	c->port = (evtchn_port_t)r;
	return 0;
}

static unsigned be_unsigned(struct tf_vif *v, const char *key, unsigned dflt)
{
	char path[200], *s;
	unsigned r;

	snprintf(path, sizeof(path), "%s/%s", v->be, key);
	s = tf_xs_read(v->e, path);
	r = s ? (unsigned)strtoul(s, NULL, 10) : dflt;
	free(s);
	return r;
}

static int write_keys(struct tf_vif *v, const struct tf_vif_opts *o, xs_transaction_t t)
{
	struct xs_handle *xs = v->e->xs;
	int r = 0;

	if (o->num_queues_key >= 0)
		r |= xs_printf(xs, t, v->fe, "multi-queue-num-queues", "%d", o->num_queues_key);
	else
		r |= xs_printf(xs, t, v->fe, "multi-queue-num-queues", "%u", v->nq);
	for (unsigned i = 0; i < v->nq && !o->skip_keys; i++) {
		struct tf_queue *q = &v->q[i];
		char dir[200];

		if (v->nq == 1 || o->flat_keys)
			pv_strlcpy(dir, v->fe, sizeof(dir));
		else
			snprintf(dir, sizeof(dir), "%s/queue-%u", v->fe, i);
		r |= xs_printf(xs, t, dir, "tx-ring-ref", "%u",
			       (i == 0 && o->bad_tx_ring_ref) ? o->bad_tx_ring_ref : q->tx_ring_ref);
		r |= xs_printf(xs, t, dir, "rx-ring-ref", "%u", q->rx_ring_ref);
		if (o->split) {
			r |= xs_printf(xs, t, dir, "event-channel-tx", "%u", q->tx_port);
			r |= xs_printf(xs, t, dir, "event-channel-rx", "%u", q->rx_port);
		} else {
			r |= xs_printf(xs, t, dir, "event-channel", "%u", q->tx_port);
		}
	}
	if (o->ctrl_ring) {
		r |= xs_printf(xs, t, v->fe, "ctrl-ring-ref", "%u", o->bad_ctrl_ref ? o->bad_ctrl_ref : v->ctrl.ref);
		if (!o->ctrl_no_port)
			r |= xs_printf(xs, t, v->fe, "event-channel-ctrl", "%u", v->ctrl.port);
	} else {
		/* A frontend that had one before takes its keys away. */
		char path[200];

		snprintf(path, sizeof(path), "%s/ctrl-ring-ref", v->fe);
		(void)xs_rm(xs, t, path);
		snprintf(path, sizeof(path), "%s/event-channel-ctrl", v->fe);
		(void)xs_rm(xs, t, path);
	}
	if (!o->no_rx_copy)
		r |= xs_printf(xs, t, v->fe, "request-rx-copy", "1");
	if (!o->no_rx_notify)
		r |= xs_printf(xs, t, v->fe, "feature-rx-notify", "1");
	if (!o->no_sg)
		r |= xs_printf(xs, t, v->fe, "feature-sg", "1");
	if (!o->no_gso4)
		r |= xs_printf(xs, t, v->fe, "feature-gso-tcpv4", "1");
	if (!o->no_gso6)
		r |= xs_printf(xs, t, v->fe, "feature-gso-tcpv6", "1");
	if (!o->no_ipv6_csum)
		r |= xs_printf(xs, t, v->fe, "feature-ipv6-csum-offload", "1");
	if (o->no_csum_offload)
		r |= xs_printf(xs, t, v->fe, "feature-no-csum-offload", "1");
	return r ? -EIO : 0;
}

int tf_vif_connect(struct tf_vif *v, const struct tf_vif_opts *o_in, bool expect_fail)
{
	struct tf_vif_opts o = o_in ? *o_in : (struct tf_vif_opts){ .num_queues_key = -1 };
	int r;

	if (o.nqueues == 0)
		o.nqueues = 1;
	if (o.nqueues > TF_MAX_QUEUES)
		return -EINVAL;
	if (!tf_wait_be_state(v, XenbusStateInitWait, 5000))
		return -ETIMEDOUT;
	if (be_unsigned(v, "feature-rx-copy", 0) != 1)
		return -ENODEV;
	if (o.split && !be_unsigned(v, "feature-split-event-channels", 0))
		return -EOPNOTSUPP;
	v->nq = o.nqueues;
	for (unsigned i = 0; i < v->nq; i++)
		if ((r = setup_queue(v, &v->q[i], o.split, o.ec_per_queue)) < 0)
			return r;
	if (o.ctrl_ring && (r = setup_ctrl(v)) < 0)
		return r;
	if (o.bad_ring_prod)
		v->q[0].tx.sring->req_prod = v->q[0].tx.sring->rsp_prod + PV_NET_TX_RING_SIZE + 1;
	for (int tries = 0; tries < 50; tries++) {
		xs_transaction_t t = xs_transaction_start(v->e->xs);

		if (t == XBT_NULL)
			return -errno;
		if ((r = write_keys(v, &o, t)) < 0) {
			xs_transaction_end(v->e->xs, t, true);
			return r;
		}
		if (xs_transaction_end(v->e->xs, t, false))
			break;
		if (errno != EAGAIN)
			return -errno;
	}
	for (unsigned i = 0; i < v->nq && !o.no_rx_post; i++)
		tf_rx_post(v, i, o.rx_post ? o.rx_post : PV_NET_RX_RING_SIZE);
	tf_set_fe_state(v, XenbusStateConnected);
	if (expect_fail)
		return 0;
	if (!tf_wait_be_state(v, XenbusStateConnected, 10000))
		return -ETIMEDOUT;
	v->connected = true;
	return 0;
}

void tf_vif_release(struct tf_vif *v)
{
	for (unsigned i = 0; i < v->nq; i++) {
		struct tf_queue *q = &v->q[i];

		for (unsigned k = 0; k < PV_NET_TX_RING_SIZE; k++)
			ungrant_page(v->d, q->tx_pages[k], q->tx_refs[k]);
		for (unsigned k = 0; k < PV_NET_RX_RING_SIZE; k++)
			ungrant_page(v->d, q->rx_pages[k], q->rx_refs[k]);
		ungrant_page(v->d, q->tx_sring, q->tx_ring_ref);
		ungrant_page(v->d, q->rx_sring, q->rx_ring_ref);
		if (q->ec) {
			(void)pv_evtchn_unbind(q->ec, q->tx_port);
			if (q->rx_port != q->tx_port)
				(void)pv_evtchn_unbind(q->ec, q->rx_port);
			if (q->own_ec)
				pv_evtchn_close(q->ec);
		}
		memset(q, 0, sizeof(*q));
	}
	if (v->ctrl.sring) {
		ungrant_page(v->d, v->ctrl.sring, v->ctrl.ref);
		ungrant_page(v->d, v->ctrl.data, v->ctrl.data_ref);
		(void)pv_evtchn_unbind(v->d->ec, v->ctrl.port);
	}
	memset(&v->ctrl, 0, sizeof(v->ctrl));
	v->nq = 0;
	v->connected = false;
}

void tf_notify(struct tf_vif *v, unsigned q, bool tx)
{
	(void)pv_evtchn_notify(v->q[q].ec, tx ? v->q[q].tx_port : v->q[q].rx_port);
}

grant_ref_t tf_tx_ref(struct tf_vif *v, unsigned q, unsigned slot) { return v->q[q].tx_refs[slot & TX_MASK]; }
uint8_t *tf_tx_page(struct tf_vif *v, unsigned q, unsigned slot) { return v->q[q].tx_pages[slot & TX_MASK]; }

void tf_tx_raw(struct tf_vif *v, unsigned q, const struct netif_tx_request *reqs, unsigned n)
{
	struct tf_queue *tq = &v->q[q];
	int notify;

	for (unsigned i = 0; i < n; i++)
		*RING_GET_REQUEST(&tq->tx, tq->tx.req_prod_pvt++) = reqs[i];
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&tq->tx, notify);
	if (notify)
		tf_notify(v, q, true);
}

int tf_tx_responses(struct tf_vif *v, unsigned q, netif_tx_response_t *out, unsigned max, unsigned want,
		    int timeout_ms)
{
	struct tf_queue *tq = &v->q[q];
	uint64_t end = pv_now_ns() + (uint64_t)timeout_ms * 1000000u;
	unsigned got = 0;

	for (;;) {
		RING_IDX rp = __atomic_load_n(&tq->tx.sring->rsp_prod, __ATOMIC_ACQUIRE);
		int more;

		while (tq->tx.rsp_cons != rp && got < max)
			out[got++] = *RING_GET_RESPONSE(&tq->tx, tq->tx.rsp_cons++);
		RING_FINAL_CHECK_FOR_RESPONSES(&tq->tx, more);
		if (got >= want || got >= max || (!more && pv_now_ns() >= end))
			return (int)got;
		if (!more)
			pv_sleep_ns(200000);
	}
}

int tf_tx(struct tf_vif *v, unsigned q, const uint8_t *frame, size_t len, uint16_t flags,
	  const struct netif_extra_info *gso, size_t slot_size, int16_t *status)
{
	struct tf_queue *tq = &v->q[q];
	struct netif_tx_request reqs[40] = { 0 };
	netif_tx_response_t rsp[40];
	unsigned n = 0, nchunks;
	size_t off = 0;
	RING_IDX idx = tq->tx.req_prod_pvt;

	if (!slot_size || slot_size > PV_PAGE_SIZE)
		slot_size = PV_PAGE_SIZE;
	if (len > 65535)
		return -EMSGSIZE;
	nchunks = len ? (unsigned)((len + slot_size - 1) / slot_size) : 1;
	if (nchunks > 36)
		return -E2BIG;
	for (unsigned k = 0; k < nchunks; k++) {
		size_t chunk = len - off < slot_size ? len - off : slot_size;
		RING_IDX slot = idx + n;

		memcpy(tf_tx_page(v, q, slot), frame + off, chunk);
		reqs[n] = (struct netif_tx_request){ .gref = tf_tx_ref(v, q, slot), .offset = 0,
						     .id = (uint16_t)(slot & TX_MASK), .size = (uint16_t)chunk };
		if (k == 0) {
			reqs[n].size = (uint16_t)len;
			reqs[n].flags = flags | (gso ? NETTXF_extra_info : 0);
		}
		if (k + 1 < nchunks)
			reqs[n].flags |= NETTXF_more_data;
		n++;
		if (k == 0 && gso) {
			memset(&reqs[n], 0, sizeof(reqs[n]));
			memcpy(&reqs[n], gso, sizeof(*gso));
			n++;
		}
		off += chunk;
	}
	if (RING_FREE_REQUESTS(&tq->tx) < n)
		return -ENOSPC;
	tf_tx_raw(v, q, reqs, n);
	if (tf_tx_responses(v, q, rsp, n, n, 5000) != (int)n)
		return -ETIMEDOUT;
	for (unsigned i = 0; i < n; i++) {
		bool extra = gso && i == 1;

		if (extra ? rsp[i].status != NETIF_RSP_NULL : rsp[i].id != reqs[i].id)
			return -EPROTO;
	}
	*status = rsp[0].status;
	return 0;
}

void tf_rx_post(struct tf_vif *v, unsigned q, unsigned n)
{
	struct tf_queue *tq = &v->q[q];
	int notify;

	for (unsigned i = 0; i < n && RING_FREE_REQUESTS(&tq->rx) > 0; i++) {
		RING_IDX idx = tq->rx.req_prod_pvt++;
		netif_rx_request_t *req = RING_GET_REQUEST(&tq->rx, idx);

		req->id = (uint16_t)(idx & RX_MASK);
		req->gref = tq->rx_refs[idx & RX_MASK];
	}
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&tq->rx, notify);
	if (notify)
		tf_notify(v, q, false);
}

void tf_rx_post_ref(struct tf_vif *v, unsigned q, grant_ref_t ref)
{
	struct tf_queue *tq = &v->q[q];
	RING_IDX idx = tq->rx.req_prod_pvt++;
	netif_rx_request_t *req = RING_GET_REQUEST(&tq->rx, idx);

	req->id = (uint16_t)(idx & RX_MASK);
	req->gref = ref;
}

/* One complete packet at rsp_cons of queue q, if all its responses are in. */
static bool rx_one(struct tf_vif *v, unsigned q, uint8_t *buf, size_t cap, struct tf_rxinfo *info)
{
	struct tf_queue *tq = &v->q[q];
	RING_IDX rp = __atomic_load_n(&tq->rx.sring->rsp_prod, __ATOMIC_ACQUIRE), i = tq->rx.rsp_cons;
	bool first = true, more = true, extra;

	memset(info, 0, sizeof(*info));
	if (i == rp)
		return false;
	while (more) {
		netif_rx_response_t rsp;

		if (i == rp)
			return false;  /* not complete yet */
		rsp = *RING_GET_RESPONSE(&tq->rx, i);
		i++;
		if (rsp.status < 0) {
			if (!info->error)
				info->error = rsp.status;
			if (first)
				info->flags = rsp.flags;
			more = first ? false : (rsp.flags & NETRXF_more_data);
			first = false;
			continue;
		}
		if (info->len + (size_t)rsp.status <= cap && rsp.offset + (unsigned)rsp.status <= PV_PAGE_SIZE)
			memcpy(buf + info->len, tq->rx_pages[(i - 1) & RX_MASK] + rsp.offset, (size_t)rsp.status);
		info->len += (size_t)rsp.status;
		more = rsp.flags & NETRXF_more_data;
		extra = first && (rsp.flags & NETRXF_extra_info);
		if (first)
			info->flags = rsp.flags;
		first = false;
		while (extra) {
			struct netif_extra_info ex;

			if (i == rp)
				return false;
			memcpy(&ex, RING_GET_RESPONSE(&tq->rx, i), sizeof(ex));
			i++;
			if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
				info->has_gso = true;
				info->gso = ex;
			} else if (ex.type == XEN_NETIF_EXTRA_TYPE_HASH) {
				info->has_hash = true;
				info->hash = ex;
			}
			extra = ex.flags & XEN_NETIF_EXTRA_FLAG_MORE;
		}
	}
	info->nslots = i - tq->rx.rsp_cons;
	tq->rx.rsp_cons = i;
	tf_rx_post(v, q, info->nslots);
	return true;
}

int tf_rx_recv(struct tf_vif *v, int q, uint8_t *buf, size_t cap, struct tf_rxinfo *info, int timeout_ms)
{
	uint64_t end = pv_now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		for (unsigned k = 0; k < v->nq; k++) {
			int more;

			if (q >= 0 && (unsigned)q != k)
				continue;
			if (rx_one(v, k, buf, cap, info))
				return (int)k;
			RING_FINAL_CHECK_FOR_RESPONSES(&v->q[k].rx, more);
			(void)more;
		}
		if (pv_now_ns() >= end)
			return -ETIMEDOUT;
		pv_sleep_ns(200000);
	}
}

/* ---- the control ring -------------------------------------------------------- */

int tf_ctrl(struct tf_vif *v, uint16_t type, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t *data,
	    int timeout_ms)
{
	struct tf_ctrl *c = &v->ctrl;
	struct xen_netif_ctrl_request *req;
	struct xen_netif_ctrl_response rsp;
	uint16_t id = ++c->next_id;
	uint64_t end = pv_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int notify;

	if (!c->sring)
		return -ENODEV;
	req = RING_GET_REQUEST(&c->ring, c->ring.req_prod_pvt);
	*req = (struct xen_netif_ctrl_request){ .id = id, .type = type, .data = { d0, d1, d2 } };
	c->ring.req_prod_pvt++;
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&c->ring, notify);
	if (notify)
		(void)pv_evtchn_notify(v->d->ec, c->port);
	while (!RING_HAS_UNCONSUMED_RESPONSES(&c->ring)) {
		if (pv_now_ns() >= end)
			return -ETIMEDOUT;
		usleep(500);
	}
	rmb();
	rsp = *RING_GET_RESPONSE(&c->ring, c->ring.rsp_cons);
	c->ring.rsp_cons++;
	if (rsp.id != id || rsp.type != type)
		return -EPROTO;
	if (data)
		*data = rsp.data;
	return (int)rsp.status;
}

void tf_ctrl_push(struct tf_vif *v, uint16_t type, unsigned n)
{
	struct tf_ctrl *c = &v->ctrl;

	for (unsigned i = 0; i < n; i++) {
		*RING_GET_REQUEST(&c->ring, c->ring.req_prod_pvt) =
			(struct xen_netif_ctrl_request){ .id = ++c->next_id, .type = type };
		c->ring.req_prod_pvt++;
	}
	RING_PUSH_REQUESTS(&c->ring);
}

void tf_ctrl_raw_prod(struct tf_vif *v, RING_IDX prod)
{
	__atomic_store_n(&((xen_netif_ctrl_sring_t *)v->ctrl.sring)->req_prod, prod, __ATOMIC_RELEASE);
	(void)pv_evtchn_notify(v->d->ec, v->ctrl.port);
}

/* ---- frames ---------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static size_t mk_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
	return 14;
}

static size_t mk_ip4(uint8_t *f, size_t l4len, uint8_t proto)
{
	memset(f, 0, 20);
	f[0] = 0x45;
	put16(f + 2, (uint16_t)(20 + l4len));
	f[6] = 0x40;  /* DF */
	f[8] = 64;
	f[9] = proto;
	f[12] = 10; f[13] = 0; f[14] = 0; f[15] = 1;
	f[16] = 10; f[17] = 0; f[18] = 0; f[19] = 2;
	{
		uint32_t s = 0;
		for (int i = 0; i < 20; i += 2)
			s += get16(f + i);
		while (s >> 16)
			s = (s & 0xffff) + (s >> 16);
		put16(f + 10, (uint16_t)~s);
	}
	return 20;
}

static void payload(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 13 + (i >> 8));
}

size_t tf_mk_udp4(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], size_t pl, uint8_t seed)
{
	size_t o = mk_eth(f, dst, src, 0x0800);

	o += mk_ip4(f + o, 8 + pl, 17);
	put16(f + o, 4000); put16(f + o + 2, 5000); put16(f + o + 4, (uint16_t)(8 + pl)); put16(f + o + 6, 0);
	payload(f + o + 8, pl, seed);
	return o + 8 + pl;
}

static size_t mk_tcp(uint8_t *f, size_t pl, uint8_t seed)
{
	memset(f, 0, 20);
	put16(f, 4000); put16(f + 2, 5001);
	f[7] = 1;           /* seq */
	f[12] = 5 << 4;
	f[13] = 0x18;       /* PSH ACK */
	put16(f + 14, 65535);
	payload(f + 20, pl, seed);
	return 20 + pl;
}

size_t tf_mk_tcp4(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], size_t pl, uint8_t seed)
{
	size_t o = mk_eth(f, dst, src, 0x0800);

	o += mk_ip4(f + o, 20 + pl, 6);
	return o + mk_tcp(f + o, pl, seed);
}

size_t tf_mk_tcp6(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], size_t pl, uint8_t seed)
{
	size_t o = mk_eth(f, dst, src, 0x86DD);

	memset(f + o, 0, 40);
	f[o] = 0x60;
	put16(f + o + 4, (uint16_t)(20 + pl));
	f[o + 6] = 6;
	f[o + 7] = 64;
	f[o + 8] = 0xfd; f[o + 23] = 1;
	f[o + 24] = 0xfd; f[o + 39] = 2;
	o += 40;
	return o + mk_tcp(f + o, pl, seed);
}

/* Sum of the pseudo-header and the L4 segment with its checksum field. */
static bool l4_sum(const uint8_t *f, size_t len, size_t *field, uint32_t *pseudo, uint32_t *all)
{
	size_t l3 = 14, l4;
	uint32_t s = 0, p = 0;
	uint8_t proto;
	size_t l4len;

	if (len < 14 + 20)
		return false;
	if (get16(f + 12) == 0x0800) {
		l4 = l3 + (size_t)(f[l3] & 0xf) * 4;
		proto = f[l3 + 9];
		for (int i = 12; i < 20; i += 2)
			p += get16(f + l3 + (size_t)i);
	} else if (get16(f + 12) == 0x86DD) {
		l4 = l3 + 40;
		proto = f[l3 + 6];
		for (int i = 8; i < 40; i += 2)
			p += get16(f + l3 + (size_t)i);
	} else {
		return false;
	}
	if (l4 >= len)
		return false;
	l4len = len - l4;
	p += proto + (uint32_t)l4len;
	*field = l4 + (proto == 6 ? 16 : 6);
	for (size_t i = l4; i + 1 < len; i += 2)
		s += get16(f + i);
	if (l4len & 1)
		s += (uint32_t)f[len - 1] << 8;
	*pseudo = p;
	*all = s + p;
	return *field + 2 <= len;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

void tf_l4_csum(uint8_t *f, size_t len, bool partial)
{
	size_t field;
	uint32_t pseudo, all;

	if (!l4_sum(f, len, &field, &pseudo, &all))
		return;
	put16(f + field, 0);
	if (partial) {
		put16(f + field, fold(pseudo));
		return;
	}
	l4_sum(f, len, &field, &pseudo, &all);
	put16(f + field, (uint16_t)~fold(all));
}

bool tf_l4_csum_ok(const uint8_t *f, size_t len)
{
	size_t field;
	uint32_t pseudo, all;

	return l4_sum(f, len, &field, &pseudo, &all) && fold(all) == 0xffff;
}
