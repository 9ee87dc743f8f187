/*
 * The usual fixture: a fresh database and a server on it, or several
 * instances on it. The checked setup only chooses the options; the first
 * use of PORT (or tfix_begin(), tfix_start_instances()) inside the test
 * creates them, because the test's name, which names its output directory,
 * is known only there. The teardown closes the TCP clients and streams
 * the test did not free (trun_free_tracked()), stops the servers (each
 * exit status must be 0) and drops the database.
 */
#ifndef BD_TESTS_HELPERS_TFIX_H
#define BD_TESTS_HELPERS_TFIX_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

#include "tdb.h"
#include "tmain.h"
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
 * Checked setup: session_idle_timeout_s 6 (scaled by
 * CK_TIMEOUT_MULTIPLIER): no request of a test comes anywhere near it,
 * and the sessions' tick (every third of it) comes soon. The tests make
 * sessions idle with tdb_stage_idle() (last_active in the past).
 */
void tfix_setup_staged_idle(void);

/* Checked setup: static_dir is the repository's static/ (the web page). */
void tfix_setup_static(void);

/*
 * Checked teardown: frees the clients and streams still open
 * (trun_free_tracked()), stops T_INST[0..T_NINST-1] still
 * running and T_SRV (each must exit with status 0), then drops T_DB.
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

/* One test of an integration program: a row of tfix_main()'s table. */
struct tfix_case {
	const char *name; /* its TCase (CK_RUN_CASE=name runs it) */
	const TTest *test;
	int timeout_s; /* tcase_set_timeout() */
	SFun setup;    /* checked setup; NULL: tfix_setup */
};

/* A row whose TCase is named after its test function. */
#define TFIX_CASE(test, timeout_s, setup) \
	{ #test, (test), (timeout_s), (setup) }

/*
 * The whole main() of an integration program: a Suite named name of one
 * TCase per row of cases[0..n-1] (as tfix_add() makes them), each with
 * teardown as its checked teardown (NULL: tfix_teardown), run by
 * trun_main(); returns its exit status. The table is local to main()
 * (START_TEST's names are variables, not constants):
 *
 *	int main(void)
 *	{
 *		const struct tfix_case cases[] = {
 *			TFIX_CASE(test_welcome_lines, 30, NULL),
 *			TFIX_CASE(test_limit_from_config, 30, setup_max_100),
 *		};
 *
 *		return tfix_main("tcp", cases, TMAIN_N(cases), NULL);
 *	}
 */
int tfix_main(const char *name, const struct tfix_case *cases, size_t n,
	      SFun teardown);

#endif
