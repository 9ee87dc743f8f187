/*
 * Per-test databases and SQL helpers. The maintenance connection goes to
 * PGDATABASE (or "postgres" when that is the template, which must stay
 * free of sessions for CREATE DATABASE ... TEMPLATE to work).
 */
#include "tdb.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trun.h"

#define TDB_MAX_PARAMS 16

static const char *admin_dbname(void)
{
	const char *d = getenv("PGDATABASE");
	const char *t = getenv("BD_TEST_TEMPLATE");

	if (!d || !*d || (t && !strcmp(d, t)))
		return "postgres";
	return d;
}

static PGconn *connect_to(const char *dbname, char *err, size_t len)
{
	const char *keys[] = { "dbname", "application_name", "connect_timeout",
			       NULL };
	const char *vals[] = { dbname, "bdtest", "10", NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 0);

	if (PQstatus(conn) == CONNECTION_OK)
		return conn;
	snprintf(err, len, "connect to database %s (PGHOST=%s PGPORT=%s): %s",
		 dbname, getenv("PGHOST") ? getenv("PGHOST") : "",
		 getenv("PGPORT") ? getenv("PGPORT") : "",
		 PQerrorMessage(conn));
	PQfinish(conn);
	return NULL;
}

static PGconn *admin_connect(void)
{
	char err[1024];
	PGconn *conn = connect_to(admin_dbname(), err, sizeof(err));

	ck_assert_msg(conn, "PostgreSQL is unreachable: %s", err);
	return conn;
}

int tdb_ping(char *err, size_t len)
{
	PGconn *conn = connect_to(admin_dbname(), err, len);

	if (!conn)
		return -1;
	PQfinish(conn);
	return 0;
}

/* Quotes s as an identifier; false when it does not fit. No Check calls:
 * this also runs in the runner, outside any test. */
static bool quote_ident(char *buf, size_t len, const char *s)
{
	size_t j = 0;

	if (len < 3)
		return false;
	buf[j++] = '"';
	for (; *s && j + 3 < len; s++) {
		if (*s == '"')
			buf[j++] = '"';
		buf[j++] = *s;
	}
	buf[j++] = '"';
	buf[j] = '\0';
	return !*s;
}

void tdb_ident(char *buf, size_t len, const char *s)
{
	ck_assert_msg(quote_ident(buf, len, s), "identifier too long: %s", s);
}

/* A conninfo value in single quotes, as libpq wants it. */
static void conn_value(char *buf, size_t len, const char *s)
{
	size_t j = 0;

	buf[j++] = '\'';
	for (; *s && j + 3 < len; s++) {
		if (*s == '\'' || *s == '\\')
			buf[j++] = '\\';
		buf[j++] = *s;
	}
	ck_assert_msg(!*s, "conninfo value too long");
	buf[j++] = '\'';
	buf[j] = '\0';
}

static PGresult *run(PGconn *conn, const char *sql, va_list ap)
{
	const char *params[TDB_MAX_PARAMS];
	ExecStatusType st;
	PGresult *res;
	int n = 0;

	for (const char *p; (p = va_arg(ap, const char *));) {
		ck_assert_msg(n < TDB_MAX_PARAMS, "too many parameters");
		params[n++] = p;
	}
	res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		char msg[2048];

		snprintf(msg, sizeof(msg), "SQL failed: %s\n  %s",
			 PQresultErrorMessage(res), sql);
		PQclear(res);
		ck_abort_msg("%s", msg);
	}
	return res;
}

void tdb_create(struct tdb *db)
{
	static unsigned seq;
	const char *tmpl = trun_env("BD_TEST_TEMPLATE");
	char qname[160], qtmpl[160], sql[512];
	char host[600], port[64], user[200], dbname[160];
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
	PGconn *admin = admin_connect();
	PGresult *res;

	memset(db, 0, sizeof(*db));
	snprintf(db->name, sizeof(db->name), "bdt_%ld_%ld_%u_%ld", trun_id(),
		 (long)getpid(), seq++, (long)time(NULL) % 100000);
	tdb_ident(qname, sizeof(qname), db->name);
	tdb_ident(qtmpl, sizeof(qtmpl), tmpl);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE %s", qname,
		 qtmpl);
	/* Another session on the template (a person's psql) makes CREATE
	 * fail at once; give it a moment to go away. */
	for (;;) {
		res = PQexec(admin, sql);
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			break;
		if (trun_now_ms() > deadline ||
		    !strstr(PQresultErrorMessage(res), "other users"))
			ck_abort_msg("%s: %s", sql, PQresultErrorMessage(res));
		PQclear(res);
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 },
			  NULL);
	}
	PQclear(res);
	PQfinish(admin);

	conn_value(host, sizeof(host), trun_env("PGHOST"));
	conn_value(port, sizeof(port), trun_env("PGPORT"));
	conn_value(user, sizeof(user), trun_env("PGUSER"));
	conn_value(dbname, sizeof(dbname), db->name);
	snprintf(db->url, sizeof(db->url), "host=%s port=%s user=%s dbname=%s",
		 host, port, user, dbname);
}

