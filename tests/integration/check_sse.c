/*
 * Server-Sent Events (GET /api/messages/<room>): refusals, headers,
 * history, live messages and system events, resume with Last-Event-ID
 * (ring, database, retention, more than 1,000 behind), several streams, a
 * stream not read (slow consumer), heartbeats, TCP and HTTP users in one
 * room, HTTP session expiry, and 50 vanished clients. The messages table
 * is the reference throughout.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../helpers/tchat.h"
#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"
#include "../helpers/tsse.h"

#define PORT tfix_tcp_port()
#define HPORT tfix_http_port()
#define TIMEOUT 30 /* seconds per test */

#define NO_SID "0123456789abcdef0123456789abcdef" /* never handed out */

/* Posts n messages "<prefix> <i>" (i from 1) over HTTP; returns the last
 * seq. */
static long long say_n(const char *sid, const char *room, const char *prefix,
		       int n)
{
	long long seq = 0;
	char text[128];

	for (int i = 1; i <= n; i++) {
		snprintf(text, sizeof(text), "%s %d", prefix, i);
		seq = api_say(HPORT, sid, room, text, NULL);
	}
	return seq;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" as milliseconds since the epoch. */
static long long iso_ms(const char *t)
{
	struct tm tm = { 0 };
	int ms;

	ck_assert_msg(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year,
			     &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			     &tm.tm_sec, &ms) == 7,
		      "bad timestamp %s", t);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

/* The event m is the row of room with its seq: id, user, content, time. */
static void check_row(const struct tsse_msg *m, const char *room)
{
	char seq[32];
	PGresult *res;

	snprintf(seq, sizeof(seq), "%lld", m->seq);
	res = tdb_query(
		&T_DB,
		"SELECT m.id, m.nickname, m.content, "
		"floor(extract(epoch FROM m.created_at) * 1000)::bigint "
		"FROM messages m JOIN rooms r ON r.id = m.room_id "
		"WHERE r.name = $1 AND m.seq = $2",
		room, seq, NULL);
	ck_assert_msg(PQntuples(res) == 1, "no row for %s seq %lld", room,
		      m->seq);
	ck_assert_str_eq(m->room, room);
	ck_assert_msg(m->id == atoll(PQgetvalue(res, 0, 0)),
		      "seq %lld: event id %lld, table id %s", m->seq, m->id,
		      PQgetvalue(res, 0, 0));
	ck_assert_str_eq(m->user, PQgetvalue(res, 0, 1));
	ck_assert_str_eq(m->content, PQgetvalue(res, 0, 2));
	ck_assert_msg(iso_ms(m->created_at) == atoll(PQgetvalue(res, 0, 3)),
		      "seq %lld: created_at %s, table %s ms", m->seq,
		      m->created_at, PQgetvalue(res, 0, 3));
	PQclear(res);
}

/*
 * The next messages of s are seq first..last of general, each once, in
 * order, each its row (check_row()) with the content fmt of its seq
 * ("msg %lld"); m gets the last.
 */
static void expect_numbered(struct tsse *s, long long first, long long last,
			    const char *fmt, struct tsse_msg *m)
{
	for (long long q = first; q <= last; q++) {
		char text[32];

		sse_expect_seq(s, q, m);
		snprintf(text, sizeof(text), fmt, q);
		ck_assert_str_eq(m->content, text);
		check_row(m, "general");
	}
}

/* ---- refusals and headers ---- */

START_TEST(test_sse_refused_404_403)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];

	do_create(bob, "general");
	api_connect(HPORT, "alice", a);
	sse_expect_room_refused(HPORT, "unknown session", "general", NO_SID,
				404);
	sse_expect_room_refused(HPORT, "unknown room", "nowhere", a, 404);
	sse_expect_room_refused(HPORT, "not a member", "general", a, 403);
	/* A member gets the stream; after /leave, 403 again. */
	json_decref(api_command(HPORT, a, "/join general", true));
	tsse_free(sse_open_room(HPORT, "member", "general", a, NULL));
	json_decref(api_command(HPORT, a, "/leave", true));
	sse_expect_room_refused(HPORT, "left", "general", a, 403);
}
END_TEST

