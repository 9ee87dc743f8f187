/*
 * HTTP/1.1 framing as an attacker (or a pipelining proxy) uses it: bodies
 * the server does not need, requests pipelined on one connection, and
 * heads whose framing two parsers could read differently. Every request is
 * answered once, in order, its action runs once (the messages table
 * says), refusals close the connection, and the server keeps serving and
 * stops cleanly on SIGTERM (the teardown asserts its exit status).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../helpers/tchat.h"
#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"

#define TIMEOUT 60 /* seconds per test */

static int hport(void)
{
	tfix_begin();
	return T_SRV.http_port;
}

/* A connected socket to the HTTP port. */
static int wire_open(void)
{
	struct tcl *c = tcl_connect(hport(), "wire");
	int fd = c->fd;

	c->fd = -1;
	tcl_free(c);
	return fd;
}

static void wire_send(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		ck_assert_msg(n > 0, "send: %s", strerror(errno));
		data += n;
		len -= (size_t)n;
	}
}

/* A reader of consecutive responses on one connection. */
struct wire {
	int fd;
	char *buf;
	size_t len, cap;
	bool eof;
};

static void wire_init(struct wire *w, int fd)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->cap = 1 << 20;
	w->buf = malloc(w->cap);
	ck_assert(w->buf);
	w->buf[0] = '\0';
}

static void wire_fini(struct wire *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
}

/* Reads more (within the deadline); false at EOF. */
static bool wire_fill(struct wire *w, int64_t deadline)
{
	struct pollfd p = { .fd = w->fd, .events = POLLIN };
	ssize_t n;

	for (;;) {
		ck_assert_msg(trun_now_ms() < deadline,
			      "no complete answer in time; have %zu bytes: %.300s",
			      w->len, w->buf);
		if (poll(&p, 1, 50) > 0)
			break;
	}
	ck_assert(w->len + 1 < w->cap);
	n = read(w->fd, w->buf + w->len, w->cap - w->len - 1);
	if (n <= 0) {
		w->eof = true;
		return false;
	}
	w->len += (size_t)n;
	w->buf[w->len] = '\0';
	return true;
}

/* The value of header name in head (ending at "\r\n\r\n"), or -1. */
static long header_num(const char *head, const char *name)
{
	const char *p = head;
	size_t nl = strlen(name);

	while ((p = strstr(p, "\r\n")) && strncmp(p, "\r\n\r\n", 4)) {
		p += 2;
		if (!strncasecmp(p, name, nl) && p[nl] == ':')
			return strtol(p + nl + 1, NULL, 10);
	}
	return -1;
}

/* The next response: its status, head (copied) and body. Returns 0 when
 * the connection ended before a response began. head_only: a HEAD's
 * answer (no body whatever Content-Length says). */
static int wire_next(struct wire *w, bool head_only, char *head, size_t hcap,
		     char *body, size_t bcap)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
	char *end;
	size_t hlen, blen = 0, total;
	long cl;
	int status;

	while (!(end = strstr(w->buf, "\r\n\r\n")))
		if (!wire_fill(w, deadline)) {
			ck_assert_msg(!w->len, "cut response: %.300s", w->buf);
			return 0;
		}
	hlen = (size_t)(end - w->buf) + 4;
	ck_assert_msg(sscanf(w->buf, "HTTP/1.1 %d", &status) == 1,
		      "not a status line: %.100s", w->buf);
	cl = header_num(w->buf, "Content-Length");
	if (!head_only && status != 304 && status >= 200) {
		ck_assert_msg(cl >= 0, "no Content-Length: %.300s", w->buf);
		blen = (size_t)cl;
	}
	total = hlen + blen;
	while (w->len < total)
		ck_assert_msg(wire_fill(w, deadline), "cut body: %.300s",
			      w->buf);
	snprintf(head, hcap, "%.*s", (int)hlen, w->buf);
	snprintf(body, bcap, "%.*s", (int)blen, w->buf + hlen);
	memmove(w->buf, w->buf + total, w->len - total);
	w->len -= total;
	w->buf[w->len] = '\0';
	return status;
}

