/* Token buckets (see tokens.h). */
#include "util/tokens.h"

bool tokens_take(struct tokens *t, unsigned rate, unsigned burst,
		 int64_t now_us)
{
	double cap = burst ? (double)burst : 1;

	if (!rate)
		return true;
	if (!t->started) {
		t->started = true;
		t->level = cap;
	} else if (now_us > t->last_us) {
		t->level += (double)(now_us - t->last_us) * rate / 1e6;
		if (t->level > cap)
			t->level = cap;
	}
	t->last_us = now_us > t->last_us ? now_us : t->last_us;
	if (t->level < 1)
		return false;
	t->level -= 1;
	return true;
}
