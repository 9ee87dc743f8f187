/*
 * Injection and forgery: message text with SQL metacharacters, format
 * directives, backslashes, JSON and HTML breakers is stored and shown
 * byte for byte (TCP lines, event streams, the table); nicknames and room
 * names with such characters are refused and change nothing; nothing a
 * client sends makes a log line of its own; session ids never reach the
 * log, even at debug level; static files are only regular files directly
 * in static_dir (no symlinks out, no directories, no hidden files).
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
#define BAD_NICK "[system] error: invalid nickname (1-32 letters, digits, _ or -)"
#define BAD_ROOM \
	"[system] error: invalid room name (1-50 lowercase letters, digits, _ or -)"

static const char *const hostile_text[] = {
	"'; DROP TABLE messages; --",
	"Robert'); DELETE FROM users;--",
	"100% %s %n %x %% %1$s",
	"back\\slash \\\\ \\n \\\" \\u0000 text",
	"\"},{\"content\":\"forged",
	"</script><b>x</b><img src=x onerror=alert(1)>",
	"$1 $$ E'\\\\x00' :r \\set",
	"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80",
};
#define NTEXT (sizeof(hostile_text) / sizeof(hostile_text[0]))

/* The room's messages in seq order, as stored. */
static PGresult *stored_rows(const char *room)
{
	const char *v[1] = { room };
	PGresult *res;

	tdb_int(&T_DB, "SELECT 1", NULL);	/* connects T_DB.conn */
	res = PQexecParams(T_DB.conn,
			   "SELECT m.nickname, m.content FROM messages m "
			   "JOIN rooms r ON r.id = m.room_id WHERE r.name = $1 "
			   "ORDER BY m.seq",
			   1, NULL, v, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s",
		      PQresultErrorMessage(res));
	return res;
}

/*
 * Each text sent over TCP by alice and over HTTP by carol: bob (TCP) gets
 * "[inj] nick: text" exactly, carol's stream an event whose JSON decodes
 * to exactly the text, and the table holds exactly the text, in order;
 * every table is still there.
 */
START_TEST(test_hostile_text_stored_and_shown_verbatim)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	char sid[THTTP_SID_LEN + 1], want[256];
	struct tsse *s;
	struct tsse_msg m;
	PGresult *res;

	do_create(alice, "inj");
	do_join_seen(bob, "inj", alice);
	api_user(HPORT, "carol", HPORT, "/join inj", sid);
	expect_next(alice, "[system] carol joined inj");
	expect_next(bob, "[system] carol joined inj");
	s = sse_open_room(HPORT, "carol's stream", "inj", sid, NULL);
	for (size_t i = 0; i < NTEXT; i++) {
		tcl_send(alice, "%s", hostile_text[i]);
		snprintf(want, sizeof(want), "[inj] alice: %s", hostile_text[i]);
		expect_next(alice, want);
		expect_next(bob, want);
		sse_expect_msg(s, &m);
		ck_assert_str_eq(m.content, hostile_text[i]);
		ck_assert_str_eq(m.user, "alice");

		api_say(HPORT, sid, "inj", hostile_text[i], NULL);
		snprintf(want, sizeof(want), "[inj] carol: %s", hostile_text[i]);
		expect_next(bob, want);
		expect_next(alice, want);
		sse_expect_msg(s, &m);
		ck_assert_str_eq(m.content, hostile_text[i]);
	}
	res = stored_rows("inj");
	ck_assert_int_eq(PQntuples(res), 2 * (int)NTEXT);
	for (int i = 0; i < 2 * (int)NTEXT; i++) {
		ck_assert_str_eq(PQgetvalue(res, i, 0), i % 2 ? "carol" : "alice");
		ck_assert_str_eq(PQgetvalue(res, i, 1), hostile_text[i / 2]);
	}
	PQclear(res);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM pg_tables WHERE "
				 "tablename IN ('messages', 'users', 'rooms')",
				 NULL),
			 3);
	tsse_free(s);
	tcl_free(alice);
	tcl_free(bob);
}
END_TEST

/*
 * Names with SQL metacharacters, %, backslashes, quotes or non-ASCII are
 * refused over TCP (/nick, /create, /join) and HTTP (/api/connect), and
 * nothing changes: the nickname and current room stay, no user or room
 * row appears.
 */
