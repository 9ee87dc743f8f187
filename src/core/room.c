/*
 * Rooms on this instance: local members, the history ring and the sync
 * state machine. A room is watched (LISTEN + history load) while it has
 * local members; while a sync is in flight its events are parked, then
 * released after the loaded rows, so members see every message once, in
 * seq order.
 */
#include "core/chat_int.h"
#include "core/wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util/jsonw.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

struct room *room_get(struct chat *c, int64_t id)
{
	return idmap_get(&c->rooms, (uint64_t)id);
}

struct room *room_find(struct chat *c, const char *name)
{
	return strmap_get(&c->room_names, name);
}

struct room *room_get_or_add(struct chat *c, int64_t id, const char *name)
{
	struct room *r = room_get(c, id);

	if (r)
		return r;
	r = xcalloc(1, sizeof(*r));
	r->id = id;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->state = ROOM_IDLE;
	r->parked_tail = &r->parked;
	ring_init(&r->ring, c->cfg.history_size);
	idmap_put(&c->rooms, (uint64_t)id, r);
	strmap_put(&c->room_names, r->name, r);
	return r;
}

void room_release(struct chat *c, struct room *r)
{
	if (r->nmembers || r->nstreams)
		return;
	idmap_del(&c->rooms, (uint64_t)r->id);
	/* A room made again under the same name (new id) keeps its entry. */
	if (strmap_get(&c->room_names, r->name) == r)
		strmap_del(&c->room_names, r->name);
	room_free(r);
}

static void room_clear_parked(struct room *r)
{
	while (r->parked) {
		struct parked *p = r->parked;

		r->parked = p->next;
		msg_unref(p->msg);
		outbuf_unref(p->notice);
		outbuf_unref(p->sse);
		free(p);
	}
	r->parked_tail = &r->parked;
}

void room_free(struct room *r)
{
	room_clear_parked(r);
	ring_fini(&r->ring);
	free(r->members);
	free(r->waiters);
	free(r->streams);
	free(r);
}

/* Starts a sync: the initial ring load, or a catch-up after last_seq. */
static void room_sync(struct chat *c, struct room *r)
{
	int err;

	r->sync_gen = ++c->sync_gen;
	r->sync_initial = !r->ring_valid;
	if (!c->listen_up) {
		r->state = ROOM_STALE;	/* retried by chat_on_listen_up() */
		return;
	}
	r->state = ROOM_SYNCING;
	err = c->store->watch(c->st, r->id, r->sync_gen,
			      r->sync_initial ? 0 : r->last_seq,
			      r->sync_initial ? (unsigned)c->cfg.history_size
					      : CATCHUP_LIMIT);
	if (err)
		r->state = ROOM_STALE;
}

static void room_serve_waiters(struct chat *c, struct room *r, bool ok);

void room_add_member(struct chat *c, struct room *r, struct session *s)
{
	if (r->nmembers == r->capmembers) {
		r->capmembers = r->capmembers ? r->capmembers * 2 : 8;
		r->members = xrealloc(r->members,
				      r->capmembers * sizeof(*r->members));
	}
	r->members[r->nmembers++] = s;
	if (r->state == ROOM_IDLE)
		room_sync(c, r);
}

void room_remove_member(struct chat *c, struct room *r, struct session *s)
{
	session_close_streams(s, r);
	for (size_t i = 0; i < r->nmembers; i++) {
		if (r->members[i] != s)
			continue;
		/* Keep member order: delivery order doesn't depend on it,
		 * but a stable order keeps fan-out predictable. */
		memmove(&r->members[i], &r->members[i + 1],
			(r->nmembers - i - 1) * sizeof(*r->members));
		r->nmembers--;
		break;
	}
	if (r->nmembers)
		return;
	/* Nobody here cares: stop listening and forget the ring, which
	 * would go stale without notifications. */
	if (r->state != ROOM_IDLE && c->listen_up)
		c->store->unwatch(c->st, r->id);
	r->state = ROOM_IDLE;
	r->sync_gen = ++c->sync_gen;
	r->ring_valid = false;
	ring_clear(&r->ring);
	room_clear_parked(r);
	r->nwaiters = 0;
}

static void show_history_now(struct chat *c, struct room *r,
			     struct session *s)
{
	size_t n = r->ring.count;

	session_reply(c, s, "You joined %s (%zu recent message%s)", r->name, n,
		      n == 1 ? "" : "s");
	if (s->kind != SESSION_LINE)
		return;		/* streams show the history */
	for (size_t i = 0; i < n; i++)
		session_send(c, s, ring_at(&r->ring, i)->line);
}

