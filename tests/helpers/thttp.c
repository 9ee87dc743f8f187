/*
 * Tiny HTTP client: one request per connection ("Connection: close"), the
 * response read until Content-Length is satisfied (or the last chunk of a
 * chunked body arrived) or the server closes. Sending and reading share
 * one deadline, and sending stops early when the server answers or closes
 * first, so malformed input never blocks the test.
 */
#include "thttp.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "trun.h"

#define THTTP_MAX_REQ (1024 * 1024) /* largest request the tests build */

/* Received bytes of the response being read (the loop thread only). */
static char rbuf[sizeof(((struct thttp_resp *)0)->head) +
		 sizeof(((struct thttp_resp *)0)->body)];

/* Content-Length from the header block, -1 when absent. */
static long content_length(const char *head)
{
	for (const char *p = head; (p = strchr(p, '\n'));) {
		p++;
		if (!strncasecmp(p, "content-length:", 15))
			return strtol(p + 15, NULL, 10);
	}
	return -1;
}

/* Whether the header block says Transfer-Encoding: chunked. */
static bool is_chunked(const char *head)
{
	for (const char *p = head; (p = strchr(p, '\n'));) {
		p++;
		if (!strncasecmp(p, "transfer-encoding:", 18)) {
			const char *v = p + 18;

			while (*v == ' ' || *v == '\t')
				v++;
			return !strncasecmp(v, "chunked", 7);
		}
	}
	return false;
}

/*
 * Decodes a chunked body in place; returns its length, or -1 while the
 * last chunk has not arrived yet.
 */
static long dechunk(char *b, size_t len, bool in_place)
{
	size_t in = 0, out = 0;

	for (;;) {
		char *end;
		unsigned long n;
		char *crlf = NULL;

		for (size_t i = in; i + 1 < len; i++)
			if (b[i] == '\r' && b[i + 1] == '\n') {
				crlf = b + i;
				break;
			}
		if (!crlf)
			return -1;
		n = strtoul(b + in, &end, 16);
		if (end == b + in)
			return -1;
		in = (size_t)(crlf - b) + 2;
		if (!n)
			return (long)out;
		if (in + n + 2 > len)
			return -1;
		if (in_place)
			memmove(b + out, b + in, n);
		out += n;
		in += n + 2;
	}
}

/* A socket connected to 127.0.0.1:port; -1 when refused. */
static int dial(int port)
{
	return trun_dial(port, 0, true, "HTTP client");
}

/* Whether rbuf[0..len) holds a whole response; sets *sep on the way. */
static bool complete(size_t len, char **sep)
{
	long clen;
	int status = 0;

	if (!*sep)
		*sep = strstr(rbuf, "\r\n\r\n");
	if (!*sep)
		return false;
	**sep = '\0';
	clen = content_length(rbuf);
	sscanf(rbuf, "HTTP/1.%*d %d", &status);
	if (is_chunked(rbuf)) {
		**sep = '\r';
		return dechunk(*sep + 4, len - (size_t)(*sep + 4 - rbuf),
			       false) >= 0;
	}
	**sep = '\r';
	if (status == 204 || status == 304 || (status >= 100 && status < 200))
		return true;
	return clen >= 0 && len - (size_t)(*sep + 4 - rbuf) >= (size_t)clen;
}

/* Fills r from the len bytes in rbuf. */
static void fill(struct thttp_resp *r, size_t len, char *sep)
{
	size_t hl, bl;
	long clen;

	memset(r, 0, sizeof(*r));
	rbuf[len] = '\0';
	if (!sep)
		sep = strstr(rbuf, "\r\n\r\n");
	if (!sep) {
		/* No header end: what came goes to head, for messages. */
		memcpy(r->head, rbuf, strnlen(rbuf, sizeof(r->head) - 1));
		return;
	}
	*sep = '\0';
	hl = strnlen(rbuf, sizeof(r->head) - 1);
	memcpy(r->head, rbuf, hl);
	sscanf(rbuf, "HTTP/1.%*d %d", &r->status);
	bl = len - (size_t)(sep + 4 - rbuf);
	if (is_chunked(rbuf)) {
		long n = dechunk(sep + 4, bl, true);

		bl = n >= 0 ? (size_t)n : 0;
	} else if ((clen = content_length(rbuf)) >= 0 && (size_t)clen < bl) {
		bl = (size_t)clen;
	}
	if (bl > sizeof(r->body) - 1)
		bl = sizeof(r->body) - 1;
	memcpy(r->body, sep + 4, bl);
	r->body[bl] = '\0';
	r->body_len = bl;
}

