/*
 * libFuzzer harness: util/linebuf.c, the TCP line splitter, fed the input
 * in pieces whose sizes come from the input's first byte. Every line it
 * hands out is at most the cap, holds no LF, and the bytes of the lines
 * are never more than the input.
 */
#include <stdlib.h>
#include <string.h>

#include "util/linebuf.h"

#define CAP 64

struct seen {
	size_t bytes;
};

static void on_line(void *arg, const char *line, size_t len, bool too_long)
{
	struct seen *s = arg;

	if (too_long)
		return;
	if (len > CAP || memchr(line, '\n', len))
		abort();
	s->bytes += len;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct linebuf lb;
	struct seen s = { 0 };
	size_t step, off = 1;

	if (!size)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	linebuf_init(&lb, CAP);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;

		linebuf_feed(&lb, (const char *)data + off, n, on_line, &s);
		off += n;
	}
	if (s.bytes > size)
		abort();
	linebuf_fini(&lb);
	return 0;
}
