/*
 * Injection and forgery. Message text with SQL metacharacters, format
 * directives, backslashes, JSON and HTML breakers and non-ASCII is shown
 * (TCP lines, event streams) and stored byte for byte, sent one at a time
 * and many in one write; nicknames and room names with such characters
 * are refused over TCP and HTTP and change nothing; nothing a client
 * sends makes a log line of its own (text and JSON logs, every line
 * parsed); session ids, right or wrong, never reach a debug log; static
 * files are only the regular files directly in static_dir.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define NICK_RULE "invalid nickname (1-32 letters, digits, _ or -)"
#define ROOM_RULE "invalid room name (1-50 lowercase letters, digits, _ or -)"

/* ---- message text ---- */

/* Backslashes are literal: "\\n" is a backslash and an n. */
static const char *const hostile_text[] = {
	"'; DROP TABLE messages; --",
	"Robert'); DELETE FROM users;--",
	"100% %s %n %x %% %1$s %*d",
	"back\\slash \\\\ \\n \\\" \\u0000 text",
	"\"},{\"content\":\"forged",
	"</script><b>x</b><img src=x onerror=alert(1)>",
	"$1 $$ E'\\\\x00' :r \\set ); NOTIFY room_1, 'x'",
	"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80",
	"[{\"k\":\"b\",\"r\":1}]', '{}'::jsonb) --",
};

/* Each text sent over TCP and over HTTP one at a time, then over TCP all
 * in one write. */
#define NSENT (3 * NELEM(hostile_text))

struct sent {
	const char *nick;
	const char *text;
	long long id; /* messages.id, from the event stream */
};

/*
 * The next line of a and of b is exactly "[inj] <nick>: <text>", and the
 * next message event of s decodes to exactly m's nick and text in room
 * inj; m->id gets its id. Failures name the caller's file:line.
 */
static void expect_shown_at(const char *file, int line, struct tcl *a,
			    struct tcl *b, struct tsse *s, struct sent *m)
{
	char want[512];
	struct tsse_msg ev;
	json_t *data, *content;
	bool same;

	snprintf(want, sizeof(want), "[inj] %s: %s", m->nick, m->text);
	tcl_expect_next_at(file, line, a, want, trun_ms(T_WAIT));
	tcl_expect_next_at(file, line, b, want, trun_ms(T_WAIT));
	tsse_expect_msg_at(file, line, s, &ev, trun_ms(T_WAIT));
	/* The data decoded here too: the whole string, NULs included. */
	data = json_loads(s->ev.data, 0, NULL);
	content = json_object_get(data, "content");
	same = json_is_string(content) &&
	       json_string_length(content) == strlen(m->text) &&
	       !memcmp(json_string_value(content), m->text, strlen(m->text));
	json_decref(data);
	if (!same || strcmp(ev.room, "inj") || strcmp(ev.user, m->nick))
		trun_fail(file, line,
			  "%s: wanted room inj, user %s, content \"%s\"; got "
			  "data %.1000s",
			  s->label, m->nick, m->text, s->ev.data);
	m->id = ev.id;
}

#define expect_shown(a, b, s, m) \
	expect_shown_at(__FILE__, __LINE__, (a), (b), (s), (m))

/*
 * alice (TCP) and carol (HTTP) send each text; alice and bob (TCP) get
 * "[inj] nick: text" byte for byte, carol's stream an event whose JSON
 * decodes to exactly the text, and the messages table holds exactly the
 * text in the same rows (ids), once each: nothing dropped, nothing
 * doubled, no table or user gone.
 */