/*
 * Sends req on fd and reads the response until it is complete, the peer
 * closes or deadline. With strict, a response larger than the buffers
 * fails the test; otherwise it is cut there.
 */
static enum thttp_raw_rc exchange(int fd, const void *req, size_t rlen,
				  struct thttp_resp *r, int64_t deadline,
				  bool strict, size_t *got_out)
{
	const char *out = req;
	size_t sent = 0, len = 0;
	char *sep = NULL;
	bool sending = rlen > 0, closed = false;
	enum thttp_raw_rc rc;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - trun_now_ms();
		ssize_t n;

		if (len && complete(len, &sep)) {
			rc = THTTP_RESPONSE;
			break;
		}
		if (left <= 0) {
			rc = THTTP_TIMEOUT;
			break;
		}
		if (sending)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if (sending && (pfd.revents & (POLLOUT | POLLERR | POLLHUP)) &&
		    !(pfd.revents & POLLIN)) {
			n = send(fd, out + sent, rlen - sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0) {
				/* The server closed first: read what it said. */
				sending = false;
				continue;
			}
			sent += (size_t)n;
			sending = sent < rlen;
			continue;
		}
		if (!(pfd.revents & (POLLIN | POLLERR | POLLHUP)))
			continue;
		if (len >= sizeof(rbuf) - 1) {
			ck_assert_msg(!strict,
				      "response larger than %zu bytes: %.300s",
				      sizeof(rbuf) - 1, rbuf);
			rc = THTTP_RESPONSE;
			break;
		}
		n = recv(fd, rbuf + len, sizeof(rbuf) - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ck_assert_msg(n == 0 || errno == ECONNRESET ||
					      errno == EPIPE,
				      "recv: %s", strerror(errno));
			closed = true;
			rc = THTTP_CLOSED;
			break;
		}
		/* The answer came before the whole request: stop sending. */
		sending = false;
		len += (size_t)n;
		rbuf[len] = '\0';
	}
	rbuf[len] = '\0';
	/* Without Content-Length the close ends the body. */
	if (closed && len && complete(len, &sep))
		rc = THTTP_RESPONSE;
	else if (closed && (sep || strstr(rbuf, "\r\n\r\n")) &&
		 content_length(rbuf) < 0 && !is_chunked(rbuf))
		rc = THTTP_RESPONSE;
	fill(r, len, sep);
	*got_out = len;
	return rc;
}

bool thttp_try_get(int port, const char *path, struct thttp_resp *r,
		   int timeout_ms)
{
	int64_t deadline = trun_now_ms() + timeout_ms;
	enum thttp_raw_rc rc;
	char req[512];
	size_t got;
	int fd, n;

	memset(r, 0, sizeof(*r));
	fd = dial(port);
	if (fd < 0)
		return false;
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		     "Connection: close\r\n\r\n",
		     path, port);
	ck_assert(n > 0 && (size_t)n < sizeof(req));
	rc = exchange(fd, req, (size_t)n, r, deadline, true, &got);
	close(fd);
	ck_assert_msg(
		rc != THTTP_TIMEOUT,
		"GET %s on port %d: no complete response within %d ms (got %zu bytes)",
		path, port, timeout_ms, got);
	ck_assert_msg(r->status > 0 && strstr(r->head, "HTTP/1.") == r->head,
		      "GET %s on port %d: no complete header: \"%.300s\"", path,
		      port, r->head);
	return true;
}

void thttp_get(int port, const char *path, struct thttp_resp *r)
{
	ck_assert_msg(thttp_try_get(port, path, r, trun_ms(T_WAIT)),
		      "GET %s: connection to port %d refused", path, port);
}

void thttp_wait_status(int port, const char *path, int status,
		       struct thttp_resp *r, int timeout_ms)
{
	int64_t deadline = trun_now_ms() + timeout_ms;

	for (;;) {
		bool up = thttp_try_get(port, path, r, trun_ms(T_WAIT));

		if (up && r->status == status)
			return;
		ck_assert_msg(
			trun_now_ms() < deadline,
			"GET %s on port %d did not answer %d within %d ms; last: %s %d %s",
			path, port, status, timeout_ms,
			up ? "status" : "refused", r->status, r->body);
		trun_pace();
	}
}

bool thttp_json_has(const char *json, const char *key, const char *value)
{
	char k[256];
	size_t vl = strlen(value);
	const char *p = json;

	snprintf(k, sizeof(k), "\"%s\"", key);
	while ((p = strstr(p, k))) {
		const char *q = p + strlen(k);

		p = q;
		while (isspace((unsigned char)*q))
			q++;
		if (*q++ != ':')
			continue;
		while (isspace((unsigned char)*q))
			q++;
		if (*q == '"' && !strncmp(q + 1, value, vl) && q[1 + vl] == '"')
			return true;
	}
	return false;
}

