/*
 * Server process control for the integration tests. The log file is the
 * readiness channel: inotify says when it grew, a pidfd says when the
 * server died, so waits end as soon as something happens.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tsrv.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trun.h"

#define TSRV_READY_WAIT 15000 /* ms: DB connect + listeners */
#define TSRV_STOP_WAIT 10000  /* ms: SIGTERM to exit */

/* The ports of a fresh config; learn_ports() puts the bound ones there. */
#define PORTS_ANY "\t\"tcp_port\": 0,\n\t\"http_port\": 0,\n"
/* The server's line naming the ports it bound, before it is ready. */
/* The start event, text or JSON, and its port fields. */
#define PORTS_LINE " INFO start "
#define PORTS_LINE_JSON "\"event\":\"start\""

void tsrv_free_ports(int *a, int *b)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd[2], port[2];

	for (int i = 0; i < 2; i++) {
		fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_msg(fd[i] >= 0, "socket: %s", strerror(errno));
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_msg(!bind(fd[i], (struct sockaddr *)&sa, sizeof(sa)),
			      "bind: %s", strerror(errno));
		sl = sizeof(sa);
		ck_assert(!getsockname(fd[i], (struct sockaddr *)&sa, &sl));
		port[i] = ntohs(sa.sin_port);
	}
	close(fd[0]);
	close(fd[1]);
	*a = port[0];
	*b = port[1];
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void tsrv_init(struct tsrv *s, const char *name, const struct tsrv_opts *o)
{
	char dir[900];
	FILE *f;

	ck_assert(o->database_url);
	memset(s, 0, sizeof(*s));
	s->pidfd = -1;
	trun_output_dir(dir, sizeof(dir));
	snprintf(s->cfg, sizeof(s->cfg), "%s/%s.json", dir, name);
	snprintf(s->log, sizeof(s->log), "%s/%s.log", dir, name);
	snprintf(s->instance_id, sizeof(s->instance_id), "%s",
		 o->instance_id ? o->instance_id : "test");
	s->json_log = o->extra_json &&
		      strstr(o->extra_json, "\"log_format\": \"json\"");
	if (o->env_database_url)
		snprintf(s->env_url, sizeof(s->env_url), "%s",
			 o->env_database_url);

	f = fopen(s->cfg, "w");
	ck_assert_msg(f, "%s: %s", s->cfg, strerror(errno));
	fprintf(f, "{\n\t\"instance_id\": ");
	json_str(f, s->instance_id);
	fprintf(f, ",\n\t\"listen_address\": \"127.0.0.1\",\n");
	/* Any free ports: the server reports the ones it bound. */
	fprintf(f, "%s", PORTS_ANY);
	fprintf(f, "\t\"database_url\": ");
	json_str(f, o->database_url);
	fprintf(f, ",\n\t\"history_size\": %d,\n",
		o->history_size ? o->history_size : 10);
	fprintf(f, "\t\"max_message_bytes\": %d,\n",
		o->max_message_bytes ? o->max_message_bytes : 2000);
	fprintf(f, "\t\"outq_limit_bytes\": %ld,\n",
		o->outq_limit_bytes ? o->outq_limit_bytes : 1048576L);
	fprintf(f, "\t\"log_level\": ");
	json_str(f, o->log_level ? o->log_level : "info");
	/* Tests send as fast as they like, unless they test the limits. */
	if (!o->rate_limits)
		fprintf(f, ",\n\t\"msg_rate_per_s\": 0,\n\t\"cmd_rate_per_s\": 0,"
			   "\n\t\"max_connections_per_ip\": 0,"
			   "\n\t\"connect_rate_per_min\": 0,"
			   "\n\t\"create_rate_per_min\": 0");
	if (o->extra_json) {
		const char *at = strstr(o->extra_json, TSRV_LOG_PATH);

		/* The first TSRV_LOG_PATH stands for this server's log. */
		if (at)
			fprintf(f, ",\n\t%.*s%s%s", (int)(at - o->extra_json),
				o->extra_json, s->log,
				at + strlen(TSRV_LOG_PATH));
		else
			fprintf(f, ",\n\t%s", o->extra_json);
	}
	fprintf(f, "\n}\n");
	ck_assert_msg(!fclose(f), "%s: %s", s->cfg, strerror(errno));

	/* A fresh log per test run; runs of this test append to it. */
	f = fopen(s->log, "w");
	ck_assert_msg(f, "%s: %s", s->log, strerror(errno));
	fclose(f);
}

