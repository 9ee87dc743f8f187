/*
 * Rooms on this instance: their subscribers, the history ring and the sync
 * state machine. A room is watched (LISTEN + history load) while it has
 * local members; while a sync is in flight its events are parked, then
 * released after the loaded rows, so subscribers see every message once,
 * in seq order. A room knows its subscribers (sessions, streams) only
 * through struct room_sub: it calls nothing of session.c or stream.c.
 */
#include "core/room_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/instance_int.h"
#include "core/msg.h"
#include "core/outq.h"
#include "core/wire.h"
#include "log.h"
#include "util/clock.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define CATCHUP_LIMIT 10000	/* messages fetched per catch-up */

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
	free(r->group.who);
	free(r->group.subjects);
	free(r);
}

bool room_is_live(const struct room *r)
{
	return r->state == ROOM_LIVE;
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

/* Appends sub to a growable array of subscribers. */
static void subs_push(struct room_sub ***v, size_t *n, size_t *cap,
		      struct room_sub *sub, size_t first_cap)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : first_cap;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = sub;
}

/* Removes sub, keeping the order of the others; false if absent. */
static bool subs_remove(struct room_sub **v, size_t *n,
			const struct room_sub *sub)
{
	for (size_t i = 0; i < *n; i++) {
		if (v[i] != sub)
			continue;
		memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
		(*n)--;
		return true;
	}
	return false;
}

static void room_serve_waiters(struct chat *c, struct room *r, bool ok);
static inline void room_flush_pending(struct chat *c, struct room *r);

void room_add_member(struct chat *c, struct room *r, struct room_sub *sub)
{
	/* Joins and leaves heard before sub came are not shown to it. */
	room_flush_pending(c, r);
	subs_push(&r->members, &r->nmembers, &r->capmembers, sub, 8);
	if (r->state == ROOM_IDLE)
		room_sync(c, r);
}

void room_remove_member(struct chat *c, struct room *r, struct room_sub *sub)
{
	/* Keep member order: delivery order doesn't depend on it, but a
	 * stable order keeps fan-out predictable. */
	subs_remove(r->members, &r->nmembers, sub);
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
	/* Nobody is left to show pending joins or leaves to (the room's
	 * streams are their members' and close with them). */
	r->group.n = 0;
	r->nwaiters = 0;
}

void room_add_stream(struct room *r, struct room_sub *sub)
{
	subs_push(&r->streams, &r->nstreams, &r->capstreams, sub, 4);
}

void room_remove_stream(struct room *r, struct room_sub *sub)
{
	subs_remove(r->streams, &r->nstreams, sub);
}

void room_await(struct chat *c, struct room *r, struct room_sub *sub)
{
	if (r->state == ROOM_LIVE) {
		c->stats.history_hits++;
		sub->ops->ready(c, sub, r, true);
		return;
	}
	c->stats.history_misses++;
	subs_push(&r->waiters, &r->nwaiters, &r->capwaiters, sub, 4);
	if (r->state == ROOM_STALE && c->listen_up)
		room_sync(c, r);
	else if (r->state == ROOM_STALE)
		room_serve_waiters(c, r, false);
}

bool room_cancel_await(struct room *r, struct room_sub *sub)
{
	return subs_remove(r->waiters, &r->nwaiters, sub);
}

static void room_serve_waiters(struct chat *c, struct room *r, bool ok)
{
	size_t n = r->nwaiters;
	struct room_sub **subs = r->waiters;

	/* Serving a waiter can add waiters: detach the list first. */
	r->waiters = NULL;
	r->nwaiters = r->capwaiters = 0;
	for (size_t i = 0; i < n; i++)
		subs[i]->ops->ready(c, subs[i], r, ok);
	free(subs);
}

struct outbuf *room_msg_sse(struct room *r, struct msg *m)
{
	if (!m->sse)
		m->sse = wire_sse_message(r->name, m->seq, m->id, m->nick,
					  m->content, m->time_ms);
	return m->sse;
}

/* A message's delivery being timed (struct outq_trace's event). */
struct msg_trace {
	struct outq_trace base;
	struct chat *c;
	int64_t t_notify_ns, t_read_ns, t_result_ns;
};

static void lat(struct chat *c, enum chat_lat stage, int64_t from,
		int64_t to)
{
	if (from && to >= from)
		hist_record(&c->stats.lat[stage], (uint64_t)(to - from) / 1000);
}

