/*
 * nginx in front of several instances, as contrib/nginx/babydiscord.conf
 * sets it up (plain round robin, no sticky sessions): the configuration
 * with its ports rewritten, nginx a child of the test, and its access log
 * read to tell which instance served which request. Needs nginx installed.
 */
#ifndef BD_TESTS_HELPERS_TPROXY_H
#define BD_TESTS_HELPERS_TPROXY_H

#include <stdbool.h>
#include <sys/types.h>

#include "tsrv.h"

#define TPROXY_UPSTREAMS 3 /* instances the configuration names */

struct tproxy {
	pid_t pid;			/* nginx master, 0 when not running */
	int pidfd;			/* pidfd of pid, -1 when none */
	int port;			/* where it listens (HTTP) */
	int tls_port;			/* and HTTPS (self-signed) */
	int upstream[TPROXY_UPSTREAMS]; /* the instances' HTTP ports */
	char prefix[1024];		/* its -p directory */
	char conf[1100];		/* the rewritten configuration */
	char access[1100];		/* logs/access.log */
	char error_log[1100];		/* logs/error.log */
};

/*
 * Starts nginx with contrib/nginx/babydiscord.conf, its listen ports moved
 * to free ports (px->port, px->tls_port, with a self-signed certificate
 * made by contrib/nginx/run.sh cert) and its upstreams to the HTTP ports of
 * inst[0..n-1] (n must be TPROXY_UPSTREAMS), under a prefix in this test's
 * output directory; nginx runs in the foreground as our child and dies
 * with the test. Returns once the proxy answers /health with 200; fails
 * the test when nginx is missing, exits or does not answer within 15 s.
 */
void tproxy_start(struct tproxy *px, const struct tsrv *inst, int n);

/*
 * SIGTERM (nginx's fast shutdown), reap, and fail unless it exited with
 * status 0 within 10 s. Does nothing when px is not running.
 */
void tproxy_stop(struct tproxy *px);

/*
 * Counts access log lines whose request (`"<method> <path>`, with or
 * without the query and protocol, as the log format has it) starts with
 * req, and when req ends in a letter, has exactly that path, per upstream
 * (per[i] for px->upstream[i]); returns the total. Lines naming another
 * upstream (or several: a retry) fail the test, and so do statuses other
 * than 200 when ok200.
 */
int tproxy_count_upstreams(const struct tproxy *px, const char *req, int *per,
			   bool ok200);

/*
 * Waits (inotify on the access log, at most T_WAIT) until it has n lines
 * for req, and fails unless it has exactly n; fills per as
 * tproxy_count_upstreams() does.
 */
void tproxy_wait_access_log(const struct tproxy *px, const char *req, int n,
			    int *per, bool ok200);

#endif
