/*
 * HTTP/1.1 on a raw socket: the server reads and frames requests itself
 * (util/http1.c), so every byte a client sends is accounted for. A
 * connection serves one request at a time; requests pipelined behind it
 * wait in its input buffer (reading stops when that is full) and are
 * dispatched, each exactly once, after the answer before them went out.
 * One route table maps paths and methods to handlers: GET /health, the
 * JSON API under /api, event streams (/api/messages/<room>) and the
 * browser client's static files. Answers that wait for the database or a
 * command are parked under a token and completed from the store's or the
 * chat core's callbacks. The API sessions are apisess.c's.
 */
#include "net/http_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/api_session.h"
#include "core/wire.h"
#include "log.h"
#include "net/files.h"
#include "util/clock.h"
#include "util/http1.h"
#include "util/idmap.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define BODY_MAX 16384		/* request body cap */
#define IN_MAX (HTTP1_MAX_HEAD + BODY_MAX + 8192)	/* then stop reading */
#define WAIT_TIMEOUT_S 15	/* answer deadline */
#define HEAD_TIMEOUT_S 10	/* a started request must arrive by then */
#define KEEPALIVE_S 30		/* idle connection between requests */
#define SSE_RETRY_MS 3000

#define TO_ANSWER (PENDING_TIMEOUT_USER_REASON_BASE + 1)
#define TO_REQUEST (PENDING_TIMEOUT_USER_REASON_BASE + 2)
#define TO_IDLE (PENDING_TIMEOUT_USER_REASON_BASE + 3)

/* Loop thread only. */
static unsigned char scratch[LWS_PRE + NET_CHUNK];

size_t http_pss_size(void)
{
	return sizeof(struct http_conn);
}

static struct http_state *state_of(struct lws *wsi)
{
	return net_ctx_of(wsi)->http;
}

lws_usec_t http_now_us(void)
{
	return (lws_usec_t)(clock_mono_ns() / 1000);
}

/* Answers */

void http_unpark(struct http_state *hs, struct http_conn *hc)
{
	if (hc->token) {
		idmap_del(&hs->pending, hc->token);
		hc->token = 0;
	}
}

struct http_conn *http_claim(struct http_state *hs, uint64_t token)
{
	struct http_conn *hc = idmap_get(&hs->pending, token);

	if (hc)
		http_unpark(hs, hc);
	return hc;
}

void http_park(struct http_state *hs, struct http_conn *hc)
{
	hc->token = hs->next_token++;
	idmap_put(&hs->pending, hc->token, hc);
	lws_set_timeout(hc->wsi, TO_ANSWER, WAIT_TIMEOUT_S);
}

/* Queues a whole answer: status line, fields (extra: more of them, each
 * ending in CRLF), body (left out for HEAD). What is still unsent of an
 * interim 100 Continue goes first. */
static void answer_raw(struct http_conn *hc, int status, const char *type,
		       const char *extra, const char *body, size_t len)
{
	struct strbuf sb = STRBUF_INIT;

	if (hc->state != CONN_BUSY || hc->answered)
		return;		/* no request is waiting for it */
	hc->answered = true;
	if (hc->out)
		sb_append(&sb, hc->out + hc->out_sent,
			  hc->out_len - hc->out_sent);
	if (!hc->keep_alive)
		hc->close_after = true;
	sb_appendf(&sb, "HTTP/1.1 %d %s\r\n", status, http1_reason(status));
	if (type)
		sb_appendf(&sb, "Content-Type: %s\r\n", type);
	sb_appendf(&sb, "Content-Length: %zu\r\n%s%s\r\n", len,
		   extra ? extra : "",
		   hc->close_after ? "Connection: close\r\n" : "");
	if (!hc->head_only && len)
		sb_append(&sb, body, len);
	free(hc->out);
	hc->out_sent = 0;
	hc->out = sb_detach(&sb, &hc->out_len);
	net_want_write(hc->wsi, &hc->write_armed);
}

