/*
 * The usual fixture: a fresh database and a server on it, or several
 * instances on it. The checked setup only chooses the options; the first
 * use of PORT (or tfix_begin(), tfix_start_instances()) inside the test
 * creates them, because the test's name, which names its output directory,
 * is known only there. The teardown stops the servers (each exit status
 * must be 0) and drops the database.
 */
#ifndef BD_TESTS_HELPERS_TFIX_H
#define BD_TESTS_HELPERS_TFIX_H

#include <check.h>
#include <stdbool.h>

#include "tdb.h"
#include "tsrv.h"

#define TFIX_MAX_INST 3 /* instances a test can start */

extern struct tdb T_DB;	  /* the test's database */
extern struct tsrv T_SRV; /* the server on it ("server.log") */
/* tfix_start_instances()' servers inst1.. ("inst1.log" ...). */
extern struct tsrv T_INST[TFIX_MAX_INST];
/* How many of T_INST the teardown stops (those still running). */
extern int T_NINST;

/*
 * Options for this test's server (database_url is filled in); of them,
 * tfix_start_instances() uses extra_json only.
 */
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

/*
 * Creates T_DB and starts n (at most TFIX_MAX_INST) servers on it as
 * T_INST[0..n-1], named and instance_id'd inst1..instN, with the
 * extra_json of tfix_use() in their configs; sets T_NINST to n. Returns
 * once every one is ready.
 */
void tfix_start_instances(int n);

/* Stops (false) or starts (true) the test's PostgreSQL cluster itself
 * (contrib/pg.sh stop, a fast shutdown, or start). */
void tfix_cluster_db(bool start);

/* T_SRV's line protocol port, starting the fixture first. */
int tfix_tcp_port(void);

/* T_SRV's HTTP port, starting the fixture first. */
int tfix_http_port(void);

/* Checked setup with the default options. */
void tfix_setup(void);

/* Checked setup: outq_limit_bytes 65536 (slow consumer tests). */
void tfix_setup_small_outq(void);

/*
 * Checked teardown: stops T_INST[0..T_NINST-1] still running and T_SRV
 * (each must exit with status 0), then drops T_DB.
 */
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
