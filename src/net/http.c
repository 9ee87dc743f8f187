/*
 * HTTP: GET /health, the JSON API under /api and SSE streams
 * (/api/messages/<room>). Every answer is prepared in a callback and
 * written from HTTP_WRITEABLE (headers, then the body as the final write);
 * answers that wait for the database or for a command are parked under a
 * token and completed from the store's or the chat core's callbacks.
 *
 * API sessions live in the database (store/sessions.h): every request
 * first resumes its session there, which brings this instance's copy
 * (struct api_sess around a core session of kind SESSION_API) up to date
 * with what other instances did. Copies nobody uses are dropped; a
 * session that ends anywhere is dropped everywhere (NOTIFY session_end),
 * closing its streams.
 */
#include "net/net.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "net/sse.h"
#include "store/sessions.h"
#include "util/idmap.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define BODY_MAX 16384		/* request body cap */
#define WAIT_TIMEOUT_S 15	/* answer deadline for parked requests */
#define SSE_RETRY_MS 3000

enum route {
	R_NONE,
	R_HEALTH,
	R_CONNECT,
	R_COMMAND,
	R_MESSAGE,
	R_DISCONNECT,
	R_ROOMS,
	R_STREAM_OPEN,		/* SSE, session resumed: open when writable */
	R_STREAM,		/* SSE, after its headers went out */
	R_STREAM_CHECK,		/* 403 or 404 decided by the room list */
};

/* This instance's copy of a stored API session, around a core session. */
struct api_sess {
	char id[33];			/* the client's secret: 128 bits, hex */
	uint64_t key;			/* first 64 bits: the map key */
	int64_t db_id;			/* api_sessions.id */
	struct session *s;
	struct http_conn *waiting;	/* request awaiting a command */
	int nstreams;			/* open SSE streams */
	lws_usec_t last_used;		/* unused copies are dropped */
	bool closing;			/* dropped, or ended */
	bool end;			/* end it in the database too (/quit) */
	struct api_sess *prev, *next;
	struct http_state *hs;
	lws_sorted_usec_list_t sul_free;	/* frees it off the stack */
};

struct http_state {
	struct lws_context *ctx;
	struct chat *chat;
	struct store *store;
	struct idmap sessions;		/* key -> api_sess */
	struct idmap by_db;		/* db_id -> api_sess */
	struct api_sess *first;
	struct idmap pending;		/* token -> http_conn */
	uint64_t next_token;
	unsigned idle_s;		/* session expiry */
	lws_usec_t idle_timeout;
	lws_usec_t heartbeat;
	bool stopping;
	lws_sorted_usec_list_t sul_sweep;
	lws_sorted_usec_list_t sul_tick;
	lws_sorted_usec_list_t sul_heartbeat;
};

/* Per HTTP transaction (lws zeroes it and frees it). */
struct http_conn {
	struct lws *wsi;
	enum route route;
	bool is_post;
	bool body_too_large;
	struct strbuf body;
	uint64_t token;			/* parked under this, or 0 */
	uint64_t sess_key;		/* api_sess it waits on / streams for */
	/* What the request asks of its session, kept while it resumes. */
	char room[64];			/* message, stream; connect: nick */
	char secret[33];		/* the session's id */
	char *text;			/* command line or message content */
	size_t text_len;
	int64_t last_seq;		/* stream resume point, or -1 */
	/* Prepared answer. */
	int status;
	char *resp;
	size_t len;
	size_t sent;			/* body bytes written */
	bool headers_sent;
	bool close_after;		/* close instead of keep-alive */
	/* SSE */
	struct stream *st;
	bool sse_retry_sent;
	bool sse_close_after_flush;
};

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

static lws_usec_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (lws_usec_t)ts.tv_sec * LWS_US_PER_SEC + ts.tv_nsec / 1000;
}

/* Answers */

static void unpark(struct http_state *hs, struct http_conn *hc)
{
	if (hc->token) {
		idmap_del(&hs->pending, hc->token);
		hc->token = 0;
	}
}

static void park(struct http_state *hs, struct http_conn *hc)
{
	hc->token = hs->next_token++;
	idmap_put(&hs->pending, hc->token, hc);
	lws_set_timeout(hc->wsi, PENDING_TIMEOUT_USER_REASON_BASE + 1,
			WAIT_TIMEOUT_S);
}

