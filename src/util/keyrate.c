/* Token buckets by key (see keyrate.h). */
#include "util/keyrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/tokens.h"
#include "util/xalloc.h"

#define SWEEP_US (60 * 1000000LL)

struct keyrate_ent {
	char key[KEYRATE_KEY_MAX + 1];
	struct tokens t;
};

void keyrate_init(struct keyrate *kr, unsigned per_min, unsigned burst,
		  size_t max_keys)
{
	memset(kr, 0, sizeof(*kr));
	kr->per_min = per_min;
	kr->burst = burst ? burst : 1;
	kr->max_keys = max_keys ? max_keys : 1;
	strmap_init(&kr->map);
}

void keyrate_fini(struct keyrate *kr)
{
	for (size_t i = 0; i < kr->map.cap; i++)
		if (kr->map.slots[i].key)
			free(kr->map.slots[i].val);
	strmap_fini(&kr->map);
}

size_t keyrate_count(const struct keyrate *kr)
{
	return kr->map.count;
}

/* Forgets the keys whose bucket is full again: they would start full. */
static void forget_full(struct keyrate *kr, int64_t now_us)
{
	struct keyrate_ent **gone;
	size_t n = 0;

	kr->swept_us = now_us;
	if (!kr->map.count)
		return;
	gone = xcalloc(kr->map.count, sizeof(*gone));
	for (size_t i = 0; i < kr->map.cap; i++) {
		struct keyrate_ent *e = kr->map.slots[i].val;

		if (kr->map.slots[i].key &&
		    tokens_level(&e->t, kr->per_min / 60.0, kr->burst,
				 now_us) >= kr->burst)
			gone[n++] = e;
	}
	for (size_t i = 0; i < n; i++) {
		strmap_del(&kr->map, gone[i]->key);
		free(gone[i]);
	}
	free(gone);
}

bool keyrate_take(struct keyrate *kr, const char *key, int64_t now_us)
{
	char k[KEYRATE_KEY_MAX + 1];
	struct keyrate_ent *e;

	if (!kr->per_min)
		return true;
	if (now_us - kr->swept_us >= SWEEP_US)
		forget_full(kr, now_us);
	snprintf(k, sizeof(k), "%s", key);
	e = strmap_get(&kr->map, k);
	if (!e) {
		/* Full: look again, at most once a second. */
		if (kr->map.count >= kr->max_keys &&
		    now_us - kr->swept_us >= 1000000)
			forget_full(kr, now_us);
		if (kr->map.count >= kr->max_keys) {
			kr->refused++;
			kr->full++;
			return false;
		}
		e = xcalloc(1, sizeof(*e));
		memcpy(e->key, k, sizeof(k));
		strmap_put(&kr->map, e->key, e);
	}
	if (tokens_take_per(&e->t, kr->per_min / 60.0, kr->burst, now_us))
		return true;
	kr->refused++;
	return false;
}
