/* Unit tests for src/core/wire.c and apireq.c: every byte format,
 * exactly, both ways. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/chat.h"

#include "core/wire.h"
#include "net/apireq.h"
#include "store/notify.h"
#include "tmain.h"
#include "util/buckets.h"
#include "util/strbuf.h"

static void expect(struct outbuf *b, const char *want)
{
	ck_assert_uint_eq(b->len, strlen(want));
	ck_assert_msg(!memcmp(b->data, want, b->len), "got %.*s", (int)b->len,
		      b->data);
	outbuf_unref(b);
}

START_TEST(test_line_formats)
{
	expect(wire_line_message("general", "alice", "hi there"),
	       "[general] alice: hi there\n");
	expect(wire_line_notice("You are now bob", 15),
	       "[system] You are now bob\n");
	expect(wire_line_notice("cut here", 3), "[system] cut\n");
	expect(wire_line_error("no such room", 12),
	       "[system] error: no such room\n");
}
END_TEST

START_TEST(test_sse_frames)
{
	expect(wire_sse_message("general", 41, 412, "alice",
				"say \"hi\"\n<b>", 0),
	       "id: 41\nevent: message\ndata: {\"id\":412,\"seq\":41,"
	       "\"room\":\"general\",\"user\":\"alice\",\"content\":"
	       "\"say \\\"hi\\\"\\n<b>\",\"created_at\":"
	       "\"1970-01-01T00:00:00.000Z\"}\n\n");
	expect(wire_sse_system("general", "bob joined general"),
	       "event: system\ndata: {\"room\":\"general\","
	       "\"text\":\"bob joined general\"}\n\n");
	expect(wire_sse_system(NULL, "server restarting, please reconnect"),
	       "event: system\ndata: {\"text\":\"server restarting, please reconnect\"}\n\n");
	expect(wire_sse_reset(22),
	       "event: reset\ndata: {\"reason\":\"history truncated\","
	       "\"missed\":22}\n\n");
	expect(wire_sse_reset(-3),
	       "event: reset\ndata: {\"reason\":\"history truncated\","
	       "\"missed\":0}\n\n");
	expect(wire_sse_retry(3000), "retry: 3000\n\n");
	expect(wire_sse_ping(), ": ping\n\n");
}
END_TEST

/* wire_group_text() of n people, names[] holding the first ones. */
static void expect_group(const char *const *names, size_t n, bool join,
			 const char *want)
{
	struct strbuf sb = STRBUF_INIT;

	wire_group_text(&sb, names, n, join, "general");
	ck_assert_str_eq(sb.buf, want);
	sb_fini(&sb);
}

/* Joins and leaves shown together: two names with "and", three to five
 * with commas, past five the first two and "and N others". */
START_TEST(test_group_texts)
{
	static const char *const names[] = { "alice", "bob", "carol", "dave",
					     "erin", "frank", "grace" };

	expect_group(names, 1, true, "alice joined general");
	expect_group(names, 1, false, "alice left general");
	expect_group(names, 2, true, "alice and bob joined general");
	expect_group(names, 2, false, "alice and bob left general");
	expect_group(names, 3, false, "alice, bob, carol left general");
	expect_group(names, 4, true, "alice, bob, carol, dave joined general");
	expect_group(names, 5, true,
		     "alice, bob, carol, dave, erin joined general");
	expect_group(names, 6, true, "alice, bob and 4 others joined general");
	expect_group(names, 7, false, "alice, bob and 5 others left general");
	/* Past five only the first two names are read. */
	expect_group(names, 5000, true,
		     "alice, bob and 4998 others joined general");
}
END_TEST

/* The same in each transport's frame: a line; for streams a lone one as
 * any system event, several with users and count. */