START_TEST(test_sse_headers_then_retry)
{
	char a[THTTP_SID_LEN + 1];
	struct tsse_msg m;
	struct tsse *s;
	long long seq;

	api_user(HPORT, "alice", HPORT, "/create general", a);
	/* Headers, then "retry: 3000" as the first block. */
	s = sse_open_room(HPORT, "alice", "general", a, NULL);
	/* An empty room has no history: the next event is live. */
	seq = api_say(HPORT, a, "general", "first", NULL);
	sse_expect_seq(s, seq, &m);
	ck_assert_str_eq(m.content, "first");
}
END_TEST

/* ---- history and live traffic ---- */

START_TEST(test_sse_history_last_ten)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];
	struct tsse_msg m;
	struct tsse *s;

	/* bob sees alice's join notice: it can't reach her stream later. */
	do_create(bob, "general");
	api_user(HPORT, "alice", HPORT, "/join general", a);
	expect_next(bob, "[system] alice joined general");
	for (int i = 1; i <= 12; i++) {
		char text[32];

		snprintf(text, sizeof(text), "m%02d", i);
		if (i % 3) {
			api_say(HPORT, a, "general", text, NULL);
		} else {
			char want[64];

			tcl_send(bob, "%s", text);
			snprintf(want, sizeof(want), "[general] bob: %s", text);
			expect_line(bob, want);
		}
	}
	s = sse_open_room(HPORT, "alice", "general", a, NULL);
	/* The last 10, oldest first, each as its row. */
	for (long long q = 3; q <= 12; q++) {
		expect_numbered(s, q, q, "m%02lld", &m);
		ck_assert_str_eq(m.user, q % 3 ? "alice" : "bob");
	}
	/* Nothing else: the next event is the next message. */
	api_say(HPORT, a, "general", "m13", NULL);
	sse_expect_seq(s, 13, &m);
	check_row(&m, "general");
}
END_TEST

START_TEST(test_sse_live_messages)
{
	static const char tricky[] =
		"quote \" backslash \\ slash / tab\tless \xc3\xa9 \xf0\x9f\x98\x80 <b>&amp;</b>";
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];
	struct tsse_msg m;
	struct tsse *s;
	long long id, seq;

	do_create(bob, "general");
	api_user(HPORT, "alice", HPORT, "/join general", a);
	expect_next(bob, "[system] alice joined general");
	s = sse_open_room(HPORT, "alice", "general", a, NULL);
	seq = api_say(HPORT, a, "general", "hello bob", &id);
	sse_expect_seq(s, seq, &m);
	ck_assert_int_eq(m.id, id);
	ck_assert_str_eq(m.user, "alice");
	ck_assert_str_eq(m.content, "hello bob");
	check_row(&m, "general");
	expect_next(bob, "[general] alice: hello bob");

	expect_reply(bob, "hi alice", "[general] bob: hi alice");
	sse_expect_seq(s, seq + 1, &m);
	ck_assert_str_eq(m.user, "bob");
	ck_assert_str_eq(m.content, "hi alice");
	check_row(&m, "general");

	/* JSON escaping survives the trip (a tab becomes a blank, as over
	 * TCP). */
	seq = api_say(HPORT, a, "general", tricky, NULL);
	sse_expect_seq(s, seq, &m);
	check_row(&m, "general");
	ck_assert_str_eq(
		m.content,
		"quote \" backslash \\ slash / tab less \xc3\xa9 \xf0\x9f\x98\x80 <b>&amp;</b>");
}
END_TEST

