/*
 * Every byte format the chat core writes, in one place: the line
 * protocol's room lines and notices, and the event streams' frames. Each
 * returns a new refcounted outbuf (the caller unrefs it), encoded once and
 * shared by every recipient. Text in frames is JSON-escaped here. (HTTP's
 * JSON answers are the HTTP transport's, in src/net.)
 */
#ifndef BD_CORE_WIRE_H
#define BD_CORE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/outq.h"

/* Line protocol */
/* "[room] nick: content\n" */
struct outbuf *wire_line_message(const char *room, const char *nick,
				 const char *content);
/* "[system] text\n": a server notice; errors are notices whose text
 * starts with "error: " (wire_line_error). */
struct outbuf *wire_line_notice(const char *text, size_t len);
struct outbuf *wire_line_error(const char *text, size_t len);

/* Event streams */
/* id: <seq>, event: message, data: {id, seq, room, user, content,
 * created_at} */
struct outbuf *wire_sse_message(const char *room, int64_t seq, int64_t id,
				const char *nick, const char *content,
				int64_t time_ms);
/* event: system, data: {room, text} ({text} when room is NULL) */
struct outbuf *wire_sse_system(const char *room, const char *text);
/* event: reset, data: {reason: "history truncated", missed} */
struct outbuf *wire_sse_reset(int64_t missed);
/* The retry hint that opens a stream. */
struct outbuf *wire_sse_retry(unsigned ms);
/* A comment that keeps proxies from closing an idle stream. */
struct outbuf *wire_sse_ping(void);

#endif
