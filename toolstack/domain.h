/*
 * toolstack/domain.h — the xenstore layout libxl writes for a domain and its
 * vifs (reference/xen-protocols.md §3.3–§3.4), and its removal.
 *
 * What: dom_write_skeleton() writes the domain skeleton in one transaction
 * (retried on EAGAIN) with libxl's permissions, then INTRODUCEs the domain;
 * dom_write_vif() writes a vif's frontend dir (guest-owned, backend may read),
 * backend dir (backend-owned, guest may read) and the toolstack's private
 * /libxl copy, again in one transaction; dom_remove_vif() and
 * dom_remove_domain() undo them.
 * Thread: single-threaded CLI. Errors: 0 / -errno (errno of libxenstore).
 */
#ifndef PVNET_TOOLSTACK_DOMAIN_H
#define PVNET_TOOLSTACK_DOMAIN_H

#include <stdint.h>
#include <xenstore.h>

struct dom_vif {
	unsigned devid;
	char mac[18];        /* aa:bb:cc:dd:ee:ff */
	char bridge[16];
	unsigned mtu;        /* 0 = default (1500, not written) */
	char ips[128];       /* space-separated, written as the backend's `ip` key */
};

struct dom_spec {
	uint32_t domid;
	uint32_t backend_domid; /* 0 */
	char name[64];
	char uuid[37];
	uint32_t mem_kb;
};

int dom_write_skeleton(struct xs_handle *h, const struct dom_spec *d);
int dom_introduce(struct xs_handle *h, const struct dom_spec *d);
int dom_write_vif(struct xs_handle *h, const struct dom_spec *d, const struct dom_vif *v);
/* Ask the backend to close (online=0, state=5 as libxl does), wait up to
 * timeout_ms for state 6, then remove the dirs. 0, or -ETIMEDOUT (removed
 * anyway: forced removal). */
int dom_remove_vif(struct xs_handle *h, const struct dom_spec *d, unsigned devid, int timeout_ms);
/* RELEASE the domain and remove /local/domain/D, /vm/<uuid>, /libxl/D. */
int dom_remove_domain(struct xs_handle *h, const struct dom_spec *d);
/* A random RFC 4122 v4 UUID. */
void dom_new_uuid(char out[37]);

#endif
