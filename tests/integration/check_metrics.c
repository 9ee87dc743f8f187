/*
 * GET /metrics: the JSON keys and counters after a known run of commands
 * and messages, and the same in Prometheus' text format 0.0.4 (by
 * ?format=prometheus or Accept: text/plain), parsed here line by line and
 * checked by promtool when it is installed.
 */
#include <check.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers/tcl.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"

#define PORT tfix_tcp_port()
#define HPORT tfix_http_port()

/* alice: /nick, /create, three messages, an unknown command, a message
 * over max_message_bytes (2000). */
static struct tcl *known_run(void)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	char big[2101];

	do_create(alice, "metered");
	for (int i = 0; i < 3; i++)
		do_say(alice, "metered", "counted");
	expect_reply(alice, "/frobnicate",
		     "[system] error: unknown command /frobnicate (try /help)");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_reply(alice, big,
		     "[system] error: message too long (max 2000 bytes)");
	return alice;
}

static long long num(json_t *o, const char *path)
{
	char buf[128], *save = NULL;
	json_t *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k;
	     k = strtok_r(NULL, ".", &save))
		v = json_object_get(v, k);
	ck_assert_msg(json_is_number(v), "metrics: %s is not a number", path);
	return (long long)json_number_value(v);
}

START_TEST(test_metrics_json_counts)
{
	struct tcl *alice = known_run();
	struct thttp_resp r;
	json_t *m;

	thttp_get(HPORT, "/metrics", &r);
	expect_status(&r, 200);
	m = resp_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(m, "instance_id")),
			 "test");
	ck_assert_int_eq(num(m, "messages_received"), 3);
	ck_assert_int_eq(num(m, "messages_committed"), 3);
	ck_assert_int_eq(num(m, "commands.nick"), 1);
	ck_assert_int_eq(num(m, "commands.create"), 1);
	ck_assert_int_eq(num(m, "commands.join"), 0);
	ck_assert_int_eq(num(m, "rejected.unknown_command"), 1);
	ck_assert_int_eq(num(m, "rejected.too_long"), 1);
	ck_assert_int_eq(num(m, "active_connections.tcp"), 1);
	ck_assert_int_eq(num(m, "active_connections.total"), 1);
	ck_assert_int_eq(num(m, "rooms_in_memory"), 1);
	ck_assert_int_eq(num(m, "db_pool_available"), 1);
	ck_assert_int_eq(num(m, "db_pool_waiting"), 0);
	ck_assert_int_eq(num(m, "batch_sizes.messages.sum"), 3);
	ck_assert_int_ge(num(m, "batch_sizes.messages.count"), 1);
	ck_assert_int_eq(num(m, "batch_sizes.messages.buckets.+Inf"),
			 num(m, "batch_sizes.messages.count"));
	/* Each message came back to alice over her LISTEN notification. */
	ck_assert_int_ge(num(m, "notifications_received"), 3);
	/* alice got her 3 messages and 3 notices written, at least. */
	ck_assert_int_ge(num(m, "deliveries.lines"), 6);
	ck_assert_int_ge(num(m, "deliveries.lines_queued"),
			 num(m, "deliveries.lines"));
	ck_assert_int_eq(num(m, "deliveries.events"), 0);
	ck_assert_int_gt(num(m, "bytes_in"), 2100);
	ck_assert_int_gt(num(m, "bytes_out"), 0);
	ck_assert_int_eq(num(m, "slow_consumers"), 0);
	ck_assert_int_eq(num(m, "db_errors"), 0);
	ck_assert(json_is_number(json_object_get(m, "history_buffer_hit_rate")));
	json_decref(m);
	tcl_free(alice);
}
END_TEST

/* Every sample line is name{instance="test"[,label="v"]...} number, every
 * name has # HELP and # TYPE, counters end in _total. */
