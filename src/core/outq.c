/* Refcounted buffers and byte-bounded output queues. */
#include "core/outq.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "util/xalloc.h"

struct outbuf *outbuf_new(const char *p, size_t n)
{
	struct outbuf *b = xmalloc(sizeof(*b) + n + 1);

	b->refs = 1;
	b->trace = NULL;
	b->len = n;
	memcpy(b->data, p, n);
	b->data[n] = '\0';
	return b;
}

struct outbuf *outbuf_fmt(const char *fmt, ...)
{
	struct outbuf *b;
	char probe[1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(probe, sizeof(probe), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	b = xmalloc(sizeof(*b) + (size_t)n + 1);
	b->refs = 1;
	b->trace = NULL;
	b->len = (size_t)n;
	va_start(ap, fmt);
	vsnprintf(b->data, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return b;
}

struct outbuf *outbuf_ref(struct outbuf *b)
{
	b->refs++;
	return b;
}

void outq_trace_attach(struct outq_trace *t, struct outbuf *b)
{
	for (size_t i = 0; i < 2; i++)
		if (!t->bufs[i]) {
			t->bufs[i] = b;
			b->trace = t;
			return;
		}
}

static void trace_finish(struct outq_trace *t)
{
	for (size_t i = 0; i < 2; i++)
		if (t->bufs[i])
			t->bufs[i]->trace = NULL;
	t->event(t, t->written ? OUTQ_LAST : OUTQ_NONE);
}

void outq_trace_settle(struct outq_trace *t)
{
	if (!t->queued)
		trace_finish(t);
}

/* One queued copy of b left its queue, written or not. */
static void trace_dequeued(struct outbuf *b, bool written)
{
	struct outq_trace *t = b->trace;

	if (!t)
		return;
	if (written && !t->written) {
		t->written = true;
		t->event(t, OUTQ_FIRST);
	}
	if (!--t->queued)
		trace_finish(t);
}

void outbuf_unref(struct outbuf *b)
{
	if (!b || --b->refs)
		return;
	/* Freed before its trace settled (never queued): forget it. */
	if (b->trace)
		for (size_t i = 0; i < 2; i++)
			if (b->trace->bufs[i] == b)
				b->trace->bufs[i] = NULL;
	free(b);
}

void outq_init(struct outq *q, size_t limit)
{
	memset(q, 0, sizeof(*q));
	q->limit = limit;
}

void outq_fini(struct outq *q)
{
	while (q->count) {
		trace_dequeued(q->items[q->head], false);
		outbuf_unref(q->items[q->head]);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
	}
	free(q->items);
	memset(q, 0, sizeof(*q));
}

static void outq_grow(struct outq *q)
{
	size_t cap = q->cap ? q->cap * 2 : 8;
	struct outbuf **items = xmalloc(cap * sizeof(*items));

	for (size_t i = 0; i < q->count; i++)
		items[i] = q->items[(q->head + i) & (q->cap - 1)];
	free(q->items);
	q->items = items;
	q->cap = cap;
	q->head = 0;
}

int outq_push(struct outq *q, struct outbuf *b)
{
	if (q->bytes + b->len > q->limit)
		return BD_EFULL;
	if (q->count == q->cap)
		outq_grow(q);
	q->items[(q->head + q->count) & (q->cap - 1)] = outbuf_ref(b);
	q->count++;
	if (b->trace)
		b->trace->queued++;
	q->bytes += b->len;
	return 0;
}

size_t outq_copy(const struct outq *q, char *dst, size_t max)
{
	size_t n = 0, off = q->off;

	for (size_t i = 0; i < q->count && n < max; i++) {
		const struct outbuf *b = q->items[(q->head + i) & (q->cap - 1)];
		size_t take = b->len - off;

		if (take > max - n)
			take = max - n;
		memcpy(dst + n, b->data + off, take);
		n += take;
		off = 0;
	}
	return n;
}

size_t outq_consume(struct outq *q, size_t n)
{
	size_t done = 0;

	q->bytes -= n;
	while (n && q->count) {
		struct outbuf *b = q->items[q->head];
		size_t left = b->len - q->off;

		if (n < left) {
			q->off += n;
			return done;
		}
		n -= left;
		q->off = 0;
		trace_dequeued(b, true);
		outbuf_unref(b);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
		done++;
	}
	return done;
}

bool outq_empty(const struct outq *q)
{
	return !q->bytes;
}
