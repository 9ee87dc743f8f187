/*
 * The chat core: sessions, rooms, commands, routing and history, with no
 * sockets and no database. Transports drive it through chat_session_*()
 * and receive output through a session's outq plus struct chat_sink_ops;
 * the database is reached through struct chat_store_ops, whose outcomes
 * come back through the chat_on_*() functions. Room traffic is delivered
 * only from chat_on_event() (committed data NOTIFYed by the database) and
 * from room syncs (history loads and catch-up after reconnects).
 */
#ifndef BD_CORE_CHAT_H
#define BD_CORE_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/names.h"
#include "core/outq.h"
#include "util/hist.h"

#define CHAT_MAX_LINE 4096	/* longest input line, bytes */
#define CHAT_ROOMS_PAGE 50	/* rooms per /rooms page; default limit */
#define CHAT_ROOMS_LIMIT_MAX 500	/* most rooms chat_rooms_after() gives */
#define CHAT_ADDR_LEN 64	/* a source address as text, with its NUL */
#define CHAT_ADDR_KEYS 65536	/* addresses each per address limit
				 * tracks at once */

struct chat;
struct session;
struct stream;

/* Line sessions (TCP) get room traffic as lines in their outq; API
 * sessions (HTTP) get only command replies there and read rooms through
 * streams. */
enum session_kind { SESSION_LINE, SESSION_API };

/* Implemented by each transport. None of these may call back into core
 * synchronously (in particular close must not call chat_session_closed()
 * from inside; it closes later, from the event loop). */
struct chat_sink_ops {
	/* The session's outq has bytes to write. */
	void (*wake)(void *conn);
	/* Close the connection; with flush, after the outq drained. */
	void (*close)(void *conn, bool flush);
	/* Stop (true) or resume (false) reading input. */
	void (*throttle)(void *conn, bool stop);
	/* Optional: all queued input handled and no command running. */
	void (*idle)(void *conn);
	/* Optional: outcome of chat_session_post() for `token`. */
	void (*posted)(void *conn, uint64_t token, int err, int64_t id,
		       int64_t seq);
};

struct chat_room_info;

/* Outcomes of requests that belong to no session. */
struct chat_api_ops {
	/* chat_list_rooms(): every room, sorted by name in byte order
	 * (chat_room_info_cmp(), whatever the database's collation), for
	 * chat_rooms_after(); rooms is NULL when err. Valid during the
	 * call only. err is BD_ECANCELED only when wanted(token) said
	 * false: nobody waits any more. */
	void (*rooms)(void *arg, uint64_t token, int err,
		      const struct chat_room_info *rooms, size_t n);
	/* Optional (NULL: always wanted). Whether the request `token` still
	 * has a client waiting for it. Asked, possibly many times, just
	 * before its read-only statement goes to the database, at any time
	 * between chat_list_rooms() and the rooms() outcome; false makes the
	 * store drop the statement unsent and rooms() come with
	 * BD_ECANCELED. Must not call back into core or the store, nor
	 * change anything: a pure lookup (e.g. is token still parked?). */
	bool (*wanted)(void *arg, uint64_t token);
	/* The outcomes of the API-session requests of api_session.h, each
	 * for the transport's request `req`. None may call back into core
	 * synchronously except where api_session.h says so. */
	/* chat_api_connect(): err 0 with the new session's token (its
	 * secret), user and nickname; BD_ETAKEN (nickname taken) or a
	 * store error. */
	void (*connected)(void *arg, uint64_t req, int err, const char *token,
			  int64_t uid, const char *nick);
	/* chat_api_resume(): err 0 with the key of this instance's copy of
	 * the session, brought up to date (the transport then carries on
	 * with chat_api_command() etc.); BD_ENOENT (no such session) or a
	 * store error. */
	void (*resumed)(void *arg, uint64_t req, int err, uint64_t key);
	/* chat_api_command(): what the command answered, its lines joined
	 * by LF (err: the command failed); BD_ENOENT when the session
	 * ended while it ran. */
	void (*replied)(void *arg, uint64_t req, int err, const char *text);
	/* chat_api_post(): committed as message id with its room's seq, or
	 * err (BD_ELOST: may have been committed). */
	void (*posted)(void *arg, uint64_t req, int err, int64_t id,
		       int64_t seq);
	/* chat_api_end(): ended (0), BD_ENOENT (already gone) or a store
	 * error. */
	void (*ended)(void *arg, uint64_t req, int err);
	/* The core wants chat_api_run() called soon, from the event loop
	 * (not from inside this call): it has sessions to drop. */
	void (*defer)(void *arg);
};

