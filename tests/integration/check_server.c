/*
 * The server process: /health (and its stream count when clients vanish),
 * SIGTERM and SIGINT, where it listens, its command line, its config file
 * (unknown keys, bad values) and the DATABASE_URL override.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"
#include "../helpers/tsse.h"

#define PORT tfix_tcp_port()
#define HPORT tfix_http_port()

START_TEST(test_health_ok)
{
	struct thttp_resp r;

	tfix_begin();
	thttp_get(T_SRV.http_port, "/health", &r);
	ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
	ck_assert_msg(thttp_json_has(r.body, "status", "healthy"), "body: %s",
		      r.body);
	ck_assert_msg(thttp_json_has(r.body, "db", "connected"), "body: %s",
		      r.body);
	ck_assert_msg(thttp_json_has(r.body, "instance_id", "test"), "body: %s",
		      r.body);
	/* A number from pg_notification_queue_usage(), 0 when idle. */
	ck_assert_msg(strstr(r.body, "\"notify_queue_usage\":0"), "body: %s",
		      r.body);
}
END_TEST

/* A database URL (in buf) for a port nothing listens on. */
static const char *unreachable_url(char *buf, size_t len)
{
	int closed, unused;

	tsrv_free_ports(&closed, &unused);
	snprintf(
		buf, len,
		"host=127.0.0.1 port=%d user=nobody dbname=nothing connect_timeout=2",
		closed);
	return buf;
}

START_TEST(test_health_503_without_database)
{
	struct tsrv_opts o = { 0 };
	struct tsrv s;
	struct thttp_resp r;
	char url[256], *ready;
	int64_t deadline;

	o.database_url = unreachable_url(url, sizeof(url));
	o.instance_id = "nodb";
	tsrv_init(&s, "server-nodb", &o);
	tsrv_spawn(&s);
	deadline = trun_now_ms() + trun_ms(T_WAIT);
	while (!thttp_try_get(s.http_port, "/health", &r, trun_ms(T_WAIT))) {
		ck_assert_msg(!tsrv_exited(&s), "server exited; log %s", s.log);
		ck_assert_msg(trun_now_ms() < deadline,
			      "HTTP port %d never answered", s.http_port);
		trun_pace();
	}
	ck_assert_msg(r.status == 503, "status %d: %s", r.status, r.body);
	ck_assert_msg(thttp_json_has(r.body, "status", "unhealthy"), "body: %s",
		      r.body);
	ck_assert_msg(thttp_json_has(r.body, "db", "disconnected"), "body: %s",
		      r.body);
	/* Without the database it must not claim to be ready. */
	ready = tsrv_log_find(&s, " INFO ready ");
	ck_assert_msg(!ready, "logged \"%s\" without a database", ready);
	tsrv_stop(&s);
}
END_TEST

START_TEST(test_sigterm_notifies_clients_and_exits_zero)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *g = tcl_guest(PORT, "guest");

	do_create(alice, "general");
	tsrv_signal(&T_SRV, SIGTERM);
	expect_next(alice, "[system] server restarting, please reconnect");
	expect_next(bob, "[system] server restarting, please reconnect");
	expect_next(g, "[system] server restarting, please reconnect");
	expect_eof(alice);
	expect_eof(bob);
	expect_eof(g);
	tsrv_assert_exit_ok(&T_SRV, tsrv_wait_exit(&T_SRV, trun_ms(10000)));
	/* Its users left presence with it: their names are free at once. */
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM presence", NULL),
			 0);
}
END_TEST

/* A GET /health on the open connection fd; the answer's head and body. */
static void health_on(int fd, char *buf, size_t cap)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
	size_t n = 0;

	ck_assert_int_eq(write(fd, req, sizeof(req) - 1),
			 (ssize_t)sizeof(req) - 1);
	/* Until the body (after the blank line) holds its closing brace. */
	while (n < cap - 1) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		char *body;

		ck_assert_msg(r > 0, "health: connection closed after %zu bytes",
			      n);
		n += (size_t)r;
		buf[n] = '\0';
		body = strstr(buf, "\r\n\r\n");
		if (body && strchr(body, '}'))
			return;
	}
	ck_abort_msg("health answer too long");
}

