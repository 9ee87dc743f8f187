/*
 * Queries (store_ops) on the query connection, LISTEN/UNLISTEN and
 * notifications on the listen connection. Messages are batched here,
 * control operations in ctl.c. Each operation carries a small
 * context naming the session that asked; outcomes go to the chat core.
 */
#include "store/store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store/notify.h"
#include "store/pgconn.h"
#include "util/clock.h"
#include "util/jsonw.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define POST_BATCH_MAX 500	/* messages per transaction */

struct post_item {
	uint64_t sid;
	uint64_t token;
	int64_t room_id, uid;
	char *nick;
	char *content;
	int64_t t_read_ns;	/* queued (in the callback that read it) */
};

/* A message this instance committed, until its NOTIFY is read. */
struct posted {
	int64_t t_read_ns, t_result_ns;
};

/* More than this many posted messages without their NOTIFY (a LISTEN
 * connection that was down): forget them all. */
#define POSTED_MAX 65536

static void lat(struct store *st, enum chat_lat stage, int64_t from,
		int64_t to)
{
	if (from && to >= from)
		chat_record_latency(st->chat, stage,
				    (uint64_t)(to - from) / 1000);
}

static void posted_clear(struct store *st)
{
	for (size_t i = 0; i < st->posted.cap; i++)
		if (st->posted.slots[i].key)
			free(st->posted.slots[i].val);
	idmap_fini(&st->posted);
	idmap_init(&st->posted);
}

/* Messages waiting for one bd_post() statement. */
struct post_batch {
	struct store *st;
	struct post_item *items;
	size_t n, cap;
	char *json;		/* the parameter, built when sent */
	int64_t t_sent_ns;
};

/* One statement's context, for its outcome. */
struct op {
	struct store *st;
	uint64_t sid;		/* the session that asked, or 0 */
	int64_t room_id;
	uint64_t gen;		/* watch: the room sync's generation */
	uint64_t token;		/* rooms, replay: the request's token */
	int64_t after;
	unsigned limit;
};

static struct op *op_new(struct store *st, uint64_t sid)
{
	struct op *o = xcalloc(1, sizeof(*o));

	o->st = st;
	o->sid = sid;
	return o;
}

int store_result_err(PGresult *res, int err, const char *what)
{
	ExecStatusType s;
	const char *state;

	if (err)
		return err;
	s = PQresultStatus(res);
	if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
		return 0;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state && !strcmp(state, "23505"))
		return BD_ETAKEN;
	if (state && !strcmp(state, "BD001"))	/* bd_create(): max_rooms */
		return BD_EROOMSFULL;
	log_error("db_error", LOG_S("op", what),
		  LOG_S("reason", PQresultErrorMessage(res)));
	return BD_EDB;
}

int64_t store_get_i64(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 :
	       strtoll(PQgetvalue(res, row, col), NULL, 10);
}

void store_fmt_id(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%" PRId64, v);
}

struct chat_room_ref *store_room_refs(const char *json, json_t **rooms,
				size_t *n)
{
	struct chat_room_ref *refs;

	*rooms = json_loads(json, 0, NULL);
	*n = json_is_array(*rooms) ? json_array_size(*rooms) : 0;
	refs = xcalloc(*n + 1, sizeof(*refs));
	for (size_t i = 0; i < *n; i++) {
		json_t *r = json_array_get(*rooms, i);

		refs[i].id = json_integer_value(json_object_get(r, "id"));
		refs[i].name = json_string_value(json_object_get(r, "name"));
		if (!refs[i].name)
			refs[i].name = "?";
	}
	return refs;
}

/* Commands and presence: batched by ctl.c into one bd_ctl() per
 * statement. */

static int st_nick(void *arg, uint64_t sid, int64_t api_id, int64_t uid,
		   const char *old, const char *nick, const char *cur)
{
	struct ctl_req r = { .kind = CTL_NICK, .sid = sid, .api_id = api_id,
			     .uid = uid, .old = old, .nick = nick,
			     .cur = cur };

	return store_ctl(arg, &r);
}

