/*
 * Database faults: the server's connections killed while clients chat
 * (nothing lost or duplicated), and a database that stays away (contract
 * errors, /health 503, recovery).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/tchat.h"
#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"

#define PORT tfix_tcp_port()

#define SEND_ERR "[system] error: message not sent (database unavailable)"
/* What the server says about a message whose statement was in flight when
 * its connection died: it cannot know whether the commit happened (if it
 * did, the message is delivered after the reconnect). */
#define LOST_ERR \
	"[system] error: database connection lost; your message may not have been sent"
#define CMD_ERR "[system] error: database unavailable, try again"
#define RECOVER_WAIT 30000 /* ms for the server to get its DB back */

/* How many connections the server has to the test's database. */
static int server_conns(void)
{
	return (int)tdb_int(&T_DB,
			    "SELECT count(*) FROM pg_stat_activity "
			    "WHERE datname = $1 AND application_name IN "
			    "('babydiscord-listen', 'babydiscord-query')",
			    T_DB.name, NULL);
}

/*
 * Sends /rooms until the answer is CMD_ERR. Answers from before the
 * server noticed (a room list, or a command lost in flight) are skipped.
 */
static void wait_command_refused(struct tcl *c)
{
	int64_t deadline = trun_now_ms() + trun_ms(RECOVER_WAIT);

	for (;;) {
		int n;

		ck_assert_msg(trun_now_ms() < deadline,
			      "/rooms never answered \"%s\"", CMD_ERR);
		tcl_send(c, "/rooms");
		expect_prefix(c, "[system] ");
		if (!strcmp(c->line, CMD_ERR))
			return;
		if (sscanf(c->line, "[system] Rooms (%d):", &n) == 1)
			while (n--)
				expect_prefix(c, "[system]   ");
		else
			ck_assert_msg(
				!strncmp(
					c->line,
					"[system] error: database connection lost",
					40),
				"/rooms: unexpected \"%s\"", c->line);
	}
}

/* The message lines one client received, in order, and its refusals. */
struct coll {
	char **lines; /* "nick: text" */
	int n, cap;
	struct tcl_refusals ref; /* SEND_ERR and LOST_ERR lines */
};

/* How many of its lines the client heard refused. */
static int refused(const struct coll *k)
{
	return k->ref.not_sent + k->ref.lost;
}

static void coll_add(struct coll *k, const char *line)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 256;
		k->lines = realloc(k->lines, (size_t)k->cap * sizeof(char *));
		ck_assert(k->lines);
	}
	k->lines[k->n++] = strdup(line);
}

static bool coll_has(const struct coll *k, const char *line)
{
	for (int i = 0; i < k->n; i++)
		if (!strcmp(k->lines[i], line))
			return true;
	return false;
}

static void coll_free(struct coll *k)
{
	for (int i = 0; i < k->n; i++)
		free(k->lines[i]);
	free(k->lines);
}

/*
 * Reads c, collecting "[chat] " lines and counting SEND_ERR lines, until
 * the message want ("nick: text") has been received: true. With
 * stop_on_error, an error line ends it first: false.
 */
static bool pump(struct tcl *c, struct coll *k, const char *want,
		 bool stop_on_error)
{
	int64_t deadline = trun_now_ms() + trun_ms(RECOVER_WAIT);

	while (!coll_has(k, want)) {
		enum tcl_rc rc = tcl_read(c, trun_left_ms(deadline));

		ck_assert_msg(rc == TCL_LINE,
			      "%s: waiting for \"%s\": %s after %d messages",
			      c->label, want,
			      rc == TCL_EOF ? "connection closed" : "timeout",
			      k->n);
		if (!strncmp(c->line, "[chat] ", 7)) {
			ck_assert_msg(!coll_has(k, c->line + 7),
				      "%s: got \"%s\" twice", c->label,
				      c->line);
			coll_add(k, c->line + 7);
			continue;
		}
		ck_assert_msg(tcl_count_refusal(&k->ref, c->line),
			      "%s: unexpected \"%s\"", c->label, c->line);
		if (stop_on_error)
			return false;
	}
	return true;
}

