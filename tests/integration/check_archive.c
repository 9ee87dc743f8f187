/*
 * Archive and replay (migrate/archive, migrate/replay), the storage check
 * and the systemd units, against the test's database: an archive run moves
 * a room's old messages into one JSON file per month and deletes exactly
 * those; replaying the files puts back the same rows (ids, seq, names,
 * content, times); a failure before the rename or before the delete loses
 * nothing and leaves no partial file; runs never archive a message twice,
 * also when a month file grows; a running server shows replayed history
 * (its ring reloads on the NOTIFY replay sends; a stream resuming from
 * before the archive gets the messages back, not a reset).
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"
#include "../helpers/tsse.h"

#define PORT tfix_tcp_port()
#define HPORT tfix_http_port()

/* The room's rows are still before (one per line, by id). */
static char *rows_of(const char *room);

static void expect_rows(const char *room, const char *before)
{
	char *now = rows_of(room);

	ck_assert_str_eq(now, before);
	free(now);
}

/* The room's rows as text, one per line, by id. */
static char *rows_of(const char *room)
{
	return tdb_scalar(&T_DB,
			  "SELECT coalesce(string_agg(m.id || ' ' || m.seq || ' ' "
			  "|| m.nickname || ' ' || m.content || ' ' || "
			  "m.created_at::text, E'\\n' ORDER BY m.id), '') "
			  "FROM messages m JOIN rooms r ON r.id = m.room_id "
			  "WHERE r.name = $1",
			  room, NULL);
}

static long long count_of(const char *room)
{
	return tdb_int(&T_DB,
		       "SELECT count(*) FROM messages m JOIN rooms r "
		       "ON r.id = m.room_id WHERE r.name = $1",
		       room, NULL);
}

/* Runs a script under BD_TOP with DATABASE_URL; its exit status (0 when
 * it succeeded) and the first line of its output in out. */
static int run(char *out, size_t len, const char *env, const char *script,
	       const char *args)
{
	char cmd[8192];
	FILE *p;
	int st;

	tfix_begin();	/* T_DB exists */
	snprintf(cmd, sizeof(cmd), "%s DATABASE_URL='%s' '%s/%s' %s 2>&1", env,
		 T_DB.url, getenv("BD_TOP"), script, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	out[0] = '\0';
	if (fgets(out, (int)len, p))
		out[strcspn(out, "\n")] = '\0';
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* alice says n messages in room, then they are dated back: message k
 * (1-based) to `when` for k <= split, else to `later`. */
static struct tcl *stage_room(const char *room, int n, int split,
			      const char *when, const char *later)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	char text[32], ks[16];

	do_create(alice, room);
	for (int k = 1; k <= n; k++) {
		snprintf(text, sizeof(text), "m%03d it's \"%d\"", k, k);
		do_say(alice, room, text);
	}
	snprintf(ks, sizeof(ks), "%d", split);
	free(tdb_scalar(&T_DB,
		   "WITH u AS (UPDATE messages m SET created_at = CASE WHEN "
		   "m.seq <= $2::bigint THEN $3::timestamptz ELSE "
		   "$4::timestamptz END + m.seq * interval '1 second' "
		   "FROM rooms r WHERE r.id = m.room_id AND r.name = $1 "
		   "RETURNING 1) SELECT count(*) FROM u",
		   room, ks, when, later, NULL));
	return alice;
}

/* This test's archive directory, emptied the first time it is asked for
 * (output directories outlive runs). */
static char *archive_dir(void)
{
	static char dir[1024];
	char cmd[1100];

	if (dir[0])
		return dir;
	trun_output_dir(dir, sizeof(dir));
	strncat(dir, "/archive", sizeof(dir) - strlen(dir) - 1);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	return dir;
}

/* The file of room's month (room id from the table). */
static void month_file(char *path, size_t len, const char *room,
		       const char *ym)
{
	long long id = tdb_int(&T_DB, "SELECT id FROM rooms WHERE name = $1",
			       room, NULL);

	snprintf(path, len, "%s/rooms/%lld/%.4s/%.2s.json", archive_dir(), id,
		 ym, ym + 5);
}

static json_t *load(const char *path)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);

	ck_assert_msg(j, "%s: %s", path, e.text);
	return j;
}

/* Files in dir (recursively) whose name ends in suffix. */
static int files_ending(const char *dir, const char *suffix)
{
	char cmd[1200], line[16];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "find '%s' -type f -name '*%s' | wc -l",
		 dir, suffix);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
	pclose(p);
	return atoi(line);
}