static int st_join(void *arg, uint64_t sid, int64_t api_id, int64_t uid,
		   const char *nick, const char *room, bool create,
		   size_t max_rooms, const char *cur)
{
	struct ctl_req r = { .kind = create ? CTL_CREATE : CTL_JOIN,
			     .sid = sid, .api_id = api_id, .uid = uid,
			     .nick = nick, .room = room,
			     .max_rooms = create ? (int64_t)max_rooms : 0,
			     .cur = cur };

	return store_ctl(arg, &r);
}

static int st_leave(void *arg, uint64_t sid, int64_t api_id, int64_t uid,
		    const char *nick, int64_t room_id)
{
	struct ctl_req r = { .kind = CTL_LEAVE, .sid = sid, .api_id = api_id,
			     .uid = uid, .nick = nick, .room_id = room_id };

	return store_ctl(arg, &r);
}

/* Messages: batched into one bd_post() per statement. */

static void batch_free(struct post_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->items[i].nick);
		free(b->items[i].content);
	}
	free(b->items);
	free(b->json);
	free(b);
}

static int post_build(void *arg, const char *const **values)
{
	struct post_batch *b = arg;
	json_t *a = json_array();

	if (b->st->open == b)
		b->st->open = NULL;	/* sealed: later posts start anew */
	buckets_add(&b->st->post_batches, (double)b->n);
	b->t_sent_ns = clock_mono_ns();
	for (size_t i = 0; i < b->n; i++) {
		struct post_item *it = &b->items[i];

		json_array_append_new(a, json_pack("{sIsIssss}",
			"r", (json_int_t)it->room_id, "u", (json_int_t)it->uid,
			"n", it->nick, "c", it->content));
	}
	b->json = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	*values = (const char *const *)&b->json;
	return 1;
}

/* it committed as message id: its stages so far, kept until its NOTIFY. */
static void posted_ok(struct store *st, const struct post_item *it,
		      int64_t t_sent, int64_t now, int64_t id, int64_t seq)
{
	struct posted *p;

	lat(st, CHAT_LAT_QUEUE, it->t_read_ns, t_sent);
	lat(st, CHAT_LAT_COMMIT, t_sent, now);
	lat(st, CHAT_LAT_READ_COMMIT, it->t_read_ns, now);
	if (id > 0) {
		if (st->posted.count >= POSTED_MAX)
			posted_clear(st);
		p = xmalloc(sizeof(*p));
		p->t_read_ns = it->t_read_ns;
		p->t_result_ns = now;
		idmap_put(&st->posted, (uint64_t)id, p);
	}
	chat_on_posted(st->chat, it->sid, it->token, 0, id, seq);
}

static void post_done(void *arg, PGresult *res, int err)
{
	struct post_batch *b = arg;
	struct store *st = b->st;
	struct chat *c = st->chat;
	int64_t now = clock_mono_ns();
	int nrows;

	err = store_result_err(res, err, "bd_post");
	nrows = err ? 0 : PQntuples(res);
	for (size_t i = 0; i < b->n; i++) {
		int row = (int)i;	/* rows come back in batch order */

		if (err || row >= nrows)
			chat_on_posted(c, b->items[i].sid, b->items[i].token,
				       err ? err : BD_EDB, 0, 0);
		else
			posted_ok(st, &b->items[i], b->t_sent_ns, now,
				  store_get_i64(res, row, 1),
				  store_get_i64(res, row, 2));
	}
	batch_free(b);
}