/* A room as the store reports it. */
struct chat_room_ref {
	int64_t id;
	const char *name;
};

/* One connected session, for /list and presence registration. */
struct chat_presence {
	uint64_t sid;
	const char *nick;
	int64_t uid;		/* 0 when not persisted yet */
	const char *room;	/* current room, or NULL */
};

/* One line of /rooms (and of GET /api/rooms). */
struct chat_room_info {
	const char *name;
	int64_t members;	/* persisted memberships */
	int64_t online;		/* of those, users connected now */
};

/* A stored HTTP API session as the database has it. */
struct chat_stored_session {
	int64_t id;				/* api_sessions.id */
	int64_t uid;
	const char *nick;
	const char *room;			/* current room, or NULL */
	const struct chat_room_ref *rooms;	/* memberships */
	size_t nrooms;
	/* Version of the memberships (users.rooms_version), -1 unknown.
	 * rooms_unchanged: it is the version asked about, rooms is NULL. */
	int64_t rooms_version;
	bool rooms_unchanged;
};

/* One stored message, from a history load or catch-up. */
struct chat_msg_row {
	int64_t seq, id, time_ms;
	const char *nick;
	const char *content;
	size_t content_len;
};

enum chat_event_kind {
	CHAT_EV_MESSAGE,	/* a committed message */
	CHAT_EV_JOIN,		/* uid/nick joined the room */
	CHAT_EV_LEAVE,		/* uid/nick left the room */
	CHAT_EV_NICK,		/* uid renamed from nick to new_nick */
	CHAT_EV_HISTORY,	/* old messages came back (migrate/replay):
				 * reload the room's ring from the table */
};

/* A notification from a room's channel, decoded by the store. */
struct chat_event {
	enum chat_event_kind kind;
	int64_t room_id;
	int64_t uid;		/* JOIN, LEAVE, NICK */
	const char *nick;	/* sender or subject */
	const char *new_nick;	/* NICK */
	int64_t rename_id;	/* NICK: the same for every room of one
				 * rename (shown once per session); 0:
				 * unknown */
	int64_t seq, id, time_ms;	/* MESSAGE */
	const char *content;	/* MESSAGE */
	size_t content_len;
	/* MESSAGE, CLOCK_MONOTONIC ns (0: unknown): when its NOTIFY was
	 * read and, for one this instance posted, when its line was read
	 * and its commit's result came back. */
	int64_t t_notify_ns, t_read_ns, t_result_ns;
};

/*
 * The database, as core needs it. Each call starts one asynchronous
 * operation and returns 0, or BD_EDB when the database is unavailable (then
 * nothing was started and no outcome will follow). The requests of users
 * (nick, join, leave, list, post, rooms) may also return BD_EBUSY: too
 * many of them wait for the database already (config db_queue_limit), so
 * nothing was started either; the others are never refused so. Outcomes
 * arrive later, in call order per operation kind, through the chat_on_*()
 * named. The reads list and rooms are dropped unsent when nobody wants
 * their answer any more (chat_session_wanted(), chat_api_wanted()), and
 * their outcome then comes with BD_ECANCELED. Strings are borrowed for the
 * duration of the call.
 */
