/*
 * Control operations batched into one bd_ctl() call (issue 11): commands,
 * presence rows and HTTP session requests that arrive while a statement
 * runs share one transaction, each with the outcome its own statement
 * would have had; one failing item fails alone. To put chosen items into
 * one batch, the query connection is stalled by a lock the test holds;
 * /health's db_queue.queued_user (each user request counts, batched or
 * not) tells when each item has arrived, so they queue in a known order.
 * Whether items shared a batch is read from the server's debug line
 * "db: control batch of N operation(s)" and from the rows they wrote (one
 * transaction: one xmin).
 */
#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"

#define PORT tfix_tcp_port()
#define HPORT tfix_http_port()

#define BATCH_LINE " db_ctl_batch operations="
#define STORM 1000 /* clients of the join storm */

/* User requests queued or running (each counts, batched or not). */
static long long queued_user(void)
{
	return health_num(HPORT, "db_queue", "queued_user");
}

/* Waits until exactly n user requests wait for the database. */
static void wait_queued(long long n)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
	long long have;

	while ((have = queued_user()) < n) {
		ck_assert_msg(trun_now_ms() < deadline,
			      "%lld user requests queued, not %lld", have, n);
		trun_pace();
	}
	ck_assert_msg(have == n, "%lld user requests queued, not %lld", have,
		      n);
}

/* Every statement on the rooms table waits until unlock(). */
static void lock_rooms(void)
{
	PQclear(tdb_query(&T_DB, "BEGIN", NULL));
	PQclear(tdb_query(&T_DB, "LOCK TABLE rooms IN ACCESS EXCLUSIVE MODE",
			  NULL));
}

static void unlock(void)
{
	PQclear(tdb_query(&T_DB, "ROLLBACK", NULL));
}

/* The control batches this server run logged: how many, their items in
 * all, and the largest. */
struct batches {
	long n, items, largest;
};

static void logged_batches(struct batches *b)
{
	size_t len;
	char *log = trun_slurp(T_SRV.log, &len);

	ck_assert_msg(log, "%s: no log", T_SRV.log);
	ck_assert((off_t)len >= T_SRV.run_start);
	memset(b, 0, sizeof(*b));
	for (char *p = strstr(log + T_SRV.run_start, BATCH_LINE); p;
	     p = strstr(p + 1, BATCH_LINE)) {
		long k = strtol(p + strlen(BATCH_LINE), NULL, 10);

		b->n++;
		b->items += k;
		if (k > b->largest)
			b->largest = k;
	}
	free(log);
}

/* Another instance's connected session holds nickname $1. */
#define ELSEWHERE_INSTANCE \
	"INSERT INTO instances (id) VALUES ('elsewhere') ON CONFLICT DO NOTHING"
#define ELSEWHERE_SESSION                                                \
	"INSERT INTO presence (instance_id, session_id, nickname) VALUES " \
	"('elsewhere', (SELECT count(*) + 1 FROM presence), $1)"

/* The same on a connection of the test's own, in its transaction. */
static void presence_elsewhere(PGconn *conn, const char *nick)
{
	const char *v[] = { nick };
	PGresult *r;

	r = PQexec(conn, ELSEWHERE_INSTANCE);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s",
		      PQresultErrorMessage(r));
	PQclear(r);
	r = PQexecParams(conn, ELSEWHERE_SESSION, 1, NULL, v, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s",
		      PQresultErrorMessage(r));
	PQclear(r);
}

static void setup_batch(void)
{
	/* Three rooms at most; the row of "elsewhere" (no heartbeat) must
	 * outlive the test. */
	struct tsrv_opts o = {
		.log_level = "debug",
		.extra_json = "\"max_rooms\": 3, \"presence_timeout_s\": 600",
	};

	tfix_use(&o);
}

/*
 * Nine TCP commands and two HTTP connects in one batch, four of them
 * refused each in its own way (a nickname held elsewhere, a room that
 * exists, a room over max_rooms, an unknown room; an HTTP connect with a
 * held nickname): each gets exactly what it gets alone, the others
 * succeed, in one transaction (their presence rows have one xmin) without
 * a subtransaction per item, and nothing of the refused ones is left.
 */
