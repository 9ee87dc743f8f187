/*
 * Sessions and the input pump: every input line is queued and processed in
 * order; a command waits for the session's uncommitted messages and
 * messages wait for a running command, so replies follow input order.
 * Replies go out in each transport's format (wire.c). A session is a
 * subscriber of its rooms (struct room_sub) and owns its streams.
 */
#include "core/session_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/instance_int.h"
#include "core/msg.h"
#include "core/room_int.h"
#include "core/stream_int.h"
#include "core/wire.h"
#include "log.h"
#include "util/clock.h"
#include "util/strbuf.h"
#include "util/utf8.h"
#include "util/xalloc.h"

/* An input line not processed yet. */
struct pending {
	struct pending *next;
	bool too_long;		/* stands for a discarded over-long line */
	size_t len;
	char line[];		/* len bytes + NUL */
};

uint64_t session_id(const struct session *s)
{
	return s->id;
}

const char *session_nick(const struct session *s)
{
	return s->nick;
}

int64_t session_uid(const struct session *s)
{
	return s->uid;
}

int64_t session_api_id(const struct session *s)
{
	return s->api_id;
}

int session_last_error(const struct session *s)
{
	return s->last_err;
}

void session_clear_error(struct session *s)
{
	s->last_err = 0;
}

struct outq *session_outq(struct session *s)
{
	return &s->outq;
}

bool session_is_closing(const struct session *s)
{
	return s->closing;
}

/* Asks the transport to close s; core stops all I/O on it at once. */
struct session *chat_find_session(struct chat *c, uint64_t sid)
{
	return idmap_get(&c->sessions, sid);
}

bool chat_session_wanted(struct chat *c, uint64_t sid)
{
	struct session *s = chat_find_session(c, sid);

	return s && !s->closing;
}

void session_kill(struct session *s, bool flush, const char *reason)
{
	if (s->closing)
		return;
	s->closing = true;
	s->close_reason = reason;
	s->sink->close(s->conn, flush);
}

static void session_send(struct chat *c, struct session *s,
			 struct outbuf *b)
{
	if (s->closing)
		return;
	if (outq_push(&s->outq, b)) {
		c->stats.slow_consumers++;
		log_warn("slow_consumer", LOG_U("conn", s->id),
			 LOG_S("nick", s->nick), LOG_U("queued", s->outq.bytes),
			 LOG_U("more", b->len), LOG_U("limit", s->outq.limit));
		session_kill(s, false, "slow consumer");
		return;
	}
	c->stats.messages_delivered++;
	s->sink->wake(s->conn);
}

void session_say(struct chat *c, struct session *s, bool error,
		 const char *text, size_t len)
{
	struct outbuf *b;

	if (s->kind == SESSION_API) {
		if (s->replies.len)
			sb_puts(&s->replies, "\n");
		sb_append(&s->replies, text, len);
		return;
	}
	b = error ? wire_line_error(text, len) : wire_line_notice(text, len);
	session_send(c, s, b);
	outbuf_unref(b);
}

char *session_take_replies(struct session *s)
{
	return s->replies.len ? sb_detach(&s->replies, NULL) : xstrdup("");
}

