/*
 * Sessions and the input pump: every input line is queued and processed in
 * order; a command waits for the session's uncommitted messages and
 * messages wait for a running command, so replies follow input order.
 * Store outcomes for sessions land here too.
 */
#include "core/chat_int.h"
#include "core/wire.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util/strbuf.h"
#include "util/utf8.h"
#include "util/xalloc.h"

struct chat *chat_new(const struct chat_config *cfg,
		      const struct chat_store_ops *store, void *st)
{
	struct chat *c = xcalloc(1, sizeof(*c));

	c->cfg = *cfg;
	c->store = store;
	c->st = st;
	c->next_sid = 1;
	c->rng = cfg->seed ? cfg->seed : 0x9e3779b97f4a7c15ULL;
	c->next_stream_id = 1;
	idmap_init(&c->sessions);
	idmap_init(&c->rooms);
	strmap_init(&c->room_names);
	idmap_init(&c->streams);
	return c;
}

void chat_set_api(struct chat *c, const struct chat_api_ops *api, void *arg)
{
	c->api = api;
	c->api_arg = arg;
}

static void session_free(struct chat *c, struct session *s);

void chat_free(struct chat *c)
{
	if (!c)
		return;
	api_sessions_free(c);
	while (c->first)
		session_free(c, c->first);
	/* Closing one reshuffles the map: always take the first left. */
	while (c->streams.count) {
		size_t i = 0;

		while (!c->streams.slots[i].key)
			i++;
		chat_stream_closed(c, c->streams.slots[i].val);
	}
	/* Rooms went with their last member or stream; any left over: */
	for (size_t i = 0; i < c->rooms.cap; i++)
		if (c->rooms.slots[i].key)
			room_free(c->rooms.slots[i].val);
	idmap_fini(&c->rooms);
	strmap_fini(&c->room_names);
	idmap_fini(&c->sessions);
	idmap_fini(&c->streams);
	free(c);
}

const struct chat_stats *chat_get_stats(const struct chat *c)
{
	return &c->stats;
}

size_t chat_session_count(const struct chat *c)
{
	return c->nsessions;
}

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

struct session *chat_find_session(struct chat *c, uint64_t sid)
{
	return idmap_get(&c->sessions, sid);
}

bool chat_session_wanted(struct chat *c, uint64_t sid)
{
	struct session *s = chat_find_session(c, sid);

	return s && !s->closing;
}

bool chat_api_wanted(struct chat *c, uint64_t token)
{
	return !c->api || !c->api->wanted || c->api->wanted(c->api_arg, token);
}

/* Asks the transport to close s; core stops all I/O on it at once. */
static void session_kill(struct session *s, bool flush)
{
	if (s->closing)
		return;
	s->closing = true;
	s->sink->close(s->conn, flush);
}