static int st_post(void *arg, uint64_t sid, uint64_t token, int64_t room_id,
		   int64_t uid, const char *nick, const char *content,
		   size_t len)
{
	struct store *st = arg;
	struct post_batch *b = st->open;
	struct post_item *it;
	int err;

	if (!pgconn_is_up(st->q))
		return BD_EDB;
	/* Only a new batch is a new statement, so only it counts toward
	 * the queue limit: a message joins the open batch (up to
	 * POST_BATCH_MAX) even when the limit is reached. */
	if (!b || b->n == POST_BATCH_MAX) {
		b = xcalloc(1, sizeof(*b));
		b->st = st;
		err = pgconn_submit_deferred(st->q, PGCONN_BOUNDED,
				"SELECT idx, id, seq FROM bd_post($1::jsonb)",
				post_build, post_done, b);
		if (err) {
			free(b);
			return err;
		}
		st->open = b;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->items = xrealloc(b->items, b->cap * sizeof(*b->items));
	}
	it = &b->items[b->n++];
	it->sid = sid;
	it->token = token;
	it->room_id = room_id;
	it->uid = uid;
	it->nick = xstrdup(nick);
	it->content = xmemdup(content, len);
	it->t_read_ns = clock_mono_ns();
	return 0;
}

/* Reads whose answer only their requester sees are dropped unsent when
 * it is gone: a session (sid), or an API request (token, sid 0). */
static bool op_wanted(void *arg)
{
	struct op *o = arg;

	return o->sid ? chat_session_wanted(o->st->chat, o->sid) :
			chat_api_wanted(o->st->chat, o->token);
}

/* /rooms */

static void rooms_done(void *arg, PGresult *res, int err)
{
	struct op *o = arg;
	struct chat_room_info *info = NULL;
	size_t n = 0;

	err = store_result_err(res, err, "bd_rooms");
	if (!err) {
		n = (size_t)PQntuples(res);
		info = xcalloc(n + 1, sizeof(*info));
		for (size_t i = 0; i < n; i++) {
			info[i].name = PQgetvalue(res, (int)i, 0);
			info[i].members = store_get_i64(res, (int)i, 1);
			info[i].online = store_get_i64(res, (int)i, 2);
		}
	}
	chat_on_rooms(o->st->chat, o->sid, o->token, err, info, n);
	free(info);
	free(o);
}

static int st_rooms(void *arg, uint64_t sid, uint64_t token)
{
	struct store *st = arg;
	struct op *o = op_new(st, sid);
	int err;

	o->token = token;
	err = pgconn_submit(st->q, PGCONN_BOUNDED, op_wanted,
			    "SELECT name, members, online FROM bd_rooms_online()",
			    0, NULL, rooms_done, o);
	if (err)
		free(o);
	return err;
}

/* Presence */

static int st_presence_add(void *arg, uint64_t sid, const char *nick)
{
	struct ctl_req r = { .kind = CTL_PRESENCE_ADD, .sid = sid,
			     .nick = nick };

	return store_ctl(arg, &r);
}

static void st_presence_del(void *arg, uint64_t sid)
{
	struct ctl_req r = { .kind = CTL_PRESENCE_DEL, .sid = sid };

	store_ctl(arg, &r);
}

static void list_done(void *arg, PGresult *res, int err)
{
	struct op *o = arg;
	struct chat_presence *rows = NULL;
	size_t n = 0;

	err = store_result_err(res, err, "bd_list");
	if (!err) {
		n = (size_t)PQntuples(res);
		rows = xcalloc(n + 1, sizeof(*rows));
		for (size_t i = 0; i < n; i++) {
			rows[i].nick = PQgetvalue(res, (int)i, 0);
			rows[i].room = PQgetisnull(res, (int)i, 1) ? NULL :
				       PQgetvalue(res, (int)i, 1);
		}
	}
	chat_on_list(o->st->chat, o->sid, err, rows, n);
	free(rows);
	free(o);
}

static int st_list(void *arg, uint64_t sid)
{
	struct store *st = arg;
	struct op *o = op_new(st, sid);
	int err;

	err = pgconn_submit(st->q, PGCONN_BOUNDED, op_wanted,
			    "SELECT nickname, room FROM bd_list()", 0, NULL,
			    list_done, o);
	if (err)
		free(o);
	return err;
}