void room_show_history(struct chat *c, struct room *r, struct session *s)
{
	if (r->state == ROOM_LIVE) {
		c->stats.history_hits++;
		show_history_now(c, r, s);
		s->cmd_busy = false;
		session_pump(c, s);
		return;
	}
	c->stats.history_misses++;
	if (r->nwaiters == r->capwaiters) {
		r->capwaiters = r->capwaiters ? r->capwaiters * 2 : 4;
		r->waiters = xrealloc(r->waiters,
				      r->capwaiters * sizeof(*r->waiters));
	}
	r->waiters[r->nwaiters++] = s->id;
	if (r->state == ROOM_STALE && c->listen_up)
		room_sync(c, r);
	else if (r->state == ROOM_STALE)
		room_serve_waiters(c, r, false);
}

static void room_serve_waiters(struct chat *c, struct room *r, bool ok)
{
	size_t n = r->nwaiters;
	uint64_t *ids = r->waiters;

	/* Pumping a waiter can add waiters: detach the list first. */
	r->waiters = NULL;
	r->nwaiters = r->capwaiters = 0;
	for (size_t i = 0; i < n; i++) {
		struct session *s = chat_find_session(c, ids[i]);

		if (!s)
			continue;
		if (ok)
			show_history_now(c, r, s);
		else
			session_reply(c, s, "You joined %s (history unavailable: database down)",
				      r->name);
		s->cmd_busy = false;
		session_pump(c, s);
	}
	free(ids);
}

void room_deliver_msg(struct chat *c, struct room *r, struct msg *m)
{
	if (m->seq <= r->last_seq) {
		c->stats.events_dropped++;
		return;
	}
	if (m->seq != r->last_seq + 1 && r->ring_valid)
		log_warn("room %s: seq jumped from %" PRId64 " to %" PRId64,
			 r->name, r->last_seq, m->seq);
	r->last_seq = m->seq;
	ring_push(&r->ring, m);
	for (size_t i = 0; i < r->nmembers; i++)
		if (r->members[i]->kind == SESSION_LINE)
			session_send(c, r->members[i], m->line);
	for (size_t i = 0; i < r->nstreams; i++)
		stream_deliver_msg(c, r->streams[i], r, m);
}

/* The notice's subject doesn't get it: by user id, or by nickname for a
 * rename that also switched the session's user. */
static bool is_subject(const struct session *s, int64_t skip_uid,
		       const char *skip_nick)
{
	return (skip_uid && s->uid == skip_uid) ||
	       (skip_nick && name_equal_nocase(s->nick, skip_nick));
}

void room_deliver_notice(struct chat *c, struct room *r, struct outbuf *b,
			 struct outbuf *sse, int64_t skip_uid,
			 const char *skip_nick, int64_t once)
{
	for (size_t i = 0; i < r->nmembers; i++) {
		struct session *s = r->members[i];

		if (s->kind != SESSION_LINE ||
		    is_subject(s, skip_uid, skip_nick) ||
		    (once && s->seen_rename == once))
			continue;
		if (once)
			s->seen_rename = once;
		session_send(c, s, b);
	}
	for (size_t i = 0; i < r->nstreams; i++) {
		struct stream *st = r->streams[i];

		if (st->started && !st->replaying && st->s &&
		    !is_subject(st->s, skip_uid, skip_nick))
			stream_send(c, st, sse);
	}
}

static void park(struct room *r, struct msg *m, struct outbuf *notice,
		 struct outbuf *sse, int64_t skip_uid, const char *skip_nick,
		 int64_t once)
{
	struct parked *p = xcalloc(1, sizeof(*p));

	p->once = once;
	p->sse = sse ? outbuf_ref(sse) : NULL;
	if (skip_nick)
		snprintf(p->skip_nick, sizeof(p->skip_nick), "%s", skip_nick);
	p->msg = m ? msg_ref(m) : NULL;
	p->notice = notice ? outbuf_ref(notice) : NULL;
	p->skip_uid = skip_uid;
	*r->parked_tail = p;
	r->parked_tail = &p->next;
}

/* A stored (API) session that is a member here acted through another
 * instance: follow its /leave (closing its streams of the room) and its
 * rename. Not while a command of its own runs here: that command's
 * outcome does it. Removing the last member frees r (room_release()): the
 * loop reads r only while members remain below i, so it ends first. */
static void follow_stored_sessions(struct chat *c, struct room *r,
				   const struct chat_event *ev)
{
	for (size_t i = r->nmembers; i-- > 0;) {
		struct session *s = r->members[i];

		if (!s->api_id || s->uid != ev->uid || s->cmd_busy)
			continue;
		if (ev->kind == CHAT_EV_NICK)
			snprintf(s->nick, sizeof(s->nick), "%s",
				 ev->new_nick);
		else
			session_remove_room(c, s, r);
	}
}

