/* UTF-8 validation and control-character removal for user text. */
#ifndef BD_UTIL_UTF8_H
#define BD_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when p[0..n) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). NUL bytes are valid here. */
bool utf8_valid(const char *p, size_t n);

/* Removes C0 controls, DEL and C1 controls (U+0080..U+009F) in place from
 * valid UTF-8; a tab becomes a space. Returns the new length. */
size_t utf8_strip_controls(char *p, size_t n);

/* The length of the longest prefix of valid UTF-8 p (NUL-terminated)
 * that is at most max bytes and does not cut a character. */
size_t utf8_prefix(const char *p, size_t max);

#endif