START_TEST(test_hostile_text_stored_and_shown_verbatim)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct sent sent[NSENT];
	char sid[THTTP_SID_LEN + 1], all[2048];
	size_t n = 0, len = 0;
	struct tsse *s;
	PGresult *res;

	do_create(alice, "inj");
	do_join_seen(bob, "inj", alice);
	api_user(HPORT, "carol", HPORT, "/join inj", sid);
	expect_next(alice, "[system] carol joined inj");
	expect_next(bob, "[system] carol joined inj");
	s = sse_open_room(HPORT, "carol's stream", "inj", sid, NULL);
	for (size_t i = 0; i < NELEM(hostile_text); i++) {
		sent[n] = (struct sent){ "alice", hostile_text[i], 0 };
		tcl_send(alice, "%s", hostile_text[i]);
		expect_shown(alice, bob, s, &sent[n++]);
		sent[n] = (struct sent){ "carol", hostile_text[i], 0 };
		api_say(HPORT, sid, "inj", hostile_text[i], NULL);
		expect_shown(bob, alice, s, &sent[n++]);
	}
	/* All in one write: they may share a statement and a notification. */
	for (size_t i = 0; i < NELEM(hostile_text); i++)
		len += (size_t)snprintf(all + len, sizeof(all) - len, "%s\n",
					hostile_text[i]);
	ck_assert_uint_lt(len, sizeof(all));
	tcl_send_raw(alice, all, len);
	for (size_t i = 0; i < NELEM(hostile_text); i++) {
		sent[n] = (struct sent){ "alice", hostile_text[i], 0 };
		expect_shown(alice, bob, s, &sent[n++]);
	}

	res = tdb_query(&T_DB,
			"SELECT m.id, m.nickname, m.content FROM messages m "
			"JOIN rooms r ON r.id = m.room_id WHERE r.name = $1 "
			"ORDER BY m.seq",
			"inj", NULL);
	ck_assert_int_eq(PQntuples(res), (int)NSENT);
	for (int i = 0; i < (int)NSENT; i++) {
		ck_assert_int_eq(strtoll(PQgetvalue(res, i, 0), NULL, 10),
				 sent[i].id);
		ck_assert_str_eq(PQgetvalue(res, i, 1), sent[i].nick);
		ck_assert_msg(
			PQgetlength(res, i, 2) == (int)strlen(sent[i].text) &&
				!memcmp(PQgetvalue(res, i, 2), sent[i].text,
					strlen(sent[i].text)),
			"row %d: stored \"%s\", sent \"%s\"", i,
			PQgetvalue(res, i, 2), sent[i].text);
	}
	PQclear(res);
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT count(*) FROM unnest(ARRAY['users', "
			"'rooms', 'room_members', 'messages', "
			"'api_sessions']) t "
			"WHERE to_regclass('public.' || t) IS NOT NULL",
			NULL),
		5);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM messages", NULL),
			 NSENT);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT last_seq FROM rooms WHERE name = $1",
				 "inj", NULL),
			 NSENT);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM users WHERE nickname "
				 "IN ('alice', 'bob', 'carol')",
				 NULL),
			 3);
	tsse_free(s);
	tcl_free(alice);
	tcl_free(bob);
}
END_TEST

/* ---- names ---- */

/*
 * Nicknames and room names with SQL metacharacters, %, backslashes,
 * quotes, spaces or non-ASCII are refused over TCP (/nick, /create,
 * /join: "[system] error: ...") and HTTP (/api/connect: 400; the same
 * commands through /api/command: success false), and nothing changes:
 * no user, room or membership row appears, and alice and carol are still
 * themselves in their room.
 */
