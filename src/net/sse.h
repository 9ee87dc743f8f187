/*
 * Dead-stream reaper for HTTP/1 event streams. lws 4.1.6 never reads a
 * stream served from a callback mount, so when its client goes away POLLIN
 * stays set and lws_service() spins until a write fails. An SSE client
 * sends nothing after its request: any readiness on a stream's socket
 * means it is gone. main calls sse_reaper_tick() after every
 * lws_service(); when services come back-to-back (a spin) or once a
 * second, it polls the stream sockets and kills those that report.
 */
#ifndef BD_NET_SSE_H
#define BD_NET_SSE_H

#include <libwebsockets.h>

void sse_reaper_init(void);
void sse_reaper_fini(void);
void sse_reaper_track(struct lws *wsi);
void sse_reaper_untrack(struct lws *wsi);
void sse_reaper_tick(void);

#endif
