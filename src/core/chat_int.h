/*
 * Internals shared by the core's .c files (chat.c, session.c, room.c,
 * commands.c, stream.c, api_session.c).
 * Nothing outside src/core includes this.
 */
#ifndef BD_CORE_CHAT_INT_H
#define BD_CORE_CHAT_INT_H

#include "core/api_session.h"
#include "core/chat.h"
#include "core/msg.h"
#include "util/idmap.h"
#include "util/strbuf.h"
#include "util/strmap.h"

#define SESSION_PENDING_MAX 64	/* queued input lines before throttling */
#define SESSION_INFLIGHT_MAX 64	/* uncommitted messages per session */
#define CATCHUP_LIMIT 10000	/* messages fetched per catch-up */

enum room_state {
	ROOM_IDLE,	/* no local members: not listening, ring unused */
	ROOM_SYNCING,	/* LISTEN + load in flight; events are parked */
	ROOM_LIVE,	/* listening; ring current */
	ROOM_STALE,	/* has members but notifications were lost */
};

/* An event that arrived while its room was syncing. */
struct parked {
	struct parked *next;
	struct msg *msg;	/* a message, or NULL for a notice */
	struct outbuf *notice;	/* a system line for line members */
	struct outbuf *sse;	/* the same notice for streams */
	int64_t skip_uid;	/* the notice's subject doesn't get it, */
	char skip_nick[NICK_MAX + 1];	/* by user id or (renames) nick */
	int64_t once;		/* rename_id: line sessions get it once */
};

struct room {
	int64_t id;			/* rooms.id */
	char name[ROOM_NAME_MAX + 1];
	struct session **members;	/* local sessions that are members */
	size_t nmembers, capmembers;
	enum room_state state;
	uint64_t sync_gen;		/* matches watch() to its outcome;
					 * drawn from chat's counter, so a
					 * room freed and made again never
					 * takes its old sync's outcome */
	bool sync_initial;		/* the sync in flight loads the ring */
	bool ring_valid;		/* ring and last_seq are current */
	int64_t last_seq;		/* newest seq seen (delivered) */
	struct ring ring;		/* last history_size messages */
	struct parked *parked, **parked_tail;
	uint64_t *waiters;		/* sessions waiting for history */
	size_t nwaiters, capwaiters;
	struct stream **streams;	/* open streams of this room */
	size_t nstreams, capstreams;
};

/* An event stream of one room for an API session (SSE). */
struct stream {
	uint64_t id;			/* token of its database replay */
	struct session *s;		/* owner; NULL once it is gone */
	struct room *room;
	const struct chat_sink_ops *sink;
	void *conn;
	struct outq outq;
	int64_t resume;			/* replay after this seq; -1: none */
	int64_t last_seq;		/* newest message seq sent */
	bool started;			/* history or replay begun */
	bool replaying;			/* database replay in flight */
	bool closing;			/* close requested */
	struct msg **parked;		/* live messages during the replay */
	size_t nparked, capparked;
};

/* An input line not processed yet. */
struct pending {
	struct pending *next;
	bool too_long;		/* stands for a discarded over-long line */
	size_t len;
	char line[];		/* len bytes + NUL */
};

struct session {
	uint64_t id;			/* unique for the process lifetime */
	enum session_kind kind;
	int64_t api_id;			/* api_sessions.id, or 0 */
	int last_err;			/* last error reported, or 0 */
	struct stream **streams;	/* this session's open streams */
	size_t nstreams, capstreams;
	const struct chat_sink_ops *sink;
	void *conn;			/* the transport's handle */
	char nick[NICK_MAX + 1];
	char want_nick[NICK_MAX + 1];	/* reserved while /nick runs */
	int64_t uid;			/* users.id, 0 until persisted */
	int64_t seen_rename;		/* rename_id of the last rename shown */
	struct idmap rooms;		/* room id -> room: memberships known
					 * locally */
	uint64_t rooms_sum;		/* sum of room_id_mix() over rooms,
					 * for chat_session_sync() */
	struct room *current;		/* where plain lines go */
	char arg[ROOM_NAME_MAX + 1];	/* room name of a running command */
	size_t page;			/* page a running /rooms shows, from 1 */
	struct outq outq;		/* line sessions: what to write */
	struct strbuf replies;		/* API sessions: the running command's
					 * replies, one text per line */
	struct pending *pending, **pending_tail;
	size_t npending;
	unsigned inflight;		/* messages awaiting commit */
	bool cmd_busy;			/* a command awaits the database */
	bool closing;			/* close requested: no more I/O */
	bool throttled;			/* transport told to stop reading */
	struct session *prev, *next;	/* chat's list, in connect order */
};

