/*
 * HTTP API sessions shared by every instance through PostgreSQL: a
 * session made on one instance serves requests and event streams on every
 * other, each request sees the session's current state (room, nickname,
 * memberships) from the database, streams end when the session leaves or
 * disconnects elsewhere, Last-Event-ID resumes on another instance, the
 * session counts once in presence, expires everywhere when idle (not
 * while a stream is open anywhere), and survives an instance restart. Then
 * the same through nginx doing plain round robin (contrib/nginx), with no
 * sticky sessions. The messages table is the reference throughout.
 */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers/tchat.h"
#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/tproxy.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"
#include "../helpers/tsse.h"

#define NINST 3
#define TIMEOUT 60 /* seconds per test */

#define NO_SID "0123456789abcdef0123456789abcdef" /* never handed out */

static struct tproxy px; /* nginx in front, when a test starts it */

/* Instance i's HTTP port (i from 0). */
#define H(i) (T_INST[(i)].http_port)

/* ---- fixture: three instances, maybe nginx in front ---- */

static void up_idle(void)
{
	struct tsrv_opts o = { .extra_json = "\"session_idle_timeout_s\": 2" };

	tfix_use(&o);
}

static void down(void)
{
	tproxy_stop(&px);
	tfix_teardown();
}

/* ---- HTTP helpers ---- */

/* r is 404 {"error": "unknown session"}. */
static void expect_unknown_at(const char *file, int line,
			      const struct thttp_resp *r, const char *what)
{
	json_t *j;
	const char *e;

	thttp_expect_error_at(file, line, r, 404);
	j = thttp_json_at(file, line, r);
	e = json_string_value(json_object_get(j, "error"));
	if (!e || strcmp(e, "unknown session")) {
		char got[256];

		snprintf(got, sizeof(got), "%s", e ? e : "(none)");
		json_decref(j);
		trun_fail(file, line,
			  "%s: expected {\"error\": \"unknown session\"}, got error \"%s\"",
			  what, got);
	}
	json_decref(j);
}

/*
 * Every API use of sid on every instance (command, message to room,
 * disconnect, event stream of room) is 404 "unknown session".
 */
static void expect_gone_everywhere_at(const char *file, int line,
				      const char *sid, const char *room)
{
	for (int i = 0; i < T_NINST; i++) {
		struct thttp_resp r;
		struct tsse *s;
		char what[96];

		if (!T_INST[i].pid)
			continue;
		snprintf(what, sizeof(what), "inst%d /api/command", i + 1);
		thttp_post_pack(H(i), "/api/command", &r, "{ssss}",
				"session_id", sid, "command", "/help");
		expect_unknown_at(file, line, &r, what);
		snprintf(what, sizeof(what), "inst%d /api/message", i + 1);
		thttp_post_pack(H(i), "/api/message", &r, "{ssssss}",
				"session_id", sid, "room", room, "content",
				"hello?");
		expect_unknown_at(file, line, &r, what);
		snprintf(what, sizeof(what), "inst%d /api/messages/%s", i + 1,
			 room);
		s = tsse_open_room(H(i), what, room, sid, NULL);
		if (s->resp.status != 404) {
			int st = s->resp.status;

			tsse_free(s);
			trun_fail(file, line,
				  "%s: expected 404 for an unknown session, got %d",
				  what, st);
		}
		expect_unknown_at(file, line, &s->resp, what);
		tsse_free(s);
		snprintf(what, sizeof(what), "inst%d /api/disconnect", i + 1);
		thttp_post_pack(H(i), "/api/disconnect", &r, "{ss}",
				"session_id", sid);
		expect_unknown_at(file, line, &r, what);
	}
}

#define expect_gone_everywhere(sid, room) \
	expect_gone_everywhere_at(__FILE__, __LINE__, (sid), (room))

/* The message of a successful command (malloc'd). */
static char *command_text_at(const char *file, int line, int port,
			     const char *sid, const char *cmd)
{
	json_t *j = thttp_command_at(file, line, port, sid, cmd, true);
	char *t = strdup(json_string_value(json_object_get(j, "message")));

	json_decref(j);
	ck_assert(t);
	return t;
}

#define command_text(port, sid, cmd) \
	command_text_at(__FILE__, __LINE__, (port), (sid), (cmd))

/* GET /api/rooms on port: members and online of room (-1: not listed). */
static void room_counts(int port, const char *room, int *members,
			int *online)
{
	struct thttp_resp r;
	json_t *j, *rooms, *e;
	size_t i;

	*members = *online = -1;
	thttp_get(port, "/api/rooms", &r);
	expect_status(&r, 200);
	j = resp_json(&r);
	rooms = json_object_get(j, "rooms");
	ck_assert_msg(json_is_array(rooms), "/api/rooms: %s", r.body);
	json_array_foreach(rooms, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "name")) ?: "",
			   room))
			continue;
		*members = (int)json_integer_value(json_object_get(e, "members"));
		*online = (int)json_integer_value(json_object_get(e, "online"));
	}
	json_decref(j);
}

/* /api/rooms on every instance says room has members and online. */
/* Every instance's GET /api/rooms says so. An instance serves the list
 * from a snapshot up to a second old when the change happened in a room
 * nobody on it is in (README): no event tells when it is read again, so
 * this polls, paced, up to T_WAIT. */
static void expect_counts_at(const char *file, int line, const char *room,
			     int members, int online)
{
	for (int i = 0; i < T_NINST; i++) {
		int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
		int m, o;

		for (;;) {
			room_counts(H(i), room, &m, &o);
			if (m == members && o == online)
				break;
			if (trun_now_ms() > deadline)
				trun_fail(file, line,
					  "inst%d /api/rooms: %s has %d members, %d online; expected %d and %d",
					  i + 1, room, m, o, members, online);
			trun_pace();
		}
	}
}