static char *scan_log(struct tsrv *s, const char *needle, int timeout_ms);

/* Puts the bound ports into the config, so that restarts reuse them. */
static void keep_ports(struct tsrv *s)
{
	char buf[16384], ports[128], *at;
	size_t n;
	FILE *f;

	f = fopen(s->cfg, "r");
	ck_assert_msg(f, "%s: %s", s->cfg, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	ck_assert_msg(n < sizeof(buf) - 1, "%s: too long", s->cfg);
	buf[n] = '\0';
	at = strstr(buf, PORTS_ANY);
	ck_assert_msg(at, "%s: no \"%s\"", s->cfg, PORTS_ANY);
	snprintf(ports, sizeof(ports),
		 "\t\"tcp_port\": %d,\n\t\"http_port\": %d,\n", s->tcp_port,
		 s->http_port);
	f = fopen(s->cfg, "w");
	ck_assert_msg(f, "%s: %s", s->cfg, strerror(errno));
	fprintf(f, "%.*s%s%s", (int)(at - buf), buf, ports,
		at + strlen(PORTS_ANY));
	ck_assert_msg(!fclose(f), "%s: %s", s->cfg, strerror(errno));
}

/*
 * The first run binds ports 0: waits for the line naming the ports it got
 * (or for its exit, which the caller sees), then keeps them.
 */
static void learn_ports(struct tsrv *s)
{
	const char *needle = s->json_log ? PORTS_LINE_JSON : PORTS_LINE;
	const char *sep = s->json_log ? "\":" : "=";
	char *line, *tail, *t, *h;

	if (s->tcp_port)
		return;
	line = tsrv_wait_log(s, needle, trun_ms(TSRV_READY_WAIT));
	if (!line) {
		if (tsrv_exited(s))
			return;
		tail = tsrv_log_tail(s, 3000);
		ck_abort_msg("server %s: no \"%s\" within %d ms; log %s "
			     "ends:\n%s",
			     s->cfg, needle, trun_ms(TSRV_READY_WAIT),
			     s->log, tail);
	}
	t = strstr(line, "tcp_port");
	h = strstr(line, "http_port");
	ck_assert_msg(t && h &&
			      sscanf(t + strlen("tcp_port") + strlen(sep), "%d",
				     &s->tcp_port) == 1 &&
			      sscanf(h + strlen("http_port") + strlen(sep),
				     "%d", &s->http_port) == 1 &&
			      s->tcp_port > 0 && s->http_port > 0,
		      "server %s: cannot read its ports from \"%s\"", s->cfg,
		      line);
	free(line);
	keep_ports(s);
}

void tsrv_spawn(struct tsrv *s)
{
	const char *bin = trun_env("BD_SERVER");
	pid_t parent = getpid();
	struct stat st;
	FILE *f;
	pid_t pid;

	ck_assert_msg(!s->pid, "server already running");
	ck_assert_msg(!access(bin, X_OK), "BD_SERVER %s: %s", bin,
		      strerror(errno));
	f = fopen(s->log, "a");
	ck_assert_msg(f, "%s: %s", s->log, strerror(errno));
	fprintf(f, "---- test harness: run %d: %s --config %s ----\n",
		++s->runs, bin, s->cfg);
	fclose(f);
	ck_assert(!stat(s->log, &st));
	s->run_start = st.st_size;

	fflush(NULL);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		/* Die with the test process, even when Check kills it. */
		trun_child_setup(parent, SIGKILL, s->log);
		/* DATABASE_URL overrides the config: only when asked for. */
		if (s->env_url[0])
			setenv("DATABASE_URL", s->env_url, 1);
		else
			unsetenv("DATABASE_URL");
		execl(bin, bin, "--config", s->cfg, (char *)NULL);
		dprintf(2, "test harness: exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	learn_ports(s);
}

char *tsrv_log_tail(struct tsrv *s, size_t len)
{
	struct stat st;
	off_t from = s->run_start;
	char *buf;
	ssize_t n;
	int fd;

	fd = open(s->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		return strdup("(no log)");
	}
	if (st.st_size - from > (off_t)len)
		from = st.st_size - (off_t)len;
	buf = calloc(1, len + 1);
	ck_assert(buf);
	n = pread(fd, buf, len, from);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return buf;
}

bool tsrv_exited(struct tsrv *s)
{
	siginfo_t si;

	if (!s->pid)
		return true;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT))
		return true;
	return si.si_pid == s->pid;
}

