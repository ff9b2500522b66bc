/*
 * guest/tests/minitoolstack.h — the toolstack steps the guest runtime's tests
 * need, small and reusable (meant to be folded into toolstack/ later).
 *
 * What: a "host" is a pvnet-hypervisor and a pvnet-xenstored in a temporary
 * run directory, with a dom0 connection to each and dom0's I/O memory mapped
 * (for grant copies). On a host: create a domain (libxl's xenstore skeleton
 * of xen-protocols.md §3.3 with its permissions, then INTRODUCE), add a vif
 * (§3.4: frontend and backend directories and permissions), start
 * pvnet-guest for it in a network namespace, ask it to suspend, cancel the
 * suspend, migrate it to another host as libxl does (incoming domain and
 * layout on the destination, control/shutdown = suspend, wait SUSPENDED,
 * export/import the memory, domain_moved with start_info "xenstore=PATH",
 * destroy and RELEASE the source).
 * Thread: one thread drives a host's dom0 handles (tests: the main thread).
 * Errors: 0 / -errno, with a message printed to stderr (test code).
 */
#ifndef PVNET_GUEST_TESTS_MINITOOLSTACK_H
#define PVNET_GUEST_TESTS_MINITOOLSTACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct xs_handle;
struct pv_hv;
struct pv_pagealloc;

struct mts_host {
	char name[16];
	char dir[256];
	char xs_dir[300], hv_dir[300];
	char xs_sock[320], hv_sock[320];
	pid_t xsd, hvd, nbd;
	char netns[16];            /* netback's namespace (bridge xenbr0), if any */
	struct pv_hv *hv;          /* dom0 */
	struct xs_handle *xs;      /* dom0, privileged */
	void *mem;                 /* dom0's I/O memory, for backends' grant copies */
	size_t mem_pages;
	struct pv_pagealloc *pa;   /* thread-safe */
};

/* Start both daemons in `dir`/<name>. */
int mts_host_start(struct mts_host *h, const char *dir, const char *name);
void mts_host_stop(struct mts_host *h);
/* Also run pvnet-netback for this host in network namespace `netns` (made by
 * the caller), with a bridge xenbr0 there (libxl's default bridge). */
int mts_host_add_netback(struct mts_host *h, const char *netns, unsigned max_queues);
/* Path of domid's xenstore / hypervisor socket on this host. */
void mts_xs_domain_sock(const struct mts_host *h, uint32_t domid, char *buf, size_t len);
int mts_hv_domain_sock(const struct mts_host *h, uint32_t domid, char *buf, size_t len);

/* Create a domain (incoming: to receive a move), write its skeleton and
 * INTRODUCE it. *domid in: wanted (0 = allocate), out: the id. */
int mts_domain_create(struct mts_host *h, uint32_t *domid, bool incoming, unsigned mem_pages);
/* RELEASE + remove its xenstore dirs, destroy it in the hypervisor. */
int mts_domain_destroy(struct mts_host *h, uint32_t domid);
/* The vif layout of §3.4 (backend domain 0). */
int mts_vif_add(struct mts_host *h, uint32_t domid, unsigned devid, const char *mac);
/* Wait until `path` on this host's xenstore reads `want`. */
int mts_wait_value(struct mts_host *h, const char *path, const char *want, int timeout_ms);

struct mts_guest {
	struct mts_host *host;
	uint32_t domid;
	char netns[16];
	char control[320];
	char log[320];
	pid_t pid;
};

/* Start pvnet-guest for domid in network namespace `netns` (created by the
 * caller), with extra arguments (NULL-terminated, may be NULL). Returns once
 * it says it is ready. */
int mts_guest_start(struct mts_guest *g, struct mts_host *h, uint32_t domid, const char *netns,
		    const char *dir, const char *const *extra);
/* SIGTERM and wait; returns its exit status (or -errno). */
int mts_guest_stop(struct mts_guest *g);
/* A control-socket command's answer (malloc'd) or NULL. */
char *mts_control(const struct mts_guest *g, const char *cmd);

/* control/shutdown = suspend; wait for the acknowledgement and for the
 * domain to be SUSPENDED. */
int mts_suspend(struct mts_guest *g);
/* control/shutdown = cmd ("poweroff", "reboot"); wait for the domain to
 * shut down with the matching reason and for pvnet-guest to exit. Returns
 * its exit status or -errno. */
int mts_shutdown(struct mts_guest *g, const char *cmd);
/* Resume the suspended domain cancelled (same host). */
int mts_resume_cancelled(struct mts_guest *g);

/* Called once the destination domain and its layout exist, before the
 * guest is moved there (start the destination's backend here). */
typedef int (*mts_prepare_fn)(void *arg, struct mts_host *dst, uint32_t newid);
/* Live-migrate g to `dst` (vifs given by devid/mac), as libxl does. The
 * source domain is destroyed at the end; `before_destroy` (may be NULL) runs
 * just before that (stop the source's backend there). */
int mts_migrate(struct mts_guest *g, struct mts_host *dst, const unsigned *devids, const char *const *macs,
		unsigned nvifs, mts_prepare_fn prepare, void *arg,
		void (*before_destroy)(void *arg), void *darg);

#endif
