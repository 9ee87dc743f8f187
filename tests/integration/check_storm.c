/*
 * A reconnect storm at a size CI can carry: three instances behind the
 * nginx configuration of contrib/, 150 line clients spread over the
 * instances and 150 HTTP sessions whose event streams go through nginx,
 * all in one room. One instance is SIGKILLed; its line clients reconnect
 * to the others, take their nicknames back and join again (the heartbeat
 * timeout is an hour: the names must come free because the dead
 * instance's database backend is gone, not because it fell silent); the streams it carried reconnect
 * through nginx with Last-Event-ID. Every client must end up back in the
 * room and have every message committed meanwhile exactly once, in order.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/tproxy.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"
#include "../helpers/tsse.h"

#define NINST 3
#define NTCP 150	/* line clients, round robin over the instances */
#define NSSE 150	/* HTTP sessions with a stream through nginx */
#define BEFORE 5	/* messages before the kill */
#define DURING 8	/* sent right after it: fewer than history_size, so
			 * a line client back in the room finds them in the
			 * history it is shown on /join */
#define AFTER 5		/* once everyone is back */
#define TOTAL (BEFORE + DURING + AFTER)
#define KILLED 2	/* index of the instance killed */

static struct tproxy px;

/* A line client and the next message number it must see. */
struct lclient {
	struct tcl *c;
	char nick[16];
	int inst;	/* index into T_INST */
	int next;	/* next message number due */
	int hist;	/* history lines still to come after a /join */
	bool reconnected;
	int told;	/* "server restarting, please reconnect" seen */
};

/* A stream and the next seq it must see (seq k carries message k: only
 * the sender posts in the room). */
struct sclient {
	struct tsse *s;
	char nick[16];
	char sid[THTTP_SID_LEN + 1];
	int next;
	int reconnects;
};

static struct lclient lc[NTCP];
static struct sclient sc[NSSE];

/* The message number of a room line "[storm] sender: mNNN", or 0. */
static int msg_number(const char *line)
{
	static const char pre[] = "[storm] sender: m";

	if (strncmp(line, pre, sizeof(pre) - 1))
		return 0;
	return atoi(line + sizeof(pre) - 1);
}

/*
 * Takes one line of l's: a live message must be exactly the next one due
 * (an older one is a double, a newer one a gap); a history line may be an
 * older one (shown again as history), never a newer one than due.
 */
static void line_seen(struct lclient *l, const char *line)
{
	static const char joined[] = "[system] You joined storm (";
	int k = msg_number(line);

	if (!strcmp(line, "[system] server restarting, please reconnect")) {
		l->told++;
		return;
	}
	if (!strncmp(line, joined, sizeof(joined) - 1)) {
		l->hist = atoi(line + sizeof(joined) - 1);
		return;
	}
	if (l->hist > 0) {
		l->hist--;
		ck_assert_msg(k > 0, "%s: history line \"%s\"", l->nick, line);
		ck_assert_msg(k <= l->next,
			      "%s: history shows m%03d, m%03d is missing",
			      l->nick, k, l->next);
		if (k == l->next)
			l->next++;
		return;
	}
	if (!k)
		return;	/* a notice: someone joined or left */
	ck_assert_msg(k == l->next, "%s: got m%03d live, m%03d was due (%s)",
		      l->nick, k, l->next, k < l->next ? "double" : "gap");
	l->next++;
}

/* Reads l's lines until message upto was seen; false at EOF. */
static bool lines_until(struct lclient *l, int upto)
{
	while (l->next <= upto || l->hist > 0) {
		enum tcl_rc rc = tcl_read(l->c, trun_ms(T_WAIT));

		if (rc == TCL_EOF)
			return false;
		ck_assert_msg(rc == TCL_LINE, "%s: m%03d not seen in time",
			      l->nick, l->next);
		line_seen(l, l->c->line);
	}
	return true;
}

/*
 * l's instance is gone: connect to a live one and take the nickname back.
 * Until PostgreSQL has seen the dead instance's connection close (a
 * database state with no event to wait for) the name is taken: try again,
 * paced.
 */
static void reconnect(struct lclient *l, int inst, int64_t deadline)
{
	tcl_free(l->c);
	l->inst = inst;
	l->c = tcl_connect(T_INST[inst].tcp_port, l->nick);
	read_welcome(l->c);
	for (;;) {
		const char *line;

		tcl_send(l->c, "/nick %s", l->nick);
		line = expect_prefix(l->c, "[system] ");
		if (!strncmp(line, "[system] You are now ", 21))
			break;
		ck_assert_msg(strstr(line, "is taken"), "%s: /nick: %s",
			      l->nick, line);
		ck_assert_msg(trun_now_ms() < deadline,
			      "%s: nickname still taken long after its instance died",
			      l->nick);
		trun_pace();
	}
	expect_next(l->c, "[system] You are a member of: storm");
	tcl_send(l->c, "/join storm");
	l->hist = 0;
	l->reconnected = true;
}

