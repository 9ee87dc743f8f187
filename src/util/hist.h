/*
 * A latency histogram in fixed memory: values (microseconds) below 64 are
 * counted exactly, larger ones in 32 buckets per power of two (about 3%
 * wide), up to 2^40. Quantiles come back as the middle of their bucket.
 */
#ifndef BD_UTIL_HIST_H
#define BD_UTIL_HIST_H

#include <stdint.h>

#define HIST_BUCKETS (64 + 35 * 32)

struct hist {
	uint32_t counts[HIST_BUCKETS];
	uint64_t count;
	uint64_t max;
	uint64_t sum;
};

void hist_record(struct hist *h, uint64_t v);
/* The q-quantile (0 <= q <= 1) of what was recorded; 0 when nothing. */
uint64_t hist_quantile(const struct hist *h, double q);
/* How many recorded values are <= v (exact below 64, to the bucket above). */
uint64_t hist_count_le(const struct hist *h, uint64_t v);

#endif
