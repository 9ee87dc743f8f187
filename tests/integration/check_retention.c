/*
 * Retention: migrate/cleanup (what `make cleanup` runs) and the server's
 * own timer (cleanup_interval_s) keep the newest N messages of every room
 * and remove guests that are gone, with their memberships; messages stay.
 * Users of any name with nothing left (no membership, message, connected
 * TCP or API session) go once unused for the retention period.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"

#define PORT tfix_tcp_port()

/* "seq nickname: content" of room's messages, by seq, one per line. */
static char *room_text(const char *room)
{
	return tdb_scalar(&T_DB,
			  "SELECT string_agg(m.seq || ' ' || m.nickname || ': ' "
			  "|| m.content, E'\\n' ORDER BY m.seq) "
			  "FROM messages m JOIN rooms r ON r.id = m.room_id "
			  "WHERE r.name = $1",
			  room, NULL);
}

static long long members(const char *room)
{
	return tdb_int(&T_DB,
		       "SELECT count(*) FROM room_members m "
		       "JOIN rooms r ON r.id = m.room_id WHERE r.name = $1",
		       room, NULL);
}

/* A guest (never renamed) who joined room and said text. */
static struct tcl *guest_in(const char *room, const char *text)
{
	struct tcl *g = tcl_guest(PORT, "guest"); /* its name in g->nick */

	do_join(g, room);
	do_say(g, room, text);
	return g;
}

/* Reads what alice sees when guest g joins room and says text. */
static void seen_join_and_say(struct tcl *alice, struct tcl *g,
			      const char *room, const char *text)
{
	char want[256];

	snprintf(want, sizeof(want), "[system] %s joined %s", g->nick, room);
	expect_next(alice, want);
	snprintf(want, sizeof(want), "[%s] %s: %s", room, g->nick, text);
	expect_next(alice, want);
}

/*
 * big: five messages from alice, then one from a guest who leaves; small:
 * one from alice and one from a guest who stays. Returns alice.
 */
static struct tcl *stage(struct tcl **stays, char *gone_nick, size_t len)
{
	struct tcl *alice = tcl_user(PORT, "alice"), *gone;
	char text[16];

	do_create(alice, "big");
	for (int i = 1; i <= 5; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		do_say(alice, "big", text);
	}
	gone = guest_in("big", "bye");
	seen_join_and_say(alice, gone, "big", "bye");
	snprintf(gone_nick, len, "%s", gone->nick);
	do_create(alice, "small");
	do_say(alice, "small", "only one");
	*stays = guest_in("small", "here");
	seen_join_and_say(alice, *stays, "small", "here");
	tcl_free(gone);
	/* The guest is gone once /list no longer shows it. */
	wait_online(alice, 2);
	return alice;
}

/* What stage() left, after a cleanup keeping 2 per room. */
static void expect_cleaned(const char *gone_nick, const struct tcl *stays)
{
	char want[256], *text;

	snprintf(want, sizeof(want), "5 alice: m5\n6 %s: bye", gone_nick);
	text = room_text("big");
	ck_assert_str_eq(text, want);
	free(text);
	snprintf(want, sizeof(want), "1 alice: only one\n2 %s: here",
		 stays->nick);
	text = room_text("small");
	ck_assert_str_eq(text, want);
	free(text);
	/* The gone guest's user and membership are gone; its message is
	 * kept under its name, with no user. */
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM users "
				 "WHERE nickname = $1", gone_nick, NULL), 0);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM messages "
				 "WHERE nickname = $1 AND user_id IS NULL",
				 gone_nick, NULL), 1);
	ck_assert_int_eq(members("big"), 1);
	/* The connected guest and alice stay. */
	ck_assert_int_eq(members("small"), 2);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM users", NULL),
			 2);
}

START_TEST(test_cleanup_script)
{
	struct tcl *alice, *stays;
	char gone[64], cmd[4608], out[512] = "", want[256];
	FILE *p;

	alice = stage(&stays, gone, sizeof(gone));
	snprintf(cmd, sizeof(cmd),
		 "DATABASE_URL='%s' '%s/migrate/cleanup' 2 2>&1", T_DB.url,
		 getenv("BD_TOP"));
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	snprintf(want, sizeof(want), "cleanup: deleted 4 message(s), kept the newest 2 per room; removed 1 guest user(s) no longer connected; removed 0 unused user(s)\n");
	ck_assert_str_eq(out, want);
	expect_cleaned(gone, stays);
	/* /rooms counts what is left. */
	expect_reply(alice, "/rooms", "[system] Rooms (2):");
	expect_next(alice, "[system]   big: 1 member, 1 online");
	expect_next(alice, "[system]   small: 2 members, 2 online");
}
END_TEST

