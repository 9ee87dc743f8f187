/*
 * The server under test as a child process: loopback ports it picks itself
 * (port 0) and reports, a JSON config, stderr appended to
 * tests/output/<test>/<name>.log, readiness and other log lines awaited
 * with inotify + pidfd (no sleeps), stop/restart.
 */
#ifndef BD_TESTS_HELPERS_TSRV_H
#define BD_TESTS_HELPERS_TSRV_H

#include <stdbool.h>
#include <sys/types.h>

struct tsrv_opts {
	const char *database_url;     /* required */
	const char *instance_id;      /* NULL: "test" */
	int history_size;	      /* 0: 10 */
	int max_message_bytes;	      /* 0: 2000 */
	long outq_limit_bytes;	      /* 0: 1048576 */
	const char *log_level;	      /* NULL: "info" */
	const char *extra_json;	      /* NULL, or more members ("k": v);
				       * TSRV_LOG_PATH in it: the log path */
	const char *env_database_url; /* NULL: DATABASE_URL unset */
	bool rate_limits;	      /* false: rate limits and the limit of
				       * connections per address off */
};

#define TSRV_LOG_PATH "@LOG@"

struct tsrv {
	pid_t pid;	      /* running child, 0 when none */
	int pidfd;	      /* pidfd of pid, -1 when none */
	int tcp_port;	      /* line protocol port, 0 until reported */
	int http_port;	      /* HTTP port, 0 until reported */
	char instance_id[64]; /* as written to the config */
	char cfg[1024];	      /* config file path */
	char log[1024];	      /* log file path (all runs appended) */
	off_t run_start;      /* log offset where the current run begins */
	int runs;	      /* starts so far */
	char env_url[1024];   /* DATABASE_URL for the child, "" for none */
	bool json_log;	      /* extra_json asks for log_format json */
};

/*
 * Two distinct loopback ports that were free a moment ago (bound to port 0,
 * read, closed): racy, so only for what cannot report its own port (nginx)
 * or a port nothing should listen on. The server binds port 0 itself.
 */
void tsrv_free_ports(int *a, int *b);

/*
 * Writes <output dir>/<name>.json with tcp_port and http_port 0; logs go to
 * <output dir>/<name>.log. Does not start anything.
 */
void tsrv_init(struct tsrv *s, const char *name, const struct tsrv_opts *o);

/*
 * fork/exec BD_SERVER --config FILE without waiting for readiness. On the
 * first run, waits for the `start ... tcp_port=P http_port=Q` line (logged once it
 * listens, before it reaches the database) or its exit, sets tcp_port and
 * http_port and writes them into the config: every later run binds the
 * same ports (log_level info or debug).
 */
void tsrv_spawn(struct tsrv *s);

/*
 * Waits for "INFO ready tcp=127.0.0.1:<tcp> http=127.0.0.1:<http>" in this
 * run's log; fails (with the log's tail) on timeout or early exit.
 */
void tsrv_wait_ready(struct tsrv *s);

/* tsrv_spawn() + tsrv_wait_ready(). */
void tsrv_start(struct tsrv *s);

/*
 * The first line of this run's log containing needle (malloc'd), waiting
 * up to timeout_ms for it; NULL on timeout or when the server exited.
 */
char *tsrv_wait_log(struct tsrv *s, const char *needle, int timeout_ms);

/* Like tsrv_wait_log() without waiting. */
char *tsrv_log_find(struct tsrv *s, const char *needle);

/* The last len bytes of this run's log as a malloc'd string. */
char *tsrv_log_tail(struct tsrv *s, size_t len);

void tsrv_signal(struct tsrv *s, int sig);

/*
 * Waits for the child to exit and reaps it; returns its wait status.
 * Fails the test (after SIGKILL) when it is still running at the deadline.
 */
int tsrv_wait_exit(struct tsrv *s, int timeout_ms);

/* Whether the child has exited (without reaping it). */
bool tsrv_exited(struct tsrv *s);

/* SIGTERM, wait, and fail unless it exited with status 0. */
void tsrv_stop(struct tsrv *s);

/* tsrv_stop() + tsrv_start() on the same ports (those of the first run)
 * and config. */
void tsrv_restart(struct tsrv *s);

/* SIGKILL and reap, if running (cleanup after a failure). */
void tsrv_kill(struct tsrv *s);

/* Fails with a description unless status is a clean exit 0. */
void tsrv_assert_exit_ok(struct tsrv *s, int status);

/*
 * Runs BD_SERVER with argv[1..] (argv[0] is ignored; NULL-terminated),
 * stdout and stderr into out (NUL-terminated, truncated to len). Returns
 * the wait status; fails the test when it runs longer than timeout_ms.
 */
int tsrv_run(const char *const *argv, char *out, size_t len, int timeout_ms);

#endif
