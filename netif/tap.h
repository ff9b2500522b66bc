/*
 * netif/tap.h — multi-queue TAP devices with a virtio-net header.
 *
 * What: create (or attach to) a TAP whose every queue is one fd, with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE; each packet read or
 * written is prefixed by a struct virtio_net_hdr (sizeof = 10). The offloads
 * set with nif_tap_set_offload() say what the kernel may hand us (partial
 * checksums, TSO4/TSO6); we may always write such packets to it.
 * Queues can be detached/attached (TUNSETQUEUE), which is how the number of
 * active netif queues is mirrored onto the TAP; carrier follows TUNSETCARRIER.
 * The device lives in the network namespace of the calling thread.
 * Thread: any; the fds are the caller's to use from any thread.
 * Errors: 0 / fd on success, -errno on failure.
 * Ownership: nif_tap_close() closes the fds; the device disappears with its
 * last fd unless it was made persistent.
 */
#ifndef PVNET_NETIF_TAP_H
#define PVNET_NETIF_TAP_H

#include <stdbool.h>
#include <net/if.h>
#include <linux/if_tun.h>

#define NIF_TAP_MAX_QUEUES 16
#define NIF_VNET_HDR_LEN 10

struct nif_tap {
	char name[IFNAMSIZ];
	int ifindex;
	unsigned nqueues;
	int fds[NIF_TAP_MAX_QUEUES];
};

/* Create `name` (must not exist) with `nqueues` queues. Fds are O_NONBLOCK
 * and O_CLOEXEC. */
int nif_tap_create(struct nif_tap *tap, const char *name, unsigned nqueues);
void nif_tap_close(struct nif_tap *tap);
/* TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 for the device (one ioctl through
 * the first attached queue; -EBADFD if none is attached). */
int nif_tap_set_offload(struct nif_tap *tap, unsigned tun_flags);
int nif_tap_set_carrier(struct nif_tap *tap, bool on);
/* Detach (false) or re-attach (true) queue q; 0 if it already is. Detaching
 * purges what the kernel queued on it, so drain it first; it costs an RCU
 * grace period (synchronize_net), attaching does not. */
int nif_tap_queue_enable(struct nif_tap *tap, unsigned q, bool on);

#endif
