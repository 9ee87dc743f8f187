/*
 * The HTTP JSON API endpoint by endpoint (/api/connect, /api/command,
 * /api/message, /api/rooms, /api/disconnect), static files and path
 * traversal, and a corpus of malformed requests the server must survive.
 * TCP clients (tcl) show what HTTP sessions look like to everyone else;
 * the messages table is the reference for what was committed.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../helpers/tchat.h"
#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"

#define PORT tfix_tcp_port()
#define HPORT tfix_http_port()
#define TIMEOUT 30 /* seconds per test */

#define NO_SID "0123456789abcdef0123456789abcdef" /* never handed out */
#define BODY_MAX 16384				  /* contract: 413 above */

/* POST path with body (len bytes) and Content-Type ctype (NULL: none). */
static void post_raw(const char *path, const char *ctype, const void *body,
		     size_t len, struct thttp_resp *r)
{
	struct thttp_req q = {
		.method = "POST",
		.path = path,
		.content_type = ctype,
		.body = body,
		.body_len = len,
	};

	thttp_request(HPORT, &q, r);
}

/* Splits a copy of msg at "\n"; returns the number of lines. */
static int split_lines(const char *msg, char **out, int max)
{
	char *copy = strdup(msg), *save = NULL;
	int n = 0;

	ck_assert(copy);
	for (char *l = strtok_r(copy, "\n", &save); l && n < max;
	     l = strtok_r(NULL, "\n", &save)) {
		out[n] = strdup(l);
		ck_assert(out[n]);
		n++;
	}
	free(copy);
	return n;
}

static void free_lines(char **l, int n)
{
	for (int i = 0; i < n; i++)
		free(l[i]);
}

/* Each GET of paths[0..n-1] is refused with status st and an error body. */
static void expect_gets_refused(const char *const *paths, size_t n, int st)
{
	struct thttp_resp r;

	for (size_t i = 0; i < n; i++) {
		thttp_get(HPORT, paths[i], &r);
		ck_assert_msg(r.status == st, "GET %s: status %d: %s", paths[i],
			      r.status, r.body);
		expect_error(&r, st);
	}
}

/* Each of bodies[0..n-1] POSTed to path as JSON is refused with status st
 * and an error body. */
static void expect_posts_refused(const char *path, const char *const *bodies,
				 size_t n, int st)
{
	struct thttp_resp r;

	for (size_t i = 0; i < n; i++) {
		thttp_post(HPORT, path, bodies[i], &r);
		ck_assert_msg(r.status == st,
			      "POST %s body \"%s\": status %d: %s", path,
			      bodies[i], r.status, r.body);
		expect_error(&r, st);
	}
}

/* The "message" of a successful command (malloc'd). */
static char *command_text(const char *sid, const char *cmd)
{
	json_t *j = api_command(HPORT, sid, cmd, true);
	char *m = strdup(json_string_value(json_object_get(j, "message")));

	ck_assert(m);
	json_decref(j);
	return m;
}

/* ---- /api/connect ---- */

START_TEST(test_connect_returns_session)
{
	char sid[THTTP_SID_LEN + 1], sid2[THTTP_SID_LEN + 1];
	struct tcl *carol = tcl_user(PORT, "carol");
	long long uid, uid2;
	const char *const want[] = { "[system]   alice (no room)",
				     "[system]   bob (no room)",
				     "[system]   carol (no room)" };

	uid = api_connect(HPORT, "alice", sid);
	uid2 = api_connect(HPORT, "bob", sid2);
	ck_assert_msg(strcmp(sid, sid2), "two sessions got the id %s", sid);
	ck_assert_msg(uid != uid2, "alice and bob got user_id %lld", uid);
	/* user_id is the users row of that nickname. */
	ck_assert_int_eq(
		tdb_int(&T_DB, "SELECT id FROM users WHERE nickname = 'alice'",
			NULL),
		uid);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT id FROM users WHERE nickname = 'bob'",
				 NULL),
			 uid2);
	/* Online like TCP users. */
	expect_list(carol, want, 3);
}
END_TEST

START_TEST(test_connect_invalid_nickname_400)
{
	static const char *const bad[] = {
		"bad!name",	"",
		"a b",		"a.b",
		"h\xc3\xa9llo", "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" /* 33 */,
	};
	char sid[THTTP_SID_LEN + 1];
	struct thttp_resp r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		thttp_post_pack(HPORT, "/api/connect", &r, "{ss}", "nickname",
				bad[i]);
		ck_assert_msg(r.status == 400, "nickname \"%s\": status %d: %s",
			      bad[i], r.status, r.body);
		expect_error(&r, 400);
	}
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM users", NULL), 0);
	/* The edges of the valid set. */
	api_connect(HPORT, "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", sid);
	api_connect(HPORT, "A-b_9", sid);
}
END_TEST

START_TEST(test_connect_taken_by_tcp_user_409)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	char sid[THTTP_SID_LEN + 1];
	struct thttp_resp r;

	thttp_post(HPORT, "/api/connect", "{\"nickname\":\"alice\"}", &r);
	expect_error(&r, 409);
	thttp_post(HPORT, "/api/connect", "{\"nickname\":\"ALICE\"}", &r);
	expect_error(&r, 409);
	thttp_post(HPORT, "/api/connect", "{\"nickname\":\"aLiCe\"}", &r);
	expect_error(&r, 409);
	/* No session was made: still two users online. */
	ck_assert_int_eq(do_list(alice), 2);
	/* The name is free once alice is gone. */
	do_quit(alice);
	tcl_free(alice);
	wait_online(bob, 1);
	api_connect(HPORT, "alice", sid);
}
END_TEST

START_TEST(test_connect_taken_by_http_session_409)
{
	char sid[THTTP_SID_LEN + 1];
	struct thttp_resp r;
	struct tcl *t;

	api_connect(HPORT, "alice", sid);
	thttp_post(HPORT, "/api/connect", "{\"nickname\":\"alice\"}", &r);
	expect_error(&r, 409);
	thttp_post(HPORT, "/api/connect", "{\"nickname\":\"Alice\"}", &r);
	expect_error(&r, 409);
	/* The line protocol sees the HTTP session's name as taken too. */
	t = tcl_guest(PORT, "t");
	expect_reply(t, "/nick ALICE",
		     "[system] error: nickname ALICE is taken");
}
END_TEST

START_TEST(test_connect_malformed_json_400)
{
	static const char *const bad[] = {
		"{",
		"{\"nickname\":}",
		"{\"nickname\":\"alice\"",
		"nickname=alice",
		"{\"nickname\":\"alice\"} trailing",
		"{'nickname':'alice'}",
		"\"alice\"",
		"[\"alice\"]",
		"null",
		"",
	};

	expect_posts_refused("/api/connect", bad, TMAIN_N(bad), 400);
}
END_TEST

