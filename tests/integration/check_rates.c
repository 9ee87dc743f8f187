/*
 * Abuse limits: per-session rate limits on messages and commands, over
 * TCP (an error line, nothing stored) and HTTP (429 with Retry-After),
 * counted in /metrics; the connection limits, in all and per address
 * (TCP: an error line, then closed; HTTP: 503), which leave the
 * connections already there alone; per source address limits on new
 * HTTP sessions and on /create (429 / an error line, nothing stored),
 * keyed by X-Real-IP only when it comes from real_ip_from.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsse.h"

#define PORT tfix_tcp_port()
#define HPORT tfix_http_port()
#define SLOW "[system] error: slow down (rate limit)"

static void setup_rates(void)
{
	struct tsrv_opts o = {
		.rate_limits = true,
		.extra_json = "\"msg_rate_per_s\": 1, \"msg_burst\": 3, "
			      "\"cmd_rate_per_s\": 1, \"cmd_burst\": 6",
	};

	tfix_use(&o);
}

static long long stored(const char *room)
{
	return tdb_int(&T_DB,
		       "SELECT count(*) FROM messages m JOIN rooms r "
		       "ON r.id = m.room_id WHERE r.name = $1",
		       room, NULL);
}

/*
 * Five messages in one write with a burst of three: three are stored and
 * echoed, two are refused with the error line (at once, so before the
 * echoes), and the session goes on. Commands have a bucket of their own.
 */
START_TEST(test_tcp_message_rate_limit)
{
	struct tcl *alice = tcl_user(PORT, "alice");	/* /nick: 1 command */
	const char *want[] = {
		SLOW, SLOW, "[limited] alice: m1", "[limited] alice: m2",
		"[limited] alice: m3",
	};
	struct thttp_resp r;
	json_t *m;

	do_create(alice, "limited");			/* 2 commands */
	tcl_send_str(alice, "m1\nm2\nm3\nm4\nm5\n");
	expect_set(alice, want, 5);
	ck_assert_int_eq(stored("limited"), 3);
	/* A burst of 6 commands: /nick, /create and four /list pass. */
	for (int i = 0; i < 4; i++) {
		expect_reply(alice, "/list", "[system] Online users (1):");
		expect_prefix(alice, "[system]   alice");
	}
	expect_reply(alice, "/list", SLOW);
	thttp_get(HPORT, "/metrics", &r);
	m = resp_json(&r);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(m, "rejected"), "rate_limited")),
			 3);
	json_decref(m);
	tcl_free(alice);
}
END_TEST

/* Over HTTP: the fourth message of a burst of three is 429 with
 * Retry-After: 1 and stored nowhere. */
START_TEST(test_http_message_rate_limit)
{
	char sid[THTTP_SID_LEN + 1], ra[16];
	struct thttp_resp r;

	api_user(HPORT, "bob", HPORT, "/create httplimited", sid);
	for (int i = 0; i < 3; i++)
		api_say(HPORT, sid, "httplimited", "ok", NULL);
	thttp_post_pack(HPORT, "/api/message", &r, "{ssssss}", "session_id",
			sid, "room", "httplimited", "content", "one too many");
	ck_assert_msg(r.status == 429, "%d %s", r.status, r.body);
	ck_assert_str_eq(r.body, "{\"error\":\"slow down (rate limit)\"}");
	ck_assert_msg(thttp_header(&r, "Retry-After", ra, sizeof(ra)) &&
			      !strcmp(ra, "1"),
		      "%s", r.head);
	ck_assert_int_eq(stored("httplimited"), 3);
}
END_TEST

static void setup_conn_limit(void)
{
	struct tsrv_opts o = {
		.rate_limits = true,
		.extra_json = "\"max_connections_per_ip\": 3",
	};

	tfix_use(&o);
}

static void setup_total_limit(void)
{
	struct tsrv_opts o = {
		.rate_limits = true,
		.extra_json = "\"max_connections\": 2, "
			      "\"max_connections_per_ip\": 0",
	};

	tfix_use(&o);
}

/* A connection over the limit is told so and closed. */
static void expect_refused_tcp(void)
{
	struct tcl *x = tcl_connect(PORT, "one too many");

	expect_next(x, "[system] error: too many connections");
	expect_eof(x);
	tcl_free(x);
}

/* Three connections from 127.0.0.1 (HTTP ones count too): the fourth is
 * refused, over TCP and over HTTP; the three go on; once one has gone,
 * a new one is let in. */
