/*
 * loadgen's printed results: percentiles, the latency lines both modes
 * print, and the report of a chat run with its verdict. run.sh and
 * BENCHMARKS.md read these lines: keep their names and shapes.
 */
#ifndef BD_BENCH_LG_REPORT_H
#define BD_BENCH_LG_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lg.h"

/*
 * Sorts v (n latencies in us) and prints
 * "name: p50 X p90 X p99 X max X (n N)" in ms, nearest rank.
 */
void report_lat(const char *name, uint32_t *v, size_t n);

/* Prints "loadgen_cpu: user X s sys X s" (this process so far). */
void report_rusage(void);

/*
 * Whether the run asks the servers' GET /health at the end: Baby Discord
 * with HTTP ports given or SSE subscribers (a peer has no /health).
 */
bool report_has_health(const struct lg *lg);

/*
 * Prints the report of the run (see report.c for what each line means)
 * and "result: PASS" or "result: FAIL (why)". Returns the exit status:
 * 0 when every member got every message once and in order, else 1.
 * Sorts the latency arrays.
 */
int report_run(struct lg *lg);

#endif
