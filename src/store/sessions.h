/*
 * HTTP API sessions in the database (table api_sessions), so that every
 * instance serves every session. The client's session id is a secret of
 * 32 hex digits; the database keeps only its SHA-256. Outcomes come back
 * through the callback with the caller's token, in call order.
 */
#ifndef BD_STORE_SESSIONS_H
#define BD_STORE_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/chat.h"

struct store;

/* A session as the database has it now; borrowed for the callback. */
struct stored_session {
	int64_t id;			/* api_sessions.id */
	int64_t uid;
	const char *nick;
	const char *room;		/* current room, or NULL */
	const struct chat_room_ref *rooms;	/* memberships */
	size_t nrooms;
	/* Version of the memberships (users.rooms_version), -1 unknown.
	 * rooms_unchanged: it is the version the caller said it knows, and
	 * rooms is NULL. */
	int64_t rooms_version;
	bool rooms_unchanged;
};

/* ss is NULL when err. */
typedef void store_session_fn(void *arg, uint64_t token, int err,
			      const struct stored_session *ss);

/* The functions below return 0 (cb follows), BD_EDB (database down) or,
 * for store_session_open() and store_session_resume() only, BD_EBUSY: too
 * many user requests wait for the database (store_set_queue_limit()). On
 * error cb is not called. */

/* Whether the request token is still wanted: called with the arg and token
 * given to store_session_resume(), possibly many times, just before its
 * statement is sent (never after its cb ran). false: the statement is
 * dropped unsent and cb gets err BD_ECANCELED (and ss NULL) at once. Must
 * be a pure lookup: no call into the store or core, no change. */
typedef bool store_wanted_fn(void *arg, uint64_t token);
/* Installs (or, with NULL, removes) the check for store_session_resume()
 * requests queued from now on. Without one they are always sent. */
void store_session_set_wanted(struct store *st, store_wanted_fn *wanted);

/* A new session for nick (taking over that user, as /nick does).
 * BD_ETAKEN: a connected session has the nickname. */
int store_session_open(struct store *st, const char *secret,
		       const char *nick, store_session_fn *cb, void *arg,
		       uint64_t token);
/* The session now, marked active; its memberships only when their version
 * is not known_version (-1: always); BD_ENOENT when it ended or has been idle
 * for idle_s seconds; BD_ECANCELED when dropped (see store_wanted_fn). */
int store_session_resume(struct store *st, const char *secret,
			 unsigned idle_s, int64_t known_version,
			 store_session_fn *cb, void *arg, uint64_t token);
/* Ends it (disconnect, /quit): every instance hears of it. cb may be
 * NULL; else its ss is NULL, err 0 or BD_ENOENT (already gone). */
int store_session_end(struct store *st, int64_t id, store_session_fn *cb,
		      void *arg, uint64_t token);
/* Keeps the n sessions in keep alive, ends sessions idle for idle_s and
 * calls each() for every one of keep: with its state now, or with NULL
 * when it no longer exists. */
typedef void store_tick_fn(void *arg, int64_t id,
			   const struct stored_session *ss);
int store_session_tick(struct store *st, const int64_t *keep, size_t n,
		       unsigned idle_s, store_tick_fn *each, void *arg);
/* fn(arg, id) for every session that ends, on any instance (NOTIFY on
 * channel session_end). */
void store_on_session_end(struct store *st, void (*fn)(void *arg, int64_t id),
			  void *arg);

#endif