START_TEST(test_failing_items_fail_alone)
{
	static const char *const nick[] = { "n0", "n1", "n2", "c1", "c2",
					    "c3", "c4", "j1", "j2" };
	static const char *const cmd[] = {
		"/nick fresh0",	  "/nick taken",   "/nick fresh2",
		"/create new1",	  "/create exists", "/create new2",
		"/create new3",	  "/join nosuch",  "/join exists",
	};
	static const char *const want[] = {
		"[system] You are now fresh0",
		"[system] error: nickname taken is taken",
		"[system] You are now fresh2",
		"[system] Created room new1",
		"[system] error: room exists already exists",
		"[system] Created room new2",
		"[system] error: too many rooms on this server (max 3)",
		"[system] error: no such room: nosuch",
		"[system] You joined exists (0 recent messages)",
	};
	enum { N = sizeof(nick) / sizeof(nick[0]) };
	struct thttp_req conn_taken = { .method = "POST",
					.path = "/api/connect",
					.content_type = "application/json",
					.body = "{\"nickname\":\"TAKEN\"}" };
	struct thttp_req conn_fresh = { .method = "POST",
					.path = "/api/connect",
					.content_type = "application/json",
					.body = "{\"nickname\":\"apifresh\"}" };
	struct tcl *alice, *blocker, *u[N];
	struct thttp_resp r;
	struct batches b;
	int fd_taken = -1, fd_fresh = -1;
	long long q;
	char *s;

	conn_taken.body_len = strlen(conn_taken.body);
	conn_fresh.body_len = strlen(conn_fresh.body);
	alice = tcl_user(PORT, "alice");
	do_create(alice, "exists");
	PQclear(tdb_query(&T_DB, ELSEWHERE_INSTANCE, NULL));
	PQclear(tdb_query(&T_DB, ELSEWHERE_SESSION, "taken", NULL));
	blocker = tcl_user(PORT, "blocker");
	for (int i = 0; i < N; i++)
		u[i] = tcl_user(PORT, nick[i]);
	lock_rooms();
	tcl_send(blocker, "/rooms");	/* sent, waits for the lock */
	tdb_wait_server_blocked(&T_DB);
	wait_queued(q = 1);
	for (int i = 0; i < N; i++) {
		tcl_send(u[i], "%s", cmd[i]);
		wait_queued(++q);
		if (i == 1) {	/* the connects between them */
			fd_taken = thttp_start(HPORT, &conn_taken);
			wait_queued(++q);
			fd_fresh = thttp_start(HPORT, &conn_fresh);
			wait_queued(++q);
		}
	}
	unlock();
	for (int i = 0; i < N; i++) {
		expect_next(u[i], want[i]);
		if (!strncmp(want[i], "[system] Created room ", 22)) {
			char joined[80];

			snprintf(joined, sizeof(joined),
				 "[system] You joined %s (0 recent messages)",
				 want[i] + 22);
			expect_next(u[i], joined);
		}
	}
	thttp_finish(fd_taken, &r);
	expect_error(&r, 409);
	thttp_finish(fd_fresh, &r);
	expect_status(&r, 200);
	expect_prefix(blocker, "[system] Rooms (");
	expect_next(alice, "[system] j2 joined exists");
	/* One batch of all eleven. */
	logged_batches(&b);
	ck_assert_int_eq(b.largest, N + 2);
	/* One transaction, no item in a subtransaction of its own: the
	 * presence rows the successful items wrote have one xmin, which
	 * the refused items' rows do not have. */
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(DISTINCT xmin::text) FROM presence "
				 "WHERE nickname IN ('fresh0', 'fresh2', 'c1', "
				 "'c2', 'c3', 'j1', 'j2', 'apifresh')",
				 NULL),
			 1);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM presence WHERE xmin = "
				 "(SELECT xmin FROM presence "
				 "WHERE nickname = 'fresh0')",
				 NULL),
			 8);
	/* What each item left, and nothing of the refused ones. */
	s = tdb_scalar(&T_DB,
		       "SELECT string_agg(nickname || ':' || coalesce(room, '-'), "
		       "',' ORDER BY nickname) FROM presence",
		       NULL);
	ck_assert_str_eq(s, "alice:exists,apifresh:-,blocker:-,c1:new1,c2:-,"
			    "c3:new2,c4:-,fresh0:-,fresh2:-,j1:-,j2:exists,"
			    "n1:-,taken:-");
	free(s);
	s = tdb_scalar(&T_DB,
		       "SELECT string_agg(name, ',' ORDER BY name) FROM rooms",
		       NULL);
	ck_assert_str_eq(s, "exists,new1,new2");
	free(s);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM users "
				 "WHERE lower(nickname) = 'taken'",
				 NULL),
			 0);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM api_sessions",
				 NULL),
			 1);
	for (int i = 0; i < N; i++)
		tcl_free(u[i]);
	tcl_free(blocker);
	tcl_free(alice);
}
END_TEST

