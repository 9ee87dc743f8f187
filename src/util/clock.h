/* The monotonic clock, for durations and timeouts (never wall time). */
#ifndef BD_UTIL_CLOCK_H
#define BD_UTIL_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t clock_mono_ns(void);

#endif
