/*
 * nginx as a child of the test: a rewritten copy of the contrib
 * configuration, a foreground master reaped through a pidfd, and its
 * access log counted per upstream.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tproxy.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "thttp.h"
#include "trun.h"

/* Path of nginx: /usr/sbin/nginx, else the first in PATH; NULL if none. */
static const char *nginx_path(char *buf, size_t len)
{
	const char *path = getenv("PATH");

	if (!access("/usr/sbin/nginx", X_OK))
		return "/usr/sbin/nginx";
	while (path && *path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, len, "%.*s/nginx", (int)n, path);
		if (n && !access(buf, X_OK))
			return buf;
		path += n + (path[n] == ':');
	}
	return NULL;
}

/*
 * Writes conf to out with, outside comments, every "127.0.0.1:<from[i]>"
 * (not followed by a digit) replaced by "127.0.0.1:<to[i]>"; counts[i]
 * gets how many were.
 */
static void rewrite_conf(const char *conf, FILE *out, const int *from,
			 const int *to, int *counts, int n)
{
	for (const char *p = conf; *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) + 1 : strlen(p);
		const char *q = p + strspn(p, " \t");

		if (*q == '#') {
			fwrite(p, 1, ll, out);
			p += ll;
			continue;
		}
		for (size_t i = 0; i < ll;) {
			bool done = false;

			for (int k = 0; k < n && !done; k++) {
				char pat[32];
				size_t pl = (size_t)snprintf(pat, sizeof(pat),
							     "127.0.0.1:%d",
							     from[k]);

				if (i + pl <= ll && !strncmp(p + i, pat, pl) &&
				    !(i + pl < ll && p[i + pl] >= '0' &&
				      p[i + pl] <= '9')) {
					fprintf(out, "127.0.0.1:%d", to[k]);
					counts[k]++;
					i += pl;
					done = true;
				}
			}
			if (!done)
				fputc(p[i++], out);
		}
		p += ll;
	}
}

/* The last len bytes of a file, for failure messages (malloc'd). */
static char *file_tail(const char *path, long len)
{
	char *all = trun_slurp(path, NULL), *t;
	size_t n;

	if (!all)
		return strdup("(missing)");
	n = strlen(all);
	t = strdup(n > (size_t)len ? all + n - len : all);
	free(all);
	return t;
}