#define expect_counts(room, m, o) \
	expect_counts_at(__FILE__, __LINE__, (room), (m), (o))

/* ---- event streams ---- */

/* Opened through nginx: as sse_expect_open(), X-Accel-Buffering aside. */
#define proxy_expect_open(s) \
	tsse_expect_open_proxied_at(__FILE__, __LINE__, (s))

/*
 * /list through the API on port: "Online users (n):" and the entries
 * want[] ("[system]   " and the TCP text) in any order.
 */
static void expect_api_list_at(const char *file, int line, int port,
			       const char *sid, const char *const *want, int n)
{
	char *msg = command_text_at(file, line, port, sid, "/list");
	char head[64], *p = msg, got[4096] = "";
	int count = 0;

	snprintf(head, sizeof(head), "Online users (%d):", n);
	if (strncmp(msg, head, strlen(head)) || msg[strlen(head)] != (n ? '\n' : '\0'))
		goto bad;
	p = msg + strlen(head);
	while (*p == '\n') {
		char *e = strchr(p + 1, '\n');
		size_t len = e ? (size_t)(e - p - 1) : strlen(p + 1);
		bool found = false;

		snprintf(got, sizeof(got), "[system] %.*s", (int)len, p + 1);
		for (int i = 0; i < n; i++)
			found |= !strcmp(got, want[i]);
		if (!found)
			goto bad;
		count++;
		p += len + 1;
	}
	if (*p || count != n)
		goto bad;
	free(msg);
	return;
bad:
	snprintf(got, sizeof(got), "%s", msg);
	free(msg);
	trun_fail(file, line, "/list on port %d: expected %d users, got \"%s\"",
		  port, n, got);
}

#define expect_api_list(port, sid, want, n) \
	expect_api_list_at(__FILE__, __LINE__, (port), (sid), (want), (n))

/* ---- the tests without a proxy ---- */

/*
 * A session made on instance 1 is one session everywhere: commands,
 * messages and streams on all three; once disconnected (through
 * instance 2), 404 "unknown session" on all three, like a never-issued id.
 */
START_TEST(test_session_works_on_every_instance)
{
	char a[THTTP_SID_LEN + 1];
	struct tsse *s[NINST];
	long long seq[NINST];

	tfix_start_instances(NINST);
	api_connect(H(0), "alice", a);
	expect_command(H(1), a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	expect_gone_everywhere(NO_SID, "general");
	for (int i = 0; i < NINST; i++) {
		char text[32];

		expect_command(H(i), a, "/list", true,
			       "Online users (1):\n  alice (in general)");
		snprintf(text, sizeof(text), "via inst%d", i + 1);
		seq[i] = api_say(H(i), a, "general", text, NULL);
		ck_assert_int_eq(seq[i], i + 1);
	}
	for (int i = 0; i < NINST; i++) {
		char label[32];

		snprintf(label, sizeof(label), "stream on inst%d", i + 1);
		s[i] = sse_open_room(H(i), label, "general", a, NULL);
		sse_expect_range(s[i], 1, 3);
	}
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM messages "
				 "WHERE nickname = 'alice'",
				 NULL),
			 3);
	api_disconnect(H(1), a);
	for (int i = 0; i < NINST; i++) {
		sse_expect_end(s[i]);
		tsse_free(s[i]);
	}
	expect_gone_everywhere(a, "general");
}
END_TEST

/*
 * Each request reads the session's state from the database: the current
 * room set through one instance is the one /leave leaves through another,
 * a rename through one names the next message sent through another, and
 * memberships added or removed anywhere decide 200 or 403 everywhere.
 */
START_TEST(test_session_state_seen_by_every_instance)
{
	char a[THTTP_SID_LEN + 1];
	struct tcl *bob;
	struct tsse *s;
	PGresult *res;
	long long seq;
	char *msg;

	tfix_start_instances(NINST);
	bob = tcl_user(T_INST[2].tcp_port, "bob");
	api_connect(H(0), "alice", a);
	json_decref(api_command(H(0), a, "/create general", true));
	do_join(bob, "general");
	json_decref(api_command(H(1), a, "/create side", true));
	/* side, made current through instance 2, is current on all. */
	msg = command_text(H(0), a, "/list");
	ck_assert_msg(strstr(msg, "\n  alice (in side)"),
		      "/list on inst1 after /create side on inst2: \"%s\"",
		      msg);
	free(msg);
	{
		const char *want[] = { "[system]   alice (in side)",
				       "[system]   bob (in general)" };

		expect_list(bob, want, 2);
	}
	expect_command(H(0), a, "/leave", true, "You left side");
	expect_command(H(2), a, "/leave", false, "you are not in a room");
	expect_say_refused(H(2), a, "side", "refused?", 403);
	expect_say_refused(H(1), a, "side", "refused?", 403);
	/* Still a member of general. */
	api_say(H(0), a, "general", "still here", NULL);
	expect_next(bob, "[general] alice: still here");
	/* Renamed through instance 2, seen on 1 and 3. */
	expect_command(H(1), a, "/nick alicia", true, "You are now alicia");
	expect_next(bob, "[system] alice is now known as alicia");
	seq = api_say(H(0), a, "general", "new name", NULL);
	expect_next(bob, "[general] alicia: new name");
	res = tchat_rows("general");
	ck_assert_int_eq(PQntuples(res), (int)seq);
	ck_assert_str_eq(PQgetvalue(res, seq - 2, TCHAT_NICK), "alice");
	ck_assert_str_eq(PQgetvalue(res, seq - 1, TCHAT_NICK), "alicia");
	ck_assert_str_eq(PQgetvalue(res, seq - 1, TCHAT_CONTENT), "new name");
	PQclear(res);
	{
		const char *want[] = { "[system]   alicia (no room)",
				       "[system]   bob (in general)" };

		expect_list(bob, want, 2);
	}
	/* Joined again through instance 3: a member on 1 and 2. */
	expect_command(H(2), a, "/join side", true,
		       "You joined side (0 recent messages)");
	ck_assert_int_eq(api_say(H(0), a, "side", "back in side", NULL), 1);
	s = sse_open_room(H(1), "alicia on inst2", "side", a, NULL);
	sse_expect_seq(s, 1, NULL);
	tsse_free(s);
	expect_command(H(1), a, "/rooms", true,
		       "Rooms (2):\n"
		       "  general: 2 members, 2 online\n"
		       "  side: 1 member, 1 online");
}
END_TEST

