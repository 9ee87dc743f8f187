/*
 * Several instances on one database: rooms, history, messages and their
 * order are shared through PostgreSQL alone (LISTEN/NOTIFY on per-room
 * channels). Presence is cluster-wide: /list, online counts and nickname
 * uniqueness cover every instance, and a dead instance's users leave.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers/tchat.h"
#include "../helpers/tcl.h"
#include "../helpers/thttp.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"

#define NINST 3
#define SENDERS 6	/* two per instance */
#define PER_SENDER 20

START_TEST(test_room_and_messages_cross_instances)
{
	struct tcl *alice, *bob;

	tfix_start_instances(2);
	alice = tcl_user(T_INST[0].tcp_port, "alice");
	bob = tcl_user(T_INST[1].tcp_port, "bob");
	do_create(alice, "general");
	do_say(alice, "general", "hello from one");
	/* The other instance loads the history from the database. */
	ck_assert_int_eq(do_join(bob, "general"), 1);
	ck_assert_str_eq(bob->hist[0], "[general] alice: hello from one");
	expect_next(alice, "[system] bob joined general");
	do_say_seen(bob, "general", "hello from two", alice);
	do_say_seen(alice, "general", "and back", bob);
}
END_TEST

START_TEST(test_every_client_same_order_across_instances)
{
	struct tcl *c[SENDERS];
	const int total = SENDERS * PER_SENDER;
	char nick[16];

	tfix_start_instances(NINST);
	for (int i = 0; i < SENDERS; i++) {
		snprintf(nick, sizeof(nick), "u%d", i);
		c[i] = tcl_user(T_INST[i % NINST].tcp_port, nick);
		if (i == 0)
			do_create(c[i], "busy");
		else
			do_join(c[i], "busy");
	}
	/* Everyone sends at once, from every instance. */
	for (int i = 0; i < SENDERS; i++)
		tchat_send_burst(c[i], PER_SENDER, "m%02d from u%d", i);
	/* Each got the table's messages, in its order (u<i> is on instance
	 * i % 3 + 1). */
	for (int i = 0; i < SENDERS; i++)
		expect_received(c[i], "busy", total);
}
END_TEST

START_TEST(test_create_race_one_room_one_error)
{
	struct tcl *a, *b;
	int created = 0, refused = 0;

	tfix_start_instances(2);
	a = tcl_user(T_INST[0].tcp_port, "alice");
	b = tcl_user(T_INST[1].tcp_port, "bob");
	tcl_send(a, "/create contested");
	tcl_send(b, "/create contested");
	for (int i = 0; i < 2; i++) {
		struct tcl *c = i ? b : a;
		const char *line = expect_prefix(c, "[system] ");

		if (!strcmp(line, "[system] Created room contested"))
			created++;
		else if (!strcmp(line, "[system] error: room contested already exists"))
			refused++;
		else
			ck_abort_msg("%s: unexpected \"%s\"", c->label, line);
	}
	ck_assert_int_eq(created, 1);
	ck_assert_int_eq(refused, 1);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM rooms WHERE name = 'contested'",
				 NULL),
			 1);
}
END_TEST

START_TEST(test_killed_instance_others_keep_chatting)
{
	struct tcl *alice, *bob, *carol;

	tfix_start_instances(3);
	alice = tcl_user(T_INST[0].tcp_port, "alice");
	bob = tcl_user(T_INST[1].tcp_port, "bob");
	carol = tcl_user(T_INST[2].tcp_port, "carol");
	do_create(alice, "general");
	do_join_seen(bob, "general", alice);
	do_join_seen(carol, "general", alice, bob);
	tsrv_signal(&T_INST[1], SIGKILL);
	tsrv_wait_exit(&T_INST[1], trun_ms(5000));
	expect_eof(bob);
	do_say_seen(alice, "general", "bob's instance is gone", carol);
	do_say_seen(carol, "general", "we carry on", alice);
	/* Restarted, it serves the room again from the database. */
	tcl_free(bob);
	tsrv_start(&T_INST[1]);
	bob = user_back(T_INST[1].tcp_port, "bob", "general");
	ck_assert_int_eq(do_join(bob, "general"), 2);
	ck_assert_str_eq(bob->hist[1], "[general] carol: we carry on");
	do_say_seen(alice, "general", "welcome back", bob);
}
END_TEST


