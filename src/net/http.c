/*
 * HTTP: GET /health, the JSON API under /api and SSE streams
 * (/api/messages/<room>). Every answer is prepared in a callback and
 * written from HTTP_WRITEABLE (headers, then the body as the final write);
 * answers that wait for the database or for a command are parked under a
 * token and completed from the store's or the chat core's callbacks.
 * The API sessions the requests belong to are apisess.c's.
 */
#include "net/http_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/sse.h"
#include "util/idmap.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define BODY_MAX 16384		/* request body cap */
#define WAIT_TIMEOUT_S 15	/* answer deadline for parked requests */
#define SSE_RETRY_MS 3000

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
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (lws_usec_t)ts.tv_sec * LWS_US_PER_SEC + ts.tv_nsec / 1000;
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
	lws_set_timeout(hc->wsi, PENDING_TIMEOUT_USER_REASON_BASE + 1,
			WAIT_TIMEOUT_S);
}

void http_answer(struct http_conn *hc, int status, json_t *obj)
{
	free(hc->resp);
	hc->status = status;
	hc->resp = json_dumps(obj, JSON_COMPACT);
	hc->len = hc->resp ? strlen(hc->resp) : 0;
	hc->sent = 0;
	hc->headers_sent = false;
	json_decref(obj);
	lws_callback_on_writable(hc->wsi);
}

void http_answer_error(struct http_conn *hc, int status, const char *why)
{
	http_answer(hc, status, json_pack("{ss}", "error", why));
}