static PGconn *db_conn(struct tdb *db)
{
	char err[1024];

	if (!db->conn) {
		db->conn = connect_to(db->name, err, sizeof(err));
		ck_assert_msg(db->conn, "%s", err);
	}
	return db->conn;
}

static void drop_named(PGconn *admin, const char *name)
{
	char qname[160], sql[256];
	PGresult *res;

	if (!quote_ident(qname, sizeof(qname), name))
		return;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
		 qname);
	res = PQexec(admin, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
}

void tdb_drop(struct tdb *db)
{
	PGconn *admin;

	if (!db->name[0])
		return;
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
	admin = admin_connect();
	drop_named(admin, db->name);
	PQfinish(admin);
	db->name[0] = '\0';
}

void tdb_drop_leftovers(long runner_pid)
{
	char err[1024], pattern[64];
	const char *params[1] = { pattern };
	PGconn *admin = connect_to(admin_dbname(), err, sizeof(err));
	PGresult *res;

	if (!admin)
		return;
	snprintf(pattern, sizeof(pattern), "bdt\\_%ld\\_%%", runner_pid);
	res = PQexecParams(
		admin, "SELECT datname FROM pg_database WHERE datname LIKE $1",
		1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		for (int i = 0; i < PQntuples(res); i++)
			drop_named(admin, PQgetvalue(res, i, 0));
	PQclear(res);
	PQfinish(admin);
}

PGresult *tdb_query(struct tdb *db, const char *sql, ...)
{
	PGresult *res;
	va_list ap;

	va_start(ap, sql);
	res = run(db_conn(db), sql, ap);
	va_end(ap);
	return res;
}

PGresult *tdb_admin(const char *sql, ...)
{
	PGconn *admin = admin_connect();
	PGresult *res;
	va_list ap;

	va_start(ap, sql);
	res = run(admin, sql, ap);
	va_end(ap);
	PQfinish(admin);
	return res;
}

static char *scalar_v(struct tdb *db, const char *sql, va_list ap)
{
	PGresult *res = run(db_conn(db), sql, ap);
	char *v = NULL;

	if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
		v = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

char *tdb_scalar(struct tdb *db, const char *sql, ...)
{
	va_list ap;
	char *v;

	va_start(ap, sql);
	v = scalar_v(db, sql, ap);
	va_end(ap);
	return v;
}

long long tdb_int(struct tdb *db, const char *sql, ...)
{
	va_list ap;
	long long n;
	char *v;

	va_start(ap, sql);
	v = scalar_v(db, sql, ap);
	va_end(ap);
	ck_assert_msg(v, "no value from: %s", sql);
	n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

void tdb_wait_server_blocked(struct tdb *db)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);

	for (;;) {
		PQclear(tdb_query(db, "SELECT pg_stat_clear_snapshot()", NULL));
		if (tdb_int(db,
			    "SELECT count(*) FROM pg_stat_activity "
			    "WHERE datname = $1 AND wait_event_type = 'Lock' "
			    "AND application_name = 'babydiscord-query'",
			    db->name, NULL))
			return;
		ck_assert_msg(trun_now_ms() < deadline,
			      "the server's query connection never waited for our lock");
		trun_pace();
	}
}

int tdb_kill_server_conns(struct tdb *db, const char *pattern)
{
	return (int)tdb_int(
		db,
		"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
		"FROM pg_stat_activity "
		"WHERE application_name LIKE $2 AND datname = $1",
		db->name, pattern, NULL);
}

void tdb_allow_connections(struct tdb *db, bool on)
{
	char q[160], sql[256];

	tdb_ident(q, sizeof(q), db->name);
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS %s", q,
		 on ? "true" : "false");
	PQclear(tdb_admin(sql, NULL));
}

int tdb_stage_idle(struct tdb *db, const char *sid)
{
	return (int)tdb_int(db,
			    "WITH u AS (UPDATE api_sessions SET "
			    "last_active = now() - interval '1 hour' "
			    "WHERE token_hash = sha256(decode($1, 'hex')) "
			    "RETURNING 1) SELECT count(*) FROM u",
			    sid, NULL);
}

void tdb_hold(struct tdb *db, const char *sql)
{
	PQclear(tdb_query(db, "BEGIN", NULL));
	PQclear(tdb_query(db, sql, NULL));
}

void tdb_release(struct tdb *db)
{
	PQclear(tdb_query(db, "ROLLBACK", NULL));
}