void chat_on_event(struct chat *c, const struct chat_event *ev)
{
	struct room *r = room_get(c, ev->room_id);
	struct outbuf *notice = NULL, *sse = NULL;
	struct strbuf text = STRBUF_INIT;
	const char *skip_nick;
	struct msg *m = NULL;

	if (!r || r->state == ROOM_IDLE || r->state == ROOM_STALE)
		return;		/* not watched here (or resynced later) */
	switch (ev->kind) {
	case CHAT_EV_MESSAGE:
		m = msg_new(r->name, r->id, ev->seq, ev->id, ev->time_ms,
			    ev->nick, ev->content, ev->content_len);
		break;
	case CHAT_EV_JOIN:
		c->rooms_version++;
		sb_appendf(&text, "%s joined %s", ev->nick, r->name);
		break;
	case CHAT_EV_LEAVE:
		c->rooms_version++;
		sb_appendf(&text, "%s left %s", ev->nick, r->name);
		break;
	case CHAT_EV_NICK:
		sb_appendf(&text, "%s is now known as %s", ev->nick,
			   ev->new_nick);
		break;
	}
	if (text.len) {
		/* One text, in each transport's frame. */
		notice = wire_line_notice(text.buf, text.len);
		sse = wire_sse_system(r->name, text.buf);
		sb_fini(&text);
	}
	skip_nick = ev->kind == CHAT_EV_NICK ? ev->new_nick : NULL;
	if (r->state == ROOM_SYNCING)
		park(r, m, notice, sse, ev->uid, skip_nick, ev->rename_id);
	else if (m)
		room_deliver_msg(c, r, m);
	else
		room_deliver_notice(c, r, notice, sse, ev->uid, skip_nick,
				    ev->rename_id);
	msg_unref(m);
	outbuf_unref(notice);
	outbuf_unref(sse);
	if (ev->kind == CHAT_EV_LEAVE || ev->kind == CHAT_EV_NICK)
		follow_stored_sessions(c, r, ev);
}

void chat_on_room_sync(struct chat *c, int64_t room_id, uint64_t gen,
		       int err, const struct chat_msg_row *rows, size_t n)
{
	struct room *r = room_get(c, room_id);
	struct parked *p;

	if (!r || gen != r->sync_gen || r->state != ROOM_SYNCING)
		return;		/* superseded */
	if (err) {
		log_warn("room %s: sync failed: %s", r->name, bd_strerror(err));
		r->state = ROOM_STALE;
		room_clear_parked(r);
		room_serve_waiters(c, r, false);
		return;
	}
	if (r->sync_initial) {
		ring_clear(&r->ring);
		r->last_seq = 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct msg *m = msg_new(r->name, r->id, rows[i].seq,
					rows[i].id, rows[i].time_ms,
					rows[i].nick, rows[i].content,
					rows[i].content_len);

		if (r->sync_initial) {
			ring_push(&r->ring, m);
			r->last_seq = m->seq;
		} else {
			room_deliver_msg(c, r, m);
		}
		msg_unref(m);
	}
	r->ring_valid = true;
	r->state = ROOM_LIVE;
	/* History first (what the ring holds now), then what arrived since. */
	room_serve_waiters(c, r, true);
	for (size_t i = 0; i < r->nstreams; i++)
		if (!r->streams[i]->started)
			stream_start(c, r->streams[i]);
	p = r->parked;
	r->parked = NULL;
	r->parked_tail = &r->parked;
	while (p) {
		struct parked *next = p->next;

		if (p->msg)
			room_deliver_msg(c, r, p->msg);
		else
			room_deliver_notice(c, r, p->notice, p->sse,
					    p->skip_uid,
					    p->skip_nick[0] ? p->skip_nick : NULL,
					    p->once);
		msg_unref(p->msg);
		outbuf_unref(p->notice);
		outbuf_unref(p->sse);
		free(p);
		p = next;
	}
}

void chat_on_listen_up(struct chat *c)
{
	c->listen_up = true;
	for (size_t i = 0; i < c->rooms.cap; i++) {
		struct room *r = c->rooms.slots[i].val;

		if (c->rooms.slots[i].key && r->nmembers &&
		    r->state == ROOM_STALE)
			room_sync(c, r);
	}
}

void chat_on_listen_down(struct chat *c)
{
	c->listen_up = false;
	for (size_t i = 0; i < c->rooms.cap; i++) {
		struct room *r = c->rooms.slots[i].val;

		if (!c->rooms.slots[i].key || r->state == ROOM_IDLE)
			continue;
		r->state = ROOM_STALE;
		r->sync_gen = ++c->sync_gen;
		room_clear_parked(r);
		room_serve_waiters(c, r, false);
	}
}
