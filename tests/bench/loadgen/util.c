/*
 * loadgen: clock, memory and signal helpers (util.h). Everything else of
 * the run lives in the other modules.
 */
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t util_signalled;

static void util_on_signal(int sig)
{
	(void)sig;
	util_signalled = 1;
}

uint64_t util_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UTIL_NSEC + (uint64_t)ts.tv_nsec;
}

int64_t util_clock_offset(void)
{
	int64_t best = 0, off, span, best_span = INT64_MAX;
	struct timespec a, r, b;
	int i;

	for (i = 0; i < 5; i++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		clock_gettime(CLOCK_REALTIME, &r);
		clock_gettime(CLOCK_MONOTONIC, &b);
		span = (b.tv_sec - a.tv_sec) * (int64_t)UTIL_NSEC +
		       (b.tv_nsec - a.tv_nsec);
		off = r.tv_sec * (int64_t)UTIL_NSEC + r.tv_nsec -
		      (a.tv_sec * (int64_t)UTIL_NSEC + a.tv_nsec + span / 2);
		if (span < best_span) {
			best_span = span;
			best = off;
		}
	}
	return best;
}

double util_secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

uint32_t util_us(uint64_t from, uint64_t to)
{
	uint64_t us = to > from ? (to - from) / 1000 : 0;

	return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void util_oom(void)
{
	fprintf(stderr, "loadgen: out of memory\n");
	exit(2);
}

void *util_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		util_oom();
	return p;
}

void *util_realloc(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p)
		util_oom();
	return p;
}

void util_catch_signals(void)
{
	struct sigaction sa = { .sa_handler = util_on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

bool util_interrupted(void)
{
	return util_signalled;
}
