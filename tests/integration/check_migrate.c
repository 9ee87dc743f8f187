/*
 * migrate/migrate: versioned migrations and repeatable function files. A
 * database made with the migrations up to 010 (before function files
 * existed) upgrades in place and keeps its data; a changed function file is
 * applied again, an unchanged one is not; down then up comes back to the
 * same functions. The test's database is emptied first and rebuilt by the
 * tool itself.
 */
#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"

#define TIMEOUT 120

/* Runs migrate/migrate with args under the given directories (NULL: the
 * repository's); returns its exit status, output in out. */
static int migrate(const char *mdir, const char *fdir, const char *args,
		   char *out, size_t len)
{
	char cmd[8192];
	size_t n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "DATABASE_URL='%s' %s%s%s %s%s%s '%s/migrate/migrate' %s 2>&1",
		 T_DB.url, mdir ? "MIGRATIONS_DIR='" : "", mdir ? mdir : "",
		 mdir ? "'" : "", fdir ? "FUNCTIONS_DIR='" : "",
		 fdir ? fdir : "", fdir ? "'" : "", trun_env("BD_TOP"), args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while (n + 1 < len && fgets(out + n, (int)(len - n), p))
		n += strlen(out + n);
	out[n] = '\0';
	return WEXITSTATUS(pclose(p));
}

/* A directory (in the test's output directory) with the repository's
 * migrations numbered up to `last`. */
static void old_migrations(char *dir, size_t len, int last)
{
	char src[1024], from[2048], to[2048], cmd[4608];
	struct dirent *de;
	DIR *d;

	trun_output_dir(dir, len);
	strncat(dir, "/migrations-old", len - strlen(dir) - 1);
	trun_mkdirs(dir);
	snprintf(src, sizeof(src), "%s/db/migrations", trun_env("BD_TOP"));
	d = opendir(src);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9' ||
		    atoi(de->d_name) > last)
			continue;
		snprintf(from, sizeof(from), "%s/%s", src, de->d_name);
		snprintf(to, sizeof(to), "%s/%s", dir, de->d_name);
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
		ck_assert_int_eq(system(cmd), 0);
	}
	closedir(d);
}

/* Files in the repository's dir whose names end in suffix. */
static long count_files(const char *dir, const char *suffix)
{
	char path[1024];
	struct dirent *de;
	long n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", trun_env("BD_TOP"), dir);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);

		n += l > sl && !strcmp(de->d_name + l - sl, suffix);
	}
	closedir(d);
	return n;
}

/* The first column of sql's first row contains needle. */
static bool scalar_has(const char *sql, const char *needle)
{
	char *v = tdb_scalar(&T_DB, sql, NULL);
	bool has = v && strstr(v, needle);

	free(v);
	return has;
}

/* Empties the test database: the tool builds it again. */
static void empty_database(void)
{
	tfix_begin_db();
	PQclear(tdb_query(&T_DB, "SET client_min_messages = warning", NULL));
	PQclear(tdb_query(&T_DB, "DROP SCHEMA public CASCADE", NULL));
	PQclear(tdb_query(&T_DB, "CREATE SCHEMA public", NULL));
}