void http_answer(struct http_conn *hc, int status, char *body)
{
	answer_raw(hc, status, "application/json; charset=utf-8",
		   "Cache-Control: no-store\r\n", body, strlen(body));
	free(body);
}

void http_answer_error(struct http_conn *hc, int status, const char *why)
{
	http_answer(hc, status, wire_json_error(why));
}

/* How the core's error codes are answered over HTTP: one table. `post`
 * is the text when the request was a message (NULL: the same). */
static const struct http_error {
	int err;
	int status;
	const char *text;
	const char *post;
} http_errors[] = {
	{ BD_EDB, 503, "database unavailable",
	  "message not sent (database unavailable)" },
	{ BD_EBUSY, 503, "server busy, try again",
	  "message not sent (server busy, try again)" },
	{ BD_ELOST, 503, "database connection lost",
	  "database connection lost; the message may not have been stored" },
	{ BD_ENOENT, 404, "unknown session", NULL },
	{ BD_EAGAIN, 409, "another command of this session is running", NULL },
	{ BD_EPERM, 403, "not a member of that room", NULL },
	{ BD_EUTF8, 400, "invalid UTF-8", NULL },
	{ BD_EINVAL, 400, "invalid input", "empty message" },
	{ BD_ETOOLONG, 400, "too long", "message too long" },
	{ BD_ERATE, 429, "slow down (rate limit)", NULL },
	{ BD_EADDRRATE, 429, "too many from your address, slow down", NULL },
};

void http_answer_err(struct http_conn *hc, int err)
{
	for (size_t i = 0; i < sizeof(http_errors) / sizeof(http_errors[0]);
	     i++) {
		const struct http_error *e = &http_errors[i];

		const char *why;
		char *body, retry[40];

		if (e->err != err)
			continue;
		why = hc->route == R_MESSAGE && e->post ? e->post : e->text;
		if (e->status != 503 && e->status != 429) {
			http_answer_error(hc, e->status, why);
			return;
		}
		/* Overload, the database away, a session's rate limit: worth
		 * trying again in a second; an address's new sessions: when
		 * its bucket has a token again at the latest. */
		snprintf(retry, sizeof(retry), "Retry-After: %u\r\n",
			 err == BD_EADDRRATE ?
				 net_ctx_of(hc->wsi)->connect_retry_s :
				 1);
		body = wire_json_error(why);
		answer_raw(hc, e->status, "application/json; charset=utf-8",
			   retry, body, strlen(body));
		free(body);
		return;
	}
	log_error("http_unmapped_error", LOG_I("code", err),
		  LOG_S("reason", bd_strerror(err)));
	http_answer_error(hc, 500, "internal error");
}

/* An answer after which the connection closes (the request was refused
 * before its end was known, or the client should not come back on it). */
static void answer_and_close(struct http_conn *hc, int status,
			     const char *why)
{
	hc->close_after = true;
	http_answer_error(hc, status, why);
}

/* GET handlers */

/* Prometheus asked for: ?format=prometheus, or an Accept of text/plain
 * (and not JSON). */
static bool wants_prometheus(const struct http1_req *rq)
{
	struct http1_str a = rq->accept;

	if (rq->query.len == 17 && !memcmp(rq->query.p, "format=prometheus", 17))
		return true;
	for (size_t i = 0; i + 10 <= a.len; i++)
		if (!strncasecmp(a.p + i, "text/plain", 10)) {
			for (size_t k = 0; k + 16 <= a.len; k++)
				if (!strncasecmp(a.p + k, "application/json", 16))
					return false;
			return true;
		}
	return false;
}