/* The bytes of q as a request (malloc'd); *len gets their number. */
static char *build_request(int port, const struct thttp_req *q, size_t *len)
{
	const char *method = q->method ? q->method : "GET";
	size_t cap, n;
	char *req;

	ck_assert(q->path);
	cap = strlen(method) + strlen(q->path) + 512 +
	      (q->content_type ? strlen(q->content_type) : 0) +
	      (q->headers ? strlen(q->headers) : 0) + q->body_len;
	ck_assert_msg(cap <= THTTP_MAX_REQ, "request too large");
	req = malloc(cap);
	ck_assert(req);
	n = (size_t)snprintf(req, cap,
			     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
			     "Connection: close\r\n",
			     method, q->path, port);
	if (q->content_type)
		n += (size_t)snprintf(req + n, cap - n, "Content-Type: %s\r\n",
				      q->content_type);
	if (q->body)
		n += (size_t)snprintf(req + n, cap - n,
				      "Content-Length: %zu\r\n", q->body_len);
	n += (size_t)snprintf(req + n, cap - n, "%s\r\n",
			      q->headers ? q->headers : "");
	if (q->body) {
		memcpy(req + n, q->body, q->body_len);
		n += q->body_len;
	}
	*len = n;
	return req;
}

void thttp_request(int port, const struct thttp_req *q, struct thttp_resp *r)
{
	const char *method = q->method ? q->method : "GET";
	int timeout_ms = trun_ms(T_WAIT);
	int64_t deadline = trun_now_ms() + timeout_ms;
	enum thttp_raw_rc rc;
	size_t len, got;
	char *req = build_request(port, q, &len);
	int fd = dial(port);

	ck_assert_msg(fd >= 0, "%s %s: connection to port %d refused", method,
		      q->path, port);
	rc = exchange(fd, req, len, r, deadline, true, &got);
	close(fd);
	free(req);
	ck_assert_msg(
		rc == THTTP_RESPONSE && r->status > 0,
		"%s %s on port %d: no complete response within %d ms (%s after %zu bytes: \"%.300s\")",
		method, q->path, port, timeout_ms,
		rc == THTTP_TIMEOUT ? "timeout" : "closed", got, r->head);
}

int thttp_start(int port, const struct thttp_req *q)
{
	size_t len, off = 0;
	char *req = build_request(port, q, &len);
	int fd = dial(port);

	ck_assert_msg(fd >= 0, "%s: connection to port %d refused", q->path,
		      port);
	while (off < len) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "%s: send: %s", q->path, strerror(errno));
		off += (size_t)n;
	}
	free(req);
	return fd;
}

void thttp_finish(int fd, struct thttp_resp *r)
{
	int timeout_ms = trun_ms(T_WAIT);
	enum thttp_raw_rc rc;
	size_t got;

	rc = exchange(fd, NULL, 0, r, trun_now_ms() + timeout_ms, true, &got);
	close(fd);
	ck_assert_msg(
		rc == THTTP_RESPONSE && r->status > 0,
		"no complete response within %d ms (%s after %zu bytes: \"%.300s\")",
		timeout_ms, rc == THTTP_TIMEOUT ? "timeout" : "closed", got,
		r->head);
}

void thttp_post(int port, const char *path, const char *json,
		struct thttp_resp *r)
{
	struct thttp_req q = {
		.method = "POST",
		.path = path,
		.content_type = "application/json",
		.body = json,
		.body_len = strlen(json),
	};

	thttp_request(port, &q, r);
}

void thttp_post_pack(int port, const char *path, struct thttp_resp *r,
		     const char *fmt, ...)
{
	json_error_t err;
	json_t *obj;
	va_list ap;
	char *text;

	va_start(ap, fmt);
	obj = json_vpack_ex(&err, 0, fmt, ap);
	va_end(ap);
	ck_assert_msg(obj, "json_pack \"%s\": %s", fmt, err.text);
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	ck_assert(text);
	thttp_post(port, path, text, r);
	free(text);
}

enum thttp_raw_rc thttp_raw(int port, const void *data, size_t len,
			    struct thttp_resp *r, int timeout_ms)
{
	int64_t deadline = trun_now_ms() + timeout_ms;
	enum thttp_raw_rc rc;
	size_t got;
	int fd = dial(port);

