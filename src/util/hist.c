/* Latency histograms (see hist.h). */
#include "util/hist.h"

static unsigned msb(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

static unsigned index_of(uint64_t v)
{
	unsigned e, shift, i;

	if (v < 64)
		return (unsigned)v;
	e = msb(v);		/* >= 6 */
	if (e > 40) {
		e = 40;
		v = (uint64_t)1 << 41;
		v--;
	}
	shift = e - 5;
	i = 64 + (e - 6) * 32 + (unsigned)((v >> shift) & 31);
	return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

/* Lowest value of bucket i and its width. */
static void bucket_span(unsigned i, uint64_t *lo, uint64_t *width)
{
	unsigned e, shift;

	if (i < 64) {
		*lo = i;
		*width = 1;
		return;
	}
	e = (i - 64) / 32 + 6;
	shift = e - 5;
	*lo = (uint64_t)(32 + (i - 64) % 32) << shift;
	*width = (uint64_t)1 << shift;
}

void hist_record(struct hist *h, uint64_t v)
{
	h->counts[index_of(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0, lo, width;

	if (!h->count)
		return 0;
	if (q <= 0)
		q = 0;
	want = (uint64_t)(q * (double)h->count + 0.5);
	if (want < 1)
		want = 1;
	if (want > h->count)
		want = h->count;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= want) {
			if (i == HIST_BUCKETS - 1)
				return h->max;	/* the catch-all bucket */
			bucket_span(i, &lo, &width);
			lo += width / 2;
			return lo < h->max ? lo : h->max;
		}
	}
	return h->max;
}

uint64_t hist_count_le(const struct hist *h, uint64_t v)
{
	unsigned last = index_of(v);
	uint64_t n = 0;

	for (unsigned i = 0; i <= last; i++)
		n += h->counts[i];
	return n;
}