/* The connection ends (within T_WAIT) with nothing more after what was
 * read. */
static void wire_expect_eof(struct wire *w)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);

	while (!w->len && wire_fill(w, deadline))
		;
	ck_assert_msg(!w->len, "more came after the last answer: %.300s",
		      w->buf);
}

static size_t post_req(char *buf, size_t cap, const char *path,
		       const char *body)
{
	return (size_t)snprintf(buf, cap,
				"POST %s HTTP/1.1\r\nHost: x\r\n"
				"Content-Type: application/json\r\n"
				"Content-Length: %zu\r\n\r\n%s",
				path, strlen(body), body);
}

static void expect_alive(void)
{
	struct thttp_resp r;

	ck_assert_msg(!tsrv_exited(&T_SRV), "the server died");
	thttp_get(hport(), "/health", &r);
	expect_status(&r, 200);
}

/*
 * The reported crash: on one keep-alive connection, a POST with a body to
 * the static files, then a POST to the API, 50 rounds. The static POST is
 * refused (405) and closes its connection; the API requests keep theirs.
 */
START_TEST(test_post_to_static_then_api_does_not_crash)
{
	char req[512], head[2048], body[4096];
	struct wire w;

	wire_init(&w, wire_open());
	for (int i = 0; i < 50; i++) {
		char json[64];
		const char *api = i % 2 ? "/api/x" : "/api/connect";
		int st;

		snprintf(json, sizeof(json), "{\"nickname\":\"yy%d\"}", i);
		wire_send(w.fd, req, post_req(req, sizeof(req), "/", json));
		st = wire_next(&w, false, head, sizeof(head), body,
			       sizeof(body));
		ck_assert_msg(st == 405, "round %d: POST /: %d %s", i, st,
			      head);
		ck_assert_msg(strstr(head, "Connection: close"), "%s", head);
		wire_expect_eof(&w);
		close(w.fd);
		w.fd = wire_open();
		w.eof = false;
		wire_send(w.fd, req, post_req(req, sizeof(req), api, json));
		st = wire_next(&w, false, head, sizeof(head), body,
			       sizeof(body));
		ck_assert_msg(st == (i % 2 ? 404 : 200),
			      "round %d: POST %s: %d %s", i, api, st, body);
	}
	wire_fini(&w);
	expect_alive();
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM api_sessions",
				 NULL), 25);
}
END_TEST

/* Bodies on methods and routes that take none are read and ignored: the
 * answer is the usual one and the connection goes on. */
START_TEST(test_bodies_where_none_is_read)
{
	static const char json[] = "{\"nickname\":\"zz\"}";
	static const struct {
		const char *method, *path;
		int status;
		bool head_only;
		const char *needle;	/* in the body */
	} reqs[] = {
		{ "GET", "/api/rooms", 200, false, "{\"rooms\":[" },
		{ "GET", "/health", 200, false, "\"healthy\"" },
		{ "HEAD", "/health", 200, true, "" },
		{ "HEAD", "/api/rooms", 200, true, "" },
		{ "GET", "/nope.html", 404, false, "not found" },
		{ "POST", "/health", 405, false, "method not allowed" },
	};
	char req[512], head[2048], body[4096];
	struct wire w;

	wire_init(&w, wire_open());
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		int n = snprintf(req, sizeof(req),
				 "%s %s HTTP/1.1\r\nHost: x\r\n"
				 "Content-Type: application/json\r\n"
				 "Content-Length: %zu\r\n\r\n%s",
				 reqs[i].method, reqs[i].path,
				 sizeof(json) - 1, json);
		int st;

		wire_send(w.fd, req, (size_t)n);
		st = wire_next(&w, reqs[i].head_only, head, sizeof(head),
			       body, sizeof(body));
		ck_assert_msg(st == reqs[i].status && strstr(body,
							     reqs[i].needle),
			      "%s %s with a body: %d %s %s", reqs[i].method,
			      reqs[i].path, st, head, body);
		if (reqs[i].head_only)
			ck_assert_msg(header_num(head, "Content-Length") > 0,
				      "HEAD: %s", head);
	}
	/* The 405 closed the connection; everything before went on on it. */
	wire_expect_eof(&w);
	wire_fini(&w);
	expect_alive();
}
END_TEST

