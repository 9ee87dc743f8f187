/*
 * The queue in front of the database: user requests beyond db_queue_limit
 * are refused at once ("server busy"), the accepted ones complete and
 * nothing else changes; reads whose client left are dropped unsent. The
 * query connection is stalled by a lock the test holds, so statements
 * queue behind it.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"

#define PORT tfix_tcp_port()

#define CMD_BUSY "[system] error: server busy, try again"
#define MSG_BUSY "[system] error: message not sent (server busy, try again)"
#define UTF8_ERR "[system] error: invalid UTF-8"

/* Every statement on the rooms table waits until tdb_release(). */
static void lock_rooms(void)
{
	tdb_hold(&T_DB, "LOCK TABLE rooms IN ACCESS EXCLUSIVE MODE");
}

/*
 * Reads whatever the n clients send until want of them have said text;
 * said[i] tells which. Any other line fails the test: nothing else may
 * arrive while the database is stalled.
 */
static void wait_said(struct tcl **cl, int n, const char *text, int want,
		      bool *said)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
	int got = 0;

	memset(said, 0, (size_t)n * sizeof(*said));
	while (got < want) {
		struct pollfd pfd[16];
		int64_t left = deadline - trun_now_ms();
		int r;

		ck_assert(n <= 16);
		ck_assert_msg(left > 0, "%d of %d clients said \"%s\"", got,
			      want, text);
		for (int i = 0; i < n; i++)
			pfd[i] = (struct pollfd){ .fd = cl[i]->fd,
						  .events = POLLIN };
		r = poll(pfd, (nfds_t)n, (int)left);
		ck_assert_msg(r >= 0 || errno == EINTR, "poll: %s",
			      strerror(errno));
		for (int i = 0; i < n && r > 0; i++) {
			if (!pfd[i].revents)
				continue;
			while (tcl_read(cl[i], 0) == TCL_LINE) {
				ck_assert_msg(!said[i] &&
						      !strcmp(cl[i]->line, text),
					      "%s: unexpected \"%s\"",
					      cl[i]->label, cl[i]->line);
				said[i] = true;
				got++;
			}
			ck_assert_msg(!cl[i]->eof, "%s: connection closed",
				      cl[i]->label);
		}
	}
}

/* The answer to /rooms when the only room is chat with n members. */
static void expect_rooms(struct tcl *c, int n)
{
	char want[128];

	expect_next(c, "[system] Rooms (1):");
	snprintf(want, sizeof(want), "[system]   chat: %d member%s, %d online",
		 n, n == 1 ? "" : "s", n);
	expect_next(c, want);
}

static void setup_limit(void)
{
	struct tsrv_opts o = { .extra_json = "\"db_queue_limit\": 4" };

	tfix_use(&o);
}

/*
 * Six /rooms while the database is stalled, with room for four: two are
 * refused at once, and so are a message and a command sent then; the four
 * accepted ones are answered after the stall and nothing else happened.
 */
START_TEST(test_queue_limit_refuses_excess_commands)
{
	struct tcl *alice = tcl_user(PORT, "alice"), *u[6];
	bool refused[6];
	char nick[16], *text;
	int nrefused = 0;

	do_create(alice, "chat");
	for (int i = 0; i < 6; i++) {
		snprintf(nick, sizeof(nick), "u%d", i);
		u[i] = tcl_user(PORT, nick);
	}
	lock_rooms();
	for (int i = 0; i < 6; i++)
		tcl_send(u[i], "/rooms");
	tdb_wait_server_blocked(&T_DB);
	wait_said(u, 6, CMD_BUSY, 2, refused);
	/* Full: a message needing a new statement, and any command. */
	expect_reply(alice, "m1", MSG_BUSY);
	expect_reply(alice, "/list", CMD_BUSY);
	tdb_release(&T_DB);
	for (int i = 0; i < 6; i++) {
		if (refused[i]) {
			nrefused++;
			tcl_send(u[i], "/rooms");
		}
		expect_rooms(u[i], 1);
	}
	ck_assert_int_eq(nrefused, 2);
	do_say(alice, "chat", "m2");
	text = tdb_scalar(&T_DB,
			  "SELECT string_agg(content, ',' ORDER BY seq) "
			  "FROM messages", NULL);
	ck_assert_str_eq(text, "m2");
	free(text);
}
END_TEST

/*
 * A message joins the batch statement that waits unsent even when the
 * queue is full (the batch counts once); every accepted message is stored
 * and delivered exactly once, in order. An invalid UTF-8 line after a
 * message is answered without the database, so its error shows that the
 * message before it was handled (and not refused).
 */