START_TEST(test_sse_system_events)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1], c[THTTP_SID_LEN + 1];
	struct tsse *s;
	long long seq;

	api_user(HPORT, "alice", HPORT, "/create general", a);
	s = sse_open_room(HPORT, "alice", "general", a, NULL);
	do_join(bob, "general");
	sse_expect_system(s, "general", "bob joined general");
	do_nick(bob, "bobby");
	sse_expect_system(s, "general", "bob is now known as bobby");
	api_user(HPORT, "carol", HPORT, "/join general", c);
	expect_next(bob, "[system] carol joined general");
	sse_expect_system(s, "general", "carol joined general");
	expect_reply(bob, "/leave", "[system] You left general");
	sse_expect_system(s, "general", "bobby left general");
	json_decref(api_command(HPORT, c, "/leave", true));
	sse_expect_system(s, "general", "carol left general");
	/* And nothing in between: the next event is this message. */
	seq = api_say(HPORT, a, "general", "alone", NULL);
	sse_expect_seq(s, seq, NULL);
}
END_TEST

/* ---- resume ---- */

START_TEST(test_sse_resume_within_ring)
{
	char a[THTTP_SID_LEN + 1];
	struct tsse *s, *t, *u;

	api_user(HPORT, "alice", HPORT, "/create general", a);
	ck_assert_int_eq(say_n(a, "general", "msg", 8), 8);
	s = sse_open_room(HPORT, "resume at 5", "general", a, "5");
	sse_expect_range(s, 6, 8);
	/* At the newest one: nothing to replay. */
	t = sse_open_room(HPORT, "resume at 8", "general", a, "8");
	/* Exactly those, then live. */
	ck_assert_int_eq(api_say(HPORT, a, "general", "nine", NULL), 9);
	sse_expect_seq(s, 9, NULL);
	sse_expect_seq(t, 9, NULL);
	/* Resume before the first message: everything. */
	u = sse_open_room(HPORT, "resume at 0", "general", a, "0");
	sse_expect_range(u, 1, 9);
	ck_assert_int_eq(api_say(HPORT, a, "general", "ten", NULL), 10);
	sse_expect_seq(u, 10, NULL);
}
END_TEST

START_TEST(test_sse_resume_query_parameter)
{
	static const struct {
		const char *label;
		const char *query; /* %s: the session id */
		long long from;	   /* the first message replayed */
	} cases[] = {
		{ "?last_event_id=5", "session_id=%s&last_event_id=5", 6 },
		/* The parameters in the other order. */
		{ "?last_event_id=7 first", "last_event_id=7&session_id=%s",
		  8 },
	};
	char a[THTTP_SID_LEN + 1];

	api_user(HPORT, "alice", HPORT, "/create general", a);
	ck_assert_int_eq(say_n(a, "general", "msg", 8), 8);
	for (size_t i = 0; i < TMAIN_N(cases); i++) {
		long long live = 9 + (long long)i; /* the next message */
		char query[128], path[256];
		struct tsse *s;

		snprintf(query, sizeof(query), cases[i].query, a);
		snprintf(path, sizeof(path), "/api/messages/general?%s", query);
		s = tsse_open(HPORT, cases[i].label, path, NULL);
		sse_expect_open(s);
		sse_expect_range(s, cases[i].from, live - 1);
		ck_assert_int_eq(api_say(HPORT, a, "general", "live", NULL),
				 live);
		sse_expect_seq(s, live, NULL);
		tsse_free(s);
	}
}
END_TEST

START_TEST(test_sse_resume_from_database)
{
	char a[THTTP_SID_LEN + 1];
	struct tsse_msg m;
	struct tsse *s;

	api_user(HPORT, "alice", HPORT, "/create general", a);
	ck_assert_int_eq(say_n(a, "general", "msg", 30), 30);
	/* 6..20 are no longer in the ring of 10: they come from the table. */
	s = sse_open_room(HPORT, "resume at 5", "general", a, "5");
	expect_numbered(s, 6, 30, "msg %lld", &m);
	/* Exactly 25, then live. */
	ck_assert_int_eq(api_say(HPORT, a, "general", "live", NULL), 31);
	sse_expect_seq(s, 31, NULL);
}
END_TEST

