/*
 * What store.c and sessions.c share: the store itself and result helpers.
 * Nothing outside src/store includes this.
 */
#ifndef BD_STORE_STORE_INT_H
#define BD_STORE_STORE_INT_H

#include <jansson.h>
#include <libpq-fe.h>

#include "store/pgconn.h"
#include "store/store.h"

struct store {
	struct chat *chat;
	struct pgconn *q;		/* queries */
	struct pgconn *l;		/* LISTEN only */
	struct post_batch *open;	/* queued, not yet sent */
	void (*ready)(void *arg);
	void *ready_arg;
	bool was_ready;
	unsigned cleanup_interval_s, cleanup_keep;
	struct lws_context *ctx;
	lws_sorted_usec_list_t sul_cleanup;
	double notify_queue_usage;	/* as of the last heartbeat */
	char *instance_id;		/* names this instance's presence */
	unsigned presence_timeout_s;	/* silent instances are reaped */
	lws_sorted_usec_list_t sul_beat;
};

/* 0 for a good result; BD_ETAKEN for unique violations; else BD_EDB
 * (logged with what). */
int store_result_err(PGresult *res, int err, const char *what);
/* A column as an integer, 0 when NULL. */
int64_t store_get_i64(PGresult *res, int row, int col);
void store_fmt_id(char *buf, size_t len, int64_t v);
/* A JSON array of {id, name} as room references pointing into *rooms
 * (the caller frees the array and decrefs *rooms). */
struct chat_room_ref *store_room_refs(const char *json, json_t **rooms,
				size_t *n);

/* sessions.c: the stored API sessions' store ops (chat.h); the listen
 * connection came up; a session_end payload. */
int st_session_open(void *arg, const char *token, const char *nick,
		    uint64_t req);
int st_session_resume(void *arg, const char *token, unsigned idle_s,
		      int64_t known_version, uint64_t req);
int st_session_end(void *arg, int64_t id, uint64_t req);
int st_session_tick(void *arg, const int64_t *keep, size_t n,
		    unsigned idle_s);
void sessions_listen(struct store *st);
void sessions_notify(struct store *st, const char *payload);

#endif
