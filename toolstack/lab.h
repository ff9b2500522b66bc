/*
 * toolstack/lab.h — the network namespaces pvnet builds: hosts, switches,
 * clients, guests; and where each host keeps its run directories.
 *
 * Names: host H -> netns "pvnet-h-H" with bridge xenbr0 (the libxl default);
 * switch S -> netns "pvnet-s-S" with bridge br0; client C -> netns "pvnet-c-C"
 * with eth0 on switch port "c-C"; guest G -> netns "pvnet-g-G" (eth0 is made
 * by pvnet-guest). A host on a switch has "uplink" on xenbr0, port "h-H" on br0.
 * State: <root>/hosts/H/{host.conf,status,events.log,*.log,xenstored/,hypervisor/,netback/},
 * <root>/switches/S.conf, <root>/clients/C.conf, <root>/guests/G/.
 * Thread: single-threaded CLI. Errors: 0 / -errno with a reason in `err`.
 */
#ifndef PVNET_TOOLSTACK_LAB_H
#define PVNET_TOOLSTACK_LAB_H

#include <stdbool.h>
#include <stddef.h>

#include "toolstack/cli.h"

void lab_netns(char *buf, size_t len, char kind, const char *name);
bool lab_netns_exists(const char *ns);
int lab_netns_add(const char *ns, char *err, size_t errlen);
void lab_netns_del(const char *ns);
/* Kill every process still in ns (after a supervisor stop); returns when
 * none is left, or after 5 s. */
void lab_netns_kill(const char *ns);

/* Sockets of host H. */
void lab_host_dir(const struct cli *c, const char *host, char *buf, size_t len);
void lab_xs_socket(const struct cli *c, const char *host, char *buf, size_t len);
void lab_xs_domain_socket(const struct cli *c, const char *host, unsigned domid, char *buf, size_t len);
void lab_hv_socket(const struct cli *c, const char *host, char *buf, size_t len);
void lab_nb_socket(const struct cli *c, const char *host, char *buf, size_t len);
bool lab_host_exists(const struct cli *c, const char *host);

/* Connect netns `ns` (iface `inner`) to switch S (port `port`). */
int lab_switch_link(const char *sw, const char *ns, const char *inner, const char *port,
		    const char *bridge_in_ns, char *err, size_t errlen);

#endif
