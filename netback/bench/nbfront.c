/*
 * nb-front: a minimal pipelined frontend for netback's benchmark, standing
 * in for pvnet's netfront until the guest runtime is available. It starts a
 * private host (tfront.c: pvnet-xenstored, pvnet-hypervisor, pvnet-netback,
 * bridge xenbr0), connects one vif with N queues like Linux netfront
 * (split channels, sg, gso, csum offload, rx-notify), creates the guest's
 * TAP and relays between that TAP and the rings, one thread per queue:
 *   guest TAP -> readv straight into granted pages -> tx requests (GSO extra
 *   from the virtio-net header) -> netback;
 *   netback -> rx responses -> writev straight from the granted pages -> TAP.
 * Notifications follow the rings' event indices both ways.
 *
 * usage: nb-front --queues N --tap NAME [--netback-args "..."]
 * Prints "ready" once connected (move NAME into the guest namespace then)
 * and runs until SIGTERM.
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

#include "common/util.h"
#include "netback/tests/tfront.h"
#include "netif/offload.h"
#include "netif/tap.h"

#define TXR PV_NET_TX_RING_SIZE
#define RXR PV_NET_RX_RING_SIZE
#define MAX_PAGES 17u

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

struct fq {
	struct tf_vif *v;
	unsigned q;
	int tapfd;
	uint64_t pages_used, pages_freed;    /* tx page pool (FIFO over tx_pages[]) */
	uint16_t pkt_slots[TXR], pkt_pages[TXR];
	unsigned pkt_head, pkt_tail, head_left;
};

static uint8_t *pool_page(struct fq *f, uint64_t n) { return f->v->q[f->q].tx_pages[n % TXR]; }
static grant_ref_t pool_ref(struct fq *f, uint64_t n) { return f->v->q[f->q].tx_refs[n % TXR]; }

/* guest TAP -> tx ring. */
static void tx_xmit(struct fq *f)
{
	struct tf_queue *tq = &f->v->q[f->q];
	bool pushed = false;
	int notify;

	while (RING_FREE_REQUESTS(&tq->tx) >= MAX_PAGES + 2 && TXR - (f->pages_used - f->pages_freed) >= MAX_PAGES) {
		struct virtio_net_hdr vh;
		struct iovec iov[1 + MAX_PAGES];
		struct nif_offload o;
		ssize_t n;
		size_t len, left;
		unsigned npages, slots = 0;

		iov[0] = (struct iovec){ &vh, sizeof(vh) };
		for (unsigned k = 0; k < MAX_PAGES; k++)
			iov[1 + k] = (struct iovec){ pool_page(f, f->pages_used + k), PV_PAGE_SIZE };
		n = readv(f->tapfd, iov, 1 + MAX_PAGES);
		if (n <= (ssize_t)sizeof(vh))
			break;
		len = (size_t)n - sizeof(vh);
		if (len > 65535 || nif_offload_from_vnet(&vh, &o) < 0)
			continue;
		npages = (unsigned)((len + PV_PAGE_SIZE - 1) / PV_PAGE_SIZE);
		left = len;
		for (unsigned k = 0; k < npages; k++) {
			RING_IDX idx = tq->tx.req_prod_pvt++;
			netif_tx_request_t *req = RING_GET_REQUEST(&tq->tx, idx);
			size_t chunk = left < PV_PAGE_SIZE ? left : PV_PAGE_SIZE;

			req->gref = pool_ref(f, f->pages_used + k);
			req->offset = 0;
			req->id = (uint16_t)(idx & (TXR - 1));
			req->size = (uint16_t)(k == 0 ? len : chunk);
			req->flags = k == 0 ? nif_offload_txflags(&o) : 0;
			if (k + 1 < npages)
				req->flags |= NETTXF_more_data;
			left -= chunk;
			slots++;
			if (k == 0 && o.gso_type != XEN_NETIF_GSO_TYPE_NONE) {
				struct netif_extra_info ex;

				nif_gso_extra_fill(&o, &ex);
				memcpy(RING_GET_REQUEST(&tq->tx, tq->tx.req_prod_pvt++), &ex, sizeof(ex));
				slots++;
			}
		}
		f->pages_used += npages;
		f->pkt_slots[f->pkt_tail % TXR] = (uint16_t)slots;
		f->pkt_pages[f->pkt_tail % TXR] = (uint16_t)npages;
		f->pkt_tail++;
		pushed = true;
	}
	if (pushed) {
		RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&tq->tx, notify);
		if (notify)
			(void)pv_evtchn_notify(tq->ec, tq->tx_port);
	}
}