/* Reads s's events until seq upto; on EOF, reconnects through nginx with
 * Last-Event-ID (the last seq seen). */
static void stream_until(struct sclient *c, int upto, int64_t deadline)
{
	while (c->next <= upto) {
		enum tsse_rc rc = tsse_read(c->s, trun_ms(T_WAIT));

		if (rc == TSSE_EOF) {
			char last[24];

			ck_assert_msg(trun_now_ms() < deadline,
				      "%s: stream keeps ending", c->nick);
			snprintf(last, sizeof(last), "%d", c->next - 1);
			tsse_free(c->s);
			c->s = tsse_open_room(px.port, c->nick, "storm", c->sid,
					      last);
			tsse_expect_open_proxied_at(__FILE__, __LINE__, c->s);
			c->reconnects++;
			continue;
		}
		ck_assert_msg(rc == TSSE_BLOCK, "%s: seq %d not seen in time",
			      c->nick, c->next);
		if (!c->s->ev.event || strcmp(c->s->ev.event, "message"))
			continue;	/* a system event or a comment */
		ck_assert_msg(c->s->ev.id && atoi(c->s->ev.id) == c->next,
			      "%s: got seq %s, seq %d was due", c->nick,
			      c->s->ev.id ? c->s->ev.id : "(none)", c->next);
		c->next++;
	}
}

/* The sender posts messages from..to, each committed (echoed) first. */
static void post(struct tcl *sender, int from, int to)
{
	for (int k = from; k <= to; k++) {
		char echo[64];

		tcl_send(sender, "m%03d", k);
		snprintf(echo, sizeof(echo), "[storm] sender: m%03d", k);
		expect_line(sender, echo);
	}
}

START_TEST(test_reconnect_storm_nothing_lost_or_doubled)
{
	struct tsrv_opts o = { .extra_json = "\"presence_timeout_s\": 3600" };
	struct tcl *sender;
	int64_t t0, deadline;
	int back_tcp = 0, back_sse = 0;

	tfix_use(&o);
	tfix_start_instances(NINST);
	tproxy_start(&px, T_INST, T_NINST);
	sender = tcl_user(T_INST[0].tcp_port, "sender");
	do_create(sender, "storm");
	for (int i = 0; i < NTCP; i++) {
		struct lclient *l = &lc[i];

		snprintf(l->nick, sizeof(l->nick), "t%03d", i);
		l->inst = i % NINST;
		l->next = 1;
		l->c = tcl_user(T_INST[l->inst].tcp_port, l->nick);
		ck_assert_int_eq(do_join(l->c, "storm"), 0);
	}
	for (int i = 0; i < NSSE; i++) {
		struct sclient *c = &sc[i];

		snprintf(c->nick, sizeof(c->nick), "s%03d", i);
		c->next = 1;
		api_user(px.port, c->nick, px.port, "/join storm", c->sid);
	}
	/* Streams opened one after another: nginx's round robin spreads
	 * them over the instances (interleaved with the two POSTs of each
	 * session, they would all land on one). */
	for (int i = 0; i < NSSE; i++) {
		struct sclient *c = &sc[i];

		c->s = tsse_open_room(px.port, c->nick, "storm", c->sid, NULL);
		tsse_expect_open_proxied_at(__FILE__, __LINE__, c->s);
	}
	post(sender, 1, BEFORE);
	for (int i = 0; i < NTCP; i++)
		ck_assert(lines_until(&lc[i], BEFORE));
	for (int i = 0; i < NSSE; i++)
		stream_until(&sc[i], BEFORE, trun_now_ms());

	/* The storm: one instance dies while messages keep coming. */
	tsrv_signal(&T_INST[KILLED], SIGKILL);
	tsrv_wait_exit(&T_INST[KILLED], trun_ms(5000));
	t0 = trun_now_ms();
	deadline = t0 + trun_ms(30000);
	post(sender, BEFORE + 1, BEFORE + DURING);
	for (int i = 0; i < NTCP; i++) {
		struct lclient *l = &lc[i];

		if (lines_until(l, BEFORE + DURING))
			continue;
		ck_assert_msg(l->inst == KILLED,
			      "%s lost its connection to inst%d, which is alive",
			      l->nick, l->inst + 1);
		reconnect(l, i % (NINST - 1), deadline);
		ck_assert_msg(lines_until(l, BEFORE + DURING),
			      "%s: disconnected again", l->nick);
		back_tcp++;
	}
	for (int i = 0; i < NSSE; i++) {
		int before = sc[i].reconnects;

		stream_until(&sc[i], BEFORE + DURING, deadline);
		back_sse += sc[i].reconnects > before;
	}
	trun_note("back after the kill: %d line clients, %d streams, in %lld ms",
		  back_tcp, back_sse, (long long)(trun_now_ms() - t0));
	ck_assert_int_eq(back_tcp, NTCP / NINST);
	ck_assert_msg(back_sse > 0,
		      "no stream went through the killed instance: nothing tested");

	/* Everyone is back in the room: live messages reach all once. */
	post(sender, BEFORE + DURING + 1, TOTAL);
	for (int i = 0; i < NTCP; i++)
		ck_assert(lines_until(&lc[i], TOTAL));
	for (int i = 0; i < NSSE; i++)
		stream_until(&sc[i], TOTAL, deadline);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM room_members m "
				 "JOIN rooms r ON r.id = m.room_id "
				 "WHERE r.name = 'storm'",
				 NULL),
			 1 + NTCP + NSSE);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM presence "
				 "WHERE room = 'storm'",
				 NULL),
			 1 + NTCP + NSSE);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM presence "
				 "WHERE instance_id = 'inst3'",
				 NULL),
			 0);
	for (int i = 0; i < NTCP; i++)
		tcl_free(lc[i].c);
	for (int i = 0; i < NSSE; i++)
		tsse_free(sc[i].s);
	tcl_free(sender);
	tproxy_stop(&px);
}
END_TEST