START_TEST(test_presence_is_cluster_wide)
{
	struct tcl *alice, *bob;
	const char *want[] = { "[system]   alice (in general)",
			       "[system]   bob (no room)" };

	tfix_start_instances(2);
	alice = tcl_user(T_INST[0].tcp_port, "alice");
	bob = tcl_user(T_INST[1].tcp_port, "bob");
	do_create(alice, "general");
	expect_list(bob, want, 2);
	expect_reply(bob, "/join general",
		     "[system] You joined general (0 recent messages)");
	tcl_send(alice, "/rooms");
	expect_line(alice, "[system]   general: 2 members, 2 online");
}
END_TEST

START_TEST(test_nickname_unique_across_instances)
{
	struct tcl *alice, *other;

	tfix_start_instances(2);
	alice = tcl_user(T_INST[0].tcp_port, "alice");
	other = tcl_guest(T_INST[1].tcp_port, "other");
	expect_reply(other, "/nick ALICE",
		     "[system] error: nickname ALICE is taken");
	tcl_free(alice);
	/* Free again once alice is gone (her instance says so). */
	for (int64_t end = trun_now_ms() + trun_ms(10000);;) {
		tcl_send(other, "/nick alice");
		if (!strcmp(expect_prefix(other, "[system] "),
			    "[system] You are now alice"))
			break;
		ck_assert_msg(trun_now_ms() < end, "alice never became free");
		trun_pace();
	}
}
END_TEST

START_TEST(test_dead_instance_users_leave_presence)
{
	struct tsrv_opts o = { .extra_json = "\"presence_timeout_s\": 3" };
	struct tcl *alice;
	int64_t end;

	tfix_use(&o);
	tfix_start_instances(2);
	alice = tcl_user(T_INST[0].tcp_port, "alice");
	tcl_user(T_INST[1].tcp_port, "bob"); /* on the instance killed */
	ck_assert_int_eq(do_list(alice), 2);
	tsrv_signal(&T_INST[1], SIGKILL);
	tsrv_wait_exit(&T_INST[1], trun_ms(5000));
	/* Within the bound (3 s + a heartbeat), bob is gone everywhere. */
	end = trun_now_ms() + trun_ms(10000);
	while (do_list(alice) != 1) {
		ck_assert_msg(trun_now_ms() < end,
			      "bob still online long after his instance died");
		trun_pace();
	}
	expect_reply(alice, "/nick bob", "[system] You are now bob");
}
END_TEST

/*
 * One nickname raced for by 24 TCP clients (/nick) and 12 HTTP sessions
 * (/api/connect) spread over three instances, all at once: exactly one
 * gets it, every other one hears that it is taken, and presence has it
 * once.
 */
START_TEST(test_nickname_race_across_instances_one_winner)
{
	enum { TCP_PER = 8, HTTP_PER = 4 };
	struct tcl *c[NINST * TCP_PER];
	int fd[NINST * HTTP_PER], won = 0, taken = 0;
	const char *body = "{\"nickname\": \"racer\"}";
	struct thttp_req q = { .method = "POST", .path = "/api/connect",
			       .content_type = "application/json",
			       .body = body, .body_len = strlen(body) };

	tfix_start_instances(NINST);
	for (int i = 0; i < NINST * TCP_PER; i++) {
		char label[16];

		snprintf(label, sizeof(label), "tcp%d", i);
		c[i] = tcl_connect(T_INST[i % NINST].tcp_port, label);
		read_welcome(c[i]);
	}
	/* All at once: every request is out before any answer is read. */
	for (int i = 0; i < NINST * TCP_PER; i++)
		tcl_send(c[i], "/nick racer");
	for (int i = 0; i < NINST * HTTP_PER; i++)
		fd[i] = thttp_start(T_INST[i % NINST].http_port, &q);
	for (int i = 0; i < NINST * TCP_PER; i++) {
		const char *line = expect_prefix(c[i], "[system] ");

		if (!strcmp(line, "[system] You are now racer"))
			won++;
		else if (!strcmp(line, "[system] error: nickname racer is taken"))
			taken++;
		else
			ck_abort_msg("%s: unexpected \"%s\"", c[i]->label, line);
	}
	for (int i = 0; i < NINST * HTTP_PER; i++) {
		struct thttp_resp r;

		thttp_finish(fd[i], &r);
		if (r.status == 200) {
			won++;
		} else {
			expect_error(&r, 409);
			ck_assert_msg(thttp_json_has(r.body, "error",
						     "nickname racer is taken"),
				      "409 body: %s", r.body);
			taken++;
		}
	}
	ck_assert_msg(won == 1, "%d of %d won the nickname", won,
		      NINST * (TCP_PER + HTTP_PER));
	ck_assert_int_eq(taken, NINST * (TCP_PER + HTTP_PER) - 1);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM presence "
				 "WHERE lower(nickname) = 'racer'",
				 NULL),
			 1);
}
END_TEST