/* Sends lines "<tag>-NNN" from..to-1 in one write. */
static void burst(struct tcl *c, const char *tag, int from, int to)
{
	char *buf = malloc((size_t)(to - from) * 32 + 1);
	size_t len = 0;

	ck_assert(buf);
	for (int i = from; i < to; i++)
		len += (size_t)sprintf(buf + len, "%s-%03d\n", tag, i);
	tcl_send_raw(c, buf, len);
	free(buf);
}

/* How many of the collected messages are from nick. */
static int own_count(const struct coll *k, const char *nick)
{
	size_t nl = strlen(nick);
	int n = 0;

	for (int i = 0; i < k->n; i++)
		n += !strncmp(k->lines[i], nick, nl) && k->lines[i][nl] == ':';
	return n;
}

/*
 * Sends "<tag>-final-K" until one is delivered back to c; then every line
 * c sent before has been either stored or refused. *sent counts c's lines.
 * Every line gets one answer (its echo or a refusal), so once the answers
 * cover all lines sent, a refusal was the final's own.
 */
static void settle(struct tcl *c, struct coll *k, const char *tag, int *sent,
		   char *final, size_t len)
{
	int64_t deadline = trun_now_ms() + trun_ms(RECOVER_WAIT);

	for (int try = 0;; try++) {
		char want[128];
		struct thttp_resp r;

		ck_assert_msg(trun_now_ms() < deadline,
			      "%s: no message delivered within %d ms", c->label,
			      trun_ms(RECOVER_WAIT));
		snprintf(final, len, "%s-final-%d", tag, try);
		tcl_send(c, "%s", final);
		(*sent)++;
		snprintf(want, sizeof(want), "%s: %s", c->nick, final);
		while (!pump(c, k, want, true))
			if (own_count(k, c->nick) + refused(k) >= *sent)
				break;
		if (coll_has(k, want)) {
			snprintf(final, len, "%s", want);
			return;
		}
		/* Refused: the database is still away. Wait for it. */
		thttp_wait_status(T_SRV.http_port, "/health", 200, &r,
				  trun_ms(RECOVER_WAIT));
	}
}

/*
 * Kills the server connections named by pattern while two clients send,
 * keeps sending while it reconnects, then compares what three members
 * received with the table: same messages, same order, none twice, and
 * every line is either stored or refused to its sender, not both (unless
 * refused as lost: its fate was unknown). listen_only:
 * only the LISTEN connection dies, so no message may be refused at all.
 * hold: our session holds the room's row lock, so the server's bd_post()
 * is certainly in flight (waiting for the lock) when its connection is
 * killed, and its senders must hear that its fate is unknown; it did not
 * commit, so no line may be both stored and refused.
 */
static void kill_scenario(const char *pattern, int expect_killed,
			  bool listen_only, bool hold)

