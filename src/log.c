/* Logging: one event per line, as text or JSON, on stderr or a file. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/utf8.h"

#define LINE_MAX_BYTES 4096
#define LINE_RESERVE 16		/* for the end of a cut JSON line */

enum log_level log_min_level = LOG_INFO;

static enum log_format format = LOG_TEXT;
static char instance[64];
static int out_fd = STDERR_FILENO;	/* stderr or the log file */

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const char *const level_tags[] = { "DEBUG", "INFO", "WARN", "ERROR" };

int log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

int log_format_parse(const char *name)
{
	if (!strcmp(name, "text"))
		return LOG_TEXT;
	if (!strcmp(name, "json"))
		return LOG_JSON;
	return -1;
}

void log_setup(enum log_format fmt, const char *inst)
{
	format = fmt;
	snprintf(instance, sizeof(instance), "%s", inst ? inst : "");
}

int log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -1;
	if (out_fd != STDERR_FILENO)
		close(out_fd);
	out_fd = fd;
	return 0;
}

void log_close_file(void)
{
	if (out_fd != STDERR_FILENO)
		close(out_fd);
	out_fd = STDERR_FILENO;
}

/* A line being built; whatever does not fit is cut, never overrun. */
struct line {
	char buf[LINE_MAX_BYTES];
	size_t n;
	bool full;		/* something did not fit */
};

static void put(struct line *l, const char *p, size_t n)
{
	size_t room = sizeof(l->buf) - LINE_RESERVE - l->n;

	if (n > room) {
		n = room;
		l->full = true;
	}
	memcpy(l->buf + l->n, p, n);
	l->n += n;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void putf(struct line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void putf(struct line *l, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static bool text_needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			return true;
	}
	return false;
}

/*
 * A string value escaped for the format: control characters, quotes and
 * backslashes never appear raw, so a value cannot end the line, the
 * object or the quoted value. Invalid UTF-8 bytes are written as \xNN
 * (text) or U+FFFD (JSON).
 */
static void put_escaped(struct line *l, const char *s, bool json)
{
	bool valid = utf8_valid(s, strlen(s));

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			put(l, "\\", 1);
			put(l, s, 1);
		} else if (c == '\n') {
			puts_(l, "\\n");
		} else if (c == '\r') {
			puts_(l, "\\r");
		} else if (c == '\t') {
			puts_(l, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			putf(l, json ? "\\u%04x" : "\\x%02x", c);
		} else if (c >= 0x80 && !valid) {
			if (json)
				puts_(l, "\\ufffd");
			else
				putf(l, "\\x%02x", c);
		} else {
			put(l, s, 1);
		}
	}
}

static void put_value(struct line *l, const struct log_field *f, bool json)
{
	const char *s;

	switch (f->type) {
	case LOG_FT_INT:
		putf(l, "%lld", f->v.i);
		return;
	case LOG_FT_UINT:
		putf(l, "%llu", f->v.u);
		return;
	case LOG_FT_DBL:
		putf(l, "%.3f", f->v.d);
		return;
	case LOG_FT_STR:
		break;
	}
	s = f->v.s ? f->v.s : "";
	if (json || text_needs_quotes(s)) {
		put(l, "\"", 1);
		put_escaped(l, s, json);
		put(l, "\"", 1);
	} else {
		puts_(l, s);
	}
}

static void put_time(struct line *l, bool json)
{
	struct timespec ts;
	struct tm tm;
	char tmp[40];
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(tmp + n, sizeof(tmp) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	if (json)
		put(l, "\"", 1);
	puts_(l, tmp);
	if (json)
		put(l, "\"", 1);
}

void log_emit(enum log_level level, const char *event,
	      const struct log_field *f, size_t nf)
{
	bool json = format == LOG_JSON;
	struct line l;
	ssize_t w;

	l.n = 0;
	l.full = false;
	if (json) {
		puts_(&l, "{\"ts\":");
		put_time(&l, true);
		putf(&l, ",\"level\":\"%s\",\"instance\":", level_names[level]);
		put(&l, "\"", 1);
		put_escaped(&l, instance, true);
		puts_(&l, "\",\"event\":\"");
		put_escaped(&l, event, true);
		put(&l, "\"", 1);
		for (size_t i = 0; i < nf && !l.full; i++) {
			size_t at = l.n;

			puts_(&l, ",\"");
			put_escaped(&l, f[i].key, true);
			puts_(&l, "\":");
			put_value(&l, &f[i], true);
			if (l.full)
				l.n = at;	/* drop the field that did not fit */
		}
		/* A cut line is still one whole object (the reserve). */
		if (l.full) {
			memcpy(l.buf + l.n, ",\"cut\":true", 11);
			l.n += 11;
		}
		l.buf[l.n++] = '}';
	} else {
		put_time(&l, false);
		putf(&l, " %s ", level_tags[level]);
		put_escaped(&l, event, false);
		for (size_t i = 0; i < nf; i++) {
			put(&l, " ", 1);
			put_escaped(&l, f[i].key, false);
			put(&l, "=", 1);
			put_value(&l, &f[i], false);
		}
	}
	l.buf[l.n++] = '\n';
	/* One write per line so concurrent processes don't interleave. */
	do
		w = write(out_fd, l.buf, l.n);
	while (w < 0 && errno == EINTR);
}