static void sync_done(void *arg, PGresult *res, int err)
{
	struct store *st = arg;

	if (store_result_err(res, err, "bd_presence_sync"))
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		log_warn("nick_lost", LOG_S("conn", PQgetvalue(res, i, 0)),
			 LOG_S("reason", "taken on another instance while the database was away"));
		chat_on_nick_lost(st->chat, (uint64_t)store_get_i64(res, i, 0));
	}
}

/* Registers this instance and all its sessions (after a (re)connect). */
static void presence_sync(struct store *st)
{
	struct strbuf sb = STRBUF_INIT;
	size_t n;
	struct chat_presence *p = chat_presence_snapshot(st->chat, &n);
	const char *v[2];

	sb_puts(&sb, "[");
	for (size_t i = 0; i < n; i++) {
		sb_appendf(&sb, "%s{\"s\":%" PRIu64 ",\"n\":", i ? "," : "",
			   p[i].sid);
		jsonw_str(&sb, p[i].nick, strlen(p[i].nick));
		if (p[i].uid)
			sb_appendf(&sb, ",\"u\":%" PRId64, p[i].uid);
		if (p[i].room) {
			sb_puts(&sb, ",\"r\":");
			jsonw_str(&sb, p[i].room, strlen(p[i].room));
		}
		sb_puts(&sb, "}");
	}
	sb_puts(&sb, "]");
	free(p);
	v[0] = st->instance_id;
	v[1] = sb.buf;
	pgconn_query(st->q, "SELECT * FROM bd_presence_sync($1, $2::jsonb)", 2,
		     v, sync_done, st);
	sb_fini(&sb);
}

static void beat_done(void *arg, PGresult *res, int err)
{
	struct store *st = arg;

	if (store_result_err(res, err, "bd_instance_beat") || PQntuples(res) != 1)
		return;
	st->notify_queue_usage = strtod(PQgetvalue(res, 0, 1), NULL);
	if (!strcmp(PQgetvalue(res, 0, 0), "f")) {
		log_warn("presence_reregister",
			 LOG_S("reason", "this instance had been reaped"));
		presence_sync(st);
	}
}

static void beat_cb(lws_sorted_usec_list_t *sul)
{
	struct store *st = lws_container_of(sul, struct store, sul_beat);
	char tbuf[16];
	const char *v[] = { st->instance_id, tbuf };

	snprintf(tbuf, sizeof(tbuf), "%u", st->presence_timeout_s);
	if (pgconn_is_up(st->q))
		pgconn_query(st->q,
			     "SELECT bd_instance_beat($1, $2), "
			     "pg_notification_queue_usage()",
			     2, v, beat_done, st);
	lws_sul_schedule(st->ctx, 0, &st->sul_beat, beat_cb,
			 (lws_usec_t)st->presence_timeout_s * LWS_US_PER_SEC /
				 3);
}

/* Room sync: LISTEN (listen connection), then history (query connection),
 * in that order, so nothing committed in between is missed. */

/* Message rows (seq, id, nickname, content, t) of a result; the strings
 * point into res. The caller frees the array. */
static struct chat_msg_row *msg_rows(PGresult *res, size_t *n)
{
	struct chat_msg_row *rows;

	*n = (size_t)PQntuples(res);
	rows = xcalloc(*n + 1, sizeof(*rows));
	for (size_t i = 0; i < *n; i++) {
		int r = (int)i;

		rows[i].seq = store_get_i64(res, r, 0);
		rows[i].id = store_get_i64(res, r, 1);
		rows[i].nick = PQgetvalue(res, r, 2);
		rows[i].content = PQgetvalue(res, r, 3);
		rows[i].content_len = (size_t)PQgetlength(res, r, 3);
		rows[i].time_ms = store_get_i64(res, r, 4);
	}
	return rows;
}