/*
 * Scans this run's log for a line containing needle. With a timeout,
 * waits for the file to grow (inotify) or the server to exit (pidfd).
 */
static char *scan_log(struct tsrv *s, const char *needle, int timeout_ms)
{
	int64_t deadline = trun_now_ms() + timeout_ms;
	char *line = NULL, *acc = NULL;
	size_t acc_len = 0, acc_cap = 0;
	off_t off = s->run_start;
	bool last_pass = false;
	int ifd = -1, fd;

	if (timeout_ms > 0) {
		ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		ck_assert_msg(ifd >= 0, "inotify_init1: %s", strerror(errno));
		ck_assert_msg(inotify_add_watch(ifd, s->log, IN_MODIFY) >= 0,
			      "inotify_add_watch %s: %s", s->log,
			      strerror(errno));
	}
	fd = open(s->log, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "%s: %s", s->log, strerror(errno));
	for (;;) {
		char chunk[65536];
		ssize_t n;

		while ((n = pread(fd, chunk, sizeof(chunk), off)) > 0) {
			off += n;
			for (ssize_t i = 0; i < n; i++) {
				if (acc_len + 1 >= acc_cap) {
					acc_cap = acc_cap ? acc_cap * 2 : 1024;
					acc = realloc(acc, acc_cap);
					ck_assert(acc);
				}
				if (chunk[i] != '\n') {
					acc[acc_len++] = chunk[i];
					continue;
				}
				acc[acc_len] = '\0';
				if (strstr(acc, needle)) {
					line = strdup(acc);
					goto out;
				}
				acc_len = 0;
			}
		}
		if (last_pass || timeout_ms <= 0)
			break;
		{
			struct pollfd pfd[2] = {
				{ .fd = ifd, .events = POLLIN },
				{ .fd = s->pidfd, .events = POLLIN },
			};
			int64_t left = deadline - trun_now_ms();
			int wait;

			if (left <= 0)
				break;
			/* Without a pidfd, look at the child now and then. */
			wait = s->pidfd < 0 && left > 100 ? 100 : (int)left;
			if (poll(pfd, 2, wait) < 0 && errno != EINTR)
				ck_abort_msg("poll: %s", strerror(errno));
			if (pfd[0].revents) {
				char ev[4096];

				while (read(ifd, ev, sizeof(ev)) > 0)
					;
			}
			/* Read what it wrote before dying, then give up. */
			if (pfd[1].revents || (s->pidfd < 0 && tsrv_exited(s)))
				last_pass = true;
		}
	}
out:
	free(acc);
	close(fd);
	if (ifd >= 0)
		close(ifd);
	return line;
}

char *tsrv_wait_log(struct tsrv *s, const char *needle, int timeout_ms)
{
	return scan_log(s, needle, timeout_ms > 0 ? timeout_ms : 1);
}

char *tsrv_log_find(struct tsrv *s, const char *needle)
{
	return scan_log(s, needle, 0);
}

void tsrv_wait_ready(struct tsrv *s)
{
	char needle[128], *line, *tail;

	if (s->json_log)
		snprintf(needle, sizeof(needle),
			 "\"event\":\"ready\",\"tcp\":\"127.0.0.1:%d\",\"http\":\"127.0.0.1:%d\"",
			 s->tcp_port, s->http_port);
	else
		snprintf(needle, sizeof(needle),
			 " INFO ready tcp=127.0.0.1:%d http=127.0.0.1:%d",
			 s->tcp_port, s->http_port);
	line = tsrv_wait_log(s, needle, trun_ms(TSRV_READY_WAIT));
	if (line) {
		free(line);
		return;
	}
	tail = tsrv_log_tail(s, 3000);
	ck_abort_msg("server %s: no \"%s\" within %d ms (%s); log %s ends:\n%s",
		     s->cfg, needle, trun_ms(TSRV_READY_WAIT),
		     tsrv_exited(s) ? "it exited" : "still running", s->log,
		     tail);
}

