/*
 * xenstored/server.h — the daemon's sockets: DIR/socket for dom0
 * (privileged) and DIR/domains/<domid>.sock for each introduced domain,
 * accepted connections, non-blocking reads and writes on the event loop.
 *
 * Thread: the loop's thread. Errors: NULL + errno / -errno.
 * Ownership: the server owns its sockets, connections and the core; free
 * removes every socket file it created.
 */
#ifndef PVNET_XENSTORED_SERVER_H
#define PVNET_XENSTORED_SERVER_H

#include "common/loop.h"
#include "xenstored/core.h"

struct xsd_server;

/* Create the core and listen on RUNDIR/socket (RUNDIR must exist). */
struct xsd_server *xsd_server_new(struct pv_loop *loop, const char *rundir,
				  const struct xsd_config *cfg);
void xsd_server_free(struct xsd_server *srv);

#endif