struct chat_store_ops {
	/* Also updates the session's presence (current room `cur`, may be
	 * NULL): the row of this instance's session sid, or of the stored
	 * API session api_id when that is not 0. BD_ETAKEN when another
	 * connected session has nick. -> chat_on_nick() */
	int (*nick)(void *st, uint64_t sid, int64_t api_id, int64_t uid,
		    const char *old_nick, const char *nick, const char *cur);
	/* Join (or create and join) by name; presence gets the room (or
	 * keeps `cur` on failure). With create and max_rooms not 0, a new
	 * room is made only while the database holds fewer than max_rooms
	 * rooms (counted atomically with the insert), else the outcome is
	 * BD_EROOMSFULL; an existing name still comes back as room_id 0.
	 * -> chat_on_join() */
	int (*join)(void *st, uint64_t sid, int64_t api_id, int64_t uid,
		    const char *nick, const char *room, bool create,
		    size_t max_rooms, const char *cur);
	/* -> chat_on_leave() */
	int (*leave)(void *st, uint64_t sid, int64_t api_id, int64_t uid,
		     const char *nick, int64_t room_id);
	/* Registers a connected session cluster-wide. -> chat_on_presence() */
	int (*presence_add)(void *st, uint64_t sid, const char *nick);
	/* The session is gone. No outcome. */
	void (*presence_del)(void *st, uint64_t sid);
	/* Connected sessions of every instance. -> chat_on_list() */
	int (*list)(void *st, uint64_t sid);
	/* Commit a message and NOTIFY it. -> chat_on_posted() */
	int (*post)(void *st, uint64_t sid, uint64_t token, int64_t room_id,
		    int64_t uid, const char *nick, const char *content,
		    size_t len);
	/* Room list with member and online counts. -> chat_on_rooms() */
	int (*rooms)(void *st, uint64_t sid, uint64_t token);
	/* The oldest `limit` messages after seq `after`. -> chat_on_replay() */
	int (*replay)(void *st, int64_t room_id, uint64_t token, int64_t after,
		      unsigned limit);
	/* LISTEN on the room's channel, then load its messages after seq
	 * `after` (the newest `limit` of them). -> chat_on_room_sync() */
	int (*watch)(void *st, int64_t room_id, uint64_t gen, int64_t after,
		     unsigned limit);
	/* UNLISTEN the room's channel. No outcome. */
	void (*unwatch)(void *st, int64_t room_id);
	/* Stored HTTP API sessions (api_session.h). `req` names the
	 * request; `token` is the session's secret (32 hex digits; the
	 * database keeps only its SHA-256).
	 * A new session for nick: BD_ETAKEN when a connected session has
	 * it. May return BD_EBUSY. -> chat_on_session_opened() */
	int (*session_open)(void *st, const char *token, const char *nick,
			    uint64_t req);
	/* The session now, marked active; its memberships only when their
	 * version is not known_version (-1: always); BD_ENOENT when it
	 * ended or has been idle for idle_s. May return BD_EBUSY; dropped
	 * unsent (BD_ECANCELED) when chat_api_wanted(req) says nobody
	 * waits. -> chat_on_session_resumed() */
	int (*session_resume)(void *st, const char *token, unsigned idle_s,
			      int64_t known_version, uint64_t req);
	/* Ends session id everywhere (NOTIFY session_end). req 0: no
	 * outcome wanted. -> chat_on_session_ended() */
	int (*session_end)(void *st, int64_t id, uint64_t req);
	/* Keeps the n sessions in keep alive, ends those idle for idle_s
	 * and reports each kept one's state. -> chat_on_session_tick() for
	 * each */
	int (*session_tick)(void *st, const int64_t *keep, size_t n,
			    unsigned idle_s);
};