static void history_done(void *arg, PGresult *res, int err)
{
	struct op *o = arg;
	struct chat_msg_row *rows = NULL;
	size_t n = 0;

	err = store_result_err(res, err, "bd_history");
	if (!err)
		rows = msg_rows(res, &n);
	/* Only a catch-up reads after a seq (an initial load reads the
	 * newest rows): what it found was committed while this instance
	 * could not hear the room's notifications. */
	if (!err && n && o->after)
		log_info("catch_up", LOG_I("room_id", o->room_id),
			 LOG_U("messages", n), LOG_I("after_seq", o->after));
	chat_on_room_sync(o->st->chat, o->room_id, o->gen, err, rows, n);
	free(rows);
	free(o);
}

/* Stream resume: the oldest messages after a seq. */

static void replay_done(void *arg, PGresult *res, int err)
{
	struct op *o = arg;
	struct chat_msg_row *rows = NULL;
	size_t n = 0;

	err = store_result_err(res, err, "replay");
	if (!err)
		rows = msg_rows(res, &n);
	chat_on_replay(o->st->chat, o->token, err, rows, n);
	free(rows);
	free(o);
}

static int st_replay(void *arg, int64_t room_id, uint64_t token,
		     int64_t after, unsigned limit)
{
	struct store *st = arg;
	char rbuf[24], abuf[24], lbuf[16];
	const char *v[] = { rbuf, abuf, lbuf };
	struct op *o = op_new(st, 0);
	int err;

	o->token = token;
	store_fmt_id(rbuf, sizeof(rbuf), room_id);
	store_fmt_id(abuf, sizeof(abuf), after);
	snprintf(lbuf, sizeof(lbuf), "%u", limit);
	err = pgconn_query(st->q,
		"SELECT seq, id, nickname, content, "
		"floor(extract(epoch FROM created_at) * 1000)::bigint "
		"FROM messages WHERE room_id = $1 AND seq > $2 "
		"ORDER BY seq LIMIT $3",
		3, v, replay_done, o);
	if (err)
		free(o);
	return err;
}

static void listen_done(void *arg, PGresult *res, int err)
{
	struct op *o = arg;
	char rbuf[24], abuf[24], lbuf[16];
	const char *v[] = { rbuf, abuf, lbuf };

	err = store_result_err(res, err, "LISTEN");
	if (!err) {
		store_fmt_id(rbuf, sizeof(rbuf), o->room_id);
		store_fmt_id(abuf, sizeof(abuf), o->after);
		snprintf(lbuf, sizeof(lbuf), "%u", o->limit);
		err = pgconn_query(o->st->q,
			"SELECT seq, id, nickname, content, t FROM bd_history($1, $2, $3)",
			3, v, history_done, o);
		if (!err)
			return;
	}
	chat_on_room_sync(o->st->chat, o->room_id, o->gen, err, NULL, 0);
	free(o);
}

static int st_watch(void *arg, int64_t room_id, uint64_t gen, int64_t after,
		    unsigned limit)
{
	struct store *st = arg;
	struct op *o = op_new(st, 0);
	char sql[64];
	int err;

	o->room_id = room_id;
	o->gen = gen;
	o->after = after;
	o->limit = limit;
	/* LISTEN takes no parameters; the channel comes from an integer. */
	snprintf(sql, sizeof(sql), "LISTEN room_%" PRId64, room_id);
	err = pgconn_query(st->l, sql, 0, NULL, listen_done, o);
	if (err)
		free(o);
	return err;
}

static void unlisten_done(void *arg, PGresult *res, int err)
{
	(void)arg;
	store_result_err(res, err, "UNLISTEN");
}

static void st_unwatch(void *arg, int64_t room_id)
{
	struct store *st = arg;
	char sql[64];

	snprintf(sql, sizeof(sql), "UNLISTEN room_%" PRId64, room_id);
	pgconn_query(st->l, sql, 0, NULL, unlisten_done, NULL);
}

