/*
 * loadgen's sockets and its one epoll loop: non-blocking connects, buffered
 * writes, reads split into lines (or, for SSE subscribers in setup, into
 * HTTP answers), closing, and the loop that paces setup, hold and run and
 * decides when to stop. What a line means is line.c's and sse.c's.
 */
#ifndef BD_BENCH_LG_CONN_H
#define BD_BENCH_LG_CONN_H

#include <stddef.h>

#include "lg.h"

/*
 * Raises RLIMIT_NOFILE for every connection, creates the epoll instance
 * and the rate timer (lg->tfd, on the loop). Exits 2 when it cannot.
 */
void conn_init(struct lg *lg);

/* Closes every socket, the timer and the epoll instance. */
void conn_fini(struct lg *lg);

/*
 * Queues len bytes of buf on c and writes what the socket takes now; the
 * rest goes out when c is writable. Nothing when c is closed. On a write
 * error c is closed (conn_lose()).
 */
void conn_write(struct lg *lg, struct lg_conn *c, const char *buf, size_t len);

/* Bytes queued on c and not written yet. */
size_t conn_pending(const struct lg_conn *c);

/*
 * Closes c's socket, frees its write buffer and moves it to s. LG_FAILED
 * counts a setup failure; closing a member during the run counts it as
 * lost; both print why (lg_show()).
 */
void conn_close(struct lg *lg, struct lg_conn *c, enum lg_state s,
		const char *why);

/*
 * conn_close() as LG_CLOSED when c was a member during the run, else as
 * LG_FAILED.
 */
void conn_lose(struct lg *lg, struct lg_conn *c, const char *why);

/*
 * --reconnect: c (coming back, still connected) tries its step again in a
 * moment: a /nick refused because the name is still held.
 */
void conn_retry_later(struct lg *lg, struct lg_conn *c);

/*
 * Runs the setup (connects and joins, at most --concurrency in flight),
 * the --hold, then the run until lg->stop_reason is set: complete,
 * --duration-max, --idle-timeout, all connections lost, a failed setup or
 * a signal. Exits 2 on a system error.
 */
void conn_loop(struct lg *lg);

#endif
