/*
 * Output buffers and per-connection output queues. A broadcast is encoded
 * once into a refcounted outbuf; each recipient's queue holds a reference.
 * The queue never touches a socket: the adapter copies bytes out and
 * consumes what it wrote.
 */
#ifndef BD_CORE_OUTQ_H
#define BD_CORE_OUTQ_H

#include <stdbool.h>
#include <stddef.h>

struct outq_trace;

struct outbuf {
	unsigned refs;	/* owners: queues, messages, the creator */
	struct outq_trace *trace;	/* a delivery being timed, or NULL */
	size_t len;	/* bytes in data */
	char data[];
};

/*
 * A delivery being timed (one message, in up to two encodings): counts
 * the copies of its buffers sitting in queues. event() is called with
 * OUTQ_FIRST when the first copy has been written out, and once more when
 * no copy is queued any more: OUTQ_LAST when one was written, OUTQ_NONE
 * when none was; then the trace is detached from its buffers and event()
 * owns it (frees it). outq_trace_settle() after the fan-out finishes one
 * that nobody queued.
 */
enum outq_trace_event { OUTQ_FIRST, OUTQ_LAST, OUTQ_NONE };

struct outq_trace {
	unsigned queued;		/* copies in queues now */
	bool written;			/* one went out */
	struct outbuf *bufs[2];		/* the buffers pointing here */
	void (*event)(struct outq_trace *t, enum outq_trace_event what);
};

/* Points b (one of at most two) at t. */
void outq_trace_attach(struct outq_trace *t, struct outbuf *b);
void outq_trace_settle(struct outq_trace *t);

/* New buffer holding a copy of p[0..n), one reference. */
struct outbuf *outbuf_new(const char *p, size_t n);
struct outbuf *outbuf_fmt(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
struct outbuf *outbuf_ref(struct outbuf *b);
/* Drops one reference; accepts NULL. */
void outbuf_unref(struct outbuf *b);

struct outq {
	struct outbuf **items;	/* ring of queued buffers */
	size_t head;		/* index of the oldest */
	size_t count;		/* buffers queued */
	size_t cap;		/* ring size, a power of two */
	size_t off;		/* bytes of items[head] already written */
	size_t bytes;		/* unwritten bytes in the queue */
	size_t limit;		/* push fails beyond this many bytes */
};

void outq_init(struct outq *q, size_t limit);
void outq_fini(struct outq *q);
/* Queues a reference to b. BD_EFULL (and nothing queued) when it would
 * take the queue over its limit. */
int outq_push(struct outq *q, struct outbuf *b);
/* Copies up to max unwritten bytes into dst; returns how many. */
size_t outq_copy(const struct outq *q, char *dst, size_t max);
/* Marks n bytes (at most outq_copy()'s result) as written; returns how
 * many buffers that completed. */
size_t outq_consume(struct outq *q, size_t n);
bool outq_empty(const struct outq *q);

#endif