const struct chat_store_ops store_ops = {
	.nick = st_nick,
	.join = st_join,
	.leave = st_leave,
	.post = st_post,
	.rooms = st_rooms,
	.presence_add = st_presence_add,
	.presence_del = st_presence_del,
	.list = st_list,
	.replay = st_replay,
	.watch = st_watch,
	.unwatch = st_unwatch,
	.session_open = st_session_open,
	.session_resume = st_session_resume,
	.session_end = st_session_end,
	.session_tick = st_session_tick,
};

/* Connections */

static void check_ready(struct store *st)
{
	if (st->was_ready || !store_is_connected(st))
		return;
	st->was_ready = true;
	if (st->ready)
		st->ready(st->ready_arg);
}

static void q_up(void *arg)
{
	struct store *st = arg;

	/* Presence first: this instance and its sessions, again. */
	presence_sync(st);
	/* Room syncs that failed with the query connection are retried. */
	if (pgconn_is_up(st->l))
		chat_on_listen_up(st->chat);
	check_ready(st);
}

static void l_up(void *arg)
{
	struct store *st = arg;

	/* Re-LISTEN and catch up every watched room (core drives it). */
	sessions_listen(st);
	chat_on_listen_up(st->chat);
	check_ready(st);
}

static void l_down(void *arg)
{
	struct store *st = arg;

	chat_on_listen_down(st->chat);
}

/* One event of a notification: to the core, a message this instance
 * posted with the times its trace needs. */
static void on_event(void *arg, struct chat_event *ev)
{
	struct store *st = arg;

	if (ev->kind == CHAT_EV_MESSAGE) {
		struct posted *p = ev->id > 0 ?
			idmap_get(&st->posted, (uint64_t)ev->id) : NULL;

		ev->t_notify_ns = clock_mono_ns();
		ev->t_read_ns = ev->t_result_ns = 0;
		if (p) {
			ev->t_read_ns = p->t_read_ns;
			ev->t_result_ns = p->t_result_ns;
			lat(st, CHAT_LAT_NOTIFY, p->t_result_ns,
			    ev->t_notify_ns);
			idmap_del(&st->posted, (uint64_t)ev->id);
			free(p);
		}
	}
	chat_on_event(st->chat, ev);
}

static void l_notify(void *arg, const char *channel, const char *payload)
{
	struct store *st = arg;

	if (!strcmp(channel, "session_end")) {
		sessions_notify(st, payload);
		return;
	}
	if (notify_decode(payload, on_event, st) < 0)
		log_warn("db_bad_notification", LOG_S("channel", channel));
}

static const struct pgconn_cbs q_cbs = { .up = q_up };
static void l_notify_done(void *arg)
{
	struct store *st = arg;

	chat_on_events_done(st->chat);
}

static const struct pgconn_cbs l_cbs = {
	.up = l_up,
	.down = l_down,
	.notify = l_notify,
	.notify_done = l_notify_done,
};

/* Batch sizes: powers of two up to the largest batch. */
static const double batch_bounds[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256,
				       512, 1024 };

struct store *store_new(struct lws_context *ctx, struct lws_vhost *vh,
			const char *conninfo, const char *instance_id,
			unsigned presence_timeout_s, void (*ready)(void *arg),
			void *arg)
{
	struct store *st = xcalloc(1, sizeof(*st));

	st->instance_id = xstrdup(instance_id);
	st->presence_timeout_s = presence_timeout_s;
	st->ctx = ctx;
	idmap_init(&st->posted);
	st->ready = ready;
	st->ready_arg = arg;
	buckets_init(&st->post_batches, batch_bounds,
		     sizeof(batch_bounds) / sizeof(batch_bounds[0]));
	buckets_init(&st->ctl_batches, batch_bounds,
		     sizeof(batch_bounds) / sizeof(batch_bounds[0]));
	st->q = pgconn_new(ctx, vh, conninfo, "babydiscord-query", &q_cbs, st);
	st->l = pgconn_new(ctx, vh, conninfo, "babydiscord-listen", &l_cbs,
			   st);
	return st;
}