/*
 * A stream on instance 1 ends when its session leaves that room (its
 * current one) through instance 2; a stream of the same session for
 * another room it is still in stays open. The room then refuses it.
 */
START_TEST(test_stream_ends_on_leave_elsewhere)
{
	char a[THTTP_SID_LEN + 1];
	struct tsse *cur, *other;

	tfix_start_instances(NINST);
	api_user(H(2), "alice", H(2), "/create other", a);
	json_decref(api_command(H(2), a, "/create current", true));
	cur = sse_open_room(H(0), "current on inst1", "current", a, NULL);
	other = sse_open_room(H(0), "other on inst1", "other", a, NULL);
	ck_assert_int_eq(api_say(H(2), a, "current", "before", NULL), 1);
	sse_expect_seq(cur, 1, NULL);
	expect_command(H(1), a, "/leave", true, "You left current");
	sse_expect_end(cur);
	tsse_free(cur);
	/* The other room's stream lives on. */
	ck_assert_int_eq(api_say(H(2), a, "other", "after", NULL), 1);
	sse_expect_seq(other, 1, NULL);
	/* Not a member any more, on every instance. */
	for (int i = 0; i < NINST; i++) {
		sse_expect_room_refused(H(i), "left", "current", a, 403);
		expect_say_refused(H(i), a, "current", "refused?", 403);
	}
}
END_TEST

/*
 * A membership that ends without its notification reaching an instance
 * (here removed by hand, which notifies nobody; in life, a /leave through
 * another instance while this one's LISTEN connection was down): the
 * instance's tick (every third of session_idle_timeout_s, 2 s here) finds
 * it and ends the stream; the session's other stream lives on.
 */
START_TEST(test_stream_ends_when_membership_ends_unnotified)
{
	char a[THTTP_SID_LEN + 1];
	struct tsse *cur, *other;

	tfix_start_instances(1);
	api_user(H(0), "alice", H(0), "/create other", a);
	json_decref(api_command(H(0), a, "/create current", true));
	cur = sse_open_room(H(0), "current", "current", a, NULL);
	other = sse_open_room(H(0), "other", "other", a, NULL);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "DELETE FROM room_members m USING rooms r "
				 "WHERE r.id = m.room_id AND r.name = 'current' "
				 "RETURNING 1", NULL), 1);
	sse_expect_end(cur);
	tsse_free(cur);
	ck_assert_int_eq(api_say(H(0), a, "other", "still", NULL), 1);
	sse_expect_seq(other, 1, NULL);
	expect_say_refused(H(0), a, "current", "refused?", 403);
}
END_TEST

/*
 * Streams on instance 1 end when their session is disconnected through
 * another instance: /api/disconnect through instance 2, /quit through
 * instance 3.
 */
START_TEST(test_stream_ends_on_disconnect_elsewhere)
{
	char a[THTTP_SID_LEN + 1], b[THTTP_SID_LEN + 1];
	struct tsse *sa, *sb, *sb3;
	struct tcl *carol;

	tfix_start_instances(NINST);
	carol = tcl_user(T_INST[0].tcp_port, "carol");
	do_create(carol, "general");
	api_user(H(0), "alice", H(0), "/join general", a);
	api_user(H(1), "bob", H(2), "/join general", b);
	expect_next(carol, "[system] alice joined general");
	expect_next(carol, "[system] bob joined general");
	sa = sse_open_room(H(0), "alice on inst1", "general", a, NULL);
	sb = sse_open_room(H(0), "bob on inst1", "general", b, NULL);
	sb3 = sse_open_room(H(2), "bob on inst3", "general", b, NULL);
	api_disconnect(H(1), a);
	sse_expect_end(sa);
	tsse_free(sa);
	/* bob's streams are not alice's: they carry on. */
	tcl_send(carol, "still there, bob?");
	sse_expect_seq(sb, 1, NULL);
	sse_expect_seq(sb3, 1, NULL);
	expect_command(H(2), b, "/quit", true, "Goodbye");
	sse_expect_end(sb);
	sse_expect_end(sb3);
	tsse_free(sb);
	tsse_free(sb3);
	expect_gone_everywhere(a, "general");
	expect_gone_everywhere(b, "general");
	tcl_send(carol, "/list");
	expect_line(carol, "[system] Online users (1):");
	expect_next(carol, "[system]   carol (in general)");
}
END_TEST

/*
 * PostgreSQL restarted (pg.sh stop, a fast shutdown, then start) while a
 * session streams on instance 2: API requests get 503 while it is down,
 * the stream stays open, and afterwards the session works on every
 * instance, the stream gets new messages, and a disconnect through
 * instance 1 still ends it at once (every instance LISTENs on
 * session_end again).
 */