/*
 * An instance that lost its database long enough to be reaped registers
 * its sessions again when it is back; a nickname taken meanwhile on
 * another instance stays with that session, and the returning instance
 * logs it. inst1 connects as a role of its own, so its reconnects alone
 * can be refused (NOLOGIN) while inst2 goes on.
 */
START_TEST(test_nickname_taken_during_reconnect_stays)
{
	char role[64], qrole[80], sql[256], url[2200], *line, *owner;
	struct tsrv_opts o = { .extra_json = "\"presence_timeout_s\": 3" };
	struct tcl *alice, *other;
	int64_t deadline;

	tfix_begin_db();
	snprintf(role, sizeof(role), "bdt_role_%ld", (long)getpid());
	tdb_ident(qrole, sizeof(qrole), role);
	snprintf(sql, sizeof(sql), "CREATE ROLE %s LOGIN SUPERUSER", qrole);
	PQclear(tdb_admin(sql, NULL));
	snprintf(url, sizeof(url), "%s user=%s", T_DB.url, role);
	o.database_url = url;
	o.instance_id = "inst1";
	tsrv_init(&T_INST[0], "inst1", &o);
	o.database_url = T_DB.url;
	o.instance_id = "inst2";
	tsrv_init(&T_INST[1], "inst2", &o);
	T_NINST = 2;
	tsrv_start(&T_INST[0]);
	tsrv_start(&T_INST[1]);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM pg_stat_activity "
				 "WHERE datname = $1 AND usename = $2",
				 T_DB.name, role, NULL),
			 2);
	alice = tcl_user(T_INST[0].tcp_port, "alice");
	other = tcl_guest(T_INST[1].tcp_port, "other");
	expect_reply(other, "/nick alice",
		     "[system] error: nickname alice is taken");

	/* inst1 loses both connections and cannot come back. */
	snprintf(sql, sizeof(sql), "ALTER ROLE %s NOLOGIN", qrole);
	PQclear(tdb_admin(sql, NULL));
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(pg_terminate_backend(pid)) "
				 "FROM pg_stat_activity "
				 "WHERE datname = $1 AND usename = $2",
				 T_DB.name, role, NULL),
			 2);
	line = tsrv_wait_log(&T_INST[0],
			     " db_connect_failed conn=babydiscord-query ",
			     trun_ms(15000));
	ck_assert_msg(line, "inst1 reconnected; log %s", T_INST[0].log);
	free(line);
	/* inst2's heartbeat reaps it (no event to wait for: poll). */
	deadline = trun_now_ms() + trun_ms(15000);
	while (tdb_int(&T_DB, "SELECT count(*) FROM instances WHERE id = 'inst1'",
		       NULL)) {
		ck_assert_msg(trun_now_ms() < deadline, "inst1 never reaped");
		trun_pace();
	}
	expect_reply(other, "/nick alice", "[system] You are now alice");

	snprintf(sql, sizeof(sql), "ALTER ROLE %s LOGIN", qrole);
	PQclear(tdb_admin(sql, NULL));
	line = tsrv_wait_log(
		&T_INST[0],
		" WARN nick_lost ",
		trun_ms(30000));
	ck_assert_msg(line, "inst1 did not log the lost nickname; log %s",
		      T_INST[0].log);
	free(line);
	/* The name stays with inst2's session, once. */
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM presence "
				 "WHERE lower(nickname) = 'alice'",
				 NULL),
			 1);
	owner = tdb_scalar(&T_DB,
			   "SELECT instance_id FROM presence "
			   "WHERE lower(nickname) = 'alice'",
			   NULL);
	ck_assert_msg(owner && !strcmp(owner, "inst2"),
		      "alice is now inst1's again (%s)", owner);
	free(owner);
	/* inst1's session goes on as a guest, is told so, and is online
	 * (it used to vanish from presence, renames included). */
	{
		const char *got = expect_prefix(
			alice,
			"[system] error: while the database was away, another "
			"session took the nickname alice; you are now guest-");

		ck_assert_msg(strstr(got, "(/nick to pick another)"), "%s",
			      got);
	}
	deadline = trun_now_ms() + trun_ms(15000);
	while (tdb_int(&T_DB,
		       "SELECT count(*) FROM presence WHERE instance_id = "
		       "'inst1' AND nickname LIKE 'guest-%'",
		       NULL) != 1) {
		ck_assert_msg(trun_now_ms() < deadline,
			      "the guest never registered");
		trun_pace();
	}
	expect_reply(alice, "/nick alice2", "[system] You are now alice2");
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM presence WHERE "
				 "instance_id = 'inst1' AND nickname = 'alice2'",
				 NULL),
			 1);
	tcl_free(alice);
	tcl_free(other);
	for (int i = 0; i < T_NINST; i++)
		tsrv_stop(&T_INST[i]);
	snprintf(sql, sizeof(sql), "DROP ROLE %s", qrole);
	PQclear(tdb_admin(sql, NULL));
}
END_TEST


