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
enum room_state {
	ROOM_IDLE,	/* no local members: not listening, ring unused */
	ROOM_SYNCING,	/* LISTEN + load in flight; events are parked */
	ROOM_LIVE,	/* listening; ring current */
	ROOM_STALE,	/* has members but notifications were lost */
};

struct room;
struct room_sub;

/* A system notice of a room, in each transport's frame, with the rules
 * its subscribers apply: its subject does not get it (room_notice_skips())
 * and a line session gets one rename once across its rooms. */
struct room_notice {
	struct outbuf *line;	/* for line sessions */
	struct outbuf *sse;	/* the same text for streams */
	int64_t skip_uid;	/* the subject, by user id (0: none) */
	const char *skip_nick;	/* or by nickname, for a rename (or NULL) */
	int64_t once;		/* rename_id: the same in every room of one
				 * rename; 0: no such rule */
};

/* What a room calls on its subscribers. Each is called on the loop, from
 * a store outcome; none may free the subscriber or its room. */
struct room_sub_ops {
	/* A message, each once and in seq order; m is borrowed. */
	void (*message)(struct chat *c, struct room_sub *sub, struct room *r,
			struct msg *m);
	/* A notice; the subscriber applies its rules. */
	void (*notice)(struct chat *c, struct room_sub *sub, struct room *r,
		       const struct room_notice *n);
	/* The room went live (ok: its ring is current) or failed to sync:
	 * for a member once per room_await(), for a stream on every sync
	 * that succeeds. */
	void (*ready)(struct chat *c, struct room_sub *sub, struct room *r,
		      bool ok);
};

/* A subscriber of rooms, embedded in what subscribes (a session, a
 * stream): one handle serves all its rooms. */
struct room_sub {
	const struct room_sub_ops *ops;
};

struct parked;

struct room {
	int64_t id;			/* rooms.id */
	char name[ROOM_NAME_MAX + 1];
	struct room_sub **members;	/* local sessions that are members */
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
	struct parked *parked, **parked_tail;	/* events while syncing */
	struct room_sub **waiters;	/* members waiting for the history */
	size_t nwaiters, capwaiters;
	struct room_sub **streams;	/* open streams of this room: they get
					 * its traffic but are not members */
	size_t nstreams, capstreams;
};

/* An event stream of one room for an API session (SSE). */
struct stream {
	struct room_sub sub;		/* how its room reaches it */
	uint64_t id;			/* token of its database replay */
	struct session *s;		/* owner; NULL once it is gone */
	const int64_t *owner_uid;	/* the owner's user id and nickname,
					 * lent by it (renames show) while s
					 * is set: a notice's subject rule */
	const char *owner_nick;
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
	struct room_sub sub;		/* how its rooms reach it */
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
	struct room *awaiting;		/* whose history the running command
					 * (a join) waits for, or NULL */
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
	/* Runs a session's input line (cmd_input()); a pointer so that
	 * session.c, below commands.c, calls up without naming it. */
	void (*run_line)(struct chat *c, struct session *s, char *line,
			 size_t len);
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
/* Leaves r here: closes s's streams of it; a join of s waiting for r's
 * history ends at once (the caller pumps s). */
void session_remove_room(struct chat *c, struct session *s, struct room *r);
/* Shows the join line and history of r to s, now or once r synced, then
 * ends s's running command. */
void session_await_history(struct chat *c, struct session *s, struct room *r);
/* A stored session member of r acted through another instance (ev, a
 * leave or rename): follow it here. */
void session_follow_event(struct chat *c, struct room *r,
			  const struct chat_event *ev);


/* room.c */
struct room *room_get(struct chat *c, int64_t id);
/* The room, made (idle) if not in use here; the caller makes it used
 * (adds a member) before returning to the loop. */
struct room *room_get_or_add(struct chat *c, int64_t id, const char *name);
/* Frees r if nothing here uses it any more (no member, no stream): it
 * is unwatched already; a later join makes and loads it again. */
void room_release(struct chat *c, struct room *r);
void room_free(struct room *r);
/* A member: the room is watched while it has one; sub gets its traffic
 * and may wait for its history. The caller removes a member waiting for
 * the history with room_cancel_await() first. */
void room_add_member(struct chat *c, struct room *r, struct room_sub *sub);
void room_remove_member(struct chat *c, struct room *r, struct room_sub *sub);
/* A stream: gets the traffic and keeps r in use, does not keep it
 * watched. */
void room_add_stream(struct room *r, struct room_sub *sub);
void room_remove_stream(struct room *r, struct room_sub *sub);
/* Member sub's ready() once the history is there: at once when r is live,
 * else when its sync ends (counted as a history hit or miss). */
void room_await(struct chat *c, struct room *r, struct room_sub *sub);
/* sub waits no more; false when it was not waiting. */
bool room_cancel_await(struct room *r, struct room_sub *sub);
bool room_is_live(const struct room *r);
/* Whether r hears its notifications now (syncing or live). */
bool room_is_listening(const struct room *r);
/* A notification of r (which is listening): delivered, or parked while
 * r syncs. */
void room_take_event(struct chat *c, struct room *r,
		     const struct chat_event *ev);
/* Whether the subscriber with user id uid and nickname nick is n's
 * subject, which does not get it. */
bool room_notice_skips(const struct room_notice *n, int64_t uid,
		       const char *nick);
/* A room in use here, by name. */
struct room *room_find(struct chat *c, const char *name);

/* stream.c */
/* A new stream of r for the session owner (whose user id and nickname it
 * borrows, see struct stream) resuming after seq resume (-1: history);
 * it starts at once when r is live, else when r's sync ends. */
struct stream *stream_new(struct chat *c, struct room *r,
			  struct session *owner, const int64_t *owner_uid,
			  const char *owner_nick,
			  const struct chat_sink_ops *sink, void *conn,
			  int64_t resume);
void stream_free(struct chat *c, struct stream *st);
void stream_send(struct chat *c, struct stream *st, struct outbuf *b);
/* Asks the transport to close it (flushed or not). */
void stream_kill(struct stream *st, bool flush);
/* Its owner goes: the stream stops using its identity and gets no more
 * notices; it still has to be killed. */
void stream_detach(struct stream *st);
struct session *stream_owner(const struct stream *st);
struct room *stream_room(const struct stream *st);

/* commands.c */
/* One input line of s, cleaned (valid UTF-8, no controls, not blank;
 * NUL-terminated at len): a command ("/name args") or a message for the
 * current room. Replies on s. chat_new() sets struct chat's run_line to
 * it. */
void cmd_input(struct chat *c, struct session *s, char *line, size_t len);
/* /rooms' outcome for s: rooms sorted by chat_room_info_cmp(). Ends the
 * command. */
void cmd_rooms_done(struct chat *c, struct session *s, int err,
		    const struct chat_room_info *rooms, size_t n);
/* The command table, for its unit test. */
size_t cmd_table_size(void);
const char *cmd_table_name(size_t i);
const char *cmd_table_usage(size_t i);

#endif
