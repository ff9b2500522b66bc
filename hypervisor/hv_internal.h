/*
 * hypervisor/hv_internal.h — what the client library's parts share about a
 * pv_hv handle. Private to the client library.
 * Thread/errors/ownership: as hv.h.
 */
#ifndef PVNET_HYPERVISOR_HV_INTERNAL_H
#define PVNET_HYPERVISOR_HV_INTERNAL_H

#include "hypervisor/client.h"
#include "hypervisor/hv.h"

struct pv_hv {
	struct hvc c;
};

/* A call that returns one fd and arg0 (memfds: HVP_MEM_GET, HVP_GT_SETUP,
 * HVP_DOM_EXPORT). The fd belongs to the caller. */
int pv_hv_get_fd(struct pv_hv *hv, uint16_t op, uint32_t arg0, int *fd, uint32_t *value);

#endif
