/*
 * Messages end to end: what the messages table holds, history across a
 * server restart, fan-out order under concurrency, and the slow-consumer
 * limit (other clients unaffected, the slow one dropped and logged).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/tchat.h"
#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/trun.h"

#define PORT tfix_tcp_port()

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

	res = tchat_rows("general");
	ck_assert_int_eq(PQntuples(res), 3);
	ck_assert_str_eq(PQgetvalue(res, 0, TCHAT_LINE), "alice: one");
	ck_assert_str_eq(PQgetvalue(res, 1, TCHAT_LINE), "bob: two");
	ck_assert_str_eq(PQgetvalue(res, 2, TCHAT_LINE),
			 "alice: three \xc3\xa9");
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(atoi(PQgetvalue(res, i, TCHAT_SEQ)), i + 1);
	PQclear(res);
	/* The room's counter follows its messages. */
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT last_seq FROM rooms WHERE name = 'general'",
			NULL),
		3);
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

	g = tcl_guest(PORT, "guest");
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
}
END_TEST

START_TEST(test_restart_tells_clients)
{
	struct tcl *alice = tcl_user(PORT, "alice");

	do_create(alice, "general");
	tsrv_restart(&T_SRV);
	expect_next(alice, "[system] server restarting, please reconnect");
	expect_eof(alice);
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
	struct tcl *c[LOAD_CLIENTS];
	const int total = LOAD_CLIENTS * LOAD_MSGS;
	int next[LOAD_CLIENTS] = { 0 };
	char nick[32];
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
	for (int i = 0; i < LOAD_CLIENTS; i++)
		tchat_send_burst(c[i], LOAD_MSGS, "msg %d from user%02d", i);
	/* Every client got the table's messages, in its order. */
	for (int i = 0; i < LOAD_CLIENTS; i++)
		expect_received(c[i], "load", total);
	/* Per sender: the order it sent in, each line exactly once. */
	res = tchat_rows("load");
	for (int n = 0; n < total; n++) {
		const char *got = PQgetvalue(res, n, TCHAT_LINE);
		int who, k;
		char want[64];

		ck_assert_msg(sscanf(got, "user%d: msg %d", &who, &k) == 2 &&
				      who >= 0 && who < LOAD_CLIENTS,
			      "odd message \"%s\"", got);
		snprintf(want, sizeof(want), "user%02d: msg %d from user%02d",
			 who, next[who], who);
		ck_assert_msg(
			!strcmp(got, want),
			"message %d is \"%s\", expected \"%s\" next from user%02d",
			n + 1, got, want, who);
		next[who]++;
	}
	PQclear(res);
}
END_TEST

START_TEST(test_slow_consumer_disconnected)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	/* A small receive buffer, so the kernel absorbs little. */
	struct tcl *slow = tcl_connect_opt(PORT, "slowpoke", 4096);
	struct tchat_flood f = { .from = alice, .tcp = &bob, .ntcp = 1 };
	char *line;

	read_welcome(slow);
	do_nick(slow, "slowpoke");
	do_create(alice, "flood");
	do_join_seen(slow, "flood", alice);
	do_join_seen(bob, "flood", alice);
	/* From here on slowpoke reads nothing until the end; alice and bob
	 * get everything, before and after it is dropped. */
	line = tchat_flood_until_slow(&f, 65536);
	ck_assert_msg(strstr(line, "slowpoke"),
		      "the slow-consumer log line does not name slowpoke: %s",
		      line);
	free(line);
	/* slowpoke's socket ends once drained: it was disconnected. */
	expect_eof_after_lines(slow, trun_ms(15000));
	wait_online(bob, 2);
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
