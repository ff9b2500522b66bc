/*
 * common/sbuf.h — a string being built with printf-style appends.
 *
 * What: growing (zero-initialised struct: malloc'd, doubled as needed) or
 * bounded (pv_sbuf_fixed: the caller's buffer, never overflowed, silently
 * truncated), plus a JSON string writer (quotes, escapes `"` `\` and every
 * byte outside 0x20..0x7e as \u00XX), for the control sockets' answers and
 * the trace's renderings.
 * Thread: one builder per thread.
 * Errors: a failed allocation sets `oom` and later appends do nothing; a
 * bounded buffer that fills up sets `oom` too (the text is truncated).
 * Ownership: a growing buffer's `p` is the caller's to free (pv_sbuf_free
 * or free(p)); a bounded one's is the caller's own array. `p` is
 * NUL-terminated whenever it is not NULL.
 */
#ifndef PVNET_COMMON_SBUF_H
#define PVNET_COMMON_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct pv_sbuf {
	char *p;
	size_t n, cap;
	bool oom;
	bool fixed;
};

/* Bounded, into buf[0..cap) (cap >= 1). */
void pv_sbuf_fixed(struct pv_sbuf *b, char *buf, size_t cap);
void pv_sbuf_printf(struct pv_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "s", quoted and escaped. */
void pv_sbuf_json_str(struct pv_sbuf *b, const char *s);
void pv_sbuf_free(struct pv_sbuf *b);

#endif