	ck_assert_msg(fd >= 0, "raw request: connection to port %d refused",
		      port);
	rc = exchange(fd, data, len, r, deadline, false, &got);
	close(fd);
	return rc;
}

bool thttp_header(const struct thttp_resp *r, const char *name, char *val,
		  size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = r->head; (p = strchr(p, '\n'));) {
		const char *v, *e;

		p++;
		if (strncasecmp(p, name, nl) || p[nl] != ':')
			continue;
		v = p + nl + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		e = v + strcspn(v, "\r\n");
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		snprintf(val, len, "%.*s", (int)(e - v), v);
		return true;
	}
	return false;
}

void thttp_expect_status_at(const char *file, int line,
			    const struct thttp_resp *r, int status)
{
	if (r->status != status)
		trun_fail(
			file, line,
			"expected HTTP status %d, got %d\n  head: %.1000s\n  body: %.1000s",
			status, r->status, r->head, r->body);
}

json_t *thttp_json_at(const char *file, int line, const struct thttp_resp *r)
{
	json_error_t err;
	json_t *j = json_loadb(r->body, r->body_len, 0, &err);

	if (!j || !json_is_object(j))
		trun_fail(
			file, line,
			"status %d: body is not a JSON object (%s): \"%.1000s\"",
			r->status, j ? "not an object" : err.text, r->body);
	return j;
}

/* The Content-Type of r is application/json (parameters allowed). */
static void expect_json_type(const char *file, int line,
			     const struct thttp_resp *r)
{
	char ct[256];

	if (!thttp_header(r, "Content-Type", ct, sizeof(ct)))
		trun_fail(file, line, "status %d: no Content-Type\n  head: %s",
			  r->status, r->head);
	if (strncasecmp(ct, "application/json", 16) ||
	    (ct[16] && ct[16] != ';' && ct[16] != ' '))
		trun_fail(
			file, line,
			"status %d: Content-Type \"%s\", expected application/json",
			r->status, ct);
}

void thttp_expect_error_at(const char *file, int line,
			   const struct thttp_resp *r, int status)
{
	json_t *j, *e;

	thttp_expect_status_at(file, line, r, status);
	expect_json_type(file, line, r);
	j = thttp_json_at(file, line, r);
	e = json_object_get(j, "error");
	if (!json_is_string(e) || !json_string_length(e))
		trun_fail(
			file, line,
			"status %d: expected {\"error\": \"<reason>\"}, got %s",
			status, r->body);
	json_decref(j);
}

/* Whether s is n lowercase or uppercase hex digits. */
static bool is_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

long long thttp_connect_at(const char *file, int line, int port,
			   const char *nick, char *sid)
{
	struct thttp_resp r;
	json_t *j, *s, *u, *n;
	long long uid;

	thttp_post_pack(port, "/api/connect", &r, "{ss}", "nickname", nick);
	thttp_expect_status_at(file, line, &r, 200);
	expect_json_type(file, line, &r);
	j = thttp_json_at(file, line, &r);
	s = json_object_get(j, "session_id");
	u = json_object_get(j, "user_id");
	n = json_object_get(j, "nickname");
	if (!json_is_string(s) ||
	    !is_hex(json_string_value(s), THTTP_SID_LEN) ||
	    !json_is_integer(u) || json_integer_value(u) <= 0 ||
	    !json_is_string(n) || strcmp(json_string_value(n), nick))
		trun_fail(
			file, line,
			"connect %s: expected {\"session_id\": <32 hex>, \"user_id\": N > 0, \"nickname\": \"%s\"}, got %s",
			nick, nick, r.body);
	memcpy(sid, json_string_value(s), THTTP_SID_LEN + 1);
	uid = json_integer_value(u);
	json_decref(j);
	return uid;
}

json_t *thttp_command_at(const char *file, int line, int port, const char *sid,
			 const char *cmd, bool success)
{
	struct thttp_resp r;
	json_t *j, *ok, *msg;

	thttp_post_pack(port, "/api/command", &r, "{ssss}", "session_id", sid,
			"command", cmd);
	if (r.status != 200)
		trun_fail(
			file, line,
			"command \"%s\": expected status 200, got %d: %.1000s",
			cmd, r.status, r.body);
	expect_json_type(file, line, &r);
	j = thttp_json_at(file, line, &r);
	ok = json_object_get(j, "success");
	msg = json_object_get(j, "message");
	if (!json_is_boolean(ok) || json_is_true(ok) != success ||
	    !json_is_string(msg))
		trun_fail(
			file, line,
			"command \"%s\": expected {\"success\": %s, \"message\": \"...\"}, got %.1000s",
			cmd, success ? "true" : "false", r.body);
	return j;
}

