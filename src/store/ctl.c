/*
 * Control operations (presence rows, /nick, /join, /create, /leave, HTTP
 * session open, resume and end) batched like messages: every one that
 * arrives while a statement runs joins the open batch, sent as one
 * bd_ctl() call (one transaction, one WAL flush) whose rows are the items'
 * outcomes, in order. Reads, messages, ticks and heartbeats are not here.
 */
#include "store/store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api_session.h"
#include "log.h"
#include "util/jsonw.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

/*
 * Items per bd_ctl() call. A batch is one transaction: bigger ones cost
 * fewer round trips and flushes but hold their row locks, and everything
 * queued behind them, longer. 1,000 joins of one room ran in about 0.1 s
 * (BENCHMARKS.md, "Control plane batched").
 */
#define CTL_BATCH_MAX 1000

/* One queued operation; its parameters are already JSON in the batch. */
struct ctl_item {
	enum ctl_kind kind;
	bool dropped;		/* not sent: nobody waits for it */
	uint64_t sid;		/* the session that asked, or 0 */
	uint64_t req;		/* the API request, or 0 */
	char token[40];		/* session open and resume: the secret */
	size_t off, len;	/* its JSON object in the batch's items */
};

/* Operations waiting for one bd_ctl() statement. */
struct ctl_batch {
	struct store *st;
	struct ctl_item *items;
	size_t n, cap;
	unsigned ncharged;	/* items charged to the queue limit */
	struct strbuf objs;	/* the items' JSON objects, back to back */
	char *json;		/* the array sent, built when sealed */
	const char *values[2];	/* the statement's parameters */
};

/* Columns of bd_ctl()'s rows. */
enum {
	COL_I, COL_ERR, COL_MSG, COL_UID, COL_ROOM_ID, COL_NAME, COL_ROOM,
	COL_ROOMS, COL_SESSION, COL_VERSION,
};

static const char *const ctl_what[] = {
	[CTL_PRESENCE_ADD] = "presence add",
	[CTL_PRESENCE_DEL] = "presence del",
	[CTL_NICK] = "/nick",
	[CTL_JOIN] = "/join",
	[CTL_CREATE] = "/create",
	[CTL_LEAVE] = "/leave",
	[CTL_SESSION_OPEN] = "session open",
	[CTL_SESSION_RESUME] = "session resume",
	[CTL_SESSION_END] = "session end",
};

static const char *const ctl_code[] = {
	[CTL_PRESENCE_ADD] = "pa", [CTL_PRESENCE_DEL] = "pd",
	[CTL_NICK] = "n",	   [CTL_JOIN] = "j",
	[CTL_CREATE] = "c",	   [CTL_LEAVE] = "l",
	[CTL_SESSION_OPEN] = "so", [CTL_SESSION_RESUME] = "sr",
	[CTL_SESSION_END] = "se",
};

/* The requests of users count toward db_queue_limit, as they did when
 * each was a statement of its own; presence rows and session ends never
 * do. */
static bool ctl_is_user_request(enum ctl_kind k)
{
	return k != CTL_PRESENCE_ADD && k != CTL_PRESENCE_DEL &&
	       k != CTL_SESSION_END;
}

static void batch_free(struct ctl_batch *b)
{
	free(b->items);
	sb_fini(&b->objs);
	free(b->json);
	free(b);
}

/* ,"key":"v" when v is not NULL. */
static void put_str(struct strbuf *sb, const char *key, const char *v)
{
	if (!v)
		return;
	sb_appendf(sb, ",\"%s\":", key);
	jsonw_str(sb, v, strlen(v));
}

/* ,"key":v (when v is not 0, unless always). */
static void put_int(struct strbuf *sb, const char *key, int64_t v,
		    bool always)
{
	if (v || always)
		sb_appendf(sb, ",\"%s\":%" PRId64, key, v);
}