START_TEST(test_group_frames)
{
	static const char *const names[] = { "alice", "bob", "carol" };

	expect(wire_line_group("general", true, names, 1),
	       "[system] alice joined general\n");
	expect(wire_line_group("general", false, names, 3),
	       "[system] alice, bob, carol left general\n");
	expect(wire_line_group("general", true, names, 50),
	       "[system] alice, bob and 48 others joined general\n");
	expect(wire_sse_group("general", true, names, 1),
	       "event: system\ndata: {\"room\":\"general\","
	       "\"text\":\"alice joined general\"}\n\n");
	expect(wire_sse_group("general", true, names, 2),
	       "event: system\ndata: {\"room\":\"general\",\"text\":"
	       "\"alice and bob joined general\",\"users\":[\"alice\","
	       "\"bob\"],\"count\":2}\n\n");
	expect(wire_sse_group("general", false, names, 3),
	       "event: system\ndata: {\"room\":\"general\",\"text\":"
	       "\"alice, bob, carol left general\",\"users\":[\"alice\","
	       "\"bob\",\"carol\"],\"count\":3}\n\n");
}
END_TEST

/* A stream's frame lists at most WIRE_GROUP_USERS names; count is all. */
START_TEST(test_group_frame_list_capped)
{
	static char buf[WIRE_GROUP_USERS + 1][16];
	const char *names[WIRE_GROUP_USERS + 1];
	struct strbuf want = STRBUF_INIT;

	for (int i = 0; i <= WIRE_GROUP_USERS; i++) {
		snprintf(buf[i], sizeof(buf[i]), "u%d", i);
		names[i] = buf[i];
	}
	sb_puts(&want, "event: system\ndata: {\"room\":\"general\",\"text\":"
		       "\"u0, u1 and 4998 others joined general\",\"users\":[");
	for (int i = 0; i < WIRE_GROUP_USERS; i++)
		sb_appendf(&want, "%s\"u%d\"", i ? "," : "", i);
	sb_puts(&want, "],\"count\":5000}\n\n");
	/* names[WIRE_GROUP_USERS] is there, and must not be read. */
	expect(wire_sse_group("general", true, names, 5000), want.buf);
	/* Exactly the cap: all listed. */
	sb_fini(&want);
	sb_puts(&want, "event: system\ndata: {\"room\":\"general\",\"text\":"
		       "\"u0, u1 and 98 others left general\",\"users\":[");
	for (int i = 0; i < WIRE_GROUP_USERS; i++)
		sb_appendf(&want, "%s\"u%d\"", i ? "," : "", i);
	sb_puts(&want, "],\"count\":100}\n\n");
	expect(wire_sse_group("general", false, names, WIRE_GROUP_USERS),
	       want.buf);
	sb_fini(&want);
}
END_TEST