START_TEST(test_hostile_names_refused)
{
	/* Quotes, SQL, %, a backslash, $, non-ASCII (rooms: a capital). */
	static const char *const nicks[] = {
		"a'b", "x;DROP", "100%", "%s%n", "back\\slash",
		"q\"uote", "h\xc3\xa9", "a)--", "$1",
	};
	static const char *const rooms[] = {
		"a'b", "r;drop", "50%", "%s%n", "back\\slash",
		"q\"r", "Upper", "h\xc3\xa9", "x)--", "r$1",
	};
	struct tcl *alice = tcl_user(PORT, "alice");
	long long users, nrooms, members;
	char sid[THTTP_SID_LEN + 1], line[128];
	struct thttp_resp r;

	do_create(alice, "safe");
	api_user(HPORT, "carol", HPORT, "/join safe", sid);
	expect_next(alice, "[system] carol joined safe");
	users = tdb_int(&T_DB, "SELECT count(*) FROM users", NULL);
	nrooms = tdb_int(&T_DB, "SELECT count(*) FROM rooms", NULL);
	members = tdb_int(&T_DB, "SELECT count(*) FROM room_members", NULL);

	for (size_t i = 0; i < NELEM(nicks); i++) {
		snprintf(line, sizeof(line), "/nick %s", nicks[i]);
		expect_reply(alice, line, "[system] error: " NICK_RULE);
		expect_command(HPORT, sid, line, false, NICK_RULE);
		thttp_post_pack(HPORT, "/api/connect", &r, "{ss}", "nickname",
				nicks[i]);
		expect_error(&r, 400);
		ck_assert_str_eq(r.body, "{\"error\":\"" NICK_RULE "\"}");
	}
	for (size_t i = 0; i < NELEM(rooms); i++) {
		snprintf(line, sizeof(line), "/create %s", rooms[i]);
		expect_reply(alice, line, "[system] error: " ROOM_RULE);
		expect_command(HPORT, sid, line, false, ROOM_RULE);
		snprintf(line, sizeof(line), "/join %s", rooms[i]);
		expect_reply(alice, line, "[system] error: " ROOM_RULE);
		expect_command(HPORT, sid, line, false, ROOM_RULE);
	}
	/* A space makes two words: the usage. Over HTTP's connect it is
	 * one invalid name. */
	expect_reply(alice, "/nick a b", "[system] error: usage: /nick <name>");
	expect_reply(alice, "/create r b",
		     "[system] error: usage: /create <room>");
	expect_reply(alice, "/join r b", "[system] error: usage: /join <room>");
	expect_command(HPORT, sid, "/create r b", false,
		       "usage: /create <room>");
	thttp_post(HPORT, "/api/connect", "{\"nickname\":\"a b\"}", &r);
	expect_error(&r, 400);

	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM users", NULL),
			 users);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM rooms", NULL),
			 nrooms);
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM room_members",
				 NULL),
			 members);
	/* Still alice and carol, both still in safe. */
	do_say(alice, "safe", "still alice");
	api_say(HPORT, sid, "safe", "still carol", NULL);
	expect_next(alice, "[safe] carol: still carol");
	/* A valid name still works (the refusals are about the names). */
	expect_reply(alice, "/nick a--", "[system] You are now a--");
	tcl_free(alice);
}
END_TEST

/* ---- the log ---- */

/* What a forged log line would start with, in each format. */
#define FORGED_TEXT "1999-01-01T00:00:00.000Z ERROR forged=1"
#define FORGED_JSON \
	"{\"ts\":\"1999-01-01T00:00:00.000Z\",\"level\":\"error\",\"event\":\"forged\"}"
#define FORGED_SHORT "2026-01-01 ERROR forged=1"

static void setup_debug_text(void)
{
	struct tsrv_opts o = { .log_level = "debug" };

	tfix_use(&o);
}

/* The JSON log goes to the file the harness reads (TSRV_LOG_PATH). */
static void setup_debug_json(void)
{
	struct tsrv_opts o = {
		.log_level = "debug",
		.extra_json =
			"\"log_format\": \"json\", \"log_file\": \"" TSRV_LOG_PATH
			"\"",
	};

	tfix_use(&o);
}

/* The current time as the log writes it, plus add_s seconds. */
static void iso_now(char *buf, size_t len, int add_s)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += add_s;
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Whether ts has the log's shape and lies in [from, to]. */
static bool ts_ok(const char *ts, size_t len, const char *from, const char *to)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (len != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; i < len; i++)
		if (shape[i] == 'd' ? ts[i] < '0' || ts[i] > '9' :
				      ts[i] != shape[i])
			return false;
	return strncmp(ts, from, len) >= 0 && strncmp(ts, to, len) <= 0;
}

/* Bytes of p (up to end) in [a-z0-9_]. */
static size_t ident_len(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && ((*q >= 'a' && *q <= 'z') ||
			   (*q >= '0' && *q <= '9') || *q == '_'))
		q++;
	return (size_t)(q - p);
}