/*
 * SIGTERM drains: while a statement is still waiting for the database,
 * /health (on a connection made before) says 503 "draining", both ports
 * refuse new connections, line clients are told to reconnect and closed,
 * streams end; once the statement is done the server exits 0.
 */
START_TEST(test_sigterm_drains)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tsse *st;
	char buf[4096], sid[64];
	int keep, fd;

	do_create(alice, "general");
	api_user(HPORT, "watcher", HPORT, "/join general", sid);
	expect_next(alice, "[system] watcher joined general");
	st = sse_open_room(HPORT, "watcher", "general", sid, NULL);
	keep = trun_dial(HPORT, 0, false, "keep-alive");
	health_on(keep, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "HTTP/1.1 200 ") &&
			      strstr(buf, "\"status\":\"healthy\"") &&
			      strstr(buf, "\"connections\":{\"tcp\":1,"),
		      "before: %s", buf);
	/* A statement in flight: the rooms table locked under /rooms. */
	tdb_hold(&T_DB, "LOCK TABLE rooms");
	tcl_send(alice, "/rooms");
	tdb_wait_server_blocked(&T_DB);
	tsrv_signal(&T_SRV, SIGTERM);
	expect_next(alice, "[system] server restarting, please reconnect");
	sse_expect_end(st);
	health_on(keep, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "HTTP/1.1 503 ") &&
			      strstr(buf, "\"status\":\"draining\""),
		      "draining: %s", buf);
	fd = trun_dial(PORT, 0, true, "late tcp");
	ck_assert_msg(fd < 0, "a new TCP connection was accepted");
	fd = trun_dial(HPORT, 0, true, "late http");
	ck_assert_msg(fd < 0, "a new HTTP connection was accepted");
	ck_assert_msg(!tsrv_exited(&T_SRV), "exited before its statement");
	tdb_release(&T_DB);
	tsrv_assert_exit_ok(&T_SRV, tsrv_wait_exit(&T_SRV, trun_ms(10000)));
	close(keep);
	tcl_free(alice);
	tsse_free(st);
}
END_TEST

/* Listening sockets on port in /proc/net/<file>: their local addresses. */
static int listeners(const char *file, int port, char addrs[][40], int max)
{
	char path[64], line[512];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/net/%s", file);
	f = fopen(path, "r");
	if (!f)
		return 0; /* no IPv6 */
	while (fgets(line, sizeof(line), f)) {
		char local[40];
		unsigned p, st;

		if (sscanf(line, " %*d: %39[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x",
			   local, &p, &st) != 3)
			continue;
		if (st != 0x0A || (int)p != port || n == max)
			continue;
		snprintf(addrs[n++], 40, "%s", local);
	}
	fclose(f);
	return n;
}