/* tx responses: free the pages of completed packets. Responses are reaped
 * lazily (before each transmit); a notification is asked for (rsp_event)
 * only when the ring or the page pool runs short, so a streaming frontend
 * is not woken for every response. */
static void tx_gc(struct fq *f)
{
	struct tf_queue *tq = &f->v->q[f->q];
	RING_IDX rp;

	for (;;) {
		rp = __atomic_load_n(&tq->tx.sring->rsp_prod, __ATOMIC_ACQUIRE);
		while (tq->tx.rsp_cons != rp) {
			tq->tx.rsp_cons++;
			if (f->head_left == 0)
				f->head_left = f->pkt_slots[f->pkt_head % TXR];
			if (--f->head_left == 0)
				f->pages_freed += f->pkt_pages[f->pkt_head++ % TXR];
		}
		if (RING_FREE_REQUESTS(&tq->tx) >= MAX_PAGES + 2 &&
		    TXR - (f->pages_used - f->pages_freed) >= MAX_PAGES)
			return;
		/* Short of room: be woken when half of what is in flight is back. */
		tq->tx.sring->rsp_event = tq->tx.rsp_cons + (tq->tx.req_prod_pvt - tq->tx.rsp_cons + 1) / 2;
		mb();
		if (__atomic_load_n(&tq->tx.sring->rsp_prod, __ATOMIC_ACQUIRE) == rp)
			return;
	}
}

/* rx ring -> guest TAP, buffers reposted. */
static void rx_recv(struct fq *f)
{
	struct tf_queue *tq = &f->v->q[f->q];
	unsigned reposted = 0;
	int more, notify;

	do {
		RING_IDX rp = __atomic_load_n(&tq->rx.sring->rsp_prod, __ATOMIC_ACQUIRE);

		while (tq->rx.rsp_cons != rp) {
			RING_IDX i = tq->rx.rsp_cons, first = i;
			struct iovec iov[2 + MAX_PAGES + 2];
			struct virtio_net_hdr vh;
			struct netif_extra_info gso;
			struct nif_offload o;
			netif_rx_response_t r0 = *RING_GET_RESPONSE(&tq->rx, i);
			bool has_gso = false, more_data = true, complete = true;
			unsigned n = 1;
			size_t len = 0;

			while (more_data) {
				netif_rx_response_t r;

				if (i == rp) {
					complete = false;
					break;
				}
				r = *RING_GET_RESPONSE(&tq->rx, i);
				i++;
				if (r.status > 0 && n < PV_ARRAY_SIZE(iov)) {
					iov[n++] = (struct iovec){ tq->rx_pages[(i - 1) & (RXR - 1)] + r.offset,
								   (size_t)r.status };
					len += (size_t)r.status;
				}
				more_data = r.status >= 0 && (r.flags & NETRXF_more_data);
				if (i - 1 == first && (r.flags & NETRXF_extra_info)) {
					bool more_ex = true;

					while (more_ex && i != rp) {
						struct netif_extra_info ex;

						memcpy(&ex, RING_GET_RESPONSE(&tq->rx, i), sizeof(ex));
						i++;
						if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
							gso = ex;
							has_gso = true;
						}
						more_ex = ex.flags & XEN_NETIF_EXTRA_FLAG_MORE;
					}
					if (more_ex)
						complete = false;
				}
			}
			if (!complete)
				break;
			memset(&vh, 0, sizeof(vh));
			if (r0.status > 0 && nif_offload_from_rxflags(r0.flags, has_gso ? &gso : NULL, &o) == 0)
				(void)nif_offload_to_vnet(&o, iov[1].iov_base, iov[1].iov_len, len, &vh);
			iov[0] = (struct iovec){ &vh, sizeof(vh) };
			if (r0.status > 0)
				(void)writev(f->tapfd, iov, (int)n);
			reposted += i - tq->rx.rsp_cons;
			tq->rx.rsp_cons = i;
		}
		RING_FINAL_CHECK_FOR_RESPONSES(&tq->rx, more);
	} while (more);
	for (unsigned k = 0; k < reposted; k++) {
		RING_IDX idx = tq->rx.req_prod_pvt++;
		netif_rx_request_t *req = RING_GET_REQUEST(&tq->rx, idx);

		req->id = (uint16_t)(idx & (RXR - 1));
		req->gref = tq->rx_refs[idx & (RXR - 1)];
	}
	if (reposted) {
		RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&tq->rx, notify);
		if (notify)
			(void)pv_evtchn_notify(tq->ec, tq->rx_port);
	}
}