/*
 * The way a dead instance's nicknames come free without waiting for a
 * heartbeat: the heartbeat timeout is an hour and both instances have had
 * their first beat (the next is 20 minutes away), so only the /nick that
 * finds the name held by a session of another instance can reap the dead
 * one, because its database backend is gone.
 */
START_TEST(test_dead_instance_nickname_free_at_once)
{
	struct tsrv_opts o = { .extra_json = "\"presence_timeout_s\": 3600" };
	struct tcl *alice, *bob, *again;
	int64_t deadline;

	tfix_use(&o);
	tfix_start_instances(2);
	alice = tcl_user(T_INST[0].tcp_port, "alice");
	bob = tcl_user(T_INST[1].tcp_port, "bob");
	deadline = trun_now_ms() + trun_ms(T_WAIT);
	while (tdb_int(&T_DB, "SELECT count(*) FROM instances "
			      "WHERE last_seen > started_at", NULL) != 2) {
		ck_assert_msg(trun_now_ms() < deadline,
			      "the instances' first heartbeat never came");
		trun_pace();
	}
	tsrv_signal(&T_INST[1], SIGKILL);
	tsrv_wait_exit(&T_INST[1], trun_ms(5000));
	again = tcl_connect(T_INST[0].tcp_port, "bob again");
	read_welcome(again);
	deadline = trun_now_ms() + trun_ms(T_WAIT);
	for (;;) {
		const char *line;

		tcl_send(again, "/nick bob");
		line = expect_prefix(again, "[system] ");
		if (!strcmp(line, "[system] You are now bob"))
			break;
		ck_assert_str_eq(line, "[system] error: nickname bob is taken");
		ck_assert_msg(trun_now_ms() < deadline,
			      "bob's nickname still taken after his instance died");
		trun_pace();
	}
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM instances "
					"WHERE id = 'inst2'", NULL),
			 0);
	tcl_free(alice);
	tcl_free(bob);
	tcl_free(again);
}
END_TEST

#define NROLL 30	/* line clients and streams of the rolling restart */

/* The sender (an HTTP session) posts messages from..to through instance
 * inst's own port (not one being restarted: no answer is ambiguous), each
 * committed with seq = its number. */
static void post_api(const char *sid, int inst, int from, int to)
{
	for (int k = from; k <= to; k++) {
		char text[16];

		snprintf(text, sizeof(text), "m%03d", k);
		ck_assert_int_eq(api_say(T_INST[inst].http_port, sid, "storm",
					 text, NULL),
				 k);
	}
}

/*
 * A rolling restart, as contrib/cluster.sh roll does it: each instance in
 * turn gets SIGTERM while messages keep coming (through another one),
 * drains, exits 0 and starts again; then the next. Line clients are told
 * to reconnect, reconnect (to the next instance) and find their room;
 * streams end and reconnect through nginx with Last-Event-ID. Everyone
 * ends with every message exactly once, in order, and the table has all
 * of them.
 */
