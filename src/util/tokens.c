/* Token buckets (see tokens.h). */
#include "util/tokens.h"

bool tokens_take(struct tokens *t, unsigned rate, unsigned burst,
		 int64_t now_us)
{
	return !rate || tokens_take_per(t, rate, burst, now_us);
}

bool tokens_take_per(struct tokens *t, double per_s, unsigned burst,
		     int64_t now_us)
{
	double cap = burst ? (double)burst : 1;

	if (!t->started) {
		t->started = true;
		t->level = cap;
	} else if (now_us > t->last_us) {
		t->level += (double)(now_us - t->last_us) * per_s / 1e6;
		if (t->level > cap)
			t->level = cap;
	}
	t->last_us = now_us > t->last_us ? now_us : t->last_us;
	if (t->level < 1)
		return false;
	t->level -= 1;
	return true;
}
