/*
 * Stored HTTP API sessions: bd_session_open/resume/end/tick (migration
 * 005) on the query connection, and LISTEN session_end on the listen
 * connection.
 */
#include "store/store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

struct sess_op {
	struct store *st;
	store_session_fn *cb;
	void *arg;
	uint64_t token;
	store_tick_fn *each;
	store_wanted_fn *wanted;	/* asked before sending, or NULL */
	const char *what;
};

static struct sess_op *sess_op_new(struct store *st, store_session_fn *cb,
				   void *arg, uint64_t token,
				   const char *what)
{
	struct sess_op *o = xcalloc(1, sizeof(*o));

	o->st = st;
	o->cb = cb;
	o->arg = arg;
	o->token = token;
	o->what = what;
	return o;
}

static bool sess_wanted(void *arg)
{
	struct sess_op *o = arg;

	return o->wanted(o->arg, o->token);
}

/* flags: PGCONN_BOUNDED for user requests. */
static int send_op(struct store *st, unsigned flags, const char *sql, int n,
		   const char *const *v, pgconn_result_fn *done,
		   struct sess_op *o)
{
	int err = pgconn_submit(st->q, flags, o->wanted ? sess_wanted : NULL,
				sql, n, v, done, o);

	if (err)
		free(o);
	return err;
}

/* Row `row` of (session, user_id, nickname, room, rooms) from column
 * `col` on; *refs and *rooms are the caller's to free. */
static void row_session(PGresult *res, int row, int col,
			struct stored_session *ss,
			struct chat_room_ref **refs, json_t **rooms)
{
	ss->id = get_i64(res, row, 0);
	ss->uid = get_i64(res, row, col);
	ss->nick = PQgetvalue(res, row, col + 1);
	ss->room = PQgetisnull(res, row, col + 2) ? NULL :
		   PQgetvalue(res, row, col + 2);
	ss->rooms_version = -1;
	ss->rooms_unchanged = PQgetisnull(res, row, col + 3);
	if (ss->rooms_unchanged)
		return;
	*refs = room_refs(PQgetvalue(res, row, col + 3), rooms, &ss->nrooms);
	ss->rooms = *refs;
}

/* Rows of (session, user_id, nickname, room, rooms); none: BD_ENOENT. */
static void session_done(void *arg, PGresult *res, int err)
{
	struct sess_op *o = arg;
	struct stored_session ss = { 0 };
	struct chat_room_ref *refs = NULL;
	json_t *rooms = NULL;

	err = result_err(res, err, o->what);
	if (!err && PQntuples(res) != 1)
		err = BD_ENOENT;
	if (!err) {
		row_session(res, 0, 1, &ss, &refs, &rooms);
		if (PQnfields(res) > 5 && !PQgetisnull(res, 0, 5))
			ss.rooms_version = get_i64(res, 0, 5);
	}
	o->cb(o->arg, o->token, err, err ? NULL : &ss);
	free(refs);
	json_decref(rooms);
	free(o);
}

int store_session_open(struct store *st, const char *secret,
		       const char *nick, store_session_fn *cb, void *arg,
		       uint64_t token)
{
	const char *v[] = { secret, nick };

	return send_op(st, PGCONN_BOUNDED,
		       "SELECT session, user_id, nickname, NULL, rooms "
		       "FROM bd_session_open($1, $2)",
		       2, v, session_done,
		       sess_op_new(st, cb, arg, token, "bd_session_open"));
}

int store_session_resume(struct store *st, const char *secret,
			 unsigned idle_s, int64_t known_version,
			 store_session_fn *cb, void *arg, uint64_t token)
{
	char ibuf[16], kbuf[24];
	const char *v[] = { secret, ibuf, kbuf };
	struct sess_op *o = sess_op_new(st, cb, arg, token,
					"bd_session_resume");

	/* Only the requester sees the answer (marking the session active
	 * matters to no one else): nobody waiting, no statement. */
	o->wanted = st->session_wanted;
	snprintf(ibuf, sizeof(ibuf), "%u", idle_s);
	fmt_id(kbuf, sizeof(kbuf), known_version);
	return send_op(st, PGCONN_BOUNDED,
		       "SELECT session, user_id, nickname, room, rooms, "
		       "rooms_version FROM bd_session_resume($1, $2, $3)",
		       3, v, session_done, o);
}

static void end_done(void *arg, PGresult *res, int err)
{
	struct sess_op *o = arg;

	err = result_err(res, err, o->what);
	if (!err && (PQntuples(res) != 1 ||
		     strcmp(PQgetvalue(res, 0, 0), "t")))
		err = BD_ENOENT;
	if (o->cb)
		o->cb(o->arg, o->token, err, NULL);
	free(o);
}

int store_session_end(struct store *st, int64_t id, store_session_fn *cb,
		      void *arg, uint64_t token)
{
	char ibuf[24];
	const char *v[] = { ibuf };

	fmt_id(ibuf, sizeof(ibuf), id);
	return send_op(st, 0, "SELECT bd_session_end($1)", 1, v, end_done,
		       sess_op_new(st, cb, arg, token, "bd_session_end"));
}

/* Rows of (session, gone, user_id, nickname, room, rooms). */
static void tick_done(void *arg, PGresult *res, int err)
{
	struct sess_op *o = arg;

	if (result_err(res, err, o->what)) {
		free(o);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct stored_session ss = { 0 };
		struct chat_room_ref *refs;
		json_t *rooms;

		if (!strcmp(PQgetvalue(res, i, 1), "t")) {
			o->each(o->arg, get_i64(res, i, 0), NULL);
			continue;
		}
		row_session(res, i, 2, &ss, &refs, &rooms);
		o->each(o->arg, ss.id, &ss);
		free(refs);
		json_decref(rooms);
	}
	free(o);
}

int store_session_tick(struct store *st, const int64_t *keep, size_t n,
		       unsigned idle_s, store_tick_fn *each, void *arg)
{
	struct strbuf sb = STRBUF_INIT;
	struct sess_op *o = sess_op_new(st, NULL, arg, 0, "bd_session_tick");
	char ibuf[16];
	const char *v[2];
	int err;

	o->each = each;
	sb_puts(&sb, "{");
	for (size_t i = 0; i < n; i++)
		sb_appendf(&sb, "%s%" PRId64, i ? "," : "", keep[i]);
	sb_puts(&sb, "}");
	snprintf(ibuf, sizeof(ibuf), "%u", idle_s);
	v[0] = sb.buf;
	v[1] = ibuf;
	err = send_op(st, 0, "SELECT * FROM bd_session_tick($1, $2)", 2, v,
		      tick_done, o);
	sb_fini(&sb);
	return err;
}

void store_session_set_wanted(struct store *st, store_wanted_fn *wanted)
{
	st->session_wanted = wanted;
}

void store_on_session_end(struct store *st, void (*fn)(void *arg, int64_t id),
			  void *arg)
{
	st->session_end = fn;
	st->session_end_arg = arg;
}

static void listen_done(void *arg, PGresult *res, int err)
{
	(void)arg;
	result_err(res, err, "LISTEN session_end");
}

void sessions_listen(struct store *st)
{
	pgconn_query(st->l, "LISTEN session_end", 0, NULL, listen_done, NULL);
}

void sessions_notify(struct store *st, const char *payload)
{
	char *end;
	long long id = strtoll(payload, &end, 10);

	if (*end || id <= 0) {
		log_warn("db: malformed notification on session_end ignored");
		return;
	}
	if (st->session_end)
		st->session_end(st->session_end_arg, id);
}