static void handle_metrics(struct http_state *hs, struct http_conn *hc,
			   const struct http1_req *rq)
{
	struct net_ctx *nc = net_ctx_of(hc->wsi);
	struct net_db_stats ds;
	struct wire_metrics m;
	char *body;

	nc->db_stats(nc->db_arg, &ds);
	m = (struct wire_metrics){
		.instance_id = nc->instance_id,
		.uptime_s = (uint64_t)(clock_mono_ns() / 1000000000 - nc->started_s),
		.chat = chat_get_stats(hs->chat),
		.tcp = chat_tcp_count(hs->chat),
		.http_sessions = chat_api_count(hs->chat),
		.sse_streams = chat_stream_count(hs->chat),
		.rooms_in_memory = chat_room_count(hs->chat),
		.db_available = ds.query_idle,
		.db_waiting = ds.queued,
		.db_refused = ds.refused,
		.db_errors = ds.errors,
		.db_reconnects = ds.reconnects,
		.db_lost = ds.lost,
		.notifications = ds.notifications,
		.notify_queue_usage = nc->db_queue(nc->db_arg),
		.bytes_in = nc->bytes_in,
		.bytes_out = nc->bytes_out,
		.lines_out = nc->lines_out,
		.conns_refused = nc->limits.refused,
		.events_out = nc->events_out,
		.post_batches = &ds.post_batches,
		.ctl_batches = &ds.ctl_batches,
	};
	if (wants_prometheus(rq)) {
		body = wire_prom_metrics(&m);
		answer_raw(hc, 200, "text/plain; version=0.0.4; charset=utf-8",
			   NULL, body, strlen(body));
		free(body);
		return;
	}
	http_answer(hc, 200, wire_json_metrics(&m));
}

static void handle_health(struct http_state *hs, struct http_conn *hc,
			  const struct http1_req *rq)
{
	struct net_ctx *nc = net_ctx_of(hc->wsi);
	const struct chat_stats *cs = chat_get_stats(hs->chat);
	bool ok = nc->db_ok(nc->db_arg);
	struct net_db_stats ds;
	struct wire_health h;

	(void)rq;
	nc->db_stats(nc->db_arg, &ds);
	h = (struct wire_health){
		.ok = ok,
		.draining = nc->draining,
		.uptime_s = (uint64_t)(clock_mono_ns() / 1000000000 - nc->started_s),
		.tcp = chat_tcp_count(hs->chat),
		.http_sessions = chat_api_count(hs->chat),
		.instance_id = nc->instance_id,
		.sessions = chat_session_count(hs->chat),
		.streams = chat_stream_count(hs->chat),
		.history_hits = cs->history_hits,
		.history_misses = cs->history_misses,
		.notify_queue_usage = nc->db_queue(nc->db_arg),
		.http_connections = hs->nconns,
		.http_waiting = hs->pending.count,
		.room_list_reads = rooms_reads(hs),
		.db_queued = ds.queued,
		.db_queued_user = ds.queued_user,
		.db_limit = ds.limit,
		.db_refused = ds.refused,
		.db_dropped = ds.dropped,
		.lat = cs->lat,
	};
	http_answer(hc, ok && !nc->draining ? 200 : 503, wire_json_health(&h));
}

/* Static files */

static void handle_file(struct http_state *hs, struct http_conn *hc,
			const struct http1_req *rq)
{
	const struct file *f = files_get(hs->files, rq->path.p,
					 rq->path.len);
	char extra[128];

	if (!f) {
		http_answer_error(hc, 404, "not found");
		return;
	}
	snprintf(extra, sizeof(extra),
		 "Cache-Control: no-cache\r\nETag: %s\r\n"
		 "X-Content-Type-Options: nosniff\r\n", f->etag);
	if (http1_str_ieq(rq->if_none_match, f->etag)) {
		/* A 304 has no body; its Content-Length, when sent, must
		 * be the file's (RFC 9110, 8.6). */
		hc->head_only = true;
		answer_raw(hc, 304, NULL, extra, f->data, f->len);
		return;
	}
	answer_raw(hc, 200, f->type, extra, f->data, f->len);
}