void tproxy_start(struct tproxy *px, const struct tsrv *inst, int n)
{
	char dir[900], nb[1024], path[1100], *conf;
	const char *bin = nginx_path(nb, sizeof(nb));
	int from[2 + TPROXY_UPSTREAMS] = { 8080, 8443, 3001, 3002, 3003 },
		     to[2 + TPROXY_UPSTREAMS],
		     counts[2 + TPROXY_UPSTREAMS] = { 0 };
	char cmd[1400];
	int64_t deadline;
	pid_t parent = getpid();
	FILE *f;

	ck_assert_msg(
		bin,
		"nginx is not installed (no /usr/sbin/nginx, none in PATH): "
		"the proxy tests need Debian's nginx package; make check "
		"installs it (contrib/install-deps.sh --nginx)");
	ck_assert_int_eq(n, TPROXY_UPSTREAMS);
	memset(px, 0, sizeof(*px));
	px->pidfd = -1;
	trun_output_dir(dir, sizeof(dir));
	snprintf(px->prefix, sizeof(px->prefix), "%s/nginx", dir);
	snprintf(path, sizeof(path), "%s/logs", px->prefix);
	trun_mkdirs(path);
	snprintf(path, sizeof(path), "%s/tmp", px->prefix);
	trun_mkdirs(path);
	snprintf(px->access, sizeof(px->access), "%s/logs/access.log",
		 px->prefix);
	snprintf(px->error_log, sizeof(px->error_log), "%s/logs/error.log",
		 px->prefix);
	unlink(px->access);
	unlink(px->error_log);
	snprintf(path, sizeof(path), "%s/contrib/nginx/babydiscord.conf",
		 trun_env("BD_TOP"));
	conf = trun_slurp(path, NULL);
	ck_assert_msg(conf, "%s: %s", path, strerror(errno));
	tsrv_free_ports(&px->port, &px->tls_port);
	to[0] = px->port;
	to[1] = px->tls_port;
	for (int i = 0; i < TPROXY_UPSTREAMS; i++)
		to[2 + i] = px->upstream[i] = inst[i].http_port;
	snprintf(cmd, sizeof(cmd),
		 "BD_NGINX_PREFIX='%s' '%s/contrib/nginx/run.sh' cert "
		 ">/dev/null",
		 px->prefix, trun_env("BD_TOP"));
	ck_assert_msg(!system(cmd), "%s failed", cmd);
	snprintf(px->conf, sizeof(px->conf), "%s/babydiscord.conf", px->prefix);
	f = fopen(px->conf, "w");
	ck_assert_msg(f, "%s: %s", px->conf, strerror(errno));
	rewrite_conf(conf, f, from, to, counts, 2 + TPROXY_UPSTREAMS);
	ck_assert(!fclose(f));
	free(conf);
	for (int k = 0; k < 2 + TPROXY_UPSTREAMS; k++)
		ck_assert_msg(
			counts[k] >= 1,
			"%s has no 127.0.0.1:%d outside comments to rewrite",
			path, from[k]);

	fflush(NULL);
	px->pid = fork();
	ck_assert_msg(px->pid >= 0, "fork: %s", strerror(errno));
	if (!px->pid) {
		char out[1200];

		/* A killed test takes nginx (which stops its workers) along. */
		snprintf(out, sizeof(out), "%s/logs/stderr.log", px->prefix);
		trun_child_setup(parent, SIGTERM, out);
		execl(bin, bin, "-p", px->prefix, "-e", "logs/error.log", "-c",
		      px->conf, "-g", "daemon off;", (char *)NULL);
		dprintf(2, "test: exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	px->pidfd = (int)syscall(SYS_pidfd_open, px->pid, 0);
	/* Connection attempts until it listens and an instance answers. */
	deadline = trun_now_ms() + trun_ms(15000);
	for (;;) {
		struct thttp_resp r;
		int status;

		if (thttp_try_get(px->port, "/health", &r, trun_ms(T_WAIT)) &&
		    r.status == 200)
			break;
		if (waitpid(px->pid, &status, WNOHANG) == px->pid) {
			char *tail = file_tail(px->error_log, 2000);

			px->pid = 0;
			ck_abort_msg(
				"nginx exited at start (wait status %#x); %s ends:\n%s",
				status, px->error_log, tail);
		}
		if (trun_now_ms() > deadline) {
			char *tail = file_tail(px->error_log, 2000);

			ck_abort_msg(
				"nginx on port %d: no /health 200 within %d ms; %s ends:\n%s",
				px->port, trun_ms(15000), px->error_log, tail);
		}
		trun_pace();
	}
}

void tproxy_stop(struct tproxy *px)
{
	int64_t deadline = trun_now_ms() + trun_ms(10000);
	int status = 0;

	if (!px->pid)
		return;
	kill(px->pid, SIGTERM);
	for (;;) {
		struct pollfd pfd = { .fd = px->pidfd, .events = POLLIN };
		int64_t left = deadline - trun_now_ms();
		pid_t r = waitpid(px->pid, &status, WNOHANG);

		if (r == px->pid)
			break;
		if (left <= 0) {
			kill(px->pid, SIGKILL);
			waitpid(px->pid, &status, 0);
			px->pid = 0;
			ck_abort_msg(
				"nginx did not exit within 10 s of SIGTERM");
		}
		if (px->pidfd >= 0)
			poll(&pfd, 1, (int)left);
		else
			poll(NULL, 0, 20);
	}
	px->pid = 0;
	if (px->pidfd >= 0)
		close(px->pidfd);
	px->pidfd = -1;
	ck_assert_msg(WIFEXITED(status) && !WEXITSTATUS(status),
		      "nginx ended with wait status %#x", status);
}

int tproxy_count_upstreams(const struct tproxy *px, const char *req, int *per,
			   bool ok200)
{
	char *log = trun_slurp(px->access, NULL), *save = NULL;
	int total = 0;

	for (int i = 0; i < TPROXY_UPSTREAMS; i++)
		per[i] = 0;
	if (!log)
		return 0;
	for (char *l = strtok_r(log, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *q = strstr(l, req), *u;
		size_t rl = strlen(req);
		bool found = false;

		if (!q || q == l || q[-1] != '"')
			continue;
		if (req[rl - 1] != '/' && !strchr(" ?\"", q[rl]))
			continue;
		u = strstr(l, " upstream=");
		ck_assert_msg(u, "access log line without upstream=: %s", l);
		u += strlen(" upstream=");
		for (int i = 0; i < TPROXY_UPSTREAMS; i++) {
			char a[32];
			size_t al = (size_t)snprintf(
				a, sizeof(a), "127.0.0.1:%d ", px->upstream[i]);

			if (!strncmp(u, a, al)) {
				per[i]++;
				found = true;
			}
		}
		ck_assert_msg(
			found,
			"access log: a request went elsewhere (or was retried): %s",
			l);
		ck_assert_msg(!ok200 || strstr(l, "\" 200 "),
			      "access log: not a 200: %s", l);
		total++;
	}
	free(log);
	return total;
}

void tproxy_wait_access_log(const struct tproxy *px, const char *req, int n,
			    int *per, bool ok200)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), got;

	ck_assert_msg(ifd >= 0, "inotify_init1: %s", strerror(errno));
	ck_assert_msg(inotify_add_watch(ifd, px->access, IN_MODIFY) >= 0,
		      "inotify_add_watch %s: %s", px->access, strerror(errno));
	while ((got = tproxy_count_upstreams(px, req, per, ok200)) < n) {
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		int64_t left = deadline - trun_now_ms();
		char ev[4096];

		ck_assert_msg(
			left > 0,
			"%s: the access log has %d of %d requests \"%s\" after %d ms",
			px->access, got, n, req, trun_ms(T_WAIT));
		poll(&pfd, 1, (int)left);
		while (read(ifd, ev, sizeof(ev)) > 0)
			;
	}
	close(ifd);
	ck_assert_msg(got == n, "%s: %d requests \"%s\", expected %d",
		      px->access, got, req, n);
}