{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *carol = tcl_user(PORT, "carol");
	struct tcl *all[3] = { alice, bob, carol };
	struct coll k[3] = { { 0 }, { 0 }, { 0 } };
	char fin_a[128], fin_b[128];
	int sent_a = 0, sent_b = 0, killed;

	do_create(alice, "chat");
	do_join_seen(bob, "chat", alice);
	do_join_seen(carol, "chat", alice, bob);
	ck_assert_int_eq(server_conns(), 2);

	/* Traffic flows (the first message arrived), more is in flight:
	 * kill, and keep sending while the server reconnects. */
	if (hold) {
		tdb_hold(&T_DB,
			 "SELECT 1 FROM rooms WHERE name = 'chat' FOR UPDATE");
	}
	burst(alice, "a", 0, 40);
	burst(bob, "b", 0, 40);
	if (hold)
		tdb_wait_server_blocked(&T_DB);
	else
		pump(carol, &k[2], "alice: a-000", false);
	killed = tdb_kill_server_conns(&T_DB, pattern);
	if (hold)
		tdb_release(&T_DB);
	ck_assert_msg(killed == expect_killed,
		      "terminated %d server connections (%s), expected %d",
		      killed, pattern, expect_killed);
	burst(alice, "a", 40, 80);
	burst(bob, "b", 40, 80);
	sent_a = sent_b = 80;

	settle(alice, &k[0], "a", &sent_a, fin_a, sizeof(fin_a));
	settle(bob, &k[1], "b", &sent_b, fin_b, sizeof(fin_b));
	/* Everyone has everything up to both final messages. */
	for (int i = 0; i < 3; i++) {
		pump(all[i], &k[i], fin_a, false);
		pump(all[i], &k[i], fin_b, false);
	}

	for (int i = 0; i < 3; i++)
		expect_table(all[i]->label, "chat", k[i].lines, k[i].n);
	/* Each line stored XOR refused to its sender: none dropped, none
	 * both (the table matched what everyone received, once, above). */
	{
		int stored_a = tchat_count("chat", "alice");
		int stored_b = tchat_count("chat", "bob");

		trun_note(
			"alice sent %d, stored %d, refused %d (%d as lost); bob sent %d, stored %d, refused %d (%d as lost)",
			sent_a, stored_a, refused(&k[0]), k[0].ref.lost,
			sent_b, stored_b, refused(&k[1]), k[1].ref.lost);
		expect_accounted("alice", sent_a, stored_a, &k[0].ref, hold);
		expect_accounted("bob", sent_b, stored_b, &k[1].ref, hold);
	}
	if (listen_only)
		ck_assert_msg(!refused(&k[0]) && !refused(&k[1]),
			      "only the LISTEN connection died, yet %d message(s) were refused",
			      refused(&k[0]) + refused(&k[1]));
	if (hold)
		ck_assert_msg(k[0].ref.lost + k[1].ref.lost > 0,
			      "messages in flight at the kill were not answered with \"%s\"",
			      LOST_ERR);
	/* Both connections are back. */
	ck_assert_int_eq(server_conns(), 2);
	for (int i = 0; i < 3; i++) {
		coll_free(&k[i]);
		tcl_free(all[i]);
	}
}

START_TEST(test_db_connection_kill_nothing_lost)
{
	kill_scenario("babydiscord%", 2, false, false);
}
END_TEST

/* A message whose statement dies with the connection: the server cannot
 * know whether it committed, says so, and nothing is lost or doubled. */
START_TEST(test_db_kill_in_flight_message_refused)
{
	kill_scenario("babydiscord%", 2, false, true);
}
END_TEST

/* Notifications sent while LISTEN is away must come from catch-up. */
START_TEST(test_db_listen_kill_nothing_lost)
{
	kill_scenario("babydiscord-listen", 1, true, false);
}
END_TEST

/*
 * A message committed while the LISTEN connection is down can reach the
 * room only through the catch-up after the reconnect. The connection is
 * terminated while the database takes no new connections, so the server's
 * reconnect is refused (logged) until the message is committed; the query
 * connection and ours stay. Then the log shows the catch-up read that
 * message, and each member gets it exactly once, in its place.
 */