/* A ring of 3, so that the room's history and the table's rows agree
 * after retention keeps 3. */
static void setup_history_3(void)
{
	struct tsrv_opts o = { .history_size = 3 };

	tfix_use(&o);
}

START_TEST(test_sse_resume_beyond_retention_resets)
{
	char a[THTTP_SID_LEN + 1];
	struct tsse_msg m;
	struct tsse *s;

	api_user(HPORT, "alice", HPORT, "/create general", a);
	ck_assert_int_eq(say_n(a, "general", "msg", 30), 30);
	/* Retention keeps 28..30 in the table. */
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT bd_cleanup(3)", NULL), 27);
	s = sse_open_room(HPORT, "resume at 5", "general", a, "5");
	/* 6..27 are gone: 22 missed, then the history, 28..30, each as its
	 * row, then live. */
	ck_assert_int_eq(sse_expect_reset(s), 22);
	expect_numbered(s, 28, 30, "msg %lld", &m);
	ck_assert_int_eq(api_say(HPORT, a, "general", "live", NULL), 31);
	sse_expect_seq(s, 31, NULL);
}
END_TEST

/*
 * Resume points 1,000 messages behind and 1,001 behind, the messages put
 * in by SQL through bd_post (as the server stores them, NOTIFY included):
 * the first is served from the table, the second gets a reset that counts
 * what it skips, then the history (the last 10), then live.
 */
START_TEST(test_sse_resume_over_1000_behind_resets)
{
	char a[THTTP_SID_LEN + 1];
	struct tsse *live, *s1000, *s1001;

	api_user(HPORT, "alice", HPORT, "/create general", a);
	live = sse_open_room(HPORT, "live", "general", a, NULL);
	ck_assert_int_eq(api_say(HPORT, a, "general", "first", NULL), 1);
	sse_expect_seq(live, 1, NULL);
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT count(*) FROM bd_post((SELECT jsonb_agg("
			"jsonb_build_object('r', r.id, 'n', 'alice', "
			"'c', 'bulk ' || g) ORDER BY g) "
			"FROM rooms r, generate_series(1, 1002) g "
			"WHERE r.name = 'general'))",
			NULL),
		1002);
	/* The server has them all once the live stream has. */
	sse_expect_range(live, 2, 1003);
	/* 4..1003: exactly 1,000, from the table. */
	s1000 = sse_open_room(HPORT, "1,000 behind", "general", a, "3");
	sse_expect_range(s1000, 4, 1003);
	/* 3..1003: 1,001. Reset, 991 skipped (3..993), the history
	 * 994..1003. */
	s1001 = sse_open_room(HPORT, "1,001 behind", "general", a, "2");
	ck_assert_int_eq(sse_expect_reset(s1001), 991);
	sse_expect_range(s1001, 994, 1003);
	/* Then live, on every stream, nothing in between. */
	ck_assert_int_eq(api_say(HPORT, a, "general", "after", NULL), 1004);
	sse_expect_seq(s1000, 1004, NULL);
	sse_expect_seq(s1001, 1004, NULL);
	sse_expect_seq(live, 1004, NULL);
}
END_TEST

/* ---- several streams ---- */

START_TEST(test_sse_two_streams_same_session)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1], text[32];
	struct tsse *s1, *s2;

	do_create(bob, "general");
	api_user(HPORT, "alice", HPORT, "/join general", a);
	expect_next(bob, "[system] alice joined general");
	s1 = sse_open_room(HPORT, "stream 1", "general", a, NULL);
	s2 = sse_open_room(HPORT, "stream 2", "general", a, NULL);
	for (int i = 1; i <= 5; i++) {
		snprintf(text, sizeof(text), "a%d", i);
		api_say(HPORT, a, "general", text, NULL);
		snprintf(text, sizeof(text), "b%d", i);
		tcl_send(bob, "%s", text);
	}
	sse_expect_range(s1, 1, 10);
	sse_expect_range(s2, 1, 10);
	/* Each message once: the next one on both is 11. */
	ck_assert_int_eq(api_say(HPORT, a, "general", "last", NULL), 11);
	sse_expect_seq(s1, 11, NULL);
	sse_expect_seq(s2, 11, NULL);
	tsse_free(s1);
	/* The other stream lives on. */
	ck_assert_int_eq(api_say(HPORT, a, "general", "after", NULL), 12);
	sse_expect_seq(s2, 12, NULL);
}
END_TEST

