/*
 * loadgen's small helpers: the monotonic clock and durations, memory that
 * exits on exhaustion, and the SIGINT/SIGTERM flag. No sockets, no state of
 * the run.
 */
#ifndef BD_BENCH_LG_UTIL_H
#define BD_BENCH_LG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTIL_NSEC 1000000000ull

/* CLOCK_MONOTONIC in ns. */
uint64_t util_now_ns(void);

/* CLOCK_REALTIME minus CLOCK_MONOTONIC, from the closest of a few samples. */
int64_t util_clock_offset(void);

/* ns as seconds. */
double util_secs(uint64_t ns);

/* Microseconds from from to to: 0 when to is not after from, capped. */
uint32_t util_us(uint64_t from, uint64_t to);

/*
 * calloc() and realloc() that print "loadgen: out of memory" and exit 2
 * when there is none; util_calloc() of 0 items still returns a pointer.
 */
void *util_calloc(size_t n, size_t size);
void *util_realloc(void *p, size_t size);

/*
 * Sets the flag util_interrupted() reads on SIGINT and SIGTERM, and
 * ignores SIGPIPE (writes to a closed socket fail with EPIPE instead).
 */
void util_catch_signals(void);

/* Whether SIGINT or SIGTERM came since util_catch_signals(). */
bool util_interrupted(void);

#endif
