/*
 * Joins and leaves heard in one delivery pass are one notice. To land many
 * in one pass deterministically, the test commits them in one transaction
 * of its own (the server's own bd_join()): PostgreSQL hands all of a
 * transaction's notifications over at its commit.
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
#include "../helpers/tsse.h"

/* Joins n users u<from>.. (two digits) to room in the current
 * transaction. */
static void join_many(int from, int n, const char *room)
{
	char a[16], b[16];

	snprintf(a, sizeof(a), "%d", from);
	snprintf(b, sizeof(b), "%d", from + n - 1);
	PQclear(tdb_query(&T_DB,
			  "SELECT bd_join(NULL, 'u' || lpad(i::text, 2, '0'), "
			  "$3) FROM generate_series($1::int, $2::int) i",
			  a, b, room, NULL));
}

/* bd_join() of nick (the user of that nickname, made if missing) to room,
 * in the current transaction. */
static void join_named(const char *nick, const char *room)
{
	PQclear(tdb_query(&T_DB, "SELECT bd_join(NULL, $1, $2)", nick, room,
			  NULL));
}

/* bd_leave() of nick from room, in the current transaction. */
static void leave_named(const char *nick, const char *room)
{
	PQclear(tdb_query(&T_DB,
			  "SELECT bd_leave(u.id, u.nickname, r.id) FROM "
			  "users u, rooms r WHERE lower(u.nickname) = "
			  "lower($1) AND r.name = $2",
			  nick, room, NULL));
}

/* Removes every membership of room but its creator's, without a notice:
 * the members' next bd_join() notifies again while they stay members
 * here (as their own join's outcome arrives before its notification). */
static void rejoin_members(const char *room)
{
	PQclear(tdb_query(&T_DB,
			  "DELETE FROM room_members m USING rooms r WHERE "
			  "r.id = m.room_id AND r.name = $1 AND m.user_id "
			  "<> r.created_by",
			  room, NULL));
}

/* One message by nick in room through bd_post(), in the current
 * transaction. */
static void post_one(const char *nick, const char *room, const char *text)
{
	char json[256];

	snprintf(json, sizeof(json), "[{\"r\":%lld,\"n\":\"%s\",\"c\":\"%s\"}]",
		 tdb_int(&T_DB, "SELECT id FROM rooms WHERE name = $1", room,
			 NULL),
		 nick, text);
	PQclear(tdb_query(&T_DB, "SELECT * FROM bd_post($1::jsonb)", json,
			  NULL));
}

/* The stream's next system event (comments skipped); its data. */
static const char *next_system(struct tsse *s)
{
	for (;;) {
		enum tsse_rc rc = tsse_read(s, trun_ms(T_WAIT));

		ck_assert_msg(rc == TSSE_BLOCK, "no system event");
		if (s->ev.event && !strcmp(s->ev.event, "system"))
			return s->ev.data;
		ck_assert_msg(!s->ev.event, "unexpected event: %s", s->ev.raw);
	}
}

/* alice (TCP) creates general; webby joins it over the HTTP API (alice
 * sees it) and opens a stream of it, which is returned. */
static struct tsse *general_with_stream(struct tcl **alice)
{
	char sid[THTTP_SID_LEN + 1];

	*alice = tcl_user(tfix_tcp_port(), "alice");
	do_create(*alice, "general");
	api_user(tfix_http_port(), "webby", tfix_http_port(), "/join general",
		 sid);
	expect_next(*alice, "[system] webby joined general");
	return sse_open_room(tfix_http_port(), "webby", "general", sid, NULL);
}

/*
 * 50 joins in one transaction: line members get one line naming two and
 * counting the others, streams one system event with the list and the
 * count. A lone join reads as ever.
 */
START_TEST(test_fifty_joins_one_notice)
{
	struct tcl *alice;
	struct tsse *s = general_with_stream(&alice);
	const char *data;

	PQclear(tdb_query(&T_DB, "BEGIN", NULL));
	join_many(0, 50, "general");
	PQclear(tdb_query(&T_DB, "COMMIT", NULL));
	expect_next(alice, "[system] u00, u01 and 48 others joined general");
	data = next_system(s);
	ck_assert_msg(strstr(data, "\"text\":\"u00, u01 and 48 others joined general\"") &&
			      strstr(data, "\"users\":[\"u00\",\"u01\",\"u02\"") &&
			      strstr(data, "\"u49\"],\"count\":50}"),
		      "%s", data);
	/* One alone. */
	join_many(50, 1, "general");
	expect_next(alice, "[system] u50 joined general");
	ck_assert_str_eq(next_system(s),
			 "{\"room\":\"general\",\"text\":\"u50 joined general\"}");
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM room_members m JOIN "
				 "rooms r ON r.id = m.room_id WHERE r.name = "
				 "'general'",
				 NULL),
			 53);
}
END_TEST

/*
 * One transaction: two joins, a message, two more joins. The message
 * stays between the two notices, over TCP and SSE.
 */
START_TEST(test_message_between_join_groups_keeps_its_place)
{
	struct tcl *alice;
	struct tsse *s = general_with_stream(&alice);
	struct tsse_msg m;

	PQclear(tdb_query(&T_DB, "BEGIN", NULL));
	join_many(0, 2, "general");
	post_one("alice", "general", "between");
	join_many(2, 3, "general");
	PQclear(tdb_query(&T_DB, "COMMIT", NULL));
	expect_next(alice, "[system] u00 and u01 joined general");
	expect_next(alice, "[general] alice: between");
	expect_next(alice, "[system] u02, u03, u04 joined general");
	ck_assert_str_eq(next_system(s),
			 "{\"room\":\"general\",\"text\":\"u00 and u01 joined general\","
			 "\"users\":[\"u00\",\"u01\"],\"count\":2}");
	sse_expect_msg(s, &m);
	ck_assert_str_eq(m.content, "between");
	ck_assert_str_eq(next_system(s),
			 "{\"room\":\"general\",\"text\":\"u02, u03, u04 joined general\","
			 "\"users\":[\"u02\",\"u03\",\"u04\"],\"count\":3}");
}
END_TEST

