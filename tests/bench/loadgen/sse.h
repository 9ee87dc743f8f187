/*
 * loadgen's SSE subscribers: an HTTP session each (POST /api/connect,
 * /api/command /join), then GET /api/messages/ROOM on the same keep-alive
 * socket, read as an event stream; and POST /api/disconnect of every
 * session at the end. Through a proxy the stream is chunked (chunk.c) and
 * its last chunk ends it. With --reconnect a lost stream is asked for
 * again with Last-Event-ID: the last "id:" it read. nchan subscribers
 * (nchan.c) share the stream reading. The socket is conn.c's.
 */
#ifndef BD_BENCH_LG_SSE_H
#define BD_BENCH_LG_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "lg.h"

/*
 * c just connected: POST /api/connect {"nickname":"sse<j>_<pid>"} (j
 * counts the SSE subscribers from 0). Joins and subscribes as the answers
 * come (sse_http_response()).
 */
void sse_connect(struct lg *lg, struct lg_conn *c);

/*
 * During c's setup: handles one complete HTTP answer at the start of
 * c->rbuf and sends the next request. Returns true when it consumed one
 * and c is still open; false when the answer is incomplete or c was
 * closed (a failed setup). A 200 to the GET has no length: it makes c a
 * member and leaves the rest of rbuf, the stream, to sse_line().
 */
bool sse_http_response(struct lg *lg, struct lg_conn *c);

/*
 * One line of c's event stream (NUL-ended, len bytes, "\r" stripped):
 * delivers payloads of c's room sent during the run, counts heartbeats,
 * system events and resets, keeps the last id. Only single-line data
 * fields are read.
 */
void sse_line(struct lg *lg, struct lg_conn *c, char *line, size_t len);

/*
 * POST /api/disconnect for every session opened, on one blocking
 * keep-alive connection per HTTP port, so that they do not linger for
 * session_idle_timeout_s into the next scenario. Bounded to 20 s in all;
 * fills lg->teardown_*.
 */
void sse_teardown(struct lg *lg);

#endif