static void expect_str(char *got, const char *want)
{
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_json_answers)
{
	struct chat_room_info rooms[] = { { "alpha", 3, 2 }, { "b\"eta", 1, 0 } };
	struct wire_health h = {
		.ok = true, .instance_id = "i1", .sessions = 2, .streams = 1,
		.history_hits = 5, .history_misses = 1,
		.notify_queue_usage = 0, .http_connections = 3,
		.http_waiting = 0, .room_list_reads = 7, .db_queued = 1,
		.db_queued_user = 1, .db_limit = 1000, .db_refused = 0,
		.db_dropped = 4,
	};

	expect_str(wire_json_error("no such room"),
		   "{\"error\":\"no such room\"}");
	expect_str(wire_json_success(), "{\"success\":true}");
	expect_str(wire_json_connected("ab12", 7, "alice"),
		   "{\"session_id\":\"ab12\",\"user_id\":7,"
		   "\"nickname\":\"alice\"}");
	expect_str(wire_json_replied(false, "line\none"),
		   "{\"success\":false,\"message\":\"line\\none\"}");
	expect_str(wire_json_posted(412, 3),
		   "{\"success\":true,\"message_id\":412,\"seq\":3}");
	expect_str(wire_json_rooms(rooms, 2, "b\"eta"),
		   "{\"rooms\":[{\"name\":\"alpha\",\"members\":3,"
		   "\"online\":2},{\"name\":\"b\\\"eta\",\"members\":1,"
		   "\"online\":0}],\"next\":\"b\\\"eta\"}");
	expect_str(wire_json_rooms(NULL, 0, NULL),
		   "{\"rooms\":[],\"next\":null}");
	expect_str(wire_json_health(&h),
		   "{\"status\":\"healthy\",\"db\":\"connected\","
		   "\"instance_id\":\"i1\",\"uptime_s\":0,\"connections\":"
		   "{\"tcp\":0,\"http_sessions\":0,\"sse_streams\":1,"
		   "\"total\":1},\"sessions\":2,\"streams\":1,"
		   "\"history_hits\":5,\"history_misses\":1,"
		   "\"notify_queue_usage\":0.0,\"http_connections\":3,"
		   "\"http_waiting\":0,\"room_list_reads\":7,\"db_queue\":"
		   "{\"queued\":1,\"queued_user\":1,\"limit\":1000,"
		   "\"refused\":0,\"dropped\":4}}");
	h.notify_queue_usage = 0.25;
	h.ok = false;
	{
		char *j = wire_json_health(&h);

		ck_assert_msg(strstr(j, "\"notify_queue_usage\":0.25,") &&
				      strstr(j, "\"unhealthy\""),
			      "%s", j);
		free(j);
	}
	h.ok = true;
	h.draining = true;
	h.uptime_s = 42;
	h.tcp = 2;
	h.http_sessions = 3;
	{
		char *j = wire_json_health(&h);

		ck_assert_msg(strstr(j, "{\"status\":\"draining\",") &&
				      strstr(j, "\"uptime_s\":42,") &&
				      strstr(j, "\"connections\":{\"tcp\":2,\"http_sessions\":3,\"sse_streams\":1,\"total\":6}"),
			      "%s", j);
		free(j);
	}
}
END_TEST

/* /metrics: a label value with a quote and a backslash is escaped, the
 * histogram's buckets are cumulative and end in +Inf, counters and the
 * rejection reasons are all there. */
START_TEST(test_metrics_formats)
{
	static const double bounds[] = { 1, 2, 4 };
	struct chat_stats cs = { 0 };
	struct buckets b;
	struct wire_metrics m = { 0 };
	char *t, *j;

	buckets_init(&b, bounds, 3);
	buckets_add(&b, 1);
	buckets_add(&b, 3);
	buckets_add(&b, 9);
	cs.messages_posted = 7;
	cs.rejected[-BD_ETOOLONG - 1] = 2;
	m.instance_id = "a\"b\\c";
	m.chat = &cs;
	m.post_batches = &b;
	m.ctl_batches = &b;
	m.tcp = 1;
	t = wire_prom_metrics(&m);
	ck_assert_msg(strstr(t, "babydiscord_messages_committed_total{instance=\"a\\\"b\\\\c\"} 7\n"),
		      "%s", t);
	ck_assert_msg(strstr(t, "babydiscord_batch_size_bucket{instance=\"a\\\"b\\\\c\",kind=\"messages\",le=\"2\"} 1\n") &&
			      strstr(t, "babydiscord_batch_size_bucket{instance=\"a\\\"b\\\\c\",kind=\"messages\",le=\"4\"} 2\n") &&
			      strstr(t, "babydiscord_batch_size_bucket{instance=\"a\\\"b\\\\c\",kind=\"messages\",le=\"+Inf\"} 3\n") &&
			      strstr(t, "babydiscord_batch_size_sum{instance=\"a\\\"b\\\\c\",kind=\"messages\"} 13\n"),
		      "%s", t);
	ck_assert_msg(strstr(t, "reason=\"too_long\"} 2\n") &&
			      strstr(t, "# TYPE babydiscord_rejected_total counter\n"),
		      "%s", t);
	j = wire_json_metrics(&m);
	ck_assert_msg(strstr(j, "\"instance_id\":\"a\\\"b\\\\c\"") &&
			      strstr(j, "\"history_buffer_hit_rate\":100.0,") &&
			      strstr(j, "\"too_long\":2,") &&
			      strstr(j, "\"buckets\":{\"1\":1,\"2\":1,\"4\":2,\"+Inf\":3},\"count\":3,\"sum\":13}"),
		      "%s", j);
	free(t);
	free(j);
}
END_TEST