/*
 * A nickname taken by another transaction while the batch runs (another
 * instance's connect, committed while the batch waits on its row): the
 * batch's look-up could not see it, the rename raises, and the batch runs
 * again item by item: the rename is refused as taken, its neighbours in
 * the batch succeed, and nothing of the refused rename is left.
 */
START_TEST(test_race_reruns_items_alone)
{
	static const char *const nick[] = { "r0", "r1", "r2" };
	static const char *const cmd[] = { "/nick ok0", "/nick racy",
					   "/nick ok2" };
	static const char *const want[] = {
		"[system] You are now ok0",
		"[system] error: nickname racy is taken",
		"[system] You are now ok2",
	};
	enum { N = 3 };
	struct tcl *blocker, *u[N];
	struct batches b;
	PGconn *other;
	PGresult *res;

	blocker = tcl_user(PORT, "blocker");
	for (int i = 0; i < N; i++)
		u[i] = tcl_user(PORT, nick[i]);
	other = PQconnectdb(T_DB.url);
	ck_assert_msg(PQstatus(other) == CONNECTION_OK, "%s",
		      PQerrorMessage(other));
	res = PQexec(other, "BEGIN");
	PQclear(res);
	presence_elsewhere(other, "racy");	/* not committed yet */
	lock_rooms();
	tcl_send(blocker, "/rooms");
	tdb_wait_server_blocked(&T_DB);
	for (int i = 0; i < N; i++) {
		tcl_send(u[i], "%s", cmd[i]);
		wait_queued(2 + i);
	}
	unlock();
	expect_prefix(blocker, "[system] No rooms yet");
	/* The batch now waits for the other transaction's nickname. */
	tdb_wait_server_blocked(&T_DB);
	res = PQexec(other, "COMMIT");
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s",
		      PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(other);
	for (int i = 0; i < N; i++)
		expect_next(u[i], want[i]);
	logged_batches(&b);
	ck_assert_int_eq(b.largest, N);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM presence WHERE nickname "
				 "IN ('ok0', 'r1', 'ok2', 'racy')",
				 NULL),
			 4);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM users "
				 "WHERE nickname IN ('r1', 'ok0', 'ok2')",
				 NULL),
			 3);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM users "
				 "WHERE nickname = 'racy'",
				 NULL),
			 0);
	for (int i = 0; i < N; i++)
		tcl_free(u[i]);
	tcl_free(blocker);
}
END_TEST

/* Room for n more descriptors than now (raising the soft limit up to the
 * hard one if needed); false when the hard limit is too low. */
static bool fds_for(rlim_t n)
{
	struct rlimit rl;

	ck_assert(!getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n)
			return false;
		rl.rlim_cur = n;
		ck_assert(!setrlimit(RLIMIT_NOFILE, &rl));
	}
	return true;
}

static void setup_storm(void)
{
	/* Room in the queue for every /nick of the storm at once. */
	struct tsrv_opts o = { .log_level = "debug",
			       .extra_json = "\"db_queue_limit\": 5000" };

	tfix_use(&o);
}

