/*
 * Event streams (SSE) of one room for API sessions: the history or a
 * resume after a given seq (from the ring, else from the database, else a
 * reset), then live messages and notices. While a database replay is in
 * flight, live messages are parked and released after it, so a stream sees
 * each seq once and in order. A stream is its room's subscriber (struct
 * room_sub); its owner session is above it: the stream borrows the owner's
 * identity and knows nothing else of it.
 */
#include "core/stream_int.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/instance_int.h"
#include "core/msg.h"
#include "core/outq.h"
#include "core/room_int.h"
#include "core/wire.h"
#include "log.h"
#include "util/xalloc.h"

#define REPLAY_LIMIT 1000	/* furthest resume served; beyond: reset */

/* An event stream of one room for an API session (SSE). */
struct stream {
	struct room_sub sub;		/* how its room reaches it */
	uint64_t id;			/* token of its database replay */
	struct session *s;		/* owner (never read here); NULL once
					 * detached */
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
		log_warn("slow_consumer", LOG_U("stream", st->id),
			 LOG_S("nick", st->s ? st->owner_nick : "?"),
			 LOG_S("room", st->room->name),
			 LOG_U("queued", st->outq.bytes), LOG_U("more", b->len),
			 LOG_U("limit", st->outq.limit));
		stream_kill(st, false);
		return;
	}
	c->stats.events_delivered++;
	st->sink->wake(st->conn);
}

static void send_msg(struct chat *c, struct stream *st, struct msg *m)
{
	if (m->seq <= st->last_seq)
		return;
	st->last_seq = m->seq;
	stream_send(c, st, room_msg_sse(st->room, m));
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

static void stream_start(struct chat *c, struct stream *st)
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

static struct stream *sub_stream(struct room_sub *sub)
{
	return (struct stream *)((char *)sub - offsetof(struct stream, sub));
}

static void stream_on_message(struct chat *c, struct room_sub *sub,
			      struct room *r, struct msg *m)
{
	struct stream *st = sub_stream(sub);

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

static void stream_on_notice(struct chat *c, struct room_sub *sub,
			     struct room *r, const struct room_notice *n)
{
	struct stream *st = sub_stream(sub);
	struct outbuf *b;

	(void)r;
	if (!st->started || st->replaying || !st->s)
		return;
	b = room_notice_frame(n, ROOM_FRAME_SSE, *st->owner_uid,
			      st->owner_nick);
	if (b)
		stream_send(c, st, b);
}

static void stream_on_ready(struct chat *c, struct room_sub *sub,
			    struct room *r, bool ok)
{
	struct stream *st = sub_stream(sub);

	(void)r;
	if (ok && !st->started)
		stream_start(c, st);
}

static const struct room_sub_ops stream_sub_ops = {
	.message = stream_on_message,
	.notice = stream_on_notice,
	.ready = stream_on_ready,
};

struct stream *stream_new(struct chat *c, struct room *r,
			  struct session *owner, const int64_t *owner_uid,
			  const char *owner_nick,
			  const struct chat_sink_ops *sink, void *conn,
			  int64_t resume)
{
	struct stream *st = xcalloc(1, sizeof(*st));

	st->sub.ops = &stream_sub_ops;
	st->id = c->next_stream_id++;
	st->s = owner;
	st->owner_uid = owner_uid;
	st->owner_nick = owner_nick;
	st->room = r;
	st->sink = sink;
	st->conn = conn;
	st->resume = resume;
	outq_init(&st->outq, c->cfg.outq_limit);
	idmap_put(&c->streams, st->id, st);
	room_add_stream(r, &st->sub);
	if (room_is_live(r))
		stream_start(c, st);
	/* Else it starts when the room's sync completes. */
	return st;
}

void stream_free(struct chat *c, struct stream *st)
{
	room_remove_stream(st->room, &st->sub);
	room_release(c, st->room);
	idmap_del(&c->streams, st->id);
	for (size_t i = 0; i < st->nparked; i++)
		msg_unref(st->parked[i]);
	free(st->parked);
	outq_fini(&st->outq);
	free(st);
}

void stream_detach(struct stream *st)
{
	st->s = NULL;
	st->owner_uid = NULL;
	st->owner_nick = NULL;
}

struct session *stream_owner(const struct stream *st)
{
	return st->s;
}

struct room *stream_room(const struct stream *st)
{
	return st->room;
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