/* Makes a session in room pipe; returns its id in sid. */
static void session_in_room(char *sid, const char *nick)
{
	api_connect(hport(), nick, sid);
	expect_command(hport(), sid, "/create pipe", true,
		       "Created room pipe\nYou joined pipe (0 recent messages)");
}

/* n pipelined POST /api/message in one write: n answers in order, seq
 * 1..n, and each message stored exactly once. */
static void pipeline_messages(const char *sid, int n, int first_seq)
{
	size_t cap = (size_t)n * 512, len = 0;
	char *all = malloc(cap), head[2048], body[4096];
	struct wire w;

	ck_assert(all);
	for (int i = 0; i < n; i++) {
		char json[256];

		snprintf(json, sizeof(json),
			 "{\"session_id\":\"%s\",\"room\":\"pipe\","
			 "\"content\":\"pipelined-%d-%d\"}",
			 sid, n, i);
		len += post_req(all + len, cap - len, "/api/message", json);
	}
	wire_init(&w, wire_open());
	wire_send(w.fd, all, len);
	for (int i = 0; i < n; i++) {
		char want[32];
		int st = wire_next(&w, false, head, sizeof(head), body,
				   sizeof(body));

		snprintf(want, sizeof(want), "\"seq\":%d", first_seq + i);
		ck_assert_msg(st == 200 && strstr(body, want),
			      "answer %d of %d: %d %s (expected %s)", i, n, st,
			      body, want);
	}
	wire_fini(&w);
	free(all);
}

START_TEST(test_pipelined_messages_each_stored_once)
{
	char sid[THTTP_SID_LEN + 1];
	static const int counts[] = { 2, 10, 100 };
	int seq = 1;

	session_in_room(sid, "piper1");
	for (size_t k = 0; k < 3; k++) {
		int n = counts[k];

		pipeline_messages(sid, n, seq);
		seq += n;
		for (int i = 0; i < n; i++) {
			char c[48];

			snprintf(c, sizeof(c), "pipelined-%d-%d", n, i);
			ck_assert_msg(
				tdb_int(&T_DB,
					"SELECT count(*) FROM messages "
					"WHERE content = $1", c, NULL) == 1,
				"%s is not stored exactly once", c);
		}
	}
	expect_stored(112);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT max(seq) FROM messages", NULL),
			 112);
}
END_TEST

/* Every other endpoint pipelined 2, 10 and 100 deep: each answered once,
 * in order. */
