/*
 * netback/tests/tfront.h — a test frontend that can misbehave on purpose,
 * and the environment it runs in (for netback's integration tests and
 * benchmarks).
 *
 * What: tf_env starts a private host — pvnet-xenstored, pvnet-hypervisor and
 * pvnet-netback in a temporary run directory, in the caller's network
 * namespace (the caller unshares one first), with a bridge and a "host" TAP
 * port on it through which the tests send and receive real frames.
 * tf_dom is a guest domain (created through the dom0 hypervisor API, then
 * connected to as that domain: its I/O memory, grant table and event
 * channels). tf_vif plays the toolstack (libxl's vif directories) and
 * netfront (rings, channels, the xenstore transaction of keys, Connected),
 * sends and receives frames through the rings, and offers raw access to the
 * rings for misbehaviour (any request, any producer index, event storms).
 * Thread: single-threaded test code. Errors: 0 or -errno; nothing aborts.
 */
#ifndef PVNET_NETBACK_TESTS_TFRONT_H
#define PVNET_NETBACK_TESTS_TFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/virtio_net.h>
#include <xenstore.h>

#include "common/xen.h"
#include "hypervisor/evtchn.h"
#include "hypervisor/gnttab.h"
#include "hypervisor/hv.h"
#include "netif/tap.h"

#define TF_MAX_QUEUES 16

struct tf_dom;

struct tf_env {
	char dir[128];
	char xs_sock[192], hv_sock[192], nb_dir[150], nb_log[192], ctl_sock[192];
	pid_t xsd, hvd, nbd;
	struct xs_handle *xs;  /* privileged (dom0) */
	struct pv_hv *hv;      /* dom0 */
	char bridge[16];
	struct nif_tap host;   /* a port of the bridge for the host side */
	struct tf_dom *doms[64];  /* closed by tf_env_stop */
	unsigned ndoms;
};

struct tf_env_opts {
	const char *bridge;        /* default xenbr0 */
	const char *netback_args;  /* extra arguments, space separated */
	unsigned host_tun_flags;   /* TUNSETOFFLOAD of the host port */
	bool no_host_port;         /* no host port (benchmarks) */
};

/* 77 (skip) if the programs are missing, 0, or -errno. */
int tf_env_start(struct tf_env *e, const struct tf_env_opts *o);
void tf_env_stop(struct tf_env *e);
/* After a failed case: print the last lines of the daemons' logs (netback,
 * hypervisor, xenstored) and every sanitizer report in them, each line
 * prefixed "# <daemon>: ", so that a CI log alone tells what went wrong. */
void tf_env_dump_logs(struct tf_env *e);
/* One control socket command; malloc'ed reply line (NULL on error). */
char *tf_ctl(struct tf_env *e, const char *cmd);
/* Does the netback log contain `needle` (waits up to timeout_ms)? */
bool tf_log_wait(struct tf_env *e, const char *needle, int timeout_ms);
/* Read a xenstore value (malloc'ed) or NULL. */
char *tf_xs_read(struct tf_env *e, const char *path);
/* Wait until path's value is `value` (NULL: until absent). */
bool tf_xs_wait(struct tf_env *e, const char *path, const char *value, int timeout_ms);

/* Host side: write a frame to the bridge / read the next frame matching
 * `ethertype` and destination MAC `dst` (NULL: any). */
int tf_host_send(struct tf_env *e, const struct virtio_net_hdr *vh, const uint8_t *frame, size_t len);
ssize_t tf_host_recv(struct tf_env *e, struct virtio_net_hdr *vh, uint8_t *buf, size_t cap,
		     const uint8_t *dst, int timeout_ms);

struct tf_dom {
	uint32_t domid;
	char sock[256];
	struct pv_hv *hv;
	void *mem;
	size_t npages;
	struct pv_pagealloc *pa;
	struct pv_gntshr *gs;
	struct pv_evtchn *ec;
};