START_TEST(test_hostile_names_refused)
{
	static const char *const nicks[] = {
		"a'b", "x;DROP", "100%", "back\\slash", "q\"uote",
		"h\xc3\xa9", "a--", /* valid: a control */
	};
	static const char *const rooms[] = {
		"a'b", "r;drop", "50%", "back\\slash", "q\"r", "Upper",
		"h\xc3\xa9", "x)--",
	};
	struct tcl *alice = tcl_user(PORT, "alice");
	long long users, nrooms;
	char line[128];

	do_create(alice, "safe");
	users = tdb_int(&T_DB, "SELECT count(*) FROM users", NULL);
	nrooms = tdb_int(&T_DB, "SELECT count(*) FROM rooms", NULL);
	for (size_t i = 0; i + 1 < sizeof(nicks) / sizeof(nicks[0]); i++) {
		struct thttp_resp r;
		json_t *body = json_pack("{ss}", "nickname", nicks[i]);
		char *text = json_dumps(body, JSON_COMPACT);

		snprintf(line, sizeof(line), "/nick %s", nicks[i]);
		expect_reply(alice, line, BAD_NICK);
		thttp_post(HPORT, "/api/connect", text, &r);
		expect_status(&r, 400);
		ck_assert_str_eq(r.body, "{\"error\":\"invalid nickname (1-32 "
					 "letters, digits, _ or -)\"}");
		free(text);
		json_decref(body);
	}
	for (size_t i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
		snprintf(line, sizeof(line), "/create %s", rooms[i]);
		expect_reply(alice, line, BAD_ROOM);
		snprintf(line, sizeof(line), "/join %s", rooms[i]);
		expect_reply(alice, line, BAD_ROOM);
	}
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM users", NULL),
			 users);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM rooms", NULL),
			 nrooms);
	/* Still alice, still in safe. */
	do_say(alice, "safe", "still here");
	expect_reply(alice, "/nick a--", "[system] You are now a--");
	tcl_free(alice);
}
END_TEST

static void setup_debug(void)
{
	struct tsrv_opts o = { .log_level = "debug" };

	tfix_use(&o);
}

/* Whether line looks like one of the server's text log lines:
 * "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL event ...". */
static bool log_line_ok(const char *line, size_t len)
{
	static const char *const levels[] = { " DEBUG ", " INFO ", " WARN ",
					      " ERROR " };
	const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t n = strlen(shape);

	if (len < n + 7)
		return false;
	for (size_t i = 0; i < n; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)line[i])
				    : line[i] != shape[i])
			return false;
	for (size_t i = 0; i < 4; i++)
		if (!strncmp(line + n, levels[i], strlen(levels[i])))
			return true;
	return false;
}

/*
 * At debug level, hostile bytes everywhere a client can put them (message
 * text with CR and LF over HTTP, a TCP line with CR, an encoded newline in
 * a path and a query, a nickname with a newline) never start a log line:
 * every line of the log has the server's shape. Session ids (a real one
 * used for a command, a message, a stream and the disconnect, and a wrong
 * one) appear nowhere in it.
 */
START_TEST(test_log_not_forged_and_no_session_ids)
{
	static const char forged[] = "2026-01-01T00:00:00.000Z ERROR forged=1";
	struct tcl *alice = tcl_user(PORT, "alice");
	char sid[THTTP_SID_LEN + 1], wrong[THTTP_SID_LEN + 1], path[256];
	char body[512];
	struct thttp_resp r;
	struct tsse *s;
	char *log, *p;
	int lines = 0;

	do_create(alice, "logs");
	tcl_send(alice, "x\r%s", forged);
	expect_prefix(alice, "[logs] alice: x");
	api_user(HPORT, "carol", HPORT, "/join logs", sid);
	expect_next(alice, "[system] carol joined logs");
	snprintf(body, sizeof(body),
		 "{\"session_id\":\"%s\",\"room\":\"logs\",\"content\":"
		 "\"y\\n%s\\r\\n%s\"}",
		 sid, forged, forged);
	thttp_post(HPORT, "/api/message", body, &r);
	expect_status(&r, 200);
	expect_prefix(alice, "[logs] carol: y");
	thttp_post(HPORT, "/api/connect",
		   "{\"nickname\":\"a\\nERROR forged=1\"}", &r);
	expect_status(&r, 400);
	thttp_get(HPORT, "/%0aERROR%20forged=1", &r);
	expect_status(&r, 404);
	snprintf(path, sizeof(path),
		 "/api/messages/logs?session_id=%s&last_event_id=%%0aforged",
		 sid);
	s = tsse_open(HPORT, "carol's stream", path, NULL);
	sse_expect_open(s);
	json_decref(api_command(HPORT, sid, "/help", true));
	memcpy(wrong, sid, sizeof(wrong));
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	expect_command_refused(HPORT, wrong, "/help", 404);
	api_disconnect(HPORT, sid);
	tsse_free(s);
	do_quit(alice);
	free(tsrv_wait_log(&T_SRV, " disconnect ", trun_ms(T_WAIT)));

	log = tsrv_log_tail(&T_SRV, 1 << 22);
	for (p = log; *p;) {
		size_t len = strcspn(p, "\n");

		ck_assert_msg(log_line_ok(p, len), "not a log line: %.*s",
			      (int)len, p);
		lines++;
		p += len + (p[len] == '\n');
	}
	ck_assert_int_gt(lines, 10);
	ck_assert_msg(!strstr(log, "\nERROR") && !strstr(log, "\n2026-01-01"),
		      "a forged line");
	ck_assert_msg(!strstr(log, sid), "session id %s logged", sid);
	ck_assert_msg(!strstr(log, wrong), "wrong session id %s logged",
		      wrong);
	free(log);
	tcl_free(alice);
}
END_TEST