/* Takes ownership of obj. */
static void answer(struct http_conn *hc, int status, json_t *obj)
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

static void answer_error(struct http_conn *hc, int status, const char *why)
{
	answer(hc, status, json_pack("{ss}", "error", why));
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

/* API sessions: local copies */

static void api_idle(void *conn);

static char *collect_replies(struct session *s, bool failed);

/* /quit's answer, once its session is gone from the database (a request
 * that follows it, on any instance, finds no session). */
static void quit_ended(void *arg, uint64_t token, int err,
		       const struct stored_session *ss)
{
	struct http_state *hs = arg;
	struct http_conn *hc = idmap_get(&hs->pending, token);

	(void)ss;
	if (err && err != BD_ENOENT)
		log_warn("api session: not ended (database unavailable); it expires");
	if (!hc)
		return;
	unpark(hs, hc);
	answer(hc, 200, json_pack("{sbss}", "success", 1, "message",
				  hc->text ? hc->text : ""));
}

static void sess_free_cb(lws_sorted_usec_list_t *sul)
{
	struct api_sess *as = lws_container_of(sul, struct api_sess, sul_free);
	struct http_state *hs = as->hs;
	struct http_conn *hc = as->end ? as->waiting : NULL;

	if (hc) {
		/* /quit: answered after the delete (quit_ended). */
		as->waiting = NULL;
		hc->sess_key = 0;
		free(hc->text);
		hc->text = collect_replies(as->s, false);
		park(hs, hc);
	} else {
		/* A closing session is never idle for the core: answer. */
		api_idle(as);
	}
	chat_session_closed(hs->chat, as->s);
	if (as->end && store_session_end(hs->store, as->db_id,
					 hc ? quit_ended : NULL, hs,
					 hc ? hc->token : 0)) {
		if (hc)
			quit_ended(hs, hc->token, BD_EDB, NULL);
		else
			log_warn("api session %" PRId64 ": not ended (database unavailable); it expires",
				 as->db_id);
	}
	if (idmap_get(&hs->sessions, as->key) == as)
		idmap_del(&hs->sessions, as->key);
	idmap_del(&hs->by_db, (uint64_t)as->db_id);
	if (as->prev)
		as->prev->next = as->next;
	else
		hs->first = as->next;
	if (as->next)
		as->next->prev = as->prev;
	free(as);
}

/* Drops the copy (ending the stored session too with end), from the loop,
 * never from inside a core callback. */
static void sess_close(struct api_sess *as, bool end)
{
	if (as->closing)
		return;
	as->closing = true;
	as->end = end;
	lws_sul_schedule(as->hs->ctx, 0, &as->sul_free, sess_free_cb, 1);
}

static uint64_t secret_key(const char *id)
{
	char head[17];

	memcpy(head, id, 16);
	head[16] = '\0';
	return strtoull(head, NULL, 16);
}

/* 32 lowercase hex digits, the first 16 not all zero (the map's key is
 * never 0: handle_connect() never makes such a secret). */
static bool secret_ok(const char *id)
{
	return id && strlen(id) == 32 &&
	       strspn(id, "0123456789abcdef") == 32 && secret_key(id);
}

/* The live copy of the session with this secret, if this instance has
 * one. */
static struct api_sess *sess_local(struct http_state *hs, const char *id)
{
	struct api_sess *as = idmap_get(&hs->sessions, secret_key(id));

	if (!as || as->closing || strcmp(as->id, id))
		return NULL;
	return as;
}

static void api_wake(void *conn)
{
	(void)conn;	/* replies are collected when the command is idle */
}

static void api_close(void *conn, bool flush)
{
	struct api_sess *as = conn;

	(void)flush;
	/* /quit ends the session; a shutdown only drops this copy. */
	sess_close(as, !as->hs->stopping);
}

static void api_throttle(void *conn, bool stop)
{
	(void)conn;
	(void)stop;
}

/* The text the command printed, without "[system] " prefixes. */
static char *collect_replies(struct session *s, bool failed)
{
	struct outq *q = session_outq(s);
	struct strbuf out = STRBUF_INIT;
	char *text = xmalloc(q->bytes + 1), *line, *save = NULL;
	size_t n = outq_copy(q, text, q->bytes);

	outq_consume(q, n);
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "[system] ", 9))
			line += 9;
		if (failed && !strncmp(line, "error: ", 7))
			line += 7;
		if (out.len)
			sb_puts(&out, "\n");
		sb_puts(&out, line);
	}
	free(text);
	return sb_detach(&out, NULL);
}

