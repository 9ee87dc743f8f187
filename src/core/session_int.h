/*
 * Sessions (session.c): above rooms (a session is a subscriber of its
 * rooms, struct room_sub) and streams (it opens and closes its own), below
 * the commands, which run its input lines through struct chat's run_line
 * and read and write the fields of struct session below.
 */
#ifndef BD_CORE_SESSION_INT_H
#define BD_CORE_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/chat.h"
#include "core/names.h"
#include "core/outq.h"
#include "core/room_int.h"
#include "util/idmap.h"
#include "util/keyrate.h"
#include "util/strbuf.h"
#include "util/tokens.h"

#define SESSION_PENDING_MAX 64	/* queued input lines before throttling */
#define SESSION_INFLIGHT_MAX 64	/* uncommitted messages per session */

struct pending;

struct session {
	struct room_sub sub;		/* how its rooms reach it */
	uint64_t id;			/* unique for the process lifetime */
	enum session_kind kind;
	int64_t api_id;			/* api_sessions.id, or 0 */
	int last_err;			/* last error reported, or 0 */
	struct tokens msg_tokens, cmd_tokens;	/* rate limits */
	struct stream **streams;	/* this session's open streams */
	size_t nstreams, capstreams;
	const struct chat_sink_ops *sink;
	void *conn;			/* the transport's handle */
	char nick[NICK_MAX + 1];
	char want_nick[NICK_MAX + 1];	/* reserved while /nick runs */
	char addr[CHAT_ADDR_LEN];	/* chat_session_set_addr() */
	uint64_t nick_key, want_key;	/* what chat's nicks index counts
					 * for nick and want_nick (0: nothing;
					 * API sessions count nothing) */
	int64_t uid;			/* users.id, 0 until persisted */
	int64_t seen_rename;		/* rename_id of the last rename shown */
	struct idmap rooms;		/* room id -> room: memberships known
					 * locally */
	uint64_t rooms_sum;		/* sum of room_id_mix() over rooms,
					 * for chat_session_sync() */
	struct room *current;		/* where plain lines go */
	struct room *awaiting;		/* whose history the running command
					 * (a join) waits for, or NULL */
	char arg[ROOM_NAME_MAX + 1];	/* room name of a running command */
	size_t page;			/* page a running /rooms shows, from 1 */
	struct outq outq;		/* line sessions: what to write */
	struct strbuf replies;		/* API sessions: the running command's
					 * replies, one text per line */
	struct pending *pending, **pending_tail;	/* input to run */
	size_t npending;
	unsigned inflight;		/* messages awaiting commit */
	bool cmd_busy;			/* a command awaits the database */
	bool closing;			/* close requested: no more I/O */
	const char *close_reason;	/* why, for the log (NULL: the peer) */
	bool throttled;			/* transport told to stop reading */
	struct session *prev, *next;	/* chat's list, in connect order */
};

struct session *chat_find_session(struct chat *c, uint64_t sid);
/* Frees s now (its connection is gone or never was). */
void session_free(struct chat *c, struct session *s);
/* Closes s's connection (flushed first with flush). */
void session_kill(struct session *s, bool flush, const char *reason);
/* One more message (or command) within s's rate limit? */
bool session_may_post(struct chat *c, struct session *s);
bool session_may_command(struct chat *c, struct session *s);
/* One more of what kr limits for source address addr? */
bool chat_addr_take(struct chat *c, struct keyrate *kr, const char *addr);
/* Picks a fresh guest name. */
void session_guest_nick(struct chat *c, struct session *s);
/* Set s's nickname, or the one its /nick reserves ("" clears it), keeping
 * chat_nick_in_use()'s index current. */
void session_set_nick(struct chat *c, struct session *s, const char *nick);
void session_set_want(struct chat *c, struct session *s, const char *nick);
/* True when another session has (or is taking) nick, ignoring case. */
bool chat_nick_in_use(struct chat *c, const struct session *self,
		      const char *nick);

/* A reply to s: a notice (or, with error, an error) on a line session's
 * connection; a line of an API session's replies. */
void session_say(struct chat *c, struct session *s, bool error,
		 const char *text, size_t len);
void session_reply(struct chat *c, struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Replies "error: <text>" and remembers err as the session's last error. */
void session_fail(struct chat *c, struct session *s, int err,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* An API session's replies so far, joined by LF (caller frees); they are
 * gone from the session. */
char *session_take_replies(struct session *s);
/* Runs s's queued input while it may (no command waiting for the
 * database, few enough messages in flight), then tells the transport
 * whether s is idle or should stop reading. */
void session_pump(struct chat *c, struct session *s);

/* Whether s is a member of r (as known here): a lookup in s's set. */
static inline bool session_in_room(const struct session *s,
				   const struct room *r)
{
	return idmap_get(&s->rooms, (uint64_t)r->id) == r;
}
void session_add_room(struct chat *c, struct session *s, struct room *r);
/* Leaves r here: closes s's streams of it; a join of s waiting for r's
 * history ends at once (the caller pumps s). May free r. */
void session_remove_room(struct chat *c, struct session *s, struct room *r);
/* Shows the join line and history of r to s, now or once r synced, then
 * ends s's running command (and pumps it). */
void session_await_history(struct chat *c, struct session *s, struct room *r);
/* A stored session member of r acted through another instance (ev, a
 * leave or rename): follow it here. */
void session_follow_event(struct chat *c, struct room *r,
			  const struct chat_event *ev);

#endif
