/*
 * Levelled logging to stderr, one line per event. The level is tested before
 * the arguments are evaluated, so debug lines cost nothing when off.
 */
#ifndef BD_LOG_H
#define BD_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

extern enum log_level log_min_level;

/* Parses "debug", "info", "warn" or "error"; -1 when unknown. */
int log_level_parse(const char *name);

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                     \
	do {                                                                 \
		if ((lvl) >= log_min_level)                                  \
			log_write((lvl), __VA_ARGS__);                       \
	} while (0)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)

#endif