void session_send(struct chat *c, struct session *s, struct outbuf *b)
{
	if (s->closing)
		return;
	if (outq_push(&s->outq, b)) {
		c->stats.slow_consumers++;
		log_warn("conn %" PRIu64 " (%s): slow consumer, %zu bytes queued, %zu more would pass the limit (%zu), disconnecting",
			 s->id, s->nick, s->outq.bytes, b->len,
			 s->outq.limit);
		session_kill(s, false);
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

void session_reply(struct chat *c, struct session *s, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	session_say(c, s, false, text,
		    n < (int)sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

void session_fail(struct chat *c, struct session *s, int err,
		  const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	s->last_err = err;
	session_say(c, s, true, text,
		    n < (int)sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

bool chat_nick_in_use(struct chat *c, const struct session *self,
		      const char *nick)
{
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

static void guest_nick(struct chat *c, struct session *s)
{
	do {
		c->rng ^= c->rng << 13;
		c->rng ^= c->rng >> 7;
		c->rng ^= c->rng << 17;
		snprintf(s->nick, sizeof(s->nick), "guest-%06u",
			 (unsigned)(c->rng % 1000000));
	} while (chat_nick_in_use(c, s, s->nick));
}

static struct session *session_new(struct chat *c, enum session_kind kind,
				   const struct chat_sink_ops *sink,
				   void *conn, int64_t api_id)
{
	struct session *s = xcalloc(1, sizeof(*s));

	s->id = c->next_sid++;
	s->kind = kind;
	s->api_id = api_id;
	s->sink = sink;
	s->conn = conn;
	s->pending_tail = &s->pending;
	idmap_init(&s->rooms);
	outq_init(&s->outq, c->cfg.outq_limit);
	guest_nick(c, s);
	idmap_put(&c->sessions, s->id, s);
	s->prev = c->last;
	if (c->last)
		c->last->next = s;
	else
		c->first = s;
	c->last = s;
	c->nsessions++;
	c->stats.sessions_opened++;
	return s;
}

struct session *chat_session_open(struct chat *c, enum session_kind kind,
				  const struct chat_sink_ops *sink,
				  void *conn)
{
	struct session *s = session_new(c, kind, sink, conn, 0);

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
	return session_new(c, SESSION_API, sink, conn, api_id);
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

static void session_free(struct chat *c, struct session *s)
{
	if (!s->api_id)
		c->store->presence_del(c->st, s->id);
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
	free(s);
}

void chat_session_closed(struct chat *c, struct session *s)
{
	log_debug("conn %" PRIu64 " (%s): closed", s->id, s->nick);
	c->rooms_version++;	/* online counts */
	session_free(c, s);
}

void chat_shutdown(struct chat *c)
{
	struct outbuf *b = wire_sse_system(NULL, "server shutting down");

	for (size_t i = 0; i < c->streams.cap; i++) {
		struct stream *st = c->streams.slots[i].val;

		if (!c->streams.slots[i].key)
			continue;
		stream_send(c, st, b);
		stream_kill(st, true);
	}
	outbuf_unref(b);
	for (struct session *s = c->first; s; s = s->next) {
		session_reply(c, s, "server shutting down");
		session_kill(s, true);
	}
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
	if (cmd)
		cmd_run(c, s, p->line);
	else
		cmd_post(c, s, p->line, p->len);
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

bool session_in_room(const struct session *s, const struct room *r)
{
	return idmap_get(&s->rooms, (uint64_t)r->id) == r;
}

void session_add_room(struct chat *c, struct session *s, struct room *r)
{
	if (session_in_room(s, r))
		return;
	idmap_put(&s->rooms, (uint64_t)r->id, r);
	s->rooms_sum += room_id_mix(r->id);
	room_add_member(c, r, s);
}

void session_remove_room(struct chat *c, struct session *s, struct room *r)
{
	if (!session_in_room(s, r))
		return;
	idmap_del(&s->rooms, (uint64_t)r->id);
	s->rooms_sum -= room_id_mix(r->id);
	if (s->current == r)
		s->current = NULL;
	room_remove_member(c, r, s);
	room_release(c, r);
}

/* A command's outcome arrived: let queued input run again. */
static void command_done(struct chat *c, struct session *s)
{
	s->cmd_busy = false;
	session_pump(c, s);
}

void chat_on_nick(struct chat *c, uint64_t sid, int err, int64_t uid,
		  const char *nick, const struct chat_room_ref *rooms,
		  size_t n)
{
	struct session *s = chat_find_session(c, sid);
	struct strbuf list = STRBUF_INIT;
	bool restored = false;

	if (!s)
		return;
	if (err == BD_ETAKEN) {
		session_fail(c, s, err, "nickname %s is taken", s->want_nick);
	} else if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
	} else {
		s->uid = uid;
		snprintf(s->nick, sizeof(s->nick), "%s", nick);
		session_reply(c, s, "You are now %s", s->nick);
		for (size_t i = 0; i < n; i++) {
			struct room *r = room_get_or_add(c, rooms[i].id,
							 rooms[i].name);

			if (!session_in_room(s, r)) {
				restored = true;
				session_add_room(c, s, r);
			}
			if (i)
				sb_puts(&list, ", ");
			sb_puts(&list, r->name);
		}
		/* Not session_reply(): its buffer would cut a long list. */
		if (restored) {
			struct strbuf text = STRBUF_INIT;

			sb_appendf(&text, "You are a member of: %s", list.buf);
			session_say(c, s, false, text.buf, text.len);
			sb_fini(&text);
		}
		sb_fini(&list);
	}
	s->want_nick[0] = '\0';
	command_done(c, s);
}

void chat_on_join(struct chat *c, uint64_t sid, int err, int64_t uid,
		  int64_t room_id, const char *room_name)
{
	struct session *s = chat_find_session(c, sid);
	struct room *r;

	c->rooms_version++;
	if (!s)
		return;
	if (err == BD_EROOMSFULL) {
		session_fail(c, s, err, "%s (max %zu)", bd_strerror(err),
			     c->cfg.max_rooms);
		command_done(c, s);
		return;
	}
	if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
		command_done(c, s);
		return;
	}
	s->uid = uid;
	if (!room_id) {
		/* s->arg starts with '+' for /create. */
		if (s->arg[0] == '+')
			session_fail(c, s, BD_EEXIST,
				     "room %s already exists", s->arg + 1);
		else
			session_fail(c, s, BD_ENOENT, "no such room: %s",
				     s->arg);
		command_done(c, s);
		return;
	}
	r = room_get_or_add(c, room_id, room_name);
	if (s->arg[0] == '+')
		session_reply(c, s, "Created room %s", r->name);
	session_add_room(c, s, r);
	s->current = r;
	/* The command stays busy until the history is shown. */
	room_show_history(c, r, s);
}

void chat_on_presence(struct chat *c, uint64_t sid, int err)
{
	struct session *s = chat_find_session(c, sid);

	if (!s || err != BD_ETAKEN || s->want_nick[0])
		return;
	/* Another instance has this guest name: pick another one. */
	guest_nick(c, s);
	c->store->presence_add(c->st, s->id, s->nick);
	if (s->kind == SESSION_LINE)
		session_reply(c, s, "You are now %s", s->nick);
}

void chat_on_nick_lost(struct chat *c, uint64_t sid)
{
	struct session *s = chat_find_session(c, sid);
	char old[NICK_MAX + 1];

	if (!s || s->kind != SESSION_LINE)
		return;
	/* The nickname, and so its user and rooms, are another session's
	 * now: this one goes on as a new guest, in no room. */
	snprintf(old, sizeof(old), "%s", s->nick);
	while (s->rooms.count) {
		size_t i = 0;

		while (!s->rooms.slots[i].key)
			i++;
		session_remove_room(c, s, s->rooms.slots[i].val);
	}
	s->current = NULL;
	s->uid = 0;
	guest_nick(c, s);
	c->store->presence_add(c->st, s->id, s->nick);
	session_reply(c, s,
		      "error: while the database was away, another session took the nickname %s; you are now %s (/nick to pick another)",
		      old, s->nick);
}

void chat_on_list(struct chat *c, uint64_t sid, int err,
		  const struct chat_presence *rows, size_t n)
{
	struct session *s = chat_find_session(c, sid);

	if (!s)
		return;
	if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
	} else {
		session_reply(c, s, "Online users (%zu):", n);
		for (size_t i = 0; i < n; i++) {
			if (rows[i].room)
				session_reply(c, s, "  %s (in %s)",
					      rows[i].nick, rows[i].room);
			else
				session_reply(c, s, "  %s (no room)",
					      rows[i].nick);
		}
	}
	command_done(c, s);
}

struct chat_presence *chat_presence_snapshot(struct chat *c, size_t *n)
{
	struct chat_presence *v = xcalloc(c->nsessions + 1, sizeof(*v));

	*n = 0;
	for (struct session *s = c->first; s; s = s->next) {
		if (s->api_id)
			continue;	/* the database keeps those */
		v[*n].sid = s->id;
		v[*n].nick = s->nick;
		v[*n].uid = s->uid;
		v[*n].room = s->current ? s->current->name : NULL;
		(*n)++;
	}
	return v;
}

void chat_on_leave(struct chat *c, uint64_t sid, int err)
{
	struct session *s = chat_find_session(c, sid);
	struct room *r;

	c->rooms_version++;
	if (!s)
		return;
	r = s->current;
	if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
	} else if (r) {
		session_reply(c, s, "You left %s", r->name);
		session_remove_room(c, s, r);
	}
	command_done(c, s);
}

void chat_on_posted(struct chat *c, uint64_t sid, uint64_t token, int err,
		    int64_t id, int64_t seq)
{
	struct session *s = chat_find_session(c, sid);

	if (!err && seq)
		c->stats.messages_posted++;
	if (!s)
		return;
	if (token) {
		if (!err && !seq)
			err = BD_ENOENT;	/* the room is gone */
		if (s->sink->posted)
			s->sink->posted(s->conn, token, err, id, seq);
		return;
	}
	s->inflight--;
	if (err == BD_ELOST)
		session_fail(c, s, err, "database connection lost; your message may not have been sent");
	else if (err)
		session_fail(c, s, err, "message not sent (database unavailable)");
	else if (!seq)
		session_fail(c, s, BD_ENOENT, "message not sent (room no longer exists)");
	session_pump(c, s);
}

int chat_room_info_cmp(const void *a, const void *b)
{
	const struct chat_room_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

size_t chat_rooms_after(const struct chat_room_info *rooms, size_t n,
			const char *after, size_t limit, size_t *count)
{
	size_t lo = 0, hi = n;

	if (!limit)
		limit = CHAT_ROOMS_PAGE;
	if (limit > CHAT_ROOMS_LIMIT_MAX)
		limit = CHAT_ROOMS_LIMIT_MAX;
	/* The first name greater than after. */
	while (after && *after && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(rooms[mid].name, after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*count = n - lo < limit ? n - lo : limit;
	return lo;
}

/* Page s->page of /rooms: a page of CHAT_ROOMS_PAGE, then where it is
 * when there are several. A single page looks as it always did. */
static void show_rooms_page(struct chat *c, struct session *s,
			    const struct chat_room_info *rooms, size_t n)
{
	size_t pages = (n + CHAT_ROOMS_PAGE - 1) / CHAT_ROOMS_PAGE;
	size_t first = (s->page - 1) * CHAT_ROOMS_PAGE, end;

	if (s->page > pages) {
		session_fail(c, s, BD_ENOENT, "no page %zu (there %s %zu)",
			     s->page, pages == 1 ? "is" : "are", pages);
		return;
	}
	end = first + CHAT_ROOMS_PAGE < n ? first + CHAT_ROOMS_PAGE : n;
	if (pages == 1)
		session_reply(c, s, "Rooms (%zu):", n);
	else
		session_reply(c, s, "Rooms %zu-%zu of %zu:", first + 1, end,
			      n);
	for (size_t i = first; i < end; i++)
		session_reply(c, s,
			      "  %s: %" PRId64 " member%s, %" PRId64 " online",
			      rooms[i].name, rooms[i].members,
			      rooms[i].members == 1 ? "" : "s",
			      rooms[i].online);
	if (pages > 1 && s->page < pages)
		session_reply(c, s, "page %zu of %zu; /rooms %zu for more",
			      s->page, pages, s->page + 1);
	else if (pages > 1)
		session_reply(c, s, "page %zu of %zu", s->page, pages);
}

void chat_on_rooms(struct chat *c, uint64_t sid, uint64_t token, int err,
		   const struct chat_room_info *rooms, size_t n)
{
	struct chat_room_info *sorted = NULL;
	struct session *s = NULL;

	if (sid) {
		s = chat_find_session(c, sid);
		if (!s)
			return;
	}
	/* Pages and `after` need one order, not the database's collation:
	 * byte order, on a copy (the strings stay the store's). */
	if (!err && n) {
		sorted = xmalloc(n * sizeof(*sorted));
		memcpy(sorted, rooms, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), chat_room_info_cmp);
	}
	if (!s) {
		if (c->api && c->api->rooms)
			c->api->rooms(c->api_arg, token, err,
				      err ? NULL : sorted ? sorted : rooms, n);
	} else if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
	} else if (!n) {
		session_reply(c, s,
			      "No rooms yet. Create one with /create <room>");
	} else {
		show_rooms_page(c, s, sorted, n);
	}
	free(sorted);
	if (s)
		command_done(c, s);
}

int chat_session_rooms(struct chat *c, struct session *s)
{
	return c->store->rooms(c->st, s->id, 0);
}

int chat_list_rooms(struct chat *c, uint64_t token)
{
	return c->store->rooms(c->st, 0, token);
}

bool chat_room_known(struct chat *c, const char *name)
{
	return room_find(c, name) != NULL;
}

/* Checks and sanitizes text in place; 0 or a BD_E* code. */
int chat_clean_text(struct chat *c, char *text, size_t *len)
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

	if (!r || !session_in_room(s, r))
		return BD_EPERM;
	copy = xmemdup(text, len);
	err = chat_clean_text(c, copy, &len);
	if (!err)
		err = c->store->post(c->st, s->id, token, r->id, s->uid,
				     s->nick, copy, len);
	free(copy);
	return err;
}

uint64_t chat_rooms_version(const struct chat *c)
{
	return c->rooms_version;
}