/* SSE */

static void sse_wake(void *conn)
{
	struct http_conn *hc = conn;

	net_want_write(hc->wsi, &hc->write_armed);
}

static void sse_close(void *conn, bool flush)
{
	struct http_conn *hc = conn;

	if (flush) {
		hc->sse_close_after_flush = true;
		net_want_write(hc->wsi, &hc->write_armed);
		lws_set_timeout(hc->wsi, PENDING_TIMEOUT_USER_OK, 5);
	} else {
		lws_set_timeout(hc->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	}
}

static void sse_throttle(void *conn, bool stop)
{
	(void)conn;	/* a stream has no input */
	(void)stop;
}

static const struct chat_sink_ops sse_sink = {
	.wake = sse_wake,
	.close = sse_close,
	.throttle = sse_throttle,
};

/* GET /api/messages/<room>: checks what needs no database, then resumes
 * the session; start_stream() carries on when writable. */
static void handle_stream(struct http_state *hs, struct http_conn *hc,
			  const struct http1_req *rq)
{
	size_t n = strlen("/api/messages/");
	struct http1_str room = { rq->path.p + n, rq->path.len - n };
	struct apireq_stream sr;
	const char *why;
	int status;

	hc->route = R_STREAM_OPEN;
	hc->last_seq = -1;
	hc->close_after = true;	/* a stream ends with its connection */
	status = apireq_stream_parse(room, rq->query, rq->last_event_id, &sr,
				 &why);
	if (status) {
		http_answer_error(hc, status, why);
		return;
	}
	snprintf(hc->room, sizeof(hc->room), "%s", sr.room);
	hc->last_seq = sr.last_seq;
	apisess_resume(hs, hc, sr.session_id);
}

static int start_stream(struct http_state *hs, struct http_conn *hc)
{
	struct session *s = chat_api_session(hs->chat, hc->sess_key);
	struct strbuf sb = STRBUF_INIT;
	struct outbuf *retry;
	int err;

	if (!s) {
		hc->sess_key = 0;
		http_answer_err(hc, BD_ENOENT);
		return 0;
	}
	hc->st = chat_stream_open(hs->chat, s, hc->room, hc->last_seq,
				  &sse_sink, hc, &err);
	if (!hc->st) {
		hc->sess_key = 0;
		if (chat_room_known(hs->chat, hc->room))
			http_answer_err(hc, BD_EPERM);
		else	/* unknown here: does it exist? */
			rooms_member_check(hs, hc);
		return 0;
	}
	hc->route = R_STREAM;
	hc->state = CONN_STREAM;
	chat_api_stream_opened(hs->chat, hc->sess_key);
	/* No length: the body is every event until the connection ends,
	 * starting with the reconnect delay. */
	sb_puts(&sb, "HTTP/1.1 200 OK\r\n"
		     "Content-Type: text/event-stream\r\n"
		     "Cache-Control: no-cache, no-transform\r\n"
		     "X-Accel-Buffering: no\r\n"
		     "Connection: close\r\n\r\n");
	retry = wire_sse_retry(SSE_RETRY_MS);
	sb_append(&sb, retry->data, retry->len);
	outbuf_unref(retry);
	free(hc->out);
	hc->out_sent = 0;
	hc->out = sb_detach(&sb, &hc->out_len);
	lws_set_timeout(hc->wsi, NO_PENDING_TIMEOUT, 0);
	net_want_write(hc->wsi, &hc->write_armed);
	return 0;
}

static int write_stream(struct http_conn *hc)
{
	struct outq *q = stream_outq(hc->st);
	size_t n = outq_copy(q, (char *)scratch + LWS_PRE, NET_CHUNK);

	if (n) {
		if (lws_write(hc->wsi, scratch + LWS_PRE, n, LWS_WRITE_RAW) <
		    (int)n)
			return -1;
		net_ctx_of(hc->wsi)->events_out += outq_consume(q, n);
		net_ctx_of(hc->wsi)->bytes_out += n;
	}
	if (!outq_empty(q))
		net_want_write(hc->wsi, &hc->write_armed);
	else if (hc->sse_close_after_flush)
		return -1;
	return 0;
}

/* Routing: one table */

enum {
	M_GET = 1 << HTTP1_GET,
	M_HEAD = 1 << HTTP1_HEAD,
	M_POST = 1 << HTTP1_POST,
};

struct route_def {
	const char *path;
	bool prefix;		/* path is a prefix (followed by a name) */
	enum route route;
	unsigned methods;	/* M_* */
	/* One of: a handler of the request, or of its JSON object body. */
	void (*get)(struct http_state *hs, struct http_conn *hc,
		    const struct http1_req *rq);
	void (*post)(struct http_state *hs, struct http_conn *hc,
		     const struct apireq *rq);
	enum apireq_kind kind;	/* of post's body */
};

static const struct route_def routes[] = {
	{ "/api/command", false, R_COMMAND, M_POST, NULL, apisess_command,
	  APIREQ_COMMAND },
	{ "/api/connect", false, R_CONNECT, M_POST, NULL, apisess_connect,
	  APIREQ_CONNECT },
	{ "/api/disconnect", false, R_DISCONNECT, M_POST, NULL,
	  apisess_disconnect, APIREQ_DISCONNECT },
	{ "/api/message", false, R_MESSAGE, M_POST, NULL, apisess_message,
	  APIREQ_MESSAGE },
	{ "/api/messages/", true, R_STREAM_OPEN, M_GET, handle_stream, NULL,
	  0 },
	{ "/api/rooms", false, R_ROOMS, M_GET | M_HEAD, rooms_handle, NULL,
	  0 },
	{ "/health", false, R_HEALTH, M_GET | M_HEAD, handle_health, NULL, 0 },
	{ "/metrics", false, R_METRICS, M_GET | M_HEAD, handle_metrics, NULL,
	  0 },
};

/* The static files answer every path outside /api. */
static const struct route_def static_route = {
	"/", true, R_NONE, M_GET | M_HEAD, handle_file, NULL, 0
};

static const struct route_def *route_find(struct http1_str path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		size_t n = strlen(routes[i].path);

		if (routes[i].prefix ? path.len > n : path.len == n)
			if (!memcmp(path.p, routes[i].path, n))
				return &routes[i];
	}
	if (http1_str_ieq(path, "/api") ||
	    (path.len >= 5 && !memcmp(path.p, "/api/", 5)))
		return NULL;
	return &static_route;
}

