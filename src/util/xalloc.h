/* Allocation wrappers that abort on out-of-memory: callers never check. */
#ifndef BD_UTIL_XALLOC_H
#define BD_UTIL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Copies n bytes and adds a NUL. */
char *xmemdup(const void *p, size_t n);

#endif
