/* Event storm throttling (see storm.h). */
#include "netback/storm.h"

uint64_t nb_storm_event(struct nb_storm *s, bool spurious)
{
	unsigned shift;
	uint64_t ms;

	if (!spurious) {
		s->consecutive = 0;
		return 0;
	}
	s->total++;
	if (++s->consecutive >= NB_STORM_FATAL)
		return NB_STORM_IS_FATAL;
	if (s->consecutive < 2)
		return 0;
	shift = s->consecutive - 2;
	ms = shift >= 16 ? NB_STORM_MAX_DELAY_MS : (uint64_t)1 << shift;
	if (ms > NB_STORM_MAX_DELAY_MS)
		ms = NB_STORM_MAX_DELAY_MS;
	return ms * 1000000u;
}