/*
 * 1,000 TCP clients set a nickname and join one room at once: every one
 * is told it joined and is a member in the database, and presence has a
 * row for each connected session (as many as /health's sessions) with
 * its nickname and the room. The operations went in batches.
 */
START_TEST(test_thousand_clients_join_one_room)
{
	struct tcl *owner, **u;
	struct batches b;
	char want[64];

	/* The test's sockets, and the server's (it inherits the limit). */
	if (!fds_for(STORM + 200)) {
		trun_note("skipped: RLIMIT_NOFILE's hard limit is below %d",
			  STORM + 200);
		fprintf(stderr, "test_thousand_clients_join_one_room: skipped, "
				"ulimit -n too low for %d clients\n",
			STORM);
		return;
	}
	owner = tcl_user(PORT, "owner");
	do_create(owner, "big");
	u = calloc(STORM, sizeof(*u));
	ck_assert(u);
	for (int i = 0; i < STORM; i++) {
		char label[16];

		snprintf(label, sizeof(label), "c%d", i);
		u[i] = tcl_connect(PORT, label);
		read_welcome(u[i]);
	}
	for (int i = 0; i < STORM; i++)
		tcl_send(u[i], "/nick b%d\n/join big", i);
	for (int i = 0; i < STORM; i++) {
		snprintf(want, sizeof(want), "[system] You are now b%d", i);
		expect_line(u[i], want);
		expect_line(u[i], "[system] You joined big (0 recent messages)");
	}
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM room_members m "
				 "JOIN rooms r ON r.id = m.room_id "
				 "JOIN users u ON u.id = m.user_id "
				 "WHERE r.name = 'big' AND u.nickname ~ '^b[0-9]+$'",
				 NULL),
			 STORM);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM presence p "
				 "JOIN users u ON u.id = p.user_id "
				 "WHERE p.room = 'big' AND u.nickname = p.nickname "
				 "AND p.nickname ~ '^b[0-9]+$'",
				 NULL),
			 STORM);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM presence", NULL),
			 STORM + 1);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM presence "
				 "WHERE room IS DISTINCT FROM 'big'",
				 NULL),
			 0);
	ck_assert_int_eq(health_num(HPORT, NULL, "sessions"), STORM + 1);
	/* 3,000 operations (a presence row, a /nick, a /join each) in
	 * fewer statements. */
	logged_batches(&b);
	trun_note("%ld control batches, %ld operations, largest %ld", b.n,
		  b.items, b.largest);
	ck_assert_int_gt(b.n, 0);
	ck_assert_int_ge(b.items, 3 * STORM);
	ck_assert_int_gt(b.items, b.n);
	for (int i = 0; i < STORM; i++)
		tcl_free(u[i]);
	free(u);
	tcl_free(owner);
}
END_TEST

static void setup_big(void)
{
	struct tsrv_opts o = { .max_message_bytes = 3500 };

	tfix_use(&o);
}

/*
 * Messages' notifications (bd_post(), migration 017): one NOTIFY per room
 * per batch carrying several messages, split before 8,000 bytes. A batch
 * of 6 messages of 3,400 bytes and 30 short ones for one room and 5 for
 * another, posted by SQL the way the server posts them: the test's own
 * LISTEN sees payloads each under 8,000 bytes, each of one room, with
 * several messages in some and more than one payload for the big room,
 * the seqs in order with none missing; a TCP member of each room (the
 * server decoding those payloads) gets every message once, in order.
 */