static void api_idle(void *conn)
{
	struct api_sess *as = conn;
	struct http_conn *hc = as->waiting;
	int err = session_last_error(as->s);
	char *msg;

	if (!hc)
		return;
	as->waiting = NULL;
	hc->sess_key = 0;
	msg = collect_replies(as->s, err != 0);
	answer(hc, 200, json_pack("{sbss}", "success", !err, "message", msg));
	free(msg);
}

static void api_posted(void *conn, uint64_t token, int err, int64_t id,
		       int64_t seq)
{
	struct api_sess *as = conn;
	struct http_conn *hc = idmap_get(&as->hs->pending, token);

	if (!hc)
		return;		/* the client went away */
	unpark(as->hs, hc);
	if (err == BD_ELOST)
		answer_error(hc, 503, "database connection lost; the message may not have been stored");
	else if (err == BD_ENOENT)
		answer_error(hc, 404, "room no longer exists");
	else if (err)
		answer_error(hc, 503, "message not sent (database unavailable)");
	else
		answer(hc, 200, json_pack("{sbsIsI}", "success", 1,
					  "message_id", (json_int_t)id,
					  "seq", (json_int_t)seq));
}

static const struct chat_sink_ops api_sink = {
	.wake = api_wake,
	.close = api_close,
	.throttle = api_throttle,
	.idle = api_idle,
	.posted = api_posted,
};

/* This instance's copy of a stored session, made or brought up to date;
 * NULL when the copy here is on its way out with the session (/quit). */
static struct api_sess *sess_sync(struct http_state *hs, const char *id,
				  const struct stored_session *ss)
{
	struct api_sess *as = idmap_get(&hs->by_db, (uint64_t)ss->id);

	if (as && as->closing) {
		if (as->end || session_is_closing(as->s))
			return NULL;
		/* Only being dropped here (a request raced it): keep it. */
		lws_sul_cancel(&as->sul_free);
		as->closing = false;
	}
	if (!as) {
		as = xcalloc(1, sizeof(*as));
		snprintf(as->id, sizeof(as->id), "%s", id);
		as->key = secret_key(id);
		as->db_id = ss->id;
		as->hs = hs;
		as->s = chat_session_open_api(hs->chat, &api_sink, as, ss->id);
		idmap_put(&hs->sessions, as->key, as);
		idmap_put(&hs->by_db, (uint64_t)as->db_id, as);
		as->next = hs->first;
		if (hs->first)
			hs->first->prev = as;
		hs->first = as;
	}
	as->last_used = now_us();
	chat_session_sync(hs->chat, as->s, ss->uid, ss->nick, ss->room,
			  ss->rooms, ss->nrooms);
	return as;
}

/* The session ended elsewhere, expired, or is unknown: drop the copy. */
static void sess_gone(void *arg, int64_t id)
{
	struct http_state *hs = arg;
	struct api_sess *as = idmap_get(&hs->by_db, (uint64_t)id);

	if (!as || as->closing)
		return;
	log_info("api session %" PRId64 " (%s): ended; closing %d stream(s) here",
		 as->db_id, session_nick(as->s), as->nstreams);
	sess_close(as, false);
}

/* Runs one command line for a request; the answer comes from api_idle. */
static void run_command(struct http_state *hs, struct http_conn *hc,
			struct api_sess *as, const char *line)
{
	session_clear_error(as->s);
	free(collect_replies(as->s, false));	/* drop anything stale */
	as->waiting = hc;
	hc->sess_key = as->key;
	chat_session_input(hs->chat, as->s, line, strlen(line));
}

/* Request handlers (JSON bodies) */

static const char *get_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void keep_text(struct http_conn *hc, const char *text, size_t len)
{
	free(hc->text);
	hc->text = xmemdup(text, len);
	hc->text_len = len;
}

