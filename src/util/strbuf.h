/* A growable byte buffer, always NUL-terminated. */
#ifndef BD_UTIL_STRBUF_H
#define BD_UTIL_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *buf;	/* NUL-terminated contents, or NULL before first use */
	size_t len;	/* bytes used, excluding the NUL */
	size_t cap;	/* bytes allocated */
};

#define STRBUF_INIT { NULL, 0, 0 }

void sb_append(struct strbuf *sb, const char *p, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_appendf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sb_reset(struct strbuf *sb);
/* Returns the contents (caller frees) and leaves sb empty. */
char *sb_detach(struct strbuf *sb, size_t *len);
void sb_fini(struct strbuf *sb);

#endif
