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

/*
 * 50 joins in one transaction: line members get one line naming two and
 * counting the others, streams one system event with the list and the
 * count. A lone join reads as ever.
 */
START_TEST(test_fifty_joins_one_notice)
{
	char sid[THTTP_SID_LEN + 1];
	struct tcl *alice = tcl_user(tfix_tcp_port(), "alice");
	struct tsse *s;
	const char *data;

	do_create(alice, "general");
	api_user(tfix_http_port(), "webby", tfix_http_port(), "/join general",
		 sid);
	expect_next(alice, "[system] webby joined general");
	s = sse_open_room(tfix_http_port(), "webby", "general", sid, NULL);
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
	char sid[THTTP_SID_LEN + 1], json[128];
	struct tcl *alice = tcl_user(tfix_tcp_port(), "alice");
	struct tsse *s;
	struct tsse_msg m;

	do_create(alice, "general");
	api_user(tfix_http_port(), "webby", tfix_http_port(), "/join general",
		 sid);
	expect_next(alice, "[system] webby joined general");
	s = sse_open_room(tfix_http_port(), "webby", "general", sid, NULL);
	snprintf(json, sizeof(json),
		 "[{\"r\":%lld,\"n\":\"alice\",\"c\":\"between\"}]",
		 tdb_int(&T_DB, "SELECT id FROM rooms WHERE name = 'general'",
			 NULL));
	PQclear(tdb_query(&T_DB, "BEGIN", NULL));
	join_many(0, 2, "general");
	PQclear(tdb_query(&T_DB, "SELECT * FROM bd_post($1::jsonb)", json,
			  NULL));
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

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_fifty_joins_one_notice, 60, NULL),
		TFIX_CASE(test_message_between_join_groups_keeps_its_place, 60,
			  NULL),
	};

	return tfix_main("coalesce", cases, TMAIN_N(cases), NULL);
}
