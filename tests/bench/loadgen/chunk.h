/*
 * loadgen: HTTP/1.1 chunked bodies, decoded in place. An event stream
 * that comes through a proxy (nginx in front of several Baby Discord
 * instances) is chunked; its end is the last, empty chunk, not the close
 * of the connection, which the proxy keeps open.
 */
#ifndef BD_BENCH_LG_CHUNK_H
#define BD_BENCH_LG_CHUNK_H

#include <stddef.h>

#include "lg.h"

/*
 * Decodes the n bytes at p, which continue c's chunked body, into the
 * data they carry, moved to p (never longer than the input): returns its
 * length, or -1 when the framing is malformed. A chunk split anywhere
 * between two calls is fine (c->ch and c->chunk_left carry over). Once
 * the last chunk came, c->ch is LG_CH_END and what follows is dropped.
 */
long chunk_decode(struct lg_conn *c, char *p, size_t n);

#endif
