/*
 * Runner support for the integration tests: environment, deadlines, output
 * directories and the shared main(). Each test runs in its own process
 * (Check's fork mode), so state here is per test unless set before forking.
 */
#include "trun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tdb.h"
#include "tmain.h"

static long runner_pid;

int trun_ms(int ms)
{
	const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
	long k = m ? strtol(m, NULL, 10) : 1;

	if (k < 1)
		k = 1;
	return (int)(ms * k);
}

int64_t trun_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int trun_dial(int port, int rcvbuf, bool refused_ok, const char *label)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, e;

	ck_assert_msg(fd >= 0, "%s: socket: %s", label, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (rcvbuf > 0)
		ck_assert_msg(!setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
					  sizeof(rcvbuf)),
			      "%s: SO_RCVBUF: %s", label, strerror(errno));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return fd;
	e = errno;
	close(fd);
	ck_assert_msg(refused_ok && e == ECONNREFUSED,
		      "%s: connect 127.0.0.1:%d: %s", label, port, strerror(e));
	return -1;
}

/* An object of trun_track(). */
struct tracked {
	void *obj;		 /* what to free */
	void (*free_fn)(void *); /* how */
};

/* trun_track()'s objects, oldest first (one test's, in its process). */
static struct tracked *tracked;
static size_t ntracked, tracked_cap;

void trun_track(void *obj, void (*free_fn)(void *))
{
	if (ntracked == tracked_cap) {
		tracked_cap = tracked_cap ? 2 * tracked_cap : 64;
		tracked = realloc(tracked, tracked_cap * sizeof(*tracked));
		ck_assert(tracked);
	}
	tracked[ntracked].obj = obj;
	tracked[ntracked++].free_fn = free_fn;
}

void trun_untrack(void *obj)
{
	for (size_t i = ntracked; i-- > 0;)
		if (tracked[i].obj == obj) {
			memmove(tracked + i, tracked + i + 1,
				(ntracked - i - 1) * sizeof(*tracked));
			ntracked--;
			return;
		}
}

void trun_free_tracked(void)
{
	while (ntracked) {
		struct tracked t = tracked[--ntracked];

		t.free_fn(t.obj);
	}
}

int trun_left_ms(int64_t deadline)
{
	int64_t left = deadline - trun_now_ms();

	return left > 0 ? (int)left : 0;
}

void trun_seen_add(struct trun_seen *s, const char *line, int width)
{
	size_t room = sizeof(s->text) - s->len;
	int n;

	s->count++;
	if (s->len >= TRUN_SEEN_MAX)
		return;
	n = snprintf(s->text + s->len, room, "\n    \"%.*s\"", width, line);
	s->len += n > 0 && (size_t)n < room ? (size_t)n : room - 1;
	if (s->len >= TRUN_SEEN_MAX) {
		s->len = TRUN_SEEN_MAX;
		snprintf(s->text + s->len, sizeof(s->text) - s->len,
			 "\n    ...");
	}
}

void trun_child_setup(pid_t parent, int sig, const char *out)
{
	sigset_t none;
	int fd;

	prctl(PR_SET_PDEATHSIG, sig);
	if (getppid() != parent)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	fd = open("/dev/null", O_RDONLY);
	if (fd > 0) {
		dup2(fd, 0);
		close(fd);
	}
	fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		_exit(127);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

void trun_pace(void)
{
	poll(NULL, 0, 20);
}

const char *trun_env(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v && *v, "environment variable %s is not set", name);
	return v;
}

long trun_id(void)
{
	return runner_pid ? runner_pid : (long)getpid();
}

void trun_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[8192];
	va_list ap;
	int n;

	n = snprintf(msg, sizeof(msg), "%s:%d: ", file, line);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	ck_abort_msg("%s", msg);
	abort(); /* not reached: ck_abort_msg does not return */
}

void trun_mkdirs(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);

	ck_assert_msg(n < sizeof(tmp), "path too long: %s", path);
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			ck_abort_msg("mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		ck_abort_msg("mkdir %s: %s", tmp, strerror(errno));
}

char *trun_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	ck_assert(b);
	ck_assert_msg(fread(b, 1, (size_t)n, f) == (size_t)n, "%s: short read",
		      path);
	b[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return b;
}

char *trun_repeat(const char *unit, size_t n)
{
	size_t ul = strlen(unit);
	char *s = malloc(ul * n + 1);

	ck_assert(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * n] = '\0';
	return s;
}

void trun_output_dir(char *buf, size_t len)
{
	const char *top = getenv("BD_TOP");
	const char *tc = tcase_name();
	int n;

	n = snprintf(buf, len, "%s/tests/output/%s", top && *top ? top : ".",
		     tc && *tc ? tc : "unnamed");
	ck_assert_msg(n > 0 && (size_t)n < len, "output path too long");
	trun_mkdirs(buf);
}

void trun_note(const char *fmt, ...)
{
	char dir[1024], path[1100];
	va_list ap;
	FILE *f;

	trun_output_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	f = fopen(path, "a");
	if (!f)
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

/* Says up front what is missing; the tests then fail one by one. */
static void check_environment(void)
{
	static const char *const vars[] = { "BD_SERVER", "BD_TOP",
					    "PGHOST",	 "PGPORT",
					    "PGUSER",	 "BD_TEST_TEMPLATE" };
	char err[512];

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (!v || !*v)
			fprintf(stderr, "integration tests: %s is not set\n",
				vars[i]);
	}
	if (getenv("BD_SERVER") && access(getenv("BD_SERVER"), X_OK))
		fprintf(stderr, "integration tests: BD_SERVER %s: %s\n",
			getenv("BD_SERVER"), strerror(errno));
	if (tdb_ping(err, sizeof(err)))
		fprintf(stderr,
			"integration tests: PostgreSQL is unreachable (a test "
			"that needs it starts it): %s\n",
			err);
}

int trun_main(Suite *s)
{
	int status;

	runner_pid = (long)getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	check_environment();
	status = tmain_run(s);
	tdb_drop_leftovers(runner_pid);
	return status;
}