/* A new guest domain, owned by the environment (closed by tf_env_stop);
 * NULL with errno on failure. */
struct tf_dom *tf_dom_new(struct tf_env *e);

struct tf_queue {
	netif_tx_front_ring_t tx;
	netif_rx_front_ring_t rx;
	grant_ref_t tx_ring_ref, rx_ring_ref;
	evtchn_port_t tx_port, rx_port;
	uint8_t *tx_pages[PV_NET_TX_RING_SIZE];
	grant_ref_t tx_refs[PV_NET_TX_RING_SIZE];
	uint8_t *rx_pages[PV_NET_RX_RING_SIZE];
	grant_ref_t rx_refs[PV_NET_RX_RING_SIZE];
	void *tx_sring, *rx_sring;
	struct pv_evtchn *ec;   /* the domain's handle, or this queue's own */
	bool own_ec;
};

struct tf_vif_opts {
	unsigned nqueues;        /* default 1 */
	bool split;              /* split event channels */
	/* frontend features (a Linux netfront writes all these as 1) */
	bool no_rx_copy, no_rx_notify, no_sg, no_gso4, no_gso6, no_ipv6_csum, no_csum_offload;
	int num_queues_key;      /* -1: as nqueues (omitted when 1); >= 0: write this value */
	bool flat_keys;          /* write the ring keys flat even with several queues */
	bool skip_keys;          /* write no ring keys at all */
	grant_ref_t bad_tx_ring_ref;  /* nonzero: publish this tx ring ref instead */
	bool bad_ring_prod;      /* publish a tx ring whose req_prod is past its rsp_prod by > 256 */
	unsigned rx_post;        /* rx buffers to post per queue before Connected (0: 256) */
	bool no_rx_post;         /* post none */
	bool ec_per_queue;       /* one event channel handle per queue (threads) */
	bool ctrl_ring;          /* a control ring (ctrl-ring-ref, event-channel-ctrl) */
	grant_ref_t bad_ctrl_ref;  /* nonzero: publish this control ring ref instead */
	bool ctrl_no_port;       /* publish ctrl-ring-ref without event-channel-ctrl */
};

struct tf_ctrl {
	xen_netif_ctrl_front_ring_t ring;
	void *sring;
	grant_ref_t ref;
	evtchn_port_t port;
	uint8_t *data;           /* a page granted read-only, for keys and tables */
	grant_ref_t data_ref;
	uint16_t next_id;
};

struct tf_vif {
	struct tf_env *e;
	struct tf_dom *d;
	unsigned devid;
	char fe[128], be[128];
	uint8_t mac[6];
	unsigned nq;
	struct tf_queue q[TF_MAX_QUEUES];
	struct tf_ctrl ctrl;     /* sring NULL: none */
	bool connected;
};

/* The toolstack's part (libxl_device_nic add): both directories, state 1;
 * the backend's `bridge` is the environment's unless given. */
int tf_vif_add(struct tf_env *e, struct tf_dom *d, unsigned devid, struct tf_vif *v);
int tf_vif_add_bridge(struct tf_env *e, struct tf_dom *d, unsigned devid, struct tf_vif *v,
		      const char *bridge);
/* The vif's `stats` answer (netback's control socket), malloc'ed, or NULL. */
char *tf_vif_stats(struct tf_env *e, const struct tf_vif *v);
/* One counter of such an answer: `key` in the object `dir` ("vif",
 * "from_guest", ...), or `missing`. Counters compared with each other must
 * come from one answer: traffic (the kernel's IPv6 and IGMP chatter to a
 * new vif) moves them between two. */
unsigned long long tf_stat_in(const char *stats, const char *dir, const char *key,
			      unsigned long long missing);
/* tf_stat_in() of a fresh answer. */
unsigned long long tf_vif_stat(struct tf_env *e, const struct tf_vif *v, const char *dir,
			       const char *key, unsigned long long missing);