/* The item's JSON object (bd_ctl_item's members). */
static void put_item(struct strbuf *sb, const struct ctl_req *r)
{
	sb_appendf(sb, "{\"k\":\"%s\"", ctl_code[r->kind]);
	switch (r->kind) {
	case CTL_SESSION_OPEN:
		put_str(sb, "t", r->token);
		put_str(sb, "n", r->nick);
		break;
	case CTL_SESSION_RESUME:
		put_str(sb, "t", r->token);
		put_int(sb, "d", r->idle_s, true);
		put_int(sb, "v", r->known, true);
		break;
	case CTL_SESSION_END:
		put_int(sb, "e", r->session, true);
		break;
	default:
		put_int(sb, "s", (int64_t)r->sid, true);
		put_int(sb, "a", r->api_id, false);
		put_int(sb, "u", r->uid, false);
		put_str(sb, "o", r->old);
		put_str(sb, "n", r->nick);
		put_str(sb, "r", r->room);
		put_str(sb, "c", r->cur);
		put_int(sb, "i", r->room_id, false);
		put_int(sb, "m", r->max_rooms, false);
		break;
	}
	sb_puts(sb, "}");
}

/* Seals the batch: later operations start a new one. Session lookups
 * whose request nobody waits for any more are left out (their outcome is
 * BD_ECANCELED). */
static int ctl_build(void *arg, const char *const **values)
{
	struct ctl_batch *b = arg;
	struct store *st = b->st;
	struct strbuf sb = STRBUF_INIT;
	size_t sent = 0, dropped = 0;

	if (st->ctl_open == b)
		st->ctl_open = NULL;
	sb_puts(&sb, "[");
	for (size_t i = 0; i < b->n; i++) {
		struct ctl_item *it = &b->items[i];

		if (it->kind == CTL_SESSION_RESUME &&
		    !chat_api_wanted(st->chat, it->req)) {
			it->dropped = true;
			dropped++;
			continue;
		}
		if (sent++)
			sb_puts(&sb, ",");
		sb_append(&sb, b->objs.buf + it->off, it->len);
	}
	sb_puts(&sb, "]");
	b->json = sb_detach(&sb, NULL);
	if (dropped) {
		st->ctl_dropped += dropped;
		log_debug("db_dropped", LOG_U("requests", dropped),
			  LOG_U("total", st->ctl_dropped));
	}
	log_debug("db_ctl_batch", LOG_U("operations", sent));
	buckets_add(&st->ctl_batches, (double)sent);
	b->values[0] = st->instance_id;
	b->values[1] = b->json;
	*values = b->values;
	return 2;
}

/* An item's own outcome: 0, or the error its own statement would have
 * had. */
static int item_err(struct store *st, PGresult *res, int row,
		    enum ctl_kind kind)
{
	const char *state;

	if (PQgetisnull(res, row, COL_ERR))
		return 0;
	state = PQgetvalue(res, row, COL_ERR);
	if (!strcmp(state, "23505"))
		return BD_ETAKEN;
	if (!strcmp(state, "BD001"))
		return BD_EROOMSFULL;
	st->ctl_errors++;
	log_error("db_error", LOG_S("op", ctl_what[kind]),
		  LOG_S("reason", PQgetvalue(res, row, COL_MSG)),
		  LOG_S("sqlstate", state));
	return BD_EDB;
}

