/* Messages and the per-room history ring. */
#include "core/msg.h"

#include <stdlib.h>
#include <string.h>

#include "core/outq.h"
#include "core/wire.h"
#include "util/xalloc.h"

struct msg *msg_new(const char *room_name, int64_t room_id, int64_t seq,
		    int64_t id, int64_t time_ms, const char *nick,
		    const char *content, size_t content_len)
{
	struct msg *m = xcalloc(1, sizeof(*m));

	m->refs = 1;
	m->room_id = room_id;
	m->seq = seq;
	m->id = id;
	m->time_ms = time_ms;
	m->nick = xstrdup(nick);
	m->content = xmemdup(content, content_len);
	m->line = wire_line_message(room_name, nick, m->content);
	return m;
}

struct msg *msg_ref(struct msg *m)
{
	m->refs++;
	return m;
}

void msg_unref(struct msg *m)
{
	if (!m || --m->refs)
		return;
	outbuf_unref(m->line);
	outbuf_unref(m->sse);
	free(m->nick);
	free(m->content);
	free(m);
}

void ring_init(struct ring *r, size_t cap)
{
	r->slots = xcalloc(cap ? cap : 1, sizeof(*r->slots));
	r->cap = cap;
	r->head = 0;
	r->count = 0;
}

void ring_clear(struct ring *r)
{
	for (size_t i = 0; i < r->count; i++)
		msg_unref(ring_at(r, i));
	r->head = 0;
	r->count = 0;
}

void ring_fini(struct ring *r)
{
	ring_clear(r);
	free(r->slots);
	r->slots = NULL;
}

void ring_push(struct ring *r, struct msg *m)
{
	if (!r->cap)
		return;
	if (r->count == r->cap) {
		msg_unref(r->slots[r->head]);
		r->slots[r->head] = msg_ref(m);
		r->head = (r->head + 1) % r->cap;
		return;
	}
	r->slots[(r->head + r->count) % r->cap] = msg_ref(m);
	r->count++;
}

struct msg *ring_at(const struct ring *r, size_t i)
{
	return r->slots[(r->head + i) % r->cap];
}

struct msg *ring_last(const struct ring *r)
{
	return r->count ? ring_at(r, r->count - 1) : NULL;
}