START_TEST(test_connect_missing_or_wrong_field_400)
{
	static const char *const bad[] = {
		"{}",
		"{\"nick\":\"alice\"}",
		"{\"nickname\":5}",
		"{\"nickname\":null}",
		"{\"nickname\":true}",
		"{\"nickname\":[\"alice\"]}",
		"{\"nickname\":{\"n\":\"alice\"}}",
	};

	expect_posts_refused("/api/connect", bad, TMAIN_N(bad), 400);
}
END_TEST

START_TEST(test_wrong_method_405)
{
	static const char *const get[] = { "/api/connect", "/api/command",
					   "/api/message", "/api/disconnect" };
	static const char *const post[] = { "{}" };

	expect_gets_refused(get, TMAIN_N(get), 405);
	/* And the other way round. */
	expect_posts_refused("/api/rooms", post, 1, 405);
}
END_TEST

START_TEST(test_connect_wrong_content_type_415)
{
	static const char body[] = "{\"nickname\":\"alice\"}";
	static const char *const types[] = {
		"text/plain",
		"application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x",
		"application/jsonx",
		NULL,
	};
	char sid[THTTP_SID_LEN + 1];
	struct thttp_resp r;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		post_raw("/api/connect", types[i], body, sizeof(body) - 1, &r);
		ck_assert_msg(r.status == 415, "Content-Type %s: status %d: %s",
			      types[i] ? types[i] : "(none)", r.status, r.body);
		expect_error(&r, 415);
	}
	/* A charset parameter is still JSON (our reading of the contract). */
	post_raw("/api/connect", "application/json; charset=utf-8", body,
		 sizeof(body) - 1, &r);
	expect_status(&r, 200);
	api_connect(HPORT, "bob", sid);
}
END_TEST

/* {"nickname":"<nick>"} padded with blanks to exactly len bytes. */
static char *padded_connect(const char *nick, size_t len)
{
	char head[128];
	int n = snprintf(head, sizeof(head), "{\"nickname\":\"%s\"", nick);
	char *b = malloc(len + 1);

	ck_assert(b && (size_t)n + 1 < len);
	memcpy(b, head, (size_t)n);
	memset(b + n, ' ', len - (size_t)n - 1);
	b[len - 1] = '}';
	b[len] = '\0';
	return b;
}

START_TEST(test_connect_body_over_16k_413)
{
	char *at = padded_connect("edge", BODY_MAX);
	char *over = padded_connect("over", BODY_MAX + 1);
	char *huge = padded_connect("huge", 1024 * 1024 - 1024);
	struct thttp_resp r;

	post_raw("/api/connect", "application/json", over, BODY_MAX + 1, &r);
	expect_error(&r, 413);
	post_raw("/api/connect", "application/json", huge, strlen(huge), &r);
	expect_error(&r, 413);
	/* Exactly at the limit is fine. */
	post_raw("/api/connect", "application/json", at, BODY_MAX, &r);
	expect_status(&r, 200);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM users "
				 "WHERE nickname IN ('over', 'huge')",
				 NULL),
			 0);
	free(at);
	free(over);
	free(huge);
}
END_TEST

START_TEST(test_connect_restores_memberships)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	char sid[THTTP_SID_LEN + 1];
	long long seq;

	do_create(alice, "general");
	do_create(alice, "random");
	do_join_seen(bob, "general", alice);
	do_quit(alice);
	tcl_free(alice);
	wait_online(bob, 1);

	api_connect(HPORT, "alice", sid);
	/* A member again without /join: her message reaches bob. */
	seq = api_say(HPORT, sid, "general", "back over http", NULL);
	ck_assert_int_eq(seq, 1);
	expect_next(bob, "[general] alice: back over http");
	ck_assert_int_eq(api_say(HPORT, sid, "random", "me too", NULL), 1);
}
END_TEST

/* ---- /api/command ---- */

START_TEST(test_command_help_lists_commands)
{
	struct tcl *t = tcl_guest(PORT, "t");
	char sid[THTTP_SID_LEN + 1], *msg, *lines[32];
	int n;

	api_connect(HPORT, "alice", sid);
	msg = command_text(sid, "/help");
	n = split_lines(msg, lines, 32);
	ck_assert_msg(n == 9, "/help: expected 9 lines, got %d:\n%s", n, msg);
	ck_assert_str_eq(lines[0], "Commands:");
	ck_assert_str_eq(lines[1],
			 "/create <room> - create a room and join it");
	/* Line for line what TCP prints, without "[system] ". */
	tcl_send(t, "/help");
	for (int i = 0; i < 9; i++) {
		char want[512];

		snprintf(want, sizeof(want), "[system] %s", lines[i]);
		expect_next(t, want);
	}
	free_lines(lines, n);
	free(msg);
}
END_TEST

START_TEST(test_command_join_unknown_room)
{
	char sid[THTTP_SID_LEN + 1];

	api_connect(HPORT, "alice", sid);
	expect_command(HPORT, sid, "/join x", false, "no such room: x");
	expect_command(HPORT, sid, "/join", false, "usage: /join <room>");
	expect_command(HPORT, sid, "/foo", false,
		       "unknown command /foo (try /help)");
}
END_TEST

START_TEST(test_command_create_join_leave)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1], d[THTTP_SID_LEN + 1];

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	expect_command(HPORT, a, "/create general", false,
		       "room general already exists");
	expect_command(
		HPORT, a, "/create Bad!", false,
		"invalid room name (1-50 lowercase letters, digits, _ or -)");
	do_join(bob, "general");
	expect_reply(bob, "one", "[general] bob: one");
	expect_reply(bob, "two", "[general] bob: two");

	/* Over HTTP /join answers one line: the history comes over SSE. */
	api_connect(HPORT, "dave", d);
	expect_command(HPORT, d, "/join general", true,
		       "You joined general (2 recent messages)");
	expect_next(bob, "[system] dave joined general");
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT count(*) FROM room_members m "
			"JOIN users u ON u.id = m.user_id "
			"JOIN rooms r ON r.id = m.room_id "
			"WHERE u.nickname = 'dave' AND r.name = 'general'",
			NULL),
		1);
	expect_command(HPORT, d, "/leave", true, "You left general");
	expect_next(bob, "[system] dave left general");
	expect_command(HPORT, d, "/leave", false, "you are not in a room");
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM room_members m "
				 "JOIN users u ON u.id = m.user_id "
				 "WHERE u.nickname = 'dave'",
				 NULL),
			 0);
}
END_TEST

START_TEST(test_command_nick)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/nick bob", false, "nickname bob is taken");
	expect_command(HPORT, a, "/nick BOB", false, "nickname BOB is taken");
	expect_command(HPORT, a, "/nick bad!name", false,
		       "invalid nickname (1-32 letters, digits, _ or -)");
	expect_command(HPORT, a, "/nick alice2", true, "You are now alice2");
	ck_assert_msg(listed(bob, "alice2 (no room)"),
		      "TCP /list does not show alice2");
	ck_assert_msg(!listed(bob, "alice (no room)"),
		      "TCP /list still shows alice");
}
END_TEST

