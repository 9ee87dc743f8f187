/* Unit tests for src/util/http1.c: request heads, framing, query args. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/http1.h"
#include "tmain.h"

static int parse(const char *s, struct http1_req *r)
{
	const char *why;

	return http1_parse(s, strlen(s), r, &why);
}

static bool str_is(struct http1_str s, const char *lit)
{
	return s.len == strlen(lit) && !memcmp(s.p, lit, s.len);
}

START_TEST(test_complete_head_with_fields)
{
	static const char req[] =
		"POST /api/message?x=1 HTTP/1.1\r\nHost: a\r\n"
		"Content-Type:  application/json \r\nContent-Length: 12\r\n"
		"Last-Event-ID: 41\r\nX-Other: y\r\n\r\n{\"a\":\"body\"}";
	struct http1_req r;
	int n = parse(req, &r);

	ck_assert_int_eq(n, (int)(strstr(req, "{") - req));
	ck_assert_int_eq(r.method, HTTP1_POST);
	ck_assert_int_eq(r.minor, 1);
	ck_assert(str_is(r.path, "/api/message"));
	ck_assert(str_is(r.query, "x=1"));
	ck_assert(str_is(r.content_type, "application/json"));
	ck_assert(str_is(r.last_event_id, "41"));
	ck_assert_int_eq(r.content_length, 12);
	ck_assert(r.keep_alive);
}
END_TEST

START_TEST(test_incomplete_head_needs_more)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http1_req r;
	const char *why;

	/* Every proper prefix asks for more; the whole is complete. */
	for (size_t i = 0; i < sizeof(req) - 1; i++)
		ck_assert_int_eq(http1_parse(req, i, &r, &why), 0);
	ck_assert_int_eq(http1_parse(req, sizeof(req) - 1, &r, &why),
			 (int)sizeof(req) - 1);
	ck_assert_int_eq(r.content_length, -1);
}
END_TEST

START_TEST(test_keep_alive_by_version_and_connection)
{
	struct http1_req r;

	ck_assert_int_gt(parse("GET / HTTP/1.0\r\n\r\n", &r), 0);
	ck_assert(!r.keep_alive);
	ck_assert_int_gt(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			       &r), 0);
	ck_assert(r.keep_alive);
	ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: a\r\n"
			       "Connection: foo, close\r\n\r\n", &r), 0);
	ck_assert(!r.keep_alive);
	ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 0);
	ck_assert(r.keep_alive);
}
END_TEST

START_TEST(test_ambiguous_framing_refused)
{
	static const struct {
		const char *req;
		int status;
	} bad[] = {
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 1\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
		  "Content-Length: 1\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n",
		  -400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		  -400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
		  -400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\n"
		  "Content-Length: 99999999999999999999\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		  "\r\n", -411 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked"
		  "\r\n\r\n", -411 },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip"
		  "\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX\x01: a\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", -400 },
		{ "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400 },
		{ "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "GET / HTTX/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505 },
		{ "GET / HTTP/1.2\r\nHost: a\r\n\r\n", -505 },
		{ "BREW / HTTP/1.1\r\nHost: a\r\n\r\n", -501 },
		{ "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
	};
	struct http1_req r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse(bad[i].req, &r) == bad[i].status,
			      "case %zu: %d, expected %d", i,
			      parse(bad[i].req, &r), bad[i].status);
}
END_TEST

START_TEST(test_nul_in_head_refused)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
	struct http1_req r;
	const char *why;

	ck_assert_int_eq(http1_parse(req, sizeof(req) - 1, &r, &why), -400);
	ck_assert_int_eq(http1_parse("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n",
				     30, &r, &why), -400);
}
END_TEST

START_TEST(test_sizes_414_431)
{
	size_t cap = HTTP1_MAX_HEAD * 2;
	char *b = malloc(cap);
	struct http1_req r;
	const char *why;
	int n;

	ck_assert(b);
	/* A target over the cap: 414, whether the head ended or not. */
	n = snprintf(b, cap, "GET /%0*d HTTP/1.1\r\nHost: a\r\n\r\n",
		     HTTP1_MAX_TARGET, 0);
	ck_assert_int_eq(http1_parse(b, (size_t)n, &r, &why), -414);
	memset(b, 'a', cap);
	memcpy(b, "GET /", 5);
	ck_assert_int_eq(http1_parse(b, HTTP1_MAX_HEAD, &r, &why), -414);
	/* A head over the cap: 431. */
	n = snprintf(b, cap, "GET / HTTP/1.1\r\nHost: a\r\nX: %0*d\r\n\r\n",
		     HTTP1_MAX_HEAD, 0);
	ck_assert_int_eq(http1_parse(b, (size_t)n, &r, &why), -431);
	/* Too many fields: 431. */
	n = snprintf(b, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < HTTP1_MAX_FIELDS; i++)
		n += snprintf(b + n, cap - (size_t)n, "X: y\r\n");
	n += snprintf(b + n, cap - (size_t)n, "\r\n");
	ck_assert_int_eq(http1_parse(b, (size_t)n, &r, &why), -431);
	free(b);
}
END_TEST

START_TEST(test_leading_empty_lines_and_lf_only)
{
	struct http1_req r;

	ck_assert_int_gt(parse("\r\n\r\nGET /x HTTP/1.1\nHost: a\n\n", &r), 0);
	ck_assert(str_is(r.path, "/x"));
	ck_assert_int_eq(r.method, HTTP1_GET);
}
END_TEST

START_TEST(test_query_param_decoding)
{
	struct http1_str q = { "a=1&session_id=ab%41+c&x", 24 };
	struct http1_str nul = { "s=a%00b", 7 };
	char out[16];

	ck_assert_int_eq(http1_query_param(q, "session_id", out, sizeof(out)),
			 5);
	ck_assert_str_eq(out, "abA c");
	ck_assert_int_eq(http1_query_param(q, "a", out, sizeof(out)), 1);
	ck_assert_str_eq(out, "1");
	ck_assert_int_eq(http1_query_param(q, "x", out, sizeof(out)), -1);
	ck_assert_int_eq(http1_query_param(q, "session", out, sizeof(out)),
			 -1);
	ck_assert_int_eq(http1_query_param(nul, "s", out, sizeof(out)), -1);
	ck_assert_int_eq(http1_query_param(q, "session_id", out, 5), -1);
}
END_TEST

int main(void)
{
	const struct tmain_case cases[] = {
		{ "complete_head", test_complete_head_with_fields },
		{ "incomplete_head", test_incomplete_head_needs_more },
		{ "keep_alive", test_keep_alive_by_version_and_connection },
		{ "ambiguous_framing", test_ambiguous_framing_refused },
		{ "nul_in_head", test_nul_in_head_refused },
		{ "sizes", test_sizes_414_431 },
		{ "leading_empty_lines", test_leading_empty_lines_and_lf_only },
		{ "query_param", test_query_param_decoding },
	};

	return tmain_main("http1", cases, TMAIN_N(cases), NULL, NULL);
}