static void trace_event(struct outq_trace *t, enum outq_trace_event what)
{
	struct msg_trace *mt = (struct msg_trace *)t;
	int64_t now = clock_mono_ns();

	switch (what) {
	case OUTQ_FIRST:
		lat(mt->c, CHAT_LAT_FIRST, mt->t_notify_ns, now);
		lat(mt->c, CHAT_LAT_READ_FIRST, mt->t_read_ns, now);
		return;
	case OUTQ_LAST:
		lat(mt->c, CHAT_LAT_LAST, mt->t_notify_ns, now);
		lat(mt->c, CHAT_LAT_DELIVERY, mt->t_result_ns, now);
		lat(mt->c, CHAT_LAT_READ_LAST, mt->t_read_ns, now);
		break;
	case OUTQ_NONE:
		break;
	}
	free(mt);
}

/* Times m's fan-out (from its NOTIFY) when it has a stamp: its line and,
 * with streams here, its event frame (encoded now) share one trace. */
static struct msg_trace *trace_msg(struct chat *c, struct room *r,
				   struct msg *m)
{
	struct msg_trace *mt;

	if (!m->t_notify_ns || m->line->trace)
		return NULL;
	mt = xcalloc(1, sizeof(*mt));
	mt->base.event = trace_event;
	mt->c = c;
	mt->t_notify_ns = m->t_notify_ns;
	mt->t_read_ns = m->t_read_ns;
	mt->t_result_ns = m->t_result_ns;
	outq_trace_attach(&mt->base, m->line);
	if (r->nstreams)
		outq_trace_attach(&mt->base, room_msg_sse(r, m));
	return mt;
}

static void room_deliver_msg(struct chat *c, struct room *r, struct msg *m)
{
	struct msg_trace *mt;

	if (m->seq <= r->last_seq) {
		c->stats.events_dropped++;
		return;
	}
	if (m->seq != r->last_seq + 1 && r->ring_valid)
		log_warn("seq_gap", LOG_S("room", r->name),
			 LOG_I("from", r->last_seq), LOG_I("to", m->seq));
	r->last_seq = m->seq;
	ring_push(&r->ring, m);
	mt = trace_msg(c, r, m);
	/* The hot path: one indirect call per subscriber, nothing
	 * allocated; each gets a reference to the message's one encoding. */
	for (size_t i = 0; i < r->nmembers; i++)
		r->members[i]->ops->message(c, r->members[i], r, m);
	for (size_t i = 0; i < r->nstreams; i++)
		r->streams[i]->ops->message(c, r->streams[i], r, m);
	if (mt)
		outq_trace_settle(&mt->base);
}

static void room_deliver_notice(struct chat *c, struct room *r,
				const struct room_notice *n)
{
	for (size_t i = 0; i < r->nmembers; i++)
		r->members[i]->ops->notice(c, r->members[i], r, n);
	for (size_t i = 0; i < r->nstreams; i++)
		r->streams[i]->ops->notice(c, r->streams[i], r, n);
}

static void park(struct room *r, struct msg *m, const struct room_notice *n)
{
	struct parked *p = xcalloc(1, sizeof(*p));

	p->msg = m ? msg_ref(m) : NULL;
	if (n) {
		p->notice = outbuf_ref(n->line);
		p->sse = outbuf_ref(n->sse);
		p->skip_uid = n->skip_uid;
		if (n->skip_nick)
			snprintf(p->skip_nick, sizeof(p->skip_nick), "%s",
				 n->skip_nick);
		p->once = n->once;
	}
	*r->parked_tail = p;
	r->parked_tail = &p->next;
}

bool room_is_listening(const struct room *r)
{
	return r->state == ROOM_SYNCING || r->state == ROOM_LIVE;
}

