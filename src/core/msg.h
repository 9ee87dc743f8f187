/*
 * A committed chat message, refcounted and shared by a room's history ring
 * and whoever is delivering it, and the fixed-size history ring itself.
 */
#ifndef BD_CORE_MSG_H
#define BD_CORE_MSG_H

#include <stddef.h>
#include <stdint.h>

struct outbuf;

struct msg {
	unsigned refs;		/* ring slot + in-flight deliveries */
	int64_t room_id;	/* rooms.id */
	int64_t seq;		/* per-room sequence number */
	int64_t id;		/* messages.id */
	int64_t time_ms;	/* commit time, ms since the epoch */
	char *nick;		/* sender's nickname when sent */
	char *content;		/* sanitized text, NUL-terminated */
	struct outbuf *line;	/* "[room] nick: text\n", encoded once */
	struct outbuf *sse;	/* SSE frame, encoded on first use */
	/* Timing (struct chat_event's): 0 when unknown. */
	int64_t t_notify_ns, t_read_ns, t_result_ns;
};

/* New message with one reference; copies the strings. */
struct msg *msg_new(const char *room_name, int64_t room_id, int64_t seq,
		    int64_t id, int64_t time_ms, const char *nick,
		    const char *content, size_t content_len);
struct msg *msg_ref(struct msg *m);
/* Drops one reference; accepts NULL. */
void msg_unref(struct msg *m);

struct ring {
	struct msg **slots;	/* cap slots */
	size_t cap;		/* capacity (history size) */
	size_t head;		/* slot of the oldest message */
	size_t count;		/* messages held */
};

void ring_init(struct ring *r, size_t cap);
void ring_fini(struct ring *r);
/* Drops every message. */
void ring_clear(struct ring *r);
/* Appends a reference to m, dropping the oldest when full. */
void ring_push(struct ring *r, struct msg *m);
/* i-th message, oldest first (i < count); borrowed. */
struct msg *ring_at(const struct ring *r, size_t i);
/* Newest message or NULL; borrowed. */
struct msg *ring_last(const struct ring *r);

#endif