START_TEST(test_command_list_shows_http_user)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	const char *const want[] = { "[system]   alice (in general)",
				     "[system]   bob (no room)" };
	char a[THTTP_SID_LEN + 1], *msg, *lines[8];
	int n;

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	expect_list(bob, want, 2);

	msg = command_text(a, "/list");
	n = split_lines(msg, lines, 8);
	ck_assert_msg(n == 3, "/list: %s", msg);
	ck_assert_str_eq(lines[0], "Online users (2):");
	ck_assert_msg((!strcmp(lines[1], "  alice (in general)") &&
		       !strcmp(lines[2], "  bob (no room)")) ||
			      (!strcmp(lines[2], "  alice (in general)") &&
			       !strcmp(lines[1], "  bob (no room)")),
		      "/list over HTTP: \"%s\"", msg);
	free_lines(lines, n);
	free(msg);
}
END_TEST

/*
 * bob makes beta and carol joins it; alice (session a) makes alpha and
 * joins beta; carol quits. Then alpha has 1 member, online, and beta 3
 * members, 2 online.
 */
static void alpha_and_beta(const char *a, struct tcl *bob, struct tcl *carol)
{
	do_create(bob, "beta");
	do_join_seen(carol, "beta", bob);
	expect_command(
		HPORT, a, "/create alpha", true,
		"Created room alpha\nYou joined alpha (0 recent messages)");
	expect_command(HPORT, a, "/join beta", true,
		       "You joined beta (0 recent messages)");
	expect_next(bob, "[system] alice joined beta");
	tcl_send(carol, "/quit");
	expect_line(carol, "[system] Goodbye");
	expect_eof(carol);
	wait_online(bob, 2);
}

START_TEST(test_command_rooms)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *carol = tcl_user(PORT, "carol");
	char a[THTTP_SID_LEN + 1], *msg, *lines[8];
	int n;

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/rooms", true,
		       "No rooms yet. Create one with /create <room>");
	alpha_and_beta(a, bob, carol);
	msg = command_text(a, "/rooms");
	n = split_lines(msg, lines, 8);
	ck_assert_msg(n == 3, "/rooms: %s", msg);
	ck_assert_str_eq(lines[0], "Rooms (2):");
	/* Sorted by name, as TCP /rooms. */
	ck_assert_str_eq(lines[1], "  alpha: 1 member, 1 online");
	ck_assert_str_eq(lines[2], "  beta: 3 members, 2 online");
	free_lines(lines, n);
	free(msg);
}
END_TEST

START_TEST(test_command_quit_ends_session)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];

	api_connect(HPORT, "alice", a);
	ck_assert(listed(bob, "alice (no room)"));
	expect_command(HPORT, a, "/quit", true, "Goodbye");
	expect_command_refused(HPORT, a, "/help", 404);
	expect_disconnect_refused(HPORT, a, 404);
	/* Offline for everyone else, and the name is free again. */
	expect_reply(bob, "/list", "[system] Online users (1):");
	expect_next(bob, "[system]   bob (no room)");
	api_connect(HPORT, "alice", a);
}
END_TEST

START_TEST(test_command_unknown_session_404)
{
	char a[THTTP_SID_LEN + 1];

	api_connect(HPORT, "alice", a);
	expect_command_refused(HPORT, NO_SID, "/help", 404);
	expect_command_refused(HPORT, "nope", "/help", 404);
	/* Well-formed but its first 64 bits (this instance's map key) are
	 * 0; upper-case digits. */
	expect_command_refused(HPORT, "00000000000000000000000000000000",
			       "/help", 404);
	expect_command_refused(HPORT, "0123456789ABCDEF0123456789ABCDEF",
			       "/help", 404);
	/* A session id differing in the last digit is another session. */
	a[THTTP_SID_LEN - 1] = a[THTTP_SID_LEN - 1] == '0' ? '1' : '0';
	expect_command_refused(HPORT, a, "/help", 404);
}
END_TEST

/* A request marks its session active, but writes that down at most once
 * a second: a request within a second of the last write only reads. Both
 * cases are staged by setting last_active, so no timing is involved. */
START_TEST(test_session_activity_written_at_most_once_a_second)
{
	char a[THTTP_SID_LEN + 1];
	const char *age = "SELECT extract(epoch FROM now() - last_active) * 1000 "
			  "FROM api_sessions";

	api_connect(HPORT, "alice", a);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM api_sessions",
				 NULL), 1);
	/* Written 0.1 s ago: the request leaves it alone. */
	PQclear(tdb_query(&T_DB, "UPDATE api_sessions SET last_active = "
			  "now() - interval '100 ms'", NULL));
	json_decref(api_command(HPORT, a, "/help", true));
	ck_assert_int_ge(tdb_int(&T_DB, age, NULL), 100);
	/* Written 5 s ago (the timeout is 60 s): the request writes it. */
	PQclear(tdb_query(&T_DB, "UPDATE api_sessions SET last_active = "
			  "now() - interval '5 s'", NULL));
	json_decref(api_command(HPORT, a, "/help", true));
	ck_assert_int_lt(tdb_int(&T_DB, age, NULL), 5000);
	/* Written 61 s ago: expired, whatever the reaper has done yet. */
	PQclear(tdb_query(&T_DB, "UPDATE api_sessions SET last_active = "
			  "now() - interval '61 s'", NULL));
	expect_command_refused(HPORT, a, "/help", 404);
}
END_TEST

START_TEST(test_command_bad_requests_400)
{
	char a[THTTP_SID_LEN + 1];
	struct thttp_resp r;

	api_connect(HPORT, "alice", a);
	expect_command_refused(HPORT, a, "hello everyone", 400);
	thttp_post_pack(HPORT, "/api/command", &r, "{ss}", "session_id", a);
	expect_error(&r, 400);
	thttp_post_pack(HPORT, "/api/command", &r, "{sssi}", "session_id", a,
			"command", 5);
	expect_error(&r, 400);
	thttp_post_pack(HPORT, "/api/command", &r, "{ss}", "command", "/help");
	expect_error(&r, 400);
	thttp_post(HPORT, "/api/command", "{\"session_id\":", &r);
	expect_error(&r, 400);
	/* The session is unharmed. */
	expect_command(HPORT, a, "/rooms", true,
		       "No rooms yet. Create one with /create <room>");
}
END_TEST

START_TEST(test_command_busy_session_409)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];
	struct thttp_resp r;
	json_t *j;
	int fd, fd2;

	do_create(bob, "general");
	api_connect(HPORT, "alice", a);
	/* Our lock holds alice's /join in the database (its session lookup
	 * first: it reads her memberships), and the /help behind it. */
	tdb_hold(&T_DB, "LOCK TABLE room_members IN ACCESS EXCLUSIVE MODE");
	fd = thttp_start_command(HPORT, a, "/join general");
	tdb_wait_server_blocked(&T_DB);
	fd2 = thttp_start_command(HPORT, a, "/help");
	tdb_release(&T_DB);
	/* /help finds /join running: refused. */
	thttp_finish(fd2, &r);
	expect_error(&r, 409);
	/* The first command completes as usual, and the session goes on. */
	thttp_finish(fd, &r);
	expect_status(&r, 200);
	j = resp_json(&r);
	ck_assert_msg(json_is_true(json_object_get(j, "success")) &&
			      thttp_json_has(
				      r.body, "message",
				      "You joined general (0 recent messages)"),
		      "/join after the lock: %s", r.body);
	json_decref(j);
	expect_next(bob, "[system] alice joined general");
	expect_command(HPORT, a, "/leave", true, "You left general");
}
END_TEST