static void check_prom_text(const char *body)
{
	regex_t re;
	char *copy = strdup(body), *save = NULL;
	int samples = 0;

	ck_assert_int_eq(regcomp(&re,
				 "^babydiscord_([a-z_]+)\\{instance=\"test\""
				 "(,[a-z_]+=\"[^\"]*\")*\\} -?[0-9.e+-]+$",
				 REG_EXTENDED),
			 0);
	for (char *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char name[96], want[160];

		if (l[0] == '#')
			continue;
		ck_assert_msg(!regexec(&re, l, 0, NULL, 0), "bad sample: %s",
			      l);
		sscanf(l, "%95[a-z_]", name);
		/* A histogram's samples share the family's HELP/TYPE. */
		for (const char *suf = "_bucket"; suf;
		     suf = !strcmp(suf, "_bucket") ? "_sum"
			   : !strcmp(suf, "_sum")   ? "_count"
						    : NULL) {
			size_t n = strlen(name), k = strlen(suf);

			if (n > k && !strcmp(name + n - k, suf) &&
			    strstr(body, "_bucket{")) {
				char fam[96];

				snprintf(fam, sizeof(fam), "%.*s", (int)(n - k),
					 name);
				snprintf(want, sizeof(want),
					 "# TYPE %s histogram\n", fam);
				if (strstr(body, want))
					goto next;
			}
		}
		snprintf(want, sizeof(want), "# HELP %s ", name);
		ck_assert_msg(strstr(body, want), "no HELP for %s", name);
		snprintf(want, sizeof(want), "# TYPE %s counter\n", name);
		if (strstr(body, want))
			ck_assert_msg(strlen(name) > 6 &&
					      !strcmp(name + strlen(name) - 6,
						      "_total"),
				      "counter %s without _total", name);
		else {
			snprintf(want, sizeof(want), "# TYPE %s gauge\n", name);
			ck_assert_msg(strstr(body, want), "no TYPE for %s",
				      name);
		}
next:
		samples++;
	}
	ck_assert_int_gt(samples, 40);
	regfree(&re);
	free(copy);
}

/* promtool check metrics on body, when promtool is installed. */
static void promtool(const char *body)
{
	char path[] = "/tmp/bd-metrics-XXXXXX", cmd[256];
	FILE *f;
	int fd, rc;

	if (system("command -v promtool >/dev/null 2>&1")) {
		trun_note("promtool not installed: not run");
		return;
	}
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(body, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	rc = system(cmd);
	unlink(path);
	ck_assert_msg(rc == 0, "promtool check metrics failed (%d)", rc);
}

START_TEST(test_metrics_prometheus_text)
{
	struct tcl *alice = known_run();
	struct thttp_req q = { .path = "/metrics",
			       .headers = "Accept: text/plain\r\n" };
	struct thttp_resp r, r2;
	char ct[128];

	thttp_request(HPORT, &q, &r);
	expect_status(&r, 200);
	ck_assert(thttp_header(&r, "Content-Type", ct, sizeof(ct)));
	ck_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
	check_prom_text(r.body);
	ck_assert_msg(strstr(r.body, "\nbabydiscord_messages_committed_total{instance=\"test\"} 3\n"),
		      "%s", r.body);
	ck_assert_msg(strstr(r.body, "\nbabydiscord_commands_total{instance=\"test\",command=\"create\"} 1\n"),
		      "%s", r.body);
	ck_assert_msg(strstr(r.body, "\nbabydiscord_rejected_total{instance=\"test\",reason=\"too_long\"} 1\n"),
		      "%s", r.body);
	ck_assert_msg(strstr(r.body, "\nbabydiscord_batch_size_bucket{instance=\"test\",kind=\"messages\",le=\"+Inf\"} "),
		      "%s", r.body);
	promtool(r.body);
	thttp_get(HPORT, "/metrics?format=prometheus", &r2);
	expect_status(&r2, 200);
	ck_assert_msg(!strncmp(r2.body, "# HELP babydiscord_", 19), "%.200s",
		      r2.body);
	tcl_free(alice);
}
END_TEST

static json_t *stage(json_t *h, const char *name)
{
	json_t *st = json_object_get(json_object_get(h, "latency_us"), name);

	ck_assert_msg(json_is_object(st), "no latency_us.%s", name);
	ck_assert_msg(num(st, "p50") <= num(st, "p90") &&
			      num(st, "p90") <= num(st, "p99") &&
			      num(st, "p99") <= num(st, "max"),
		      "latency_us.%s: quantiles out of order", name);
	return st;
}

/*
 * Where a message's time goes: five messages from alice to bob and
 * herself; every stage the sender's instance measures has them, once per
 * message (the last write is once both copies went out); the stages that
 * need the commit's result before the NOTIFY have at most five; a message
 * is never written last before it is written first.
 */
START_TEST(test_latency_stages_counted)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct thttp_resp r;
	json_t *h;

	do_create(alice, "timed");
	do_join_seen(bob, "timed", alice);
	for (int i = 0; i < 5; i++) {
		do_say(alice, "timed", "tick");
		expect_next(bob, "[timed] alice: tick");
	}
	thttp_get(HPORT, "/health", &r);
	expect_status(&r, 200);
	h = resp_json(&r);
	ck_assert_int_eq(num(stage(h, "queue"), "count"), 5);
	ck_assert_int_eq(num(stage(h, "commit"), "count"), 5);
	ck_assert_int_eq(num(stage(h, "read_to_commit"), "count"), 5);
	ck_assert_int_eq(num(stage(h, "first_write"), "count"), 5);
	ck_assert_int_eq(num(stage(h, "last_write"), "count"), 5);
	ck_assert_int_le(num(stage(h, "notify"), "count"), 5);
	ck_assert_int_eq(num(stage(h, "delivery"), "count"),
			 num(stage(h, "notify"), "count"));
	ck_assert_int_eq(num(stage(h, "read_to_first_write"), "count"),
			 num(stage(h, "notify"), "count"));
	ck_assert_int_eq(num(stage(h, "read_to_last_write"), "count"),
			 num(stage(h, "notify"), "count"));
	ck_assert_int_ge(num(stage(h, "last_write"), "max"),
			 num(stage(h, "first_write"), "max"));
	ck_assert_int_ge(num(stage(h, "read_to_last_write"), "max"),
			 num(stage(h, "read_to_first_write"), "max"));
	ck_assert_int_ge(num(stage(h, "read_to_commit"), "max"),
			 num(stage(h, "commit"), "max"));
	json_decref(h);
	tcl_free(alice);
	tcl_free(bob);
}
END_TEST