static bool is_json(struct http1_str ct)
{
	return ct.len >= 16 && !strncasecmp(ct.p, "application/json", 16) &&
	       (ct.len == 16 || ct.p[16] == ';' || ct.p[16] == ' ');
}

static void dispatch_body(struct http_state *hs, struct http_conn *hc,
			  const struct route_def *rd,
			  const struct http1_req *rq, const char *body)
{
	struct apireq req;
	const char *why;
	int status;

	if (!is_json(rq->content_type)) {
		http_answer_error(hc, 415,
				  "Content-Type must be application/json");
		return;
	}
	status = apireq_decode(rd->kind, body, (size_t)rq->content_length,
				 CHAT_MAX_LINE, &req, &why);
	if (status)
		http_answer_error(hc, status, why);
	else
		rd->post(hs, hc, &req);
	apireq_fini(&req);
}

/* hc now answers a request (the one whose answer comes next). */
static void begin_answer(struct http_conn *hc, bool keep_alive,
			 bool head_only)
{
	hc->state = CONN_BUSY;
	hc->answered = false;
	hc->req_started = false;
	hc->continue_sent = false;
	hc->keep_alive = keep_alive;
	hc->head_only = head_only;
	hc->close_after = false;
	lws_set_timeout(hc->wsi, TO_ANSWER, WAIT_TIMEOUT_S);
}