static int write_answer(struct lws *wsi, struct http_conn *hc)
{
	unsigned char buf[LWS_PRE + 512];
	unsigned char *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf);

	if (!hc->resp)
		return 0;
	if (!hc->headers_sent) {
		if (lws_add_http_common_headers(wsi, (unsigned)hc->status,
				"application/json; charset=utf-8", hc->len,
				&p, end) ||
		    lws_add_http_header_by_token(wsi,
				WSI_TOKEN_HTTP_CACHE_CONTROL,
				(const unsigned char *)"no-store", 8, &p, end) ||
		    (hc->close_after &&
		     lws_add_http_header_by_token(wsi,
				WSI_TOKEN_CONNECTION,
				(const unsigned char *)"close", 5, &p, end)) ||
		    lws_finalize_write_http_header(wsi, start, &p, end))
			return -1;
		hc->headers_sent = true;
		lws_callback_on_writable(wsi);
		return 0;
	}
	{
		/* A chunk per callback; the last one is the final write. */
		size_t n = hc->len - hc->sent;
		bool last = n <= NET_CHUNK;

		if (!last)
			n = NET_CHUNK;
		memcpy(scratch + LWS_PRE, hc->resp + hc->sent, n);
		if (lws_write(wsi, scratch + LWS_PRE, n,
			      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
		    (int)n)
			return -1;
		hc->sent += n;
		if (!last) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	free(hc->resp);
	hc->resp = NULL;
	if (hc->close_after)
		return -1;
	sb_fini(&hc->body);
	free(hc->text);
	hc->text = NULL;
	hc->route = R_NONE;
	hc->body_too_large = false;
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

static void handle_body(struct http_state *hs, struct http_conn *hc)
{
	json_error_t jerr;
	json_t *req;

	if (hc->body_too_large) {
		hc->close_after = true;
		http_answer_error(hc, 413, "request body too large (max 16384 bytes)");
		return;
	}
	req = json_loadb(hc->body.buf ? hc->body.buf : "", hc->body.len, 0,
			 &jerr);
	if (!json_is_object(req)) {
		http_answer_error(hc, 400, req ? "expected a JSON object"
					       : "malformed JSON");
		json_decref(req);
		return;
	}
	switch (hc->route) {
	case R_CONNECT:
		apisess_connect(hs, hc, req);
		break;
	case R_COMMAND:
		apisess_command(hs, hc, req);
		break;
	case R_MESSAGE:
		apisess_message(hs, hc, req);
		break;
	case R_DISCONNECT:
		apisess_disconnect(hs, hc, req);
		break;
	default:
		http_answer_error(hc, 404, "not found");
	}
	json_decref(req);
}

/* GET handlers */

static void handle_health(struct lws *wsi, struct http_conn *hc)
{
	struct net_ctx *nc = net_ctx_of(wsi);
	const struct chat_stats *cs = chat_get_stats(nc->chat);
	bool ok = nc->db_ok(nc->db_arg);

	http_answer(hc, ok ? 200 : 503,
		    json_pack("{sssssssIsIsIsIsf}",
			      "status", ok ? "healthy" : "unhealthy",
			      "db", ok ? "connected" : "disconnected",
			      "instance_id", nc->instance_id,
			      "sessions",
			      (json_int_t)chat_session_count(nc->chat),
			      "streams",
			      (json_int_t)chat_stream_count(nc->chat),
			      "history_hits", (json_int_t)cs->history_hits,
			      "history_misses", (json_int_t)cs->history_misses,
			      "notify_queue_usage", nc->db_queue(nc->db_arg)));
}

static void api_rooms(void *arg, uint64_t token, int err,
		      const struct chat_room_info *rooms, size_t n)
{
	struct http_state *hs = arg;
	struct http_conn *hc = http_claim(hs, token);
	json_t *list;
	bool found = false;

	if (!hc)
		return;
	if (err) {
		http_answer_error(hc, 503, "database unavailable");
		return;
	}
	if (hc->route == R_STREAM_CHECK) {
		for (size_t i = 0; i < n && !found; i++)
			found = !strcmp(rooms[i].name, hc->room);
		if (found)
			http_answer_error(hc, 403, "not a member of that room");
		else
			http_answer_error(hc, 404, "no such room");
		return;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{sssIsI}",
			"name", rooms[i].name,
			"members", (json_int_t)rooms[i].members,
			"online", (json_int_t)rooms[i].online));
	http_answer(hc, 200, json_pack("{so}", "rooms", list));
}

static const struct chat_api_ops api_ops = { .rooms = api_rooms };

static void list_rooms(struct http_state *hs, struct http_conn *hc)
{
	http_park(hs, hc);
	if (chat_list_rooms(hs->chat, hc->token)) {
		http_unpark(hs, hc);
		http_answer_error(hc, 503, "database unavailable");
	}
}

/* SSE */

static void sse_wake(void *conn)
{
	struct http_conn *hc = conn;

	lws_callback_on_writable(hc->wsi);
}

static void sse_close(void *conn, bool flush)
{
	struct http_conn *hc = conn;

	if (flush) {
		hc->sse_close_after_flush = true;
		lws_callback_on_writable(hc->wsi);
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

static int64_t parse_seq(const char *s)
{
	char *end;
	long long v;

	while (*s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoll(s, &end, 10);
	while (*end == ' ')
		end++;
	return *end || v < 0 ? -1 : v;
}

static int stream_headers(struct lws *wsi)
{
	unsigned char buf[LWS_PRE + 512];
	unsigned char *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf);

	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK,
					"text/event-stream",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
			(const unsigned char *)"no-cache, no-transform", 22,
			&p, end) ||
	    lws_add_http_header_by_name(wsi,
			(const unsigned char *)"x-accel-buffering:",
			(const unsigned char *)"no", 2, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

/* GET /api/messages/<room>: checks what needs no database, then resumes
 * the session; start_stream() carries on when writable. */
static void open_stream(struct http_state *hs, struct lws *wsi,
			struct http_conn *hc, const char *room)
{
	char sbuf[64], lbuf[48], lei[32] = "";
	const char *sid, *arg;

	hc->route = R_STREAM_OPEN;
	hc->last_seq = -1;
	/* The argument comes back as a pointer into buf, after "name=". */
	sid = lws_get_urlarg_by_name(wsi, "session_id=", sbuf, sizeof(sbuf));
	if (!apisess_secret_ok(sid)) {
		http_answer_error(hc, 404, "unknown session");
		return;
	}
	if (!name_is_valid_room(room)) {
		http_answer_error(hc, 404, "no such room");
		return;
	}
	snprintf(hc->room, sizeof(hc->room), "%.50s", room);
	if (lws_hdr_custom_copy(wsi, lei, sizeof(lei), "last-event-id:",
				14) > 0)
		hc->last_seq = parse_seq(lei);
	else if ((arg = lws_get_urlarg_by_name(wsi, "last_event_id=", lbuf,
					       sizeof(lbuf))))
		hc->last_seq = parse_seq(arg);
	apisess_resume(hs, hc, sid);
}

static int start_stream(struct http_state *hs, struct lws *wsi,
			struct http_conn *hc)
{
	struct session *s = apisess_stream_session(hs, hc->sess_key);
	int err;

	if (!s) {
		hc->sess_key = 0;
		http_answer_error(hc, 404, "unknown session");
		return 0;
	}
	hc->st = chat_stream_open(hs->chat, s, hc->room, hc->last_seq,
				  &sse_sink, hc, &err);
	if (!hc->st) {
		hc->sess_key = 0;
		if (chat_room_known(hs->chat, hc->room)) {
			http_answer_error(hc, 403, "not a member of that room");
			return 0;
		}
		/* Unknown here: ask the database whether it exists. */
		hc->route = R_STREAM_CHECK;
		list_rooms(hs, hc);
		return 0;
	}
	hc->route = R_STREAM;
	apisess_stream_opened(hs, hc->sess_key);
	if (stream_headers(wsi))
		return -1;
	/* HTTP/1: what lws_http_mark_sse() does, without its error log. */
	lws_http_headers_detach(wsi);
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	sse_reaper_track(wsi);
	lws_callback_on_writable(wsi);
	return 0;
}

static int write_stream(struct http_conn *hc)
{
	struct outq *q = stream_outq(hc->st);
	size_t off = 0, n;

	if (!hc->sse_retry_sent) {
		off = (size_t)snprintf((char *)scratch + LWS_PRE, 32,
				       "retry: %d\n\n", SSE_RETRY_MS);
		hc->sse_retry_sent = true;
	}
	n = outq_copy(q, (char *)scratch + LWS_PRE + off, NET_CHUNK - off);
	if (off + n) {
		if (lws_write(hc->wsi, scratch + LWS_PRE, off + n,
			      LWS_WRITE_HTTP) < (int)(off + n))
			return -1;
		outq_consume(q, n);
	}
	if (!outq_empty(q))
		lws_callback_on_writable(hc->wsi);
	else if (hc->sse_close_after_flush)
		return -1;
	return 0;
}

/* Request dispatch */

static bool is_json(struct lws *wsi)
{
	char ct[128];

	if (lws_hdr_copy(wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0)
		return false;
	return !strncasecmp(ct, "application/json", 16) &&
	       (!ct[16] || ct[16] == ';' || ct[16] == ' ');
}

static int on_request(struct lws *wsi, struct http_conn *hc, const char *url)
{
	struct http_state *hs = state_of(wsi);
	bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	char clen[24];
	static const struct {
		const char *path;
		enum route route;
		bool post;
	} routes[] = {
		{ "/health", R_HEALTH, false },
		{ "/api/connect", R_CONNECT, true },
		{ "/api/command", R_COMMAND, true },
		{ "/api/message", R_MESSAGE, true },
		{ "/api/disconnect", R_DISCONNECT, true },
		{ "/api/rooms", R_ROOMS, false },
	};

	hc->wsi = wsi;
	hc->is_post = post;
	if (!strncmp(url, "/api/messages/", 14)) {
		if (!get) {
			http_answer_error(hc, 405, "method not allowed");
			return 0;
		}
		open_stream(hs, wsi, hc, url + 14);
		return 0;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(url, routes[i].path))
			continue;
		hc->route = routes[i].route;
		if (routes[i].post ? !post : !get) {
			hc->route = R_NONE;
			hc->close_after = post;	/* body left unread */
			http_answer_error(hc, 405, "method not allowed");
			return 0;
		}
		if (!post) {
			if (hc->route == R_HEALTH)
				handle_health(wsi, hc);
			else
				list_rooms(hs, hc);
			return 0;
		}
		if (!is_json(wsi)) {
			hc->route = R_NONE;
			hc->close_after = true;
			http_answer_error(hc, 415, "Content-Type must be application/json");
			return 0;
		}
		if (lws_hdr_copy(wsi, clen, sizeof(clen),
				 WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
		    strtoull(clen, NULL, 10) > BODY_MAX) {
			hc->route = R_NONE;
			hc->close_after = true;
			http_answer_error(hc, 413, "request body too large (max 16384 bytes)");
		}
		return 0;	/* the body follows */
	}
	hc->close_after = post;
	http_answer_error(hc, 404, "not found");
	return 0;
}

static void conn_cleanup(struct lws *wsi, struct http_conn *hc)
{
	struct http_state *hs = state_of(wsi);
	bool had_stream = hc->st != NULL;

	if (!hs)
		return;
	http_unpark(hs, hc);
	if (hc->st) {
		sse_reaper_untrack(wsi);
		chat_stream_closed(hs->chat, hc->st);
		hc->st = NULL;
	}
	apisess_conn_closed(hs, hc, had_stream);
	hc->sess_key = 0;
	free(hc->text);
	hc->text = NULL;
	sb_fini(&hc->body);
	free(hc->resp);
	hc->resp = NULL;
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
		  void *user, void *in, size_t len)
{
	struct http_conn *hc = user;
	char url[256];

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		/* Mounted at /api and /health with origin "/": `in` is
		 * the rest; rebuild the full path. */
		if (lws_hdr_copy(wsi, url, sizeof(url), WSI_TOKEN_GET_URI) <= 0 &&
		    lws_hdr_copy(wsi, url, sizeof(url), WSI_TOKEN_POST_URI) <= 0) {
			hc->wsi = wsi;
			hc->close_after = true;
			http_answer_error(hc, 405, "method not allowed");
			return 0;
		}
		(void)in;
		return on_request(wsi, hc, url);
	case LWS_CALLBACK_HTTP_BODY:
		if (hc->route == R_NONE || hc->body_too_large)
			return 0;
		if (hc->body.len + len > BODY_MAX) {
			hc->body_too_large = true;
			sb_fini(&hc->body);
			return 0;
		}
		if (len)
			sb_append(&hc->body, in, len);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (hc->route != R_NONE && !hc->resp)
			handle_body(state_of(wsi), hc);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (hc->route == R_STREAM && hc->st)
			return write_stream(hc);
		if (hc->route == R_STREAM_OPEN && !hc->resp)
			return start_stream(state_of(wsi), wsi, hc);
		return write_answer(wsi, hc);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		conn_cleanup(wsi, hc);
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void heartbeat_cb(lws_sorted_usec_list_t *sul)
{
	struct http_state *hs = lws_container_of(sul, struct http_state,
						 sul_heartbeat);

	chat_heartbeat(hs->chat);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_heartbeat, heartbeat_cb,
			 hs->heartbeat);
}

struct http_state *http_state_new(struct lws_context *ctx, struct chat *c,
				  struct store *st, unsigned idle_timeout_s,
				  unsigned heartbeat_s)
{
	struct http_state *hs = xcalloc(1, sizeof(*hs));

	hs->ctx = ctx;
	hs->chat = c;
	hs->store = st;
	hs->next_token = 1;
	hs->idle_s = idle_timeout_s;
	hs->idle_timeout = (lws_usec_t)idle_timeout_s * LWS_US_PER_SEC;
	hs->heartbeat = (lws_usec_t)heartbeat_s * LWS_US_PER_SEC;
	idmap_init(&hs->sessions);
	idmap_init(&hs->by_db);
	idmap_init(&hs->pending);
	chat_set_api(c, &api_ops, hs);
	sse_reaper_init();
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
	apisess_free_all(hs);
	idmap_fini(&hs->sessions);
	idmap_fini(&hs->by_db);
	idmap_fini(&hs->pending);
	sse_reaper_fini();
	free(hs);
}
