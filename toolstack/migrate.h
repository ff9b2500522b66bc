/*
 * toolstack/migrate.h — live migration and checkpoint of a guest, with a report.
 *
 * What: migrate_run() follows libxl's flow (design.md "Migration, step by
 * step"): prepare the destination (incoming domain, xenstore layout, backend
 * probed to InitWait), ask the guest to suspend through control/shutdown,
 * wait for the acknowledgement and for the domain to be suspended, move its
 * memory to the destination hypervisor, end the source incarnation (the
 * guest resumes on the destination), wait for its vifs to connect, destroy
 * the source. With `checkpoint`, the domain is resumed cancelled on the same
 * host instead. Measurements go into struct migrate_report.
 * Thread: single-threaded CLI. Errors: 0 / -errno with a reason in `err`;
 * on failure before the move the source keeps running and the destination
 * is cleaned up.
 */
#ifndef PVNET_TOOLSTACK_MIGRATE_H
#define PVNET_TOOLSTACK_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "toolstack/cli.h"
#include "toolstack/probe.h"

struct migrate_opts {
	bool checkpoint;   /* suspend and resume cancelled on the same host */
	bool probe;        /* run L2 probes (needs both hosts on one switch) */
	unsigned probe_interval_us;
};

struct migrate_report {
	char guest[32], src[32], dst[32];
	uint32_t src_domid, dst_domid;
	bool checkpoint;
	uint64_t t_request, t_acked, t_suspended, t_resumed, t_connected, t_done; /* monotonic ns */
	/* netback timestamps (0 if unknown) */
	uint64_t old_last_ns, new_first_ns;
	bool have_probe;
	struct probe_dir to_guest, from_guest;
	struct probe_capture dest;
	unsigned tcp_before, tcp_after;
	char tcp_detail[128];
};

int migrate_run(struct cli *c, const char *guest, const char *dst, const struct migrate_opts *o,
		struct migrate_report *rep, char *err, size_t errlen);
void migrate_print(const struct cli *c, const struct migrate_report *r);
/* Network blackout in ns from the netback timestamps, or 0 if unknown. */
uint64_t migrate_blackout_ns(const struct migrate_report *r);

#endif