static void *worker(void *arg)
{
	struct fq *f = arg;
	struct tf_queue *tq = &f->v->q[f->q];

	while (!stop) {
		bool room = RING_FREE_REQUESTS(&tq->tx) >= MAX_PAGES + 2 &&
			    TXR - (f->pages_used - f->pages_freed) >= MAX_PAGES;
		struct pollfd p[2] = { { .fd = f->tapfd, .events = room ? POLLIN : 0 },
				       { .fd = pv_evtchn_fd(tq->ec), .events = POLLIN } };
		int port;

		if (poll(p, 2, 100) < 0)
			continue;
		while ((port = pv_evtchn_pending(tq->ec)) > 0)
			(void)pv_evtchn_unmask(tq->ec, (evtchn_port_t)port);
		rx_recv(f);
		tx_gc(f);
		if (p[0].revents & POLLIN) {
			tx_xmit(f);
			tx_gc(f);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "queues", required_argument, 0, 'q' }, { "tap", required_argument, 0, 't' },
		{ "netback-args", required_argument, 0, 'n' }, { 0, 0, 0, 0 },
	};
	struct tf_env_opts eo = { .no_host_port = true };
	struct tf_vif_opts vo = { .num_queues_key = -1, .split = true, .ec_per_queue = true };
	struct tf_env e;
	struct tf_vif v;
	struct tf_dom *d;
	struct nif_tap tap;
	struct fq fq[TF_MAX_QUEUES];
	pthread_t th[TF_MAX_QUEUES];
	const char *tapname = NULL;
	unsigned nq = 1;
	int opt, r;

	signal(SIGPIPE, SIG_IGN);   /* a daemon or peer that goes mid-write */
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'q': nq = (unsigned)atoi(optarg); break;
		case 't': tapname = optarg; break;
		case 'n': eo.netback_args = optarg; break;
		default: return 2;
		}
	}
	if (!tapname || nq < 1 || nq > NIF_TAP_MAX_QUEUES) {
		fprintf(stderr, "usage: nb-front --queues N --tap NAME [--netback-args ARGS]\n");
		return 2;
	}
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	vo.nqueues = nq;
	r = tf_env_start(&e, &eo);
	if (r == 0 && !(d = tf_dom_new(&e)))
		r = -errno;
	if (r == 0)
		r = tf_vif_add(&e, d, 0, &v);
	if (r == 0)
		r = tf_vif_connect(&v, &vo, false);
	if (r == 0)
		r = nif_tap_create(&tap, tapname, nq);
	if (r == 0)
		r = nif_tap_set_offload(&tap, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
	if (r != 0) {
		fprintf(stderr, "nb-front: set-up failed: %s\n", r > 0 ? "programs missing" : strerror(-r));
		tf_env_stop(&e);
		return 1;
	}
	for (unsigned q = 0; q < nq; q++) {
		fq[q] = (struct fq){ .v = &v, .q = q, .tapfd = tap.fds[q] };
		pthread_create(&th[q], NULL, worker, &fq[q]);
	}
	printf("ready %s\n", e.dir);
	fflush(stdout);
	for (unsigned q = 0; q < nq; q++)
		pthread_join(th[q], NULL);
	nif_tap_close(&tap);
	tf_env_stop(&e);
	return 0;
}
