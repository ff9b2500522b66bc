#include "netif/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/util.h"

static int tap_open_queue(const char *name, char *actual)
{
	struct ifreq ifr;
	int fd, hdr = NIF_VNET_HDR_LEN;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
	pv_strlcpy(ifr.ifr_name, name, IFNAMSIZ);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (actual)
		pv_strlcpy(actual, ifr.ifr_name, IFNAMSIZ);
	return fd;
}

int nif_tap_create(struct nif_tap *tap, const char *name, unsigned nqueues)
{
	int r;

	memset(tap, 0, sizeof(*tap));
	for (unsigned i = 0; i < NIF_TAP_MAX_QUEUES; i++)
		tap->fds[i] = -1;
	if (nqueues == 0 || nqueues > NIF_TAP_MAX_QUEUES || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	if (if_nametoindex(name) != 0)
		return -EEXIST;
	for (unsigned i = 0; i < nqueues; i++) {
		r = tap_open_queue(name, i == 0 ? tap->name : NULL);
		if (r < 0) {
			nif_tap_close(tap);
			return r;
		}
		tap->fds[i] = r;
		tap->nqueues = i + 1;
	}
	tap->ifindex = (int)if_nametoindex(tap->name);
	if (tap->ifindex == 0) {
		r = -errno;
		nif_tap_close(tap);
		return r;
	}
	return 0;
}

void nif_tap_close(struct nif_tap *tap)
{
	for (unsigned i = 0; i < NIF_TAP_MAX_QUEUES; i++) {
		if (tap->fds[i] >= 0)
			close(tap->fds[i]);
		tap->fds[i] = -1;
	}
	tap->nqueues = 0;
}

int nif_tap_set_offload(struct nif_tap *tap, unsigned tun_flags)
{
	int r = -EBADF;

	/* Device-wide in the kernel (set_offload updates the netdev's
	 * features): once, through any attached queue. */
	for (unsigned i = 0; i < tap->nqueues; i++) {
		if (ioctl(tap->fds[i], TUNSETOFFLOAD, (unsigned long)tun_flags) == 0)
			return 0;
		r = -errno;
		if (r != -EBADFD)
			return r;
	}
	return r;
}

int nif_tap_set_carrier(struct nif_tap *tap, bool on)
{
	int v = on;
	if (tap->nqueues == 0)
		return -EBADF;
	return ioctl(tap->fds[0], TUNSETCARRIER, &v) < 0 ? -errno : 0;
}

int nif_tap_queue_enable(struct nif_tap *tap, unsigned q, bool on)
{
	struct ifreq ifr;

	if (q >= tap->nqueues)
		return -EINVAL;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	/* EINVAL: already in that state. */
	if (ioctl(tap->fds[q], TUNSETQUEUE, &ifr) < 0)
		return errno == EINVAL ? 0 : -errno;
	return 0;
}