START_TEST(test_connections_per_address)
{
	struct tcl *a = tcl_user(PORT, "alice");
	struct tcl *b = tcl_user(PORT, "bob");
	struct tcl *c = tcl_user(PORT, "carol");
	struct thttp_resp r;
	struct tcl *d;

	expect_refused_tcp();
	thttp_get(HPORT, "/health", &r);
	expect_status(&r, 503);
	ck_assert_str_eq(r.body, "{\"error\":\"too many connections\"}");
	do_create(a, "still");
	do_join_seen(b, "still", a);
	do_say(b, "still", "here");
	expect_next(a, "[still] bob: here");
	do_quit(c);
	/* The close is handled asynchronously: the next connection may
	 * still find three. */
	for (int64_t end = trun_now_ms() + trun_ms(10000);; trun_pace()) {
		d = tcl_connect(PORT, "dave");
		if (tcl_read(d, trun_ms(T_WAIT)) == TCL_LINE &&
		    !strcmp(d->line, "[system] Welcome to Baby Discord!"))
			break;
		ck_assert_str_eq(d->line, "[system] error: too many connections");
		tcl_free(d);
		ck_assert_msg(trun_now_ms() < end, "never let in again");
	}
	tcl_free(d);
	tcl_free(a);
	tcl_free(b);
}
END_TEST

START_TEST(test_connections_in_all)
{
	struct tcl *a = tcl_user(PORT, "alice");
	struct tcl *b = tcl_user(PORT, "bob");
	struct thttp_resp r;
	json_t *m;

	expect_refused_tcp();
	tcl_free(b);
	/* One left: /metrics counts the refusal. */
	for (int64_t end = trun_now_ms() + trun_ms(10000);; trun_pace()) {
		thttp_get(HPORT, "/metrics", &r);
		if (r.status == 200)
			break;
		ck_assert_int_eq(r.status, 503);
		ck_assert_msg(trun_now_ms() < end, "bob's place never freed");
	}
	m = resp_json(&r);
	ck_assert_int_ge(json_integer_value(json_object_get(
				 m, "connections_refused")),
			 1);
	json_decref(m);
	tcl_free(a);
}
END_TEST

static void setup_timeouts(void)
{
	struct tsrv_opts o = {
		.extra_json = "\"tcp_idle_timeout_s\": 3, "
			      "\"tcp_line_timeout_s\": 2",
	};

	tfix_use(&o);
}

/* Silence, then closed with a notice; an event stream is not read from
 * and stays. */
START_TEST(test_idle_tcp_closed)
{
	struct tcl *a = tcl_guest(PORT, "quiet");
	char sid[THTTP_SID_LEN + 1];
	struct tsse *s;

	api_user(HPORT, "watcher", HPORT, "/create calm", sid);
	s = sse_open_room(HPORT, "watcher", "calm", sid, NULL);
	expect_next(a, "[system] idle for 3 s, closing");
	expect_eof(a);
	/* The stream is still there: a message reaches it. */
	api_say(HPORT, sid, "calm", "still listening", NULL);
	{
		struct tsse_msg m;

		sse_expect_msg(s, &m);
		ck_assert_str_eq(m.content, "still listening");
	}
	tsse_free(s);
	tcl_free(a);
}
END_TEST

/* A line that is never finished: closed after tcp_line_timeout_s, with
 * a notice. */
START_TEST(test_unfinished_line_closed)
{
	struct tcl *a = tcl_guest(PORT, "slowloris");
	const char *line;

	tcl_send_str(a, "never");
	line = expect_prefix(a, "[system] ");
	ck_assert_str_eq(line, "[system] error: line not finished within 2 s, closing");
	expect_eof(a);
	tcl_free(a);
}
END_TEST

#define ADDR_SLOW "too many from your address, slow down"

static void setup_addr_limits(void)
{
	struct tsrv_opts o = {
		.rate_limits = true,
		.extra_json = "\"connect_rate_per_min\": 1, "
			      "\"connect_burst\": 2, "
			      "\"create_rate_per_min\": 1, "
			      "\"create_burst\": 2",
	};

	tfix_use(&o);
}

static void setup_behind_proxy(void)
{
	struct tsrv_opts o = {
		.rate_limits = true,
		.extra_json = "\"connect_rate_per_min\": 1, "
			      "\"connect_burst\": 1, "
			      "\"real_ip_from\": \"127.0.0.1\"",
	};

	tfix_use(&o);
}