/*
 * bob's own /join over TCP, alone: the line alice gets and the event
 * webby's stream gets read as ever; bob gets no notice of himself.
 */
START_TEST(test_lone_join_reads_as_ever)
{
	struct tcl *alice, *bob;
	struct tsse *s = general_with_stream(&alice);

	bob = tcl_user(tfix_tcp_port(), "bob");
	do_join(bob, "general");
	expect_next(alice, "[system] bob joined general");
	ck_assert_str_eq(
		next_system(s),
		"{\"room\":\"general\",\"text\":\"bob joined general\"}");
	/* bob's next line is alice's message: no notice of himself. */
	do_say(alice, "general", "hi");
	expect_next(bob, "[general] alice: hi");
}
END_TEST

/*
 * Rejoins (memberships removed without a notice, then bd_join()) of
 * people connected here, landing with others in one read: those named get
 * the line (or event) of the others; everyone else the whole one. Their
 * own join's outcome came first, as when a crowd joins through this
 * instance and its batch commits with their notifications.
 */
START_TEST(test_joiners_do_not_see_themselves)
{
	char sid[THTTP_SID_LEN + 1];
	struct tcl *alice = tcl_user(tfix_tcp_port(), "alice");
	struct tcl *bob = tcl_user(tfix_tcp_port(), "bob");
	struct tsse *s;
	const char *data;

	do_create(alice, "general");
	do_join_seen(bob, "general", alice);
	api_user(tfix_http_port(), "webby", tfix_http_port(), "/join general",
		 sid);
	expect_next(alice, "[system] webby joined general");
	expect_next(bob, "[system] webby joined general");
	s = sse_open_room(tfix_http_port(), "webby", "general", sid, NULL);
	PQclear(tdb_query(&T_DB, "BEGIN", NULL));
	rejoin_members("general");
	join_named("bob", "general");
	join_named("carol", "general");
	join_named("webby", "general");
	PQclear(tdb_query(&T_DB, "COMMIT", NULL));
	expect_next(alice, "[system] bob, carol, webby joined general");
	expect_next(bob, "[system] carol and webby joined general");
	ck_assert_str_eq(
		next_system(s),
		"{\"room\":\"general\",\"text\":\"bob and carol joined general\","
		"\"users\":[\"bob\",\"carol\"],\"count\":2}");
	/* 50: bob first, webby last. */
	PQclear(tdb_query(&T_DB, "BEGIN", NULL));
	rejoin_members("general");
	join_named("bob", "general");
	join_many(0, 48, "general");
	join_named("webby", "general");
	PQclear(tdb_query(&T_DB, "COMMIT", NULL));
	expect_next(alice, "[system] bob, u00 and 48 others joined general");
	expect_next(bob, "[system] u00, u01 and 47 others joined general");
	data = next_system(s);
	ck_assert_msg(
		strstr(data,
		       "{\"room\":\"general\",\"text\":\"bob, u00 and 47 others joined general\","
		       "\"users\":[\"bob\",\"u00\",\"u01\",") &&
			strstr(data, ",\"u47\"],\"count\":49}") &&
			!strstr(data, "webby"),
		"%s", data);
}
END_TEST

/*
 * Leaves group too, and keep their place: two leave, a message, one
 * leaves, in one transaction; over TCP and SSE.
 */
START_TEST(test_leaves_grouped_around_a_message)
{
	struct tcl *alice;
	struct tsse *s = general_with_stream(&alice);
	struct tsse_msg m;

	join_many(0, 3, "general");
	expect_next(alice, "[system] u00, u01, u02 joined general");
	ck_assert_ptr_nonnull(strstr(next_system(s), "\"count\":3}"));
	PQclear(tdb_query(&T_DB, "BEGIN", NULL));
	leave_named("u00", "general");
	leave_named("u01", "general");
	post_one("alice", "general", "between");
	leave_named("u02", "general");
	PQclear(tdb_query(&T_DB, "COMMIT", NULL));
	expect_next(alice, "[system] u00 and u01 left general");
	expect_next(alice, "[general] alice: between");
	expect_next(alice, "[system] u02 left general");
	ck_assert_str_eq(
		next_system(s),
		"{\"room\":\"general\",\"text\":\"u00 and u01 left general\","
		"\"users\":[\"u00\",\"u01\"],\"count\":2}");
	sse_expect_msg(s, &m);
	ck_assert_str_eq(m.content, "between");
	ck_assert_str_eq(
		next_system(s),
		"{\"room\":\"general\",\"text\":\"u02 left general\"}");
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_fifty_joins_one_notice, 60, NULL),
		TFIX_CASE(test_message_between_join_groups_keeps_its_place, 60,
			  NULL),
		TFIX_CASE(test_lone_join_reads_as_ever, 60, NULL),
		TFIX_CASE(test_joiners_do_not_see_themselves, 60, NULL),
		TFIX_CASE(test_leaves_grouped_around_a_message, 60, NULL),
	};

	return tfix_main("coalesce", cases, TMAIN_N(cases), NULL);
}
