/*
 * HTTP API sessions as this instance holds them. The sessions live in the
 * database (store/sessions.h): every request first resumes its session
 * there, which brings this instance's copy (struct api_sess, around a core
 * session of kind SESSION_API) up to date with what other instances did,
 * then carries on with what the request asked. Copies nobody uses are
 * dropped; a session that ends anywhere is dropped everywhere (NOTIFY
 * session_end), closing its streams; a tick keeps streamed sessions alive
 * and their copies current.
 */
#include "net/http_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "store/sessions.h"
#include "util/xalloc.h"

/* This instance's copy of a stored API session, around a core session. */
struct api_sess {
	char id[33];			/* the client's secret: 128 bits, hex */
	uint64_t key;			/* first 64 bits: the map key */
	int64_t db_id;			/* api_sessions.id */
	struct session *s;
	struct http_conn *waiting;	/* request awaiting a command */
	int nstreams;			/* open SSE streams */
	int64_t rooms_version;		/* of the memberships synced, or -1 */
	lws_usec_t last_used;		/* unused copies are dropped */
	bool closing;			/* dropped, or ended */
	bool end;			/* end it in the database too (/quit) */
	struct api_sess *prev, *next;
	struct http_state *hs;
	lws_sorted_usec_list_t sul_free;	/* frees it off the stack */
};

/* Copies */

static void api_idle(void *conn);

static char *collect_replies(struct session *s, bool failed);

/* /quit's answer, once its session is gone from the database (a request
 * that follows it, on any instance, finds no session). */