/* A scratch static_dir for this test: index.html, .hidden, sub/a.html,
 * and symlinks to a file outside it and to /etc/passwd. */
static char static_dir[1024];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert(!fclose(f));
}

static void setup_static_scratch(void)
{
	static char json[1200];
	char dir[900], p[2048];
	struct tsrv_opts o = { .extra_json = json };

	trun_output_dir(dir, sizeof(dir));
	snprintf(static_dir, sizeof(static_dir), "%s/static", dir);
	snprintf(p, sizeof(p), "rm -rf '%s' '%s/secret.txt'", static_dir, dir);
	ck_assert(!system(p));
	snprintf(p, sizeof(p), "%s/sub", static_dir);
	trun_mkdirs(p);
	snprintf(p, sizeof(p), "%s/index.html", static_dir);
	write_file(p, "<!doctype html><title>scratch</title>\n");
	snprintf(p, sizeof(p), "%s/.hidden", static_dir);
	write_file(p, "hidden file\n");
	snprintf(p, sizeof(p), "%s/sub/a.html", static_dir);
	write_file(p, "nested file\n");
	snprintf(p, sizeof(p), "%s/secret.txt", dir);
	write_file(p, "TOP SECRET outside static_dir\n");
	snprintf(p, sizeof(p), "%s/link.txt", static_dir);
	ck_assert(!symlink("../secret.txt", p));
	snprintf(p, sizeof(p), "%s/passwd.txt", static_dir);
	ck_assert(!symlink("/etc/passwd", p));
	snprintf(json, sizeof(json), "\"static_dir\": \"%s\"", static_dir);
	tfix_use(&o);
}

/*
 * Only regular files directly in static_dir are served: the index by its
 * name and at /, never a symlink (in or out), a subdirectory, a file in
 * one, a hidden file, or a listing.
 */
START_TEST(test_static_only_regular_files)
{
	static const char *const refused[] = {
		"/link.txt", "/passwd.txt", "/sub", "/sub/", "/sub/a.html",
		"/.hidden", "/static/", "/..", "/%2e%2e/secret.txt",
	};
	struct thttp_resp r;

	thttp_get(HPORT, "/index.html", &r);
	expect_status(&r, 200);
	ck_assert_str_eq(r.body, "<!doctype html><title>scratch</title>\n");
	thttp_get(HPORT, "/", &r);
	expect_status(&r, 200);
	ck_assert_str_eq(r.body, "<!doctype html><title>scratch</title>\n");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		thttp_get(HPORT, refused[i], &r);
		ck_assert_msg(r.status == 404, "GET %s: %d %.200s", refused[i],
			      r.status, r.body);
		ck_assert_msg(!strstr(r.body, "SECRET") &&
				      !strstr(r.body, "root:") &&
				      !strstr(r.body, "nested") &&
				      !strstr(r.body, "hidden file") &&
				      !strstr(r.body, "a.html"),
			      "GET %s leaked: %.200s", refused[i], r.body);
	}
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_hostile_text_stored_and_shown_verbatim, 60,
			  NULL),
		TFIX_CASE(test_hostile_names_refused, 60, NULL),
		TFIX_CASE(test_log_not_forged_and_no_session_ids, 60,
			  setup_debug),
		TFIX_CASE(test_static_only_regular_files, 60,
			  setup_static_scratch),
	};

	return tfix_main("inject", cases, TMAIN_N(cases), NULL);
}
