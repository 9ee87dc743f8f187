/*
 * A token bucket: `rate` tokens a second, at most `burst` saved up; a
 * full bucket to start with. Pure arithmetic on the caller's clock.
 */
#ifndef BD_UTIL_TOKENS_H
#define BD_UTIL_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

struct tokens {
	double level;		/* tokens saved up */
	int64_t last_us;	/* when level was computed */
	bool started;
};

/* Takes one token when there is one (always with rate 0: no limit). */
bool tokens_take(struct tokens *t, unsigned rate, unsigned burst,
		 int64_t now_us);
/* The level t would have at now_us (refilled at per_s a second, at most
 * burst; a bucket not started yet is full), without taking anything. */
double tokens_level(const struct tokens *t, double per_s, unsigned burst,
		    int64_t now_us);
/* The same with a fractional rate: per_s tokens a second (> 0). */
bool tokens_take_per(struct tokens *t, double per_s, unsigned burst,
		     int64_t now_us);

#endif
