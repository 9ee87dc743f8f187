/* See sse.h: detects streams whose peer closed, despite lws not reading. */
#define _GNU_SOURCE	/* POLLRDHUP */
#include "net/sse.h"

#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "util/xalloc.h"

#define SPIN_GAP_NS 1000000LL		/* services closer than 1 ms ... */
#define SPIN_COUNT 64			/* ... this many times in a row */
#define CHECK_EVERY_NS 1000000000LL	/* and at least once a second */

static struct {
	struct lws **wsis;	/* open streams */
	struct pollfd *pfds;	/* scratch, same size */
	size_t n, cap;
	long long last_ns;	/* previous tick */
	long long last_check_ns;
	unsigned fast;		/* back-to-back ticks */
} r;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void sse_reaper_init(void)
{
	r.last_ns = r.last_check_ns = now_ns();
}

void sse_reaper_fini(void)
{
	free(r.wsis);
	free(r.pfds);
	r.wsis = NULL;
	r.pfds = NULL;
	r.n = r.cap = 0;
}

void sse_reaper_track(struct lws *wsi)
{
	if (r.n == r.cap) {
		r.cap = r.cap ? r.cap * 2 : 64;
		r.wsis = xrealloc(r.wsis, r.cap * sizeof(*r.wsis));
		r.pfds = xrealloc(r.pfds, r.cap * sizeof(*r.pfds));
	}
	r.wsis[r.n++] = wsi;
}

void sse_reaper_untrack(struct lws *wsi)
{
	for (size_t i = 0; i < r.n; i++) {
		if (r.wsis[i] == wsi) {
			r.wsis[i] = r.wsis[--r.n];
			return;
		}
	}
}

static void check_streams(void)
{
	size_t n = r.n;
	int ready;

	for (size_t i = 0; i < n; i++) {
		r.pfds[i].fd = lws_get_socket_fd(r.wsis[i]);
		r.pfds[i].events = POLLIN | POLLRDHUP;
		r.pfds[i].revents = 0;
	}
	ready = poll(r.pfds, n, 0);
	if (ready <= 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!r.pfds[i].revents)
			continue;
		log_debug("sse: stream fd %d: peer gone, closing",
			  r.pfds[i].fd);
		lws_set_timeout(r.wsis[i], PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	}
}

void sse_reaper_tick(void)
{
	long long now = now_ns();

	r.fast = now - r.last_ns < SPIN_GAP_NS ? r.fast + 1 : 0;
	r.last_ns = now;
	if (!r.n)
		return;
	if (r.fast >= SPIN_COUNT || now - r.last_check_ns >= CHECK_EVERY_NS) {
		r.fast = 0;
		r.last_check_ns = now;
		check_streams();
	}
}