/* Backend state (-1 if unreadable) and waiting for one. */
int tf_be_state(struct tf_vif *v);
bool tf_wait_be_state(struct tf_vif *v, int state, int timeout_ms);
void tf_set_fe_state(struct tf_vif *v, int state);
/* netfront's part: wait InitWait, rings + channels + keys, Connected; waits
 * for the backend's Connected unless expect_fail (then returns right after
 * writing Connected). */
int tf_vif_connect(struct tf_vif *v, const struct tf_vif_opts *o, bool expect_fail);
/* Release rings, grants and channels (after the backend disconnected). */
void tf_vif_release(struct tf_vif *v);

/* Transmit one frame split into slots of at most slot_size bytes (0: a
 * page), with flags of the first request and an optional GSO extra; waits
 * for every response; *status gets the first slot's status. */
int tf_tx(struct tf_vif *v, unsigned q, const uint8_t *frame, size_t len, uint16_t flags,
	  const struct netif_extra_info *gso, size_t slot_size, int16_t *status);
/* Raw: copy n requests into the ring at req_prod_pvt (data pages of slot
 * index i are tf_tx_page/ref), push and notify. */
void tf_tx_raw(struct tf_vif *v, unsigned q, const struct netif_tx_request *reqs, unsigned n);
grant_ref_t tf_tx_ref(struct tf_vif *v, unsigned q, unsigned slot);
uint8_t *tf_tx_page(struct tf_vif *v, unsigned q, unsigned slot);
/* Collect tx responses that arrived (up to max, waiting up to timeout_ms
 * for at least `want`); returns how many. */
int tf_tx_responses(struct tf_vif *v, unsigned q, netif_tx_response_t *out, unsigned max, unsigned want,
		    int timeout_ms);

/* Post n more rx buffers (whole granted pages), push, notify. */
void tf_rx_post(struct tf_vif *v, unsigned q, unsigned n);
/* Queue one rx request with this grant ref (pushed by the next tf_rx_post). */
void tf_rx_post_ref(struct tf_vif *v, unsigned q, grant_ref_t ref);

struct tf_rxinfo {
	size_t len;
	unsigned nslots;       /* ring slots the packet used, extras included */
	uint16_t flags;        /* of the first response */
	bool has_gso;
	struct netif_extra_info gso;
	bool has_hash;                 /* a HASH extra came (control ring) */
	struct netif_extra_info hash;
	int16_t error;         /* first negative status, 0 if none */
};
/* Receive one packet on queue q (q < 0: any queue); reposts the buffers.
 * Returns the queue it came on, or -ETIMEDOUT. */
int tf_rx_recv(struct tf_vif *v, int q, uint8_t *buf, size_t cap, struct tf_rxinfo *info, int timeout_ms);

void tf_notify(struct tf_vif *v, unsigned q, bool tx);

/* One control request, waited for: the response's status (>= 0) and data,
 * -ETIMEDOUT, or -EPROTO if the response does not match the request. */
int tf_ctrl(struct tf_vif *v, uint16_t type, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t *data,
	    int timeout_ms);
/* Raw: queue n requests of `type` without notifying or waiting. */
void tf_ctrl_push(struct tf_vif *v, uint16_t type, unsigned n);
/* Raw: set the control ring's req_prod to `prod` and notify. */
void tf_ctrl_raw_prod(struct tf_vif *v, RING_IDX prod);

/* ---- frames ---------------------------------------------------------------- */
size_t tf_mk_udp4(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], size_t payload, uint8_t seed);
size_t tf_mk_tcp4(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], size_t payload, uint8_t seed);
size_t tf_mk_tcp6(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], size_t payload, uint8_t seed);
/* Fill the L4 checksum: full (partial = false) or the pseudo-header seed. */
void tf_l4_csum(uint8_t *f, size_t len, bool partial);
bool tf_l4_csum_ok(const uint8_t *f, size_t len);

#endif