START_TEST(test_sessions_survive_database_restart)
{
	char a[THTTP_SID_LEN + 1];
	struct thttp_resp r;
	struct tsse *s;

	tfix_start_instances(NINST);
	api_user(H(0), "alice", H(0), "/create general", a);
	s = sse_open_room(H(1), "alice on inst2", "general", a, NULL);
	tfix_cluster_db(false);
	for (int i = 0; i < T_NINST; i++)
		thttp_wait_status(H(i), "/health", 503, &r, trun_ms(15000));
	expect_command_refused(H(2), a, "/help", 503);
	expect_say_refused(H(0), a, "general", "while down", 503);
	tfix_cluster_db(true);
	for (int i = 0; i < T_NINST; i++)
		thttp_wait_status(H(i), "/health", 200, &r, trun_ms(30000));
	for (int i = 0; i < T_NINST; i++)
		json_decref(api_command(H(i), a, "/help", true));
	ck_assert_int_eq(api_say(H(2), a, "general", "after the restart",
				 NULL), 1);
	sse_expect_seq(s, 1, NULL);
	api_disconnect(H(0), a);
	sse_expect_end(s);
	tsse_free(s);
	expect_gone_everywhere(a, "general");
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM messages "
				 "WHERE content = 'while down'", NULL), 0);
}
END_TEST

/*
 * /quit answers once its session is gone from the database, so that the
 * next request, on any instance, finds no session. Our row lock holds
 * the delete: meanwhile there is no answer.
 */
/*
 * A command still running when its session ends elsewhere is not reported
 * as a success: alice's /join on instance 1 waits for our lock on the
 * room's row while /api/disconnect on instance 2 ends her session; once
 * instance 1 heard of the end, the /join answers an error (it used to
 * answer {"success":true,"message":""}).
 */
START_TEST(test_command_racing_disconnect_is_an_error)
{
	char a[THTTP_SID_LEN + 1], *line;
	struct thttp_resp r;
	struct tcl *carol;
	int fd;

	tfix_start_instances(2);
	carol = tcl_user(T_INST[0].tcp_port, "carol");
	do_create(carol, "general");
	api_connect(H(0), "alice", a);
	tdb_hold(&T_DB,
		 "SELECT 1 FROM rooms WHERE name = 'general' FOR UPDATE");
	fd = thttp_start_command(H(0), a, "/join general");
	tdb_wait_server_blocked(&T_DB);
	api_disconnect(H(1), a);
	/* Only the session_ended event has nick= right before streams=. */
	line = tsrv_wait_log(&T_INST[0], " nick=alice streams=",
			     trun_ms(T_WAIT));
	ck_assert_msg(line, "instance 1 never heard that alice's session ended");
	free(line);
	tdb_release(&T_DB);
	thttp_finish(fd, &r);
	expect_error(&r, 404);
	ck_assert_msg(strstr(r.body, "session ended"), "%s", r.body);
}
END_TEST

START_TEST(test_quit_answers_after_the_session_is_gone)
{
	char a[THTTP_SID_LEN + 1];
	struct thttp_resp r;
	struct pollfd pfd;
	json_t *j;

	tfix_start_instances(2);
	api_connect(H(0), "alice", a);
	tdb_hold(&T_DB, "SELECT 1 FROM api_sessions FOR UPDATE");
	pfd.fd = thttp_start_command(H(0), a, "/quit");
	pfd.events = POLLIN;
	tdb_wait_server_blocked(&T_DB);
	ck_assert_msg(poll(&pfd, 1, 0) == 0,
		      "/quit answered while its session was still stored");
	tdb_release(&T_DB);
	thttp_finish(pfd.fd, &r);
	expect_status(&r, 200);
	j = resp_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "message")),
			 "Goodbye");
	json_decref(j);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM api_sessions",
				 NULL), 0);
	expect_command_refused(H(1), a, "/help", 404);
}
END_TEST

/*
 * Last-Event-ID on another instance: a stream on instance 1 reads 1..5
 * and is closed; 20 more are committed (through the API on instance 2 and
 * a TCP client on instance 3); the same session's stream on instance 2
 * with Last-Event-ID: 5 gets exactly 6..25 (beyond its ring: from the
 * database), in order, each once, then the live 26.
 */
START_TEST(test_resume_on_other_instance)
{
	char a[THTTP_SID_LEN + 1];
	struct tcl *bob;
	struct tsse *s;
	PGresult *res;

	tfix_start_instances(NINST);
	api_user(H(0), "alice", H(1), "/create general", a);
	bob = tcl_user(T_INST[2].tcp_port, "bob");
	do_join(bob, "general");
	s = sse_open_room(H(0), "first on inst1", "general", a, NULL);
	for (int i = 1; i <= 5; i++) {
		char text[32];

		snprintf(text, sizeof(text), "early %d", i);
		ck_assert_int_eq(api_say(H(2), a, "general", text, NULL), i);
	}
	sse_expect_range(s, 1, 5);
	tsse_free(s);
	for (int i = 1; i <= 10; i++) {
		char text[32];

		snprintf(text, sizeof(text), "missed %d", i);
		api_say(H(1), a, "general", text, NULL);
		tcl_send(bob, "bob missed %d", i);
	}
	/* bob's lines are committed once he has seen them all come back. */
	expect_line(bob, "[general] bob: bob missed 10");
	res = tchat_rows("general");
	ck_assert_int_eq(PQntuples(res), 25);
	s = sse_open_room(H(1), "resumed on inst2", "general", a, "5");
	expect_rows(s, res, 5, 25, "general");
	PQclear(res);
	ck_assert_int_eq(api_say(H(0), a, "general", "live", NULL), 26);
	sse_expect_seq(s, 26, NULL);
	tsse_free(s);
	/* And from the very start on instance 3. */
	s = sse_open_room(H(2), "resumed on inst3", "general", a, "0");
	sse_expect_range(s, 1, 26);
	tcl_send(bob, "live again");
	sse_expect_seq(s, 27, NULL);
}
END_TEST

/*
 * One API session is one user in presence, however many instances serve
 * it: /list on every instance shows it once (with its current room), the
 * online counts count it once, and its nickname is taken cluster-wide
 * until /api/disconnect frees it.
 */
