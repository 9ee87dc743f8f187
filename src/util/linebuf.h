/*
 * Line splitter for byte streams: bytes arrive in arbitrary pieces, lines end
 * in LF (a CR before it is dropped). A line longer than the cap is reported
 * once as too long and discarded up to its newline.
 */
#ifndef BD_UTIL_LINEBUF_H
#define BD_UTIL_LINEBUF_H

#include <stdbool.h>
#include <stddef.h>

/* One complete line without its terminator (too_long: line is NULL, 0). */
typedef void linebuf_fn(void *arg, const char *line, size_t len,
			bool too_long);

struct linebuf {
	char *buf;		/* partial line (NULL until one is kept) */
	size_t size;		/* bytes allocated at buf, at most cap + 1 */
	size_t len;		/* bytes of the partial line held */
	size_t cap;		/* longest accepted line */
	bool discarding;	/* dropping an over-long line until LF */
};

void linebuf_init(struct linebuf *lb, size_t cap);
void linebuf_fini(struct linebuf *lb);
/* Splits p[0..n) into lines, calling fn for each one in order. */
void linebuf_feed(struct linebuf *lb, const char *p, size_t n,
		  linebuf_fn *fn, void *arg);

#endif