START_TEST(test_pipelined_endpoints_answered_in_order)
{
	static const int counts[] = { 2, 10, 100 };
	char head[2048], body[16384];

	for (size_t k = 0; k < 3; k++) {
		int n = counts[k];
		size_t cap = (size_t)n * 512, len = 0;
		char *all = malloc(cap);
		char (*sids)[THTTP_SID_LEN + 1] = calloc((size_t)n,
							 sizeof(*sids));
		struct wire w;

		ck_assert(all && sids);
		/* connect: n sessions, nicknames in order. */
		for (int i = 0; i < n; i++) {
			char json[64];

			snprintf(json, sizeof(json),
				 "{\"nickname\":\"p%d-%d\"}", n, i);
			len += post_req(all + len, cap - len, "/api/connect",
					json);
		}
		wire_init(&w, wire_open());
		wire_send(w.fd, all, len);
		for (int i = 0; i < n; i++) {
			char want[48];
			json_t *j;

			ck_assert_int_eq(wire_next(&w, false, head,
						   sizeof(head), body,
						   sizeof(body)), 200);
			snprintf(want, sizeof(want), "\"nickname\":\"p%d-%d\"",
				 n, i);
			ck_assert_msg(strstr(body, want), "connect %d: %s", i,
				      body);
			j = json_loads(body, 0, NULL);
			snprintf(sids[i], sizeof(sids[i]), "%s",
				 json_string_value(
					 json_object_get(j, "session_id")));
			json_decref(j);
		}
		/* command and rooms, interleaved, on the same connection. */
		len = 0;
		for (int i = 0; i < n; i++) {
			char json[160];

			snprintf(json, sizeof(json),
				 "{\"session_id\":\"%s\","
				 "\"command\":\"/nick q%d-%d\"}",
				 sids[i], n, i);
			len += post_req(all + len, cap - len, "/api/command",
					json);
			len += (size_t)snprintf(all + len, cap - len,
						"GET /api/rooms HTTP/1.1\r\n"
						"Host: x\r\n\r\n");
		}
		wire_send(w.fd, all, len);
		for (int i = 0; i < n; i++) {
			char want[48];

			ck_assert_int_eq(wire_next(&w, false, head,
						   sizeof(head), body,
						   sizeof(body)), 200);
			snprintf(want, sizeof(want), "You are now q%d-%d", n,
				 i);
			ck_assert_msg(strstr(body, want), "command %d: %s", i,
				      body);
			ck_assert_int_eq(wire_next(&w, false, head,
						   sizeof(head), body,
						   sizeof(body)), 200);
			ck_assert_msg(strstr(body, "{\"rooms\":["), "%s",
				      body);
		}
		/* disconnect them all. */
		len = 0;
		for (int i = 0; i < n; i++) {
			char json[64];

			snprintf(json, sizeof(json), "{\"session_id\":\"%s\"}",
				 sids[i]);
			len += post_req(all + len, cap - len,
					"/api/disconnect", json);
		}
		wire_send(w.fd, all, len);
		for (int i = 0; i < n; i++) {
			ck_assert_int_eq(wire_next(&w, false, head,
						   sizeof(head), body,
						   sizeof(body)), 200);
			ck_assert_str_eq(body, "{\"success\":true}");
		}
		wire_fini(&w);
		ck_assert_int_eq(tdb_int(&T_DB,
					 "SELECT count(*) FROM api_sessions",
					 NULL), 0);
		free(sids);
		free(all);
	}
	expect_alive();
}
END_TEST

/*
 * Heads whose framing is ambiguous: refused with the status RFC 9112 asks
 * for, and the connection closed, so the bytes after them are never
 * served as a request (the smuggled GET would create a session).
 */
START_TEST(test_ambiguous_framing_refused_and_closed)
{
	static const char smuggled[] =
		"POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\nContent-Length: 21\r\n\r\n"
		"{\"nickname\":\"smug\"}\r\n";
	static const struct {
		const char *name, *head;
		int status;
	} bad[] = {
		{ "chunked and length",
		  "POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		  "Content-Type: application/json\r\nContent-Length: 5\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		  400 },
		{ "two lengths",
		  "POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		  "Content-Type: application/json\r\nContent-Length: 2\r\n"
		  "Content-Length: 30\r\n\r\n{}",
		  400 },
		{ "two equal lengths",
		  "POST /api/rooms HTTP/1.1\r\nHost: x\r\n"
		  "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
		  400 },
		{ "length 1e3",
		  "POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		  "Content-Type: application/json\r\nContent-Length: 1e3\r\n"
		  "\r\n{}",
		  400 },
		{ "length +2",
		  "POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		  "Content-Type: application/json\r\nContent-Length: +2\r\n"
		  "\r\n{}",
		  400 },
		{ "chunked body",
		  "POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		  "Content-Type: application/json\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		  411 },
		{ "gzip coding",
		  "POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		  "Transfer-Encoding: gzip\r\n\r\n",
		  400 },
		{ "POST without length",
		  "POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		  "Content-Type: application/json\r\n\r\n",
		  411 },
		{ "folded header",
		  "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
		  400 },
		{ "bare CR",
		  "GET /health HTTP/1.1\r\nHost: x\rX-A: a\r\n\r\n", 400 },
		{ "NUL in a header",
		  "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
		  400 },
		{ "no Host", "GET /health HTTP/1.1\r\n\r\n", 400 },
		{ "two Hosts",
		  "GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400 },
		{ "space before colon",
		  "GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400 },
		{ "HTTP/2.0", "GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505 },
		{ "unknown method", "BREW /health HTTP/1.1\r\nHost: x\r\n\r\n",
		  501 },
	};
	char head[2048], body[4096];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t hl = strlen(bad[i].head);
		char *req;
		struct wire w;
		int st;

		/* The NUL case: its length up to the end of its head. */
		if (strstr(bad[i].name, "NUL"))
			hl = sizeof("GET /health HTTP/1.1\r\nHost: x\r\n"
				    "X-A: a\0b\r\n\r\n") - 1;
		req = malloc(hl + sizeof(smuggled));
		ck_assert(req);
		memcpy(req, bad[i].head, hl);
		memcpy(req + hl, smuggled, sizeof(smuggled) - 1);
		wire_init(&w, wire_open());
		wire_send(w.fd, req, hl + sizeof(smuggled) - 1);
		st = wire_next(&w, false, head, sizeof(head), body,
			       sizeof(body));
		ck_assert_msg(st == bad[i].status,
			      "%s: expected %d, got %d: %s %s", bad[i].name,
			      bad[i].status, st, head, body);
		ck_assert_msg(strstr(head, "Connection: close") &&
				      strstr(body, "\"error\""),
			      "%s: %s %s", bad[i].name, head, body);
		wire_expect_eof(&w);
		wire_fini(&w);
		free(req);
	}
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM api_sessions",
				 NULL), 0);
	expect_alive();
}
END_TEST