/* Reads c's lines until the line `last`, keeping the room's messages
 * (without "[up] ") in got[*n..] and counting refusals of its message
 * lines (`last` too) in ref. Other lines (notices, command replies) are
 * skipped. */
static void collect_until(struct tcl *c, const char *last, char **got,
			  int *n, int max, struct tcl_refusals *ref)
{
	for (;;) {
		enum tcl_rc rc = tcl_read(c, trun_ms(20000));

		ck_assert_msg(rc == TCL_LINE, "%s: no \"%s\" (%s)", c->label,
			      last, rc == TCL_EOF ? "EOF" : "timeout");
		if (!strncmp(c->line, "[up] ", 5)) {
			ck_assert_msg(*n < max, "%s: too many messages",
				      c->label);
			got[(*n)++] = strdup(c->line + 5);
		}
		tcl_count_refusal(ref, c->line);
		if (!strcmp(c->line, last))
			return;
	}
}

START_TEST(test_database_stop_then_service_resumes)
{
	static char *got[2][200];
	struct tcl *alice, *bob, *c[2];
	struct tcl_refusals ref[2] = { { 0 }, { 0 } };
	struct thttp_resp r;
	int n[2] = { 0, 0 };
	int64_t until;

	tfix_start_instances(2);
	alice = tcl_user(T_INST[0].tcp_port, "alice");
	bob = tcl_user(T_INST[1].tcp_port, "bob");
	c[0] = alice;
	c[1] = bob;
	do_create(alice, "up");
	do_join(bob, "up");
	for (int k = 0; k < 20; k++) {
		tcl_send(alice, "a%02d", k);
		tcl_send(bob, "b%02d", k);
	}
	/* Under that load, the database goes away for 10 s. */
	tfix_cluster_db(false);
	until = trun_now_ms() + 10000;
	for (int i = 0; i < 2; i++)
		thttp_wait_status(T_INST[i].http_port, "/health", 503, &r,
				  trun_ms(15000));
	tcl_send(alice, "/rooms");
	collect_until(alice, "[system] error: database unavailable, try again",
		      got[0], &n[0], 200, &ref[0]);
	while (trun_now_ms() < until) {
		/* Both stay up, say so, and keep their clients. */
		for (int i = 0; i < 2; i++) {
			thttp_get(T_INST[i].http_port, "/health", &r);
			ck_assert_int_eq(r.status, 503);
			ck_assert(thttp_json_has(r.body, "db", "disconnected"));
		}
		trun_pace();
	}
	tcl_send(bob, "/help");
	collect_until(bob, "[system] Commands:", got[1], &n[1], 200, &ref[1]);
	tfix_cluster_db(true);
	for (int i = 0; i < 2; i++)
		thttp_wait_status(T_INST[i].http_port, "/health", 200, &r,
				  trun_ms(30000));
	tcl_send(alice, "back");
	for (int i = 0; i < 2; i++)
		collect_until(c[i], "[up] alice: back", got[i], &n[i], 200,
			      &ref[i]);
	/* Every committed message reached both, once, in the table's order. */
	for (int i = 0; i < 2; i++) {
		expect_table(c[i]->label, "up", got[i], n[i]);
		for (int k = 0; k < n[i]; k++)
			free(got[i][k]);
	}
	/* Each line stored XOR refused (one lost in flight may be both). */
	expect_accounted("alice", 21, tchat_count("up", "alice"), &ref[0],
			 false);
	expect_accounted("bob", 20, tchat_count("up", "bob"), &ref[1], false);
	trun_note(
		"alice: %d stored, %d refused (%d as lost); bob: %d stored, %d refused (%d as lost)",
		tchat_count("up", "alice"), ref[0].not_sent + ref[0].lost,
		ref[0].lost, tchat_count("up", "bob"),
		ref[1].not_sent + ref[1].lost, ref[1].lost);
}
END_TEST


