/*
 * A small HTTP/1.1 client over loopback sockets: GET for /health, any
 * request (method, headers, body) for the JSON API, raw bytes for
 * malformed input, JSON bodies through jansson, and the Baby Discord API
 * calls (connect, command, message) with expectations that report the
 * caller's file:line.
 */
#ifndef BD_TESTS_HELPERS_THTTP_H
#define BD_TESTS_HELPERS_THTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "trun.h"

#define THTTP_SID_LEN 32 /* hex characters of a session id */

struct thttp_resp {
	int status;	  /* status code of the response, 0 for none */
	char head[4096];  /* status line and headers */
	char body[65536]; /* body, NUL-terminated */
	size_t body_len;  /* bytes in body (it may hold NULs) */
};

/* One request. Unset members: GET, no headers, no body. */
struct thttp_req {
	const char *method;	  /* NULL: "GET" */
	const char *path;	  /* request target, sent as it is */
	const char *content_type; /* NULL: no Content-Type header */
	const char *headers;	  /* NULL, or lines each ending in "\r\n" */
	const void *body;	  /* NULL: no body and no Content-Length */
	size_t body_len;	  /* bytes of body */
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

/*
 * Sends q ("Connection: close", Host and Content-Length added) and reads
 * the response within T_WAIT. Fails the test when the connection fails or
 * no complete response arrives.
 */
void thttp_request(int port, const struct thttp_req *q, struct thttp_resp *r);

/*
 * Sends q on a new connection without waiting for the answer; returns the
 * socket for thttp_finish().
 */
int thttp_start(int port, const struct thttp_req *q);

/* Reads the answer to thttp_start()'s request (within T_WAIT), closes fd. */
void thttp_finish(int fd, struct thttp_resp *r);

/* POST path with Content-Type application/json and body json. */
void thttp_post(int port, const char *path, const char *json,
		struct thttp_resp *r);

/* POST path with the JSON that json_pack(fmt, ...) builds. */
void thttp_post_pack(int port, const char *path, struct thttp_resp *r,
		     const char *fmt, ...);

enum thttp_raw_rc {
	THTTP_RESPONSE, /* a complete response arrived (r->status > 0) */
	THTTP_CLOSED,	/* the server closed; r holds what came, if any */
	THTTP_TIMEOUT,	/* neither within timeout_ms */
};

/*
 * Sends data as it is on a new connection (stops sending when the server
 * closes first) and reads until a complete response, the server's close
 * or timeout_ms. r->status is 0 when no status line came.
 */
enum thttp_raw_rc thttp_raw(int port, const void *data, size_t len,
			    struct thttp_resp *r, int timeout_ms);

/*
 * The value of header name (case-insensitive) into val, without blanks
 * around it; false when the response has no such header.
 */
bool thttp_header(const struct thttp_resp *r, const char *name, char *val,
		  size_t len);

/* Implementations of the macros below. */
void thttp_expect_status_at(const char *file, int line,
			    const struct thttp_resp *r, int status);
json_t *thttp_json_at(const char *file, int line, const struct thttp_resp *r);
void thttp_expect_error_at(const char *file, int line,
			   const struct thttp_resp *r, int status);
long long thttp_connect_at(const char *file, int line, int port,
			   const char *nick, char *sid);
json_t *thttp_command_at(const char *file, int line, int port, const char *sid,
			 const char *cmd, bool success);
void thttp_expect_command_at(const char *file, int line, int port,
			     const char *sid, const char *cmd, bool success,
			     const char *message);
long long thttp_say_at(const char *file, int line, int port, const char *sid,
		       const char *room, const char *content, long long *id);
void thttp_user_at(const char *file, int line, int port, const char *nick,
		   int cmd_port, const char *cmd, char *sid);
long long thttp_health_num_at(const char *file, int line, int port,
			      int status, const char *sub, const char *key);
void thttp_command_refused_at(const char *file, int line, int port,
			      const char *sid, const char *cmd, int status);
void thttp_say_refused_at(const char *file, int line, int port, const char *sid,
			  const char *room, const char *content, int status);
void thttp_disconnect_at(const char *file, int line, int port, const char *sid,
			 int status);

/* r has this status (fails with the head and body otherwise). */
#define expect_status(r, st) \
	thttp_expect_status_at(__FILE__, __LINE__, (r), (st))
/* r's body is a JSON object (the caller json_decref()s it). */
#define resp_json(r) thttp_json_at(__FILE__, __LINE__, (r))
/* r has status st, a JSON Content-Type and a body {"error": "<text>"}. */
#define expect_error(r, st) thttp_expect_error_at(__FILE__, __LINE__, (r), (st))
/*
 * POST /api/connect {"nickname": nick}: 200 with the documented shape;
 * sid (THTTP_SID_LEN + 1 bytes) gets the session id; returns user_id.
 */
#define api_connect(port, nick, sid) \
	thttp_connect_at(__FILE__, __LINE__, (port), (nick), (sid))
/*
 * POST /api/command: 200 with "success" == ok and a string "message";
 * returns the body (the caller json_decref()s it).
 */
#define api_command(port, sid, cmd, ok) \
	thttp_command_at(__FILE__, __LINE__, (port), (sid), (cmd), (ok))
/* The same, with message exactly msg. */
#define expect_command(port, sid, cmd, ok, msg)                           \
	thttp_expect_command_at(__FILE__, __LINE__, (port), (sid), (cmd), \
				(ok), (msg))
/*
 * POST /api/message: 200 {"success": true, "message_id", "seq"}; returns
 * seq, *id (unless NULL) gets message_id.
 */
#define api_say(port, sid, room, content, id) \
	thttp_say_at(__FILE__, __LINE__, (port), (sid), (room), (content), (id))
/*
 * An HTTP user: api_connect() on port, then (unless cmd is NULL) the
 * successful api_command() cmd ("/create general") on cmd_port.
 */
#define api_user(port, nick, cmd_port, cmd, sid)                             \
	thttp_user_at(__FILE__, __LINE__, (port), (nick), (cmd_port), (cmd), \
		      (sid))
/*
 * GET /health: its integer "streams"; the answer must have status (0:
 * any) and a JSON object body.
 */
#define health_streams(port, status) \
	thttp_health_num_at(__FILE__, __LINE__, (port), (status), NULL, \
			    "streams")
/* GET /health (any status): the integer key, top-level or in object sub
 * (NULL: top level); fails the test when it is not there. */
#define health_num(port, sub, key) \
	thttp_health_num_at(__FILE__, __LINE__, (port), 0, (sub), (key))

/*
 * POST /api/command {"session_id": sid, "command": cmd} is refused with
 * status st and an error body (expect_error()).
 */
#define expect_command_refused(port, sid, cmd, st) \
	thttp_command_refused_at(__FILE__, __LINE__, (port), (sid), (cmd), (st))
/* POST /api/message {"session_id", "room", "content"} is refused with
 * status st and an error body. */
#define expect_say_refused(port, sid, room, content, st)                \
	thttp_say_refused_at(__FILE__, __LINE__, (port), (sid), (room), \
			     (content), (st))
/* POST /api/disconnect {"session_id": sid}: 200 {"success": true}. */
#define api_disconnect(port, sid) \
	thttp_disconnect_at(__FILE__, __LINE__, (port), (sid), 200)
/* POST /api/disconnect {"session_id": sid} is refused with status st and
 * an error body. */
#define expect_disconnect_refused(port, sid, st) \
	thttp_disconnect_at(__FILE__, __LINE__, (port), (sid), (st))

/*
 * Sends POST /api/command {"session_id": sid, "command": cmd} on a new
 * connection without waiting for the answer (one a lock holds up);
 * returns the socket for thttp_finish().
 */
int thttp_start_command(int port, const char *sid, const char *cmd);

#endif
