/* UTF-8 checks (RFC 3629, table 3-7 of the Unicode standard). */
#include "util/utf8.h"

#include <string.h>

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t len;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			if (c == 0xe0)
				lo = 0xa0;	/* overlong */
			else if (c == 0xed)
				hi = 0x9f;	/* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			if (c == 0xf0)
				lo = 0x90;	/* overlong */
			else if (c == 0xf4)
				hi = 0x8f;	/* above U+10FFFF */
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k < len; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += len;
	}
	return true;
}

size_t utf8_strip_controls(char *s, size_t n)
{
	unsigned char *p = (unsigned char *)s;
	size_t r = 0, w = 0;

	while (r < n) {
		unsigned char c = p[r];

		if (c == '\t') {
			p[w++] = ' ';
			r++;
		} else if (c < 0x20 || c == 0x7f) {
			r++;
		} else if (c == 0xc2 && r + 1 < n && p[r + 1] >= 0x80 &&
			   p[r + 1] <= 0x9f) {
			r += 2;		/* C1 control */
		} else {
			p[w++] = p[r++];
		}
	}
	return w;
}

size_t utf8_prefix(const char *p, size_t max)
{
	size_t n = strnlen(p, max + 1);

	if (n <= max)
		return n;
	/* p[max] is past the cut: back up while it continues a character. */
	n = max;
	while (n && ((unsigned char)p[n] & 0xc0) == 0x80)
		n--;
	return n;
}