static void setup_timer(void)
{
	struct tsrv_opts o = {
		.extra_json = "\"cleanup_interval_s\": 1, \"cleanup_keep\": 2",
	};

	tfix_use(&o);
}

START_TEST(test_cleanup_timer)
{
	struct tcl *stays;
	char gone[64], *line;
	int64_t deadline;

	stage(&stays, gone, sizeof(gone));
	/* The timer runs every second, during the staging too: wait (paced,
	 * a run has no client-visible event) until one found it all. */
	deadline = trun_now_ms() + trun_ms(10000);
	while (tdb_int(&T_DB, "SELECT count(*) FROM users", NULL) != 2 ||
	       tdb_int(&T_DB, "SELECT count(*) FROM messages", NULL) != 4) {
		ck_assert_msg(trun_now_ms() < deadline,
			      "no cleanup run within 10 s");
		trun_pace();
	}
	expect_cleaned(gone, stays);
	line = tsrv_log_find(&T_SRV, " INFO cleanup ");
	ck_assert_msg(line && strstr(line, " messages_deleted=") &&
			      strstr(line, " guests_removed="),
		      "cleanup log line: %s", line ? line : "(none)");
	free(line);
}
END_TEST

/* Runs migrate/cleanup keeping keep messages; its one line of output. */
static char *run_cleanup_script(const char *keep)
{
	char cmd[4608], *out = calloc(1, 512);
	FILE *p;

	ck_assert_ptr_nonnull(out);
	snprintf(cmd, sizeof(cmd),
		 "DATABASE_URL='%s' '%s/migrate/cleanup' %s 2>&1", T_DB.url,
		 getenv("BD_TOP"), keep);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (!fgets(out, 512, p))
		out[0] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	return out;
}

/* Users by nickname, comma-separated. */
static char *user_names(void)
{
	return tdb_scalar(&T_DB,
			  "SELECT string_agg(nickname, ',' ORDER BY nickname) "
			  "FROM users", NULL);
}

/*
 * Named users, all of them made more than the retention period ago: gone
 * (nothing left), member (a membership), talker (a message, no longer a
 * member), online (a live TCP session), apiuser (a live API session), and
 * fresh, whose session ended just now (it was last seen now); online's
 * client stays connected. *api gets the API session id.
 */
static void stage_users(char *api)
{
	struct tcl *online = tcl_user(PORT, "online"), *c;

	c = tcl_user(PORT, "gone");
	tcl_free(c);
	c = tcl_user(PORT, "member");
	do_create(c, "r");
	tcl_free(c);
	c = tcl_user(PORT, "talker");
	do_join(c, "r");
	do_say(c, "r", "hi");
	expect_reply(c, "/leave", "[system] You left r");
	tcl_free(c);
	api_connect(T_SRV.http_port, "apiuser", api);
	c = tcl_user(PORT, "fresh");
	PQclear(tdb_query(&T_DB, "UPDATE users SET "
			  "created_at = now() - interval '8 days', "
			  "last_seen = now() - interval '8 days'", NULL));
	tcl_free(c);
	/* Every session that ended is gone from presence. */
	wait_online(online, 2);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM users "
				 "WHERE last_seen > now() - interval '1 day'",
				 NULL), 1);
}

START_TEST(test_cleanup_removes_unused_users)
{
	char api[THTTP_SID_LEN + 1], *out, *names;

	stage_users(api);
	out = run_cleanup_script("1000");
	ck_assert_str_eq(out, "cleanup: deleted 0 message(s), kept the newest 1000 per room; removed 0 guest user(s) no longer connected; removed 1 unused user(s)\n");
	free(out);
	names = user_names();
	ck_assert_str_eq(names, "apiuser,fresh,member,online,talker");
	free(names);
	/* Once its message is gone, talker goes too; the rest stay. */
	PQclear(tdb_query(&T_DB, "DELETE FROM messages", NULL));
	out = run_cleanup_script("1000");
	ck_assert(strstr(out, "; removed 1 unused user(s)\n"));
	free(out);
	names = user_names();
	ck_assert_str_eq(names, "apiuser,fresh,member,online");
	free(names);
}
END_TEST

