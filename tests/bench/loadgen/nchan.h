/*
 * loadgen's nchan clients (--proto nchan, --sse-proto nchan), for
 * comparing Baby Discord's event streams with nginx + nchan: subscribers
 * GET /sub/<room> with Accept: text/event-stream and read the stream
 * (sse.c splits it into lines; each data field is a bare payload);
 * senders publish with POST /pub/<room>, pipelined on one keep-alive
 * connection. The socket is conn.c's.
 */
#ifndef BD_BENCH_LG_NCHAN_H
#define BD_BENCH_LG_NCHAN_H

#include <stddef.h>

#include "lg.h"

/* c just connected: GET /sub/<room>; the 200 makes it a member. */
void nchan_subscribe(struct lg *lg, struct lg_conn *c);

/* The value of a data field of c's stream: a payload, or not ours. */
void nchan_data(struct lg *lg, struct lg_conn *c, const char *data);

/* POST /pub/<room> with the payload as body, from publisher c. */
void nchan_publish(struct lg *lg, struct lg_conn *c, const char *payload,
		   size_t len);

/*
 * Publisher c read more: consumes every complete answer in c->rbuf (each
 * with a Content-Length); one that is not 2xx counts as a refused
 * message. Can close c.
 */
void nchan_pub_input(struct lg *lg, struct lg_conn *c);

#endif
