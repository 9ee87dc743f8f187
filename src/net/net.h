/*
 * What the lws adapters share: the context user data that leads a callback
 * to the chat core, and the protocol callbacks main.c puts on its vhosts.
 */
#ifndef BD_NET_NET_H
#define BD_NET_NET_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "core/chat.h"
#include "util/buckets.h"
#include "util/strmap.h"

#define NET_CHUNK (32 * 1024)	/* bytes written per WRITEABLE callback */

struct http_state;

/* The queue of statements in front of the database, for /health. */
struct net_db_stats {
	unsigned queued;	/* statements queued or running */
	unsigned queued_user;	/* of those, user requests */
	unsigned limit;		/* most user requests at once */
	uint64_t refused;	/* user requests refused: server busy */
	uint64_t dropped;	/* reads dropped unsent: requester gone */
	uint64_t errors, reconnects, lost, notifications;
	bool query_idle;	/* the query connection is up and idle */
	struct buckets post_batches, ctl_batches;
};

#define NET_IP_LEN 48	/* a peer's address as text */

/* See net/limits.c. */
struct net_limits {
	unsigned max_conns, max_per_ip;	/* 0: no limit */
	unsigned conns;			/* admitted now */
	struct strmap by_ip;		/* address -> struct ip_count */
	uint64_t refused;
};

/* The lws context's user data. */
struct net_ctx {
	struct chat *chat;
	const char *instance_id;
	bool (*db_ok)(void *arg);	/* database reachable (for /health) */
	double (*db_queue)(void *arg);	/* NOTIFY queue usage, 0..1 */
	void (*db_stats)(void *arg, struct net_db_stats *out);
	void *db_arg;
	struct http_state *http;	/* API sessions and pending requests */
	bool draining;			/* shutdown started: /health 503 */
	struct net_limits limits;	/* client connections */
	struct tcp_conn *tcp_first;	/* every TCP connection (tcp.c) */
	unsigned tcp_idle_s;		/* close after this silence; 0: never */
	unsigned tcp_line_s;		/* close an unfinished line after this */
	const char *real_ip_from;	/* a proxy believed about X-Real-IP,
					 * or NULL */
	unsigned connect_retry_s;	/* Retry-After of an address over its
					 * new-session limit */
	lws_sorted_usec_list_t sul_tcp_sweep;
	struct lws_context *ctx;
	uint64_t bytes_in, bytes_out;	/* on client sockets, both ports */
	uint64_t lines_out, events_out;	/* whole lines (TCP), stream frames
					 * (SSE) written */
	int64_t started_s;		/* CLOCK_MONOTONIC at start, seconds */
};

struct net_ctx *net_ctx_of(struct lws *wsi);

void net_limits_init(struct net_limits *l, unsigned max_conns,
		     unsigned max_per_ip);
void net_limits_fini(struct net_limits *l);
/* Counts wsi's connection (its peer's address into ip, NET_IP_LEN bytes),
 * or refuses it (false, nothing counted) when a limit is reached. */
bool net_admit(struct net_ctx *nc, struct lws *wsi, char *ip);
/* The admitted connection from ip closed. */
void net_release(struct net_ctx *nc, const char *ip);

/*
 * Asks lws for one WRITEABLE callback on wsi unless one is pending
 * (*armed); the WRITEABLE handler clears *armed first thing. Not a
 * nicety: on the libuv loop each lws_callback_on_writable() restarts the
 * socket's uv_poll handle, and libuv then drops that socket's events
 * already fetched in this pass. A socket woken once per message during a
 * burst was never serviced (doc/lws-4.1.md).
 */
void net_want_write(struct lws *wsi, bool *armed);

/* Raw TCP line protocol ("tcp"). */
int tcp_callback(struct lws *wsi, enum lws_callback_reasons reason,
		 void *user, void *in, size_t len);
size_t tcp_pss_size(void);
/* Starts the once-a-second sweep that closes silent connections and
 * unfinished lines (nc->tcp_idle_s, nc->tcp_line_s). */
void tcp_sweep_start(struct lws_context *ctx, struct net_ctx *nc);
void tcp_sweep_stop(struct net_ctx *nc);

/* HTTP/1.1 on raw sockets ("http"): /health, the JSON API, SSE streams
 * and the static files. */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
		  void *user, void *in, size_t len);
size_t http_pss_size(void);

/* The HTTP side: pending requests, the timers of the core's API sessions
 * (idle_timeout_s) and the streams' heartbeat; static_dir's files are read
 * here, once. */
struct http_state *http_state_new(struct lws_context *ctx, struct chat *c,
				  const char *static_dir,
				  unsigned idle_timeout_s, unsigned heartbeat_s);
/* Stops the timers and frees what is left (after lws_context_destroy(),
 * before chat_free()). */
void http_state_free(struct http_state *hs);
/* Shutdown: local copies of API sessions are dropped once idle (the
 * sessions stay in the database). */
void http_state_stop(struct http_state *hs);

#endif