/*
 * Whether [p, end) is one whole line of the text log, as log_emit()
 * writes it: "TS LEVEL event", then " key=value" fields, a value bare
 * (no blank, control, quote, '=' or backslash) or quoted with \" \\ \n
 * \r \t \xNN escapes and no raw control byte; TS between from and to.
 */
static bool text_line_ok(const char *p, const char *end, const char *from,
			 const char *to)
{
	static const char *const levels[] = { " DEBUG ", " INFO ", " WARN ",
					      " ERROR " };
	size_t n, i;

	if (end - p < 24 || !ts_ok(p, 24, from, to))
		return false;
	p += 24;
	for (i = 0; i < NELEM(levels); i++)
		if ((size_t)(end - p) > strlen(levels[i]) &&
		    !strncmp(p, levels[i], strlen(levels[i])))
			break;
	if (i == NELEM(levels))
		return false;
	p += strlen(levels[i]);
	if (!(n = ident_len(p, end)))
		return false;
	for (p += n; p < end;) {
		if (*p++ != ' ' || !(n = ident_len(p, end)))
			return false;
		p += n;
		if (p == end || *p++ != '=')
			return false;
		if (p < end && *p == '"') {
			for (p++;; p++) {
				unsigned char c;

				if (p == end)
					return false; /* unterminated */
				c = (unsigned char)*p;
				if (c == '"')
					break;
				if (c < 0x20 || c == 0x7f)
					return false;
				if (c != '\\')
					continue;
				if (++p == end)
					return false;
				if (*p == 'x') {
					if (end - p < 3 ||
					    !strchr("0123456789abcdef", p[1]) ||
					    !strchr("0123456789abcdef", p[2]))
						return false;
					p += 2;
				} else if (!strchr("\"\\nrt", *p)) {
					return false;
				}
			}
			p++;
		} else {
			const char *v = p;

			while (p < end && (unsigned char)*p > ' ' &&
			       *p != '"' && *p != '=' && *p != '\\' &&
			       *p != 0x7f)
				p++;
			if (p == v)
				return false;
		}
	}
	return true;
}

/* Whether line is one JSON object of the JSON log: ts (between from and
 * to), level, instance (ours) and event ([a-z0-9_]+) strings. */
static bool json_line_ok(const char *line, const char *from, const char *to)
{
	static const char *const levels[] = { "debug", "info", "warn",
					      "error" };
	json_t *o = json_loads(line, 0, NULL);
	const char *ts, *lv, *in, *ev;
	bool ok = false;

	ts = json_string_value(json_object_get(o, "ts"));
	lv = json_string_value(json_object_get(o, "level"));
	in = json_string_value(json_object_get(o, "instance"));
	ev = json_string_value(json_object_get(o, "event"));
	if (json_is_object(o) && ts && lv && in && ev &&
	    ts_ok(ts, strlen(ts), from, to) && !strcmp(in, T_SRV.instance_id) &&
	    *ev && ident_len(ev, ev + strlen(ev)) == strlen(ev))
		for (size_t i = 0; i < NELEM(levels); i++)
			ok |= !strcmp(lv, levels[i]);
	json_decref(o);
	return ok;
}

/*
 * This run's log (as the caller frees it), once its line with needle is
 * there; fails unless every line is one event of the configured format
 * logged since from. Returns the number of lines in *nlines.
 */
static char *read_log(const char *needle, const char *from, int *nlines)
{
	char to[40], *log, *p, *line;

	line = tsrv_wait_log(&T_SRV, needle, trun_ms(T_WAIT));
	ck_assert_msg(line, "no log line with %s", needle);
	free(line);
	iso_now(to, sizeof(to), 1);
	log = tsrv_log_tail(&T_SRV, 1 << 22);
	*nlines = 0;
	for (p = log; *p;) {
		size_t len = strcspn(p, "\n");

		ck_assert_msg(p[len] == '\n', "an unfinished line: %.300s", p);
		p[len] = '\0';
		ck_assert_msg(T_SRV.json_log ?
				      json_line_ok(p, from, to) :
				      text_line_ok(p, p + len, from, to),
			      "not one of the server's log lines: %.500s", p);
		ck_assert_msg(strncmp(p, "1999-", 5) &&
				      strncmp(p, "2026-01-01 ", 11) &&
				      strncmp(p, "{\"ts\":\"1999-", 12),
			      "a forged line: %.500s", p);
		p[len] = '\n';
		p += len + 1;
		++*nlines;
	}
	return log;
}