START_TEST(test_archive_replay_round_trip)
{
	struct tcl *alice = stage_room("old", 8, 5, "2026-01-10 12:00:00+00",
				       "2026-02-03 08:00:00+00");
	char out[512], args[1200], path[1100], *before, *after;
	json_t *f, *m;

	/* Two later messages stay: they are recent. */
	do_say(alice, "old", "recent one");
	do_say(alice, "old", "recent two");
	before = rows_of("old");
	snprintf(args, sizeof(args), "--older-than 30d --dir '%s'",
		 archive_dir());
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/archive", args), 0);
	ck_assert_msg(!strncmp(out, "archive: moved 8 message(s) older than "
				    "30d into 2 file(s) under ", 64),
		      "%s", out);
	ck_assert_int_eq(count_of("old"), 2);
	month_file(path, sizeof(path), "old", "2026-01");
	f = load(path);
	ck_assert_str_eq(json_string_value(json_object_get(f, "room")), "old");
	ck_assert(json_is_string(json_object_get(f, "archived_at")));
	ck_assert_int_eq(json_array_size(json_object_get(f, "messages")), 5);
	m = json_array_get(json_object_get(f, "messages"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "seq")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(m, "user")), "alice");
	ck_assert_str_eq(json_string_value(json_object_get(m, "content")),
			 "m001 it's \"1\"");
	ck_assert_str_eq(json_string_value(json_object_get(m, "created_at")),
			 "2026-01-10T12:00:01.000000Z");
	json_decref(f);
	/* Put back: the same rows as before. */
	snprintf(args, sizeof(args), "--file '%s'", path);
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/replay", args), 0);
	ck_assert_str_eq(out, "replay: 5 of 5 message(s) put back into room "
			      "old (0 already there)");
	month_file(path, sizeof(path), "old", "2026-02");
	snprintf(args, sizeof(args), "--file '%s'", path);
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/replay", args), 0);
	after = rows_of("old");
	ck_assert_str_eq(after, before);
	/* Again: nothing twice. */
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/replay", args), 0);
	ck_assert_str_eq(out, "replay: 0 of 3 message(s) put back into room "
			      "old (3 already there)");
	free(before);
	free(after);
	tcl_free(alice);
}
END_TEST

/*
 * A failure after the temporary file is written (before the rename) leaves
 * no file of any kind and every row; one after the rename (before the
 * delete) leaves the whole file and every row, and the next run moves them
 * without writing any message twice.
 */
START_TEST(test_archive_failures_lose_nothing)
{
	struct tcl *alice = stage_room("frail", 4, 4, "2026-03-01 00:00:00+00",
				       "2026-03-01 00:00:00+00");
	char out[512], args[1200], path[1100], *before;
	json_t *f;

	before = rows_of("frail");
	snprintf(args, sizeof(args), "--older-than 30d --room frail --dir '%s'",
		 archive_dir());
	ck_assert_int_ne(run(out, sizeof(out), "BD_ARCHIVE_FAIL=before-rename",
			     "migrate/archive", args),
			 0);
	ck_assert_int_eq(files_ending(archive_dir(), ""), 0);
	expect_rows("frail", before);
	ck_assert_int_ne(run(out, sizeof(out), "BD_ARCHIVE_FAIL=before-delete",
			     "migrate/archive", args),
			 0);
	ck_assert_int_eq(files_ending(archive_dir(), ".json"), 1);
	ck_assert_int_eq(files_ending(archive_dir(), ""), 1);
	expect_rows("frail", before);
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/archive", args), 0);
	ck_assert_int_eq(count_of("frail"), 0);
	month_file(path, sizeof(path), "frail", "2026-03");
	f = load(path);
	ck_assert_int_eq(json_array_size(json_object_get(f, "messages")), 4);
	json_decref(f);
	free(before);
	tcl_free(alice);
}
END_TEST

/* A month archived in two runs (the cutoff moved on): one file, each
 * message once, by seq; a run with nothing old archives nothing. */
START_TEST(test_archive_appends_to_a_month)
{
	struct tcl *alice = stage_room("grow", 6, 3, "2026-04-02 00:00:00+00",
				       "2026-04-27 00:00:00+00");
	char out[512], args[1200], path[1100];
	json_t *f, *msgs, *m;
	size_t i;

	/* Cutoff between the two dates: the first three only. */
	long long days = tdb_int(&T_DB,
				 "SELECT extract(day FROM now() - "
				 "'2026-04-15'::timestamptz)::bigint",
				 NULL);

	snprintf(args, sizeof(args), "--older-than %lldd --dir '%s'", days,
		 archive_dir());
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/archive", args), 0);
	ck_assert_int_eq(count_of("grow"), 3);
	snprintf(args, sizeof(args), "--older-than 1d --dir '%s'",
		 archive_dir());
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/archive", args), 0);
	ck_assert_int_eq(count_of("grow"), 0);
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/archive", args), 0);
	ck_assert_msg(!strncmp(out, "archive: moved 0 message(s) older than "
				    "1d into 0 file(s) under ", 63),
		      "%s", out);
	month_file(path, sizeof(path), "grow", "2026-04");
	f = load(path);
	msgs = json_object_get(f, "messages");
	ck_assert_int_eq(json_array_size(msgs), 6);
	json_array_foreach(msgs, i, m)
		ck_assert_int_eq(json_integer_value(json_object_get(m, "seq")),
				 (long long)i + 1);
	json_decref(f);
	tcl_free(alice);
}
END_TEST