START_TEST(test_rolling_restart_nothing_lost_or_doubled)
{
	char ssid[THTTP_SID_LEN + 1];
	int64_t deadline;
	int k = 0;

	tfix_start_instances(NINST);
	tproxy_start(&px, T_INST, T_NINST);
	api_user(px.port, "sender", px.port, "/create storm", ssid);
	for (int i = 0; i < NROLL; i++) {
		struct lclient *l = &lc[i];
		struct sclient *c = &sc[i];

		snprintf(l->nick, sizeof(l->nick), "t%03d", i);
		l->inst = i % NINST;
		l->next = 1;
		l->c = tcl_user(T_INST[l->inst].tcp_port, l->nick);
		ck_assert_int_eq(do_join(l->c, "storm"), 0);
		snprintf(c->nick, sizeof(c->nick), "s%03d", i);
		c->next = 1;
		api_user(px.port, c->nick, px.port, "/join storm", c->sid);
	}
	for (int i = 0; i < NROLL; i++) {
		sc[i].s = tsse_open_room(px.port, sc[i].nick, "storm",
					 sc[i].sid, NULL);
		tsse_expect_open_proxied_at(__FILE__, __LINE__, sc[i].s);
	}
	post_api(ssid, 0, 1, 3);
	k = 3;
	deadline = trun_now_ms() + trun_ms(60000);
	for (int r = 0; r < NINST; r++) {
		int live = (r + 1) % NINST;

		tsrv_signal(&T_INST[r], SIGTERM);
		post_api(ssid, live, k + 1, k + 2);
		tsrv_assert_exit_ok(&T_INST[r],
				    tsrv_wait_exit(&T_INST[r], trun_ms(15000)));
		tsrv_start(&T_INST[r]);
		post_api(ssid, r, k + 3, k + 4);
		k += 4;
		for (int i = 0; i < NROLL; i++) {
			struct lclient *l = &lc[i];

			if (lines_until(l, k))
				continue;
			ck_assert_msg(l->inst == r,
				      "%s lost its connection to inst%d, which was not restarted",
				      l->nick, l->inst + 1);
			ck_assert_msg(l->told > 0,
				      "%s was not told to reconnect", l->nick);
			reconnect(l, live, deadline);
			ck_assert_msg(lines_until(l, k),
				      "%s: disconnected again", l->nick);
		}
		for (int i = 0; i < NROLL; i++)
			stream_until(&sc[i], k, deadline);
	}
	for (int i = 0; i < NROLL; i++)
		ck_assert_msg(lc[i].told > 0, "%s was never told to reconnect",
			      lc[i].nick);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM messages m "
				 "JOIN rooms r ON r.id = m.room_id "
				 "WHERE r.name = 'storm'",
				 NULL),
			 k);
	for (int i = 0; i < NROLL; i++) {
		tcl_free(lc[i].c);
		tsse_free(sc[i].s);
	}
	tproxy_stop(&px);
}
END_TEST

/* The canary variant of contrib's nginx config: instance 3 weight 1, the
 * others 9, and nginx -t accepts it. */
START_TEST(test_canary_config_checks_out)
{
	char dir[900], cmd[2048], path[1000], *conf;

	trun_output_dir(dir, sizeof(dir));
	snprintf(cmd, sizeof(cmd),
		 "BD_NGINX_PREFIX='%s/nginx' '%s/contrib/nginx/run.sh' check "
		 "--canary 3 >'%s/run.out' 2>&1",
		 dir, getenv("BD_TOP") ? getenv("BD_TOP") : ".", dir);
	ck_assert_msg(system(cmd) == 0, "%s failed (see %s/run.out)", cmd,
		      dir);
	snprintf(path, sizeof(path), "%s/nginx/babydiscord.conf", dir);
	conf = trun_slurp(path, NULL);
	ck_assert_msg(conf, "no %s", path);
	ck_assert_msg(strstr(conf, "server 127.0.0.1:3001 weight=9 ") &&
			      strstr(conf, "server 127.0.0.1:3002 weight=9 ") &&
			      strstr(conf, "server 127.0.0.1:3003 weight=1 "),
		      "%s", conf);
	free(conf);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_reconnect_storm_nothing_lost_or_doubled, 180,
			  NULL),
		TFIX_CASE(test_dead_instance_nickname_free_at_once, 60, NULL),
		TFIX_CASE(test_rolling_restart_nothing_lost_or_doubled, 180,
			  NULL),
		TFIX_CASE(test_canary_config_checks_out, 30, tfix_setup),
	};

	return tfix_main("storm", cases, TMAIN_N(cases), NULL);
}