static void opened(void *arg, uint64_t token, int err,
		   const struct stored_session *ss)
{
	struct http_state *hs = arg;
	struct http_conn *hc = idmap_get(&hs->pending, token);
	struct api_sess *as;

	if (!hc)
		return;		/* the client went away; the session expires */
	unpark(hs, hc);
	if (err == BD_ETAKEN) {
		char why[96];

		snprintf(why, sizeof(why), "nickname %s is taken", hc->room);
		answer_error(hc, 409, why);
		return;
	}
	if (err) {
		answer_error(hc, 503, "database unavailable");
		return;
	}
	as = sess_sync(hs, hc->secret, ss);	/* a new one: never NULL */
	answer(hc, 200, json_pack("{sssIss}", "session_id", as->id,
				  "user_id", (json_int_t)ss->uid,
				  "nickname", ss->nick));
}

static void handle_connect(struct http_state *hs, struct http_conn *hc,
			   json_t *req)
{
	const char *nick = get_str(req, "nickname");
	unsigned char rnd[16];
	char secret[33];

	if (!nick) {
		answer_error(hc, 400, "missing string field: nickname");
		return;
	}
	if (!name_is_valid_nick(nick)) {
		answer_error(hc, 400, "invalid nickname (1-32 letters, digits, _ or -)");
		return;
	}
	do {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			log_error("getrandom failed: no session");
			answer_error(hc, 500, "cannot create a session");
			return;
		}
		for (int i = 0; i < 16; i++)
			snprintf(secret + 2 * i, 3, "%02x", rnd[i]);
	} while (!secret_ok(secret));
	memcpy(hc->secret, secret, sizeof(hc->secret));
	snprintf(hc->room, sizeof(hc->room), "%s", nick);
	park(hs, hc);
	if (store_session_open(hs->store, secret, nick, opened, hs,
			       hc->token)) {
		unpark(hs, hc);
		answer_error(hc, 503, "database unavailable");
	}
}

static void ended(void *arg, uint64_t token, int err,
		  const struct stored_session *ss)
{
	struct http_state *hs = arg;
	struct http_conn *hc = idmap_get(&hs->pending, token);

	(void)ss;
	if (!hc)
		return;
	unpark(hs, hc);
	if (err == BD_ENOENT)
		answer_error(hc, 404, "unknown session");
	else if (err)
		answer_error(hc, 503, "database unavailable");
	else
		answer(hc, 200, json_pack("{sb}", "success", 1));
}

static void post_message(struct http_state *hs, struct http_conn *hc,
			 struct api_sess *as)
{
	int err;

	park(hs, hc);
	err = chat_session_post(hs->chat, as->s, hc->room, hc->text,
				hc->text_len, hc->token);
	if (!err)
		return;		/* api_posted() answers */
	unpark(hs, hc);
	switch (err) {
	case BD_EPERM:
		answer_error(hc, 403, "not a member of that room");
		break;
	case BD_EUTF8:
		answer_error(hc, 400, "invalid UTF-8");
		break;
	case BD_EINVAL:
		answer_error(hc, 400, "empty message");
		break;
	case BD_ETOOLONG:
		answer_error(hc, 400, "message too long");
		break;
	default:
		answer_error(hc, 503, "message not sent (database unavailable)");
	}
}

/* The request's session as the database has it now: carry on with the
 * request. */
static void resumed(void *arg, uint64_t token, int err,
		    const struct stored_session *ss)
{
	struct http_state *hs = arg;
	struct http_conn *hc = idmap_get(&hs->pending, token);
	struct api_sess *as;

	if (!hc)
		return;		/* the client went away */
	unpark(hs, hc);
	if (err == BD_ENOENT) {
		as = sess_local(hs, hc->secret);
		if (as)
			sess_gone(hs, as->db_id);
		answer_error(hc, 404, "unknown session");
		return;
	}
	if (err) {
		answer_error(hc, 503, "database unavailable");
		return;
	}
	as = sess_sync(hs, hc->secret, ss);
	if (!as) {
		answer_error(hc, 404, "unknown session");
		return;
	}
	switch (hc->route) {
	case R_COMMAND:
		if (as->waiting) {
			answer_error(hc, 409, "another command of this session is running");
			return;
		}
		run_command(hs, hc, as, hc->text);
		break;
	case R_MESSAGE:
		post_message(hs, hc, as);
		break;
	case R_DISCONNECT:
		sess_close(as, false);
		park(hs, hc);
		if (store_session_end(hs->store, as->db_id, ended, hs,
				      hc->token)) {
			unpark(hs, hc);
			answer_error(hc, 503, "database unavailable");
		}
		break;
	case R_STREAM_OPEN:
		hc->sess_key = as->key;
		lws_callback_on_writable(hc->wsi);
		break;
	default:
		answer_error(hc, 500, "internal error");
	}
}