START_TEST(test_database_unavailable_503)
{
	char a[THTTP_SID_LEN + 1];
	struct thttp_resp r;
	int64_t deadline;

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT 1", NULL), 1);
	tdb_allow_connections(&T_DB, false);
	ck_assert_int_eq(tdb_kill_server_conns(&T_DB, "babydiscord%"), 2);
	/* Until the server notices, a message may die in flight: poll. */
	deadline = trun_now_ms() + trun_ms(30000);
	for (;;) {
		thttp_post_pack(HPORT, "/api/message", &r, "{ssssss}",
				"session_id", a, "room", "general", "content",
				"into the void");
		if (r.status == 503)
			break;
		ck_assert_msg(
			r.status != 200,
			"a message was accepted with the database away: %s",
			r.body);
		ck_assert_msg(trun_now_ms() < deadline,
			      "/api/message never answered 503; last %d %s",
			      r.status, r.body);
		trun_pace();
	}
	expect_error(&r, 503);
	thttp_post_pack(HPORT, "/api/connect", &r, "{ss}", "nickname", "bob");
	expect_error(&r, 503);
	tdb_allow_connections(&T_DB, true);
	thttp_wait_status(HPORT, "/health", 200, &r, trun_ms(30000));
	/* The session survived; messages flow again. */
	deadline = trun_now_ms() + trun_ms(30000);
	for (;;) {
		thttp_post_pack(HPORT, "/api/message", &r, "{ssssss}",
				"session_id", a, "room", "general", "content",
				"back");
		if (r.status == 200 || trun_now_ms() > deadline)
			break;
		trun_pace();
	}
	expect_status(&r, 200);
	expect_stored(1);
}
END_TEST

/* ---- /api/message ---- */

START_TEST(test_message_committed)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];
	long long id, seq, id2, seq2;
	PGresult *res;

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	do_join(bob, "general");
	seq = api_say(HPORT, a, "general", "hello \xc3\xa9", &id);
	expect_next(bob, "[general] alice: hello \xc3\xa9");
	expect_reply(bob, "hi", "[general] bob: hi");
	seq2 = api_say(HPORT, a, "general", "again", &id2);
	expect_next(bob, "[general] alice: again");
	ck_assert_int_eq(seq, 1);
	ck_assert_int_eq(seq2, 3);
	ck_assert_msg(id2 > id, "message_id %lld after %lld", id2, id);

	res = tchat_rows("general");
	ck_assert_int_eq(PQntuples(res), 3);
	ck_assert_int_eq(atoll(PQgetvalue(res, 0, TCHAT_ID)), id);
	ck_assert_int_eq(atoll(PQgetvalue(res, 0, TCHAT_SEQ)), seq);
	ck_assert_str_eq(PQgetvalue(res, 0, TCHAT_NICK), "alice");
	ck_assert_str_eq(PQgetvalue(res, 0, TCHAT_CONTENT), "hello \xc3\xa9");
	ck_assert_int_eq(atoll(PQgetvalue(res, 2, TCHAT_ID)), id2);
	ck_assert_int_eq(atoll(PQgetvalue(res, 2, TCHAT_SEQ)), seq2);
	ck_assert_str_eq(PQgetvalue(res, 2, TCHAT_CONTENT), "again");
	PQclear(res);
}
END_TEST

/*
 * A session's memberships travel with a request only when their version
 * changed (migration 013): memberships added and removed behind the
 * server's back (no notification) are still seen by the next request,
 * and a session in 2,000 rooms keeps working.
 */
START_TEST(test_memberships_changed_in_database_seen_next_request)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];
	long long uid;

	do_create(bob, "general");
	uid = api_connect(HPORT, "alice", a);
	json_decref(api_command(HPORT, a, "/help", true));
	PQclear(tdb_query(&T_DB,
			  "INSERT INTO rooms (name) SELECT 'bulk-' || g "
			  "FROM generate_series(1, 2000) g",
			  NULL));
	{
		char u[24];

		snprintf(u, sizeof(u), "%lld", uid);
		PQclear(tdb_query(&T_DB,
				  "INSERT INTO room_members (room_id, user_id) "
				  "SELECT id, $1 FROM rooms",
				  u, NULL));
		api_say(HPORT, a, "general", "added behind its back", NULL);
		api_say(HPORT, a, "bulk-1999", "in a bulk room", NULL);
		PQclear(tdb_query(&T_DB,
				  "DELETE FROM room_members WHERE user_id = $1 "
				  "AND room_id = (SELECT id FROM rooms WHERE "
				  "name = 'general')",
				  u, NULL));
	}
	expect_say_refused(HPORT, a, "general", "removed", 403);
	for (int i = 0; i < 20; i++)
		api_say(HPORT, a, "bulk-7", "unchanged", NULL);
	expect_stored(22);
}
END_TEST

START_TEST(test_message_not_member_403)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];

	do_create(bob, "general");
	api_connect(HPORT, "alice", a);
	expect_say_refused(HPORT, a, "general", "let me in", 403);
	/* Joined, it works; after /leave it is refused again. */
	expect_command(HPORT, a, "/join general", true,
		       "You joined general (0 recent messages)");
	expect_next(bob, "[system] alice joined general");
	api_say(HPORT, a, "general", "in", NULL);
	expect_next(bob, "[general] alice: in");
	expect_command(HPORT, a, "/leave", true, "You left general");
	expect_next(bob, "[system] alice left general");
	expect_say_refused(HPORT, a, "general", "out", 403);
	expect_stored(1);
	/* The next thing bob sees is his own line: nothing leaked. */
	expect_reply(bob, "check", "[general] bob: check");
}
END_TEST

START_TEST(test_message_unknown_room_404)
{
	char a[THTTP_SID_LEN + 1];
	struct thttp_resp r;

	api_connect(HPORT, "alice", a);
	thttp_post_pack(HPORT, "/api/message", &r, "{ssssss}", "session_id", a,
			"room", "nowhere", "content", "hello?");
	/* The README: 404 for a room that does not exist (403 is for one
	 * the session is not a member of). Never a commit. */
	expect_error(&r, 404);
	ck_assert_str_eq(r.body, "{\"error\":\"no such room\"}");
	expect_stored(0);
}
END_TEST

START_TEST(test_message_unknown_session_404)
{
	struct tcl *bob = tcl_user(PORT, "bob");

	do_create(bob, "general");
	expect_say_refused(HPORT, NO_SID, "general", "ghost", 404);
	expect_stored(0);
}
END_TEST

/* POSTs a raw JSON body to /api/message. */
static void post_message_json(const char *json, struct thttp_resp *r)
{
	thttp_post(HPORT, "/api/message", json, r);
}

