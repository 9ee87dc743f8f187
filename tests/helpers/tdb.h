/*
 * A throwaway database per test: created from BD_TEST_TEMPLATE on the
 * cluster the PG* variables name, dropped in teardown. Runs SQL for
 * assertions and fault injection. Every failure fails the test.
 */
#ifndef BD_TESTS_HELPERS_TDB_H
#define BD_TESTS_HELPERS_TDB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct tdb {
	char name[64];	/* database name, unique per test */
	char url[2048]; /* libpq conninfo the server gets */
	PGconn *conn;	/* our own connection to it (lazy) */
};

/* 0 when the cluster answers; otherwise -1 and the reason in err. */
int tdb_ping(char *err, size_t len);

/* CREATE DATABASE <unique> TEMPLATE $BD_TEST_TEMPLATE; fills db. */
void tdb_create(struct tdb *db);

/* Closes our connection and drops the database WITH (FORCE). */
void tdb_drop(struct tdb *db);

/* Drops every database a runner with this pid created and left behind. */
void tdb_drop_leftovers(long runner_pid);

/*
 * Runs sql with text parameters $1.. (a NULL-terminated list) on the test
 * database. Fails the test unless it succeeds. The caller PQclear()s.
 */
PGresult *tdb_query(struct tdb *db, const char *sql, ...)
	__attribute__((sentinel));

/* Same, on the maintenance database (for ALTER/DROP DATABASE). */
PGresult *tdb_admin(const char *sql, ...) __attribute__((sentinel));

/* First column of the first row as a malloc'd string; NULL for no row or
 * SQL NULL. */
char *tdb_scalar(struct tdb *db, const char *sql, ...)
	__attribute__((sentinel));

/* First column of the first row as a number (fails on NULL/no row). */
long long tdb_int(struct tdb *db, const char *sql, ...)
	__attribute__((sentinel));

/*
 * pg_terminate_backend() on the server's connections to this database
 * whose application_name is LIKE pattern ("babydiscord%": all of them).
 * Returns how many were ended.
 */
int tdb_kill_server_conns(struct tdb *db, const char *pattern);

/*
 * Waits (paced, at most T_WAIT) until one of the server's query
 * connections to this database waits for a lock (one the test holds).
 * Works inside the test's own transaction: each look is a fresh snapshot
 * of pg_stat_activity.
 */
void tdb_wait_server_blocked(struct tdb *db);

/*
 * BEGIN, then sql (a lock: "LOCK TABLE ...", "SELECT ... FOR UPDATE") on
 * our connection: the server's statements that need what it locks wait
 * until tdb_release().
 */
void tdb_hold(struct tdb *db, const char *sql);

/* Ends tdb_hold()'s transaction (ROLLBACK). */
void tdb_release(struct tdb *db);

/* Quotes s as an SQL identifier into buf. */
void tdb_ident(char *buf, size_t len, const char *s);

/* ALTER DATABASE <db> ALLOW_CONNECTIONS on (true) or off (false). */
void tdb_allow_connections(struct tdb *db, bool on);

/*
 * Makes the API session sid (hex) idle for an hour as far as the database
 * knows (its last_active); returns 1, or 0 when it is gone.
 */
int tdb_stage_idle(struct tdb *db, const char *sid);

#endif