static const char *get_str(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* A stored session from a row; *refs and *rooms are the caller's. */
static void row_session(PGresult *res, int row, struct chat_stored_session *ss,
			struct chat_room_ref **refs, json_t **rooms)
{
	ss->id = store_get_i64(res, row, COL_SESSION);
	ss->uid = store_get_i64(res, row, COL_UID);
	ss->nick = PQgetvalue(res, row, COL_NAME);
	ss->room = get_str(res, row, COL_ROOM);
	ss->rooms_version = PQgetisnull(res, row, COL_VERSION) ? -1 :
			    store_get_i64(res, row, COL_VERSION);
	ss->rooms_unchanged = PQgetisnull(res, row, COL_ROOMS);
	if (ss->rooms_unchanged)
		return;
	*refs = store_room_refs(PQgetvalue(res, row, COL_ROOMS), rooms,
				&ss->nrooms);
	ss->rooms = *refs;
}

/* Hands one item's outcome to the chat: row `row` of res, or err (then
 * res is not read). */
static void item_done(struct store *st, const struct ctl_item *it,
		      PGresult *res, int row, int err)
{
	struct chat *c = st->chat;
	struct chat_stored_session ss = { 0 };
	struct chat_room_ref *refs = NULL;
	json_t *rooms = NULL;
	size_t n = 0;

	if (!err)
		err = item_err(st, res, row, it->kind);
	switch (it->kind) {
	case CTL_PRESENCE_ADD:
		chat_on_presence(c, it->sid, err);
		break;
	case CTL_PRESENCE_DEL:
		break;
	case CTL_NICK:
		if (!err)
			refs = store_room_refs(PQgetvalue(res, row, COL_ROOMS),
					       &rooms, &n);
		chat_on_nick(c, it->sid, err,
			     err ? 0 : store_get_i64(res, row, COL_UID),
			     err ? NULL : PQgetvalue(res, row, COL_NAME), refs,
			     n);
		break;
	case CTL_JOIN:
	case CTL_CREATE:
		chat_on_join(c, it->sid, err,
			     err ? 0 : store_get_i64(res, row, COL_UID),
			     err ? 0 : store_get_i64(res, row, COL_ROOM_ID),
			     err ? NULL : get_str(res, row, COL_NAME));
		break;
	case CTL_LEAVE:
		chat_on_leave(c, it->sid, err);
		break;
	case CTL_SESSION_OPEN:
	case CTL_SESSION_RESUME:
		if (!err && PQgetisnull(res, row, COL_SESSION))
			err = BD_ENOENT;
		if (!err)
			row_session(res, row, &ss, &refs, &rooms);
		if (it->kind == CTL_SESSION_OPEN)
			chat_on_session_opened(c, it->req, err, it->token,
					       err ? NULL : &ss);
		else
			chat_on_session_resumed(c, it->req, err, it->token,
						err ? NULL : &ss);
		break;
	case CTL_SESSION_END:
		if (!err && PQgetisnull(res, row, COL_SESSION))
			err = BD_ENOENT;
		chat_on_session_ended(c, it->req, err);
		break;
	}
	free(refs);
	json_decref(rooms);
}

static void ctl_done(void *arg, PGresult *res, int err)
{
	struct ctl_batch *b = arg;
	struct store *st = b->st;
	int nrows, row = 0;

	/* Given back first: outcomes may queue new requests. */
	pgconn_discharge(st->q, b->ncharged);
	/* The statement's own error (the connection, or the one item of a
	 * batch of one raising) is every item's, mapped as a statement of
	 * one operation always was. */
	err = store_result_err(res, err, "bd_ctl");
	nrows = err ? 0 : PQntuples(res);
	for (size_t i = 0; i < b->n; i++) {
		struct ctl_item *it = &b->items[i];

		if (it->dropped) {
			item_done(st, it, NULL, 0, BD_ECANCELED);
			continue;
		}
		/* Row k is the k-th item sent (i counts from 1). */
		if (!err && (row >= nrows ||
			     store_get_i64(res, row, COL_I) != row + 1)) {
			log_error("db_error", LOG_S("op", "bd_ctl"),
				  LOG_S("reason", "not one row per item"),
				  LOG_I("rows", nrows));
			err = BD_EDB;
		}
		item_done(st, it, err ? NULL : res, row++, err);
	}
	batch_free(b);
}

int store_ctl(struct store *st, const struct ctl_req *r)
{
	struct ctl_batch *b = st->ctl_open;
	struct ctl_item *it;
	bool charge = ctl_is_user_request(r->kind);
	int err;

	if (!pgconn_is_up(st->q))
		return BD_EDB;
	if (charge && (err = pgconn_charge(st->q)))
		return err;
	if (!b || b->n == CTL_BATCH_MAX) {
		b = xcalloc(1, sizeof(*b));
		b->st = st;
		err = pgconn_submit_deferred(st->q, 0,
			"SELECT i, err, msg, user_id, room_id, name, room, "
			"rooms, session, version FROM bd_ctl($1, $2::jsonb)",
			ctl_build, ctl_done, b);
		if (err) {
			if (charge)
				pgconn_discharge(st->q, 1);
			free(b);
			return err;
		}
		st->ctl_open = b;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->items = xrealloc(b->items, b->cap * sizeof(*b->items));
	}
	it = &b->items[b->n++];
	memset(it, 0, sizeof(*it));
	it->kind = r->kind;
	b->ncharged += charge;
	it->sid = r->sid;
	it->req = r->req;
	if (r->token)
		snprintf(it->token, sizeof(it->token), "%s", r->token);
	it->off = b->objs.len;
	put_item(&b->objs, r);
	it->len = b->objs.len - it->off;
	return 0;
}