START_TEST(test_message_too_long_400)
{
	char a[THTTP_SID_LEN + 1];
	char *c2000 = trun_repeat("x", 2000), *c2001 = trun_repeat("x", 2001);
	char *e1001 = trun_repeat("\xc3\xa9", 1001); /* 2002 bytes */
	PGresult *res;

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	expect_say_refused(HPORT, a, "general", c2001, 400);
	expect_say_refused(HPORT, a, "general", e1001, 400);
	/* Exactly max_message_bytes is fine. */
	ck_assert_int_eq(api_say(HPORT, a, "general", c2000, NULL), 1);
	res = tdb_query(&T_DB, "SELECT octet_length(content) FROM messages",
			NULL);
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_int_eq(atoi(PQgetvalue(res, 0, 0)), 2000);
	PQclear(res);
	free(c2000);
	free(c2001);
	free(e1001);
}
END_TEST

START_TEST(test_message_invalid_content_400)
{
	char a[THTTP_SID_LEN + 1], body[512];
	/* JSON text after "content": each one must be refused. */
	static const char *const bad[] = {
		"\"\"",			     /* empty */
		"\"\\udc00\"",		     /* lone low surrogate */
		"\"a\\ud800b\"",	     /* lone high surrogate */
		"\"\xc3\x28\"",		     /* invalid UTF-8 as raw bytes */
		"\"\xed\xa0\x80\"",	     /* an encoded surrogate */
		"\"\xff\"",		     /* never valid in UTF-8 */
		"\"\\u0000\"",		     /* NUL */
		"\"\\u0001\\u0007\\u001b\"", /* only control characters */
		"\"   \"", /* only blanks (our reading: empty) */
		"5",
		"null",
	};
	struct thttp_resp r;

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(
			body, sizeof(body),
			"{\"session_id\":\"%s\",\"room\":\"general\",\"content\":%s}",
			a, bad[i]);
		post_message_json(body, &r);
		ck_assert_msg(r.status == 400, "content %s: status %d: %s",
			      bad[i], r.status, r.body);
		expect_error(&r, 400);
	}
	expect_stored(0);
	/* A valid pair is one character; control characters are removed. */
	snprintf(
		body, sizeof(body),
		"{\"session_id\":\"%s\",\"room\":\"general\",\"content\":\"\\ud83d\\ude00 a\\u0007b\"}",
		a);
	post_message_json(body, &r);
	expect_status(&r, 200);
	{
		char *c =
			tdb_scalar(&T_DB, "SELECT content FROM messages", NULL);

		ck_assert_str_eq(c, "\xf0\x9f\x98\x80 ab");
		free(c);
	}
}
END_TEST

START_TEST(test_message_missing_fields_400)
{
	char a[THTTP_SID_LEN + 1];
	struct thttp_resp r;

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	thttp_post_pack(HPORT, "/api/message", &r, "{ssss}", "session_id", a,
			"room", "general");
	expect_error(&r, 400);
	thttp_post_pack(HPORT, "/api/message", &r, "{ssss}", "session_id", a,
			"content", "hi");
	expect_error(&r, 400);
	thttp_post_pack(HPORT, "/api/message", &r, "{sssiss}", "session_id", a,
			"room", 1, "content", "hi");
	expect_error(&r, 400);
	thttp_post_pack(HPORT, "/api/message", &r, "{ssss}", "room", "general",
			"content", "hi");
	expect_error(&r, 400);
	expect_stored(0);
}
END_TEST

/* ---- /api/rooms, /api/disconnect ---- */


/* Bug: an answer longer than one 32 KiB write dropped the connection. */
START_TEST(test_rooms_list_larger_than_one_write)
{
	static const char req[] = "GET /api/rooms?limit=500 HTTP/1.1\r\n"
				  "Host: t\r\nConnection: close\r\n\r\n";
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	int64_t deadline;
	int fd;

	tfix_begin();
	PQclear(tdb_query(&T_DB,
			  "INSERT INTO rooms (name) SELECT 'bulk-room-' || g || "
			  "'-abcdefghijabcdefghij' FROM generate_series(1, 800) g",
			  NULL));
	fd = trun_dial(HPORT, 0, false, "GET /api/rooms?limit=500");
	ck_assert_int_eq(write(fd, req, sizeof(req) - 1), (int)sizeof(req) - 1);
	deadline = trun_now_ms() + trun_ms(10000);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		ck_assert_msg(trun_now_ms() < deadline,
			      "no end of the answer after %zu bytes", len);
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	ck_assert_msg(len > 33000, "only %zu bytes came", len);
	ck_assert(strstr(buf, "HTTP/1.1 200"));
	/* The first 500 in byte order: 1, 10, 100, 101, ... */
	ck_assert(strstr(buf, "{\"rooms\":[{\"name\":\"bulk-room-1-abcdefghijabcdefghij\""));
	ck_assert_msg(strstr(buf, "],\"next\":\"bulk-room-"),
		      "no next page named");
	ck_assert_msg(!strcmp(buf + len - 2, "\"}"), "the JSON is cut short");
	free(buf);
}
END_TEST

START_TEST(test_rooms_shape_and_counts)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *carol = tcl_user(PORT, "carol");
	char a[THTTP_SID_LEN + 1];
	static const struct {
		const char *name;
		int members, online;
	} want[] = { { "alpha", 1, 1 }, { "beta", 3, 2 }, { "gamma", 1, 0 } };
	struct thttp_resp r;
	json_t *j, *rooms;

	thttp_get(HPORT, "/api/rooms", &r);
	expect_status(&r, 200);
	j = resp_json(&r);
	rooms = json_object_get(j, "rooms");
	ck_assert_msg(json_is_array(rooms) && !json_array_size(rooms),
		      "expected {\"rooms\":[]}, got %s", r.body);
	json_decref(j);

	api_connect(HPORT, "alice", a);
	do_create(carol, "gamma");
	alpha_and_beta(a, bob, carol);

	thttp_get(HPORT, "/api/rooms", &r);
	expect_status(&r, 200);
	{
		char ct[128];

		ck_assert_msg(thttp_header(&r, "Content-Type", ct,
					   sizeof(ct)) &&
				      !strncmp(ct, "application/json", 16),
			      "head: %s", r.head);
	}
	j = resp_json(&r);
	rooms = json_object_get(j, "rooms");
	ck_assert_msg(json_is_array(rooms) && json_array_size(rooms) == 3,
		      "expected 3 rooms, got %s", r.body);
	for (size_t i = 0; i < 3; i++) {
		json_t *o = json_array_get(rooms, i);
		json_t *n = json_object_get(o, "name");
		json_t *m = json_object_get(o, "members");
		json_t *on = json_object_get(o, "online");

		ck_assert_msg(json_is_string(n) && json_is_integer(m) &&
				      json_is_integer(on),
			      "room %zu: %s", i, r.body);
		ck_assert_msg(
			!strcmp(json_string_value(n), want[i].name) &&
				json_integer_value(m) == want[i].members &&
				json_integer_value(on) == want[i].online,
			"room %zu: expected %s %d members %d online; body %s",
			i, want[i].name, want[i].members, want[i].online,
			r.body);
	}
	json_decref(j);
}
END_TEST