void tsrv_start(struct tsrv *s)
{
	tsrv_spawn(s);
	tsrv_wait_ready(s);
}

void tsrv_signal(struct tsrv *s, int sig)
{
	ck_assert_msg(s->pid > 0, "server not running");
	ck_assert_msg(!kill(s->pid, sig), "kill: %s", strerror(errno));
}

static void reaped(struct tsrv *s)
{
	if (s->pidfd >= 0)
		close(s->pidfd);
	s->pidfd = -1;
	s->pid = 0;
}

int tsrv_wait_exit(struct tsrv *s, int timeout_ms)
{
	int64_t deadline = trun_now_ms() + timeout_ms;
	int status = 0;
	pid_t r;

	ck_assert_msg(s->pid > 0, "server not running");
	for (;;) {
		struct pollfd pfd = { .fd = s->pidfd, .events = POLLIN };
		int64_t left;

		r = waitpid(s->pid, &status, WNOHANG);
		if (r == s->pid)
			break;
		ck_assert_msg(r == 0, "waitpid: %s", strerror(errno));
		left = deadline - trun_now_ms();
		if (left <= 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &status, 0);
			reaped(s);
			ck_abort_msg(
				"server did not exit within %d ms (killed); log %s",
				timeout_ms, s->log);
		}
		if (s->pidfd >= 0)
			poll(&pfd, 1, (int)left);
		else
			poll(NULL, 0, left > 50 ? 50 : (int)left);
	}
	reaped(s);
	return status;
}

void tsrv_assert_exit_ok(struct tsrv *s, int status)
{
	char why[64], *tail;

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (WIFEXITED(status))
		snprintf(why, sizeof(why), "exit status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(why, sizeof(why), "wait status %#x", status);
	tail = tsrv_log_tail(s, 3000);
	ck_abort_msg("server ended with %s, expected exit 0; log %s ends:\n%s",
		     why, s->log, tail);
}

void tsrv_stop(struct tsrv *s)
{
	tsrv_signal(s, SIGTERM);
	tsrv_assert_exit_ok(s, tsrv_wait_exit(s, trun_ms(TSRV_STOP_WAIT)));
}

void tsrv_restart(struct tsrv *s)
{
	tsrv_stop(s);
	tsrv_start(s);
}

void tsrv_kill(struct tsrv *s)
{
	if (!s->pid)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	reaped(s);
}

int tsrv_run(const char *const *argv, char *out, size_t len, int timeout_ms)
{
	const char *bin = trun_env("BD_SERVER");
	int64_t deadline = trun_now_ms() + timeout_ms;
	size_t used = 0;
	int p[2], status;
	pid_t pid;

	ck_assert(len > 0);
	ck_assert_msg(!pipe2(p, O_CLOEXEC), "pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		char *args[32];
		int n = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		args[n++] = (char *)bin;
		for (int i = 1; argv[i] && n < 31; i++)
			args[n++] = (char *)argv[i];
		args[n] = NULL;
		dup2(p[1], 1);
		dup2(p[1], 2);
		unsetenv("DATABASE_URL");
		execv(bin, args);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int64_t left = deadline - trun_now_ms();
		char sink[4096];
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(p[0]);
			ck_abort_msg("%s %s: still running after %d ms", bin,
				     argv[1] ? argv[1] : "", timeout_ms);
		}
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if (used < len - 1)
			n = read(p[0], out + used, len - 1 - used);
		else
			n = read(p[0], sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used < len - 1)
			used += (size_t)n;
	}
	out[used] = '\0';
	close(p[0]);
	/* Output closed: it exits now (or closed its stdout and hangs,
	 * which the deadline catches). */
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (trun_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			ck_abort_msg("%s: did not exit within %d ms", bin,
				     timeout_ms);
		}
		poll(NULL, 0, 10);
	}
}