/* ---- a stream that is not read ---- */

/*
 * outq_limit_bytes 65536: a stream whose client reads nothing (a small
 * receive buffer, so the kernel absorbs little) is closed as a slow
 * consumer once its queue would pass the limit, the log names it, and
 * the other clients, a TCP one and a stream, get every message.
 */
START_TEST(test_sse_slow_reader_disconnected)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	char sl[THTTP_SID_LEN + 1], c[THTTP_SID_LEN + 1], path[256];
	struct tsse *slow, *carol;
	struct tchat_flood f = {
		.from = alice, .tcp = &bob, .ntcp = 1, .sse = &carol, .nsse = 1
	};
	char *line;
	enum tsse_rc rc;

	do_create(alice, "flood");
	do_join_seen(bob, "flood", alice);
	api_user(HPORT, "slowpoke", HPORT, "/join flood", sl);
	expect_next(alice, "[system] slowpoke joined flood");
	expect_next(bob, "[system] slowpoke joined flood");
	api_user(HPORT, "carol", HPORT, "/join flood", c);
	expect_next(alice, "[system] carol joined flood");
	expect_next(bob, "[system] carol joined flood");
	snprintf(path, sizeof(path), "/api/messages/flood?session_id=%s", sl);
	slow = tsse_open_opt(HPORT, "slowpoke", path, NULL, 4096);
	sse_expect_open(slow);
	carol = sse_open_room(HPORT, "carol", "flood", c, NULL);
	/* From here on slowpoke reads nothing until the end; the others get
	 * everything, before and after it is dropped. */
	line = tchat_flood_until_slow(&f, 65536);
	ck_assert_msg(
		strstr(line, " stream=") &&
			strstr(line, " nick=slowpoke room=flood "),
		"the slow-consumer log line does not name slowpoke's stream in flood: %s",
		line);
	free(line);
	/* slowpoke's stream ends once drained: it was disconnected. */
	while ((rc = tsse_read(slow, trun_ms(15000))) == TSSE_BLOCK)
		;
	ck_assert_msg(
		rc == TSSE_EOF,
		"slowpoke: the stream still open after the slow-consumer line (%d events read)",
		slow->blocks);
}
END_TEST

static void setup_heartbeat(void)
{
	struct tsrv_opts o = { .extra_json = "\"sse_heartbeat_s\": 1" };

	tfix_use(&o);
}

/*
 * sse_heartbeat_s 1: ": ping" comments come, and never more often than
 * once a period. The server sends pings to a stream only while it is
 * open, at least a period apart, so the n pings read between t0 (before
 * the request) and now were sent inside that span: it must be at least
 * (n - 1) periods long. A correct server cannot fail this, however slow
 * the machine; a server pinging twice a period fails it unless the
 * machine stalls for most of a second while the pings are read.
 */
START_TEST(test_sse_heartbeat)
{
	enum { PINGS = 4, PERIOD_MS = 1000 };
	char a[THTTP_SID_LEN + 1];
	struct tsse *s;
	int64_t t0, span;

	api_user(HPORT, "alice", HPORT, "/create general", a);
	t0 = trun_now_ms();
	s = sse_open_room(HPORT, "alice", "general", a, NULL);
	for (int i = 0; i < PINGS; i++)
		sse_expect_comment(s, " ping", trun_ms(T_WAIT));
	span = trun_now_ms() - t0;
	trun_note("%d pings in %lld ms", PINGS, (long long)span);
	ck_assert_msg(span >= (PINGS - 1) * PERIOD_MS,
		      "%d pings within %lld ms: more than one per %d ms period",
		      PINGS, (long long)span, PERIOD_MS);
	/* The stream still carries messages. */
	ck_assert_int_eq(api_say(HPORT, a, "general", "after pings", NULL), 1);
	sse_expect_seq(s, 1, NULL);
}
END_TEST

