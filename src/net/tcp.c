/*
 * The raw TCP line protocol adapter: splits input into lines for the core
 * and writes each session's outq, one chunk per WRITEABLE callback. It
 * owns no chat state; the session is freed only from the close callback.
 */
#include "net/net.h"

#include <inttypes.h>
#include <stdio.h>

#include "log.h"
#include "util/clock.h"
#include "util/linebuf.h"

struct tcp_conn {
	struct lws *wsi;
	struct session *s;	/* NULL until adopted */
	struct linebuf lb;
	bool close_after_flush;	/* /quit or shutdown: close once drained */
	bool write_armed;	/* a WRITEABLE is asked for */
	bool admitted;		/* counted by net_admit() */
	struct tcp_conn *prev, *next;	/* in net_ctx's tcp_first list */
	int64_t last_rx_s;		/* monotonic seconds */
	int64_t partial_since_s;	/* an unfinished line since; 0: none */
	bool refused;		/* over a connection limit: told, closed */
	char ip[NET_IP_LEN];
};

#define REFUSED_LINE "[system] error: too many connections\n"

static void conn_link(struct net_ctx *nc, struct tcp_conn *tc)
{
	tc->prev = NULL;
	tc->next = nc->tcp_first;
	if (nc->tcp_first)
		nc->tcp_first->prev = tc;
	nc->tcp_first = tc;
}

static void conn_unlink(struct net_ctx *nc, struct tcp_conn *tc)
{
	if (tc->prev)
		tc->prev->next = tc->next;
	else if (nc->tcp_first == tc)
		nc->tcp_first = tc->next;
	if (tc->next)
		tc->next->prev = tc->prev;
	tc->prev = tc->next = NULL;
}

/*
 * Once a second: a connection silent for tcp_idle_s, or holding an
 * unfinished line for tcp_line_s, is told why and closed. One pass over
 * the TCP connections (thousands: microseconds), no timer per connection.
 */
static void sweep_cb(lws_sorted_usec_list_t *sul)
{
	struct net_ctx *nc = lws_container_of(sul, struct net_ctx,
					      sul_tcp_sweep);
	int64_t now = clock_mono_ns() / 1000000000;
	char text[96];

	for (struct tcp_conn *tc = nc->tcp_first; tc; tc = tc->next) {
		if (!tc->s || session_is_closing(tc->s))
			continue;
		if (nc->tcp_line_s && tc->partial_since_s &&
		    now - tc->partial_since_s >= nc->tcp_line_s) {
			snprintf(text, sizeof(text),
				 "error: line not finished within %u s, closing",
				 nc->tcp_line_s);
			chat_session_expel(nc->chat, tc->s, text,
					   "unfinished line");
		} else if (nc->tcp_idle_s &&
			   now - tc->last_rx_s >= nc->tcp_idle_s) {
			snprintf(text, sizeof(text),
				 "idle for %u s, closing", nc->tcp_idle_s);
			chat_session_expel(nc->chat, tc->s, text, "idle");
		}
	}
	lws_sul_schedule(nc->ctx, 0, &nc->sul_tcp_sweep, sweep_cb,
			 LWS_US_PER_SEC);
}

void tcp_sweep_start(struct lws_context *ctx, struct net_ctx *nc)
{
	nc->ctx = ctx;
	if (nc->tcp_idle_s || nc->tcp_line_s)
		lws_sul_schedule(ctx, 0, &nc->sul_tcp_sweep, sweep_cb,
				 LWS_US_PER_SEC);
}

void tcp_sweep_stop(struct net_ctx *nc)
{
	lws_sul_cancel(&nc->sul_tcp_sweep);
}

/* Loop thread only. */
static unsigned char scratch[LWS_PRE + NET_CHUNK];

struct net_ctx *net_ctx_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

void net_want_write(struct lws *wsi, bool *armed)
{
	if (*armed)
		return;
	*armed = true;
	lws_callback_on_writable(wsi);
}

size_t tcp_pss_size(void)
{
	return sizeof(struct tcp_conn);
}

static void tcp_wake(void *conn)
{
	struct tcp_conn *tc = conn;

	net_want_write(tc->wsi, &tc->write_armed);
}

