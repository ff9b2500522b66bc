#include "common/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void pv_sbuf_fixed(struct pv_sbuf *b, char *buf, size_t cap)
{
	b->p = buf;
	b->n = 0;
	b->cap = cap;
	b->oom = false;
	b->fixed = true;
	if (cap)
		buf[0] = '\0';
}

/* Room for `need` more bytes and a NUL; false if there cannot be. */
static bool grow(struct pv_sbuf *b, size_t need)
{
	size_t cap;
	char *np;

	if (b->p && b->n + need < b->cap)
		return true;
	if (b->fixed)
		return false;
	cap = b->cap ? b->cap : 256;
	while (cap <= b->n + need)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np)
		return false;
	b->p = np;
	b->cap = cap;
	return true;
}

void pv_sbuf_printf(struct pv_sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int m;

	if (b->oom || (b->fixed && b->cap == 0))
		return;
	va_start(ap, fmt);
	m = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (m < 0) {
		b->oom = true;
		return;
	}
	if (!grow(b, (size_t)m)) {
		if (!b->fixed) {
			b->oom = true;
			return;
		}
		/* Bounded: as much as fits. */
		va_start(ap, fmt);
		vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		b->n = b->cap - 1;
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
	va_end(ap);
	b->n += (size_t)m;
}

void pv_sbuf_json_str(struct pv_sbuf *b, const char *s)
{
	pv_sbuf_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			pv_sbuf_printf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			pv_sbuf_printf(b, "\\u%04x", c);
		else
			pv_sbuf_printf(b, "%c", c);
	}
	pv_sbuf_printf(b, "\"");
}

void pv_sbuf_free(struct pv_sbuf *b)
{
	if (!b->fixed)
		free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}