/* ---- TCP and HTTP in one room ---- */

START_TEST(test_sse_and_tcp_same_order)
{
	enum { N = 20 };
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1], text[32];
	long long aseq[N];
	struct tsse *s;
	PGresult *res;

	do_create(bob, "general");
	api_user(HPORT, "alice", HPORT, "/join general", a);
	expect_next(bob, "[system] alice joined general");
	s = sse_open_room(HPORT, "alice", "general", a, NULL);
	/* bob's lines go out without waiting; alice's wait for commit. */
	for (int i = 0; i < N; i++) {
		tcl_send(bob, "b%02d", i);
		snprintf(text, sizeof(text), "a%02d", i);
		aseq[i] = api_say(HPORT, a, "general", text, NULL);
	}
	/* The TCP client saw the table's order, and so did the stream. */
	res = expect_lines_are_rows(bob, "general", 2 * N);
	expect_rows(s, res, 0, 2 * N, "general");
	/* Each sender's messages in its own order; alice's seqs are hers. */
	for (int i = 0, na = 0, nb = 0; i < 2 * N; i++) {
		bool mine = !strcmp(PQgetvalue(res, i, TCHAT_NICK), "bob");

		snprintf(text, sizeof(text), "%c%02d", mine ? 'b' : 'a',
			 mine ? nb++ : na++);
		ck_assert_str_eq(PQgetvalue(res, i, TCHAT_CONTENT), text);
	}
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "a%02d", i);
		ck_assert_str_eq(PQgetvalue(res, aseq[i] - 1, TCHAT_CONTENT),
				 text);
	}
	PQclear(res);
}
END_TEST

/* ---- session expiry ---- */

/*
 * keeper, with an open stream, and idle, without one, both idle for an
 * hour: the tick ends idle and keeps keeper (it marks the sessions it
 * streams to active before it ends idle ones); once its stream is
 * closed keeper ends too.
 */
START_TEST(test_session_expires_when_idle)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char k[THTTP_SID_LEN + 1], i[THTTP_SID_LEN + 1];
	struct tsse *s;

	api_user(HPORT, "keeper", HPORT, "/create k", k);
	s = sse_open_room(HPORT, "keeper", "k", k, NULL);
	api_connect(HPORT, "idle", i);
	ck_assert(listed(bob, "idle (no room)"));
	ck_assert(listed(bob, "keeper (in k)"));
	/* keeper first: a tick that sees idle's change has seen keeper's
	 * (and then marked keeper active again). */
	ck_assert_int_eq(tdb_stage_idle(&T_DB, k), 1);
	ck_assert_int_eq(tdb_stage_idle(&T_DB, i), 1);
	wait_unlisted(bob, "idle (no room)", trun_ms(10000));
	expect_command_refused(HPORT, i, "/help", 404);
	/* The open stream kept keeper alive. */
	ck_assert_msg(listed(bob, "keeper (in k)"),
		      "keeper expired with an open stream");
	json_decref(api_command(HPORT, k, "/help", true));
	/* Without it, keeper goes too. A tick sent before the server saw
	 * the close may mark it active once more: made idle again until it
	 * is gone. */
	tsse_free(s);
	wait_expired(bob, k, "keeper (in k)");
	expect_command_refused(HPORT, k, "/help", 404);
}
END_TEST

/* ---- vanished clients ---- */

/* Open file descriptors of pid. */
static int fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	ck_assert_msg(d, "%s", path);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * 50 streams whose clients go without a word, half with a FIN, half with
 * a reset: the server closes every one (/health counts no stream, its
 * descriptors are back to what they were before) and still serves
 * streams. Neither has an event to wait for: both are polled, paced.
 */
