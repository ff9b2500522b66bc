/*
 * xenstored/map.h — a string-keyed hash map (open addressing, linear probing,
 * backward-shift deletion) used for watch paths and transaction records.
 *
 * Pure, single-threaded. The map never copies or frees keys or values: the key
 * must stay valid while its entry exists (store it inside the value).
 * Errors: xsd_map_put returns 0 or ENOMEM (positive, like the store).
 */
#ifndef PVNET_XENSTORED_MAP_H
#define PVNET_XENSTORED_MAP_H

#include <stddef.h>
#include <stdint.h>

struct xsd_map_ent {
	const char *key;
	void *val;
	uint32_t hash;
	uint32_t klen;
};

struct xsd_map {
	struct xsd_map_ent *ents;
	uint32_t cap;  /* power of two, or 0 */
	uint32_t n;
};

uint32_t xsd_hash(const char *s, size_t len);
/* The hash of a key extended by len more bytes, from the hash of the key
 * (xsd_hash(a+b) == xsd_hash_more(xsd_hash(a), b)); the seed is xsd_hash(s, 0). */
uint32_t xsd_hash_more(uint32_t h, const char *s, size_t len);
void xsd_map_init(struct xsd_map *m);
/* Frees the table only (not keys or values). */
void xsd_map_fini(struct xsd_map *m);
void *xsd_map_get(const struct xsd_map *m, const char *key, size_t klen);
/* The same, with the key's hash already known. */
void *xsd_map_get_hashed(const struct xsd_map *m, const char *key, size_t klen, uint32_t hash);
/* Insert or replace. 0 or ENOMEM. */
int xsd_map_put(struct xsd_map *m, const char *key, size_t klen, void *val);
/* Remove and return the value, or NULL. */
void *xsd_map_del(struct xsd_map *m, const char *key, size_t klen);

/* Iterate: for (i = 0; (v = xsd_map_next(m, &i)); ) — no changes while iterating. */
void *xsd_map_next(const struct xsd_map *m, uint32_t *pos);

#endif
