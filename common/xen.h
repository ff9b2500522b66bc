/*
 * common/xen.h — the one place pvnet includes Xen's public headers.
 *
 * What: defines the memory barriers ring.h expects (mb/rmb/wmb) as C11 fences,
 * then pulls in the wire formats from libxen-dev: xen.h, grant_table.h,
 * event_channel.h, sched.h, io/ring.h, io/netif.h, io/xenbus.h, io/xs_wire.h.
 * pvnet never redefines a wire structure; include this instead of <xen/...>.
 * Thread: header only. Errors/ownership: none.
 */
#ifndef PVNET_COMMON_XEN_H
#define PVNET_COMMON_XEN_H

#include <errno.h>  /* before xs_wire.h, which then defines xsd_errors[] */
#include <stddef.h>
#include <stdint.h>

#ifndef mb
#define mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif
#ifndef rmb
#define rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif
#ifndef wmb
#define wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/event_channel.h>
#include <xen/sched.h>
#include <xen/io/ring.h>
#include <xen/io/netif.h>
#include <xen/io/xenbus.h>
#include <xen/io/xs_wire.h>

/* Xen's page size for grants and rings: always 4 KiB, whatever the host's. */
#define PV_PAGE_SIZE  4096u
#define PV_PAGE_SHIFT 12

/* Ring sizes derived from the headers (256 for tx and rx with 4 KiB pages). */
#define PV_NET_TX_RING_SIZE __CONST_RING_SIZE(netif_tx, PV_PAGE_SIZE)
#define PV_NET_RX_RING_SIZE __CONST_RING_SIZE(netif_rx, PV_PAGE_SIZE)

#endif