/* GET /api/rooms pages by name in byte order: 50 by default, ?limit=
 * up to 500, ?after= the previous page's "next"; bad values are 400. */
START_TEST(test_rooms_paginated)
{
	struct thttp_resp r;
	char path[128], after[64] = "";
	int seen = 0, pages = 0;

	tfix_begin();
	PQclear(tdb_query(&T_DB,
			  "INSERT INTO rooms (name) SELECT 'r' || "
			  "lpad(g::text, 3, '0') FROM generate_series(1, 120) g",
			  NULL));
	do {
		json_t *j, *rooms, *next;

		snprintf(path, sizeof(path), "/api/rooms%s%s",
			 after[0] ? "?after=" : "", after);
		thttp_get(HPORT, path, &r);
		expect_status(&r, 200);
		j = resp_json(&r);
		rooms = json_object_get(j, "rooms");
		next = json_object_get(j, "next");
		ck_assert_msg(json_is_array(rooms) &&
				      json_array_size(rooms) ==
					      (pages < 2 ? 50u : 20u),
			      "page %d: %s", pages, r.body);
		for (size_t i = 0; i < json_array_size(rooms); i++) {
			char want[16];

			snprintf(want, sizeof(want), "r%03d", ++seen);
			ck_assert_str_eq(json_string_value(json_object_get(
						 json_array_get(rooms, i),
						 "name")),
					 want);
		}
		if (json_is_string(next))
			snprintf(after, sizeof(after), "%s",
				 json_string_value(next));
		else
			after[0] = '\0';
		ck_assert_msg(json_is_string(next) == (pages < 2),
			      "page %d: %s", pages, r.body);
		json_decref(j);
		pages++;
	} while (after[0]);
	ck_assert_int_eq(seen, 120);
	thttp_get(HPORT, "/api/rooms?limit=500", &r);
	expect_status(&r, 200);
	ck_assert_msg(strstr(r.body, "\"r120\"") &&
			      strstr(r.body, "\"next\":null"),
		      "%.200s", r.body);
	thttp_get(HPORT, "/api/rooms?after=r118&limit=1", &r);
	expect_status(&r, 200);
	ck_assert_msg(strstr(r.body, "[{\"name\":\"r119\"") &&
			      strstr(r.body, "\"next\":\"r119\""),
		      "%s", r.body);
	thttp_get(HPORT, "/api/rooms?limit=0", &r);
	expect_error(&r, 400);
	thttp_get(HPORT, "/api/rooms?limit=501", &r);
	expect_error(&r, 400);
	thttp_get(HPORT, "/api/rooms?limit=x", &r);
	expect_error(&r, 400);
	thttp_get(HPORT, "/api/rooms?after=Not%20A%20Room", &r);
	expect_error(&r, 400);
}
END_TEST

START_TEST(test_disconnect_ends_session)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1];
	struct thttp_resp r;

	api_connect(HPORT, "alice", a);
	ck_assert(listed(bob, "alice (no room)"));
	api_disconnect(HPORT, a);
	expect_command_refused(HPORT, a, "/help", 404);
	expect_disconnect_refused(HPORT, a, 404);
	expect_disconnect_refused(HPORT, NO_SID, 404);
	thttp_post(HPORT, "/api/disconnect", "{}", &r);
	expect_error(&r, 400);
	expect_reply(bob, "/list", "[system] Online users (1):");
	expect_next(bob, "[system]   bob (no room)");
}
END_TEST

/* ---- static files, unknown paths ---- */

START_TEST(test_static_index)
{
	static const char *const paths[] = { "/", "/index.html" };
	char path[1100], v[256];
	struct thttp_resp r;
	size_t len;
	char *want;

	snprintf(path, sizeof(path), "%s/static/index.html",
		 trun_env("BD_TOP"));
	want = trun_slurp(path, &len);
	ck_assert_msg(want, "%s: %s", path, strerror(errno));
	for (size_t i = 0; i < 2; i++) {
		thttp_get(HPORT, paths[i], &r);
		expect_status(&r, 200);
		ck_assert_msg(thttp_header(&r, "Content-Type", v, sizeof(v)) &&
				      !strncmp(v, "text/html", 9),
			      "GET %s: head %s", paths[i], r.head);
		ck_assert_msg(
			thttp_header(&r, "Cache-Control", v, sizeof(v)) && v[0],
			"GET %s: no Cache-Control; head %s", paths[i], r.head);
		ck_assert_msg(
			r.body_len == len && !memcmp(r.body, want, len),
			"GET %s: body differs from static/index.html (%zu vs %zu bytes)",
			paths[i], r.body_len, len);
	}
	thttp_get(HPORT, "/no-such-file.css", &r);
	ck_assert_msg(r.status == 404, "missing file: %d", r.status);
	/* Revalidation: the ETag gets a 304 without a body, whose
	 * Content-Length (if any) is the file's (RFC 9110, 8.6). */
	{
		char etag[64], hdr[128], cl[32];
		struct thttp_req q = { .path = "/index.html", .headers = hdr };

		thttp_get(HPORT, "/index.html", &r);
		ck_assert_msg(thttp_header(&r, "ETag", etag, sizeof(etag)),
			      "no ETag: %s", r.head);
		snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", etag);
		thttp_request(HPORT, &q, &r);
		expect_status(&r, 304);
		ck_assert_uint_eq(r.body_len, 0);
		ck_assert_msg(!thttp_header(&r, "Content-Length", cl,
					    sizeof(cl)) ||
				      strtoul(cl, NULL, 10) == len,
			      "304 with Content-Length %s (file: %zu)", cl, len);
	}
	free(want);
}
END_TEST

START_TEST(test_static_traversal_refused)
{
	static const char *const paths[] = {
		"/../etc/passwd",
		"/../../../../../../etc/passwd",
		"/%2e%2e/%2e%2e/etc/passwd",
		"/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
		"/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
		"/..%2f..%2f..%2f..%2fetc%2fpasswd",
		"/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
		"/static/../../GNUmakefile",
		"/../GNUmakefile",
		"/%2e%2e/GNUmakefile",
		"/.%2e/GNUmakefile",
		"/..%5cGNUmakefile",
		"/./../GNUmakefile",
		"//etc/passwd",
		"/%252e%252e/GNUmakefile",
		"/index.html/../../GNUmakefile",
		"/%00../GNUmakefile",
		"/%2e%2e%00/GNUmakefile",
	};
	char req[512];

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct thttp_resp r;
		enum thttp_raw_rc rc;
		int n;

		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			     "Connection: close\r\n\r\n",
			     paths[i]);
		rc = thttp_raw(HPORT, req, (size_t)n, &r, trun_ms(T_WAIT));
		ck_assert_msg(rc != THTTP_TIMEOUT, "GET %s: no answer",
			      paths[i]);
		/* Files are served by exact name from memory: no path
		 * reaches the file system, every other one is 404. */
		ck_assert_msg(r.status == 404, "GET %s: status %d: %.300s",
			      paths[i], r.status, r.body);
		ck_assert_msg(!strstr(r.body, "root:") &&
				      !strstr(r.body, "SANITIZE") &&
				      !strstr(r.body, "check-integration"),
			      "GET %s: leaked a file: %.300s", paths[i],
			      r.body);
	}
	/* Still serving. */
	{
		struct thttp_resp r;

		thttp_get(HPORT, "/index.html", &r);
		expect_status(&r, 200);
	}
}
END_TEST

