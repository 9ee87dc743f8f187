/*
 * HTTP/1.x request heads (RFC 9112), parsed strictly and without copying:
 * the request line, the header fields the server uses, and the framing of
 * the body. Anything ambiguous about where a request ends (duplicate or
 * malformed Content-Length, Transfer-Encoding, obsolete line folding, bare
 * CR, control bytes) is an error, so that a connection can carry pipelined
 * requests without smuggling. No sockets, no allocation.
 */
#ifndef BD_UTIL_HTTP1_H
#define BD_UTIL_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEAD 8192	/* request line + fields + blank line */
#define HTTP1_MAX_TARGET 1024	/* longer: 414 */
#define HTTP1_MAX_FIELDS 64	/* more: 431 */

enum http1_method {
	HTTP1_GET,
	HTTP1_HEAD,
	HTTP1_POST,
	HTTP1_OTHER,		/* a method we know but never allow: 405 */
};

/* A slice of the parsed buffer. */
struct http1_str {
	const char *p;
	size_t len;
};

struct http1_req {
	enum http1_method method;
	int minor;			/* HTTP/1.<minor>: 0 or 1 */
	struct http1_str path;		/* target up to '?' (starts with /) */
	struct http1_str query;		/* after '?', or empty */
	int64_t content_length;		/* -1: no Content-Length */
	bool keep_alive;		/* by version and Connection */
	bool expect_continue;		/* Expect: 100-continue */
	struct http1_str content_type;
	struct http1_str last_event_id;
	struct http1_str if_none_match;
	struct http1_str accept;
	struct http1_str real_ip;	/* X-Real-IP (a proxy's word) */
};

/*
 * Parses the head at the start of buf[0..len). Returns its length (the
 * body, if any, follows) when complete; 0 when more bytes are needed (len
 * is still under HTTP1_MAX_HEAD); or minus the HTTP status to answer
 * before closing the connection: -400 malformed or ambiguous framing,
 * -411 Transfer-Encoding chunked (bodies must have a Content-Length),
 * -414 target too long, -431 head too large or too many fields, -501
 * unknown method or transfer coding, -505 not HTTP/1.x. *why gets a short
 * reason on errors. r's slices point into buf.
 */
int http1_parse(const char *buf, size_t len, struct http1_req *r,
		const char **why);

/* The value of query parameter `name` (percent-decoded, '+' as space)
 * into out (NUL-terminated). Returns its length, or -1 when absent, not
 * decodable, or longer than cap - 1. */
int http1_query_param(struct http1_str query, const char *name, char *out,
		      size_t cap);

/* Whether s equals lit, ignoring ASCII case. */
bool http1_str_ieq(struct http1_str s, const char *lit);

/* The reason phrase of a status code ("" for unknown ones). */
const char *http1_reason(int status);

#endif
