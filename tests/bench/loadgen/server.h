/*
 * What loadgen learns about the servers under test from outside the
 * protocol: each process's memory, CPU time and descriptors from /proc,
 * and what GET /health says. It does not print them (report.c does).
 */
#ifndef BD_BENCH_LG_SERVER_H
#define BD_BENCH_LG_SERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* A server process watched through /proc (-1: unknown). */
struct server_proc {
	long rss_before, rss_setup, rss_end, rss_peak;	/* kB */
	double cpu_before, cpu_setup, cpu_end;	/* user + system, s */
	long fds;				/* open at the end */
};

/* When server_sample() is called: which fields it fills. */
enum server_phase {
	SERVER_BEFORE,		/* start: all fields, only *_before known */
	SERVER_AFTER_SETUP,	/* run start: rss_setup, cpu_setup */
	SERVER_END,		/* end: rss_end, rss_peak, cpu_end, fds */
};

/* What GET /health said at the end (-1: unknown). */
struct server_health {
	int status;
	long long sessions, streams;
	double queue;			/* notify_queue_usage */
};

/*
 * Samples process pids[i] into srv[i], for i < n; with tree, each adds
 * up the figures of pids[i] and its child processes (peak: the sum of
 * each one's peak).
 */
void server_sample(struct server_proc *srv, const long *pids, uint32_t n,
		   bool tree, enum server_phase phase);

/*
 * GET /health on a blocking connection to addr with Host: host (waits at
 * most a few seconds); *h is all -1 when there was no answer.
 */
void server_get_health(struct server_health *h, const struct sockaddr_in *addr,
		       const char *host);

#endif
