/*
 * Limits of the line protocol against the real server on a fresh database
 * (tests/helpers: tfix, tcl): the reserved room name, /rooms pages, and
 * the max_rooms_per_user and max_rooms caps from the config.
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
#define TIMEOUT 30 /* seconds per test */

#define NOT_IN_ROOM \
	"[system] error: you are not in a room; /join <room> or /create <room> first"

/* A user named error in a room named system could post
 * "[system] error: ...": the name is refused, here and by the database. */
START_TEST(test_create_system_refused)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	PGresult *res;

	expect_reply(alice, "/create system",
		     "[system] error: room name system is reserved");
	expect_reply(alice, "/join system",
		     "[system] error: room name system is reserved");
	expect_reply(alice, "hello?", NOT_IN_ROOM);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM rooms", NULL),
			 0);
	/* The database keeps the name free too (migration 012). */
	res = PQexec(T_DB.conn,
		     "INSERT INTO rooms (name, created_by) "
		     "SELECT 'system', id FROM users LIMIT 1");
	ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR,
		      "a room named system was stored");
	ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23514");
	PQclear(res);
}
END_TEST

/* Reads "[system]   rNNN: ..." lines for rooms first..last. */
static void expect_room_lines(struct tcl *c, int first, int last)
{
	for (int i = first; i <= last; i++) {
		char want[64];

		snprintf(want, sizeof(want),
			 "[system]   r%03d: 0 members, 0 online", i);
		expect_next(c, want);
	}
}

START_TEST(test_rooms_paginated_with_120_rooms)
{
	struct tcl *alice = tcl_user(PORT, "alice");

	/* Made by SQL: 120 /create would cap alice at 100 rooms. */
	PQclear(tdb_query(&T_DB,
			  "INSERT INTO users (nickname) VALUES ('maker')",
			  NULL));
	PQclear(tdb_query(&T_DB,
			  "INSERT INTO rooms (name, created_by) "
			  "SELECT format('r%s', lpad(i::text, 3, '0')), u.id "
			  "FROM generate_series(119, 0, -1) i, users u "
			  "WHERE u.nickname = 'maker'",
			  NULL));
	expect_reply(alice, "/rooms", "[system] Rooms 1-50 of 120:");
	expect_room_lines(alice, 0, 49);
	expect_next(alice, "[system] page 1 of 3; /rooms 2 for more");
	expect_reply(alice, "/rooms 2", "[system] Rooms 51-100 of 120:");
	expect_room_lines(alice, 50, 99);
	expect_next(alice, "[system] page 2 of 3; /rooms 3 for more");
	expect_reply(alice, "/rooms 3", "[system] Rooms 101-120 of 120:");
	expect_room_lines(alice, 100, 119);
	expect_next(alice, "[system] page 3 of 3");
	expect_reply(alice, "/rooms 4",
		     "[system] error: no page 4 (there are 3)");
	expect_reply(alice, "/rooms first",
		     "[system] error: usage: /rooms [page]");
}
END_TEST

static void setup_per_user_3(void)
{
	struct tsrv_opts o = { .extra_json = "\"max_rooms_per_user\": 3" };

	tfix_use(&o);
}

START_TEST(test_max_rooms_per_user_enforced)
{
	static const char full[] =
		"[system] error: you are in too many rooms (max 3)";
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");

	do_create(bob, "b1");
	do_create(alice, "a1");
	do_create(alice, "a2");
	do_create(alice, "a3");
	expect_reply(alice, "/create a4", full);
	expect_reply(alice, "/join b1", full);
	/* Back to one of its own rooms: fine. */
	ck_assert_int_eq(do_join(alice, "a1"), 0);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM room_members m "
				 "JOIN users u ON u.id = m.user_id "
				 "WHERE u.nickname = 'alice'",
				 NULL),
			 3);
	/* Known again after a reconnect: /nick restores the memberships. */
	tcl_free(alice);
	alice = tcl_guest(PORT, "alice again");
	wait_online(alice, 2);
	expect_reply(alice, "/nick alice", "[system] You are now alice");
	expect_next(alice, "[system] You are a member of: a1, a2, a3");
	expect_reply(alice, "/join b1", full);
	/* One left: room for one more. */
	ck_assert_int_eq(do_join(alice, "a3"), 0);
	expect_reply(alice, "/leave", "[system] You left a3");
	ck_assert_int_eq(do_join(alice, "b1"), 0);
}
END_TEST

static void setup_max_rooms_2(void)
{
	struct tsrv_opts o = { .extra_json = "\"max_rooms\": 2" };

	tfix_use(&o);
}

START_TEST(test_max_rooms_enforced_by_database)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");

	do_create(alice, "a1");
	do_create(bob, "b1");
	expect_reply(alice, "/create a2",
		     "[system] error: too many rooms on this server (max 2)");
	/* A taken name says so, cap or not; joining is not capped. */
	expect_reply(alice, "/create b1",
		     "[system] error: room b1 already exists");
	ck_assert_int_eq(do_join_seen(alice, "b1", bob), 0);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM rooms", NULL),
			 2);
	/* A room deleted makes room for another. */
	PQclear(tdb_query(&T_DB, "DELETE FROM rooms WHERE name = 'a1'", NULL));
	do_create(bob, "b2");
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_create_system_refused, TIMEOUT, NULL),
		TFIX_CASE(test_rooms_paginated_with_120_rooms, TIMEOUT, NULL),
		TFIX_CASE(test_max_rooms_per_user_enforced, TIMEOUT,
			  setup_per_user_3),
		TFIX_CASE(test_max_rooms_enforced_by_database, TIMEOUT,
			  setup_max_rooms_2),
	};

	return tfix_main("limits", cases, TMAIN_N(cases), NULL);
}