#define MAXGOT 400	/* messages kept per client by collect_*() */

/*
 * u0..u2 (c[0..2]) each sent "after <i>.0" to "after <i>.<last>": u0 reads
 * until it has everyone's last line, then says "end", which is therefore
 * committed after all of them; every client then reads until "end". got
 * and n collect each client's messages in arrival order, ref its refusals.
 */
static void collect_to_end(struct tcl **c, char *got[][MAXGOT], int *n,
			   int last, struct tcl_refusals *ref)
{
	for (int seen = 0; seen != 7;) {
		enum tcl_rc rc = tcl_read(c[0], trun_ms(20000));

		ck_assert_msg(rc == TCL_LINE, "u0: lasts seen %d, then %s",
			      seen, rc == TCL_EOF ? "EOF" : "timeout");
		if (strncmp(c[0]->line, "[up] ", 5)) {
			tcl_count_refusal(&ref[0], c[0]->line);
			continue;
		}
		ck_assert(n[0] < MAXGOT);
		got[0][n[0]++] = strdup(c[0]->line + 5);
		for (int i = 0; i < 3; i++) {
			char want[48];

			snprintf(want, sizeof(want), "u%d: after %d.%d", i, i,
				 last);
			if (!strcmp(c[0]->line + 5, want))
				seen |= 1 << i;
		}
	}
	tcl_send(c[0], "end");
	for (int i = 0; i < 3; i++)
		collect_until(c[i], "[up] u0: end", got[i], &n[i], MAXGOT,
			      &ref[i]);
}

/* u0 on instance 1 creates "up"; u1 and u2 on instances 2 and 3 join. */
static void three_in_room(struct tcl **c)
{
	tfix_start_instances(3);
	for (int i = 0; i < 3; i++) {
		char nick[16];

		snprintf(nick, sizeof(nick), "u%d", i);
		c[i] = tcl_user(T_INST[i].tcp_port, nick);
		if (i == 0)
			do_create(c[i], "up");
		else
			do_join(c[i], "up");
	}
}

/*
 * Every client's messages (got, n) are the table's for "up" (expect_table()).
 * Frees the lines and the clients; returns the number of stored messages.
 */
static int expect_tables(struct tcl **c, char *got[][MAXGOT], const int *n)
{
	for (int i = 0; i < 3; i++) {
		expect_table(c[i]->label, "up", got[i], n[i]);
		for (int k = 0; k < n[i]; k++)
			free(got[i][k]);
		tcl_free(c[i]);
	}
	return n[0]; /* as many as the table has */
}

/*
 * pg_ctl restart -m fast under load: what is sent while PostgreSQL is
 * down is refused (TCP error line, HTTP 503), every instance reconnects,
 * LISTENs again and catches up, and every client got exactly the table.
 */