struct chat_config {
	size_t history_size;		/* messages per room ring */
	size_t max_message_bytes;	/* content limit after sanitizing */
	size_t outq_limit;		/* bytes queued per session */
	uint64_t seed;			/* guest nickname randomness */
	size_t max_rooms;		/* rooms /create may make the total
					 * (the database counts); 0: no cap */
	size_t max_rooms_per_user;	/* memberships /join and /create may
					 * reach; 0: no cap */
	/* Per session token buckets: rate per second (0: no limit) and
	 * burst, for messages and for commands. */
	unsigned msg_rate, msg_burst, cmd_rate, cmd_burst;
	/* Per source address token buckets: new HTTP sessions and /create
	 * commands a minute (0: no limit) and their bursts. */
	unsigned connect_per_min, connect_burst, create_per_min, create_burst;
	/* The clock of the rate limits, microseconds (NULL: monotonic). */
	int64_t (*now_us)(void);
};

/* Counters for /health and /metrics. */
#define CHAT_NCOMMANDS 8	/* the line protocol's commands */

/* Where one message's time goes (microseconds, histograms in
 * chat_stats.lat). "read" is when its line or request was read (it is
 * queued for the database in the same callback). */
enum chat_lat {
	CHAT_LAT_QUEUE,		/* read -> its batch sent */
	CHAT_LAT_COMMIT,	/* batch sent -> result (committed) */
	CHAT_LAT_NOTIFY,	/* result -> its NOTIFY read here */
	CHAT_LAT_FIRST,		/* NOTIFY -> first copy written */
	CHAT_LAT_LAST,		/* NOTIFY -> last copy written */
	CHAT_LAT_READ_COMMIT,	/* read -> result */
	CHAT_LAT_DELIVERY,	/* result -> last copy written */
	CHAT_LAT_READ_FIRST,	/* read -> first copy written */
	CHAT_LAT_READ_LAST,	/* read -> last copy written */
	CHAT_LAT_N
};

/* "queue", "commit", ... (i < CHAT_LAT_N). */
const char *chat_lat_name(size_t i);

struct chat_stats {
	uint64_t sessions_opened;
	uint64_t history_hits;		/* joins served from a live ring */
	uint64_t history_misses;	/* joins that had to load the ring */
	uint64_t messages_posted;	/* committed by this instance */
	uint64_t messages_delivered;	/* lines queued to sessions */
	uint64_t events_dropped;	/* duplicates dropped by (room, seq) */
	uint64_t slow_consumers;	/* sessions closed for a full outq */
	uint64_t syncs_skipped;		/* chat_session_sync() calls that
					 * found nothing to change */
	uint64_t messages_received;	/* handed to the store to commit */
	uint64_t events_delivered;	/* message events queued to streams */
	uint64_t rejected[BD_NERRS];	/* refusals by code (-code - 1) */
	uint64_t commands[CHAT_NCOMMANDS]; /* by chat_command_name() */
	struct hist lat[CHAT_LAT_N];	/* by enum chat_lat, microseconds */
};

/* Records a stage measured outside the core (the store's). */
void chat_record_latency(struct chat *c, enum chat_lat stage, uint64_t us);

/* The name of command i (0 .. CHAT_NCOMMANDS-1), without its slash. */
const char *chat_command_name(size_t i);

struct chat *chat_new(const struct chat_config *cfg,
		      const struct chat_store_ops *store, void *st);
void chat_set_api(struct chat *c, const struct chat_api_ops *api, void *arg);
/* Frees everything, sessions included (their connections are gone). */
void chat_free(struct chat *c);
const struct chat_stats *chat_get_stats(const struct chat *c);
size_t chat_session_count(const struct chat *c);
/* Of chat_session_count(): line (TCP) sessions and HTTP sessions. */
size_t chat_tcp_count(const struct chat *c);
size_t chat_api_count(const struct chat *c);
/* Rooms held in memory (with members or streams here). */
size_t chat_room_count(const struct chat *c);
/* Tells s why (a notice) and closes it once that went out; reason is for
 * the log. */
void chat_session_expel(struct chat *c, struct session *s,
			const char *notice, const char *reason);
/* Tells every session the server is going down and closes it (flushed). */
void chat_shutdown(struct chat *c);
/* Where s's input comes from now (its peer's address; for an API session
 * the address of the request it runs): the key of the per address
 * limits (/create). */
