/*
 * pvnet — the xl-like toolstack. Verbs come from tables (host.c, guest.c,
 * ...); `pvnet help` is built from the same tables.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "toolstack/cli.h"
#include "toolstack/verbs.h"

static const struct cli_verb *const tables[] = { host_verbs, guest_verbs, migrate_verbs, demo_verbs };

const struct cli_verb *verb_find(const char *name)
{
	for (size_t t = 0; t < PV_ARRAY_SIZE(tables); t++)
		for (const struct cli_verb *v = tables[t]; v->name; v++)
			if (!strcmp(v->name, name))
				return v;
	return NULL;
}

static int help(void)
{
	printf("usage: pvnet [--root DIR] [--json] [--quiet] VERB [ARGS...]\n\n"
	       "Xen PV networking in user space: hosts, guests, vifs, live migration.\n"
	       "State lives in --root (default $PVNET_ROOT or " CLI_DEFAULT_ROOT "). Needs root.\n\n"
	       "Verbs:\n");
	for (size_t t = 0; t < PV_ARRAY_SIZE(tables); t++)
		for (const struct cli_verb *v = tables[t]; v->name; v++)
			printf("  %-16s %s\n  %-16s   %s\n", v->name, v->args, "", v->help);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = { .lockfd = -1 };
	const struct cli_verb *v;
	const char *root = getenv("PVNET_ROOT");
	char self[256];
	ssize_t n;
	int i;

	pv_log_init("pvnet");
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			c.json = true;
		else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
			c.quiet = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return help();
		else
			return cli_fail("unknown option '%s' (see 'pvnet help')", argv[i]);
	}
	if (i >= argc || !strcmp(argv[i], "help"))
		return help();
	v = verb_find(argv[i]);
	if (!v)
		return cli_fail("unknown verb '%s' (see 'pvnet help')", argv[i]);
	if (root && root[0] != '/')
		return cli_fail("--root must be an absolute path");
	pv_strlcpy(c.root, root ? root : CLI_DEFAULT_ROOT, sizeof(c.root));
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return cli_fail("cannot find where pvnet is installed: %s", strerror(errno));
	self[n] = '\0';
	pv_strlcpy(c.bindir, dirname(self), sizeof(c.bindir));
	if (geteuid() != 0)
		return cli_fail("pvnet needs root (network namespaces, TAP devices, bridges); run it with sudo");
	return v->run(&c, argc - i, argv + i);
}
