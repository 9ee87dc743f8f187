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
#include "util/idmap.h"

struct store {
	struct chat *chat;
	struct pgconn *q;		/* queries */
	struct pgconn *l;		/* LISTEN only */
	struct post_batch *open;	/* queued, not yet sent */
	struct ctl_batch *ctl_open;	/* control operations, likewise */
	uint64_t ctl_dropped;		/* batched requests dropped unsent */
	uint64_t ctl_errors;		/* batched items that failed */
	struct buckets post_batches;	/* messages per bd_post() */
	struct buckets ctl_batches;	/* operations per bd_ctl() */
	struct idmap posted;		/* message id -> struct posted: ours,
					 * committed, NOTIFY not read yet */
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

/* ctl.c: control operations, batched into one bd_ctl() statement (see
 * db/functions/bd_ctl.sql). */
enum ctl_kind {
	CTL_PRESENCE_ADD,	/* -> chat_on_presence() */
	CTL_PRESENCE_DEL,	/* no outcome */
	CTL_NICK,		/* -> chat_on_nick() */
	CTL_JOIN,		/* -> chat_on_join() */
	CTL_CREATE,		/* -> chat_on_join() */
	CTL_LEAVE,		/* -> chat_on_leave() */
	CTL_SESSION_OPEN,	/* -> chat_on_session_opened() */
	CTL_SESSION_RESUME,	/* -> chat_on_session_resumed() */
	CTL_SESSION_END,	/* -> chat_on_session_ended() */
};

/* One control operation; what each kind uses is what its chat_store_ops
 * call (chat.h) takes. Strings are copied; NULL and 0 mean "none". */
struct ctl_req {
	enum ctl_kind kind;
	uint64_t sid;		/* the session that asked (line or API copy) */
	uint64_t req;		/* session open, resume, end: the request */
	int64_t api_id;		/* nick, join, create, leave: stored session */
	int64_t uid;
	int64_t room_id;	/* leave */
	int64_t max_rooms;	/* create: the cap */
	int64_t session;	/* session end: its id */
	int64_t known;		/* session resume: known rooms_version */
	unsigned idle_s;	/* session resume */
	const char *old, *nick, *room, *cur;
	const char *token;	/* session open and resume */
};

/*
 * Queues r in the open batch (a new one when there is none or it is full:
 * a statement of its own). Items run in the order queued, and their
 * outcomes come in that order. A session resume whose request nobody
 * waits for when the batch is sent (chat_api_wanted()) is left out, with
 * BD_ECANCELED. Requests of users (all but presence rows and session ends)
 * count toward the queue limit until their batch is done. 0, BD_EDB (not
 * connected) or BD_EBUSY (over the limit); then nothing was queued.
 */
int store_ctl(struct store *st, const struct ctl_req *r);

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
