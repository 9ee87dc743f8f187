/*
 * Messages end to end: what the messages table holds, history across a
 * server restart, fan-out order under concurrency, and the slow-consumer
 * limit (other clients unaffected, the slow one dropped and logged).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/trun.h"

#define PORT tfix_tcp_port()

/* "nick: content" of every message of room, ordered by seq. */
static PGresult *room_rows(const char *room)
{
	return tdb_query(&T_DB,
			 "SELECT m.seq, m.nickname || ': ' || m.content "
			 "FROM messages m JOIN rooms r ON r.id = m.room_id "
			 "WHERE r.name = $1 ORDER BY m.seq",
			 room, NULL);
}

START_TEST(test_messages_stored_in_order)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	PGresult *res;

	do_create(alice, "general");
	do_join_seen(bob, "general", alice);
	do_say_seen(alice, "general", "one", bob);
	do_say_seen(bob, "general", "two", alice);
	do_say_seen(alice, "general", "three \xc3\xa9", bob);

	res = room_rows("general");
	ck_assert_int_eq(PQntuples(res), 3);
	ck_assert_str_eq(PQgetvalue(res, 0, 1), "alice: one");
	ck_assert_str_eq(PQgetvalue(res, 1, 1), "bob: two");
	ck_assert_str_eq(PQgetvalue(res, 2, 1), "alice: three \xc3\xa9");
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(atoi(PQgetvalue(res, i, 0)), i + 1);
	PQclear(res);
	/* The room's counter follows its messages. */
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT last_seq FROM rooms WHERE name = 'general'",
			NULL),
		3);
	tcl_free(alice);
	tcl_free(bob);
}
END_TEST

START_TEST(test_history_survives_restart)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *g, *back;
	char text[32], want[128];

	do_create(alice, "general");
	do_join_seen(bob, "general", alice);
	for (int i = 1; i <= 12; i++) {
		struct tcl *from = i % 2 ? alice : bob;
		struct tcl *to = i % 2 ? bob : alice;

		snprintf(text, sizeof(text), "m%02d", i);
		do_say(from, "general", text);
		snprintf(want, sizeof(want), "[general] %s: %s", from->nick,
			 text);
		expect_next(to, want);
	}
	tsrv_restart(&T_SRV);
	tcl_free(alice);
	tcl_free(bob);

	g = tcl_connect(PORT, "guest");
	read_welcome(g);
	expect_reply(g, "/rooms", "[system] Rooms (1):");
	expect_next(g, "[system]   general: 2 members, 0 online");
	expect_reply(g, "/join general",
		     "[system] You joined general (10 recent messages)");
	for (int i = 3; i <= 12; i++) {
		snprintf(want, sizeof(want), "[general] %s: m%02d",
			 i % 2 ? "alice" : "bob", i);
		expect_next(g, want);
	}

	/* A used nickname comes back with its memberships. */
	back = user_back(PORT, "alice", "general");
	tcl_send(g, "after restart");
	snprintf(want, sizeof(want), "[general] %s: after restart", g->nick);
	expect_line(g, want);
	expect_line(back, want);
	/* The sequence continued where it was. */
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT max(seq) FROM messages WHERE content = 'after restart'",
			NULL),
		13);
	tcl_free(g);
	tcl_free(back);
}
END_TEST

START_TEST(test_restart_tells_clients)
{
	struct tcl *alice = tcl_user(PORT, "alice");

	do_create(alice, "general");
	tsrv_restart(&T_SRV);
	expect_next(alice, "[system] server shutting down");
	expect_eof(alice);
	tcl_free(alice);
}
END_TEST

/*
 * 50 clients in one room each send 10 lines at once. Every member must
 * get all 500 messages, all in the same order, which is the table's seq
 * order; and one sender's lines keep the order it sent them in.
 */
#define LOAD_CLIENTS 50
#define LOAD_MSGS 10