START_TEST(test_presence_counts_session_once)
{
	const char *want[] = { "[system]   alice (in general)",
			       "[system]   bob (no room)",
			       "[system]   carol (no room)" };
	char a[THTTP_SID_LEN + 1];
	struct tcl *bob, *carol, *c[2];
	struct tsse *s[NINST];
	struct thttp_resp r;

	tfix_start_instances(NINST);
	api_user(H(0), "alice", H(1), "/create general", a);
	bob = tcl_user(T_INST[1].tcp_port, "bob");
	carol = tcl_user(T_INST[2].tcp_port, "carol");
	c[0] = bob;
	c[1] = carol;
	/* Streams on all three instances and requests through each. */
	for (int i = 0; i < NINST; i++) {
		char label[32];

		snprintf(label, sizeof(label), "alice on inst%d", i + 1);
		s[i] = sse_open_room(H(i), label, "general", a, NULL);
		json_decref(api_command(H(i), a, "/help", true));
	}
	for (int k = 0; k < 2; k++) {
		expect_list(c[k], want, 3);
	}
	expect_api_list(H(2), a, want, 3);
	expect_counts("general", 1, 1);
	do_join(bob, "general");
	sse_expect_system(s[0], "general", "bob joined general");
	expect_counts("general", 2, 2);
	expect_reply(bob, "/rooms", "[system] Rooms (1):");
	expect_next(bob, "[system]   general: 2 members, 2 online");
	/* The name is taken on every instance, whatever its case. */
	expect_reply(carol, "/nick alice",
		     "[system] error: nickname alice is taken");
	expect_reply(bob, "/nick ALICE",
		     "[system] error: nickname ALICE is taken");
	for (int i = 0; i < NINST; i++) {
		thttp_post_pack(H(i), "/api/connect", &r, "{ss}", "nickname",
				"Alice");
		expect_error(&r, 409);
	}
	/* Disconnected through instance 3: gone from presence, name free. */
	api_disconnect(H(2), a);
	for (int i = 0; i < NINST; i++) {
		sse_expect_end(s[i]);
		tsse_free(s[i]);
	}
	expect_counts("general", 2, 1);
	expect_reply(carol, "/nick alice", "[system] You are now alice");
	{
		const char *now[] = { "[system]   alice (no room)",
				      "[system]   bob (in general)" };

		expect_list(bob, now, 2);
	}
}
END_TEST

/*
 * Sessions without a request or a stream for longer than the timeout
 * (staged: last_active an hour back), made on instances 1 and 2, expire
 * and are then unknown on every instance. A session made on instance 3
 * whose only stream is on instance 2 is marked active by instance 2's
 * tick without making any request, and expires once that stream is
 * closed.
 */
START_TEST(test_idle_session_expires_everywhere)
{
	char k[THTTP_SID_LEN + 1], i1[THTTP_SID_LEN + 1],
		i2[THTTP_SID_LEN + 1];
	char *t;
	struct tcl *bob;
	struct tsse *s;
	int64_t deadline;

	tfix_start_instances(NINST);
	bob = tcl_user(T_INST[0].tcp_port, "bob");
	api_user(H(2), "keeper", H(2), "/create k", k);
	s = sse_open_room(H(1), "keeper on inst2", "k", k, NULL);
	/* keeper makes no request from here until "still alive". */
	t = tdb_scalar(&T_DB, "SELECT now()::text", NULL);
	api_connect(H(0), "idle", i1);
	api_connect(H(1), "idle2", i2);
	ck_assert(listed(bob, "idle (no room)"));
	ck_assert(listed(bob, "idle2 (no room)"));
	ck_assert(listed(bob, "keeper (in k)"));
	ck_assert_int_eq(tdb_stage_idle(&T_DB, i1), 1);
	ck_assert_int_eq(tdb_stage_idle(&T_DB, i2), 1);
	wait_unlisted(bob, "idle (no room)", trun_ms(10000));
	wait_unlisted(bob, "idle2 (no room)", trun_ms(10000));
	expect_gone_everywhere(i1, "k");
	expect_gone_everywhere(i2, "k");
	/* Instance 2's tick marks keeper active: nothing else could have
	 * (no state to wait on: polled, paced). */
	deadline = trun_now_ms() + trun_ms(10000);
	while (!tdb_int(&T_DB,
			"SELECT count(*) FROM api_sessions "
			"WHERE token_hash = sha256(decode($1, 'hex')) "
			"AND last_active > $2::timestamptz",
			k, t, NULL)) {
		ck_assert_msg(
			trun_now_ms() < deadline,
			"keeper, streaming on instance 2, not marked active since %s",
			t);
		trun_pace();
	}
	free(t);
	ck_assert_msg(listed(bob, "keeper (in k)"),
		      "keeper expired with an open stream on another instance");
	ck_assert_int_eq(api_say(H(0), k, "k", "still alive", NULL), 1);
	sse_expect_seq(s, 1, NULL);
	/* Without it, keeper goes too. A tick sent before instance 2 saw
	 * the close may mark it active once more: made idle again until it
	 * is gone. */
	tsse_free(s);
	wait_expired(bob, k, "keeper (in k)");
	expect_gone_everywhere(k, "k");
	/* Its nickname is free again. */
	expect_reply(bob, "/nick keeper", "[system] You are now keeper");
}
END_TEST

/*
 * A session made on instance 1 keeps working on instance 2 while
 * instance 1 is stopped, and on instance 1 again after it restarted.
 */
