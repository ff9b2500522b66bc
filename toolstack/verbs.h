/*
 * toolstack/verbs.h — the verb tables each file contributes, and lookup.
 * Thread: single-threaded CLI.
 */
#ifndef PVNET_TOOLSTACK_VERBS_H
#define PVNET_TOOLSTACK_VERBS_H

#include <stdbool.h>
#include <stddef.h>

#include "toolstack/cli.h"

extern const struct cli_verb host_verbs[];
extern const struct cli_verb guest_verbs[];
extern const struct cli_verb migrate_verbs[];
extern const struct cli_verb demo_verbs[];

const struct cli_verb *verb_find(const char *name);
/* Number of guests on `host`; their names comma-separated into list. */
int host_guests(const struct cli *c, const char *host, char *list, size_t len);
/* 0 if every daemon of `host` runs; else -EHOSTDOWN and in err "host 'H' is
 * not healthy: <state>" (create and migrate refuse such a destination). */
int host_check_healthy(const struct cli *c, const char *host, char *err, size_t errlen);

/* The operations behind the verbs (caller holds the lock). 0 / -errno with
 * the reason in err. */
int host_create(struct cli *c, const char *name, const char *sw, unsigned maxq, bool affinity,
		char *err, size_t errlen);
void host_teardown(const struct cli *c, const char *name);
int switch_create(struct cli *c, const char *name, char *err, size_t errlen);
void switch_destroy(const struct cli *c, const char *name);
int client_create(struct cli *c, const char *name, const char *sw, const char *const *ips, unsigned nip,
		  char *err, size_t errlen);
void client_destroy(const struct cli *c, const char *name);

#endif