/* Looks the session up in the database, then resumed() carries on with
 * the request's arguments kept in hc. */
static void resume(struct http_state *hs, struct http_conn *hc,
		   const char *sid)
{
	if (!secret_ok(sid)) {
		answer_error(hc, 404, "unknown session");
		return;
	}
	memcpy(hc->secret, sid, sizeof(hc->secret));
	park(hs, hc);
	if (store_session_resume(hs->store, sid, hs->idle_s, resumed, hs,
				 hc->token)) {
		unpark(hs, hc);
		answer_error(hc, 503, "database unavailable");
	}
}

static void handle_command(struct http_state *hs, struct http_conn *hc,
			   json_t *req)
{
	const char *cmd = get_str(req, "command");
	const char *sid = get_str(req, "session_id");
	struct api_sess *as;

	if (!sid || !cmd) {
		answer_error(hc, 400, "missing string fields: session_id, command");
		return;
	}
	if (cmd[0] != '/') {
		answer_error(hc, 400, "a command starts with /; send messages to /api/message");
		return;
	}
	if (strlen(cmd) > CHAT_MAX_LINE) {
		answer_error(hc, 400, "command too long");
		return;
	}
	/* Known here without asking the database (which may be what the
	 * running command waits for). */
	as = secret_ok(sid) ? sess_local(hs, sid) : NULL;
	if (as && as->waiting) {
		answer_error(hc, 409, "another command of this session is running");
		return;
	}
	keep_text(hc, cmd, strlen(cmd));
	resume(hs, hc, sid);
}

static void handle_message(struct http_state *hs, struct http_conn *hc,
			   json_t *req)
{
	const char *room = get_str(req, "room");
	json_t *content = json_object_get(req, "content");

	if (!get_str(req, "session_id") || !room || !json_is_string(content)) {
		answer_error(hc, 400, "missing string fields: session_id, room, content");
		return;
	}
	/* Too long for a room name: no member of it (403 once resumed). */
	snprintf(hc->room, sizeof(hc->room), "%s",
		 strlen(room) < sizeof(hc->room) ? room : "");
	keep_text(hc, json_string_value(content),
		  json_string_length(content));
	resume(hs, hc, get_str(req, "session_id"));
}

static void handle_disconnect(struct http_state *hs, struct http_conn *hc,
			      json_t *req)
{
	if (!get_str(req, "session_id")) {
		answer_error(hc, 400, "missing string field: session_id");
		return;
	}
	resume(hs, hc, get_str(req, "session_id"));
}

static void handle_body(struct http_state *hs, struct http_conn *hc)
{
	json_error_t jerr;
	json_t *req;

	if (hc->body_too_large) {
		hc->close_after = true;
		answer_error(hc, 413, "request body too large (max 16384 bytes)");
		return;
	}
	req = json_loadb(hc->body.buf ? hc->body.buf : "", hc->body.len, 0,
			 &jerr);
	if (!json_is_object(req)) {
		answer_error(hc, 400, req ? "expected a JSON object"
					  : "malformed JSON");
		json_decref(req);
		return;
	}
	switch (hc->route) {
	case R_CONNECT:
		handle_connect(hs, hc, req);
		break;
	case R_COMMAND:
		handle_command(hs, hc, req);
		break;
	case R_MESSAGE:
		handle_message(hs, hc, req);
		break;
	case R_DISCONNECT:
		handle_disconnect(hs, hc, req);
		break;
	default:
		answer_error(hc, 404, "not found");
	}
	json_decref(req);
}

/* GET handlers */