START_TEST(test_queue_limit_messages_join_open_batch)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *carol = tcl_user(PORT, "carol");
	struct tcl *members[3] = { alice, bob, carol }, *u[4];
	bool refused[4];
	char nick[16], *text;

	do_create(alice, "chat");
	do_join_seen(bob, "chat", alice);
	do_join_seen(carol, "chat", alice, bob);
	for (int i = 0; i < 4; i++) {
		snprintf(nick, sizeof(nick), "u%d", i);
		u[i] = tcl_user(PORT, nick);
	}
	lock_rooms();
	tcl_send(bob, "b1");		/* its batch is sent, and waits */
	tdb_wait_server_blocked(&T_DB);
	tcl_send_str(bob, "b2\n\xff\n");	/* opens the next batch */
	expect_next(bob, UTF8_ERR);
	for (int i = 0; i < 4; i++)	/* two fit: the queue is full */
		tcl_send(u[i], "/rooms");
	wait_said(u, 4, CMD_BUSY, 2, refused);
	tcl_send_str(carol, "c1\n\xff\n");	/* joins the open batch */
	expect_next(carol, UTF8_ERR);
	expect_reply(alice, "/list", CMD_BUSY);
	tdb_release(&T_DB);
	for (int i = 0; i < 3; i++) {
		expect_next(members[i], "[chat] bob: b1");
		expect_next(members[i], "[chat] bob: b2");
		expect_next(members[i], "[chat] carol: c1");
	}
	for (int i = 0; i < 4; i++) {
		if (refused[i])
			tcl_send(u[i], "/rooms");
		expect_rooms(u[i], 3);
	}
	text = tdb_scalar(&T_DB,
			  "SELECT string_agg(nickname || ': ' || content, ',' "
			  "ORDER BY seq) FROM messages", NULL);
	ck_assert_str_eq(text, "bob: b1,bob: b2,carol: c1");
	free(text);
	/* The queue is usable again. */
	expect_reply(alice, "/list", "[system] Online users (7):");
}
END_TEST

static void setup_debug(void)
{
	struct tsrv_opts o = { .log_level = "debug" };

	tfix_use(&o);
}

/* The server has handled the close of client c (nick). */
static void wait_closed(struct tcl *c)
{
	char needle[96], *line;

	/* Only the disconnect event has nick= right before reason=. */
	snprintf(needle, sizeof(needle), " nick=%s reason=", c->nick);
	tcl_free(c);
	line = tsrv_wait_log(&T_SRV, needle, trun_ms(T_WAIT));
	ck_assert_msg(line, "no \"%s\" in the log", needle);
	free(line);
}

/*
 * /rooms and /list of clients that disconnect while their statements wait
 * are never sent; the reads of clients still there are answered, in
 * order.
 */
START_TEST(test_reads_of_gone_clients_dropped)
{
	struct tcl *keep = tcl_user(PORT, "keep"), *d[4], *later;
	char nick[16], *line;

	for (int i = 0; i < 4; i++) {
		snprintf(nick, sizeof(nick), "d%d", i);
		d[i] = tcl_user(PORT, nick);
	}
	later = tcl_user(PORT, "later");
	lock_rooms();
	tcl_send(keep, "/rooms");	/* sent, waits for the lock */
	tdb_wait_server_blocked(&T_DB);
	for (int i = 0; i < 4; i++)
		tcl_send(d[i], i < 2 ? "/rooms" : "/list");
	for (int i = 0; i < 4; i++)
		wait_closed(d[i]);
	tcl_send(later, "/list");
	tdb_release(&T_DB);
	expect_next(keep, "[system] No rooms yet. Create one with /create <room>");
	expect_next(later, "[system] Online users (2):");
	line = tsrv_wait_log(&T_SRV,
			     " db_dropped conn=babydiscord-query total=4 ",
			     trun_ms(T_WAIT));
	ck_assert_msg(line, "the four reads were not dropped");
	free(line);
}
END_TEST

static const struct thttp_req rooms_req = { .path = "/api/rooms" };

/*
 * Over HTTP while the database is stalled: 50 GET /api/rooms share one
 * read of the list (all answered from it afterwards), and with the queue
 * full a new session is refused with 503 "server busy, try again".
 */