START_TEST(test_db_listen_down_message_caught_up)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	char want[128], *room, *uid, *line, batch[256];

	do_create(alice, "chat");
	do_join_seen(bob, "chat", alice);
	do_say_seen(alice, "chat", "before", bob);
	room = tdb_scalar(&T_DB, "SELECT id FROM rooms WHERE name = 'chat'",
			  NULL);
	uid = tdb_scalar(&T_DB, "SELECT id FROM users WHERE nickname = 'alice'",
			 NULL);

	tdb_allow_connections(&T_DB, false);
	ck_assert_int_eq(tdb_kill_server_conns(&T_DB, "babydiscord-listen"), 1);
	line = tsrv_wait_log(&T_SRV, " db_lost conn=babydiscord-listen ",
			     trun_ms(RECOVER_WAIT));
	ck_assert_msg(line, "the server never noticed; log %s", T_SRV.log);
	free(line);
	/* Its first reconnect was refused: it is down, and stays down. */
	line = tsrv_wait_log(&T_SRV,
			     " db_connect_failed conn=babydiscord-listen ",
			     trun_ms(RECOVER_WAIT));
	ck_assert_msg(line, "no refused reconnect; log %s", T_SRV.log);
	free(line);
	snprintf(batch, sizeof(batch),
		 "[{\"r\": %s, \"u\": %s, \"n\": \"alice\", \"c\": \"while away\"}]",
		 room, uid);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT seq FROM bd_post($1::jsonb)", batch,
				 NULL),
			 2);
	tdb_allow_connections(&T_DB, true);

	snprintf(want, sizeof(want),
		 " catch_up room_id=%s messages=1 after_seq=1", room);
	line = tsrv_wait_log(&T_SRV, want, trun_ms(RECOVER_WAIT));
	ck_assert_msg(line, "no \"%s\" in log %s", want, T_SRV.log);
	free(line);
	expect_next(alice, "[chat] alice: while away");
	expect_next(bob, "[chat] alice: while away");
	/* Once: the next line after it is the next message. */
	do_say_seen(alice, "chat", "after", bob);
	expect_stored(3);
	free(room);
	free(uid);
}
END_TEST

START_TEST(test_db_query_kill_nothing_lost)
{
	kill_scenario("babydiscord-query", 1, false, false);
}
END_TEST

START_TEST(test_db_unavailable_errors_and_recovery)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct thttp_resp r;

	do_create(alice, "chat");
	do_join_seen(bob, "chat", alice);
	thttp_get(T_SRV.http_port, "/health", &r);
	ck_assert_int_eq(r.status, 200);

	/* Our own session stays; the server cannot get back in. */
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT 1", NULL), 1);
	tdb_allow_connections(&T_DB, false);
	ck_assert_int_eq(tdb_kill_server_conns(&T_DB, "babydiscord%"), 2);
	thttp_wait_status(T_SRV.http_port, "/health", 503, &r,
			  trun_ms(RECOVER_WAIT));
	ck_assert_msg(thttp_json_has(r.body, "status", "unhealthy") &&
			      thttp_json_has(r.body, "db", "disconnected"),
		      "503 body: %s", r.body);
	/* /health may turn 503 when the first of the two connections is
	 * found dead; wait until commands see the query connection gone. */
	wait_command_refused(alice);

	expect_reply(alice, "lost in space", SEND_ERR);
	expect_reply(alice, "/create other", CMD_ERR);
	/* Nothing reached bob: his /list answer comes first (presence is
	 * in the database, so it is refused too). */
	expect_reply(bob, "/list", CMD_ERR);

	tdb_allow_connections(&T_DB, true);
	thttp_wait_status(T_SRV.http_port, "/health", 200, &r,
			  trun_ms(RECOVER_WAIT));
	ck_assert_msg(thttp_json_has(r.body, "db", "connected"), "200 body: %s",
		      r.body);
	expect_reply(alice, "back again", "[chat] alice: back again");
	expect_line(bob, "[chat] alice: back again");
	expect_stored(1);
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT count(*) FROM rooms WHERE name = 'other'",
			NULL),
		0);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_db_connection_kill_nothing_lost, 120, NULL),
		TFIX_CASE(test_db_kill_in_flight_message_refused, 120, NULL),
		TFIX_CASE(test_db_listen_kill_nothing_lost, 120, NULL),
		TFIX_CASE(test_db_listen_down_message_caught_up, 120, NULL),
		TFIX_CASE(test_db_query_kill_nothing_lost, 120, NULL),
		TFIX_CASE(test_db_unavailable_errors_and_recovery, 120, NULL),
	};

	return tfix_main("faults", cases, TMAIN_N(cases), NULL);
}