void chat_session_set_addr(struct session *s, const char *addr);

/* A new session: assigns a guest nickname; line sessions get the
 * welcome. */
struct session *chat_session_open(struct chat *c, enum session_kind kind,
				  const struct chat_sink_ops *sink,
				  void *conn);
/* A session stored in the database (an HTTP API session, api_id being
 * its row): its presence is the stored session's, kept by the database,
 * so opening and closing it here registers nothing. Several instances may
 * hold one at once; chat_session_sync() brings it up to date. */
struct session *chat_session_open_api(struct chat *c,
				      const struct chat_sink_ops *sink,
				      void *conn, int64_t api_id);
/* A stored session's state as the database has it now: user, nickname,
 * current room (or NULL) and memberships (distinct ids, any order). Rooms
 * it no longer belongs to are left here, closing its streams of them.
 * When that is the state the session has here already (compared in
 * O(n) through a fingerprint of its rooms), nothing is done and
 * stats.syncs_skipped counts it; else the difference is applied in
 * O(n + rooms it had). */
void chat_session_sync(struct chat *c, struct session *s, int64_t uid,
		       const char *nick, const char *room,
		       const struct chat_room_ref *rooms, size_t n);
/* The same when the memberships are known not to have changed since the
 * last chat_session_sync() (the database's version of them says so):
 * user, nickname and current room only, in O(1). */
void chat_session_sync_head(struct chat *c, struct session *s, int64_t uid,
			    const char *nick, const char *room);
/* One input line (without its terminator). Queued and processed in order;
 * replies go to the session's outq. */
void chat_session_input(struct chat *c, struct session *s, const char *line,
			size_t len);
/* The transport discarded an over-long input line. */
void chat_session_line_too_long(struct chat *c, struct session *s);
/* The connection is gone: frees s. */
void chat_session_closed(struct chat *c, struct session *s);

uint64_t session_id(const struct session *s);
const char *session_nick(const struct session *s);
int64_t session_uid(const struct session *s);
/* The stored session's id, 0 for sessions of this process only. */
int64_t session_api_id(const struct session *s);
/* The BD_E* code of the last error the session was told about, or 0;
 * cleared by session_clear_error(). */
int session_last_error(const struct session *s);
void session_clear_error(struct session *s);
/* Posts text to the named room for an API session. 0: the outcome comes
 * through sink->posted(token); else BD_EPERM (not a member), BD_EINVAL
 * (empty), BD_EUTF8, BD_ETOOLONG, BD_EDB. */
int chat_session_post(struct chat *c, struct session *s, const char *room,
		      const char *text, size_t len, uint64_t token);
/* Changes whenever this instance sees something that may change the room
 * list or its counts (a room made, joined or left here or in a room it
 * listens to; a session here opened or closed). Rooms changed elsewhere,
 * in rooms nobody here is in, do not move it. */
uint64_t chat_rooms_version(const struct chat *c);
/* Room list for no session. 0, BD_EDB or BD_EBUSY. -> api->rooms(token) */
int chat_list_rooms(struct chat *c, uint64_t token);
/* qsort() order of struct chat_room_info: by name, strcmp(). */
int chat_room_info_cmp(const void *a, const void *b);
/*
 * One page of a room list sorted by chat_room_info_cmp() (as api->rooms()
 * gets it), for GET /api/rooms?limit=&after=: the rooms whose names sort
 * after `after` (NULL or "": from the first; a name that is not in the
 * list works too, so a room deleted between two pages loses nothing),
 * at most `limit` of them (0: CHAT_ROOMS_PAGE; over CHAT_ROOMS_LIMIT_MAX:
 * that many). Returns the index of the page's first room (n when the page
 * is empty) and sets *count; rooms remain after the page when
 * first + *count < n, and the next page is the one after the name of
 * rooms[first + *count - 1]. O(log n + 1). rooms may be NULL when n is 0.
 */
size_t chat_rooms_after(const struct chat_room_info *rooms, size_t n,
			const char *after, size_t limit, size_t *count);
