/*
 * toolstack/guests.h — guest records and the operations shared by the guest
 * verbs, migration and the demo.
 *
 * A guest G lives in <root>/guests/G/: guest.conf (key=value: host, domid,
 * uuid, queues, compat, mem_pages, vifs), the supervisor files of its
 * pvnet-guest, and control.sock (pvnet-guest's control socket).
 * Thread: single-threaded CLI. Errors: 0 / -errno with a reason in `err`.
 */
#ifndef PVNET_TOOLSTACK_GUESTS_H
#define PVNET_TOOLSTACK_GUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "toolstack/cli.h"
#include "toolstack/domain.h"

#define GUEST_MAX_VIFS 4

struct guest {
	char name[CLI_NAME_MAX + 1];
	char host[CLI_NAME_MAX + 1];
	uint32_t domid;
	char uuid[37];
	unsigned queues;       /* netfront max queues (0 = default) */
	char compat[32];       /* "" or linux-5.13 */
	bool no_affinity;      /* pvnet-guest --no-affinity: data threads not pinned */
	unsigned mem_pages;
	unsigned nvifs;
	struct dom_vif vifs[GUEST_MAX_VIFS];
};

int guest_load(const struct cli *c, const char *name, struct guest *g);
int guest_save(const struct cli *c, const struct guest *g);
void guest_dir(const struct cli *c, const char *name, char *buf, size_t len);
void guest_netns(const char *name, char *buf, size_t len);
/* Parse "mac=..,bridge=..,ip=..,ip=..,mtu=.." into v (defaults filled). */
int guest_parse_vif(const char *spec, unsigned devid, struct dom_vif *v, char *err, size_t errlen);
/* Write the domain's skeleton and vifs on `host` for domid (introduce first). */
int guest_write_xenstore(const struct cli *c, const char *host, const struct guest *g, uint32_t domid,
			 char *err, size_t errlen);
/* Wait until vif `devid` of domid on `host` is Connected at both ends. */
int guest_wait_connected(const struct cli *c, const char *host, uint32_t domid, unsigned devid,
			 int timeout_ms, char *err, size_t errlen);
/* Remove domid from host: close vifs, destroy the domain, release it. */
void guest_remove_domain(const struct cli *c, const char *host, const struct guest *g, uint32_t domid,
			 bool graceful);
/* Send one command to a UNIX control socket and read the whole answer. */
int ctl_query(const char *sock, const char *cmd, char *out, size_t len);

#endif