void thttp_expect_command_at(const char *file, int line, int port,
			     const char *sid, const char *cmd, bool success,
			     const char *message)
{
	json_t *j = thttp_command_at(file, line, port, sid, cmd, success);
	const char *got = json_string_value(json_object_get(j, "message"));

	if (strcmp(got, message))
		trun_fail(
			file, line,
			"command \"%s\": expected message \"%s\", got \"%.1000s\"",
			cmd, message, got);
	json_decref(j);
}

long long thttp_say_at(const char *file, int line, int port, const char *sid,
		       const char *room, const char *content, long long *id)
{
	struct thttp_resp r;
	json_t *j, *ok, *mid, *seq;
	long long s;

	thttp_post_pack(port, "/api/message", &r, "{ssssss}", "session_id", sid,
			"room", room, "content", content);
	if (r.status != 200)
		trun_fail(
			file, line,
			"message to %s \"%.100s\": expected status 200, got %d: %.1000s",
			room, content, r.status, r.body);
	j = thttp_json_at(file, line, &r);
	ok = json_object_get(j, "success");
	mid = json_object_get(j, "message_id");
	seq = json_object_get(j, "seq");
	if (!json_is_true(ok) || !json_is_integer(mid) ||
	    json_integer_value(mid) <= 0 || !json_is_integer(seq) ||
	    json_integer_value(seq) <= 0)
		trun_fail(
			file, line,
			"message to %s: expected {\"success\": true, \"message_id\": N, \"seq\": N}, got %.1000s",
			room, r.body);
	if (id)
		*id = json_integer_value(mid);
	s = json_integer_value(seq);
	json_decref(j);
	return s;
}

void thttp_user_at(const char *file, int line, int port, const char *nick,
		   int cmd_port, const char *cmd, char *sid)
{
	thttp_connect_at(file, line, port, nick, sid);
	if (cmd)
		json_decref(
			thttp_command_at(file, line, cmd_port, sid, cmd, true));
}

long long thttp_health_num_at(const char *file, int line, int port,
			      int status, const char *sub, const char *key)
{
	struct thttp_resp r;
	json_t *j, *v;
	long long n;

	thttp_get(port, "/health", &r);
	if (status)
		thttp_expect_status_at(file, line, &r, status);
	j = thttp_json_at(file, line, &r);
	v = json_object_get(sub ? json_object_get(j, sub) : j, key);
	if (!json_is_integer(v)) {
		json_decref(j);
		trun_fail(file, line, "/health without %s%s\"%s\": %s",
			  sub ? sub : "", sub ? "." : "", key, r.body);
	}
	n = json_integer_value(v);
	json_decref(j);
	return n;
}

void thttp_command_refused_at(const char *file, int line, int port,
			      const char *sid, const char *cmd, int status)
{
	struct thttp_resp r;

	thttp_post_pack(port, "/api/command", &r, "{ssss}", "session_id", sid,
			"command", cmd);
	thttp_expect_error_at(file, line, &r, status);
}

void thttp_say_refused_at(const char *file, int line, int port, const char *sid,
			  const char *room, const char *content, int status)
{
	struct thttp_resp r;

	thttp_post_pack(port, "/api/message", &r, "{ssssss}", "session_id", sid,
			"room", room, "content", content);
	thttp_expect_error_at(file, line, &r, status);
}

void thttp_disconnect_at(const char *file, int line, int port, const char *sid,
			 int status)
{
	struct thttp_resp r;
	json_t *j;

	thttp_post_pack(port, "/api/disconnect", &r, "{ss}", "session_id", sid);
	if (status != 200) {
		thttp_expect_error_at(file, line, &r, status);
		return;
	}
	thttp_expect_status_at(file, line, &r, 200);
	j = thttp_json_at(file, line, &r);
	if (!json_is_true(json_object_get(j, "success"))) {
		json_decref(j);
		trun_fail(file, line,
			  "disconnect: expected {\"success\": true}, got %s",
			  r.body);
	}
	json_decref(j);
}

int thttp_start_command(int port, const char *sid, const char *cmd)
{
	json_t *obj = json_pack("{ssss}", "session_id", sid, "command", cmd);
	char *body = json_dumps(obj, JSON_COMPACT);
	struct thttp_req q = { .method = "POST",
			       .path = "/api/command",
			       .content_type = "application/json" };
	int fd;

	json_decref(obj);
	ck_assert(body);
	q.body = body;
	q.body_len = strlen(body);
	fd = thttp_start(port, &q);
	free(body);
	return fd;
}