static void tcp_close(void *conn, bool flush)
{
	struct tcp_conn *tc = conn;

	if (flush) {
		tc->close_after_flush = true;
		net_want_write(tc->wsi, &tc->write_armed);
		/* A peer that never reads doesn't hold us up for long. */
		lws_set_timeout(tc->wsi, PENDING_TIMEOUT_USER_OK, 5);
	} else {
		lws_set_timeout(tc->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	}
}

static void tcp_throttle(void *conn, bool stop)
{
	struct tcp_conn *tc = conn;

	lws_rx_flow_control(tc->wsi, stop ? 0 : 1);
}

static const struct chat_sink_ops tcp_sink = {
	.wake = tcp_wake,
	.close = tcp_close,
	.throttle = tcp_throttle,
};

struct line_ctx {
	struct chat *chat;
	struct session *s;
};

static void on_line(void *arg, const char *line, size_t len, bool too_long)
{
	struct line_ctx *lc = arg;

	if (too_long)
		chat_session_line_too_long(lc->chat, lc->s);
	else
		chat_session_input(lc->chat, lc->s, line, len);
}

static int tcp_writeable(struct tcp_conn *tc)
{
	struct outq *q = session_outq(tc->s);
	size_t n = outq_copy(q, (char *)scratch + LWS_PRE, NET_CHUNK);

	if (n) {
		/* Less than n means the connection is broken; lws keeps
		 * whatever the kernel didn't take and calls back later. */
		if (lws_write(tc->wsi, scratch + LWS_PRE, n, LWS_WRITE_RAW) <
		    (int)n)
			return -1;
		net_ctx_of(tc->wsi)->lines_out += outq_consume(q, n);
		net_ctx_of(tc->wsi)->bytes_out += n;
	}
	if (!outq_empty(q))
		net_want_write(tc->wsi, &tc->write_armed);
	else if (tc->close_after_flush)
		return -1;
	return 0;
}

int tcp_callback(struct lws *wsi, enum lws_callback_reasons reason,
		 void *user, void *in, size_t len)
{
	struct tcp_conn *tc = user;
	struct net_ctx *nc = net_ctx_of(wsi);
	struct line_ctx lc;

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		tc->wsi = wsi;
		if (!net_admit(nc, wsi, tc->ip)) {
			/* Told why, then closed; never a session. */
			log_warn("connection_refused", LOG_S("ip", tc->ip),
				 LOG_S("transport", "tcp"),
				 LOG_S("reason", "too many connections"));
			tc->refused = true;
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 5);
			net_want_write(wsi, &tc->write_armed);
			break;
		}
		tc->admitted = true;
		tc->last_rx_s = clock_mono_ns() / 1000000000;
		conn_link(nc, tc);
		linebuf_init(&tc->lb, CHAT_MAX_LINE);
		tc->s = chat_session_open(nc->chat, SESSION_LINE, &tcp_sink,
					  tc);
		chat_session_set_addr(tc->s, tc->ip);
		break;
	case LWS_CALLBACK_RAW_RX:
		nc->bytes_in += len;
		if (!tc->s || session_is_closing(tc->s))
			break;
		lc.chat = nc->chat;
		lc.s = tc->s;
		tc->last_rx_s = clock_mono_ns() / 1000000000;
		linebuf_feed(&tc->lb, in, len, on_line, &lc);
		/* An unfinished line: since when (kept while it grows). */
		if (!tc->lb.len && !tc->lb.discarding)
			tc->partial_since_s = 0;
		else if (!tc->partial_since_s)
			tc->partial_since_s = tc->last_rx_s;
		break;
	case LWS_CALLBACK_RAW_WRITEABLE:
		tc->write_armed = false;
		if (tc->refused) {
			memcpy(scratch + LWS_PRE, REFUSED_LINE,
			       sizeof(REFUSED_LINE) - 1);
			lws_write(wsi, scratch + LWS_PRE,
				  sizeof(REFUSED_LINE) - 1, LWS_WRITE_RAW);
			tc->refused = false;
			/* Closed once lws has flushed it. */
			tcp_close(tc, true);
			return 0;
		}
		if (tc->close_after_flush && !tc->s)
			return -1;
		if (tc->s)
			return tcp_writeable(tc);
		break;
	case LWS_CALLBACK_RAW_CLOSE:
		if (tc->admitted) {
			net_release(nc, tc->ip);
			conn_unlink(nc, tc);
			tc->admitted = false;
		}
		if (tc->s) {
			chat_session_closed(nc->chat, tc->s);
			tc->s = NULL;
			linebuf_fini(&tc->lb);
		}
		break;
	default:
		break;
	}
	return 0;
}
