/* JSON string escaping and timestamps for hand-built JSON lines. */
#include "util/jsonw.h"

#include <stdio.h>
#include <time.h>

void jsonw_str(struct strbuf *sb, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;

	sb_append(sb, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		char esc[7];
		size_t elen = 2;

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		sb_append(sb, p + start, i - start);
		start = i + 1;
		esc[0] = '\\';
		switch (ch) {
		case '"':
		case '\\':
			esc[1] = (char)ch;
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\t':
			esc[1] = 't';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			elen = 6;
		}
		sb_append(sb, esc, elen);
	}
	sb_append(sb, p + start, n - start);
	sb_append(sb, "\"", 1);
}

void jsonw_time_ms(struct strbuf *sb, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	char buf[32];
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	sb_appendf(sb, "\"%s.%03dZ\"", buf, (int)(ms % 1000));
}