static void quit_ended(void *arg, uint64_t token, int err,
		       const struct stored_session *ss)
{
	struct http_state *hs = arg;
	struct http_conn *hc = http_claim(hs, token);

	(void)ss;
	if (err && err != BD_ENOENT)
		log_warn("api session: /quit's delete failed (%s); it expires",
			 bd_strerror(err));
	if (!hc)
		return;
	http_answer(hc, 200, json_pack("{sbss}", "success", 1, "message",
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
		http_park(hs, hc);
	} else {
		/* A closing session is never idle for the core: answer. */
		api_idle(as);
	}
	chat_session_closed(hs->chat, as->s);
	if (as->end && store_session_end(hs->store, as->db_id,
					 hc ? quit_ended : NULL, hs,
					 hc ? hc->token : 0)) {
		log_warn("api session %" PRId64 ": not ended (database unavailable); it expires",
			 as->db_id);
		if (hc)
			quit_ended(hs, hc->token, 0, NULL);
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
 * never 0: apisess_connect() never makes such a secret). */
bool apisess_secret_ok(const char *id)
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
	if (as->closing) {
		/* Ended (e.g. /api/disconnect) while the command ran: what
		 * it did is not reported as a success. */
		http_answer_error(hc, 404, "session ended while the command ran");
		return;
	}
	msg = collect_replies(as->s, err != 0);
	http_answer(hc, 200, json_pack("{sbss}", "success", !err, "message",
				       msg));
	free(msg);
}

static void api_posted(void *conn, uint64_t token, int err, int64_t id,
		       int64_t seq)
{
	struct api_sess *as = conn;
	struct http_conn *hc = http_claim(as->hs, token);

	if (!hc)
		return;		/* the client went away */
	if (err == BD_ELOST)
		http_answer_error(hc, 503, "database connection lost; the message may not have been stored");
	else if (err == BD_ENOENT)
		http_answer_error(hc, 404, "room no longer exists");
	else if (err)
		http_answer_error(hc, 503, "message not sent (database unavailable)");
	else
		http_answer(hc, 200, json_pack("{sbsIsI}", "success", 1,
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
		as->rooms_version = -1;
		as->s = chat_session_open_api(hs->chat, &api_sink, as, ss->id);
		idmap_put(&hs->sessions, as->key, as);
		idmap_put(&hs->by_db, (uint64_t)as->db_id, as);
		as->next = hs->first;
		if (hs->first)
			hs->first->prev = as;
		hs->first = as;
	}
	as->last_used = http_now_us();
	if (ss->rooms_unchanged) {
		chat_session_sync_head(hs->chat, as->s, ss->uid, ss->nick,
				       ss->room);
		return as;
	}
	chat_session_sync(hs->chat, as->s, ss->uid, ss->nick, ss->room,
			  ss->rooms, ss->nrooms);
	as->rooms_version = ss->rooms_version;
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

/* The endpoints */

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
	struct http_conn *hc = http_claim(hs, token);
	struct api_sess *as;

	if (!hc)
		return;		/* the client went away; the session expires */
	if (err == BD_ETAKEN) {
		char why[96];

		snprintf(why, sizeof(why), "nickname %s is taken", hc->room);
		http_answer_error(hc, 409, why);
		return;
	}
	if (err) {
		http_answer_error(hc, 503, "database unavailable");
		return;
	}
	as = sess_sync(hs, hc->secret, ss);	/* a new one: never NULL */
	http_answer(hc, 200, json_pack("{sssIss}", "session_id", as->id,
				       "user_id", (json_int_t)ss->uid,
				       "nickname", ss->nick));
}

void apisess_connect(struct http_state *hs, struct http_conn *hc,
			   json_t *req)
{
	const char *nick = get_str(req, "nickname");
	unsigned char rnd[16];
	char secret[33];
	int err;

	if (!nick) {
		http_answer_error(hc, 400, "missing string field: nickname");
		return;
	}
	if (!name_is_valid_nick(nick)) {
		http_answer_error(hc, 400, "invalid nickname (1-32 letters, digits, _ or -)");
		return;
	}
	do {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			log_error("getrandom failed: no session");
			http_answer_error(hc, 500, "cannot create a session");
			return;
		}
		for (int i = 0; i < 16; i++)
			snprintf(secret + 2 * i, 3, "%02x", rnd[i]);
	} while (!apisess_secret_ok(secret));
	memcpy(hc->secret, secret, sizeof(hc->secret));
	snprintf(hc->room, sizeof(hc->room), "%s", nick);
	http_park(hs, hc);
	err = store_session_open(hs->store, secret, nick, opened, hs,
				 hc->token);
	if (err) {
		http_unpark(hs, hc);
		http_answer_store_error(hc, err);
	}
}

static void ended(void *arg, uint64_t token, int err,
		  const struct stored_session *ss)
{
	struct http_state *hs = arg;
	struct http_conn *hc = http_claim(hs, token);

	(void)ss;
	if (!hc)
		return;
	if (err == BD_ENOENT)
		http_answer_error(hc, 404, "unknown session");
	else if (err)
		http_answer_error(hc, 503, "database unavailable");
	else
		http_answer(hc, 200, json_pack("{sb}", "success", 1));
}

static void post_message(struct http_state *hs, struct http_conn *hc,
			 struct api_sess *as)
{
	int err;

	http_park(hs, hc);
	err = chat_session_post(hs->chat, as->s, hc->room, hc->text,
				hc->text_len, hc->token);
	if (!err)
		return;		/* api_posted() answers */
	http_unpark(hs, hc);
	switch (err) {
	case BD_EPERM:
		/* 403 for a room that exists, 404 for one that does not. */
		if (chat_room_known(hs->chat, hc->room))
			http_answer_error(hc, 403, "not a member of that room");
		else
			rooms_member_check(hs, hc);
		break;
	case BD_EUTF8:
		http_answer_error(hc, 400, "invalid UTF-8");
		break;
	case BD_EINVAL:
		http_answer_error(hc, 400, "empty message");
		break;
	case BD_ETOOLONG:
		http_answer_error(hc, 400, "message too long");
		break;
	case BD_EBUSY:
		http_answer_error(hc, 503, "message not sent (server busy, try again)");
		break;
	default:
		http_answer_error(hc, 503, "message not sent (database unavailable)");
	}
}

static void resume(struct http_state *hs, struct http_conn *hc,
		   int64_t known);

/* The request's session as the database has it now: carry on with the
 * request. */
static void resumed(void *arg, uint64_t token, int err,
		    const struct stored_session *ss)
{
	struct http_state *hs = arg;
	struct http_conn *hc = http_claim(hs, token);
	struct api_sess *as;

	if (!hc)
		return;		/* the client went away */
	if (err == BD_ENOENT) {
		as = sess_local(hs, hc->secret);
		if (as)
			sess_gone(hs, as->db_id);
		http_answer_error(hc, 404, "unknown session");
		return;
	}
	if (err) {
		http_answer_error(hc, 503, "database unavailable");
		return;
	}
	as = idmap_get(&hs->by_db, (uint64_t)ss->id);
	if (ss->rooms_unchanged &&
	    (!as || as->rooms_version != ss->rooms_version)) {
		/* The copy that knew the memberships went meanwhile. */
		resume(hs, hc, -1);
		return;
	}
	as = sess_sync(hs, hc->secret, ss);
	if (!as) {
		http_answer_error(hc, 404, "unknown session");
		return;
	}
	switch (hc->route) {
	case R_COMMAND:
		if (as->waiting) {
			http_answer_error(hc, 409, "another command of this session is running");
			return;
		}
		run_command(hs, hc, as, hc->text);
		break;
	case R_MESSAGE:
		post_message(hs, hc, as);
		break;
	case R_DISCONNECT:
		sess_close(as, false);
		http_park(hs, hc);
		if (store_session_end(hs->store, as->db_id, ended, hs,
				      hc->token)) {
			http_unpark(hs, hc);
			http_answer_error(hc, 503, "database unavailable");
		}
		break;
	case R_STREAM_OPEN:
		hc->sess_key = as->key;
		lws_callback_on_writable(hc->wsi);
		break;
	default:
		http_answer_error(hc, 500, "internal error");
	}
}

/* Looks the session up in the database, then resumed() carries on with
 * the request's arguments kept in hc. */
/* Looks hc->secret's session up; its memberships come only when their
 * version is not `known`. */
static void resume(struct http_state *hs, struct http_conn *hc,
		   int64_t known)
{
	int err;

	http_park(hs, hc);
	err = store_session_resume(hs->store, hc->secret, hs->idle_s, known,
				   resumed, hs, hc->token);
	if (err) {
		http_unpark(hs, hc);
		http_answer_store_error(hc, err);
	}
}

void apisess_resume(struct http_state *hs, struct http_conn *hc,
		    const char *sid)
{
	struct api_sess *as;

	if (!apisess_secret_ok(sid)) {
		http_answer_error(hc, 404, "unknown session");
		return;
	}
	memcpy(hc->secret, sid, sizeof(hc->secret));
	as = sess_local(hs, sid);
	resume(hs, hc, as ? as->rooms_version : -1);
}

void apisess_command(struct http_state *hs, struct http_conn *hc,
			   json_t *req)
{
	const char *cmd = get_str(req, "command");
	const char *sid = get_str(req, "session_id");
	struct api_sess *as;

	if (!sid || !cmd) {
		http_answer_error(hc, 400, "missing string fields: session_id, command");
		return;
	}
	if (cmd[0] != '/') {
		http_answer_error(hc, 400, "a command starts with /; send messages to /api/message");
		return;
	}
	if (strlen(cmd) > CHAT_MAX_LINE) {
		http_answer_error(hc, 400, "command too long");
		return;
	}
	/* Known here without asking the database (which may be what the
	 * running command waits for). */
	as = apisess_secret_ok(sid) ? sess_local(hs, sid) : NULL;
	if (as && as->waiting) {
		http_answer_error(hc, 409, "another command of this session is running");
		return;
	}
	keep_text(hc, cmd, strlen(cmd));
	apisess_resume(hs, hc, sid);
}

void apisess_message(struct http_state *hs, struct http_conn *hc,
			   json_t *req)
{
	const char *room = get_str(req, "room");
	json_t *content = json_object_get(req, "content");

	if (!get_str(req, "session_id") || !room || !json_is_string(content)) {
		http_answer_error(hc, 400, "missing string fields: session_id, room, content");
		return;
	}
	/* Too long for a room name: no member of it (403 once resumed). */
	snprintf(hc->room, sizeof(hc->room), "%s",
		 strlen(room) < sizeof(hc->room) ? room : "");
	keep_text(hc, json_string_value(content),
		  json_string_length(content));
	apisess_resume(hs, hc, get_str(req, "session_id"));
}

void apisess_disconnect(struct http_state *hs, struct http_conn *hc,
			      json_t *req)
{
	if (!get_str(req, "session_id")) {
		http_answer_error(hc, 400, "missing string field: session_id");
		return;
	}
	apisess_resume(hs, hc, get_str(req, "session_id"));
}

/* Timers: unused copies, the sessions' tick */

/* Drops copies nobody used for a while (all of them at shutdown); the
 * sessions stay in the database. */
static void sweep_cb(lws_sorted_usec_list_t *sul)
{
	struct http_state *hs = lws_container_of(sul, struct http_state,
						 sul_sweep);
	lws_usec_t now = http_now_us();

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

/* Lifetime, and what http.c asks of the copies */

/* A session lookup is sent only while its request still waits. */
static bool resume_wanted(void *arg, uint64_t token)
{
	struct http_state *hs = arg;

	return idmap_get(&hs->pending, token) != NULL;
}

void apisess_start(struct http_state *hs)
{
	store_on_session_end(hs->store, sess_gone, hs);
	store_session_set_wanted(hs->store, resume_wanted);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_sweep, sweep_cb, LWS_US_PER_SEC);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_tick, tick_cb,
			 hs->idle_timeout / 3);
}