static int try_connect(const char *ip, int port)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), e = 0;

	ck_assert(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	ck_assert(inet_pton(AF_INET, ip, &sa.sin_addr) == 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		e = errno;
	close(fd);
	return e;
}

START_TEST(test_listens_only_on_loopback)
{
	const int ports[2] = { PORT, T_SRV.http_port };

	for (int i = 0; i < 2; i++) {
		char a4[8][40], a6[8][40];
		int n4 = listeners("tcp", ports[i], a4, 8);
		int n6 = listeners("tcp6", ports[i], a6, 8);
		int e;

		ck_assert_msg(n4 + n6 > 0, "nothing listens on port %d",
			      ports[i]);
		for (int j = 0; j < n4; j++)
			ck_assert_msg(
				!strcmp(a4[j], "0100007F"),
				"port %d: IPv4 listener on %s, not 127.0.0.1",
				ports[i], a4[j]);
		for (int j = 0; j < n6; j++)
			ck_assert_msg(
				!strcmp(a6[j],
					"0000000000000000FFFF00000100007F"),
				"port %d: IPv6 listener on %s, not ::ffff:127.0.0.1",
				ports[i], a6[j]);
		ck_assert_msg(!try_connect("127.0.0.1", ports[i]),
			      "port %d: cannot connect on 127.0.0.1", ports[i]);
		/* Bound to 127.0.0.1 alone, other addresses are refused. */
		e = try_connect("127.0.0.2", ports[i]);
		ck_assert_msg(
			e == ECONNREFUSED,
			"port %d: connect to 127.0.0.2: %s (expected refused)",
			ports[i], e ? strerror(e) : "accepted");
	}
}
END_TEST

START_TEST(test_sigint_notifies_clients_and_exits_zero)
{
	struct tcl *alice = tcl_user(PORT, "alice");

	do_create(alice, "general");
	tsrv_signal(&T_SRV, SIGINT);
	expect_next(alice, "[system] server restarting, please reconnect");
	expect_eof(alice);
	tsrv_assert_exit_ok(&T_SRV, tsrv_wait_exit(&T_SRV, trun_ms(10000)));
}
END_TEST

START_TEST(test_help_and_version_options)
{
	const char *const help[] = { "", "--help", NULL };
	const char *const version[] = { "", "--version", NULL };
	char out[4096];
	int st;

	st = tsrv_run(help, out, sizeof(out), trun_ms(T_WAIT));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "--help: status %#x: %s", st, out);
	ck_assert_msg(strstr(out, "--config"),
		      "--help does not mention --config: %s", out);
	st = tsrv_run(version, out, sizeof(out), trun_ms(T_WAIT));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "--version: status %#x: %s", st, out);
	ck_assert_msg(out[0], "--version printed nothing");
}
END_TEST

START_TEST(test_unknown_config_key_rejected)
{
	struct tsrv_opts o = { .database_url = "postgresql:///unused",
			       .extra_json = "\"no_such_key\": 1" };
	struct tsrv s;
	char *line;
	int st;

	tsrv_init(&s, "server-badkey", &o);
	tsrv_spawn(&s);
	st = tsrv_wait_exit(&s, trun_ms(T_WAIT));
	ck_assert_msg(!(WIFEXITED(st) && WEXITSTATUS(st) == 0),
		      "a config with an unknown key was accepted");
	ck_assert_msg(WIFEXITED(st), "crashed on a bad config: status %#x", st);
	line = tsrv_log_find(&s, "no_such_key");
	ck_assert_msg(line, "the log does not name the unknown key; log %s",
		      s.log);
	free(line);
}
END_TEST

/*
 * Bad values of known keys: each one alone in a config file stops the
 * server before it does anything, with exit status 2 and a message on
 * stderr naming the key.
 */
START_TEST(test_bad_config_values_rejected)
{
	static const struct {
		const char *key, *json;
	} bad[] = {
		{ "tcp_port", "\"tcp_port\": 70000" },
		{ "tcp_port", "\"tcp_port\": -1" },
		{ "http_port", "\"http_port\": \"3001\"" },
		{ "log_level", "\"log_level\": \"loud\"" },
		{ "log_level", "\"log_level\": 3" },
		{ "history_size", "\"history_size\": -1" },
		{ "history_size", "\"history_size\": 2.5" },
		{ "max_message_bytes", "\"max_message_bytes\": \"2000\"" },
		{ "outq_limit_bytes", "\"outq_limit_bytes\": 100" },
		{ "presence_timeout_s", "\"presence_timeout_s\": 1" },
		{ "db_queue_limit", "\"db_queue_limit\": null" },
		{ "listen_address", "\"listen_address\": \"localhost\"" },
		{ "instance_id", "\"instance_id\": 7" },
		{ "database_url", "\"database_url\": [\"x\"]" },
	};
	char dir[1024], path[1100], out[4096];
	const char *const argv[] = { "", "--config", path, NULL };

	trun_output_dir(dir, sizeof(dir));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f;
		int st;

		snprintf(path, sizeof(path), "%s/bad%zu.json", dir, i);
		f = fopen(path, "w");
		ck_assert_msg(f, "%s: cannot write", path);
		fprintf(f, "{ %s }\n", bad[i].json);
		fclose(f);
		st = tsrv_run(argv, out, sizeof(out), trun_ms(T_WAIT));
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2,
			      "{%s}: status %#x (want exit 2): %s", bad[i].json,
			      st, out);
		ck_assert_msg(strstr(out, bad[i].key),
			      "{%s}: the message does not name %s: %s",
			      bad[i].json, bad[i].key, out);
	}
}
END_TEST