START_TEST(test_database_at_010_upgrades_and_keeps_its_data)
{
	char mdir[1024], fdir[1100], out[16384];
	struct tcl *alice;

	empty_database();
	old_migrations(mdir, sizeof(mdir), 10);
	snprintf(fdir, sizeof(fdir), "%s-none", mdir);
	trun_mkdirs(fdir);
	ck_assert_msg(!migrate(mdir, fdir, "up", out, sizeof(out)), "%s", out);
	ck_assert_msg(strstr(out, "applied 10 migration(s) and 0 function"),
		      "%s", out);
	/* Data made by the 010 schema's own functions. */
	PQclear(tdb_query(&T_DB, "INSERT INTO rooms (name) VALUES ('general')",
			  NULL));
	PQclear(tdb_query(&T_DB,
			  "SELECT * FROM bd_join(NULL, 'alice', 'general')",
			  NULL));
	PQclear(tdb_query(&T_DB,
			  "SELECT * FROM bd_post(jsonb_build_array("
			  "jsonb_build_object('r', (SELECT id FROM rooms), "
			  "'u', (SELECT id FROM users), 'n', 'alice', "
			  "'c', 'from before'), "
			  "jsonb_build_object('r', (SELECT id FROM rooms), "
			  "'u', (SELECT id FROM users), 'n', 'alice', "
			  "'c', 'also before')))",
			  NULL));
	/* The upgrade: every later migration, then every function file. */
	ck_assert_msg(!migrate(NULL, NULL, "up", out, sizeof(out)), "%s", out);
	ck_assert_msg(strstr(out, "applying 011_") &&
			      strstr(out, "function file bd_post") &&
			      strstr(out, "function file bd_session_resume"),
		      "%s", out);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM schema_migrations",
				 NULL),
			 count_files("db/migrations", ".up.sql"));
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM schema_functions", NULL),
			 count_files("db/functions", ".sql"));
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM pg_proc WHERE proname = "
				 "'bd_session_resume' AND pronargs = 3",
				 NULL),
			 1);
	ck_assert(scalar_has("SELECT string_agg(content, ',' ORDER BY seq) "
			     "FROM messages",
			     "from before,also before"));
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT rooms_version FROM users "
				 "WHERE nickname = 'alice'",
				 NULL),
			 0);
	/* Nothing left to do; status says so. */
	ck_assert_msg(!migrate(NULL, NULL, "up", out, sizeof(out)), "%s", out);
	ck_assert_str_eq(out, "migrate: up to date\n");
	ck_assert_msg(!migrate(NULL, NULL, "status", out, sizeof(out)), "%s",
		      out);
	ck_assert_msg(!strstr(out, "pending") && !strstr(out, " new") &&
			      !strstr(out, "changed"),
		      "%s", out);
	/* The server runs on it, with its history. */
	alice = user_back(tfix_tcp_port(), "alice", "general");
	expect_reply(alice, "/join general",
		     "[system] You joined general (2 recent messages)");
	expect_next(alice, "[general] alice: from before");
	expect_next(alice, "[general] alice: also before");
	do_say(alice, "general", "after");
}
END_TEST

/* A changed function file is applied again (and only it); down forgets
 * the checksums, and up brings every function back. */
START_TEST(test_function_files_are_repeatable)
{
	char fdir[1024], cmd[3000], out[16384];

	empty_database();
	trun_output_dir(fdir, sizeof(fdir));
	strncat(fdir, "/functions", sizeof(fdir) - strlen(fdir) - 1);
	/* A copy of today's files only (an earlier run's may hold a file
	 * since removed). */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fdir);
	ck_assert_int_eq(system(cmd), 0);
	trun_mkdirs(fdir);
	snprintf(cmd, sizeof(cmd), "cp '%s'/db/functions/*.sql '%s'",
		 trun_env("BD_TOP"), fdir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_msg(!migrate(NULL, fdir, "up", out, sizeof(out)), "%s", out);
	/* Change one function's body. */
	snprintf(cmd, sizeof(cmd),
		 "sed -i \"s/SELECT pg_notify('room_' || p_room, p_event::text);"
		 "/SELECT pg_notify('room_' || p_room, p_event::text); -- v2/\" "
		 "'%s/bd_notify.sql'",
		 fdir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_msg(!migrate(NULL, fdir, "status", out, sizeof(out)), "%s",
		      out);
	ck_assert_msg(strstr(out, "bd_notify                         changed"),
		      "%s", out);
	ck_assert_msg(!migrate(NULL, fdir, "up", out, sizeof(out)), "%s", out);
	ck_assert_str_eq(out, "migrate: applying function file bd_notify\n"
			      "migrate: applied 0 migration(s) and 1 function "
			      "file(s)\n");
	ck_assert_msg(scalar_has("SELECT prosrc FROM pg_proc WHERE "
				 "proname = 'bd_notify'",
				 "-- v2"),
		      "bd_notify was not replaced");
	/* down, then up: the function files are applied again. */
	ck_assert_msg(!migrate(NULL, fdir, "down", out, sizeof(out)), "%s",
		      out);
	ck_assert_msg(!migrate(NULL, fdir, "up", out, sizeof(out)), "%s", out);
	snprintf(cmd, sizeof(cmd), "applied 1 migration(s) and %ld function",
		 count_files("db/functions", ".sql"));
	ck_assert_msg(strstr(out, cmd), "%s", out);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM pg_proc WHERE proname = "
				 "'bd_session_resume' AND pronargs = 3",
				 NULL),
			 1);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_database_at_010_upgrades_and_keeps_its_data,
			  TIMEOUT, NULL),
		TFIX_CASE(test_function_files_are_repeatable, TIMEOUT, NULL),
	};

	return tfix_main("migrate", cases, TMAIN_N(cases), NULL);
}