/*
 * At debug level: CR and LF in every place a client can put them
 * (message text over TCP and HTTP, an accepted nickname and room name, a
 * refused nickname, a path, a query, a header line), each followed by
 * text that looks like a log line, never start a line of the log: every
 * line of the run parses as one event of the server's format (text or
 * JSON, as configured), with a timestamp of this run.
 */
static void expect_log_not_forged(void)
{
	static const char head[] = "GET /health HTTP/1.1\r\n"
				   "Host: 127.0.0.1\r\n"
				   "X-A: b\r" FORGED_TEXT "\r\n\r\n";
	char from[40], sid[THTTP_SID_LEN + 1], path[256];
	struct tcl *alice, *dave;
	struct thttp_resp r;
	struct tsse *s;
	char *log;
	int lines;

	iso_now(from, sizeof(from), -1);
	alice = tcl_user(PORT, "alice");
	do_create(alice, "logs");
	/* A CR inside a line is removed; an LF ends it. */
	tcl_send_str(alice, "x\r" FORGED_TEXT "\n");
	expect_next(alice, "[logs] alice: x" FORGED_TEXT);
	tcl_send_str(alice, "p\n" FORGED_TEXT "\n");
	expect_next(alice, "[logs] alice: p");
	expect_next(alice, "[logs] alice: " FORGED_TEXT);
	/* Accepted names that came with a CR or an LF. */
	dave = tcl_guest(PORT, "dave");
	expect_reply(dave, "/nick eve\rx", "[system] You are now evex");
	api_user(HPORT, "carol", HPORT, "/join logs", sid);
	expect_next(alice, "[system] carol joined logs");
	json_decref(api_command(HPORT, sid, "/create lo\ngs2", true));
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM rooms "
				 "WHERE name = 'logs2'",
				 NULL),
			 1);
	/* Message text over HTTP. */
	api_say(HPORT, sid, "logs",
		"y\n" FORGED_TEXT "\r\n" FORGED_JSON "\n" FORGED_SHORT, NULL);
	expect_next(alice,
		    "[logs] carol: y" FORGED_TEXT FORGED_JSON FORGED_SHORT);
	/* Refused: a nickname, a path, a query, a header line. */
	thttp_post_pack(HPORT, "/api/connect", &r, "{ss}", "nickname",
			"a\n" FORGED_TEXT);
	expect_error(&r, 400);
	thttp_get(HPORT, "/%0a1999-01-01T00:00:00.000Z%20ERROR%20forged=1", &r);
	expect_status(&r, 404);
	snprintf(path, sizeof(path),
		 "/api/messages/logs?session_id=%s&last_event_id=%%0d%%0a"
		 "1999-01-01T00:00:00.000Z%%20ERROR%%20forged=1",
		 sid);
	s = tsse_open(HPORT, "carol's stream", path, NULL);
	sse_expect_open(s);
	ck_assert_int_ne(thttp_raw(HPORT, head, strlen(head), &r,
				   trun_ms(T_WAIT)),
			 THTTP_TIMEOUT);
	ck_assert_int_eq(r.status, 400);
	tsse_free(s);
	do_quit(alice);

	log = read_log(T_SRV.json_log ?
			       "\"nick\":\"alice\",\"reason\":\"quit\"" :
			       "nick=alice reason=quit",
		       from, &lines);
	ck_assert_int_gt(lines, 10);
	/* The accepted names reached the log, without their CR or LF. */
	ck_assert_ptr_nonnull(strstr(log, T_SRV.json_log ? "\"nick\":\"evex\"" :
							   "nick=evex"));
	ck_assert_ptr_nonnull(strstr(
		log, T_SRV.json_log ? "\"room\":\"logs2\"" : "room=logs2"));
	free(log);
	tcl_free(dave);
	tcl_free(alice);
}

