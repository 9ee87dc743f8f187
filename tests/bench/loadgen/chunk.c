/*
 * loadgen: the chunked transfer coding of HTTP/1.1 (chunk.h), read one
 * byte at a time through a small state machine, so that a read may end
 * anywhere in the framing. Trailers after the last chunk are not read:
 * the body ended, and so has the event stream.
 */
#include "chunk.h"

#include <stdint.h>
#include <string.h>

#define CHUNK_SIZE_MAX (1ull << 40)	/* more is nonsense from a proxy */

static int chunk_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

long chunk_decode(struct lg_conn *c, char *p, size_t n)
{
	size_t in = 0, out = 0;

	while (in < n && c->ch != LG_CH_END) {
		char ch = p[in];
		int h;

		switch (c->ch) {
		case LG_CH_SIZE:
			h = chunk_hex(ch);
			if (h >= 0) {
				c->chunk_left = c->chunk_left * 16 +
						(uint64_t)h;
				if (c->chunk_left > CHUNK_SIZE_MAX)
					return -1;
			} else if (ch == ';' || ch == '\r' || ch == ' ') {
				c->ch = LG_CH_EXT;
			} else if (ch == '\n') {
				c->ch = c->chunk_left ? LG_CH_DATA :
							LG_CH_END;
			} else {
				return -1;
			}
			in++;
			break;
		case LG_CH_EXT:
			if (ch == '\n')
				c->ch = c->chunk_left ? LG_CH_DATA :
							LG_CH_END;
			in++;
			break;
		case LG_CH_DATA: {
			size_t take = n - in;

			if (take > c->chunk_left)
				take = (size_t)c->chunk_left;
			memmove(p + out, p + in, take);
			out += take;
			in += take;
			c->chunk_left -= take;
			if (!c->chunk_left)
				c->ch = LG_CH_DATA_CR;
			break;
		}
		case LG_CH_DATA_CR:
			if (ch != '\r')
				return -1;
			c->ch = LG_CH_DATA_LF;
			in++;
			break;
		case LG_CH_DATA_LF:
			if (ch != '\n')
				return -1;
			c->ch = LG_CH_SIZE;
			in++;
			break;
		case LG_CH_END:
			break;
		}
	}
	return (long)out;
}