/* Who sent rq: the peer, or the client a trusted proxy names in
 * X-Real-IP (an IPv4 or IPv6 address, else the peer). The per address
 * limits of the core count this address. */
static void request_client(struct http_conn *hc, const struct http1_req *rq)
{
	const char *proxy = net_ctx_of(hc->wsi)->real_ip_from;
	unsigned char a[sizeof(struct in6_addr)];
	char v[NET_IP_LEN];

	snprintf(hc->client, sizeof(hc->client), "%s", hc->ip);
	if (!proxy || strcmp(proxy, hc->ip) || !rq->real_ip.len ||
	    rq->real_ip.len >= sizeof(v))
		return;
	memcpy(v, rq->real_ip.p, rq->real_ip.len);
	v[rq->real_ip.len] = '\0';
	if (inet_pton(AF_INET, v, a) == 1 || inet_pton(AF_INET6, v, a) == 1)
		memcpy(hc->client, v, sizeof(v));
}

/* One whole request (head and body): its one and only dispatch. */
static void dispatch(struct http_state *hs, struct http_conn *hc,
		     const struct http1_req *rq, const char *body)
{
	const struct route_def *rd = route_find(rq->path);

	begin_answer(hc, rq->keep_alive && !hs->stopping,
		     rq->method == HTTP1_HEAD);
	request_client(hc, rq);
	if (!rd) {
		http_answer_error(hc, 404, "not found");
		return;
	}
	hc->route = rd->route;
	if (!(rd->methods & (1u << rq->method))) {
		hc->route = R_NONE;
		answer_and_close(hc, 405, "method not allowed");
		return;
	}
	/* A body on a method that takes none was read and is ignored. */
	if (rd->post)
		dispatch_body(hs, hc, rd, rq, body);
	else
		rd->get(hs, hc, rq);
}

/* Refuses what cannot be framed and closes: the rest of the input is
 * not a request. */
static void refuse(struct http_conn *hc, int status, const char *why)
{
	begin_answer(hc, false, false);
	answer_and_close(hc, status, why);
	sb_reset(&hc->in);
}

static void consume(struct http_conn *hc, size_t n)
{
	memmove(hc->in.buf, hc->in.buf + n, hc->in.len - n);
	hc->in.len -= n;
	hc->in.buf[hc->in.len] = '\0';
}

/* Interim answer: the client waits for it before sending its body. */
static void send_continue(struct http_conn *hc)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	hc->continue_sent = true;
	if (hc->out)
		return;
	hc->out = xmemdup(cont, sizeof(cont) - 1);
	hc->out_len = sizeof(cont) - 1;
	hc->out_sent = 0;
	net_want_write(hc->wsi, &hc->write_armed);
}

/* Dispatches the buffered requests, one at a time. */
static void process_input(struct http_state *hs, struct http_conn *hc)
{
	while (hc->state == CONN_READ && hc->in.len) {
		struct http1_req rq;
		const char *why;
		int head = http1_parse(hc->in.buf, hc->in.len, &rq, &why);
		size_t need;

		if (head < 0) {
			refuse(hc, -head, why);
			return;
		}
		if (head && rq.content_length > BODY_MAX) {
			refuse(hc, 413, "request body too large (max 16384 bytes)");
			return;
		}
		if (head && rq.method == HTTP1_POST && rq.content_length < 0) {
			refuse(hc, 411, "Content-Length required");
			return;
		}
		need = (size_t)head +
		       (size_t)(rq.content_length > 0 ? rq.content_length : 0);
		if (!head || hc->in.len < need) {
			if (head && rq.expect_continue && !hc->continue_sent)
				send_continue(hc);
			if (!hc->req_started) {
				hc->req_started = true;
				lws_set_timeout(hc->wsi, TO_REQUEST,
						HEAD_TIMEOUT_S);
			}
			return;
		}
		dispatch(hs, hc, &rq, hc->in.buf + head);
		consume(hc, need);
	}
}

