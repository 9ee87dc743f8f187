/* Line splitter with a length cap. */
#include "util/linebuf.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void linebuf_init(struct linebuf *lb, size_t cap)
{
	/* Allocated when a partial line first has to be kept: most
	 * connections never do (a read holds whole lines), and thousands of
	 * idle ones would otherwise hold cap bytes each. */
	lb->buf = NULL;
	lb->size = 0;
	lb->len = 0;
	lb->cap = cap;
	lb->discarding = false;
}

void linebuf_fini(struct linebuf *lb)
{
	free(lb->buf);
	lb->buf = NULL;
	lb->size = 0;
}

/* A CR before the LF is dropped; the line must then fit in the cap. */
static void emit(struct linebuf *lb, const char *p, size_t n,
		 linebuf_fn *fn, void *arg)
{
	if (n && p[n - 1] == '\r')
		n--;
	if (n > lb->cap)
		fn(arg, NULL, 0, true);
	else
		fn(arg, p, n, false);
}

void linebuf_feed(struct linebuf *lb, const char *p, size_t n,
		  linebuf_fn *fn, void *arg)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;

		if (lb->discarding) {
			/* The error was reported when the cap was hit. */
		} else if (lb->len + take > lb->cap + 1) {
			/* One byte of slack holds a CR that may precede LF. */
			lb->len = 0;
			lb->discarding = true;
			fn(arg, NULL, 0, true);
		} else if (nl && !lb->len) {
			emit(lb, p, take, fn, arg);	/* no copy needed */
		} else {
			if (lb->len + take > lb->size) {
				size_t want = lb->size ? lb->size : 64;

				while (want < lb->len + take)
					want *= 2;
				if (want > lb->cap + 1)
					want = lb->cap + 1;
				lb->buf = xrealloc(lb->buf, want);
				lb->size = want;
			}
			memcpy(lb->buf + lb->len, p, take);
			lb->len += take;
			if (nl) {
				emit(lb, lb->buf, lb->len, fn, arg);
				lb->len = 0;
			}
		}
		if (!nl)
			return;
		lb->discarding = false;
		p = nl + 1;
		n -= take + 1;
	}
}
