/*
 * Event streams (stream.c): above rooms (a stream is its room's
 * subscriber), below sessions (its owner session opens, detaches and
 * closes it, and lends it its identity). struct stream is stream.c's
 * alone.
 */
#ifndef BD_CORE_STREAM_INT_H
#define BD_CORE_STREAM_INT_H

#include <stdbool.h>
#include <stdint.h>

struct chat;
struct chat_sink_ops;
struct outbuf;
struct room;
struct session;
struct stream;

/* A new stream of r for the session owner, resuming after seq resume
 * (-1: with the history); it starts at once when r is live, else when r's
 * sync ends. owner_uid and owner_nick point into the owner (renames show
 * through them) for a notice's subject rule, until stream_detach(). */
struct stream *stream_new(struct chat *c, struct room *r,
			  struct session *owner, const int64_t *owner_uid,
			  const char *owner_nick,
			  const struct chat_sink_ops *sink, void *conn,
			  int64_t resume);
/* Frees st (its transport closed it) and releases its room. */
void stream_free(struct chat *c, struct stream *st);
/* Queues b; a slow consumer is killed. */
void stream_send(struct chat *c, struct stream *st, struct outbuf *b);
/* Asks the transport to close it (flushed or not). */
void stream_kill(struct stream *st, bool flush);
/* Its owner goes: the stream forgets it and gets no more notices; it
 * still has to be killed. */
void stream_detach(struct stream *st);
/* The owner given to stream_new(), NULL once detached; never read here. */
struct session *stream_owner(const struct stream *st);
struct room *stream_room(const struct stream *st);

#endif