void store_set_chat(struct store *st, struct chat *c)
{
	st->chat = c;
}

void store_start(struct store *st)
{
	pgconn_start(st->q);
	pgconn_start(st->l);
	lws_sul_schedule(st->ctx, 0, &st->sul_beat, beat_cb, LWS_US_PER_SEC);
}

void store_set_queue_limit(struct store *st, unsigned limit)
{
	pgconn_set_limit(st->q, limit);
}

void store_get_stats(const struct store *st, struct store_stats *out)
{
	struct pgconn_stats ps;

	pgconn_get_stats(st->q, &ps);
	out->queued = ps.queued;
	out->queued_user = ps.bounded;
	out->queue_limit = ps.limit;
	out->refused = ps.refused;
	out->dropped = ps.dropped + st->ctl_dropped;
	out->errors = ps.errors + st->ctl_errors;
	out->query_idle = pgconn_is_up(st->q) && !ps.queued;
	out->reconnects = ps.connects ? ps.connects - 1 : 0;
	out->lost = ps.lost;
	pgconn_get_stats(st->l, &ps);
	out->errors += ps.errors;
	out->reconnects += ps.connects ? ps.connects - 1 : 0;
	out->lost += ps.lost;
	out->notifications = ps.notifications;
	out->post_batches = st->post_batches;
	out->ctl_batches = st->ctl_batches;
}


bool store_is_idle(const struct store *st)
{
	return !pgconn_queued(st->q);
}

bool store_is_connected(const struct store *st)
{
	return pgconn_is_up(st->q) && pgconn_is_up(st->l);
}

/* Retention job */

static void cleanup_done(void *arg, PGresult *res, int err)
{
	(void)arg;
	if (!store_result_err(res, err, "bd_cleanup") && PQntuples(res) == 1)
		log_info("cleanup", LOG_S("messages_deleted", PQgetvalue(res, 0, 0)),
			 LOG_S("guests_removed", PQgetvalue(res, 0, 1)),
			 LOG_S("users_removed", PQgetvalue(res, 0, 2)));
}

static void cleanup_cb(lws_sorted_usec_list_t *sul)
{
	struct store *st = lws_container_of(sul, struct store, sul_cleanup);
	char kbuf[16];
	const char *v[] = { kbuf };

	snprintf(kbuf, sizeof(kbuf), "%u", st->cleanup_keep);
	/* Left to right: messages first, so that users whose last ones
	 * went are removed in the same run. */
	if (pgconn_query(st->q,
			 "SELECT bd_cleanup($1), bd_cleanup_guests(), "
			 "bd_cleanup_users()",
			 1, v, cleanup_done, NULL))
		log_warn("cleanup_skipped",
			 LOG_S("reason", "database unavailable"));
	lws_sul_schedule(st->ctx, 0, &st->sul_cleanup, cleanup_cb,
			 (lws_usec_t)st->cleanup_interval_s * LWS_US_PER_SEC);
}

void store_schedule_cleanup(struct store *st, unsigned interval_s,
			    unsigned keep)
{
	st->cleanup_interval_s = interval_s;
	st->cleanup_keep = keep;
	if (interval_s)
		lws_sul_schedule(st->ctx, 0, &st->sul_cleanup, cleanup_cb,
				 (lws_usec_t)interval_s * LWS_US_PER_SEC);
}

double store_notify_queue_usage(const struct store *st)
{
	return st->notify_queue_usage;
}

void store_stop(struct store *st)
{
	lws_sul_cancel(&st->sul_beat);
	lws_sul_cancel(&st->sul_cleanup);
	pgconn_stop(st->q);
	pgconn_stop(st->l);
}

void store_free(struct store *st)
{
	if (!st)
		return;
	pgconn_free(st->q);
	pgconn_free(st->l);
	posted_clear(st);
	idmap_fini(&st->posted);
	free(st->instance_id);
	free(st);
}
