/* Fixed-bucket histograms (see buckets.h). */
#include "util/buckets.h"

#include <string.h>

void buckets_init(struct buckets *b, const double *bounds, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->bounds = bounds;
	b->n = n < BUCKETS_MAX ? n : BUCKETS_MAX;
}

void buckets_add(struct buckets *b, double v)
{
	size_t i = 0;

	while (i < b->n && v > b->bounds[i])
		i++;
	b->counts[i]++;
	b->count++;
	b->sum += v;
}

uint64_t buckets_cumulative(const struct buckets *b, size_t i)
{
	uint64_t c = 0;

	for (size_t k = 0; k <= i && k <= b->n; k++)
		c += b->counts[k];
	return c;
}
