/*
 * Event streams (SSE) of one room for API sessions: the history or a
 * resume after a given seq (from the ring, else from the database, else a
 * reset), then live messages and notices. While a database replay is in
 * flight, live messages are parked and released after it, so a stream sees
 * each seq once and in order.
 */
#include "core/chat_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/wire.h"
#include "log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define REPLAY_LIMIT 1000	/* furthest resume served; beyond: reset */

/* The message's SSE frame, encoded once. */
static struct outbuf *msg_sse(struct room *r, struct msg *m)
{
	if (!m->sse)
		m->sse = wire_sse_message(r->name, m->seq, m->id, m->nick,
					  m->content, m->time_ms);
	return m->sse;
}

void stream_kill(struct stream *st, bool flush)
{
	if (st->closing)
		return;
	st->closing = true;
	st->sink->close(st->conn, flush);
}

void stream_send(struct chat *c, struct stream *st, struct outbuf *b)
{
	if (st->closing)
		return;
	if (outq_push(&st->outq, b)) {
		c->stats.slow_consumers++;
		log_warn("stream %" PRIu64 " (%s in %s): slow consumer, %zu bytes queued, %zu more would pass the limit (%zu), disconnecting",
			 st->id, st->s ? st->s->nick : "?", st->room->name,
			 st->outq.bytes, b->len, st->outq.limit);
		stream_kill(st, false);
		return;
	}
	st->sink->wake(st->conn);
}

static void send_msg(struct chat *c, struct stream *st, struct msg *m)
{
	if (m->seq <= st->last_seq)
		return;
	st->last_seq = m->seq;
	stream_send(c, st, msg_sse(st->room, m));
}

static void send_ring(struct chat *c, struct stream *st)
{
	struct room *r = st->room;

	for (size_t i = 0; i < r->ring.count; i++)
		send_msg(c, st, ring_at(&r->ring, i));
}

static int64_t ring_first_seq(const struct room *r);

/* Tells the client its resume point is gone, then shows the history (the
 * ring). missed counts what it will never see: from its resume point to
 * the ring's first message (some of the table's deleted messages may still
 * be in the ring, and are shown). */
static void send_reset(struct chat *c, struct stream *st)
{
	int64_t missed = ring_first_seq(st->room) - 1 - st->resume;
	struct outbuf *b = wire_sse_reset(missed);

	stream_send(c, st, b);
	outbuf_unref(b);
	st->last_seq = 0;
	send_ring(c, st);
}

static int64_t ring_first_seq(const struct room *r)
{
	return r->ring.count ? ring_at(&r->ring, 0)->seq : r->last_seq + 1;
}

void stream_start(struct chat *c, struct stream *st)
{
	struct room *r = st->room;

	st->started = true;
	if (st->resume < 0) {
		send_ring(c, st);
		st->last_seq = r->last_seq;
		return;
	}
	st->last_seq = st->resume;
	if (st->resume > r->last_seq) {
		/* Ahead of the room: its history was reset under it. */
		send_reset(c, st);
		return;
	}
	if (st->resume >= ring_first_seq(r) - 1) {
		send_ring(c, st);
		return;
	}
	st->replaying = true;
	if (c->store->replay(c->st, r->id, st->id, st->resume,
			     REPLAY_LIMIT + 1)) {
		st->replaying = false;
		send_reset(c, st);
	}
}

void stream_deliver_msg(struct chat *c, struct stream *st, struct room *r,
			struct msg *m)
{
	(void)r;
	if (!st->started || st->closing)
		return;		/* its start sends the ring, m included */
	if (!st->replaying) {
		send_msg(c, st, m);
		return;
	}
	if (st->nparked == st->capparked) {
		st->capparked = st->capparked ? st->capparked * 2 : 16;
		st->parked = xrealloc(st->parked,
				      st->capparked * sizeof(*st->parked));
	}
	st->parked[st->nparked++] = msg_ref(m);
}

static void release_parked(struct chat *c, struct stream *st)
{
	for (size_t i = 0; i < st->nparked; i++) {
		send_msg(c, st, st->parked[i]);
		msg_unref(st->parked[i]);
	}
	st->nparked = 0;
}

void chat_on_replay(struct chat *c, uint64_t token, int err,
		    const struct chat_msg_row *rows, size_t n)
{
	struct stream *st = idmap_get(&c->streams, token);
	struct room *r;

	if (!st || !st->replaying)
		return;
	r = st->room;
	st->replaying = false;
	if (err || !n || rows[0].seq != st->resume + 1 || n > REPLAY_LIMIT) {
		/* Failed, deleted by retention, or too far behind. */
		send_reset(c, st);
	} else {
		for (size_t i = 0; i < n; i++) {
			struct msg *m = msg_new(r->name, r->id, rows[i].seq,
						rows[i].id, rows[i].time_ms,
						rows[i].nick, rows[i].content,
						rows[i].content_len);

			send_msg(c, st, m);
			msg_unref(m);
		}
		send_ring(c, st);	/* newer ones the ring has (none, usually) */
	}
	release_parked(c, st);
}

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
	st = xcalloc(1, sizeof(*st));
	st->id = c->next_stream_id++;
	st->s = s;
	st->room = r;
	st->sink = sink;
	st->conn = conn;
	st->resume = last_seq;
	outq_init(&st->outq, c->cfg.outq_limit);
	idmap_put(&c->streams, st->id, st);
	if (r->nstreams == r->capstreams) {
		r->capstreams = r->capstreams ? r->capstreams * 2 : 4;
		r->streams = xrealloc(r->streams,
				      r->capstreams * sizeof(*r->streams));
	}
	r->streams[r->nstreams++] = st;
	if (s->nstreams == s->capstreams) {
		s->capstreams = s->capstreams ? s->capstreams * 2 : 4;
		s->streams = xrealloc(s->streams,
				      s->capstreams * sizeof(*s->streams));
	}
	s->streams[s->nstreams++] = st;
	if (r->state == ROOM_LIVE)
		stream_start(c, st);
	/* Else it starts when the room's sync completes. */
	return st;
}

static void remove_ptr(struct stream **v, size_t *n, struct stream *st)
{
	for (size_t i = 0; i < *n; i++) {
		if (v[i] == st) {
			v[i] = v[--*n];
			return;
		}
	}
}

void chat_stream_closed(struct chat *c, struct stream *st)
{
	remove_ptr(st->room->streams, &st->room->nstreams, st);
	room_release(c, st->room);
	if (st->s)
		remove_ptr(st->s->streams, &st->s->nstreams, st);
	idmap_del(&c->streams, st->id);
	for (size_t i = 0; i < st->nparked; i++)
		msg_unref(st->parked[i]);
	free(st->parked);
	outq_fini(&st->outq);
	free(st);
}

void session_close_streams(struct session *s, struct room *r)
{
	for (size_t i = 0; i < s->nstreams;) {
		struct stream *st = s->streams[i];

		if (r && st->room != r) {
			i++;
			continue;
		}
		/* Detach: the transport frees it later. */
		st->s = NULL;
		s->streams[i] = s->streams[--s->nstreams];
		stream_kill(st, true);
	}
}

struct outq *stream_outq(struct stream *st)
{
	return &st->outq;
}

size_t chat_stream_count(const struct chat *c)
{
	return c->streams.count;
}

void chat_heartbeat(struct chat *c)
{
	struct outbuf *b = wire_sse_ping();

	for (size_t i = 0; i < c->streams.cap; i++)
		if (c->streams.slots[i].key)
			stream_send(c, c->streams.slots[i].val, b);
	outbuf_unref(b);
}