static void handle_health(struct lws *wsi, struct http_conn *hc)
{
	struct net_ctx *nc = net_ctx_of(wsi);
	const struct chat_stats *cs = chat_get_stats(nc->chat);
	bool ok = nc->db_ok(nc->db_arg);

	answer(hc, ok ? 200 : 503,
	       json_pack("{sssssssIsIsIsIsf}",
			 "status", ok ? "healthy" : "unhealthy",
			 "db", ok ? "connected" : "disconnected",
			 "instance_id", nc->instance_id,
			 "sessions", (json_int_t)chat_session_count(nc->chat),
			 "streams", (json_int_t)chat_stream_count(nc->chat),
			 "history_hits", (json_int_t)cs->history_hits,
			 "history_misses", (json_int_t)cs->history_misses,
			 "notify_queue_usage", nc->db_queue(nc->db_arg)));
}

static void api_rooms(void *arg, uint64_t token, int err,
		      const struct chat_room_info *rooms, size_t n)
{
	struct http_state *hs = arg;
	struct http_conn *hc = idmap_get(&hs->pending, token);
	json_t *list;
	bool found = false;

	if (!hc)
		return;
	unpark(hs, hc);
	if (err) {
		answer_error(hc, 503, "database unavailable");
		return;
	}
	if (hc->route == R_STREAM_CHECK) {
		for (size_t i = 0; i < n && !found; i++)
			found = !strcmp(rooms[i].name, hc->room);
		if (found)
			answer_error(hc, 403, "not a member of that room");
		else
			answer_error(hc, 404, "no such room");
		return;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{sssIsI}",
			"name", rooms[i].name,
			"members", (json_int_t)rooms[i].members,
			"online", (json_int_t)rooms[i].online));
	answer(hc, 200, json_pack("{so}", "rooms", list));
}

static const struct chat_api_ops api_ops = { .rooms = api_rooms };