START_TEST(test_fifty_clients_same_order)
{
	static char *got[LOAD_CLIENTS][LOAD_CLIENTS * LOAD_MSGS];
	struct tcl *c[LOAD_CLIENTS];
	const int total = LOAD_CLIENTS * LOAD_MSGS;
	char nick[32], buf[LOAD_MSGS * 64];
	PGresult *res;

	for (int i = 0; i < LOAD_CLIENTS; i++) {
		snprintf(nick, sizeof(nick), "user%02d", i);
		c[i] = tcl_user(PORT, nick);
		if (i == 0)
			do_create(c[i], "load");
		else
			ck_assert_int_eq(do_join(c[i], "load"), 0);
	}
	/* Each client's 10 lines go out in one write, all clients at once. */
	for (int i = 0; i < LOAD_CLIENTS; i++) {
		size_t len = 0;

		for (int k = 0; k < LOAD_MSGS; k++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"msg %d from user%02d\n", k, i);
		tcl_send_raw(c[i], buf, len);
	}
	for (int i = 0; i < LOAD_CLIENTS; i++) {
		int n = 0;

		while (n < total) {
			enum tcl_rc rc = tcl_read(c[i], trun_ms(15000));

			ck_assert_msg(
				rc == TCL_LINE,
				"user%02d: got %d of %d messages, then %s", i,
				n, total, rc == TCL_EOF ? "EOF" : "timeout");
			if (!strncmp(c[i]->line, "[system] ", 9)) {
				ck_assert_msg(strstr(c[i]->line,
						     " joined load"),
					      "user%02d: unexpected \"%s\"", i,
					      c[i]->line);
				continue;
			}
			ck_assert_msg(!strncmp(c[i]->line, "[load] ", 7),
				      "user%02d: unexpected \"%s\"", i,
				      c[i]->line);
			got[i][n++] = strdup(c[i]->line + 7);
		}
	}
	for (int i = 1; i < LOAD_CLIENTS; i++)
		for (int n = 0; n < total; n++)
			ck_assert_msg(
				!strcmp(got[i][n], got[0][n]),
				"message %d: user%02d got \"%s\", user00 got \"%s\"",
				n + 1, i, got[i][n], got[0][n]);
	/* Per sender: the order it sent in, each line exactly once. */
	{
		int next[LOAD_CLIENTS] = { 0 };

		for (int n = 0; n < total; n++) {
			int who, k;
			char want[64];

			ck_assert_msg(sscanf(got[0][n], "user%d: msg %d", &who,
					     &k) == 2 &&
					      who >= 0 && who < LOAD_CLIENTS,
				      "odd message \"%s\"", got[0][n]);
			snprintf(want, sizeof(want),
				 "user%02d: msg %d from user%02d", who,
				 next[who], who);
			ck_assert_msg(
				!strcmp(got[0][n], want),
				"message %d is \"%s\", expected \"%s\" next from user%02d",
				n + 1, got[0][n], want, who);
			next[who]++;
		}
	}
	res = room_rows("load");
	ck_assert_int_eq(PQntuples(res), total);
	for (int n = 0; n < total; n++)
		ck_assert_msg(
			!strcmp(PQgetvalue(res, n, 1), got[0][n]),
			"seq %s in the table is \"%s\", clients got \"%s\"",
			PQgetvalue(res, n, 0), PQgetvalue(res, n, 1),
			got[0][n]);
	PQclear(res);
	for (int i = 0; i < LOAD_CLIENTS; i++) {
		for (int n = 0; n < total; n++)
			free(got[i][n]);
		tcl_free(c[i]);
	}
}
END_TEST

/* Reads the next n flood messages of alice on c, in order. */
static void read_flood(struct tcl *c, int from, int n)
{
	char want[64];

	for (int i = from; i < from + n; i++) {
		enum tcl_rc rc = tcl_read(c, trun_ms(T_WAIT));

		snprintf(want, sizeof(want), "[flood] alice: %06d ", i);
		ck_assert_msg(rc == TCL_LINE,
			      "%s: flood message %d missing (%s)", c->label, i,
			      rc == TCL_EOF ? "connection closed" : "timeout");
		ck_assert_msg(!strncmp(c->line, want, strlen(want)) &&
				      strlen(c->line) ==
					      strlen(want) + TCL_FLOOD_BODY - 7,
			      "%s: expected flood message %d, got \"%.80s\"",
			      c->label, i, c->line);
	}
}

START_TEST(test_slow_consumer_disconnected)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	/* A small receive buffer, so the kernel absorbs little. */
	struct tcl *slow = tcl_connect_opt(PORT, "slowpoke", 4096);
	char *line = NULL;
	long sent = 0;
	int next = 0;

	read_welcome(slow);
	do_nick(slow, "slowpoke");
	do_create(alice, "flood");
	do_join_seen(slow, "flood", alice);
	do_join_seen(bob, "flood", alice);
	/* From here on slowpoke reads nothing until the end. */
	while (!(line = tsrv_log_find(&T_SRV, "slow consumer"))) {
		ck_assert_msg(
			sent < TCL_FLOOD_MAX,
			"no \"slow consumer\" in the log after %ld bytes of traffic",
			sent);
		tcl_send_flood(alice, next);
		/* Everyone else gets everything, in order. */
		read_flood(alice, next, TCL_FLOOD_BATCH);
		read_flood(bob, next, TCL_FLOOD_BATCH);
		next += TCL_FLOOD_BATCH;
		sent += (long)TCL_FLOOD_BATCH * TCL_FLOOD_BODY;
	}
	trun_note(
		"slow consumer dropped after %d messages (%ld bytes) to the room: %s",
		next, sent, line);
	ck_assert_msg(strstr(line, "slowpoke"),
		      "the slow-consumer log line does not name slowpoke: %s",
		      line);
	{
		/* Its figures: what was queued, and the line that did not
		 * fit any more. */
		const char *f = strstr(line, "slow consumer, ");
		size_t queued, more, limit;

		ck_assert_msg(f && sscanf(f, "slow consumer, %zu bytes queued, %zu more would pass the limit (%zu)",
					  &queued, &more, &limit) == 3,
			      "slow-consumer log line: %s", line);
		ck_assert_uint_eq(limit, 65536);
		ck_assert_uint_le(queued, limit);
		ck_assert_uint_gt(queued + more, limit);
	}
	free(line);
	/* Traffic goes on for the others. */
	tcl_send_flood(alice, next);
	read_flood(alice, next, TCL_FLOOD_BATCH);
	read_flood(bob, next, TCL_FLOOD_BATCH);
	next += TCL_FLOOD_BATCH;
	/* slowpoke's socket ends once drained: it was disconnected. */
	expect_eof_after_lines(slow, trun_ms(15000));
	wait_online(bob, 2);
	tcl_free(slow);
	tcl_free(alice);
	tcl_free(bob);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_messages_stored_in_order, 30, NULL),
		TFIX_CASE(test_history_survives_restart, 60, NULL),
		TFIX_CASE(test_restart_tells_clients, 60, NULL),
		TFIX_CASE(test_fifty_clients_same_order, 120, NULL),
		TFIX_CASE(test_slow_consumer_disconnected, 120,
			  tfix_setup_small_outq),
	};

	return tfix_main("messages", cases, TMAIN_N(cases), NULL);
}