/* The subject entry of uid in r's group being delivered, or NULL. */
static struct room_group_subject *group_subject(const struct room_group *g,
						int64_t uid)
{
	size_t lo = 0, hi = g->nsubjects;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->subjects[mid].uid == uid)
			return &g->subjects[mid];
		if (g->subjects[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The frame of r's group for subject s: the others' names (NULL: none). */
static struct outbuf *group_frame_without(struct room *r,
					  struct room_group_subject *s,
					  enum room_frame f)
{
	struct room_group *g = &r->group;
	struct outbuf **slot = f == ROOM_FRAME_LINE ? &s->line : &s->sse;
	size_t others = g->n - s->times;
	const char *names[WIRE_GROUP_USERS];
	size_t n = 0;

	if (!others || *slot)
		return *slot;	/* NULL when nobody else */
	/* The formats read only the first WIRE_GROUP_USERS names. */
	for (size_t i = 0; i < g->n && n < WIRE_GROUP_USERS; i++)
		if (g->who[i].uid != s->uid)
			names[n++] = g->who[i].nick;
	if (f == ROOM_FRAME_LINE)
		*slot = wire_line_group(r->name, g->join, names, others);
	else
		*slot = wire_sse_group(r->name, g->join, names, others);
	return *slot;
}

struct outbuf *room_notice_frame(const struct room_notice *n, enum room_frame f,
				 int64_t uid, const char *nick)
{
	struct room_group_subject *s;

	if (n->grouped) {
		s = group_subject(&n->grouped->group, uid);
		if (s)
			return group_frame_without(n->grouped, s, f);
	} else if ((n->skip_uid && uid == n->skip_uid) ||
		   (n->skip_nick && name_equal_nocase(nick, n->skip_nick))) {
		return NULL;
	}
	return f == ROOM_FRAME_LINE ? n->line : n->sse;
}

static int subject_cmp(const void *a, const void *b)
{
	const struct room_group_subject *x = a, *y = b;

	return (x->uid > y->uid) - (x->uid < y->uid);
}

/* Fills g's subjects: its distinct user ids, sorted, frames not built. */
static void group_index_subjects(struct room_group *g)
{
	size_t n = 0;

	if (g->capsubjects < g->n) {
		g->capsubjects = g->cap;
		g->subjects = xrealloc(g->subjects,
				       g->capsubjects * sizeof(*g->subjects));
	}
	for (size_t i = 0; i < g->n; i++)
		g->subjects[i] = (struct room_group_subject){
			.uid = g->who[i].uid, .times = 1,
		};
	qsort(g->subjects, g->n, sizeof(*g->subjects), subject_cmp);
	for (size_t i = 0; i < g->n; i++) {
		if (n && g->subjects[n - 1].uid == g->subjects[i].uid)
			g->subjects[n - 1].times++;
		else
			g->subjects[n++] = g->subjects[i];
	}
	g->nsubjects = n;
}

/* Shows r's pending joins or leaves (r is live) as one notice: the same
 * frames for everyone they do not name, encoded once; the people they
 * name get the others' names (room_notice_frame()). One alone reads as
 * ever, and its subject does not get it. */
static void room_flush_group(struct chat *c, struct room *r)
{
	struct room_group *g = &r->group;
	const char *names[WIRE_GROUP_USERS];
	struct room_notice n = { 0 };

	assert(r->state == ROOM_LIVE);
	for (size_t i = 0; i < g->n && i < WIRE_GROUP_USERS; i++)
		names[i] = g->who[i].nick;
	n.line = wire_line_group(r->name, g->join, names, g->n);
	n.sse = wire_sse_group(r->name, g->join, names, g->n);
	if (g->n == 1) {
		n.skip_uid = g->who[0].uid;
	} else {
		group_index_subjects(g);
		n.grouped = r;
	}
	room_deliver_notice(c, r, &n);
	for (size_t i = 0; i < g->nsubjects; i++) {
		outbuf_unref(g->subjects[i].line);
		outbuf_unref(g->subjects[i].sse);
	}
	g->nsubjects = 0;
	g->n = 0;
	outbuf_unref(n.line);
	outbuf_unref(n.sse);
}

/* Shows r's pending joins or leaves now, if it has any. */
static inline void room_flush_pending(struct chat *c, struct room *r)
{
	if (r->group.n)
		room_flush_group(c, r);
}

/* Holds a join or leave of live room r for the pass's notice. */
static void room_group_add(struct chat *c, struct room *r, bool join,
			   int64_t uid, const char *nick)
{
	struct room_group *g = &r->group;

	if (g->n && g->join != join)
		room_flush_group(c, r);	/* joins and leaves keep their order */
	if (!g->listed) {
		if (c->ngrouped == c->capgrouped) {
			c->capgrouped = c->capgrouped ? c->capgrouped * 2 : 16;
			c->grouped = xrealloc(c->grouped, c->capgrouped *
							     sizeof(*c->grouped));
		}
		c->grouped[c->ngrouped++] = r->id;
		g->listed = true;
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 4;
		g->who = xrealloc(g->who, g->cap * sizeof(*g->who));
	}
	g->join = join;
	g->who[g->n].uid = uid;
	snprintf(g->who[g->n].nick, sizeof(g->who[g->n].nick), "%s", nick);
	g->n++;
}

void chat_on_events_done(struct chat *c)
{
	/* By id: a room may have gone (its last member left) meanwhile. */
	for (size_t i = 0; i < c->ngrouped; i++) {
		struct room *r = room_get(c, c->grouped[i]);

		if (!r)
			continue;
		r->group.listed = false;
		room_flush_pending(c, r);
	}
	c->ngrouped = 0;
}

void room_take_event(struct chat *c, struct room *r,
		     const struct chat_event *ev)
{
	struct room_notice n = { 0 };
	struct strbuf text = STRBUF_INIT;
	struct msg *m = NULL;

	if (ev->kind == CHAT_EV_JOIN || ev->kind == CHAT_EV_LEAVE) {
		c->rooms_version++;
		if (r->state == ROOM_LIVE) {
			room_group_add(c, r, ev->kind == CHAT_EV_JOIN,
				       ev->uid, ev->nick);
			return;
		}
	}
	/* Nothing overtakes the joins and leaves heard before it. */
	room_flush_pending(c, r);
	if (ev->kind == CHAT_EV_HISTORY) {
		/* Load the ring again (messages seen meanwhile are parked
		 * and shown after, as in any sync). */
		if (r->state == ROOM_LIVE) {
			r->ring_valid = false;
			room_sync(c, r);
		}
		return;
	}
	switch (ev->kind) {
	case CHAT_EV_MESSAGE:
		m = msg_new(r->name, r->id, ev->seq, ev->id, ev->time_ms,
			    ev->nick, ev->content, ev->content_len);
		m->t_notify_ns = ev->t_notify_ns;
		m->t_read_ns = ev->t_read_ns;
		m->t_result_ns = ev->t_result_ns;
		break;
	case CHAT_EV_JOIN:
	case CHAT_EV_LEAVE:
		/* Syncing: parked as it came (the lone form). */
		wire_group_text(&text, &ev->nick, 1, ev->kind == CHAT_EV_JOIN,
				r->name);
		break;
	case CHAT_EV_NICK:
		sb_appendf(&text, "%s is now known as %s", ev->nick,
			   ev->new_nick);
		break;
	case CHAT_EV_HISTORY:
		break;
	}
	if (text.len) {
		/* One text, in each transport's frame. */
		n.line = wire_line_notice(text.buf, text.len);
		n.sse = wire_sse_system(r->name, text.buf);
		n.skip_uid = ev->uid;
		n.skip_nick = ev->kind == CHAT_EV_NICK ? ev->new_nick : NULL;
		n.once = ev->rename_id;
		sb_fini(&text);
	}
	if (r->state == ROOM_SYNCING)
		park(r, m, m ? NULL : &n);
	else if (m)
		room_deliver_msg(c, r, m);
	else
		room_deliver_notice(c, r, &n);
	msg_unref(m);
	outbuf_unref(n.line);
	outbuf_unref(n.sse);
}

void chat_on_room_sync(struct chat *c, int64_t room_id, uint64_t gen,
		       int err, const struct chat_msg_row *rows, size_t n)
{
	struct room *r = room_get(c, room_id);
	struct parked *p;

	if (!r || gen != r->sync_gen || r->state != ROOM_SYNCING)
		return;		/* superseded */
	if (err) {
		log_warn("room_sync_failed", LOG_S("room", r->name),
			 LOG_S("reason", bd_strerror(err)));
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
		r->streams[i]->ops->ready(c, r->streams[i], r, true);
	p = r->parked;
	r->parked = NULL;
	r->parked_tail = &r->parked;
	while (p) {
		struct parked *next = p->next;
		struct room_notice pn = {
			.line = p->notice,
			.sse = p->sse,
			.skip_uid = p->skip_uid,
			.skip_nick = p->skip_nick[0] ? p->skip_nick : NULL,
			.once = p->once,
		};

		if (p->msg)
			room_deliver_msg(c, r, p->msg);
		else
			room_deliver_notice(c, r, &pn);
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
	chat_on_events_done(c);	/* what was heard is shown */
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
