/*
 * Stored HTTP API sessions: open, resume and end as control operations
 * (batched by ctl.c), bd_session_tick on the query connection, and LISTEN
 * session_end on the listen connection.
 */
#include "store/store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api_session.h"
#include "log.h"
#include "util/strbuf.h"

/* Row `row` of (session, gone, user_id, nickname, room, rooms); *refs and
 * *rooms are the caller's to free. */
static void row_session(PGresult *res, int row,
			struct chat_stored_session *ss,
			struct chat_room_ref **refs, json_t **rooms)
{
	ss->id = store_get_i64(res, row, 0);
	ss->uid = store_get_i64(res, row, 2);
	ss->nick = PQgetvalue(res, row, 3);
	ss->room = PQgetisnull(res, row, 4) ? NULL : PQgetvalue(res, row, 4);
	ss->rooms_version = -1;
	ss->rooms_unchanged = PQgetisnull(res, row, 5);
	if (ss->rooms_unchanged)
		return;
	*refs = store_room_refs(PQgetvalue(res, row, 5), rooms, &ss->nrooms);
	ss->rooms = *refs;
}

/* Session open, resume and end are control operations (ctl.c). */

int st_session_open(void *arg, const char *token, const char *nick,
		    uint64_t req)
{
	struct ctl_req r = { .kind = CTL_SESSION_OPEN, .req = req,
			     .token = token, .nick = nick };

	return store_ctl(arg, &r);
}

int st_session_resume(void *arg, const char *token, unsigned idle_s,
		      int64_t known_version, uint64_t req)
{
	struct ctl_req r = { .kind = CTL_SESSION_RESUME, .req = req,
			     .token = token, .idle_s = idle_s,
			     .known = known_version };

	return store_ctl(arg, &r);
}

int st_session_end(void *arg, int64_t id, uint64_t req)
{
	struct ctl_req r = { .kind = CTL_SESSION_END, .req = req,
			     .session = id };

	return store_ctl(arg, &r);
}

/* Rows of (session, gone, user_id, nickname, room, rooms). */
static void tick_done(void *arg, PGresult *res, int err)
{
	struct store *st = arg;

	if (store_result_err(res, err, "bd_session_tick"))
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		struct chat_stored_session ss = { 0 };
		struct chat_room_ref *refs = NULL;
		json_t *rooms = NULL;

		if (!strcmp(PQgetvalue(res, i, 1), "t")) {
			chat_on_session_tick(st->chat, store_get_i64(res, i, 0),
					     NULL);
			continue;
		}
		row_session(res, i, &ss, &refs, &rooms);
		chat_on_session_tick(st->chat, ss.id, &ss);
		free(refs);
		json_decref(rooms);
	}
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
	err = pgconn_query(st->q, "SELECT * FROM bd_session_tick($1, $2)", 2,
			   v, tick_done, st);
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
		log_warn("db_bad_notification",
			 LOG_S("channel", "session_end"));
		return;
	}
	chat_on_session_end(st->chat, id);
}