START_TEST(test_session_survives_instance_restart)
{
	char a[THTTP_SID_LEN + 1];
	struct tsse *s, *t;

	tfix_start_instances(2);
	api_user(H(0), "alice", H(0), "/create general", a);
	ck_assert_int_eq(api_say(H(0), a, "general", "before", NULL), 1);
	tsrv_stop(&T_INST[0]);
	expect_command(H(1), a, "/leave", true, "You left general");
	expect_command(H(1), a, "/join general", true,
		       "You joined general (1 recent message)");
	ck_assert_int_eq(api_say(H(1), a, "general", "during", NULL), 2);
	s = sse_open_room(H(1), "alice on inst2", "general", a, NULL);
	sse_expect_range(s, 1, 2);
	tsrv_start(&T_INST[0]);
	expect_command(H(0), a, "/list", true,
		       "Online users (1):\n  alice (in general)");
	ck_assert_int_eq(api_say(H(0), a, "general", "after", NULL), 3);
	sse_expect_seq(s, 3, NULL);
	t = sse_open_room(H(0), "alice on inst1", "general", a, "1");
	sse_expect_range(t, 2, 3);
	ck_assert_int_eq(api_say(H(1), a, "general", "live", NULL), 4);
	sse_expect_seq(t, 4, NULL);
	sse_expect_seq(s, 4, NULL);
	tsse_free(s);
	tsse_free(t);
	api_disconnect(H(0), a);
	expect_gone_everywhere(a, "general");
}
END_TEST

/*
 * The database holds a session id only as its SHA-256: api_sessions has
 * sha256(the id's 16 bytes), and the id itself is in no row of any table
 * (each row searched as text, where a bytea shows as hex), after the
 * session connected, joined, posted and streamed on two instances.
 */
START_TEST(test_session_id_stored_only_as_sha256)
{
	char sid[THTTP_SID_LEN + 1], hash[80];
	struct tsse *st;
	PGresult *tables;
	int found_hash = 0;

	tfix_start_instances(2);
	api_connect(H(0), "alice", sid);
	json_decref(api_command(H(1), sid, "/create general", true));
	ck_assert_int_eq(api_say(H(0), sid, "general", "hello", NULL), 1);
	st = sse_open_room(H(1), "stream", "general", sid, NULL);
	sse_expect_seq(st, 1, NULL);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM api_sessions",
				 NULL),
			 1);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM api_sessions "
				 "WHERE token_hash = sha256(decode($1, 'hex'))",
				 sid, NULL),
			 1);
	{
		char *h = tdb_scalar(&T_DB,
				     "SELECT encode(sha256(decode($1, 'hex')), 'hex')",
				     sid, NULL);

		snprintf(hash, sizeof(hash), "%s", h);
		free(h);
	}
	tables = tdb_query(&T_DB,
			   "SELECT format('%I.%I', table_schema, table_name) "
			   "FROM information_schema.tables "
			   "WHERE table_type = 'BASE TABLE' AND table_schema "
			   "NOT IN ('pg_catalog', 'information_schema')",
			   NULL);
	ck_assert_msg(PQntuples(tables) >= 5, "only %d tables",
		      PQntuples(tables));
	for (int i = 0; i < PQntuples(tables); i++) {
		const char *t = PQgetvalue(tables, i, 0);
		char sql[512];

		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM %s t "
			 "WHERE strpos(lower(t::text), lower($1)) > 0",
			 t);
		ck_assert_msg(tdb_int(&T_DB, sql, sid, NULL) == 0,
			      "table %s holds the session id %s in clear", t,
			      sid);
		/* The search does see bytea: the hash is found, once. */
		found_hash += (int)tdb_int(&T_DB, sql, hash, NULL);
	}
	ck_assert_int_eq(found_hash, 1);
	PQclear(tables);
}
END_TEST

/*
 * One room, three ways in: messages posted through the API on instance 3
 * and lines from a TCP member on instance 2 reach that TCP member as
 * "[room] nick: text" and a stream on instance 1 as message events, in the
 * table's order (room_id, seq, nickname, content), each once.
 */
START_TEST(test_room_traffic_across_instances)
{
	enum { N = 10 };
	char w[THTTP_SID_LEN + 1];
	struct tcl *bob;
	struct tsse *s;
	PGresult *res;

	tfix_start_instances(NINST);
	bob = tcl_user(T_INST[1].tcp_port, "bob");
	do_create(bob, "general");
	api_user(H(1), "web", H(2), "/join general", w);
	expect_next(bob, "[system] web joined general");
	s = sse_open_room(H(0), "web on inst1", "general", w, NULL);
	for (int i = 0; i < N; i++) {
		char text[32];

		snprintf(text, sizeof(text), "w%02d", i);
		api_say(H(2), w, "general", text, NULL);
		tcl_send(bob, "b%02d", i);
	}
	/* bob saw the table's order, and so did the stream. */
	res = expect_lines_are_rows(bob, "general", 2 * N);
	expect_rows(s, res, 0, 2 * N, "general");
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM messages "
				 "WHERE nickname = 'web'",
				 NULL),
			 N);
	PQclear(res);
	/* Nothing doubled: the next event is the next message. */
	tcl_send(bob, "last");
	sse_expect_seq(s, 2 * N + 1, NULL);
}
END_TEST

/* ---- nginx in front ---- */

/*
 * Through the round-robin proxy only: connect, create a room, open a
 * stream, post 30 messages (nginx's access log shows they went to all
 * three instances); the stream gets all of them once, in seq order, equal
 * to the table. Reconnected through the proxy with Last-Event-ID: 20 it
 * gets exactly 21..30, then the live 31.
 */