struct chat {
	struct chat_config cfg;
	const struct chat_store_ops *store;
	void *st;
	struct idmap sessions;		/* id -> session */
	struct session *first, *last;	/* all sessions, connect order */
	size_t nsessions;
	uint64_t next_sid;
	struct idmap rooms;		/* id -> room, only rooms in use: with
					 * local members or open streams */
	struct strmap room_names;	/* name -> room, the same rooms */
	uint64_t sync_gen;		/* last generation given a sync */
	struct idmap streams;		/* id -> stream */
	uint64_t next_stream_id;
	const struct chat_api_ops *api;
	void *api_arg;
	bool listen_up;			/* notifications are flowing */
	uint64_t rng;			/* xorshift state */
	struct chat_stats stats;
	uint64_t rooms_version;		/* see chat_rooms_version() */
	struct api_sessions *apis;	/* api_session.c; NULL until
					 * chat_api_start() */
};

/* api_session.c: frees the copies (and their sessions). */
void api_sessions_free(struct chat *c);

/* session.c: frees s now (its connection is gone or never was); closes
 * s's connection (flushed first with flush); picks a fresh guest name. */
void session_free(struct chat *c, struct session *s);
void session_kill(struct session *s, bool flush);
void session_guest_nick(struct chat *c, struct session *s);
struct session *chat_find_session(struct chat *c, uint64_t sid);
void session_send(struct chat *c, struct session *s, struct outbuf *b);
/* A reply to s: a notice (or, with error, an error) on a line session's
 * connection; a line of an API session's replies. */
void session_say(struct chat *c, struct session *s, bool error,
		 const char *text, size_t len);
/* An API session's replies so far, joined by LF (caller frees); they are
 * gone from the session. */
char *session_take_replies(struct session *s);
void session_reply(struct chat *c, struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Replies "error: <text>" and remembers err as the session's last error. */
void session_fail(struct chat *c, struct session *s, int err,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void session_pump(struct chat *c, struct session *s);
/* Starts /rooms for s (online users counted), showing s->page. 0 or
 * BD_EDB. */
int chat_session_rooms(struct chat *c, struct session *s);
/* Validates (UTF-8, not blank, size) and strips controls in place. */
int chat_clean_text(struct chat *c, char *text, size_t *len);
/* True when another session has (or is taking) nick, ignoring case. */
bool chat_nick_in_use(struct chat *c, const struct session *self,
		      const char *nick);
/* Whether s is a member of r (as known here): a lookup in s's set. */
static inline bool session_in_room(const struct session *s,
				   const struct room *r)
{
	return idmap_get(&s->rooms, (uint64_t)r->id) == r;
}
void session_add_room(struct chat *c, struct session *s, struct room *r);
void session_remove_room(struct chat *c, struct session *s, struct room *r);


/* room.c */
struct room *room_get(struct chat *c, int64_t id);
/* The room, made (idle) if not in use here; the caller makes it used
 * (adds a member) before returning to the loop. */
struct room *room_get_or_add(struct chat *c, int64_t id, const char *name);
/* Frees r if nothing here uses it any more (no member, no stream): it
 * is unwatched already; a later join makes and loads it again. */
void room_release(struct chat *c, struct room *r);
void room_free(struct room *r);
void room_add_member(struct chat *c, struct room *r, struct session *s);
void room_remove_member(struct chat *c, struct room *r, struct session *s);
/* Shows the join line and history to s, now or once the room synced. */
void room_show_history(struct chat *c, struct room *r, struct session *s);
void room_deliver_msg(struct chat *c, struct room *r, struct msg *m);
/* Sends b to the room's members except its subject: the member with user
 * id skip_uid or nickname skip_nick (either may be 0/NULL). A line session
 * that already got the notice numbered once (not 0) from another room
 * does not get it again. */
void room_deliver_notice(struct chat *c, struct room *r, struct outbuf *b,
			 struct outbuf *sse, int64_t skip_uid,
			 const char *skip_nick, int64_t once);
/* A room in use here, by name. */
struct room *room_find(struct chat *c, const char *name);

/* stream.c */
/* Begins a stream once its room is live: history or replay. */
void stream_start(struct chat *c, struct stream *st);
void stream_deliver_msg(struct chat *c, struct stream *st, struct room *r,
			struct msg *m);
void stream_send(struct chat *c, struct stream *st, struct outbuf *b);
/* Asks the transport to close it (flushed or not). */
void stream_kill(struct stream *st, bool flush);
/* Closes s's streams of room r (all rooms when r is NULL). */
void session_close_streams(struct session *s, struct room *r);

/* commands.c */
/* Runs one command line ("/name args"); replies on s. */
void cmd_run(struct chat *c, struct session *s, char *line);
/* A message line: validate and post. */
void cmd_post(struct chat *c, struct session *s, char *text, size_t len);
/* The command table, for its unit test. */
size_t cmd_table_size(void);
const char *cmd_table_name(size_t i);
const char *cmd_table_usage(size_t i);

#endif
