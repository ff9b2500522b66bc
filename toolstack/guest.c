/* Guest verbs: filled in when the hypervisor client library lands. */
#include "toolstack/verbs.h"

const struct cli_verb guest_verbs[] = {
	{ NULL, NULL, NULL, NULL },
};
