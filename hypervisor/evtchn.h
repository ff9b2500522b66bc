/*
 * hypervisor/evtchn.h — event channels, shaped like libxenevtchn.
 *
 * What: alloc unbound, bind interdomain, notify, pending/unmask, unbind,
 * status. Each port end has a doorbell (an eventfd the peer rings): notify
 * is at most one write(2) of a zero into the peer's doorbell (none while the
 * peer is pending already: a flag in a page both ends map) and never a round
 * trip to the hypervisor. The handle's fd is pollable (epoll): readable when
 * some port of this handle rang. Or, faster, pv_evtchn_attach() puts the
 * doorbells edge-triggered into the caller's own epoll set; pending() then
 * costs no syscall.
 * Semantics as on Xen (xen-protocols.md §6): pending/masked bits, sends
 * coalesce, pv_evtchn_pending() returns a port already masked and cleared (the
 * caller unmasks it after handling), a masked port that becomes pending fires
 * on unmask (meanwhile it may make the fd readable once — pending() then
 * returns -EAGAIN — but never makes it spin), a new interdomain binding is
 * set pending once. When the remote
 * end closes (or its domain dies) the local port becomes unbound: notify on
 * it is dropped silently (as Xen does); notify/unmask on a port that is not
 * ours or closed gives -EINVAL.
 * Thread: one handle per thread, except pv_evtchn_notify(), which may be
 * called from any thread on any port of the handle.
 * Errors: port (>= 1) or 0 on success, -errno on failure.
 * Ownership: closing the handle unbinds its ports. pv_evtchn_unbind() of a
 * port of this handle always releases it locally (0), even if the
 * hypervisor had closed it already (our domain ended).
 */
#ifndef PVNET_HYPERVISOR_EVTCHN_H
#define PVNET_HYPERVISOR_EVTCHN_H

#include <stdint.h>

#include "common/xen.h"

struct pv_evtchn;
/* NULL with errno set; EOPNOTSUPP on a kernel whose eventfds do not wake an
 * edge-triggered epoll reader at a zero write (evtchn.c). */
struct pv_evtchn *pv_evtchn_open(const char *hv_path);
void pv_evtchn_close(struct pv_evtchn *ec);
int pv_evtchn_fd(const struct pv_evtchn *ec);

/* EVTCHNOP_alloc_unbound for remote_domid: returns the new local port. */
int pv_evtchn_bind_unbound_port(struct pv_evtchn *ec, uint32_t remote_domid);
/* EVTCHNOP_bind_interdomain: the remote port must be unbound and accept us. */
int pv_evtchn_bind_interdomain(struct pv_evtchn *ec, uint32_t remote_domid, evtchn_port_t remote_port);
int pv_evtchn_unbind(struct pv_evtchn *ec, evtchn_port_t port);
int pv_evtchn_notify(struct pv_evtchn *ec, evtchn_port_t port);
/* Deliver this handle's events into the caller's epoll set `epfd` (ports
 * bound now and later, EPOLLIN | EPOLLET, data.u64 = tag) instead of the
 * handle's own fd, which then never becomes readable. When epfd reports
 * `tag`, call pv_evtchn_pending() until -EAGAIN (it makes no syscall then;
 * unmask() makes one only for a port that became pending while masked).
 * Once per handle (-EINVAL if attached already); epfd -1 detaches (the
 * ports go back to the handle's own fd). Close or detach the handle before
 * closing epfd. 0 or -errno; -EOPNOTSUPP when PVNET_EVTCHN_LEVEL is set in
 * the environment (to exercise and compare the handle's fd): wait on the
 * handle's fd then. A wake-up that gives no event
 * at all is spurious: a peer ringing without setting its flag causes them,
 * and so does every port once when it is bound or attached (count them as an
 * event storm, as for events without work). */
int pv_evtchn_attach(struct pv_evtchn *ec, int epfd, uint64_t tag);
/* Next pending port (masked and cleared), or -EAGAIN if none. */
int pv_evtchn_pending(struct pv_evtchn *ec);
int pv_evtchn_unmask(struct pv_evtchn *ec, evtchn_port_t port);
/* Test hook: what a lying peer does — ring the peer's doorbell without
 * setting its pending flag (a wake-up that carries no event). 0 or -errno. */
int pv_evtchn_test_write(struct pv_evtchn *ec, evtchn_port_t port);
/* EVTCHNSTAT_closed/unbound/interdomain (xen/event_channel.h), or -errno. */
int pv_evtchn_status(struct pv_evtchn *ec, evtchn_port_t port);

#endif