/* The text log: no line forged (expect_log_not_forged()). */
START_TEST(test_log_lines_not_forged_text)
{
	expect_log_not_forged();
}
END_TEST

/* The JSON log: no line forged (expect_log_not_forged()). */
START_TEST(test_log_lines_not_forged_json)
{
	expect_log_not_forged();
}
END_TEST

/*
 * Session ids never reach the log, at debug level: not the ids of two
 * sessions used for /api/command, /api/message, streams, /api/disconnect
 * and /quit, nor wrong ones (one hex digit changed, another well-formed
 * one, a malformed one, an ended one) sent to every endpoint; not even
 * half of one. (check_logs.c looks at an info log after one connect.)
 */
START_TEST(test_session_ids_not_logged)
{
	char from[40], sid[THTTP_SID_LEN + 1], sid2[THTTP_SID_LEN + 1];
	char flipped[THTTP_SID_LEN + 1];
	const char *wrong[] = { flipped, "00112233445566778899aabbccddeeff",
				"not-a-session-id-but-a-secret-xyzzy", sid2 };
	const char *ids[] = { sid, sid2, wrong[0], wrong[1], wrong[2] };
	struct tcl *alice;
	struct tsse *s, *s2;
	struct tsse_msg m;
	char *log;
	int lines;

	iso_now(from, sizeof(from), -1);
	alice = tcl_user(PORT, "alice");
	do_create(alice, "keys");
	api_user(HPORT, "carol", HPORT, "/join keys", sid);
	expect_next(alice, "[system] carol joined keys");
	api_user(HPORT, "dave", HPORT, "/join keys", sid2);
	expect_next(alice, "[system] dave joined keys");
	s = sse_open_room(HPORT, "carol's stream", "keys", sid, NULL);
	s2 = sse_open_room(HPORT, "dave's stream", "keys", sid2, NULL);
	json_decref(api_command(HPORT, sid, "/rooms", true));
	json_decref(api_command(HPORT, sid, "/list", true));
	api_say(HPORT, sid, "keys", "hello", NULL);
	expect_next(alice, "[keys] carol: hello");
	sse_expect_msg(s, &m);
	sse_expect_msg(s2, &m);
	/* dave ends his session with /quit: his stream ends, his id is an
	 * ended one. */
	json_decref(api_command(HPORT, sid2, "/quit", true));
	sse_expect_end(s2);
	tsse_free(s2);

	memcpy(flipped, sid, sizeof(flipped));
	flipped[5] = flipped[5] == 'a' ? 'b' : 'a';
	for (size_t i = 0; i < NELEM(wrong); i++) {
		expect_command_refused(HPORT, wrong[i], "/list", 404);
		expect_say_refused(HPORT, wrong[i], "keys", "hi", 404);
		sse_expect_room_refused(HPORT, "a wrong id's stream", "keys",
					wrong[i], 404);
		expect_disconnect_refused(HPORT, wrong[i], 404);
	}
	api_disconnect(HPORT, sid);
	sse_expect_end(s);
	tsse_free(s);
	do_quit(alice);

	log = read_log("nick=alice reason=quit", from, &lines);
	ck_assert_msg(strstr(log, " DEBUG "), "no debug lines");
	/* No 16 characters in a row (half an id) of any id: shorter runs
	 * of hex digits could match a number in the log by chance. */
	for (size_t i = 0; i < NELEM(ids); i++)
		for (size_t at = 0; at + 16 <= strlen(ids[i]); at++) {
			char piece[17];

			memcpy(piece, ids[i] + at, 16);
			piece[16] = '\0';
			ck_assert_msg(!strstr(log, piece),
				      "%s of session id %s is in the log",
				      piece, ids[i]);
		}
	free(log);
	tcl_free(alice);
}
END_TEST

/* ---- static files ---- */

static const char index_html[] = "<!doctype html><title>scratch</title>\n";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert(!fclose(f));
}