/*
 * contrib's Prometheus config checks out (promtool check config) and its
 * Grafana dashboard is valid JSON whose every query names metrics this
 * server exposes.
 */
START_TEST(test_contrib_monitoring_files)
{
	const char *top = getenv("BD_TOP") ? getenv("BD_TOP") : ".";
	char path[1024], cmd[2048];
	struct thttp_resp r;
	json_error_t e;
	json_t *d, *panels, *p;
	size_t i, nq = 0;

	if (system("command -v promtool >/dev/null 2>&1")) {
		trun_note("promtool not installed: config not checked");
	} else {
		snprintf(cmd, sizeof(cmd),
			 "promtool check config '%s/contrib/prometheus/prometheus.yml' >/dev/null 2>&1",
			 top);
		ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
	}
	thttp_get(HPORT, "/metrics?format=prometheus", &r);
	expect_status(&r, 200);
	snprintf(path, sizeof(path), "%s/contrib/grafana/babydiscord.json", top);
	d = json_load_file(path, 0, &e);
	ck_assert_msg(d, "%s:%d: %s", path, e.line, e.text);
	panels = json_object_get(d, "panels");
	ck_assert_int_ge(json_array_size(panels), 5);
	json_array_foreach(panels, i, p) {
		json_t *t;
		size_t k;

		json_array_foreach(json_object_get(p, "targets"), k, t) {
			const char *q = json_string_value(json_object_get(t, "expr"));
			const char *m;

			ck_assert_msg(q, "panel %zu: a target without expr", i);
			for (m = strstr(q, "babydiscord_"); m;
			     m = strstr(m + 1, "babydiscord_")) {
				char name[96], want[110];

				sscanf(m, "%95[a-z_]", name);
				snprintf(want, sizeof(want), "\n%s{", name);
				ck_assert_msg(strstr(r.body, want),
					      "the dashboard queries %s, which /metrics does not have",
					      name);
				nq++;
			}
		}
	}
	ck_assert_int_ge(nq, 5);
	json_decref(d);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_metrics_json_counts, 30, NULL),
		TFIX_CASE(test_metrics_prometheus_text, 30, NULL),
		TFIX_CASE(test_latency_stages_counted, 30, NULL),
		TFIX_CASE(test_contrib_monitoring_files, 30, NULL),
	};

	return tfix_main("metrics", cases, TMAIN_N(cases), NULL);
}
