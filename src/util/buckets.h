/*
 * A histogram of fixed buckets, as Prometheus exposes them: counts of
 * observations up to each upper bound (the last bucket is +Inf), their
 * number and their sum. Fixed memory, no allocation.
 */
#ifndef BD_UTIL_BUCKETS_H
#define BD_UTIL_BUCKETS_H

#include <stddef.h>
#include <stdint.h>

#define BUCKETS_MAX 24

struct buckets {
	const double *bounds;		/* n increasing upper bounds */
	size_t n;
	uint64_t counts[BUCKETS_MAX + 1]; /* [n]: above the last bound */
	uint64_t count;
	double sum;
};

/* bounds must outlive b; at most BUCKETS_MAX of them. */
void buckets_init(struct buckets *b, const double *bounds, size_t n);
void buckets_add(struct buckets *b, double v);
/* Observations <= bounds[i] (i == n: all of them). */
uint64_t buckets_cumulative(const struct buckets *b, size_t i);

#endif