START_TEST(test_cleanup_timer_removes_unused_users)
{
	char api[THTTP_SID_LEN + 1], *names, *line;
	int64_t deadline;

	stage_users(api);
	deadline = trun_now_ms() + trun_ms(10000);

	/* A timer run has no client-visible event: wait, paced. */
	while (tdb_int(&T_DB, "SELECT count(*) FROM users", NULL) != 5) {
		ck_assert_msg(trun_now_ms() < deadline,
			      "no cleanup run within 10 s");
		trun_pace();
	}
	names = user_names();
	ck_assert_str_eq(names, "apiuser,fresh,member,online,talker");
	free(names);
	line = tsrv_wait_log(&T_SRV, " users_removed=1",
			     trun_ms(T_WAIT));
	ck_assert_msg(line, "no cleanup log line with 1 unused user");
	free(line);
}
END_TEST

/*
 * A connected guest whose users row is deleted anyway (its instance was
 * reaped from presence while it lived and a cleanup ran, say): the session
 * goes on. Its instance registers its sessions again after a reconnect,
 * its messages are stored without a user, /join makes the user again and
 * /leave works.
 */
START_TEST(test_session_outlives_its_user_row)
{
	struct tcl *alice = tcl_user(PORT, "alice"), *g;
	char *before, *now, want[256];
	int64_t deadline;

	do_create(alice, "r");
	g = guest_in("r", "hello");
	seen_join_and_say(alice, g, "r", "hello");
	ck_assert_int_eq(tdb_int(&T_DB, "DELETE FROM users WHERE nickname = $1 "
				 "RETURNING 1", g->nick, NULL), 1);
	/* Re-registration (bd_presence_sync) with the deleted user id. */
	before = tdb_scalar(&T_DB, "SELECT started_at::text FROM instances",
			    NULL);
	ck_assert_int_eq(tdb_kill_server_conns(&T_DB, "babydiscord-query"), 1);
	deadline = trun_now_ms() + trun_ms(10000);
	for (;;) {
		now = tdb_scalar(&T_DB, "SELECT started_at::text FROM instances",
				 NULL);
		if (now && strcmp(now, before))
			break;
		free(now);
		ck_assert_msg(trun_now_ms() < deadline,
			      "the instance did not register again");
		trun_pace();
	}
	free(now);
	free(before);
	wait_online(alice, 2);
	/* A message: stored with no user, delivered as usual. */
	do_say(g, "r", "still here");
	snprintf(want, sizeof(want), "[r] %s: still here", g->nick);
	expect_next(alice, want);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM messages "
				 "WHERE content = 'still here' "
				 "AND user_id IS NULL", NULL), 1);
	/* /join makes the user again (by nickname); /leave works. */
	do_create(alice, "s");
	do_join(g, "s");
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM users "
				 "WHERE nickname = $1", g->nick, NULL), 1);
	expect_reply(g, "/leave", "[system] You left s");
}
END_TEST

/*
 * messages has no foreign keys (migration 017): deleting a room deletes
 * its messages and deleting a user keeps theirs without a user, by the
 * tables' triggers, as ON DELETE CASCADE / SET NULL did; a message for a
 * user that no longer exists is stored without one.
 */
START_TEST(test_deletes_keep_messages_consistent)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");

	do_create(alice, "doomed");
	do_create(bob, "kept");
	do_say(alice, "doomed", "one");
	do_say(alice, "doomed", "two");
	do_say(bob, "kept", "three");
	ck_assert_int_eq(tdb_int(&T_DB, "DELETE FROM rooms WHERE name = 'doomed' "
				 "RETURNING 1", NULL), 1);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM messages m "
				 "WHERE NOT EXISTS (SELECT 1 FROM rooms r "
				 "WHERE r.id = m.room_id)", NULL), 0);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM messages", NULL),
			 1);
	ck_assert_int_eq(tdb_int(&T_DB, "WITH d AS (DELETE FROM users "
				 "WHERE nickname = 'bob' RETURNING id) "
				 "SELECT count(*) FROM d", NULL), 1);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM messages "
				 "WHERE content = 'three' AND user_id IS NULL",
				 NULL), 1);
	/* bob's session goes on without its row: stored without a user. */
	do_say(bob, "kept", "four");
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM messages "
				 "WHERE content = 'four' AND user_id IS NULL",
				 NULL), 1);
	tcl_free(alice);
	tcl_free(bob);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_cleanup_script, 60, NULL),
		TFIX_CASE(test_cleanup_timer, 60, setup_timer),
		TFIX_CASE(test_session_outlives_its_user_row, 60, NULL),
		TFIX_CASE(test_deletes_keep_messages_consistent, 60, NULL),
		TFIX_CASE(test_cleanup_removes_unused_users, 60, NULL),
		TFIX_CASE(test_cleanup_timer_removes_unused_users, 60,
			  setup_timer),
	};

	return tfix_main("retention", cases, TMAIN_N(cases), NULL);
}