static void list_rooms(struct http_state *hs, struct http_conn *hc)
{
	park(hs, hc);
	if (chat_list_rooms(hs->chat, hc->token)) {
		unpark(hs, hc);
		answer_error(hc, 503, "database unavailable");
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

static const struct chat_sink_ops sse_sink = {
	.wake = sse_wake,
	.close = sse_close,
	.throttle = api_throttle,
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
	if (!secret_ok(sid)) {
		answer_error(hc, 404, "unknown session");
		return;
	}
	if (!name_is_valid_room(room)) {
		answer_error(hc, 404, "no such room");
		return;
	}
	snprintf(hc->room, sizeof(hc->room), "%.50s", room);
	if (lws_hdr_custom_copy(wsi, lei, sizeof(lei), "last-event-id:",
				14) > 0)
		hc->last_seq = parse_seq(lei);
	else if ((arg = lws_get_urlarg_by_name(wsi, "last_event_id=", lbuf,
					       sizeof(lbuf))))
		hc->last_seq = parse_seq(arg);
	resume(hs, hc, sid);
}

static int start_stream(struct http_state *hs, struct lws *wsi,
			struct http_conn *hc)
{
	struct api_sess *as = idmap_get(&hs->sessions, hc->sess_key);
	int err;

	if (!as || as->closing) {
		hc->sess_key = 0;
		answer_error(hc, 404, "unknown session");
		return 0;
	}
	hc->st = chat_stream_open(hs->chat, as->s, hc->room, hc->last_seq,
				  &sse_sink, hc, &err);
	if (!hc->st) {
		hc->sess_key = 0;
		if (chat_room_known(hs->chat, hc->room)) {
			answer_error(hc, 403, "not a member of that room");
			return 0;
		}
		/* Unknown here: ask the database whether it exists. */
		hc->route = R_STREAM_CHECK;
		list_rooms(hs, hc);
		return 0;
	}
	hc->route = R_STREAM;
	as->nstreams++;
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
			answer_error(hc, 405, "method not allowed");
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
			answer_error(hc, 405, "method not allowed");
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
			answer_error(hc, 415, "Content-Type must be application/json");
			return 0;
		}
		if (lws_hdr_copy(wsi, clen, sizeof(clen),
				 WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
		    strtoull(clen, NULL, 10) > BODY_MAX) {
			hc->route = R_NONE;
			hc->close_after = true;
			answer_error(hc, 413, "request body too large (max 16384 bytes)");
		}
		return 0;	/* the body follows */
	}
	hc->close_after = post;
	answer_error(hc, 404, "not found");
	return 0;
}

static void conn_cleanup(struct lws *wsi, struct http_conn *hc)
{
	struct http_state *hs = state_of(wsi);
	struct api_sess *as;

	if (!hs)
		return;
	unpark(hs, hc);
	as = hc->sess_key ? idmap_get(&hs->sessions, hc->sess_key) : NULL;
	if (as && as->waiting == hc)
		as->waiting = NULL;
	if (hc->st) {
		sse_reaper_untrack(wsi);
		chat_stream_closed(hs->chat, hc->st);
		hc->st = NULL;
		if (as) {
			as->nstreams--;
			as->last_used = now_us();
		}
	}
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
			answer_error(hc, 405, "method not allowed");
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

/* Timers: local copies, the sessions' tick, heartbeat */

/* Drops copies nobody used for a while (all of them at shutdown); the
 * sessions stay in the database. */
static void sweep_cb(lws_sorted_usec_list_t *sul)
{
	struct http_state *hs = lws_container_of(sul, struct http_state,
						 sul_sweep);
	lws_usec_t now = now_us();

	for (struct api_sess *as = hs->first; as; as = as->next) {
		if (as->closing || as->nstreams || as->waiting)
			continue;
		if (hs->stopping || now - as->last_used > hs->idle_timeout) {
			log_debug("api session %" PRId64 " (%s): copy dropped here",
				  as->db_id, session_nick(as->s));
			sess_close(as, false);
		}
	}
	lws_sul_schedule(hs->ctx, 0, &hs->sul_sweep, sweep_cb,
			 hs->stopping ? 50 * LWS_US_PER_MS : LWS_US_PER_SEC);
}

/* A streamed session as the tick found it: gone (drop the copy), or its
 * state now, which the copy takes unless a command of it is running here
 * (its outcome brings what it changed). This catches what a lost
 * notification would have told, e.g. a /leave through another instance
 * while this one's LISTEN connection was down. */
static void tick_each(void *arg, int64_t id, const struct stored_session *ss)
{
	struct http_state *hs = arg;
	struct api_sess *as = idmap_get(&hs->by_db, (uint64_t)id);

	if (!as || as->closing)
		return;
	if (!ss) {
		sess_gone(hs, id);
		return;
	}
	if (!as->waiting)
		chat_session_sync(hs->chat, as->s, ss->uid, ss->nick, ss->room,
				  ss->rooms, ss->nrooms);
}

/* Keeps the sessions this instance streams to alive in the database,
 * ends idle ones (any instance may) and refreshes the copies of the
 * streamed ones (tick_each). */
static void tick_cb(lws_sorted_usec_list_t *sul)
{
	struct http_state *hs = lws_container_of(sul, struct http_state,
						 sul_tick);
	int64_t *keep = xcalloc(hs->by_db.count + 1, sizeof(*keep));
	size_t n = 0;

	for (struct api_sess *as = hs->first; as; as = as->next)
		if (!as->closing && as->nstreams)
			keep[n++] = as->db_id;
	if (!hs->stopping)
		store_session_tick(hs->store, keep, n, hs->idle_s, tick_each,
				   hs);
	free(keep);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_tick, tick_cb,
			 hs->idle_timeout / 3);
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
	store_on_session_end(st, sess_gone, hs);
	sse_reaper_init();
	lws_sul_schedule(ctx, 0, &hs->sul_sweep, sweep_cb, LWS_US_PER_SEC);
	lws_sul_schedule(ctx, 0, &hs->sul_tick, tick_cb,
			 hs->idle_timeout / 3);
	lws_sul_schedule(ctx, 0, &hs->sul_heartbeat, heartbeat_cb,
			 hs->heartbeat);
	return hs;
}

void http_state_stop(struct http_state *hs)
{
	hs->stopping = true;
	lws_sul_schedule(hs->ctx, 0, &hs->sul_sweep, sweep_cb, 1);
}

void http_state_free(struct http_state *hs)
{
	if (!hs)
		return;
	lws_sul_cancel(&hs->sul_sweep);
	lws_sul_cancel(&hs->sul_tick);
	lws_sul_cancel(&hs->sul_heartbeat);
	while (hs->first) {
		struct api_sess *as = hs->first;

		lws_sul_cancel(&as->sul_free);
		hs->first = as->next;
		chat_session_closed(hs->chat, as->s);
		free(as);
	}
	idmap_fini(&hs->sessions);
	idmap_fini(&hs->by_db);
	idmap_fini(&hs->pending);
	sse_reaper_fini();
	free(hs);
}