/* POST /api/connect for nick, with X-Real-IP: real_ip unless NULL. */
static void connect_as(const char *nick, const char *real_ip,
		       struct thttp_resp *r)
{
	char body[128], hdr[128];
	struct thttp_req q = {
		.method = "POST", .path = "/api/connect",
		.content_type = "application/json", .body = body,
	};

	q.body_len = (size_t)snprintf(body, sizeof(body),
				      "{\"nickname\":\"%s\"}", nick);
	if (real_ip) {
		snprintf(hdr, sizeof(hdr), "X-Real-IP: %s\r\n", real_ip);
		q.headers = hdr;
	}
	thttp_request(HPORT, &q, r);
}

static long long api_sessions(void)
{
	return tdb_int(&T_DB, "SELECT count(*) FROM api_sessions", NULL);
}

/* The third session from one address within the minute is 429 with
 * Retry-After, and no session row is made; an X-Real-IP header is not
 * believed from a peer that is not real_ip_from. */
START_TEST(test_connect_rate_per_address)
{
	struct thttp_resp r;
	char ra[16];
	long long before;
	json_t *m;

	connect_as("one", NULL, &r);
	expect_status(&r, 200);
	connect_as("two", NULL, &r);
	expect_status(&r, 200);
	before = api_sessions();
	connect_as("three", NULL, &r);
	ck_assert_msg(r.status == 429, "%d %s", r.status, r.body);
	ck_assert_str_eq(r.body, "{\"error\":\"" ADDR_SLOW "\"}");
	/* One token a minute: the next is at most 60 s away. */
	ck_assert_msg(thttp_header(&r, "Retry-After", ra, sizeof(ra)) &&
			      !strcmp(ra, "60"),
		      "%s", r.head);
	connect_as("four", "10.1.2.3", &r);
	ck_assert_msg(r.status == 429, "X-Real-IP believed: %d", r.status);
	ck_assert_int_eq(api_sessions(), before);
	thttp_get(HPORT, "/metrics", &r);
	m = resp_json(&r);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(m, "rejected"),
				 "address_rate_limited")),
			 2);
	json_decref(m);
}
END_TEST

/* Behind a proxy (real_ip_from): each X-Real-IP has its own bucket; a
 * header that is not an address counts as the proxy. */
START_TEST(test_connect_rate_behind_proxy)
{
	struct thttp_resp r;

	connect_as("a1", "10.0.0.1", &r);
	expect_status(&r, 200);
	connect_as("a2", "10.0.0.1", &r);
	expect_status(&r, 429);
	connect_as("b1", "2001:db8::1", &r);
	expect_status(&r, 200);
	connect_as("p1", "not-an-address", &r);
	expect_status(&r, 200);
	connect_as("p2", NULL, &r);
	expect_status(&r, 429);
}
END_TEST

static long long rooms_named(const char *name)
{
	return tdb_int(&T_DB, "SELECT count(*) FROM rooms WHERE name = $1",
		       name, NULL);
}

/* /create is limited per address across its sessions (TCP and HTTP from
 * 127.0.0.1 alike): past the burst an error, no room made; /join goes
 * on. */
START_TEST(test_create_rate_per_address)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	char sid[THTTP_SID_LEN + 1];

	api_connect(HPORT, "carol", sid);
	do_create(alice, "first");
	do_create(bob, "second");
	expect_reply(alice, "/create third", "[system] error: " ADDR_SLOW);
	expect_command(HPORT, sid, "/create fourth", false,
		       ADDR_SLOW);
	ck_assert_int_eq(rooms_named("third") + rooms_named("fourth"), 0);
	do_join_seen(bob, "first", alice);
	json_decref(api_command(HPORT, sid, "/join second", true));
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_tcp_message_rate_limit, 30, setup_rates),
		TFIX_CASE(test_http_message_rate_limit, 30, setup_rates),
		TFIX_CASE(test_connections_per_address, 30, setup_conn_limit),
		TFIX_CASE(test_connections_in_all, 30, setup_total_limit),
		TFIX_CASE(test_idle_tcp_closed, 30, setup_timeouts),
		TFIX_CASE(test_unfinished_line_closed, 30, setup_timeouts),
		TFIX_CASE(test_connect_rate_per_address, 30,
			  setup_addr_limits),
		TFIX_CASE(test_connect_rate_behind_proxy, 30,
			  setup_behind_proxy),
		TFIX_CASE(test_create_rate_per_address, 30,
			  setup_addr_limits),
	};

	return tfix_main("rates", cases, TMAIN_N(cases), NULL);
}