/*
 * A stream client that goes away is noticed at once: its socket's close
 * ends the stream. The heartbeat is an hour, so nothing but the close can
 * end them; /health's stream count has no event, so it is polled (paced)
 * until it is 0, with only the usual deadline of a wait.
 */
START_TEST(test_vanished_stream_client_noticed_at_once)
{
	struct tsrv_opts o = { .extra_json = "\"sse_heartbeat_s\": 3600" };
	char sid[THTTP_SID_LEN + 1];
	struct tsse *fin, *rst;
	int64_t deadline;
	int port;

	tfix_use(&o);
	tfix_begin();
	port = T_SRV.http_port;
	api_connect(port, "alice", sid);
	json_decref(api_command(port, sid, "/create general", true));
	ck_assert_int_eq(api_say(port, sid, "general", "hello", NULL), 1);
	fin = sse_open_room(port, "fin", "general", sid, NULL);
	sse_expect_seq(fin, 1, NULL);
	rst = sse_open_room(port, "rst", "general", sid, NULL);
	sse_expect_seq(rst, 1, NULL);
	ck_assert_int_eq(health_streams(port, 0), 2);
	/* One goes with a FIN, one with a reset; neither says goodbye. */
	tsse_free(fin);
	tsse_abort(rst);
	deadline = trun_now_ms() + trun_ms(T_WAIT);
	for (long long n; (n = health_streams(port, 0)) != 0; trun_pace())
		ck_assert_msg(trun_now_ms() < deadline,
			      "/health still counts %lld streams %d ms after their clients vanished",
			      n, trun_ms(T_WAIT));
	/* The session lives on and streams again. */
	fin = sse_open_room(port, "again", "general", sid, NULL);
	sse_expect_seq(fin, 1, NULL);
	ck_assert_int_eq(health_streams(port, 0), 1);
}
END_TEST

START_TEST(test_database_url_env_overrides_config)
{
	struct tsrv_opts o = { 0 };
	struct tsrv s;
	struct thttp_resp r;
	char url[256];
	struct tcl *c;

	tfix_begin_db();
	o.database_url = unreachable_url(url, sizeof(url));
	o.env_database_url = T_DB.url;
	tsrv_init(&s, "server-envurl", &o);
	tsrv_start(&s); /* ready: it reached the test database */
	thttp_get(s.http_port, "/health", &r);
	ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
	c = tcl_user(s.tcp_port, "alice");
	do_create(c, "general");
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT count(*) FROM rooms WHERE name = 'general'",
			NULL),
		1);
	tcl_free(c);
	tsrv_stop(&s);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_health_ok, 30, NULL),
		TFIX_CASE(test_health_503_without_database, 30, NULL),
		TFIX_CASE(test_sigterm_drains, 30, NULL),
		TFIX_CASE(test_sigterm_notifies_clients_and_exits_zero, 30,
			  NULL),
		TFIX_CASE(test_sigint_notifies_clients_and_exits_zero, 30,
			  NULL),
		TFIX_CASE(test_listens_only_on_loopback, 30, NULL),
		TFIX_CASE(test_help_and_version_options, 30, NULL),
		TFIX_CASE(test_unknown_config_key_rejected, 30, NULL),
		TFIX_CASE(test_bad_config_values_rejected, 30, NULL),
		TFIX_CASE(test_vanished_stream_client_noticed_at_once, 30,
			  NULL),
		TFIX_CASE(test_database_url_env_overrides_config, 30, NULL),
	};

	return tfix_main("server", cases, TMAIN_N(cases), NULL);
}