/* session_say() of a formatted text (at most 1 KiB). */
static void session_sayv(struct chat *c, struct session *s, bool error,
			 const char *fmt, va_list ap)
{
	char text[1024];
	int n = vsnprintf(text, sizeof(text), fmt, ap);

	session_say(c, s, error, text,
		    n < (int)sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

void session_reply(struct chat *c, struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_sayv(c, s, false, fmt, ap);
	va_end(ap);
}

void session_fail(struct chat *c, struct session *s, int err,
		  const char *fmt, ...)
{
	va_list ap;

	s->last_err = err;
	if (err < 0 && err >= -BD_NERRS)
		c->stats.rejected[-err - 1]++;
	va_start(ap, fmt);
	session_sayv(c, s, true, fmt, ap);
	va_end(ap);
}

/* FNV-1a of nick's bytes, ASCII letters folded (nicknames are ASCII);
 * never 0, idmap's empty key. */
static uint64_t nick_key(const char *nick)
{
	uint64_t h = 14695981039346656037u;

	for (const unsigned char *p = (const unsigned char *)nick; *p; p++) {
		h ^= (*p >= 'A' && *p <= 'Z') ? *p + ('a' - 'A') : *p;
		h *= 1099511628211u;
	}
	return h ? h : 1;
}

/* Moves one count of chat's nicks index from *key to nick's key. */
static void nick_index(struct chat *c, const struct session *s,
		       uint64_t *key, const char *nick)
{
	uint64_t k = nick[0] && !s->api_id ? nick_key(nick) : 0;
	uintptr_t n;

	if (*key) {
		n = (uintptr_t)idmap_get(&c->nicks, *key) - 1;
		if (n)
			idmap_put(&c->nicks, *key, (void *)n);
		else
			idmap_del(&c->nicks, *key);
	}
	*key = k;
	if (k)
		idmap_put(&c->nicks, k,
			  (void *)((uintptr_t)idmap_get(&c->nicks, k) + 1));
}

void session_set_nick(struct chat *c, struct session *s, const char *nick)
{
	snprintf(s->nick, sizeof(s->nick), "%s", nick);
	nick_index(c, s, &s->nick_key, s->nick);
}

void session_set_want(struct chat *c, struct session *s, const char *nick)
{
	snprintf(s->want_nick, sizeof(s->want_nick), "%s", nick);
	nick_index(c, s, &s->want_key, s->want_nick);
}

bool chat_nick_in_use(struct chat *c, const struct session *self,
		      const char *nick)
{
	uint64_t k = nick_key(nick);
	uintptr_t n = (uintptr_t)idmap_get(&c->nicks, k);

	/* The index answers "no" at once (the usual case, also for a crowd
	 * arriving); a "yes" is confirmed name by name, as a hash can
	 * collide. */
	if (self)
		n -= (self->nick_key == k) + (self->want_key == k);
	if (!n)
		return false;
	for (struct session *s = c->first; s; s = s->next) {
		/* A stored session's nickname here may be stale: the
		 * database's presence decides for those. */
		if (s == self || s->api_id)
			continue;
		if (name_equal_nocase(s->nick, nick) ||
		    (s->want_nick[0] && name_equal_nocase(s->want_nick, nick)))
			return true;
	}
	return false;
}

void session_guest_nick(struct chat *c, struct session *s)
{
	char nick[NICK_MAX + 1];

	do {
		c->rng ^= c->rng << 13;
		c->rng ^= c->rng >> 7;
		c->rng ^= c->rng << 17;
		snprintf(nick, sizeof(nick), "guest-%06u",
			 (unsigned)(c->rng % 1000000));
	} while (chat_nick_in_use(c, s, nick));
	session_set_nick(c, s, nick);
}

/* Rooms */

static struct session *sub_session(struct room_sub *sub)
{
	return (struct session *)((char *)sub - offsetof(struct session, sub));
}

static void line_on_message(struct chat *c, struct room_sub *sub,
			    struct room *r, struct msg *m)
{
	(void)r;
	session_send(c, sub_session(sub), m->line);
}

static void line_on_notice(struct chat *c, struct room_sub *sub,
			   struct room *r, const struct room_notice *n)
{
	struct session *s = sub_session(sub);
	struct outbuf *b =
		room_notice_frame(n, ROOM_FRAME_LINE, s->uid, s->nick);

	(void)r;
	if (!b || (n->once && s->seen_rename == n->once))
		return;
	if (n->once)
		s->seen_rename = n->once;
	session_send(c, s, b);
}

/* An API session reads its rooms through its streams. */
static void api_on_message(struct chat *c, struct room_sub *sub,
			   struct room *r, struct msg *m)
{
	(void)c;
	(void)sub;
	(void)r;
	(void)m;
}

static void api_on_notice(struct chat *c, struct room_sub *sub,
			  struct room *r, const struct room_notice *n)
{
	(void)c;
	(void)sub;
	(void)r;
	(void)n;
}

/* The history s waited for is there (ok) or not: show it, then the join
 * is done. */
static void session_on_ready(struct chat *c, struct room_sub *sub,
			     struct room *r, bool ok)
{
	struct session *s = sub_session(sub);
	size_t n = r->ring.count;

	s->awaiting = NULL;
	if (!ok) {
		session_reply(c, s, "You joined %s (history unavailable: database down)",
			      r->name);
	} else {
		session_reply(c, s, "You joined %s (%zu recent message%s)",
			      r->name, n, n == 1 ? "" : "s");
		/* Streams show an API session the history. */
		for (size_t i = 0; s->kind == SESSION_LINE && i < n; i++)
			session_send(c, s, ring_at(&r->ring, i)->line);
	}
	s->cmd_busy = false;
	session_pump(c, s);
}

static const struct room_sub_ops line_sub_ops = {
	.message = line_on_message,
	.notice = line_on_notice,
	.ready = session_on_ready,
};

static const struct room_sub_ops api_sub_ops = {
	.message = api_on_message,
	.notice = api_on_notice,
	.ready = session_on_ready,
};

void session_await_history(struct chat *c, struct session *s, struct room *r)
{
	s->awaiting = r;
	room_await(c, r, &s->sub);
}

static struct session *session_new(struct chat *c, enum session_kind kind,
				   const struct chat_sink_ops *sink,
				   void *conn, int64_t api_id)
{
	struct session *s = xcalloc(1, sizeof(*s));

	s->sub.ops = kind == SESSION_LINE ? &line_sub_ops : &api_sub_ops;
	s->id = c->next_sid++;
	s->kind = kind;
	s->api_id = api_id;
	s->sink = sink;
	s->conn = conn;
	s->pending_tail = &s->pending;
	idmap_init(&s->rooms);
	outq_init(&s->outq, c->cfg.outq_limit);
	session_guest_nick(c, s);
	idmap_put(&c->sessions, s->id, s);
	s->prev = c->last;
	if (c->last)
		c->last->next = s;
	else
		c->first = s;
	c->last = s;
	c->nsessions++;
	if (kind == SESSION_API)
		c->napi++;
	c->stats.sessions_opened++;
	return s;
}

struct session *chat_session_open(struct chat *c, enum session_kind kind,
				  const struct chat_sink_ops *sink,
				  void *conn)
{
	struct session *s = session_new(c, kind, sink, conn, 0);

	if (kind != SESSION_API)
		log_info("connect", LOG_U("conn", s->id),
			 LOG_S("nick", s->nick), LOG_S("transport", "tcp"));
	c->rooms_version++;	/* online counts */
	/* Cluster-wide presence; a clash renames the guest later. A
	 * database that is down now gets everyone when it is back. */
	c->store->presence_add(c->st, s->id, s->nick);
	if (kind == SESSION_API)
		return s;
	session_reply(c, s, "Welcome to Baby Discord!");
	session_reply(c, s, "You are %s. Set a nickname with /nick <name>.",
		      s->nick);
	session_reply(c, s, "Type /help for commands.");
	return s;
}

struct session *chat_session_open_api(struct chat *c,
				      const struct chat_sink_ops *sink,
				      void *conn, int64_t api_id)
{
	struct session *s = session_new(c, SESSION_API, sink, conn, api_id);

	log_info("connect", LOG_U("conn", s->id), LOG_I("session", api_id),
		 LOG_S("nick", s->nick), LOG_S("transport", "http"));
	return s;
}

/* A room id's share of a session's rooms_sum: a sum of mixed ids is the
 * same whatever order the rooms came in and is kept up to date in O(1)
 * by session_add_room() and session_remove_room(). */
static uint64_t room_id_mix(int64_t id)
{
	uint64_t x = (uint64_t)id;

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* True when s has this state already: the same user, nickname, current
 * room and set of rooms (same count and same sum of mixed ids). */
static bool session_state_is(const struct session *s, int64_t uid,
			     const char *nick, const char *room,
			     const struct chat_room_ref *rooms, size_t n)
{
	uint64_t sum = 0;

	if (s->uid != uid || strcmp(s->nick, nick) ||
	    s->rooms.count != n || !s->current != !room ||
	    (room && strcmp(s->current->name, room)))
		return false;
	for (size_t i = 0; i < n; i++)
		sum += room_id_mix(rooms[i].id);
	return sum == s->rooms_sum;
}

void chat_session_sync(struct chat *c, struct session *s, int64_t uid,
		       const char *nick, const char *room,
		       const struct chat_room_ref *rooms, size_t n)
{
	bool busy = s->cmd_busy;
	struct room **gone;
	struct idmap want;
	size_t ngone = 0;

	/* Every request of a stored session lands here: usually nothing
	 * changed, and a session may be in thousands of rooms. */
	if (session_state_is(s, uid, nick, room, rooms, n)) {
		c->stats.syncs_skipped++;
		return;
	}
	s->uid = uid;
	snprintf(s->nick, sizeof(s->nick), "%s", nick);
	idmap_init(&want);
	for (size_t i = 0; i < n; i++)
		idmap_put(&want, (uint64_t)rooms[i].id, (void *)&rooms[i]);
	/* Gone from the database: leave here. Collected first, as removing
	 * reshuffles the map being walked. */
	gone = xmalloc((s->rooms.count + 1) * sizeof(*gone));
	for (size_t i = 0; i < s->rooms.cap; i++)
		if (s->rooms.slots[i].key &&
		    !idmap_get(&want, s->rooms.slots[i].key))
			gone[ngone++] = s->rooms.slots[i].val;
	for (size_t i = 0; i < ngone; i++)
		session_remove_room(c, s, gone[i]);
	free(gone);
	idmap_fini(&want);
	for (size_t i = 0; i < n; i++)
		session_add_room(c, s, room_get_or_add(c, rooms[i].id,
						       rooms[i].name));
	s->current = room ? room_find(c, room) : NULL;
	if (s->current && !session_in_room(s, s->current))
		s->current = NULL;
	if (busy && !s->cmd_busy)
		session_pump(c, s);	/* a join ended by leaving */
}

void chat_session_sync_head(struct chat *c, struct session *s, int64_t uid,
			    const char *nick, const char *room)
{
	if (s->uid == uid && !strcmp(s->nick, nick) &&
	    !s->current == !room &&
	    (!room || !strcmp(s->current->name, room))) {
		c->stats.syncs_skipped++;
		return;
	}
	s->uid = uid;
	snprintf(s->nick, sizeof(s->nick), "%s", nick);
	s->current = room ? room_find(c, room) : NULL;
	if (s->current && !session_in_room(s, s->current))
		s->current = NULL;
}

static void session_close_streams(struct session *s, struct room *r);

static int64_t clock_us(const struct chat *c)
{
	return c->cfg.now_us ? c->cfg.now_us() : clock_mono_ns() / 1000;
}

bool session_may_post(struct chat *c, struct session *s)
{
	return tokens_take(&s->msg_tokens, c->cfg.msg_rate, c->cfg.msg_burst,
			   clock_us(c));
}

bool session_may_command(struct chat *c, struct session *s)
{
	return tokens_take(&s->cmd_tokens, c->cfg.cmd_rate, c->cfg.cmd_burst,
			   clock_us(c));
}

bool chat_addr_take(struct chat *c, struct keyrate *kr, const char *addr)
{
	return keyrate_take(kr, addr && addr[0] ? addr : "?", clock_us(c));
}

void chat_session_set_addr(struct session *s, const char *addr)
{
	snprintf(s->addr, sizeof(s->addr), "%s", addr ? addr : "");
}

void session_free(struct chat *c, struct session *s)
{
	if (!s->api_id)
		c->store->presence_del(c->st, s->id);
	if (s->awaiting) {
		room_cancel_await(s->awaiting, &s->sub);
		s->awaiting = NULL;
	}
	session_close_streams(s, NULL);
	free(s->streams);
	/* Always the first left: removing reshuffles the map. */
	while (s->rooms.count) {
		size_t i = 0;

		while (!s->rooms.slots[i].key)
			i++;
		session_remove_room(c, s, s->rooms.slots[i].val);
	}
	while (s->pending) {
		struct pending *p = s->pending;

		s->pending = p->next;
		free(p);
	}
	idmap_fini(&s->rooms);
	outq_fini(&s->outq);
	session_set_nick(c, s, "");
	session_set_want(c, s, "");
	sb_fini(&s->replies);
	idmap_del(&c->sessions, s->id);
	if (s->prev)
		s->prev->next = s->next;
	else
		c->first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		c->last = s->prev;
	c->nsessions--;
	if (s->kind == SESSION_API)
		c->napi--;
	free(s);
}

void chat_session_closed(struct chat *c, struct session *s)
{
	log_info("disconnect", LOG_U("conn", s->id), LOG_S("nick", s->nick),
		 LOG_S("reason", s->close_reason ? s->close_reason
						 : "closed by peer"));
	c->rooms_version++;	/* online counts */
	session_free(c, s);
}

static void pending_push(struct chat *c, struct session *s, const char *line,
			 size_t len, bool too_long)
{
	struct pending *p;

	if (s->closing)
		return;
	p = xmalloc(sizeof(*p) + len + 1);
	p->next = NULL;
	p->too_long = too_long;
	p->len = len;
	memcpy(p->line, line, len);
	p->line[len] = '\0';
	*s->pending_tail = p;
	s->pending_tail = &p->next;
	s->npending++;
	session_pump(c, s);
}

void chat_session_input(struct chat *c, struct session *s, const char *line,
			size_t len)
{
	pending_push(c, s, line, len, false);
}

void chat_session_expel(struct chat *c, struct session *s,
			const char *notice, const char *reason)
{
	if (s->closing)
		return;
	session_reply(c, s, "%s", notice);
	session_kill(s, true, reason);
}

void chat_session_line_too_long(struct chat *c, struct session *s)
{
	pending_push(c, s, "", 0, true);
}

static bool is_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ')
			return false;
	return true;
}

/* Handles one line; false when it must wait (and was not consumed). */
static bool session_handle(struct chat *c, struct session *s,
			   struct pending *p)
{
	bool cmd = p->len && p->line[0] == '/';

	if (p->too_long || !utf8_valid(p->line, p->len)) {
		/* Errors need no database: answer in input order. */
		if (s->cmd_busy)
			return false;
		if (p->too_long)
			session_fail(c, s, BD_ETOOLONG,
				     "line too long (max %d bytes)",
				     CHAT_MAX_LINE);
		else
			session_fail(c, s, BD_EUTF8, "invalid UTF-8");
		return true;
	}
	if (s->cmd_busy || (cmd && s->inflight) ||
	    (!cmd && s->inflight >= SESSION_INFLIGHT_MAX))
		return false;
	p->len = utf8_strip_controls(p->line, p->len);
	p->line[p->len] = '\0';
	if (is_blank(p->line, p->len))
		return true;
	/* Set by chat_new(): the commands are above the sessions. */
	c->run_line(c, s, p->line, p->len);
	return true;
}

void session_pump(struct chat *c, struct session *s)
{
	while (s->pending && !s->closing) {
		struct pending *p = s->pending;

		if (!session_handle(c, s, p))
			break;
		s->pending = p->next;
		if (!s->pending)
			s->pending_tail = &s->pending;
		s->npending--;
		free(p);
	}
	if (s->closing)
		return;
	if (!s->pending && !s->cmd_busy && !s->inflight && s->sink->idle)
		s->sink->idle(s->conn);
	if (!s->throttled && s->npending >= SESSION_PENDING_MAX) {
		s->throttled = true;
		s->sink->throttle(s->conn, true);
	} else if (s->throttled && s->npending < SESSION_PENDING_MAX / 2) {
		s->throttled = false;
		s->sink->throttle(s->conn, false);
	}
}

void session_add_room(struct chat *c, struct session *s, struct room *r)
{
	if (session_in_room(s, r))
		return;
	idmap_put(&s->rooms, (uint64_t)r->id, r);
	s->rooms_sum += room_id_mix(r->id);
	room_add_member(c, r, &s->sub);
}

void session_remove_room(struct chat *c, struct session *s, struct room *r)
{
	if (!session_in_room(s, r))
		return;
	idmap_del(&s->rooms, (uint64_t)r->id);
	s->rooms_sum -= room_id_mix(r->id);
	if (s->current == r)
		s->current = NULL;
	session_close_streams(s, r);
	if (s->awaiting == r) {
		/* Removed (by a sync, or its nickname lost) while its join
		 * waited for the history: the join ends now, or it would
		 * wait forever once the room is gone. */
		room_cancel_await(r, &s->sub);
		s->awaiting = NULL;
		session_reply(c, s, "You joined %s (no history: no longer a member)",
			      r->name);
		s->cmd_busy = false;
	}
	room_remove_member(c, r, &s->sub);
	room_release(c, r);
}

/* A stored (API) session that is a member here acted through another
 * instance: follow its /leave (closing its streams of the room) and its
 * rename. Not while a command of its own runs here: that command's
 * outcome does it. Removing the last member frees r (room_release()): the
 * loop reads r only while members remain below i, so it ends first. */
void session_follow_event(struct chat *c, struct room *r,
			  const struct chat_event *ev)
{
	for (size_t i = r->nmembers; i-- > 0;) {
		/* Every member of a room is a session. */
		struct session *s = sub_session(r->members[i]);

		if (!s->api_id || s->uid != ev->uid || s->cmd_busy)
			continue;
		if (ev->kind == CHAT_EV_NICK)
			snprintf(s->nick, sizeof(s->nick), "%s",
				 ev->new_nick);
		else
			session_remove_room(c, s, r);
	}
}

/* Streams */

struct stream *chat_stream_open(struct chat *c, struct session *s,
				const char *room, int64_t last_seq,
				const struct chat_sink_ops *sink, void *conn,
				int *err)
{
	struct room *r = room_find(c, room);
	struct stream *st;

	if (!r || !session_in_room(s, r)) {
		*err = BD_EPERM;
		return NULL;
	}
	st = stream_new(c, r, s, &s->uid, s->nick, sink, conn, last_seq);
	if (s->nstreams == s->capstreams) {
		s->capstreams = s->capstreams ? s->capstreams * 2 : 4;
		s->streams = xrealloc(s->streams,
				      s->capstreams * sizeof(*s->streams));
	}
	s->streams[s->nstreams++] = st;
	return st;
}

void chat_stream_closed(struct chat *c, struct stream *st)
{
	struct session *s = stream_owner(st);

	for (size_t i = 0; s && i < s->nstreams; i++) {
		if (s->streams[i] == st) {
			s->streams[i] = s->streams[--s->nstreams];
			break;
		}
	}
	stream_free(c, st);
}

/* Closes s's streams of room r (all rooms when r is NULL). */
static void session_close_streams(struct session *s, struct room *r)
{
	for (size_t i = 0; i < s->nstreams;) {
		struct stream *st = s->streams[i];

		if (r && stream_room(st) != r) {
			i++;
			continue;
		}
		/* Detach: the transport frees it later. */
		stream_detach(st);
		s->streams[i] = s->streams[--s->nstreams];
		stream_kill(st, true);
	}
}

/* Checks and sanitizes text in place (UTF-8, not blank, size, controls
 * stripped); 0 or a BD_E* code. */
static int clean_text(struct chat *c, char *text, size_t *len)
{
	if (!utf8_valid(text, *len))
		return BD_EUTF8;
	*len = utf8_strip_controls(text, *len);
	text[*len] = '\0';
	if (is_blank(text, *len))
		return BD_EINVAL;
	if (*len > c->cfg.max_message_bytes)
		return BD_ETOOLONG;
	return 0;
}

int chat_session_post(struct chat *c, struct session *s, const char *room,
		      const char *text, size_t len, uint64_t token)
{
	struct room *r = room_find(c, room);
	char *copy;
	int err;

	if (!r || !session_in_room(s, r)) {
		c->stats.rejected[-BD_EPERM - 1]++;
		return BD_EPERM;
	}
	if (!session_may_post(c, s)) {
		c->stats.rejected[-BD_ERATE - 1]++;
		return BD_ERATE;
	}
	copy = xmemdup(text, len);
	err = clean_text(c, copy, &len);
	if (!err)
		err = c->store->post(c->st, s->id, token, r->id, s->uid,
				     s->nick, copy, len);
	free(copy);
	if (err < 0 && err >= -BD_NERRS)
		c->stats.rejected[-err - 1]++;
	else if (!err)
		c->stats.messages_received++;
	return err;
}