/* A target over 1,024 bytes is 414, not 405 or 404. */
START_TEST(test_long_url_414)
{
	char *req = malloc(4096), head[2048], body[4096];
	struct wire w;
	int n = snprintf(req, 4096, "GET /api/rooms?pad=");

	memset(req + n, 'a', 2000);
	n += 2000;
	n += snprintf(req + n, 4096 - (size_t)n,
		      " HTTP/1.1\r\nHost: x\r\n\r\n");
	wire_init(&w, wire_open());
	wire_send(w.fd, req, (size_t)n);
	ck_assert_int_eq(wire_next(&w, false, head, sizeof(head), body,
				   sizeof(body)), 414);
	wire_fini(&w);
	free(req);
	expect_alive();
}
END_TEST

/* Expect: 100-continue gets the interim answer, then the real one. */
START_TEST(test_expect_continue)
{
	static const char json[] = "{\"nickname\":\"patient\"}";
	char req[512], head[2048], body[4096];
	struct wire w;
	int n = snprintf(req, sizeof(req),
			 "POST /api/connect HTTP/1.1\r\nHost: x\r\n"
			 "Content-Type: application/json\r\n"
			 "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
			 sizeof(json) - 1);

	wire_init(&w, wire_open());
	wire_send(w.fd, req, (size_t)n);
	ck_assert_int_eq(wire_next(&w, false, head, sizeof(head), body,
				   sizeof(body)), 100);
	wire_send(w.fd, json, sizeof(json) - 1);
	ck_assert_int_eq(wire_next(&w, false, head, sizeof(head), body,
				   sizeof(body)), 200);
	ck_assert_msg(strstr(body, "\"nickname\":\"patient\""), "%s", body);
	wire_fini(&w);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_post_to_static_then_api_does_not_crash, TIMEOUT,
			  NULL),
		TFIX_CASE(test_bodies_where_none_is_read, TIMEOUT, NULL),
		TFIX_CASE(test_pipelined_messages_each_stored_once, TIMEOUT,
			  NULL),
		TFIX_CASE(test_pipelined_endpoints_answered_in_order, TIMEOUT,
			  NULL),
		TFIX_CASE(test_ambiguous_framing_refused_and_closed, TIMEOUT,
			  NULL),
		TFIX_CASE(test_long_url_414, TIMEOUT, NULL),
		TFIX_CASE(test_expect_continue, TIMEOUT, NULL),
	};

	return tfix_main("wire", cases, TMAIN_N(cases), NULL);
}