#define SID "0123456789abcdef0123456789abcdef"

/* body for kind: its status (0: decoded) and why. */
static int decode(enum apireq_kind kind, const char *body,
		  struct apireq *r, const char **why)
{
	*why = NULL;
	return apireq_decode(kind, body, strlen(body), 100, r, why);
}

static void expect_refused(enum apireq_kind kind, const char *body,
			   const char *want)
{
	struct apireq r;
	const char *why;

	ck_assert_int_eq(decode(kind, body, &r, &why), 400);
	ck_assert_str_eq(why, want);
	apireq_fini(&r);
}

/* The API's request bodies: each field taken or refused with its
 * reason; session ids that cannot be one become "", never cut. */
START_TEST(test_request_bodies)
{
	struct apireq r;
	const char *why;

	ck_assert_int_eq(decode(APIREQ_CONNECT, "{\"nickname\":\"bob\"}", &r,
				&why), 0);
	ck_assert_str_eq(r.nick, "bob");
	apireq_fini(&r);
	expect_refused(APIREQ_CONNECT, "{\"nickname\":\"b b\"}",
		       "invalid nickname (1-32 letters, digits, _ or -)");
	expect_refused(APIREQ_CONNECT, "{\"nickname\":7}",
		       "missing string field: nickname");
	expect_refused(APIREQ_CONNECT, "{\"nickname\":", "malformed JSON");
	expect_refused(APIREQ_CONNECT, "[1]", "expected a JSON object");
	expect_refused(APIREQ_CONNECT, "{\"nickname\":\"a\\u0000b\"}",
		       "malformed JSON");

	ck_assert_int_eq(decode(APIREQ_COMMAND,
				"{\"session_id\":\"" SID "\","
				"\"command\":\"/join x\"}", &r, &why), 0);
	ck_assert_str_eq(r.session_id, SID);
	ck_assert_uint_eq(r.text_len, 7);
	ck_assert(!memcmp(r.text, "/join x", 7));
	apireq_fini(&r);
	ck_assert_int_eq(decode(APIREQ_COMMAND,
				"{\"session_id\":\"" SID "ff\","
				"\"command\":\"/help\"}", &r, &why), 0);
	ck_assert_str_eq(r.session_id, "");	/* too long: not cut */
	apireq_fini(&r);
	expect_refused(APIREQ_COMMAND, "{\"session_id\":\"x\",\"command\":\"hi\"}",
		       "a command starts with /; send messages to /api/message");
	expect_refused(APIREQ_COMMAND, "{\"command\":\"/help\"}",
		       "missing string fields: session_id, command");
	{
		char big[200];

		snprintf(big, sizeof(big),
			 "{\"session_id\":\"x\",\"command\":\"/%0101d\"}", 0);
		expect_refused(APIREQ_COMMAND, big, "command too long");
	}

	ck_assert_int_eq(decode(APIREQ_MESSAGE,
				"{\"session_id\":\"" SID "\",\"room\":\"general\","
				"\"content\":\"it's 100% \\\\ \\\"ok\\\"\"}",
				&r, &why), 0);
	ck_assert_str_eq(r.room, "general");
	ck_assert_uint_eq(r.text_len, strlen("it's 100% \\ \"ok\""));
	ck_assert(!memcmp(r.text, "it's 100% \\ \"ok\"", r.text_len));
	apireq_fini(&r);
	ck_assert_int_eq(decode(APIREQ_MESSAGE,
				"{\"session_id\":\"s\",\"room\":\""
				"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				"\",\"content\":\"x\"}", &r, &why), 0);
	ck_assert_str_eq(r.room, "");	/* too long: no room, not cut */
	apireq_fini(&r);
	expect_refused(APIREQ_MESSAGE, "{\"session_id\":\"s\",\"room\":\"g\"}",
		       "missing string fields: session_id, room, content");
	expect_refused(APIREQ_DISCONNECT, "{}",
		       "missing string field: session_id");
}
END_TEST

