/* Minimal JSON writing into a strbuf: strings escaped per RFC 8259. */
#ifndef BD_UTIL_JSONW_H
#define BD_UTIL_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* Appends p[0..n) as a quoted JSON string (valid UTF-8 expected). */
void jsonw_str(struct strbuf *sb, const char *p, size_t n);
/* Appends ms since the epoch as a quoted ISO 8601 UTC time with ms. */
void jsonw_time_ms(struct strbuf *sb, int64_t ms);

#endif
