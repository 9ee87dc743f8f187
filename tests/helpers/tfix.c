/*
 * Fixture state lives in globals: each test runs in a fresh forked
 * process, so nothing leaks from one test to the next.
 */
#include "tfix.h"

#include <stdbool.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trun.h"

struct tdb T_DB;
struct tsrv T_SRV;
struct tsrv T_INST[TFIX_MAX_INST];
int T_NINST;

static struct tsrv_opts opts; /* chosen by the setup */
static bool db_made, srv_made;

void tfix_use(const struct tsrv_opts *o)
{
	opts = *o;
	T_NINST = 0;
}

/*
 * A test that stopped the cluster and then failed skipped its checked
 * teardown (Check's fork mode), which would have started it again: start
 * it here rather than fail every later test as "PostgreSQL unreachable".
 */
static void ensure_cluster(void)
{
	char err[512];

	if (!tdb_ping(err, sizeof(err)))
		return;
	fprintf(stderr, "%s: PostgreSQL unreachable, starting it: %s\n",
		tcase_name(), err);
	trun_note("PostgreSQL was unreachable when this test began (an earlier "
		  "test left it stopped?); started it with contrib/pg.sh "
		  "start. The error: %s",
		  err);
	tfix_cluster_db(true);
}

void tfix_begin_db(void)
{
	char dir[1024], notes[1100];

	if (db_made)
		return;
	/* Notes of an earlier run of this test would mislead. */
	trun_output_dir(dir, sizeof(dir));
	snprintf(notes, sizeof(notes), "%s/notes.txt", dir);
	unlink(notes);
	ensure_cluster();
	tdb_create(&T_DB);
	db_made = true;
}

void tfix_begin(void)
{
	struct tsrv_opts o = opts;

	tfix_begin_db();
	if (srv_made)
		return;
	o.database_url = T_DB.url;
	tsrv_init(&T_SRV, "server", &o);
	srv_made = true;
	tsrv_start(&T_SRV);
}

void tfix_start_instances(int n)
{
	ck_assert_msg(n <= TFIX_MAX_INST, "%d instances, at most %d", n,
		      TFIX_MAX_INST);
	tfix_begin_db();
	T_NINST = n;
	for (int i = 0; i < n; i++) {
		struct tsrv_opts o = { .database_url = T_DB.url,
				       .extra_json = opts.extra_json };
		char name[16];

		snprintf(name, sizeof(name), "inst%d", i + 1);
		o.instance_id = name;
		tsrv_init(&T_INST[i], name, &o);
		tsrv_start(&T_INST[i]);
	}
}

void tfix_cluster_db(bool start)
{
	char host[1024], cmd[4096];
	const char *top = getenv("BD_TOP");

	snprintf(host, sizeof(host), "%s", getenv("PGHOST"));
	snprintf(cmd, sizeof(cmd), "'%s/contrib/pg.sh' %s '%s' >/dev/null 2>&1",
		 top, start ? "start" : "stop", dirname(host));
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

int tfix_tcp_port(void)
{
	tfix_begin();
	return T_SRV.tcp_port;
}

int tfix_http_port(void)
{
	tfix_begin();
	return T_SRV.http_port;
}

void tfix_setup(void)
{
	struct tsrv_opts o;

	memset(&o, 0, sizeof(o));
	tfix_use(&o);
}

void tfix_setup_small_outq(void)
{
	struct tsrv_opts o = { .outq_limit_bytes = 65536 };

	tfix_use(&o);
}

void tfix_setup_staged_idle(void)
{
	static char json[64];
	struct tsrv_opts o = { .extra_json = json };

	snprintf(json, sizeof(json), "\"session_idle_timeout_s\": %d",
		 trun_ms(6000) / 1000);
	tfix_use(&o);
}

void tfix_setup_static(void)
{
	static char json[1200];
	struct tsrv_opts o = { .extra_json = json };

	snprintf(json, sizeof(json), "\"static_dir\": \"%s/static\"",
		 trun_env("BD_TOP"));
	tfix_use(&o);
}

void tfix_teardown(void)
{
	trun_free_tracked();
	for (int i = 0; i < T_NINST; i++)
		if (T_INST[i].pid)
			tsrv_stop(&T_INST[i]);
	if (srv_made && T_SRV.pid)
		tsrv_stop(&T_SRV);
	if (db_made)
		tdb_drop(&T_DB);
}

void tfix_add(Suite *s, const char *name, const TTest *test, int timeout_s,
	      SFun setup, SFun teardown)
{
	TCase *tc = tcase_create(name);

	if (setup || teardown)
		tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, timeout_s);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

int tfix_main(const char *name, const struct tfix_case *cases, size_t n,
	      SFun teardown)
{
	Suite *s = suite_create(name);

	for (size_t i = 0; i < n; i++)
		tfix_add(s, cases[i].name, cases[i].test, cases[i].timeout_s,
			 cases[i].setup ? cases[i].setup : tfix_setup,
			 teardown ? teardown : tfix_teardown);
	return trun_main(s);
}
