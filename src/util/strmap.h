/*
 * A hash map from NUL-terminated strings to pointers (open addressing).
 * Keys are borrowed: each must stay valid and unchanged while its entry
 * is in the map (typically a name stored in the value itself).
 */
#ifndef BD_UTIL_STRMAP_H
#define BD_UTIL_STRMAP_H

#include <stddef.h>

struct strmap_slot {
	const char *key;	/* NULL: empty */
	size_t hash;		/* of key, kept to skip string compares */
	void *val;
};

struct strmap {
	struct strmap_slot *slots;	/* cap slots, cap a power of two */
	size_t cap;
	size_t count;			/* live entries */
};

void strmap_init(struct strmap *m);
void strmap_fini(struct strmap *m);
/* Inserts or replaces (then the entry keeps the new key pointer). */
void strmap_put(struct strmap *m, const char *key, void *val);
/* The value stored under key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* Removes the entry if present. */
void strmap_del(struct strmap *m, const char *key);

#endif
