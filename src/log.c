/* Logging: timestamped lines on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_min_level = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	return -1;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "DEBUG", "INFO", "WARN", "ERROR" };
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
			      ts.tv_nsec / 1000000, tags[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One write per line so concurrent processes don't interleave. */
	fprintf(stderr, "%s\n", line);
}
