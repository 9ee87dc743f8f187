/*
 * libFuzzer harness: util/utf8.c. Stripping control characters never
 * grows the text, leaves none behind, and keeps valid UTF-8 valid.
 */
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *p = malloc(size + 1);
	bool valid;
	size_t n;

	if (!p)
		return 0;
	memcpy(p, data, size);
	p[size] = '\0';
	valid = utf8_valid(p, size);
	n = utf8_strip_controls(p, size);
	if (n > size)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			abort();
	if (valid && !utf8_valid(p, n))
		abort();
	free(p);
	return 0;
}
