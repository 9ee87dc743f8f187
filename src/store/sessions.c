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

#include "core/api_session.h"
#include "log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

/* A statement about a stored session, and whom its outcome is for. */
struct sess_op {
	struct store *st;
	uint64_t req;			/* the transport's request, or 0 */
	char token[40];			/* open, resume: the session's */
	const char *what;		/* function name, for logs */
};

static struct sess_op *sess_op_new(struct store *st, uint64_t req,
				   const char *token, const char *what)
{
	struct sess_op *o = xcalloc(1, sizeof(*o));

	o->st = st;
	o->req = req;
	if (token)
		snprintf(o->token, sizeof(o->token), "%s", token);
	o->what = what;
	return o;
}

/* A session lookup is sent only while its request still waits. */
static bool resume_wanted(void *arg)
{
	struct sess_op *o = arg;

	return chat_api_wanted(o->st->chat, o->req);
}

/* flags: PGCONN_BOUNDED for user requests. */
static int send_op(struct store *st, unsigned flags, pgconn_wanted_fn *wanted,
		   const char *sql, int n, const char *const *v,
		   pgconn_result_fn *done, struct sess_op *o)
{
	int err = pgconn_submit(st->q, flags, wanted, sql, n, v, done, o);

	if (err)
		free(o);
	return err;
}

/* Row `row` of (session, user_id, nickname, room, rooms) from column
 * `col` on; *refs and *rooms are the caller's to free. */
static void row_session(PGresult *res, int row, int col,
			struct chat_stored_session *ss,
			struct chat_room_ref **refs, json_t **rooms)
{
	ss->id = store_get_i64(res, row, 0);
	ss->uid = store_get_i64(res, row, col);
	ss->nick = PQgetvalue(res, row, col + 1);
	ss->room = PQgetisnull(res, row, col + 2) ? NULL :
		   PQgetvalue(res, row, col + 2);
	ss->rooms_version = -1;
	ss->rooms_unchanged = PQgetisnull(res, row, col + 3);
	if (ss->rooms_unchanged)
		return;
	*refs = store_room_refs(PQgetvalue(res, row, col + 3), rooms, &ss->nrooms);
	ss->rooms = *refs;
}

/* Rows of (session, user_id, nickname, room, rooms[, rooms_version]);
 * none: BD_ENOENT. */
static void session_done(void *arg, PGresult *res, int err)
{
	struct sess_op *o = arg;
	struct chat_stored_session ss = { 0 };
	struct chat_room_ref *refs = NULL;
	json_t *rooms = NULL;

	if (err != BD_ECANCELED)
		err = store_result_err(res, err, o->what);
	if (!err && PQntuples(res) != 1)
		err = BD_ENOENT;
	if (!err) {
		row_session(res, 0, 1, &ss, &refs, &rooms);
		if (PQnfields(res) > 5 && !PQgetisnull(res, 0, 5))
			ss.rooms_version = store_get_i64(res, 0, 5);
	}
	if (!strcmp(o->what, "bd_session_open"))
		chat_on_session_opened(o->st->chat, o->req, err, o->token,
				       err ? NULL : &ss);
	else
		chat_on_session_resumed(o->st->chat, o->req, err, o->token,
					err ? NULL : &ss);
	free(refs);
	json_decref(rooms);
	free(o);
}

int st_session_open(void *arg, const char *token, const char *nick,
		    uint64_t req)
{
	struct store *st = arg;
	const char *v[] = { token, nick };

	return send_op(st, PGCONN_BOUNDED, NULL,
		       "SELECT session, user_id, nickname, NULL, rooms "
		       "FROM bd_session_open($1, $2)",
		       2, v, session_done,
		       sess_op_new(st, req, token, "bd_session_open"));
}

int st_session_resume(void *arg, const char *token, unsigned idle_s,
		      int64_t known_version, uint64_t req)
{
	struct store *st = arg;
	char ibuf[16], kbuf[24];
	const char *v[] = { token, ibuf, kbuf };

	snprintf(ibuf, sizeof(ibuf), "%u", idle_s);
	store_fmt_id(kbuf, sizeof(kbuf), known_version);
	/* Only the requester sees the answer (marking the session active
	 * matters to no one else): nobody waiting, no statement. */
	return send_op(st, PGCONN_BOUNDED, resume_wanted,
		       "SELECT session, user_id, nickname, room, rooms, "
		       "rooms_version FROM bd_session_resume($1, $2, $3)",
		       3, v, session_done,
		       sess_op_new(st, req, token, "bd_session_resume"));
}

static void end_done(void *arg, PGresult *res, int err)
{
	struct sess_op *o = arg;

	err = store_result_err(res, err, o->what);
	if (!err && (PQntuples(res) != 1 ||
		     strcmp(PQgetvalue(res, 0, 0), "t")))
		err = BD_ENOENT;
	chat_on_session_ended(o->st->chat, o->req, err);
	free(o);
}

int st_session_end(void *arg, int64_t id, uint64_t req)
{
	struct store *st = arg;
	char ibuf[24];
	const char *v[] = { ibuf };

	store_fmt_id(ibuf, sizeof(ibuf), id);
	return send_op(st, 0, NULL, "SELECT bd_session_end($1)", 1, v,
		       end_done, sess_op_new(st, req, NULL, "bd_session_end"));
}

/* Rows of (session, gone, user_id, nickname, room, rooms). */
static void tick_done(void *arg, PGresult *res, int err)
{
	struct sess_op *o = arg;

	if (store_result_err(res, err, o->what)) {
		free(o);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct chat_stored_session ss = { 0 };
		struct chat_room_ref *refs = NULL;
		json_t *rooms = NULL;

		if (!strcmp(PQgetvalue(res, i, 1), "t")) {
			chat_on_session_tick(o->st->chat, store_get_i64(res, i, 0),
					     NULL);
			continue;
		}
		row_session(res, i, 2, &ss, &refs, &rooms);
		chat_on_session_tick(o->st->chat, ss.id, &ss);
		free(refs);
		json_decref(rooms);
	}
	free(o);
}

int st_session_tick(void *arg, const int64_t *keep, size_t n,
		    unsigned idle_s)
{
	struct store *st = arg;
	struct strbuf sb = STRBUF_INIT;
	char ibuf[16];
	const char *v[2];
	int err;

	sb_puts(&sb, "{");
	for (size_t i = 0; i < n; i++)
		sb_appendf(&sb, "%s%" PRId64, i ? "," : "", keep[i]);
	sb_puts(&sb, "}");
	snprintf(ibuf, sizeof(ibuf), "%u", idle_s);
	v[0] = sb.buf;
	v[1] = ibuf;
	err = send_op(st, 0, NULL, "SELECT * FROM bd_session_tick($1, $2)", 2,
		      v, tick_done,
		      sess_op_new(st, 0, NULL, "bd_session_tick"));
	sb_fini(&sb);
	return err;
}

static void listen_done(void *arg, PGresult *res, int err)
{
	(void)arg;
	store_result_err(res, err, "LISTEN session_end");
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
	chat_on_session_end(st->chat, id);
}
