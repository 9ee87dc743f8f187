/*
 * loadgen's HTTP/1.1 helpers: formatting a request, a blocking keep-alive
 * connection with timeouts for one request at a time, and scraping the
 * few JSON fields loadgen reads. No state of the run; API mode reads its
 * answers itself (api.c), so that it can time them.
 */
#ifndef BD_BENCH_LG_HTTP_H
#define BD_BENCH_LG_HTTP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#define HTTP_TIMEOUT_S 2	/* http_open(): each send and receive */

/*
 * Writes "METHOD TARGET HTTP/1.1" with a Host header into buf: with json,
 * a Content-Type: application/json body; else, with event_stream, an
 * Accept: text/event-stream header. Returns its length, or -1 when it does
 * not fit in cap.
 */
int http_format(char *buf, size_t cap, const char *method, const char *target,
		const char *host, const char *json, bool event_stream);

/*
 * A blocking connection to addr whose sends and receives time out after
 * HTTP_TIMEOUT_S: the descriptor, or -1.
 */
int http_open(const struct sockaddr_in *addr);

/*
 * Sends req on fd and reads one answer of at most 4 KiB with a
 * Content-Length: its status, its body (NUL-ended, truncated to cap) in
 * body. -1 when it failed; fd is then out of step and should be closed.
 */
int http_call(int fd, const char *req, char *body, size_t cap);

/* The number after "key": in json; -1 when there is none. */
long long http_json_int(const char *json, const char *key);
double http_json_num(const char *json, const char *key);

/*
 * Copies the 32 hex digits of "session_id":"..." in json into sid
 * (NUL-ended); false when json has none.
 */
bool http_json_sid(const char *json, char sid[33]);

#endif
