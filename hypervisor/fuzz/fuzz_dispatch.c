/*
 * libFuzzer target: the hypervisor's request decoder and dispatcher, driven
 * with arbitrary messages from dom0 and from domU connections, interleaved
 * with arbitrary writes of the granters into their grant tables (which a
 * hostile guest can do at any time). After every step the model's invariants
 * are checked (pins, handles, ports); at the end everything is freed, so
 * ASan reports any leak.
 *
 * Input: a sequence of records [sel][len lo][len hi][len bytes].
 *   sel & 0x80: a grant-table write: the domain is (sel >> 2) % 3, the bytes
 *               are ref (2), flags (2), domid (2), frame (4).
 *   otherwise:  a message from connection sel & 3 (dom0, d1, d2, another d1
 *               connection); sel & 0x40 attaches a fresh sealed 64-page
 *               memfd (what an import carries).
 * A connection waiting for a late reply is not read, as in the daemon.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hypervisor/hvd.h"

static const uint32_t slot_domid[4] = { 0, 1, 2, 1 };

static bool alive(struct hvd *h, struct hvd_conn *c)
{
	for (struct hvd_conn *x = h->conns; x; x = x->next)
		if (x == c)
			return true;
	return false;
}

static int sealed_memfd(void)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd >= 0 && ftruncate(fd, 64 * PV_PAGE_SIZE) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void grant_write(struct hvd *h, unsigned dom, const uint8_t *p, size_t len)
{
	struct hvd_domain *d = hvd_domain_get(h, dom);
	uint16_t ref, flags, domid;
	uint32_t frame;

	if (!d || !d->gt.shared || len < 10)
		return;
	memcpy(&ref, p, 2);
	memcpy(&flags, p + 2, 2);
	memcpy(&domid, p + 4, 2);
	memcpy(&frame, p + 6, 4);
	ref %= d->gt.nr_entries;
	d->gt.shared[ref].domid = domid;
	d->gt.shared[ref].frame = frame;
	__atomic_store_n(&d->gt.shared[ref].flags, flags, __ATOMIC_RELEASE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hvd_opts o = { .mem_pages = 64, .dom0_mem_pages = 64, .grant_frames = 1,
			      .max_maptrack = 64, .max_ports = 16, .dom0_max_ports = 16 };
	struct hvp_domcfg cfg = { 0 };
	struct hvd_conn *c[4] = { 0 };
	struct hvd_domain *d;
	struct hvd *h;

	pv_log_set_level(PV_LOG_ERR);
	h = hvd_new(&o, NULL);
	if (!h)
		abort();
	if (hvd_domain_create(h, &cfg, &d) < 0 || hvd_domain_create(h, &cfg, &d) < 0)
		abort();

	while (size >= 3) {
		uint8_t sel = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (sel & 0x80) {
			grant_write(h, (sel >> 2) % 3, data, len);
		} else {
			unsigned k = sel & 3;
			int fd = -1;

			if (c[k] && !alive(h, c[k]))
				c[k] = NULL;
			if (!c[k] && (d = hvd_domain_get(h, slot_domid[k])))
				c[k] = hvd_conn_new(h, d, -1);
			if (c[k] && !c[k]->paused) {
				if (sel & 0x40)
					fd = sealed_memfd();
				if (len > sizeof(h->rx.bytes))
					len = sizeof(h->rx.bytes);
				memcpy(h->rx.bytes, data, len);
				hvd_dispatch(c[k], len, &fd, fd >= 0 ? 1 : 0);
			}
		}
		data += len;
		size -= len;
		if (hvd_check(h) < 0)
			abort();
	}
	hvd_free(h);
	return 0;
}