START_TEST(test_proxy_round_robin_stream_and_resume)
{
	enum { N = 30, RESUME = 20 };
	char a[THTTP_SID_LEN + 1];
	int per[NINST], streams[NINST];
	struct tsse *s;
	PGresult *res;

	tfix_start_instances(NINST);
	tproxy_start(&px, T_INST, T_NINST);
	api_connect(px.port, "alice", a);
	expect_command(px.port, a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	s = tsse_open_room(px.port, "alice via nginx", "general", a, NULL);
	proxy_expect_open(s);
	for (int i = 1; i <= N; i++) {
		char text[32];

		snprintf(text, sizeof(text), "through nginx %d", i);
		ck_assert_int_eq(api_say(px.port, a, "general", text, NULL), i);
	}
	tproxy_wait_access_log(&px, "POST /api/message", N, per, true);
	trun_note("POST /api/message per instance: inst1 %d, inst2 %d, inst3 %d",
		  per[0], per[1], per[2]);
	for (int i = 0; i < NINST; i++)
		ck_assert_msg(per[i] > 0,
			      "no /api/message reached inst%d (inst1 %d, inst2 %d, inst3 %d): not round robin?",
			      i + 1, per[0], per[1], per[2]);
	res = tchat_rows("general");
	ck_assert_int_eq(PQntuples(res), N);
	expect_rows(s, res, 0, N, "general");
	PQclear(res);
	tsse_free(s);
	/* The closed stream's request is logged now: it, too, was served
	 * by one of the instances. */
	tproxy_wait_access_log(&px, "GET /api/messages/general", 1, streams,
			       false);
	s = tsse_open_room(px.port, "alice via nginx, resumed", "general", a,
			   "20");
	proxy_expect_open(s);
	res = tchat_rows("general");
	expect_rows(s, res, RESUME, N, "general");
	PQclear(res);
	ck_assert_int_eq(api_say(px.port, a, "general", "live", NULL), N + 1);
	sse_expect_seq(s, N + 1, NULL);
	tsse_free(s);
	tproxy_wait_access_log(&px, "GET /api/messages/general", 2, streams,
			       false);
	trun_note("streams served by: inst1 %d, inst2 %d, inst3 %d",
		  streams[0], streams[1], streams[2]);
	/* The session id (a secret, in the stream's query) stays out of
	 * the log. */
	{
		char *log = trun_slurp(px.access, NULL);

		ck_assert(log);
		ck_assert_msg(!strstr(log, a),
			      "%s holds the session id %s", px.access, a);
		free(log);
	}
	api_disconnect(px.port, a);
}
END_TEST

/* curl's output for args against nginx's HTTPS port, checking the
 * server's certificate against the one run.sh made (no -k). The caller
 * frees it. */
static char *curl_tls(const char *args)
{
	char cmd[2048], *out = NULL;
	size_t len = 0;
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "curl -sS --max-time 20 --cacert '%s/tls/cert.pem' %s",
		 px.prefix, args);
	p = popen(cmd, "r");
	ck_assert_msg(p, "popen %s", cmd);
	for (;;) {
		char buf[4096];
		size_t n = fread(buf, 1, sizeof(buf), p);

		if (!n)
			break;
		out = realloc(out, len + n + 1);
		ck_assert(out);
		memcpy(out + len, buf, n);
		len += n;
	}
	rc = pclose(p);
	ck_assert_msg(rc == 0, "%s: exit status %d", cmd, rc);
	if (!out)
		out = calloc(1, 1);
	out[len] = '\0';
	return out;
}

/* POST path with body over HTTPS: the JSON answer (caller decrefs). */
static json_t *post_tls(const char *path, const char *body)
{
	char args[1024];
	json_t *j;
	char *out;

	snprintf(args, sizeof(args),
		 "-H 'Content-Type: application/json' -d '%s' "
		 "'https://127.0.0.1:%d%s'",
		 body, px.tls_port, path);
	out = curl_tls(args);
	j = json_loads(out, 0, NULL);
	ck_assert_msg(j, "%s: not JSON: %s", path, out);
	free(out);
	return j;
}

/*
 * TLS in front: nginx's HTTPS port (contrib's config, the certificate
 * run.sh makes) verified by curl against that certificate; a session
 * made, a room created, an event stream read with curl -N over TLS gets
 * a message posted over TLS, and ends when the session does.
 */
START_TEST(test_proxy_https)
{
	char args[1600], sid[THTTP_SID_LEN + 1], line[4096], body[256];
	bool opened = false, got = false;
	json_t *j;
	char *out;
	FILE *stream;

	tfix_start_instances(NINST);
	tproxy_start(&px, T_INST, T_NINST);
	snprintf(args, sizeof(args), "'https://127.0.0.1:%d/health'",
		 px.tls_port);
	out = curl_tls(args);
	ck_assert_msg(strstr(out, "\"status\":\"healthy\""), "%s", out);
	free(out);
	j = post_tls("/api/connect", "{\"nickname\":\"secure\"}");
	snprintf(sid, sizeof(sid), "%s",
		 json_string_value(json_object_get(j, "session_id")));
	json_decref(j);
	ck_assert_uint_eq(strlen(sid), THTTP_SID_LEN);
	snprintf(body, sizeof(body),
		 "{\"session_id\":\"%s\",\"command\":\"/create vault\"}", sid);
	j = post_tls("/api/command", body);
	ck_assert(json_is_true(json_object_get(j, "success")));
	json_decref(j);
	snprintf(args, sizeof(args),
		 "curl -sSN --max-time 30 --cacert '%s/tls/cert.pem' "
		 "'https://127.0.0.1:%d/api/messages/vault?session_id=%s'",
		 px.prefix, px.tls_port, sid);
	stream = popen(args, "r");
	ck_assert(stream);
	while (fgets(line, sizeof(line), stream)) {
		if (!opened && !strncmp(line, "retry:", 6)) {
			opened = true;
			snprintf(body, sizeof(body),
				 "{\"session_id\":\"%s\",\"room\":\"vault\","
				 "\"content\":\"over tls\"}", sid);
			j = post_tls("/api/message", body);
			ck_assert_int_eq(json_integer_value(
						 json_object_get(j, "seq")), 1);
			json_decref(j);
		} else if (opened && !strncmp(line, "data:", 5) &&
			   strstr(line, "\"content\":\"over tls\"")) {
			got = true;
			snprintf(body, sizeof(body),
				 "{\"session_id\":\"%s\"}", sid);
			json_decref(post_tls("/api/disconnect", body));
		}
	}
	ck_assert_msg(pclose(stream) != -1, "pclose");
	ck_assert_msg(opened, "the stream never opened over TLS");
	ck_assert_msg(got, "the message never came over TLS");
}
END_TEST

