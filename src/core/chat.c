/*
 * Sessions and the input pump: every input line is queued and processed in
 * order; a command waits for the session's uncommitted messages and
 * messages wait for a running command, so replies follow input order.
 * Store outcomes for sessions land here too.
 */
#include "core/chat_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
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
	while (c->first)
		session_free(c, c->first);
	/* Closing one reshuffles the map: always take the first left. */
	while (c->streams.count) {
		size_t i = 0;

		while (!c->streams.slots[i].key)
			i++;
		chat_stream_closed(c, c->streams.slots[i].val);
	}
	for (size_t i = 0; i < c->rooms.cap; i++)
		if (c->rooms.slots[i].key)
			room_free(c->rooms.slots[i].val);
	idmap_fini(&c->rooms);
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

void session_reply(struct chat *c, struct session *s, const char *fmt, ...)
{
	char text[1024];
	struct outbuf *b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	b = outbuf_fmt("[system] %s\n", text);
	session_send(c, s, b);
	outbuf_unref(b);
}

void session_fail(struct chat *c, struct session *s, int err,
		  const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	s->last_err = err;
	session_reply(c, s, "error: %s", text);
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

void chat_session_sync(struct chat *c, struct session *s, int64_t uid,
		       const char *nick, const char *room,
		       const struct chat_room_ref *rooms, size_t n)
{
	s->uid = uid;
	snprintf(s->nick, sizeof(s->nick), "%s", nick);
	/* Gone from the database: leave here (backwards, as it shrinks). */
	for (size_t i = s->nrooms; i-- > 0;) {
		bool kept = false;

		for (size_t j = 0; j < n && !kept; j++)
			kept = rooms[j].id == s->rooms[i]->id;
		if (!kept)
			session_remove_room(c, s, s->rooms[i]);
	}
	s->current = NULL;
	for (size_t j = 0; j < n; j++) {
		struct room *r = room_get_or_add(c, rooms[j].id,
						 rooms[j].name);

		session_add_room(c, s, r);
		if (room && !strcmp(r->name, room))
			s->current = r;
	}
}

static void session_free(struct chat *c, struct session *s)
{
	if (!s->api_id)
		c->store->presence_del(c->st, s->id);
	session_close_streams(s, NULL);
	free(s->streams);
	while (s->nrooms)
		session_remove_room(c, s, s->rooms[s->nrooms - 1]);
	while (s->pending) {
		struct pending *p = s->pending;

		s->pending = p->next;
		free(p);
	}
	free(s->rooms);
	outq_fini(&s->outq);
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
	session_free(c, s);
}

void chat_shutdown(struct chat *c)
{
	struct outbuf *b = outbuf_fmt("event: system\ndata: "
				      "{\"text\":\"server shutting down\"}\n\n");

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
	for (size_t i = 0; i < s->nrooms; i++)
		if (s->rooms[i] == r)
			return true;
	return false;
}

void session_add_room(struct chat *c, struct session *s, struct room *r)
{
	if (session_in_room(s, r))
		return;
	if (s->nrooms == s->caprooms) {
		s->caprooms = s->caprooms ? s->caprooms * 2 : 4;
		s->rooms = xrealloc(s->rooms, s->caprooms * sizeof(*s->rooms));
	}
	s->rooms[s->nrooms++] = r;
	room_add_member(c, r, s);
}

void session_remove_room(struct chat *c, struct session *s, struct room *r)
{
	for (size_t i = 0; i < s->nrooms; i++) {
		if (s->rooms[i] != r)
			continue;
		s->rooms[i] = s->rooms[--s->nrooms];
		if (s->current == r)
			s->current = NULL;
		room_remove_member(c, r, s);
		return;
	}
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
	char list[1024] = "";
	size_t used = 0;
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
			used += (size_t)snprintf(list + used,
				used < sizeof(list) ? sizeof(list) - used : 0,
				"%s%s", i ? ", " : "", r->name);
		}
		if (restored)
			session_reply(c, s, "You are a member of: %s", list);
	}
	s->want_nick[0] = '\0';
	command_done(c, s);
}

void chat_on_join(struct chat *c, uint64_t sid, int err, int64_t uid,
		  int64_t room_id, const char *room_name)
{
	struct session *s = chat_find_session(c, sid);
	struct room *r;

	if (!s)
		return;
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

void chat_on_rooms(struct chat *c, uint64_t sid, uint64_t token, int err,
		   const struct chat_room_info *rooms, size_t n)
{
	struct session *s;

	if (!sid) {
		if (c->api && c->api->rooms)
			c->api->rooms(c->api_arg, token, err, rooms, n);
		return;
	}
	s = chat_find_session(c, sid);
	if (!s)
		return;
	if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
	} else if (!n) {
		session_reply(c, s,
			      "No rooms yet. Create one with /create <room>");
	} else {
		session_reply(c, s, "Rooms (%zu):", n);
		for (size_t i = 0; i < n; i++)
			session_reply(c, s,
				      "  %s: %" PRId64 " member%s, %" PRId64 " online",
				      rooms[i].name, rooms[i].members,
				      rooms[i].members == 1 ? "" : "s",
				      rooms[i].online);
	}
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