/* Over a connection limit: a 503 before any request, then closed. */
static void refuse_conn(struct http_conn *hc)
{
	static const char body[] = "{\"error\":\"too many connections\"}";
	struct strbuf sb = STRBUF_INIT;

	log_warn("connection_refused", LOG_S("ip", hc->ip),
		 LOG_S("transport", "http"),
		 LOG_S("reason", "too many connections"));
	sb_appendf(&sb,
		   "HTTP/1.1 503 Service Unavailable\r\n"
		   "Content-Type: application/json; charset=utf-8\r\n"
		   "Content-Length: %zu\r\nRetry-After: 5\r\n"
		   "Connection: close\r\n\r\n%s",
		   sizeof(body) - 1, body);
	hc->state = CONN_CLOSING;
	hc->out_sent = 0;
	hc->out = sb_detach(&sb, &hc->out_len);
	lws_set_timeout(hc->wsi, PENDING_TIMEOUT_USER_OK, 5);
	net_want_write(hc->wsi, &hc->write_armed);
}

/* The answer went out: next request, or close. */
static void request_done(struct http_state *hs, struct http_conn *hc)
{
	if (hc->close_after) {
		hc->state = CONN_CLOSING;
		net_want_write(hc->wsi, &hc->write_armed);	/* closes there */
		return;
	}
	hc->state = CONN_READ;
	hc->route = R_NONE;
	free(hc->text);
	hc->text = NULL;
	lws_set_timeout(hc->wsi, TO_IDLE, KEEPALIVE_S);
	if (hc->in_paused) {
		hc->in_paused = false;
		lws_rx_flow_control(hc->wsi, 1);
	}
	process_input(hs, hc);
}

static int on_writeable(struct http_state *hs, struct http_conn *hc)
{
	if (hc->out) {
		size_t n = hc->out_len - hc->out_sent;

		if (n > NET_CHUNK)
			n = NET_CHUNK;
		memcpy(scratch + LWS_PRE, hc->out + hc->out_sent, n);
		if (lws_write(hc->wsi, scratch + LWS_PRE, n, LWS_WRITE_RAW) <
		    (int)n)
			return -1;
		hc->out_sent += n;
		net_ctx_of(hc->wsi)->bytes_out += n;
		/* lws sends no WRITEABLE before what it kept is out. */
		net_want_write(hc->wsi, &hc->write_armed);
		if (hc->out_sent < hc->out_len)
			return 0;
		free(hc->out);
		hc->out = NULL;
		if (hc->state == CONN_BUSY && hc->answered)
			request_done(hs, hc);
		return 0;
	}
	switch (hc->state) {
	case CONN_STREAM:
		return write_stream(hc);
	case CONN_CLOSING:
		return -1;
	case CONN_BUSY:
		if (hc->route == R_STREAM_OPEN && hc->sess_key)
			return start_stream(hs, hc);
		return 0;
	default:
		return 0;
	}
}

static void on_rx(struct http_state *hs, struct http_conn *hc,
		  const char *in, size_t len)
{
	if (hc->state == CONN_STREAM || hc->state == CONN_CLOSING)
		return;	/* nothing more is read on this connection */
	sb_append(&hc->in, in, len);
	if (hc->state == CONN_READ)
		process_input(hs, hc);
	if (hc->state != CONN_READ && hc->in.len >= IN_MAX &&
	    !hc->in_paused) {
		hc->in_paused = true;
		lws_rx_flow_control(hc->wsi, 0);
	}
}