/*
 * A browser's flow through the proxy: the page itself, then two people
 * connect, one creates a room and the other joins it, each with a stream,
 * and both see each other's messages and the join, whichever instance
 * served each request; /api/rooms through the proxy counts both; when bob
 * leaves (disconnect) his stream ends and alice's carries on.
 */
START_TEST(test_proxy_browser_flow)
{
	char a[THTTP_SID_LEN + 1], b[THTTP_SID_LEN + 1], v[128];
	struct tsse *sa, *sb;
	struct thttp_resp r;
	struct tsse_msg m;
	int members, online, per[NINST];

	tfix_start_instances(NINST);
	tproxy_start(&px, T_INST, T_NINST);
	thttp_get(px.port, "/", &r);
	expect_status(&r, 200);
	ck_assert_msg(thttp_header(&r, "Content-Type", v, sizeof(v)) &&
			      !strncmp(v, "text/html", 9),
		      "GET / through nginx: %s", r.head);
	api_connect(px.port, "alice", a);
	json_decref(api_command(px.port, a, "/create lobby", true));
	sa = tsse_open_room(px.port, "alice's page", "lobby", a, NULL);
	proxy_expect_open(sa);
	ck_assert_int_eq(api_say(px.port, a, "lobby", "anyone here?", NULL), 1);
	sse_expect_seq(sa, 1, &m);
	ck_assert_str_eq(m.content, "anyone here?");
	api_connect(px.port, "bob", b);
	expect_command(px.port, b, "/join lobby", true,
		       "You joined lobby (1 recent message)");
	sse_expect_system(sa, "lobby", "bob joined lobby");
	sb = tsse_open_room(px.port, "bob's page", "lobby", b, NULL);
	proxy_expect_open(sb);
	sse_expect_seq(sb, 1, &m);
	ck_assert_str_eq(m.user, "alice");
	ck_assert_int_eq(api_say(px.port, b, "lobby", "hi alice", NULL), 2);
	sse_expect_seq(sa, 2, &m);
	ck_assert_str_eq(m.user, "bob");
	ck_assert_str_eq(m.content, "hi alice");
	sse_expect_seq(sb, 2, NULL);
	ck_assert_int_eq(api_say(px.port, a, "lobby", "hi bob", NULL), 3);
	sse_expect_seq(sb, 3, &m);
	ck_assert_str_eq(m.user, "alice");
	ck_assert_str_eq(m.content, "hi bob");
	sse_expect_seq(sa, 3, NULL);
	room_counts(px.port, "lobby", &members, &online);
	ck_assert_msg(members == 2 && online == 2,
		      "/api/rooms through nginx: lobby %d members, %d online",
		      members, online);
	{
		const char *want[] = { "[system]   alice (in lobby)",
				       "[system]   bob (in lobby)" };

		expect_api_list(px.port, b, want, 2);
	}
	/* bob closes his page: his stream ends, alice's carries on. */
	api_disconnect(px.port, b);
	sse_expect_end(sb);
	tsse_free(sb);
	ck_assert_int_eq(api_say(px.port, a, "lobby", "bye bob", NULL), 4);
	sse_expect_seq(sa, 4, NULL);
	tsse_free(sa);
	/* The API requests went to every instance. */
	tproxy_wait_access_log(&px, "POST /api/", 10, per, true);
	trun_note("POST /api/* per instance: inst1 %d, inst2 %d, inst3 %d",
		  per[0], per[1], per[2]);
	for (int i = 0; i < NINST; i++)
		ck_assert_msg(per[i] > 0, "no API request reached inst%d",
			      i + 1);
	api_disconnect(px.port, a);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_session_works_on_every_instance, TIMEOUT, NULL),
		TFIX_CASE(test_session_state_seen_by_every_instance, TIMEOUT,
			  NULL),
		TFIX_CASE(test_stream_ends_on_leave_elsewhere, TIMEOUT, NULL),
		TFIX_CASE(test_stream_ends_when_membership_ends_unnotified,
			  TIMEOUT, up_idle),
		TFIX_CASE(test_stream_ends_on_disconnect_elsewhere, TIMEOUT,
			  NULL),
		TFIX_CASE(test_resume_on_other_instance, TIMEOUT, NULL),
		TFIX_CASE(test_command_racing_disconnect_is_an_error, TIMEOUT,
			  NULL),
		TFIX_CASE(test_quit_answers_after_the_session_is_gone, TIMEOUT,
			  NULL),
		TFIX_CASE(test_presence_counts_session_once, TIMEOUT, NULL),
		TFIX_CASE(test_idle_session_expires_everywhere, 90,
			  tfix_setup_staged_idle),
		TFIX_CASE(test_session_survives_instance_restart, TIMEOUT,
			  NULL),
		TFIX_CASE(test_sessions_survive_database_restart, 120, NULL),
		TFIX_CASE(test_room_traffic_across_instances, TIMEOUT, NULL),
		TFIX_CASE(test_session_id_stored_only_as_sha256, TIMEOUT, NULL),
		TFIX_CASE(test_proxy_round_robin_stream_and_resume, 90, NULL),
		TFIX_CASE(test_proxy_browser_flow, 90, tfix_setup_static),
		TFIX_CASE(test_proxy_https, 90, NULL),
	};

	return tfix_main("sessions", cases, TMAIN_N(cases), down);
}
