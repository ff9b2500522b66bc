/*
 * nb-relay: the baseline of netback's benchmark — a plain TAP-to-TAP relay
 * making the same syscalls as the netback data path without any ring: per
 * queue, one thread reads a frame from one TAP (readv: virtio-net header +
 * buffer) and writes it to the other (writev), in both directions, with the
 * same offloads (partial checksums, TSO4/6) so GSO frames go through whole.
 *
 * usage: nb-relay --queues N --a NAME --b NAME [--bridge BR]
 * Creates both TAPs (N queues each) in the current network namespace,
 * enslaves B to BR if given, prints "ready" and relays until SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "common/util.h"
#include "netif/link.h"
#include "netif/tap.h"

#define BUF (64 * 1024 + 4096)

static volatile sig_atomic_t stop;
static struct nif_tap ta, tb;

static void on_sig(int s) { (void)s; stop = 1; }

/* Move what is readable on `from` to `to`; at most 64 frames per call. */
static void pump(int from, int to, uint8_t *buf)
{
	for (int i = 0; i < 64; i++) {
		struct virtio_net_hdr vh;
		struct iovec iov[2] = { { &vh, sizeof(vh) }, { buf, BUF } };
		ssize_t n = readv(from, iov, 2);

		if (n <= (ssize_t)sizeof(vh))
			return;
		iov[1].iov_len = (size_t)n - sizeof(vh);
		if (writev(to, iov, 2) < 0 && errno != EAGAIN && errno != EIO)
			return;
	}
}

static void *worker(void *arg)
{
	unsigned q = (unsigned)(uintptr_t)arg;
	uint8_t *buf = malloc(BUF);

	while (!stop && buf) {
		struct pollfd p[2] = { { .fd = ta.fds[q], .events = POLLIN }, { .fd = tb.fds[q], .events = POLLIN } };

		if (poll(p, 2, 200) <= 0)
			continue;
		if (p[0].revents & POLLIN)
			pump(ta.fds[q], tb.fds[q], buf);
		if (p[1].revents & POLLIN)
			pump(tb.fds[q], ta.fds[q], buf);
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "queues", required_argument, 0, 'q' }, { "a", required_argument, 0, 'a' },
		{ "b", required_argument, 0, 'b' }, { "bridge", required_argument, 0, 'B' }, { 0, 0, 0, 0 },
	};
	const char *a = NULL, *b = NULL, *br = NULL;
	unsigned nq = 1, flags = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
	pthread_t th[NIF_TAP_MAX_QUEUES];
	int opt, r;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'q': nq = (unsigned)atoi(optarg); break;
		case 'a': a = optarg; break;
		case 'b': b = optarg; break;
		case 'B': br = optarg; break;
		default: return 2;
		}
	}
	if (!a || !b || nq < 1 || nq > NIF_TAP_MAX_QUEUES) {
		fprintf(stderr, "usage: nb-relay --queues N --a NAME --b NAME [--bridge BR]\n");
		return 2;
	}
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	if ((r = nif_tap_create(&ta, a, nq)) < 0 || (r = nif_tap_create(&tb, b, nq)) < 0 ||
	    (r = nif_tap_set_offload(&ta, flags)) < 0 || (r = nif_tap_set_offload(&tb, flags)) < 0 ||
	    (br && (r = nif_link_set_master(tb.ifindex, nif_link_index(br))) < 0) ||
	    (r = nif_link_set_up(tb.ifindex, true)) < 0) {
		fprintf(stderr, "nb-relay: %s\n", strerror(-r));
		return 1;
	}
	for (unsigned q = 0; q < nq; q++)
		pthread_create(&th[q], NULL, worker, (void *)(uintptr_t)q);
	printf("ready\n");
	fflush(stdout);
	for (unsigned q = 0; q < nq; q++)
		pthread_join(th[q], NULL);
	nif_tap_close(&ta);
	nif_tap_close(&tb);
	return 0;
}
