/* A hash map from nonzero 64-bit ids to pointers (open addressing). */
#ifndef BD_UTIL_IDMAP_H
#define BD_UTIL_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap_slot {
	uint64_t key;	/* 0: empty */
	void *val;
};

struct idmap {
	struct idmap_slot *slots;	/* cap slots, cap a power of two */
	size_t cap;
	size_t count;			/* live entries */
};

void idmap_init(struct idmap *m);
void idmap_fini(struct idmap *m);
/* Inserts or replaces; key must be nonzero. */
void idmap_put(struct idmap *m, uint64_t key, void *val);
void *idmap_get(const struct idmap *m, uint64_t key);
/* Removes the entry if present. */
void idmap_del(struct idmap *m, uint64_t key);

#endif