START_TEST(test_batched_notifications_split_under_8000_bytes)
{
	enum { BIG = 6, SMALL = 30, OTHER = 5 };
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	char sql[256], *big = trun_repeat("x", 3400), *text;
	long long room, other_room, uid;
	json_t *batch = json_array();
	int payloads[2] = { 0 }, multi = 0, got[2] = { 0 };
	int64_t next_seq[2] = { 1, 1 }, deadline;
	PGconn *lis;
	PGresult *res;

	do_create(alice, "big");
	do_create(bob, "small");
	room = tdb_int(&T_DB, "SELECT id FROM rooms WHERE name = 'big'", NULL);
	other_room = tdb_int(&T_DB, "SELECT id FROM rooms WHERE name = 'small'",
			     NULL);
	uid = tdb_int(&T_DB, "SELECT id FROM users WHERE nickname = 'alice'",
		      NULL);
	for (int i = 0; i < BIG + SMALL + OTHER; i++) {
		char small[32];
		bool mine = i < BIG + SMALL;

		snprintf(small, sizeof(small), "short %d", i);
		json_array_append_new(
			batch, json_pack("{sIsIssss}", "r",
					 (json_int_t)(mine ? room : other_room),
					 "u", (json_int_t)uid, "n", "alice", "c",
					 i < BIG ? big : small));
	}
	text = json_dumps(batch, JSON_COMPACT);
	json_decref(batch);
	lis = PQconnectdb(T_DB.url);
	ck_assert_msg(PQstatus(lis) == CONNECTION_OK, "%s",
		      PQerrorMessage(lis));
	snprintf(sql, sizeof(sql), "LISTEN room_%lld; LISTEN room_%lld", room,
		 other_room);
	res = PQexec(lis, sql);
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(seq) FROM bd_post($1::jsonb)",
				 text, NULL),
			 BIG + SMALL + OTHER);
	free(text);
	deadline = trun_now_ms() + trun_ms(T_WAIT);
	while (got[0] < BIG + SMALL || got[1] < OTHER) {
		struct pollfd pfd = { PQsocket(lis), POLLIN, 0 };
		PGnotify *n;

		ck_assert_msg(trun_now_ms() < deadline,
			      "notifications: %d and %d messages", got[0],
			      got[1]);
		poll(&pfd, 1, 100);
		ck_assert(PQconsumeInput(lis));
		while ((n = PQnotifies(lis))) {
			json_t *o = json_loads(n->extra, 0, NULL), *m;
			int k;

			ck_assert_msg(strlen(n->extra) < 8000, "%zu bytes",
				      strlen(n->extra));
			ck_assert_msg(o, "not JSON: %.200s", n->extra);
			ck_assert_str_eq(json_string_value(
						 json_object_get(o, "k")), "b");
			k = json_integer_value(json_object_get(o, "r")) ==
					    room ? 0 : 1;
			m = json_object_get(o, "m");
			ck_assert_uint_ge(json_array_size(m), 1);
			multi += json_array_size(m) > 1;
			payloads[k]++;
			for (size_t j = 0; j < json_array_size(m); j++) {
				json_t *e = json_array_get(m, j);

				ck_assert_int_eq(json_integer_value(
							 json_array_get(e, 0)),
						 next_seq[k]++);
				got[k]++;
			}
			json_decref(o);
			PQfreemem(n);
		}
	}
	PQfinish(lis);
	trun_note("payloads: %d for %d messages, %d for %d", payloads[0],
		  BIG + SMALL, payloads[1], OTHER);
	ck_assert_int_gt(payloads[0], 1);	/* split */
	ck_assert_int_lt(payloads[0], BIG + SMALL);	/* batched */
	ck_assert_int_ge(multi, 2);
	for (int i = 0; i < BIG + SMALL; i++) {
		char want[3500];

		snprintf(want, sizeof(want), "[big] alice: %s",
			 i < BIG ? big : "");
		if (i >= BIG)
			snprintf(want, sizeof(want), "[big] alice: short %d", i);
		expect_next(alice, want);
	}
	for (int i = BIG + SMALL; i < BIG + SMALL + OTHER; i++) {
		char want[64];

		snprintf(want, sizeof(want), "[small] alice: short %d", i);
		expect_next(bob, want);
	}
	free(big);
	tcl_free(alice);
	tcl_free(bob);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("batch");

	TFIX_ADD(s, test_failing_items_fail_alone, 60, setup_batch,
		 tfix_teardown);
	TFIX_ADD(s, test_race_reruns_items_alone, 60, setup_batch,
		 tfix_teardown);
	TFIX_ADD(s, test_thousand_clients_join_one_room, 180, setup_storm,
		 tfix_teardown);
	TFIX_ADD(s, test_batched_notifications_split_under_8000_bytes, 60,
		 setup_big, tfix_teardown);
	return trun_main(s);
}
