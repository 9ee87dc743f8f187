/*
 * loadgen: percentiles and the printed report (report.h). It reads the
 * run's counters (adding up what each kind and instance was due) and sorts
 * its latency arrays; the verdict rules are at the end of report_run().
 */
#include "report.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "util.h"

static int report_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in ms. */
static double report_pct_ms(const uint32_t *v, size_t n, double q)
{
	size_t rank = (size_t)(q * (double)n);

	if (n == 0)
		return 0;
	if ((double)rank < q * (double)n)
		rank++;		/* ceil without libm */
	if (rank > n)
		rank = n;
	if (rank < 1)
		rank = 1;
	return v[rank - 1] / 1000.0;
}


void report_lat(const char *name, uint32_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), report_cmp_u32);
	printf("%s: p50 %.3f p90 %.3f p99 %.3f max %.3f (n %zu)\n", name,
	       report_pct_ms(v, n, 0.50), report_pct_ms(v, n, 0.90),
	       report_pct_ms(v, n, 0.99), report_pct_ms(v, n, 1.0), n);
}

void report_rusage(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("loadgen_cpu: user %.3f s sys %.3f s\n",
		       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

static size_t report_nlat(const struct lg_kstats *k)
{
	return k->deliveries < k->cap ? (size_t)k->deliveries : (size_t)k->cap;
}

/* Latencies of all kinds together, then of each kind (sorts them all). */
static void report_lats(struct lg *lg, const char *base, bool rx)
{
	char name[40];
	size_t n[LG_KINDS], total = 0, off = 0;
	uint32_t *all;
	int i;

	for (i = 0; i < LG_KINDS; i++) {
		n[i] = rx ? (size_t)lg->k[i].rx_lats : report_nlat(&lg->k[i]);
		total += n[i];
	}
	all = util_calloc(total, sizeof(*all));
	for (i = 0; i < LG_KINDS; i++) {
		memcpy(all + off, rx ? lg->k[i].rx_lat_us : lg->k[i].lat_us,
		       n[i] * sizeof(*all));
		off += n[i];
	}
	snprintf(name, sizeof(name), "%s_ms", base);
	report_lat(name, all, total);
	free(all);
	if (!lg->o.sse_clients)
		return;
	for (i = 0; i < LG_KINDS; i++) {
		snprintf(name, sizeof(name), "%s_%s_ms", base,
			 lg_kind_name[i]);
		report_lat(name, rx ? lg->k[i].rx_lat_us : lg->k[i].lat_us,
			   n[i]);
	}
}

static uint64_t report_lost(const struct lg_kstats *k)
{
	return k->expected > k->deliveries ? k->expected - k->deliveries : 0;
}

/* What each kind and instance should have received: its members' rooms. */
static void report_expect(struct lg *lg)
{
	uint32_t i;

	for (i = 0; i < lg->nconn; i++) {
		const struct lg_conn *c = &lg->conns[i];
		uint64_t due = lg->rooms[c->room].sent;

		if (!c->member)
			continue;
		if (c->proto == LG_P_IRC)
			due -= c->sent;	/* no echo of its own */
		lg_kind(lg, c)->expected += due;
		lg_inst(lg, c)->expected += due;
	}
}

static void report_deliveries(const struct lg *lg, const char *name,
			      const struct lg_kstats *k)
{
	printf("%s: expected %" PRIu64 ", received %" PRIu64 ", lost %" PRIu64
	       ", duplicated %" PRIu64 ", reordered %" PRIu64
	       ", unparsable %" PRIu64 ", history skipped %" PRIu64,
	       name, k->expected, k->deliveries, report_lost(k), k->duplicated,
	       k->reordered, k->bogus, k->history_skipped);
	if (lg->o.sse_clients)
		printf(", stream resets %" PRIu64, k->resets);
	printf("\n");
	if (k == &lg->k[LG_SSE])
		printf("sse_events: system %" PRIu64 ", heartbeats %" PRIu64
		       "\n", k->system_events, k->heartbeats);
}

/*
 * The messages that took longest to reach their first receiver, with when
 * they were sent: stalls show up as a cluster at one time.
 */
static void report_worst(const struct lg *lg)
{
	enum { WORST = 8 };
	uint64_t top[WORST];
	uint64_t i;
	int n = 0, j;

	for (i = 0; i < lg->committed; i++) {
		/* Latency in the high half, index in the low half. */
		uint64_t key = (uint64_t)lg->first_lat_us[i] << 32 | i;

		if (n == WORST && key <= top[WORST - 1])
			continue;
		if (n < WORST)
			n++;
		for (j = n - 1; j > 0 && top[j - 1] < key; j--)
			top[j] = top[j - 1];
		top[j] = key;
	}
	printf("latency_first_worst:");
	for (j = 0; j < n; j++) {
		uint32_t k = (uint32_t)top[j];

		printf(" %.1f ms at %.3f s", lg->first_lat_us[k] / 1000.0,
		       lg->first_at_ms[k] / 1000.0);
		if (j + 1 < n)
			printf(",");
	}
	printf("\n");
}

static void report_server(const char *name, const struct server_proc *sv)
{
	printf("%s: before %ld after_setup %ld end %ld peak %ld\n", name,
	       sv->rss_before, sv->rss_setup, sv->rss_end, sv->rss_peak);
}

static void report_health(const char *name, const struct server_health *h)
{
	printf("%s: status %d sessions %lld streams %lld "
	       "notify_queue_usage %g\n", name, h->status, h->sessions,
	       h->streams, h->queue);
}

/*
 * With several instances (--ports): for each, its connections, deliveries
 * and latencies (of the receivers connected to it, senders included), the
 * server process and what its /health said.
 */
static void report_instances(struct lg *lg)
{
	char name[48];
	uint32_t i;

	for (i = 0; i < lg->o.ninst; i++) {
		struct lg_kstats *k = &lg->inst[i];

		printf("instance_i%" PRIu32 ": port %u", i + 1,
		       ntohs(lg->o.addr[i].sin_port));
		if (lg->o.nhttp == lg->o.ninst)
			printf(" http %u", ntohs(lg->o.http_addr[i].sin_port));
		if (lg->o.npids == lg->o.ninst)
			printf(" pid %ld", lg->o.server_pid[i]);
		printf(", connections planned %" PRIu32 ", joined %" PRIu64
		       ", failed %" PRIu32 ", lost during run %" PRIu64
		       ", connected at end %" PRIu32 "\n", k->planned,
		       k->members, k->failed, k->dropped, k->joined);
		snprintf(name, sizeof(name), "deliveries_i%" PRIu32, i + 1);
		report_deliveries(lg, name, k);
		snprintf(name, sizeof(name), "latency_i%" PRIu32 "_ms", i + 1);
		report_lat(name, k->lat_us, report_nlat(k));
		snprintf(name, sizeof(name), "latency_rx_i%" PRIu32 "_ms",
			 i + 1);
		report_lat(name, k->rx_lat_us, (size_t)k->rx_lats);
	}
}

bool report_has_health(const struct lg *lg)
{
	return lg->o.proto == ARGS_BD && lg->o.sse_proto == ARGS_BD &&
	       (lg->o.http_given || lg->o.sse_clients);
}

/*
 * Memory the servers took for the connections: RSS after the setup minus
 * RSS before it, all --server-pid processes (and their children with
 * --server-tree) added up, over the connections that joined.
 */
static void report_rss_per_conn(const struct lg *lg)
{
	long before = 0, setup = 0;
	uint32_t i;

	for (i = 0; i < lg->o.npids; i++) {
		if (lg->srv[i].rss_before < 0 || lg->srv[i].rss_setup < 0)
			return;
		before += lg->srv[i].rss_before;
		setup += lg->srv[i].rss_setup;
	}
	if (!lg->o.npids || !lg->members)
		return;
	printf("server_rss_per_conn_kb: %.2f (%ld kB over %" PRIu64
	       " connections%s)\n", (double)(setup - before) / lg->members,
	       setup - before, lg->members,
	       lg->o.server_tree ? "; processes and their children" : "");
}

static double report_s(uint64_t from, uint64_t to)
{
	return to > from ? util_secs(to - from) : 0;
}

/*
 * --reconnect: how many members lost their link and came back, and the
 * times from the first loss: until every one was back in its room
 * (all_back), and until the last message sent before a member was back
 * reached it (caught_up: history or Last-Event-ID replay). What was
 * missed or doubled meanwhile is in the deliveries lines.
 */
static void report_reconnect(const struct lg *lg)
{
	if (lg->o.kill_pid)
		printf("kill: pid %ld SIGKILL %s at %.3f s into the run\n",
		       lg->o.kill_pid, lg->killed ? "sent" : "not sent",
		       lg->killed ? report_s(lg->t0, lg->t_kill) : 0.0);
	if (!lg->o.reconnect)
		return;
	printf("reconnect: lost tcp %" PRIu64 " sse %" PRIu64
	       ", back tcp %" PRIu64 " sse %" PRIu64 ", still away %" PRIu32
	       ", failed attempts %" PRIu64 ", nick retries %" PRIu64
	       ", history lines: gap filled %" PRIu64 " already seen %"
	       PRIu64 "\n", lg->lost_links[LG_TCP], lg->lost_links[LG_SSE],
	       lg->came_back[LG_TCP], lg->came_back[LG_SSE], lg->away,
	       lg->retries, lg->nick_retries, lg->history_new,
	       lg->history_seen);
	if (!lg->t_first_lost) {
		printf("reconnect_s: nobody lost\n");
		return;
	}
	printf("reconnect_s: first loss at %.3f s into the run, all_back %s%.3f"
	       " caught_up %.3f (from the first loss)\n",
	       report_s(lg->t0, lg->t_first_lost),
	       lg->away ? "NOT " : "",
	       lg->away ? 0.0 : report_s(lg->t_first_lost, lg->t_all_back),
	       report_s(lg->t_first_lost,
			lg->t_caught_up > lg->t_all_back ? lg->t_caught_up :
							   lg->t_all_back));
}

/*
 * Latency lines: latency_ms is from the send to when loadgen read the line;
 * latency_rx_ms to the kernel's receive timestamp, without loadgen's own
 * backlog; latency_first_ms per message, to its first receiver (the commit
 * and NOTIFY path; the rest is the server's fan-out), and
 * latency_first_worst lists the slowest of those with their send times.
 * With SSE subscribers each comes for all receivers, then _tcp_ and _sse_
 * alone; with several instances, for the receivers of each (_i1_ ...).
 * Rates are over "elapsed": from the first send to the last send or
 * delivery.
 */
int report_run(struct lg *lg)
{
	uint64_t end = lg->t_last_send > lg->t_last_delivery ?
			       lg->t_last_send : lg->t_last_delivery;
	uint64_t planned = (uint64_t)lg->o.senders * lg->o.messages;
	struct lg_kstats all = { .members = lg->members };
	const char *verdict = "PASS";
	double elapsed, send_span, cpu_setup = 0, cpu_run = 0;
	bool cpu_known = lg->o.npids > 0;
	uint64_t lost;
	int i;

	report_expect(lg);

	for (i = 0; i < LG_KINDS; i++) {
		const struct lg_kstats *k = &lg->k[i];

		all.expected += k->expected;
		all.deliveries += k->deliveries;
		all.duplicated += k->duplicated;
		all.reordered += k->reordered;
		all.bogus += k->bogus;
		all.history_skipped += k->history_skipped;
		all.resets += k->resets;
	}
	lost = report_lost(&all);
	if (!lg->running)
		end = lg->t0 = util_now_ns();
	if (end < lg->t0)
		end = lg->t0;
	elapsed = util_secs(end - lg->t0);
	send_span = lg->t_last_send > lg->t0 ?
			    util_secs(lg->t_last_send - lg->t0) : 0;

	printf("connections: planned %" PRIu32 " (%" PRIu32 " receivers + %"
	       PRIu32 " senders", lg->nconn, lg->o.clients, lg->o.senders);
	if (lg->o.sse_clients)
		printf(" over TCP, %" PRIu32 " SSE subscribers",
		       lg->o.sse_clients);
	printf("), joined %" PRIu64 ", failed %" PRIu32
	       ", lost during run %" PRIu64 "\n",
	       lg->members, lg->failed, lg->dropped);
	if (lg->o.sse_clients)
		for (i = 0; i < LG_KINDS; i++)
			printf("connections_%s: planned %" PRIu32
			       ", joined %" PRIu64 ", failed %" PRIu32
			       ", lost during run %" PRIu64
			       ", connected at end %" PRIu32 "\n",
			       lg_kind_name[i], lg->k[i].planned,
			       lg->k[i].members, lg->k[i].failed,
			       lg->k[i].dropped, lg->k[i].joined);
	printf("setup: %.3f s", util_secs((lg->t_hold ? lg->t_hold : lg->t0) -
					  lg->t_setup));
	if (lg->o.hold > 0)
		printf(" (then %.3f s idle)",
		       lg->t_hold ? util_secs(lg->t0 - lg->t_hold) : 0.0);
	printf("\n");
	printf("messages: planned %" PRIu64 ", sent %" PRIu64
	       ", committed %" PRIu64 ", refused %" PRIu64 ", skipped %"
	       PRIu64 "\n", planned, lg->sent, lg->committed, lg->refused,
	       lg->skipped);
	report_deliveries(lg, "deliveries", &all);
	if (lg->o.sse_clients)
		for (i = 0; i < LG_KINDS; i++) {
			char name[32];

			snprintf(name, sizeof(name), "deliveries_%s",
				 lg_kind_name[i]);
			report_deliveries(lg, name, &lg->k[i]);
		}
	printf("elapsed: %.3f s (%s)\n", elapsed, lg->stop_reason);
	printf("rates: send %.1f msg/s, committed %.1f msg/s, "
	       "deliveries %.1f/s\n",
	       send_span > 0 ? lg->sent / send_span : 0,
	       elapsed > 0 ? lg->committed / elapsed : 0,
	       elapsed > 0 ? all.deliveries / elapsed : 0);
	printf("deliveries_to_receivers: %" PRIu64 ", %.1f/s (senders' "
	       "echoes left out)\n", lg->deliveries_rx,
	       elapsed > 0 ? lg->deliveries_rx / elapsed : 0);
	report_lats(lg, "latency", false);
	report_lats(lg, "latency_rx", true);
	report_worst(lg);	/* before report_lat() sorts them */
	report_lat("latency_first_ms", lg->first_lat_us, lg->committed);
	/* A client that came back elsewhere would count on two. */
	if (lg->o.ninst > 1 && !lg->o.reconnect)
		report_instances(lg);
	for (i = 0; i < (int)lg->o.npids; i++) {
		const struct server_proc *sv = &lg->srv[i];
		char name[48];

		if (sv->cpu_before < 0 || sv->cpu_setup < 0 || sv->cpu_end < 0)
			cpu_known = false;
		cpu_setup += sv->cpu_setup - sv->cpu_before;
		cpu_run += sv->cpu_end - sv->cpu_setup;
		if (lg->o.npids == 1) {
			report_server("server_rss_kb", sv);
			printf("server_fds: %ld at end\n", sv->fds);
			continue;
		}
		snprintf(name, sizeof(name), "server_rss_kb_i%d", i + 1);
		report_server(name, sv);
		printf("server_fds_i%d: %ld at end\n", i + 1, sv->fds);
		printf("server_cpu_s_i%d: before_run %.2f run %.2f\n", i + 1,
		       sv->cpu_setup - sv->cpu_before,
		       sv->cpu_end - sv->cpu_setup);
	}
	report_rss_per_conn(lg);
	if (cpu_known)
		printf("server_cpu_s: before_run %.2f run %.2f%s\n", cpu_setup,
		       cpu_run, lg->o.npids > 1 ? " (all servers)" : "");
	report_reconnect(lg);
	if (report_has_health(lg)) {
		for (i = 0; i < (int)lg->o.nhttp; i++) {
			char name[48];

			if (lg->o.nhttp == 1)
				snprintf(name, sizeof(name), "server_health");
			else
				snprintf(name, sizeof(name),
					 "server_health_i%d", i + 1);
			report_health(name, &lg->health[i]);
		}
	}
	if (lg->o.sse_clients && lg->o.sse_proto == ARGS_BD)
		printf("teardown: %" PRIu32 " of %" PRIu32 " sessions "
		       "disconnected in %.3f s\n", lg->teardown_done,
		       lg->teardown_tried, lg->teardown_s);
	report_rusage();
	printf("server_errors: %" PRIu64 "%s\n", lg->errors,
	       lg->shutdown_seen ? " (server restarting, please reconnect seen)" : "");

	if (lg->failed > 0 || !lg->running)
		verdict = "FAIL (connections failed)";
	else if (lost > 0 || lg->sent < planned)
		verdict = "FAIL (messages lost or not sent)";
	else if (all.duplicated > 0 || all.reordered > 0)
		verdict = "FAIL (duplicated or reordered deliveries)";
	else if (all.resets > 0)
		verdict = "FAIL (stream reset)";
	printf("result: %s\n", verdict);
	fflush(stdout);
	return strcmp(verdict, "PASS") ? 1 : 0;
}
