#include "toolstack/domain.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "toolstack/tsx.h"

#define P(fmt, ...) (snprintf(path, sizeof(path), fmt, __VA_ARGS__), path)

/* Run `body` in a transaction, retrying on EAGAIN (up to 100 times). */
static int in_transaction(struct xs_handle *h, bool (*body)(struct xs_handle *, xs_transaction_t, const void *),
			  const void *arg)
{
	for (int tries = 0; tries < 100; tries++) {
		xs_transaction_t t = xs_transaction_start(h);
		bool ok;
		if (t == XBT_NULL)
			return -errno;
		ok = body(h, t, arg);
		if (!ok) {
			int e = errno;
			xs_transaction_end(h, t, true);
			return -e;
		}
		if (xs_transaction_end(h, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

static bool skeleton(struct xs_handle *h, xs_transaction_t t, const void *arg)
{
	const struct dom_spec *d = arg;
	char path[256], ro[32], own[16];
	const char *const ro_dirs[] = { "cpu", "memory", "control", "device" };
	const char *const own_dirs[] = { "data", "drivers", "feature", "attr", "error" };
	const char *const ctl_own[] = { "shutdown", "feature-poweroff", "feature-reboot",
					"feature-suspend", "sysrq" };
	unsigned D = d->domid;

	snprintf(ro, sizeof(ro), "n0 r%u", D);
	snprintf(own, sizeof(own), "n%u", D);
	/* A fresh domain: no stale keys from an earlier domain with this id. */
	xs_rm(h, t, P("/local/domain/%u", D));
	if (!xs_mkdir(h, t, P("/local/domain/%u", D)) || !tsx_perms(h, t, path, ro))
		return false;
	if (!tsx_write(h, t, P("/vm/%s/uuid", d->uuid), "%s", d->uuid) ||
	    !tsx_write(h, t, P("/vm/%s/name", d->uuid), "%s", d->name) ||
	    !tsx_perms(h, t, P("/vm/%s", d->uuid), ro))
		return false;
	xs_rm(h, t, P("/libxl/%u", D));
	if (!xs_mkdir(h, t, P("/libxl/%u/device", D)) || !tsx_perms(h, t, P("/libxl/%u", D), "n0") ||
	    !tsx_perms(h, t, P("/libxl/%u/device", D), "n0") ||
	    !tsx_write(h, t, P("/libxl/%u/type", D), "pv"))
		return false;
	for (unsigned i = 0; i < 4; i++)
		if (!xs_mkdir(h, t, P("/local/domain/%u/%s", D, ro_dirs[i])) || !tsx_perms(h, t, path, ro))
			return false;
	for (unsigned i = 0; i < 5; i++)
		if (!xs_mkdir(h, t, P("/local/domain/%u/%s", D, own_dirs[i])) || !tsx_perms(h, t, path, own))
			return false;
	for (unsigned i = 0; i < 5; i++)
		if (!xs_write(h, t, P("/local/domain/%u/control/%s", D, ctl_own[i]), "", 0) ||
		    !tsx_perms(h, t, path, own))
			return false;
	if (!xs_mkdir(h, t, P("/local/domain/%u/device/suspend/event-channel", D)) || !tsx_perms(h, t, path, own))
		return false;
	return tsx_write(h, t, P("/local/domain/%u/control/platform-feature-multiprocessor-suspend", D), "1") &&
	       tsx_write(h, t, P("/local/domain/%u/control/platform-feature-xs_reset_watches", D), "1") &&
	       tsx_write(h, t, P("/local/domain/%u/vm", D), "/vm/%s", d->uuid) &&
	       tsx_write(h, t, P("/local/domain/%u/name", D), "%s", d->name) &&
	       tsx_write(h, t, P("/local/domain/%u/domid", D), "%u", D) &&
	       tsx_write(h, t, P("/local/domain/%u/memory/static-max", D), "%u", d->mem_kb) &&
	       tsx_write(h, t, P("/local/domain/%u/memory/target", D), "%u", d->mem_kb) &&
	       tsx_write(h, t, P("/local/domain/%u/memory/videoram", D), "-1") &&
	       tsx_write(h, t, P("/local/domain/%u/cpu/0/availability", D), "online") &&
	       /* The xenstore link is a per-domain socket; ring-ref and port
		* keep libxl's layout (the reserved grant and a placeholder port). */
	       tsx_write(h, t, P("/local/domain/%u/store/ring-ref", D), "%u", 1u) &&
	       tsx_write(h, t, P("/local/domain/%u/store/port", D), "%u", 1u);
}

int dom_write_skeleton(struct xs_handle *h, const struct dom_spec *d)
{
	return in_transaction(h, skeleton, d);
}

int dom_introduce(struct xs_handle *h, const struct dom_spec *d)
{
	return xs_introduce_domain(h, d->domid, 1, 1) ? 0 : -errno;
}

struct vif_arg {
	const struct dom_spec *d;
	const struct dom_vif *v;
};

static bool vif_body(struct xs_handle *h, xs_transaction_t t, const void *arg)
{
	const struct dom_spec *d = ((const struct vif_arg *)arg)->d;
	const struct dom_vif *v = ((const struct vif_arg *)arg)->v;
	char path[256], fe[128], be[128], lx[128], fe_perm[32], be_perm[32];
	unsigned D = d->domid, B = d->backend_domid, N = v->devid;
	struct { const char *k; char val[160]; } bk[12];
	unsigned nb = 0;

	snprintf(fe, sizeof(fe), "/local/domain/%u/device/vif/%u", D, N);
	snprintf(be, sizeof(be), "/local/domain/%u/backend/vif/%u/%u", B, D, N);
	snprintf(lx, sizeof(lx), "/libxl/%u/device/vif/%u", D, N);
	snprintf(fe_perm, sizeof(fe_perm), "n%u r%u", D, B);
	snprintf(be_perm, sizeof(be_perm), "n%u r%u", B, D);

	/* libxl rm's and re-creates both directories before writing. */
	xs_rm(h, t, fe);
	xs_rm(h, t, be);
	xs_rm(h, t, lx);
	if (!xs_mkdir(h, t, fe) || !tsx_perms(h, t, fe, fe_perm) ||
	    !xs_mkdir(h, t, be) || !tsx_perms(h, t, be, be_perm))
		return false;
	if (!tsx_write(h, t, P("%s/backend", fe), "%s", be) ||
	    !tsx_write(h, t, P("%s/backend-id", fe), "%u", B) || !tsx_perms(h, t, path, fe_perm) ||
	    !tsx_write(h, t, P("%s/state", fe), "1") ||
	    !tsx_write(h, t, P("%s/handle", fe), "%u", N) ||
	    !tsx_write(h, t, P("%s/mac", fe), "%s", v->mac) ||
	    !tsx_write(h, t, P("%s/trusted", fe), "1"))
		return false;
	if (v->mtu && (!tsx_write(h, t, P("%s/mtu", fe), "%u", v->mtu) || !tsx_perms(h, t, path, be_perm)))
		return false;

#define BK(key, ...) (bk[nb].k = key, snprintf(bk[nb].val, sizeof(bk[nb].val), __VA_ARGS__), nb++)
	BK("frontend", "%s", fe);
	BK("frontend-id", "%u", D);
	BK("online", "1");
	BK("state", "1");
	BK("script", "/etc/xen/scripts/vif-bridge");
	BK("mac", "%s", v->mac);
	BK("bridge", "%s", v->bridge);
	BK("handle", "%u", N);
	BK("type", "vif");
	BK("hotplug-status", "%s", "");
	if (v->ips[0])
		BK("ip", "%s", v->ips);
	if (v->mtu)
		BK("mtu", "%u", v->mtu);
#undef BK
	for (unsigned i = 0; i < nb; i++)
		if (!tsx_write(h, t, P("%s/%s", be, bk[i].k), "%s", bk[i].val) ||
		    !tsx_write(h, t, P("%s/%s", lx, bk[i].k), "%s", bk[i].val))
			return false;
	return tsx_write(h, t, P("%s/frontend", lx), "%s", fe) &&
	       tsx_write(h, t, P("%s/backend", lx), "%s", be);
}

int dom_write_vif(struct xs_handle *h, const struct dom_spec *d, const struct dom_vif *v)
{
	struct vif_arg a = { d, v };
	return in_transaction(h, vif_body, &a);
}

struct close_arg {
	const char *be;
};

static bool close_body(struct xs_handle *h, xs_transaction_t t, const void *arg)
{
	const char *be = ((const struct close_arg *)arg)->be;
	char path[256], *st;
	bool ok;

	snprintf(path, sizeof(path), "%s/state", be);
	st = tsx_read(h, t, path);
	if (!st) /* already gone */
		return errno == ENOENT;
	ok = tsx_write(h, t, P("%s/online", be), "0");
	if (ok && strcmp(st, "6"))
		ok = tsx_write(h, t, P("%s/state", be), "5");
	free(st);
	return ok;
}

int dom_remove_vif(struct xs_handle *h, const struct dom_spec *d, unsigned devid, int timeout_ms)
{
	char be[128], fe[128], lx[128], st[160];
	struct close_arg a = { be };
	int r = 0;

	snprintf(fe, sizeof(fe), "/local/domain/%u/device/vif/%u", d->domid, devid);
	snprintf(be, sizeof(be), "/local/domain/%u/backend/vif/%u/%u", d->backend_domid, d->domid, devid);
	snprintf(lx, sizeof(lx), "/libxl/%u/device/vif/%u", d->domid, devid);
	if (timeout_ms > 0 && in_transaction(h, close_body, &a) == 0) {
		snprintf(st, sizeof(st), "%s/state", be);
		r = tsx_wait_value(h, st, "6", timeout_ms);
	}
	xs_rm(h, XBT_NULL, fe);
	xs_rm(h, XBT_NULL, be);
	xs_rm(h, XBT_NULL, lx);
	return r;
}

int dom_remove_domain(struct xs_handle *h, const struct dom_spec *d)
{
	char path[256];
	int r = 0;

	if (!xs_release_domain(h, d->domid) && errno != ENOENT)
		r = -errno;
	xs_rm(h, XBT_NULL, P("/local/domain/%u", d->domid));
	if (d->uuid[0])
		xs_rm(h, XBT_NULL, P("/vm/%s", d->uuid));
	xs_rm(h, XBT_NULL, P("/libxl/%u", d->domid));
	/* Empty per-domain backend parents (backend/vif/<D>). */
	xs_rm(h, XBT_NULL, P("/local/domain/%u/backend/vif/%u", d->backend_domid, d->domid));
	return r;
}

void dom_new_uuid(char out[37])
{
	unsigned char b[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
		for (unsigned i = 0; i < 16; i++)
			b[i] = (unsigned char)rand();
	if (fd >= 0)
		close(fd);
	b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}
