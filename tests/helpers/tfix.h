/*
 * The usual fixture: a fresh database and a server on it. The checked
 * setup only chooses the options; the first use of PORT (or tfix_begin())
 * inside the test creates both, because the test's name, which names its
 * output directory, is known only there. The teardown stops the server
 * (its exit status must be 0) and drops the database.
 */
#ifndef BD_TESTS_HELPERS_TFIX_H
#define BD_TESTS_HELPERS_TFIX_H

#include <check.h>
#include <stdbool.h>

#include "tdb.h"
#include "tsrv.h"

extern struct tdb T_DB;	  /* the test's database */
extern struct tsrv T_SRV; /* the server on it ("server.log") */

/* Options for this test's server (database_url is filled in). */
void tfix_use(const struct tsrv_opts *o);

/* Creates T_DB and starts T_SRV, once; later calls do nothing. */
void tfix_begin(void);

/*
 * Creates T_DB only (for tests that start servers themselves). Like
 * tfix_begin(), it first starts the cluster when PostgreSQL is unreachable
 * (an earlier test stopped it and failed before starting it again) and
 * says so in the test's notes.txt and on stderr.
 */
void tfix_begin_db(void);

/* Creates T_DB and starts n servers on it, named and instance_id'd
 * inst1..instN, with extra_json (NULL for none) in their configs. */
void tfix_start_instances(struct tsrv *inst, int n, const char *extra_json);

/* Stops (false) or starts (true) the test's PostgreSQL cluster itself
 * (contrib/pg.sh stop, a fast shutdown, or start). */
void tfix_cluster_db(bool start);

/* T_SRV's line protocol port, starting the fixture first. */
int tfix_tcp_port(void);

/* Checked setup with the default options. */
void tfix_setup(void);

/* Checked teardown. */
void tfix_teardown(void);

/*
 * Adds a TCase named after test to s, with fixtures and a timeout in
 * seconds. One TCase per test, so CK_RUN_CASE=<test name> runs one.
 */
void tfix_add(Suite *s, const char *name, const TTest *test, int timeout_s,
	      SFun setup, SFun teardown);

#define TFIX_ADD(s, test, timeout_s, setup, teardown) \
	tfix_add((s), #test, (test), (timeout_s), (setup), (teardown))

#endif
