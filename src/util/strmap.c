/* Linear-probing string map with backward-shift deletion, as idmap.c. */
#include "util/strmap.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* FNV-1a, 64-bit. */
static size_t hash_of(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h ^ (h >> 32));
}

void strmap_init(struct strmap *m)
{
	m->cap = 16;
	m->count = 0;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
}

void strmap_fini(struct strmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->count = 0;
}

/* The slot holding key, or the empty slot ending its probe run. */
static size_t find(const struct strmap *m, const char *key, size_t h)
{
	size_t i;

	for (i = h & (m->cap - 1); m->slots[i].key;
	     i = (i + 1) & (m->cap - 1))
		if (m->slots[i].hash == h && !strcmp(m->slots[i].key, key))
			break;
	return i;
}

static void grow(struct strmap *m)
{
	struct strmap_slot *old = m->slots;
	size_t oldcap = m->cap;

	m->cap *= 2;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < oldcap; i++) {
		size_t j;

		if (!old[i].key)
			continue;
		for (j = old[i].hash & (m->cap - 1); m->slots[j].key;
		     j = (j + 1) & (m->cap - 1))
			;
		m->slots[j] = old[i];
	}
	free(old);
}

void strmap_put(struct strmap *m, const char *key, void *val)
{
	size_t h = hash_of(key), i;

	assert(key);
	if ((m->count + 1) * 4 > m->cap * 3)
		grow(m);
	i = find(m, key, h);
	if (!m->slots[i].key)
		m->count++;
	m->slots[i].key = key;
	m->slots[i].hash = h;
	m->slots[i].val = val;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	size_t i = find(m, key, hash_of(key));

	return m->slots[i].key ? m->slots[i].val : NULL;
}

void strmap_del(struct strmap *m, const char *key)
{
	size_t mask = m->cap - 1, i, j;

	i = find(m, key, hash_of(key));
	if (!m->slots[i].key)
		return;
	/* Shift later members of the probe run back into the hole. */
	for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].key = NULL;
	m->slots[i].val = NULL;
	m->count--;
}
