/*
 * loadgen's API mode (--api-requests N): one HTTP session in a room of its
 * own, then N requests of each kind (POST /api/message, POST /api/command
 * /help, GET /api/rooms), one at a time, and their report.
 */
#ifndef BD_BENCH_LG_API_H
#define BD_BENCH_LG_API_H

#include "lg.h"

/*
 * Runs API mode on the ports of lg->o.http_addr (lg_init() done, signals
 * caught, servers sampled SERVER_BEFORE): round i sends one request of
 * each kind, request k of round i to port (i + k) % P, until N rounds,
 * --duration-max or a signal; then POST /api/disconnect and the report.
 * Returns the exit status: 0 when every request was answered 200 as
 * expected, 1 otherwise.
 */
int api_run(struct lg *lg);

#endif