START_TEST(test_sse_vanished_clients_closed)
{
	enum { N = 50 };
	char a[THTTP_SID_LEN + 1];
	struct tsse *s[N];
	int64_t deadline;
	int base, opened, now;

	api_user(HPORT, "alice", HPORT, "/create general", a);
	ck_assert_int_eq(say_n(a, "general", "msg", 3), 3);
	base = fd_count(T_SRV.pid);
	for (int i = 0; i < N; i++) {
		char label[32];

		snprintf(label, sizeof(label), "stream %d", i);
		s[i] = sse_open_room(HPORT, label, "general", a, NULL);
		sse_expect_range(s[i], 1, 3);
	}
	ck_assert_int_eq(health_streams(HPORT, 200), N);
	opened = fd_count(T_SRV.pid);
	/* (A request's connection may have been open for base.) */
	ck_assert_msg(opened >= base + N - 2,
		      "%d streams open but the server has %d fds (%d before)",
		      N, opened, base);
	for (int i = 0; i < N; i++) {
		if (i % 2)
			tsse_abort(s[i]);
		else
			tsse_free(s[i]);
	}
	deadline = trun_now_ms() + trun_ms(T_WAIT);
	while (health_streams(HPORT, 200)) {
		ck_assert_msg(
			trun_now_ms() < deadline,
			"/health still counts %lld streams %d ms after their %d clients vanished",
			health_streams(HPORT, 200), trun_ms(T_WAIT), N);
		trun_pace();
	}
	while ((now = fd_count(T_SRV.pid)) > base) {
		ck_assert_msg(
			trun_now_ms() < deadline,
			"the server holds %d fds %d ms after %d clients vanished (%d before they came)",
			now, trun_ms(T_WAIT), N, base);
		trun_pace();
	}
	trun_note("fds: %d before, %d with %d streams, %d after", base, opened,
		  N, now);
	/* And it still serves streams. */
	{
		struct tsse *t =
			sse_open_room(HPORT, "after", "general", a, NULL);

		sse_expect_range(t, 1, 3);
		ck_assert_int_eq(api_say(HPORT, a, "general", "still", NULL),
				 4);
		sse_expect_seq(t, 4, NULL);
		tsse_free(t);
	}
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_sse_refused_404_403, TIMEOUT, NULL),
		TFIX_CASE(test_sse_headers_then_retry, TIMEOUT, NULL),
		TFIX_CASE(test_sse_history_last_ten, TIMEOUT, NULL),
		TFIX_CASE(test_sse_live_messages, TIMEOUT, NULL),
		TFIX_CASE(test_sse_system_events, TIMEOUT, NULL),
		TFIX_CASE(test_sse_resume_within_ring, TIMEOUT, NULL),
		TFIX_CASE(test_sse_resume_query_parameter, TIMEOUT, NULL),
		TFIX_CASE(test_sse_resume_from_database, TIMEOUT, NULL),
		TFIX_CASE(test_sse_resume_beyond_retention_resets, TIMEOUT,
			  setup_history_3),
		TFIX_CASE(test_sse_resume_over_1000_behind_resets, 60, NULL),
		TFIX_CASE(test_sse_two_streams_same_session, TIMEOUT, NULL),
		TFIX_CASE(test_sse_slow_reader_disconnected, 120,
			  tfix_setup_small_outq),
		TFIX_CASE(test_sse_heartbeat, TIMEOUT, setup_heartbeat),
		TFIX_CASE(test_sse_and_tcp_same_order, TIMEOUT, NULL),
		TFIX_CASE(test_session_expires_when_idle, 60,
			  tfix_setup_staged_idle),
		TFIX_CASE(test_sse_vanished_clients_closed, 60, NULL),
	};

	return tfix_main("sse", cases, TMAIN_N(cases), NULL);
}
