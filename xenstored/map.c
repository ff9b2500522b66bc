#include "xenstored/map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint32_t xsd_hash_more(uint32_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {   /* FNV-1a */
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

uint32_t xsd_hash(const char *s, size_t len)
{
	return xsd_hash_more(2166136261u, s, len);
}

void xsd_map_init(struct xsd_map *m)
{
	memset(m, 0, sizeof(*m));
}

void xsd_map_fini(struct xsd_map *m)
{
	free(m->ents);
	xsd_map_init(m);
}

static struct xsd_map_ent *find(const struct xsd_map *m, const char *key, size_t klen, uint32_t h)
{
	if (!m->cap)
		return NULL;
	for (uint32_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct xsd_map_ent *e = &m->ents[i];
		if (!e->key)
			return NULL;
		if (e->hash == h && e->klen == klen && !memcmp(e->key, key, klen))
			return e;
	}
}

void *xsd_map_get(const struct xsd_map *m, const char *key, size_t klen)
{
	return xsd_map_get_hashed(m, key, klen, xsd_hash(key, klen));
}

void *xsd_map_get_hashed(const struct xsd_map *m, const char *key, size_t klen, uint32_t hash)
{
	struct xsd_map_ent *e = find(m, key, klen, hash);
	return e ? e->val : NULL;
}

static void insert(struct xsd_map_ent *ents, uint32_t cap, const struct xsd_map_ent *ne)
{
	uint32_t i = ne->hash & (cap - 1);

	while (ents[i].key)
		i = (i + 1) & (cap - 1);
	ents[i] = *ne;
}

static int grow(struct xsd_map *m)
{
	uint32_t cap = m->cap ? m->cap * 2 : 16;
	struct xsd_map_ent *ents = calloc(cap, sizeof(*ents));

	if (!ents)
		return ENOMEM;
	for (uint32_t i = 0; i < m->cap; i++)
		if (m->ents[i].key)
			insert(ents, cap, &m->ents[i]);
	free(m->ents);
	m->ents = ents;
	m->cap = cap;
	return 0;
}

int xsd_map_put(struct xsd_map *m, const char *key, size_t klen, void *val)
{
	uint32_t h = xsd_hash(key, klen);
	struct xsd_map_ent *e = find(m, key, klen, h);
	struct xsd_map_ent ne = { .key = key, .val = val, .hash = h, .klen = (uint32_t)klen };

	if (e) {
		*e = ne;
		return 0;
	}
	if ((m->n + 1) * 4 > m->cap * 3 && grow(m))
		return ENOMEM;
	insert(m->ents, m->cap, &ne);
	m->n++;
	return 0;
}

void *xsd_map_del(struct xsd_map *m, const char *key, size_t klen)
{
	struct xsd_map_ent *e = find(m, key, klen, xsd_hash(key, klen));
	uint32_t i, j, mask = m->cap - 1;
	void *val;

	if (!e)
		return NULL;
	val = e->val;
	/* Backward-shift: move later members of the probe run into the hole. */
	i = (uint32_t)(e - m->ents);
	for (j = (i + 1) & mask; m->ents[j].key; j = (j + 1) & mask) {
		uint32_t home = m->ents[j].hash & mask;
		/* Entry j may move to i if its home is not in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->ents[i] = m->ents[j];
			i = j;
		}
	}
	memset(&m->ents[i], 0, sizeof(m->ents[i]));
	m->n--;
	return val;
}

void *xsd_map_next(const struct xsd_map *m, uint32_t *pos)
{
	while (*pos < m->cap) {
		struct xsd_map_ent *e = &m->ents[(*pos)++];
		if (e->key)
			return e->val;
	}
	return NULL;
}