START_TEST(test_unknown_api_path_404)
{
	static const char *const paths[] = {
		"/api/nope",   "/api/",		"/api/connect/extra",
		"/api/roomsx", "/api/messages",
	};
	static const char *const post[] = { "{}" };

	expect_gets_refused(paths, TMAIN_N(paths), 404);
	expect_posts_refused("/api/nope", post, 1, 404);
}
END_TEST

/* ---- malformed requests ---- */

enum bad_kind {
	BAD_400,    /* well-framed HTTP, bad JSON: exactly 400 */
	BAD_REJECT, /* a 4xx (or 501/505) answer, or a close without one */
	BAD_OPEN,   /* incomplete: sent, left open, never answered by us */
};

struct bad_req {
	const char *name;
	enum bad_kind kind;
	char *data; /* malloc'd */
	size_t len;
};

/* A POST of body (len bytes) to path with JSON Content-Type. */
static void bad_post(struct bad_req *b, const char *name, enum bad_kind kind,
		     const char *path, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 path, len);

	b->name = name;
	b->kind = kind;
	b->data = malloc((size_t)n + len);
	ck_assert(b->data);
	memcpy(b->data, head, (size_t)n);
	memcpy(b->data + n, body, len);
	b->len = (size_t)n + len;
}

static void bad_bytes(struct bad_req *b, const char *name, enum bad_kind kind,
		      const char *data, size_t len)
{
	b->name = name;
	b->kind = kind;
	b->data = malloc(len);
	ck_assert(b->data);
	memcpy(b->data, data, len);
	b->len = len;
}

/* A request of kind that is fmt with arg (a string) in it. */
static void bad_fmt(struct bad_req *b, const char *name, enum bad_kind kind,
		    const char *fmt, const char *arg)
{
	size_t len = strlen(fmt) + strlen(arg) + 1;
	char *t = malloc(len);

	ck_assert(t);
	snprintf(t, len, fmt, arg);
	bad_bytes(b, name, kind, t, strlen(t));
	free(t);
}

/* A JSON POST to path (that must get a 400) of fmt with arg in it. */
static void bad_post_fmt(struct bad_req *b, const char *name, const char *path,
			 const char *fmt, const char *arg)
{
	char body[1024];

	snprintf(body, sizeof(body), fmt, arg);
	bad_post(b, name, BAD_400, path, body, strlen(body));
}

#define BAD_LIT(b, name, kind, lit) \
	bad_bytes((b), (name), (kind), (lit), sizeof(lit) - 1)
/* A JSON POST of a literal body (NULs included) that must get a 400. */
#define BAD_POST(b, name, path, lit) \
	bad_post((b), (name), BAD_400, (path), (lit), sizeof(lit) - 1)

/* Nested arrays n deep around "x" as the nickname. */
static char *nested(const char *open, const char *close, size_t depth)
{
	char *o = trun_repeat(open, depth), *c = trun_repeat(close, depth);
	size_t len = strlen(o) + strlen(c) + 64;
	char *b = malloc(len);

	ck_assert(b);
	snprintf(b, len, "{\"nickname\":%s\"x\"%s}", o, c);
	free(o);
	free(c);
	return b;
}