static void make_link(const char *target, const char *dir, const char *name)
{
	char p[1100];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	ck_assert_msg(!symlink(target, p), "symlink %s: %s", p,
		      strerror(errno));
}

/*
 * A scratch static_dir under the test's output directory, made afresh:
 * index.html, .hidden, sub/a.html, and symlinks link.txt to secret.txt
 * (next to the directory), passwd-link to /etc/passwd and alias.html to
 * index.html.
 */
static void setup_static_scratch(void)
{
	static char json[1200];
	char out[900], dir[1000], p[2100];
	struct tsrv_opts o = { .extra_json = json };

	trun_output_dir(out, sizeof(out));
	snprintf(dir, sizeof(dir), "%s/static", out);
	snprintf(p, sizeof(p), "rm -rf '%s' '%s/secret.txt'", dir, out);
	ck_assert_msg(!system(p), "failed: %s", p);
	snprintf(p, sizeof(p), "%s/sub", dir);
	trun_mkdirs(p);
	snprintf(p, sizeof(p), "%s/index.html", dir);
	write_file(p, index_html);
	snprintf(p, sizeof(p), "%s/.hidden", dir);
	write_file(p, "hidden file\n");
	snprintf(p, sizeof(p), "%s/sub/a.html", dir);
	write_file(p, "nested file\n");
	snprintf(p, sizeof(p), "%s/secret.txt", out);
	write_file(p, "TOP SECRET outside static_dir\n");
	make_link("../secret.txt", dir, "link.txt");
	make_link("/etc/passwd", dir, "passwd-link");
	make_link("index.html", dir, "alias.html");
	snprintf(json, sizeof(json), "\"static_dir\": \"%s\"", dir);
	tfix_use(&o);
}

/*
 * Only regular files directly in static_dir are served: index.html by
 * its name and at /, never a symlink (out of the directory or within
 * it), a directory (no listing), a file in one, a hidden file or the file
 * next to the directory. The server loaded exactly one file.
 */
START_TEST(test_static_only_regular_files)
{
	static const char *const refused[] = {
		"/link.txt", "/passwd-link",	   "/alias.html", "/sub",
		"/sub/",     "/sub/a.html",	   "/.hidden",	  "/secret.txt",
		"/static/",  "/static/index.html",
	};
	static const char *const leaks[] = {
		"SECRET",      "root:",	 "nested file",
		"hidden file", "a.html", "<title>scratch",
	};
	struct thttp_resp r;
	char *line;

	thttp_get(HPORT, "/index.html", &r);
	expect_status(&r, 200);
	ck_assert_str_eq(r.body, index_html);
	thttp_get(HPORT, "/", &r);
	expect_status(&r, 200);
	ck_assert_str_eq(r.body, index_html);
	for (size_t i = 0; i < NELEM(refused); i++) {
		thttp_get(HPORT, refused[i], &r);
		ck_assert_msg(r.status == 404, "GET %s: %d %.200s", refused[i],
			      r.status, r.body);
		for (size_t j = 0; j < NELEM(leaks); j++)
			ck_assert_msg(!strstr(r.body, leaks[j]),
				      "GET %s leaked \"%s\": %.200s",
				      refused[i], leaks[j], r.body);
	}
	line = tsrv_log_find(&T_SRV, " static files=");
	ck_assert_msg(line && strstr(line, " static files=1 "),
		      "static event: %s", line ? line : "(none)");
	free(line);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_hostile_text_stored_and_shown_verbatim, 60,
			  NULL),
		TFIX_CASE(test_hostile_names_refused, 60, NULL),
		TFIX_CASE(test_log_lines_not_forged_text, 60, setup_debug_text),
		TFIX_CASE(test_log_lines_not_forged_json, 60, setup_debug_json),
		TFIX_CASE(test_session_ids_not_logged, 60, setup_debug_text),
		TFIX_CASE(test_static_only_regular_files, 60,
			  setup_static_scratch),
	};

	return tfix_main("inject", cases, TMAIN_N(cases), NULL);
}