static void conn_cleanup(struct http_state *hs, struct http_conn *hc)
{
	bool had_stream = hc->st != NULL;
	uint64_t req = hc->token;

	http_unpark(hs, hc);
	if (hc->st) {
		chat_stream_closed(hs->chat, hc->st);
		hc->st = NULL;
	}
	if (had_stream)
		chat_api_stream_closed(hs->chat, hc->sess_key);
	else if (hc->sess_key && req)
		chat_api_request_gone(hs->chat, hc->sess_key, req);
	hc->sess_key = 0;
	free(hc->text);
	hc->text = NULL;
	sb_fini(&hc->in);
	free(hc->out);
	hc->out = NULL;
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
		  void *user, void *in, size_t len)
{
	struct http_conn *hc = user;
	struct http_state *hs;

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		state_of(wsi)->nconns++;
		hc->wsi = wsi;
		if (!net_admit(net_ctx_of(wsi), wsi, hc->ip)) {
			refuse_conn(hc);
			break;
		}
		hc->admitted = true;
		hc->state = CONN_READ;
		lws_set_timeout(wsi, TO_IDLE, KEEPALIVE_S);
		break;
	case LWS_CALLBACK_RAW_RX:
		net_ctx_of(wsi)->bytes_in += len;
		on_rx(state_of(wsi), hc, in, len);
		break;
	case LWS_CALLBACK_RAW_WRITEABLE:
		hc->write_armed = false;
		return on_writeable(state_of(wsi), hc);
	case LWS_CALLBACK_RAW_CLOSE:
		hs = state_of(wsi);
		if (hc->admitted) {
			net_release(net_ctx_of(wsi), hc->ip);
			hc->admitted = false;
		}
		if (hs && hc->wsi) {
			hs->nconns--;
			conn_cleanup(hs, hc);
		}
		break;
	default:
		break;
	}
	return 0;
}

static void heartbeat_cb(lws_sorted_usec_list_t *sul)
{
	struct http_state *hs = lws_container_of(sul, struct http_state,
						 sul_heartbeat);

	chat_heartbeat(hs->chat);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_heartbeat, heartbeat_cb,
			 hs->heartbeat);
}

/* A request still waits for its answer: req parked, or (0) the room
 * list's read has a waiter. */
static bool api_wanted(void *arg, uint64_t req)
{
	struct http_state *hs = arg;

	return req ? idmap_get(&hs->pending, req) != NULL : rooms_wanted(hs);
}

static const struct chat_api_ops api_ops = {
	.rooms = rooms_loaded,
	.wanted = api_wanted,
	.connected = apisess_connected,
	.resumed = apisess_resumed,
	.replied = apisess_replied,
	.posted = apisess_posted,
	.ended = apisess_ended,
	.defer = apisess_defer,
};

struct http_state *http_state_new(struct lws_context *ctx, struct chat *c,
				  const char *static_dir,
				  unsigned idle_timeout_s, unsigned heartbeat_s)
{
	struct http_state *hs = xcalloc(1, sizeof(*hs));

	hs->ctx = ctx;
	hs->chat = c;
	hs->files = files_load(static_dir);
	hs->rooms = rooms_new();
	hs->next_token = 1;
	hs->idle_s = idle_timeout_s;
	hs->idle_timeout = (lws_usec_t)idle_timeout_s * LWS_US_PER_SEC;
	hs->heartbeat = (lws_usec_t)heartbeat_s * LWS_US_PER_SEC;
	idmap_init(&hs->pending);
	chat_set_api(c, &api_ops, hs);
	apisess_start(hs);
	lws_sul_schedule(ctx, 0, &hs->sul_heartbeat, heartbeat_cb,
			 hs->heartbeat);
	return hs;
}

void http_state_stop(struct http_state *hs)
{
	hs->stopping = true;
	apisess_stop(hs);
}

void http_state_free(struct http_state *hs)
{
	if (!hs)
		return;
	lws_sul_cancel(&hs->sul_heartbeat);
	apisess_timers_cancel(hs);
	idmap_fini(&hs->pending);
	files_free(hs->files);
	rooms_free(hs->rooms);
	free(hs);
}