static struct http1_str str(const char *s)
{
	return (struct http1_str){ s, strlen(s) };
}

/* A stream's session, room and resume point: the header wins over the
 * parameter; a resume point that is not a number is ignored. */
START_TEST(test_stream_params)
{
	struct apireq_stream sr;
	const char *why;

	ck_assert_int_eq(apireq_stream_parse(str("general"),
					 str("session_id=" SID "&last_event_id=7"),
					 str(""), &sr, &why), 0);
	ck_assert_str_eq(sr.room, "general");
	ck_assert_str_eq(sr.session_id, SID);
	ck_assert_int_eq(sr.last_seq, 7);
	ck_assert_int_eq(apireq_stream_parse(str("general"),
					 str("session_id=" SID "&last_event_id=7"),
					 str(" 42 "), &sr, &why), 0);
	ck_assert_int_eq(sr.last_seq, 42);
	ck_assert_int_eq(apireq_stream_parse(str("general"), str("session_id=" SID),
					 str("-3"), &sr, &why), 0);
	ck_assert_int_eq(sr.last_seq, -1);
	ck_assert_int_eq(apireq_stream_parse(str("general"), str("session_id=" SID),
					 str("99999999999999999999"), &sr,
					 &why), 0);
	ck_assert_int_eq(apireq_stream_parse(str("Gen"), str("session_id=" SID),
					 str(""), &sr, &why), 404);
	ck_assert_str_eq(why, "no such room");
	ck_assert_int_eq(apireq_stream_parse(str("general"), str("session_id=zz"),
					 str(""), &sr, &why), 404);
	ck_assert_str_eq(why, "unknown session");
}
END_TEST

START_TEST(test_rooms_params)
{
	char after[APIREQ_ROOM_BUF];
	size_t limit;
	const char *why;

	ck_assert_int_eq(apireq_rooms(str(""), &limit, after, &why), 0);
	ck_assert_uint_eq(limit, CHAT_ROOMS_PAGE);
	ck_assert_str_eq(after, "");
	ck_assert_int_eq(apireq_rooms(str("limit=500&after=b-2"), &limit,
					after, &why), 0);
	ck_assert_uint_eq(limit, 500);
	ck_assert_str_eq(after, "b-2");
	ck_assert_int_eq(apireq_rooms(str("limit=501"), &limit, after, &why),
			 400);
	ck_assert_str_eq(why, "limit must be 1 to 500");
	ck_assert_int_eq(apireq_rooms(str("limit=+5"), &limit, after, &why),
			 400);
	ck_assert_int_eq(apireq_rooms(str("after=%27x"), &limit, after,
					&why), 400);
	ck_assert_str_eq(why, "after must be a room name");
}
END_TEST

/* What notify_decode() hands out, copied. */
struct got {
	int n;
	struct chat_event ev[4];
	char nick[4][16], content[4][64];
};

static void got_event(void *arg, struct chat_event *ev)
{
	struct got *g = arg;

	ck_assert_int_lt(g->n, 4);
	g->ev[g->n] = *ev;
	snprintf(g->nick[g->n], sizeof(g->nick[0]), "%s", ev->nick);
	snprintf(g->content[g->n], sizeof(g->content[0]), "%s",
		 ev->content ? ev->content : "");
	g->n++;
}

