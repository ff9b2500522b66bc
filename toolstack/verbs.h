/*
 * toolstack/verbs.h — the verb tables each file contributes, and lookup.
 * Thread: single-threaded CLI.
 */
#ifndef PVNET_TOOLSTACK_VERBS_H
#define PVNET_TOOLSTACK_VERBS_H

#include <stddef.h>

#include "toolstack/cli.h"

extern const struct cli_verb host_verbs[];
extern const struct cli_verb guest_verbs[];

const struct cli_verb *verb_find(const char *name);
/* Number of guests on `host`; their names comma-separated into list. */
int host_guests(const struct cli *c, const char *host, char *list, size_t len);

#endif