START_TEST(test_database_restart_under_load)
{
	static char *got[3][MAXGOT];
	struct tcl *c[3];
	struct thttp_resp r;
	char sid[THTTP_SID_LEN + 1];
	struct tcl_refusals ref[3] = { { 0 }, { 0 }, { 0 } };
	int n[3] = { 0, 0, 0 }, rows;

	three_in_room(c);
	api_connect(T_INST[2].http_port, "web", sid);
	json_decref(api_command(T_INST[2].http_port, sid, "/join up", true));
	for (int k = 0; k < 30; k++)
		for (int i = 0; i < 3; i++)
			tcl_send(c[i], "before %d.%d", i, k);
	tfix_cluster_db(false);
	for (int i = 0; i < 3; i++)
		thttp_wait_status(T_INST[i].http_port, "/health", 503, &r,
				  trun_ms(15000));
	/* Down: refused on every instance and over HTTP. (The first
	 * refusal each reads may be of a "before" line; all are counted.) */
	for (int i = 0; i < 3; i++) {
		tcl_send(c[i], "during %d", i);
		collect_until(c[i], TCL_NOT_SENT, got[i], &n[i], MAXGOT,
			      &ref[i]);
	}
	thttp_post_pack(T_INST[2].http_port, "/api/message", &r, "{ssssss}",
			"session_id", sid, "room", "up", "content",
			"during web");
	expect_status(&r, 503);
	tfix_cluster_db(true);
	for (int i = 0; i < 3; i++)
		thttp_wait_status(T_INST[i].http_port, "/health", 200, &r,
				  trun_ms(30000));
	for (int k = 0; k < 30; k++)
		for (int i = 0; i < 3; i++)
			tcl_send(c[i], "after %d.%d", i, k);
	/* u0 has everyone's last line, so its "end" is committed after all
	 * of them: whoever has "end" has had the chance to get everything. */
	collect_to_end(c, got, n, 29, ref);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM messages "
				 "WHERE content LIKE 'during%'",
				 NULL),
			 0);
	/* Each line (30 before, 1 during, 30 after, u0's end) stored XOR
	 * refused; a lost one in flight at the shutdown may be both. */
	for (int i = 0; i < 3; i++) {
		char nick[16];
		int stored;

		snprintf(nick, sizeof(nick), "u%d", i);
		stored = tchat_count("up", nick);
		expect_accounted(nick, 61 + !i, stored, &ref[i], false);
		trun_note("%s: %d sent, %d stored, %d refused (%d as lost)",
			  nick, 61 + !i, stored, ref[i].not_sent + ref[i].lost,
			  ref[i].lost);
	}
	rows = expect_tables(c, got, n);
	trun_note("%d messages stored", rows);
}
END_TEST


/*
 * The LISTEN connections terminated from the database side while three
 * instances chat: each instance notices from its socket (no heartbeat to
 * wait for), LISTENs again and catches up; nothing is lost or doubled.
 */
START_TEST(test_listen_terminated_nothing_lost)
{
	static char *got[3][MAXGOT];
	struct tcl_refusals ref[3] = { { 0 }, { 0 }, { 0 } };
	struct tcl *c[3];
	int n[3] = { 0, 0, 0 };

	three_in_room(c);
	for (int k = 0; k < 20; k++)
		for (int i = 0; i < 3; i++)
			tcl_send(c[i], "before %d.%d", i, k);
	ck_assert_int_eq(tdb_kill_server_conns(&T_DB, "babydiscord-listen"), 3);
	for (int i = 0; i < 3; i++) {
		char *line = tsrv_wait_log(
			&T_INST[i], " db_lost conn=babydiscord-listen ",
			trun_ms(10000));

		ck_assert_msg(line, "instance %d never noticed", i + 1);
		free(line);
	}
	for (int k = 0; k < 20; k++)
		for (int i = 0; i < 3; i++)
			tcl_send(c[i], "after %d.%d", i, k);
	/* As in the restart test: "end" follows everyone's last line. */
	collect_to_end(c, got, n, 19, ref);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(!ref[i].not_sent && !ref[i].lost,
			      "u%d: %d lines refused, only LISTEN died", i,
			      ref[i].not_sent + ref[i].lost);
	ck_assert_int_eq(expect_tables(c, got, n), 121); /* none refused */
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_room_and_messages_cross_instances, 60, NULL),
		TFIX_CASE(test_every_client_same_order_across_instances, 120,
			  NULL),
		TFIX_CASE(test_create_race_one_room_one_error, 60, NULL),
		TFIX_CASE(test_killed_instance_others_keep_chatting, 60, NULL),
		TFIX_CASE(test_presence_is_cluster_wide, 60, NULL),
		TFIX_CASE(test_nickname_unique_across_instances, 60, NULL),
		TFIX_CASE(test_dead_instance_users_leave_presence, 60, NULL),
		TFIX_CASE(test_nickname_race_across_instances_one_winner, 60,
			  NULL),
		TFIX_CASE(test_nickname_taken_during_reconnect_stays, 90, NULL),
		TFIX_CASE(test_database_stop_then_service_resumes, 120, NULL),
		TFIX_CASE(test_database_restart_under_load, 120, NULL),
		TFIX_CASE(test_listen_terminated_nothing_lost, 120, NULL),
	};

	return tfix_main("cluster", cases, TMAIN_N(cases), NULL);
}
