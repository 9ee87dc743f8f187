/*
 * What http.c (requests, answers, streams) and apisess.c (the API sessions
 * they belong to) share. Nothing outside src/net includes this.
 */
#ifndef BD_NET_HTTP_INT_H
#define BD_NET_HTTP_INT_H

#include <stdbool.h>

#include "net/apireq.h"
#include "net/net.h"
#include "util/idmap.h"
#include "util/strbuf.h"

enum route {
	R_NONE,
	R_HEALTH,
	R_METRICS,
	R_CONNECT,
	R_COMMAND,
	R_MESSAGE,
	R_DISCONNECT,
	R_ROOMS,
	R_STREAM_OPEN,		/* SSE, session resumed: open when writable */
	R_STREAM,		/* SSE, after its headers went out */
	R_MEMBER_CHECK,		/* 403 or 404 decided by the room list */
};

struct files;
struct rooms_snap;
struct http1_req;

struct http_state {
	struct lws_context *ctx;
	struct chat *chat;
	struct files *files;		/* static/ in memory */
	struct rooms_snap *rooms;	/* the room list, shared */
	struct idmap pending;		/* token -> http_conn */
	uint64_t next_token;
	size_t nconns;			/* open HTTP connections */
	unsigned idle_s;		/* session expiry */
	lws_usec_t idle_timeout;
	lws_usec_t heartbeat;
	bool stopping;
	lws_sorted_usec_list_t sul_sweep;
	lws_sorted_usec_list_t sul_tick;
	lws_sorted_usec_list_t sul_run;		/* chat_api_run() */
	lws_sorted_usec_list_t sul_heartbeat;
};

/* Where a connection is: reading the next request, answering one (input
 * that follows waits in `in`: pipelined requests are served one after
 * another), streaming events, or closing once its answer went out. */
enum conn_state { CONN_READ, CONN_BUSY, CONN_STREAM, CONN_CLOSING };

/* Per TCP connection of the HTTP listener (lws zeroes and frees it). */
struct http_conn {
	struct lws *wsi;
	enum conn_state state;
	struct strbuf in;		/* received, not yet dispatched */
	bool in_paused;			/* rx flow control off */
	bool req_started;		/* head timeout armed for `in` */
	bool continue_sent;		/* 100 Continue for the request */
	enum route route;
	bool head_only;			/* HEAD: the answer has no body */
	bool keep_alive;		/* the request allows another */
	uint64_t token;			/* parked under this, or 0 */
	uint64_t sess_key;		/* API session copy it waits on or
					 * streams for (core/api_session.h) */
	/* What the request asks of its session, kept while it resumes. */
	char room[64];			/* message, stream, member check;
					 * rooms: the page's `after` */
	char nick[NICK_MAX + 1];	/* connect: the nickname asked for */
	char secret[33];		/* the session's id */
	char *text;			/* command line or message content */
	size_t text_len;
	int64_t last_seq;		/* stream resume point, or -1 */
	size_t page_limit;		/* GET /api/rooms: rooms per page */
	/* The answer (status line, fields, body), and how much went out. */
	char *out;
	size_t out_len, out_sent;
	bool answered;			/* the request's answer is queued */
	bool close_after;		/* close once the answer went out */
	bool write_armed;		/* a WRITEABLE is asked for */
	bool admitted;			/* counted by net_admit() */
	char ip[NET_IP_LEN];		/* the peer's address */
	char client[NET_IP_LEN];	/* the request's sender: ip, or the
					 * X-Real-IP of real_ip_from */
	/* SSE */
	struct stream *st;
	bool sse_close_after_flush;
};

/* http.c */
lws_usec_t http_now_us(void);
/* Parks hc under a new token until its answer is ready (with a deadline);
 * unpark takes it back. */
void http_park(struct http_state *hs, struct http_conn *hc);
void http_unpark(struct http_state *hs, struct http_conn *hc);
/* The request parked under token, unparked; NULL when it went away. */
struct http_conn *http_claim(struct http_state *hs, uint64_t token);
/* Prepares hc's answer (a JSON body from core/wire.h, taken) and asks for
 * a write. */
void http_answer(struct http_conn *hc, int status, char *body);
/* The answer to a BD_E* code, from the one table of them (in http.c):
 * its status and text (a message's text for R_MESSAGE). */
void http_answer_err(struct http_conn *hc, int err);

/* rooms.c: the room list, one snapshot under a second old for all. */
struct rooms_snap *rooms_new(void);
void rooms_free(struct rooms_snap *rs);
/* Reads of the list this instance made (for /health). */
uint64_t rooms_reads(const struct http_state *hs);
/* chat_api_ops members: the list's outcome; whether its read (req 0) is
 * still wanted. */
void rooms_loaded(void *arg, uint64_t req, int err,
		  const struct chat_room_info *rooms, size_t n);
bool rooms_wanted(struct http_state *hs);
/* GET /api/rooms[?after=<name>&limit=<n>]. */
void rooms_handle(struct http_state *hs, struct http_conn *hc,
		  const struct http1_req *rq);
/* hc->room, which hc's session is not a member of: 403 when it exists,
 * else 404. */
void rooms_member_check(struct http_state *hs, struct http_conn *hc);
void http_answer_error(struct http_conn *hc, int status, const char *why);

/* apisess.c: the endpoints that take a JSON body, and the outcomes of
 * the core's API sessions (chat_api_ops members). */
void apisess_connect(struct http_state *hs, struct http_conn *hc,
		     const struct apireq *rq);
void apisess_command(struct http_state *hs, struct http_conn *hc,
		     const struct apireq *rq);
void apisess_message(struct http_state *hs, struct http_conn *hc,
		     const struct apireq *rq);
void apisess_disconnect(struct http_state *hs, struct http_conn *hc,
			const struct apireq *rq);
/* Looks the session up (chat_api_resume()), then apisess_resumed()
 * carries on with hc's route (for R_STREAM_OPEN: sets hc->sess_key and
 * asks for a write). */
void apisess_resume(struct http_state *hs, struct http_conn *hc,
		    const char *token);
void apisess_connected(void *arg, uint64_t req, int err, const char *token,
		       int64_t uid, const char *nick);
void apisess_resumed(void *arg, uint64_t req, int err, uint64_t key);
void apisess_replied(void *arg, uint64_t req, int err, const char *text);
void apisess_posted(void *arg, uint64_t req, int err, int64_t id,
		    int64_t seq);
void apisess_ended(void *arg, uint64_t req, int err);
void apisess_defer(void *arg);
/* The sessions' timers: start, shutdown (copies are dropped once idle),
 * cancel (before freeing). */
void apisess_start(struct http_state *hs);
void apisess_stop(struct http_state *hs);
void apisess_timers_cancel(struct http_state *hs);

#endif