START_TEST(test_http_room_list_shared_and_busy_503)
{
	struct tcl *alice = tcl_user(PORT, "alice"), *u[3];
	int fd[50];
	long long reads;
	struct thttp_resp r;
	char nick[16];

	do_create(alice, "chat");
	for (int i = 0; i < 3; i++) {
		snprintf(nick, sizeof(nick), "u%d", i);
		u[i] = tcl_user(PORT, nick);
	}
	reads = health_num(T_SRV.http_port, NULL, "room_list_reads");
	lock_rooms();
	for (int i = 0; i < 50; i++)
		fd[i] = thttp_start(T_SRV.http_port, &rooms_req);
	tdb_wait_server_blocked(&T_DB);
	/* One read in flight: three more user statements fill the queue. */
	for (int i = 0; i < 3; i++)
		tcl_send(u[i], "/rooms");
	while (health_num(T_SRV.http_port, "db_queue", "queued_user") < 4)
		trun_pace();
	thttp_post(T_SRV.http_port, "/api/connect", "{\"nickname\":\"late\"}",
		   &r);
	expect_error(&r, 503);
	ck_assert_str_eq(r.body, "{\"error\":\"server busy, try again\"}");
	{
		char ra[16];

		ck_assert_msg(thttp_header(&r, "Retry-After", ra, sizeof(ra)) &&
				      !strcmp(ra, "1"),
			      "no Retry-After: 1 on the 503: %s", r.head);
	}
	ck_assert_int_ge(health_num(T_SRV.http_port, "db_queue", "refused"), 1);
	tdb_release(&T_DB);
	for (int i = 0; i < 50; i++) {
		thttp_finish(fd[i], &r);
		expect_status(&r, 200);
		ck_assert_msg(strstr(r.body, "\"name\":\"chat\""), "%s",
			      r.body);
	}
	for (int i = 0; i < 3; i++)
		expect_rooms(u[i], 1);
	ck_assert_int_eq(health_num(T_SRV.http_port, NULL, "room_list_reads"), reads + 1);
	/* Within the second, and nothing changed: no new read. */
	thttp_get(T_SRV.http_port, "/api/rooms", &r);
	expect_status(&r, 200);
	ck_assert_int_le(health_num(T_SRV.http_port, NULL, "room_list_reads"), reads + 2);
}
END_TEST

/*
 * 300 GET /api/rooms and 20 POST /api/command sent and closed while the
 * database is stalled: none of them reaches the database (the list read
 * and the 20 session lookups are dropped unsent), and a legitimate
 * command sent after them is answered.
 */
START_TEST(test_http_requests_of_gone_clients_dropped)
{
	struct tcl *keep = tcl_user(PORT, "keep");
	char sid[THTTP_SID_LEN + 1], *line;
	long long dropped;
	struct thttp_resp r;
	int fd;

	api_connect(T_SRV.http_port, "alice", sid);
	dropped = health_num(T_SRV.http_port, "db_queue", "dropped");
	lock_rooms();
	tcl_send(keep, "/rooms");	/* sent, waits for the lock */
	tdb_wait_server_blocked(&T_DB);
	for (int i = 0; i < 300; i++)
		close(thttp_start(T_SRV.http_port, &rooms_req));
	for (int i = 0; i < 20; i++)
		close(thttp_start_command(T_SRV.http_port, sid, "/help"));
	/* The server has seen every one of them go. */
	while (health_num(T_SRV.http_port, NULL, "http_connections") > 1)
		trun_pace();
	fd = thttp_start_command(T_SRV.http_port, sid, "/help");
	tdb_release(&T_DB);
	thttp_finish(fd, &r);
	expect_status(&r, 200);
	ck_assert_msg(strstr(r.body, "/join"), "%s", r.body);
	expect_next(keep, "[system] No rooms yet. Create one with /create <room>");
	line = tsrv_wait_log(&T_SRV, " db_dropped conn=babydiscord-query ",
			     trun_ms(T_WAIT));
	ck_assert_msg(line, "nothing was dropped");
	free(line);
	ck_assert_int_eq(health_num(T_SRV.http_port, "db_queue", "dropped"), dropped + 21);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_queue_limit_refuses_excess_commands, 60,
			  setup_limit),
		TFIX_CASE(test_queue_limit_messages_join_open_batch, 60,
			  setup_limit),
		TFIX_CASE(test_reads_of_gone_clients_dropped, 60, setup_debug),
		TFIX_CASE(test_http_room_list_shared_and_busy_503, 60,
			  setup_limit),
		TFIX_CASE(test_http_requests_of_gone_clients_dropped, 60,
			  setup_debug),
	};

	return tfix_main("dbqueue", cases, TMAIN_N(cases), NULL);
}
