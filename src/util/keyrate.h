/*
 * Token buckets by key (a source address): `per_min` tokens a minute, at
 * most `burst` saved up, a full bucket for a key not seen before. Keys
 * whose bucket has filled up again are forgotten (checked at most once a
 * minute of the caller's clock), so the table holds only the keys that
 * spent something lately; it holds at most `max_keys`, and a new key
 * finds no room while that many are still refilling: refused (counted in
 * `full`), never a key let through untracked. Pure arithmetic on the
 * caller's clock.
 */
#ifndef BD_UTIL_KEYRATE_H
#define BD_UTIL_KEYRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/strmap.h"

#define KEYRATE_KEY_MAX 64	/* longest key, bytes */

struct keyrate {
	struct strmap map;	/* key -> struct keyrate_ent */
	unsigned per_min, burst;
	size_t max_keys;
	int64_t swept_us;	/* last forget pass */
	uint64_t refused;	/* takes refused: no token */
	uint64_t full;		/* of them: no room for a new key */
};

/* per_min 0: no limit (nothing is stored). */
void keyrate_init(struct keyrate *kr, unsigned per_min, unsigned burst,
		  size_t max_keys);
void keyrate_fini(struct keyrate *kr);
/* Takes one of key's tokens when it has one. Keys longer than
 * KEYRATE_KEY_MAX are cut to it. */
bool keyrate_take(struct keyrate *kr, const char *key, int64_t now_us);
/* Keys held now. */
size_t keyrate_count(const struct keyrate *kr);

#endif