void apisess_stop(struct http_state *hs)
{
	lws_sul_schedule(hs->ctx, 0, &hs->sul_sweep, sweep_cb, 1);
}

void apisess_free_all(struct http_state *hs)
{
	lws_sul_cancel(&hs->sul_sweep);
	lws_sul_cancel(&hs->sul_tick);
	while (hs->first) {
		struct api_sess *as = hs->first;

		lws_sul_cancel(&as->sul_free);
		hs->first = as->next;
		chat_session_closed(hs->chat, as->s);
		free(as);
	}
}

struct session *apisess_stream_session(struct http_state *hs, uint64_t key)
{
	struct api_sess *as = key ? idmap_get(&hs->sessions, key) : NULL;

	return as && !as->closing ? as->s : NULL;
}

void apisess_stream_opened(struct http_state *hs, uint64_t key)
{
	struct api_sess *as = idmap_get(&hs->sessions, key);

	if (as)
		as->nstreams++;
}

void apisess_conn_closed(struct http_state *hs, struct http_conn *hc,
			 bool had_stream)
{
	struct api_sess *as = hc->sess_key ?
			      idmap_get(&hs->sessions, hc->sess_key) : NULL;

	if (!as)
		return;
	if (as->waiting == hc)
		as->waiting = NULL;
	if (had_stream) {
		as->nstreams--;
		as->last_used = http_now_us();
	}
}