/* True when a room of that name is in use here: some local session is a
 * member of it or has a stream of it open (rooms nothing uses are freed,
 * so false says nothing about the database). */
bool chat_room_known(struct chat *c, const char *room);

/* A stream of one room's events (SSE) for an API session that is a member.
 * last_seq < 0: starts with the history; else with what came after it.
 * NULL with *err BD_EPERM (not a member). Output goes to its outq; the
 * sink's close may be called (session gone, slow reader, shutdown). */
struct stream *chat_stream_open(struct chat *c, struct session *s,
				const char *room, int64_t last_seq,
				const struct chat_sink_ops *sink, void *conn,
				int *err);
/* The transport closed the stream: frees it. */
void chat_stream_closed(struct chat *c, struct stream *st);
struct outq *stream_outq(struct stream *st);
size_t chat_stream_count(const struct chat *c);
/* Queues a keep-alive comment on every stream. */
void chat_heartbeat(struct chat *c);
struct outq *session_outq(struct session *s);
/* True once core asked the transport to close the connection. */
bool session_is_closing(const struct session *s);
/* Whether a read requested for session sid (list, rooms) still has
 * someone to answer: the session exists and is not closing. For the store,
 * just before it sends such a statement; a pure lookup. */
bool chat_session_wanted(struct chat *c, uint64_t sid);
/* The same for a request of no session (chat_list_rooms(token)): the API
 * ops' wanted(token), true when there is no such hook. */
bool chat_api_wanted(struct chat *c, uint64_t token);

/* Registering this instance's sessions again after a reconnect found
 * session sid's nickname taken by another session meanwhile: sid goes on
 * as a new guest in no room (and is told). */
void chat_on_nick_lost(struct chat *c, uint64_t sid);
/* Store outcomes. sid names the session that asked; it may be gone. */
void chat_on_nick(struct chat *c, uint64_t sid, int err, int64_t uid,
		  const char *nick, const struct chat_room_ref *rooms,
		  size_t n);
void chat_on_join(struct chat *c, uint64_t sid, int err, int64_t uid,
		  int64_t room_id, const char *room_name);
void chat_on_leave(struct chat *c, uint64_t sid, int err);
void chat_on_presence(struct chat *c, uint64_t sid, int err);
void chat_on_list(struct chat *c, uint64_t sid, int err,
		  const struct chat_presence *rows, size_t n);
/* The sessions of this process, stored API sessions aside (for
 * re-registering them after a reconnect); the array is the caller's to
 * free, strings are borrowed. */
struct chat_presence *chat_presence_snapshot(struct chat *c, size_t *n);
void chat_on_posted(struct chat *c, uint64_t sid, uint64_t token, int err,
		    int64_t id, int64_t seq);
void chat_on_rooms(struct chat *c, uint64_t sid, uint64_t token, int err,
		   const struct chat_room_info *rooms, size_t n);
void chat_on_replay(struct chat *c, uint64_t token, int err,
		    const struct chat_msg_row *rows, size_t n);
void chat_on_room_sync(struct chat *c, int64_t room_id, uint64_t gen,
		       int err, const struct chat_msg_row *rows, size_t n);
/* A decoded notification. A join or leave of a live room is held for
 * chat_on_events_done(), with the room's others of the same kind (another
 * event of the room shows them first, so the order holds); the rest is
 * delivered (or parked while the room syncs) at once. */
void chat_on_event(struct chat *c, const struct chat_event *ev);
/* The notifications of one read are all in: the store calls it after the
 * chat_on_event() calls of one read of the LISTEN connection, before any
 * other chat_on_*() call (chat_on_listen_down() calls it itself). Each
 * room's held joins or leaves are shown now as one notice (see the
 * README): the people it names get it without their own name. */
void chat_on_events_done(struct chat *c);
/* The LISTEN connection came up (again) or went down. */
void chat_on_listen_up(struct chat *c);
void chat_on_listen_down(struct chat *c);

#endif
