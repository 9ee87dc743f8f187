/*
 * A minimal HTTP/1.1 GET over a loopback socket, enough for /health, and a
 * whitespace-tolerant check of one string member of a flat JSON object.
 */
#ifndef BD_TESTS_HELPERS_THTTP_H
#define BD_TESTS_HELPERS_THTTP_H

#include <stdbool.h>

struct thttp_resp {
	int status;	  /* status code of the response */
	char head[4096];  /* status line and headers */
	char body[16384]; /* body, NUL-terminated */
};

/*
 * GET path from 127.0.0.1:port. Returns false when the connection is
 * refused (nothing listens yet); fails the test on other errors or when
 * no complete response arrives within timeout_ms.
 */
bool thttp_try_get(int port, const char *path, struct thttp_resp *r,
		   int timeout_ms);

/* Like thttp_try_get(); a refused connection fails the test too. */
void thttp_get(int port, const char *path, struct thttp_resp *r);

/*
 * GETs path until the answer has status (the server is up and says so),
 * pacing the attempts; fails after timeout_ms with the last answer. r
 * holds the matching answer.
 */
void thttp_wait_status(int port, const char *path, int status,
		       struct thttp_resp *r, int timeout_ms);

/* Whether the JSON text has "key": "value" (any blanks around ':'). */
bool thttp_json_has(const char *json, const char *key, const char *value);

#endif