/*
 * A running server: the whole room is archived and the server restarted
 * (its ring is loaded empty), then replayed: the NOTIFY of replay reloads
 * the ring (a /join shows the last ten), and a stream resuming from seq 1,
 * older than the ring, gets seq 2 on (from the table) instead of a reset.
 */
START_TEST(test_replay_reaches_a_running_server)
{
	struct tcl *alice = stage_room("live", 12, 12, "2026-05-05 00:00:00+00",
				       "2026-05-05 00:00:00+00");
	char out[512], args[1200], path[1100], sid[THTTP_SID_LEN + 1];
	struct tcl *bob;
	struct tsse *s;

	snprintf(args, sizeof(args), "--older-than 0s --dir '%s'",
		 archive_dir());
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/archive", args), 0);
	ck_assert_int_eq(count_of("live"), 0);
	tcl_free(alice);
	tsrv_restart(&T_SRV);
	bob = tcl_user(PORT, "bob");
	ck_assert_int_eq(do_join(bob, "live"), 0);
	month_file(path, sizeof(path), "live", "2026-05");
	snprintf(args, sizeof(args), "--file '%s'", path);
	ck_assert_int_eq(run(out, sizeof(out), "", "migrate/replay", args), 0);
	ck_assert_int_eq(count_of("live"), 12);
	/* The reload is asynchronous: a later /join sees it. */
	for (int64_t end = trun_now_ms() + trun_ms(10000);;) {
		int n;

		expect_reply(bob, "/leave", "[system] You left live");
		n = do_join(bob, "live");
		if (n == 10)
			break;
		ck_assert_msg(n == 0, "%d messages of history", n);
		ck_assert_msg(trun_now_ms() < end, "the ring never reloaded");
		trun_pace();
	}
	ck_assert_str_eq(bob->hist[0], "[live] alice: m003 it's \"3\"");
	api_user(HPORT, "carol", HPORT, "/join live", sid);
	s = sse_open_room(HPORT, "carol", "live", sid, "1");
	for (int seq = 2; seq <= 12; seq++) {
		struct tsse_msg m;

		sse_expect_msg(s, &m);
		ck_assert_int_eq(m.seq, seq);
	}
	tsse_free(s);
	tcl_free(bob);
}
END_TEST

START_TEST(test_storage_check_runs)
{
	char out[512];

	ck_assert_int_eq(run(out, sizeof(out), "", "contrib/check-storage.sh",
			     ""),
			 0);
	ck_assert_msg(!strncmp(out, "table", 5), "%s", out);
	/* A threshold of 1 byte flags the messages table. */
	ck_assert_int_eq(run(out, sizeof(out), "BD_MAX_MESSAGES_BYTES=1",
			     "contrib/check-storage.sh", ""),
			 1);
}
END_TEST

/* systemd-analyze verify accepts the units (their binaries replaced by
 * /bin/true: verify wants them to exist). */
START_TEST(test_systemd_units_verify)
{
	char dir[1024], cmd[4096];

	if (system("command -v systemd-analyze >/dev/null 2>&1")) {
		trun_note("systemd-analyze not installed: units not verified");
		return;
	}
	trun_output_dir(dir, sizeof(dir));
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; cp '%s'/contrib/systemd/* .; "
		 "mv babydiscord@.service babydiscord@test.service; "
		 "sed -i 's|/usr/local/bin/babydiscord|/bin/true|; "
		 "s|/opt/babydiscord/migrate/[a-z]*|/bin/true|' *.service; "
		 "systemd-analyze verify --man=no babydiscord@test.service "
		 "babydiscord-archive.service babydiscord-archive.timer "
		 "babydiscord-cleanup.service babydiscord-cleanup.timer "
		 ">verify.out 2>&1",
		 dir, getenv("BD_TOP"));
	ck_assert_msg(system(cmd) == 0, "systemd-analyze verify failed: see %s/verify.out",
		      dir);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_archive_replay_round_trip, 60, NULL),
		TFIX_CASE(test_archive_failures_lose_nothing, 60, NULL),
		TFIX_CASE(test_archive_appends_to_a_month, 60, NULL),
		TFIX_CASE(test_replay_reaches_a_running_server, 60, NULL),
		TFIX_CASE(test_storage_check_runs, 30, NULL),
		TFIX_CASE(test_systemd_units_verify, 30, tfix_setup),
	};

	return tfix_main("archive", cases, TMAIN_N(cases), NULL);
}