static int build_corpus(struct bad_req *b, const char *sid)
{
	char *big = trun_repeat("a", 65536),
	     *many = trun_repeat("X-H: v\r\n", 3000);
	/* Deeper than jansson's 2048 levels, within the 16 KiB limit. */
	char *deep = nested("[", "]", 5000);
	char *deepo = nested("{\"a\":", "}", 2500);
	char *url = trun_repeat("/x", 10000);
	int n = 0;

	BAD_LIT(&b[n++], "TLS hello", BAD_OPEN,
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
	BAD_LIT(&b[n++], "garbage request line", BAD_REJECT,
		"HELLO WORLD\r\n\r\n");
	BAD_LIT(&b[n++], "binary junk", BAD_REJECT,
		"\xff\xfe\x00\x01\x02\x80\x81\r\n\r\n");
	BAD_LIT(&b[n++], "NUL in the path", BAD_REJECT,
		"GET /api/ro\0oms HTTP/1.1\r\nHost: x\r\n\r\n");
	BAD_LIT(&b[n++], "NUL in a header", BAD_REJECT,
		"GET /api/nope HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n");
	BAD_LIT(&b[n++], "unknown method", BAD_REJECT,
		"BREW /api/connect HTTP/1.1\r\nHost: x\r\n\r\n");
	BAD_LIT(&b[n++], "negative length", BAD_REJECT,
		"POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\nContent-Length: -1\r\n\r\n");
	BAD_LIT(&b[n++], "absurd length", BAD_REJECT,
		"POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\n"
		"Content-Length: 99999999999999999999\r\n\r\n{}");
	BAD_LIT(&b[n++], "truncated body", BAD_OPEN,
		"POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
		"{\"nickname\"");
	BAD_LIT(&b[n++], "unterminated head", BAD_OPEN,
		"POST /api/connect HTTP/1.1\r\nHost: x\r\nContent-Ty");
	BAD_LIT(&b[n++], "POST without length", BAD_REJECT,
		"POST /api/connect HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\n\r\n{\"nickname\":\"nolen\"}");

	bad_fmt(&b[n++], "64 KiB header", BAD_REJECT,
		"GET /api/nope HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big);
	bad_fmt(&b[n++], "3000 headers", BAD_REJECT,
		"GET /api/nope HTTP/1.1\r\nHost: x\r\n%s\r\n", many);
	bad_fmt(&b[n++], "20 KB URL", BAD_REJECT,
		"GET /api%s HTTP/1.1\r\nHost: x\r\n\r\n", url);

	bad_post(&b[n++], "nested arrays", BAD_400, "/api/connect", deep,
		 strlen(deep));
	bad_post(&b[n++], "nested objects", BAD_400, "/api/connect", deepo,
		 strlen(deepo));
	BAD_POST(&b[n++], "raw NUL in JSON", "/api/connect",
		 "{\"nickname\":\"a\0b\"}");
	BAD_POST(&b[n++], "NUL after JSON", "/api/connect",
		 "{\"nickname\":\"ab\"}\0");
	BAD_POST(&b[n++], "invalid UTF-8 JSON", "/api/connect",
		 "{\"nickname\":\"\xc0\xaf\"}");
	BAD_POST(&b[n++], "half a JSON", "/api/connect", "{\"nickname\":\"x");
	BAD_POST(&b[n++], "JSON number", "/api/connect", "12");
	BAD_POST(&b[n++], "empty body", "/api/connect", "");
	bad_post_fmt(&b[n++], "command as array", "/api/command",
		     "{\"session_id\":\"%s\",\"command\":[\"/help\"]}", sid);
	bad_post_fmt(
		&b[n++], "content as object", "/api/message",
		"{\"session_id\":\"%s\",\"room\":\"general\",\"content\":{}}",
		sid);
	bad_post_fmt(
		&b[n++], "lone surrogate", "/api/message",
		"{\"session_id\":\"%s\",\"room\":\"general\",\"content\":\"\\ud800\"}",
		sid);
	BAD_POST(&b[n++], "session as number", "/api/disconnect",
		 "{\"session_id\":12}");
	free(big);
	free(many);
	free(deep);
	free(deepo);
	free(url);
	return n;
}

START_TEST(test_malformed_corpus_survived)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	char a[THTTP_SID_LEN + 1], b2[THTTP_SID_LEN + 1];
	struct bad_req bad[64];
	int open_fd[3 * 64], nopen = 0, n;
	struct thttp_resp r;

	api_connect(HPORT, "alice", a);
	expect_command(HPORT, a, "/create general", true,
		       "Created room general\n"
		       "You joined general (0 recent messages)");
	n = build_corpus(bad, a);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < n; i++) {
			enum thttp_raw_rc rc;

			if (bad[i].kind == BAD_OPEN) {
				struct tcl *c = tcl_connect(HPORT, bad[i].name);

				tcl_send_raw(c, bad[i].data, bad[i].len);
				open_fd[nopen++] = c->fd;
				c->fd = -1;
				tcl_free(c);
				continue;
			}
			rc = thttp_raw(HPORT, bad[i].data, bad[i].len, &r,
				       trun_ms(T_WAIT));
			ck_assert_msg(
				rc != THTTP_TIMEOUT,
				"%s: neither an answer nor a close within %d ms",
				bad[i].name, trun_ms(T_WAIT));
			ck_assert_msg(!tsrv_exited(&T_SRV),
				      "the server died on \"%s\"", bad[i].name);
			if (bad[i].kind == BAD_400)
				ck_assert_msg(r.status == 400,
					      "%s: expected 400, got %d: %s",
					      bad[i].name, r.status, r.body);
			else
				ck_assert_msg(
					r.status == 0 ||
						(r.status >= 400 &&
						 r.status < 500) ||
						r.status == 501 ||
						r.status == 505,
					"%s: expected a 4xx or a close, got %d: %s",
					bad[i].name, r.status, r.body);
		}
	}
	/* With the incomplete ones still open, good requests work. */
	api_connect(HPORT, "survivor", b2);
	expect_command(HPORT, b2, "/join general", true,
		       "You joined general (0 recent messages)");
	api_say(HPORT, a, "general", "still here", NULL);
	do_join(bob, "general");
	ck_assert_int_eq(bob->nhist, 1);
	ck_assert_str_eq(bob->hist[0], "[general] alice: still here");
	thttp_get(HPORT, "/health", &r);
	expect_status(&r, 200);
	for (int i = 0; i < nopen; i++)
		close(open_fd[i]);
	thttp_get(HPORT, "/health", &r);
	expect_status(&r, 200);
	ck_assert_msg(thttp_json_has(r.body, "status", "healthy"), "%s",
		      r.body);
	ck_assert_msg(!tsrv_exited(&T_SRV), "the server died");
	for (int i = 0; i < n; i++)
		free(bad[i].data);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_connect_returns_session, TIMEOUT, NULL),
		TFIX_CASE(test_connect_invalid_nickname_400, TIMEOUT, NULL),
		TFIX_CASE(test_connect_taken_by_tcp_user_409, TIMEOUT, NULL),
		TFIX_CASE(test_connect_taken_by_http_session_409, TIMEOUT,
			  NULL),
		TFIX_CASE(test_connect_malformed_json_400, TIMEOUT, NULL),
		TFIX_CASE(test_connect_missing_or_wrong_field_400, TIMEOUT,
			  NULL),
		TFIX_CASE(test_wrong_method_405, TIMEOUT, NULL),
		TFIX_CASE(test_connect_wrong_content_type_415, TIMEOUT, NULL),
		TFIX_CASE(test_connect_body_over_16k_413, TIMEOUT, NULL),
		TFIX_CASE(test_connect_restores_memberships, TIMEOUT, NULL),
		TFIX_CASE(test_command_help_lists_commands, TIMEOUT, NULL),
		TFIX_CASE(test_command_join_unknown_room, TIMEOUT, NULL),
		TFIX_CASE(test_command_create_join_leave, TIMEOUT, NULL),
		TFIX_CASE(test_command_nick, TIMEOUT, NULL),
		TFIX_CASE(test_command_list_shows_http_user, TIMEOUT, NULL),
		TFIX_CASE(test_command_rooms, TIMEOUT, NULL),
		TFIX_CASE(test_command_quit_ends_session, TIMEOUT, NULL),
		TFIX_CASE(test_command_unknown_session_404, TIMEOUT, NULL),
		TFIX_CASE(test_session_activity_written_at_most_once_a_second,
			  TIMEOUT, NULL),
		TFIX_CASE(test_command_bad_requests_400, TIMEOUT, NULL),
		TFIX_CASE(test_command_busy_session_409, TIMEOUT, NULL),
		TFIX_CASE(test_database_unavailable_503, 120, NULL),
		TFIX_CASE(test_message_committed, TIMEOUT, NULL),
		TFIX_CASE(test_message_not_member_403, TIMEOUT, NULL),
		TFIX_CASE(test_memberships_changed_in_database_seen_next_request,
			  TIMEOUT, NULL),
		TFIX_CASE(test_message_unknown_room_404, TIMEOUT, NULL),
		TFIX_CASE(test_message_unknown_session_404, TIMEOUT, NULL),
		TFIX_CASE(test_message_too_long_400, TIMEOUT, NULL),
		TFIX_CASE(test_message_invalid_content_400, TIMEOUT, NULL),
		TFIX_CASE(test_message_missing_fields_400, TIMEOUT, NULL),
		TFIX_CASE(test_rooms_shape_and_counts, TIMEOUT, NULL),
		TFIX_CASE(test_rooms_list_larger_than_one_write, TIMEOUT, NULL),
		TFIX_CASE(test_rooms_paginated, TIMEOUT, NULL),
		TFIX_CASE(test_disconnect_ends_session, TIMEOUT, NULL),
		TFIX_CASE(test_static_index, TIMEOUT, tfix_setup_static),
		TFIX_CASE(test_static_traversal_refused, TIMEOUT,
			  tfix_setup_static),
		TFIX_CASE(test_unknown_api_path_404, TIMEOUT, NULL),
		TFIX_CASE(test_malformed_corpus_survived, 120, NULL),
	};

	return tfix_main("http", cases, TMAIN_N(cases), NULL);
}
