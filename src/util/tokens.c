/* Token buckets (see tokens.h). */
#include "util/tokens.h"

bool tokens_take(struct tokens *t, unsigned rate, unsigned burst,
		 int64_t now_us)
{
	return !rate || tokens_take_per(t, rate, burst, now_us);
}

double tokens_level(const struct tokens *t, double per_s, unsigned burst,
		    int64_t now_us)
{
	double cap = burst ? (double)burst : 1, l = t->level;

	if (!t->started)
		return cap;
	if (now_us > t->last_us)
		l += (double)(now_us - t->last_us) * per_s / 1e6;
	return l < cap ? l : cap;
}

bool tokens_take_per(struct tokens *t, double per_s, unsigned burst,
		     int64_t now_us)
{
	t->level = tokens_level(t, per_s, burst, now_us);
	t->started = true;
	t->last_us = now_us > t->last_us ? now_us : t->last_us;
	if (t->level < 1)
		return false;
	t->level -= 1;
	return true;
}
