/*
 * Levelled logging to stderr (or log_file), one line per event. An event
 * has a name and typed fields:
 *
 *   log_info("join", LOG_U("conn", id), LOG_S("nick", nick),
 *            LOG_S("room", room));
 *
 * The text format, for a terminal, renders it as
 *   2026-12-05T04:03:42.544Z INFO join conn=7 nick=alice room=general
 * (values with spaces, quotes, '=' or control characters are quoted and
 * escaped); the JSON format as one object per line with ts, level,
 * instance, event and the fields. Either way a value can never start a
 * line of its own or end the object early. The level is tested before the
 * fields are evaluated, so debug events cost nothing when off.
 */
#ifndef BD_LOG_H
#define BD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_TEXT, LOG_JSON };

extern enum log_level log_min_level;

/* Parses "debug", "info", "warn" or "error"; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);
/* Parses "text" or "json"; -1 when unknown. */
int log_format_parse(const char *name);

/* Output settings: the format, the instance named in JSON lines, and the
 * file to append to (NULL: stderr). */
void log_setup(enum log_format fmt, const char *instance);
/* Opens (or reopens, after a rotation) path for appending; -1 with errno
 * when it cannot, and the previous destination stays. */
int log_open_file(const char *path);
/* Back to stderr, closing a file opened by log_open_file(). */
void log_close_file(void);

enum log_ftype { LOG_FT_STR, LOG_FT_INT, LOG_FT_UINT, LOG_FT_DBL };

struct log_field {
	const char *key;
	enum log_ftype type;
	union {
		const char *s;	/* NULL is written as an empty value */
		long long i;
		unsigned long long u;
		double d;
	} v;
};

#define LOG_S(k, x)                                                          \
	((struct log_field){ .key = (k), .type = LOG_FT_STR, .v.s = (x) })
#define LOG_I(k, x)                                                          \
	((struct log_field){ .key = (k), .type = LOG_FT_INT,                 \
			     .v.i = (long long)(x) })
#define LOG_U(k, x)                                                          \
	((struct log_field){ .key = (k), .type = LOG_FT_UINT,                \
			     .v.u = (unsigned long long)(x) })
#define LOG_D(k, x)                                                          \
	((struct log_field){ .key = (k), .type = LOG_FT_DBL,                 \
			     .v.d = (double)(x) })

/* Writes one event; nf fields. Use the macros below. */
void log_emit(enum log_level level, const char *event,
	      const struct log_field *f, size_t nf);

/* The first element only makes an empty field list valid C. */
#define log_at(lvl, event, ...)                                              \
	do {                                                                 \
		if ((lvl) >= log_min_level) {                                \
			const struct log_field log_f_[] = { LOG_S(NULL, NULL), \
							    __VA_ARGS__ };   \
			log_emit((lvl), (event), log_f_ + 1,                 \
				 sizeof(log_f_) / sizeof(log_f_[0]) - 1);    \
		}                                                            \
	} while (0)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)

#endif
