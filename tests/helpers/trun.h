/*
 * Integration test runner support: environment (BD_SERVER, BD_TOP, PG*,
 * BD_TEST_TEMPLATE), scaled deadlines, per-test output directories and a
 * main() body that runs one Suite and cleans up after killed tests.
 */
#ifndef BD_TESTS_HELPERS_TRUN_H
#define BD_TESTS_HELPERS_TRUN_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Default deadline of one wait (a line, a log line, an exit), in ms. */
#define T_WAIT 5000

/* ms scaled by CK_TIMEOUT_MULTIPLIER (an integer >= 1), for slow builds. */
int trun_ms(int ms);

/* Monotonic clock in milliseconds. */
int64_t trun_now_ms(void);

/*
 * A 20 ms pause between attempts at something that offers no event to
 * wait for (an HTTP status, a database state). Not for synchronisation.
 */
void trun_pace(void);

/* The value of an environment variable; fails the test when unset/empty. */
const char *trun_env(const char *name);

/* The pid of the runner process (the parent of forked tests). */
long trun_id(void);

/*
 * Fills buf with BD_TOP/tests/output/<current TCase name> and creates it
 * (and its parents). Logs of the running test go there.
 */
void trun_output_dir(char *buf, size_t len);

/* Appends a line to <output dir>/notes.txt (figures for people to read). */
void trun_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* mkdir -p; fails the test on error. */
void trun_mkdirs(const char *path);

/*
 * The whole file at path (malloc'd, NUL-terminated; *len gets its size
 * unless len is NULL). NULL, with errno set, when it cannot be opened;
 * fails the test when it cannot be read.
 */
char *trun_slurp(const char *path, size_t *len);

/* A malloc'd string of n copies of the string unit. */
char *trun_repeat(const char *unit, size_t n);

/*
 * tmain_run(s) (fails when no test ran), then drops databases left behind
 * by tests that were killed. Returns the exit status for main(): 0 when at
 * least one test ran and everything passed.
 */
int trun_main(Suite *s);

/*
 * A TCP connection to 127.0.0.1:port (close-on-exec, TCP_NODELAY), with
 * SO_RCVBUF set to rcvbuf first unless it is 0 (so that the window
 * offered is small from the start). Returns the socket; -1 when nothing
 * listens and refused_ok; fails the test (naming label) otherwise.
 */
int trun_dial(int port, int rcvbuf, bool refused_ok, const char *label);

/*
 * Objects a test has not freed yet (clients, streams), each with the
 * function that frees it: trun_track() when made, trun_untrack() when
 * freed, trun_free_tracked() frees what is left, newest first (the
 * fixture's teardown calls it).
 */
void trun_track(void *obj, void (*free_fn)(void *));
void trun_untrack(void *obj);
void trun_free_tracked(void);

/* What is left of the time until deadline (trun_now_ms() based), in ms,
 * 0 once it passed: the timeout of the next read of a loop. */
int trun_left_ms(int64_t deadline);

/* Lines (or blocks) that came while a test waited for another one, for
 * the failure message: at most TRUN_SEEN_MAX bytes of them, then "...". */
#define TRUN_SEEN_MAX 3000
struct trun_seen {
	char text[TRUN_SEEN_MAX + 64]; /* "\n    \"<line>\"" each */
	size_t len;		       /* bytes in text */
	int count;		       /* lines added, shown or not */
};

/* Adds line (its first width bytes) to s. */
void trun_seen_add(struct trun_seen *s, const char *line, int width);

/*
 * In a child just forked from the test process parent, before exec: dies
 * with sig when the test process dies (a killed test takes it along),
 * unblocks every signal and sets SIGPIPE, SIGTERM and SIGINT to their
 * defaults, reads /dev/null and appends its stdout and stderr to out
 * (created if need be). Exits 127 when the parent is already gone or out
 * cannot be opened.
 */
void trun_child_setup(pid_t parent, int sig, const char *out);

/* Fails the test with "file:line: message"; used by helper macros. */
void trun_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

#endif
