/*
 * CONTROL (alias DEBUG) commands, privileged only. Output follows C
 * xenstored 4.17's wording where a tool may parse it (quota table).
 *   help                       list the commands
 *   check                      verify the store's internal consistency
 *   print <string>             write <string> to the daemon's log
 *   log on|off                 debug logging on or off
 *   quota                      the quota settings
 *   quota set <name> <value>   change one
 *   quota <domid>              what a domain uses
 */
#include "xenstored/core_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

struct quota {
	const char *name;
	const char *descr;
	size_t off;   /* offset of the unsigned in struct xsd_config */
};

#define Q(n, f, d) { n, d, offsetof(struct xsd_config, f) }
static const struct quota quotas[] = {
	Q("nodes", lim.nodes, "Nodes per domain"),
	Q("watches", watches, "Watches per domain"),
	Q("transactions", transactions, "Transactions per domain"),
	Q("outstanding", outstanding, "Outstanding requests per domain"),
	Q("transaction-nodes", lim.txn_nodes, "Max. number of accessed nodes per transaction"),
	Q("node-size", lim.node_size, "Max. size of a node"),
	Q("path-max", path_max, "Max. length of a node path"),
	Q("permissions", lim.perms, "Max. number of permissions per node"),
	Q("watch-events", watch_events, "Max. unsent watch events per connection"),
	Q("connections", conns, "Max. connections per domain socket"),
};
#undef Q

static unsigned *quota_ptr(struct xsd_core *core, const struct quota *q)
{
	return (unsigned *)((char *)&core->cfg + q->off);
}

/* The store keeps its own copy of the limits it enforces. */
static void sync_limits(struct xsd_core *core)
{
	*xsd_store_limits(core->st) = core->cfg.lim;
}

static int quota_cmd(struct req *r, const char **v, unsigned n)
{
	struct xsd_core *core = r->c->core;
	char buf[XENSTORE_PAYLOAD_MAX];
	size_t len = 0;

	if (n == 1) {
		len += (size_t)snprintf(buf, sizeof(buf), "Quota settings:\n");
		for (size_t i = 0; i < PV_ARRAY_SIZE(quotas); i++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%-17s: %8u %s\n",
						quotas[i].name, *quota_ptr(core, &quotas[i]),
						quotas[i].descr);
		return xsd_reply(r, buf, len + 1);
	}
	if (n == 4 && !strcmp(v[1], "set")) {
		unsigned val;
		for (size_t i = 0; i < PV_ARRAY_SIZE(quotas); i++) {
			if (strcmp(v[2], quotas[i].name))
				continue;
			if (pv_parse_uint(v[3], 1u << 30, &val) < 0 || val == 0)
				return EINVAL;
			*quota_ptr(core, &quotas[i]) = val;
			sync_limits(core);
			return xsd_reply_str(r, "OK");
		}
		return EINVAL;
	}
	if (n == 2) {
		unsigned domid;
		struct xsd_domain *d;
		if (pv_parse_uint(v[1], XSD_DOMID_MAX, &domid) < 0)
			return EINVAL;
		d = xsd_domain_find(core, domid);
		if (!d || !d->introduced)
			return ENOENT;
		snprintf(buf, sizeof(buf), "Domain %u:\nnodes            : %8u\n"
			 "watches          : %8u\ntransactions     : %8u\nconnections      : %8u\n",
			 domid, xsd_store_domain_nodes(core->st, domid), d->nwatches, d->ntx,
			 d->nconns);
		return xsd_reply_str(r, buf);
	}
	return EINVAL;
}

int xsd_do_control(struct req *r)
{
	const char *v[8];
	unsigned n = xsd_count_args(r);
	int e;

	if (n < 1 || n > PV_ARRAY_SIZE(v))
		return EINVAL;
	e = xsd_get_args(r, v, n);
	if (e)
		return e;
	if (!strcmp(v[0], "help"))
		return xsd_reply_str(r, "check\t\nlog\ton|off\nprint\t<string>\n"
				    "quota\t[set <name> <val>|<domid>]\nhelp\t\n");
	if (!strcmp(v[0], "check") && n == 1) {
		e = xsd_store_check(r->c->core->st);
		return e ? e : xsd_reply_str(r, "OK");
	}
	if (!strcmp(v[0], "print") && n == 2) {
		pv_info("control: %s", v[1]);
		return xsd_reply_str(r, "OK");
	}
	if (!strcmp(v[0], "log") && n == 2 && (!strcmp(v[1], "on") || !strcmp(v[1], "off"))) {
		pv_log_set_level(v[1][1] == 'n' ? PV_LOG_DEBUG : PV_LOG_INFO);
		return xsd_reply_str(r, "OK");
	}
	if (!strcmp(v[0], "quota"))
		return quota_cmd(r, v, n);
	return EINVAL;
}
