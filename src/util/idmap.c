/* Linear-probing hash map with backward-shift deletion (no tombstones). */
#include "util/idmap.h"

#include <assert.h>
#include <stdlib.h>

#include "util/xalloc.h"

static size_t slot_of(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

void idmap_init(struct idmap *m)
{
	m->cap = 16;
	m->count = 0;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
}

void idmap_fini(struct idmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->count = 0;
}

static void grow(struct idmap *m)
{
	struct idmap_slot *old = m->slots;
	size_t oldcap = m->cap;

	m->cap *= 2;
	m->count = 0;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key)
			idmap_put(m, old[i].key, old[i].val);
	free(old);
}

void idmap_put(struct idmap *m, uint64_t key, void *val)
{
	size_t i;

	assert(key);
	if ((m->count + 1) * 4 > m->cap * 3)
		grow(m);
	for (i = slot_of(key, m->cap); m->slots[i].key;
	     i = (i + 1) & (m->cap - 1)) {
		if (m->slots[i].key == key) {
			m->slots[i].val = val;
			return;
		}
	}
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->count++;
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
	for (size_t i = slot_of(key, m->cap); m->slots[i].key;
	     i = (i + 1) & (m->cap - 1))
		if (m->slots[i].key == key)
			return m->slots[i].val;
	return NULL;
}

void idmap_del(struct idmap *m, uint64_t key)
{
	size_t mask = m->cap - 1, i, j;

	for (i = slot_of(key, m->cap); m->slots[i].key != key; i = (i + 1) & mask)
		if (!m->slots[i].key)
			return;
	/* Shift later members of the probe run back into the hole. */
	for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t home = slot_of(m->slots[j].key, m->cap);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].key = 0;
	m->slots[i].val = NULL;
	m->count--;
}
