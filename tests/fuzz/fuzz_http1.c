/*
 * libFuzzer harness: util/http1.c's request-head parser on any bytes.
 * Checks what it promises: a complete head's length is within the input,
 * its slices point into the input, and errors are HTTP statuses.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/http1.h"

static void inside(const struct http1_str s, const char *buf, size_t len)
{
	if (s.len && (s.p < buf || s.p + s.len > buf + len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *why = NULL;
	struct http1_req r;
	int n = http1_parse(buf, size, &r, &why);

	if (n > 0) {
		if ((size_t)n > size)
			abort();
		inside(r.path, buf, size);
		inside(r.query, buf, size);
		inside(r.content_type, buf, size);
		inside(r.last_event_id, buf, size);
		inside(r.accept, buf, size);
		if (!r.path.len || r.path.p[0] != '/')
			abort();
	} else if (n < 0 && (n > -400 || n < -599 || !why)) {
		abort();
	}
	return 0;
}