/* Found by fuzz_notify: a room id of 1e20 written as a real number was
 * converted to int64 with undefined behaviour. Refused now, as is any id
 * out of range; an ordinary payload still decodes. */
START_TEST(test_notify_huge_real_room_id_refused)
{
	static const char *const bad[] = {
		"{\"k\":\"n\",\"r\":100000000000000000000.0,\"u\":\"a\","
		"\"to\":\"b\",\"uid\":5}",
		"{\"k\":\"m\",\"r\":-1e300,\"s\":1,\"i\":1,\"u\":\"a\","
		"\"c\":\"x\",\"t\":1}",
		"{\"k\":\"b\",\"r\":9.3e18,\"t\":1,\"m\":[[1,1,\"a\",\"x\"]]}",
	};
	struct got g = { 0 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(notify_decode(bad[i], got_event, &g) == -1, "%s",
			      bad[i]);
	ck_assert_int_eq(g.n, 0);
	ck_assert_int_eq(notify_decode("{\"k\":\"n\",\"r\":7,\"u\":\"a\","
				       "\"to\":\"b\",\"uid\":5}",
				       got_event, &g),
			 1);
	ck_assert_int_eq(g.ev[0].room_id, 7);
}
END_TEST

/* A batch (bd_post()'s one NOTIFY per room per batch): every message in
 * order with its own seq, id, nick and content; one bad item refuses the
 * whole payload before anything is handed out. */
START_TEST(test_notify_batch)
{
	struct got g = { 0 };

	ck_assert_int_eq(notify_decode("{\"k\":\"b\",\"r\":7,\"t\":1234,\"m\":"
				       "[[5,50,\"alice\",\"hi\"],"
				       "[6,51,\"bob\",\"a \\\"b\\\" \\\\\"]]}",
				       got_event, &g),
			 2);
	ck_assert_int_eq(g.n, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(g.ev[i].kind, CHAT_EV_MESSAGE);
		ck_assert_int_eq(g.ev[i].room_id, 7);
		ck_assert_int_eq(g.ev[i].time_ms, 1234);
		ck_assert_int_eq(g.ev[i].seq, 5 + i);
		ck_assert_int_eq(g.ev[i].id, 50 + i);
	}
	ck_assert_str_eq(g.nick[0], "alice");
	ck_assert_str_eq(g.content[0], "hi");
	ck_assert_str_eq(g.nick[1], "bob");
	ck_assert_str_eq(g.content[1], "a \"b\" \\");
	ck_assert_uint_eq(g.ev[1].content_len, 7);
	g.n = 0;
	ck_assert_int_eq(notify_decode("{\"k\":\"b\",\"r\":7,\"t\":1,\"m\":"
				       "[[5,50,\"alice\",\"hi\"],[6,51,\"bob\"]]}",
				       got_event, &g),
			 -1);
	ck_assert_int_eq(notify_decode("{\"k\":\"b\",\"r\":7,\"t\":1,\"m\":[]}",
				       got_event, &g),
			 -1);
	ck_assert_int_eq(g.n, 0);
}
END_TEST

int main(void)
{
	const struct tmain_case cases[] = {
		{ "line_formats", test_line_formats },
		{ "request_bodies", test_request_bodies },
		{ "stream_params", test_stream_params },
		{ "rooms_params", test_rooms_params },
		{ "notify_huge_real_room_id_refused",
		  test_notify_huge_real_room_id_refused },
		{ "notify_batch", test_notify_batch },
		{ "sse_frames", test_sse_frames },
		{ "json_answers", test_json_answers },
		{ "metrics_formats", test_metrics_formats },
		{ "group_texts", test_group_texts },
		{ "group_frames", test_group_frames },
		{ "group_frame_list_capped", test_group_frame_list_capped },
	};

	return tmain_main("formats", cases, TMAIN_N(cases), NULL, NULL);
}
