/*
 * Every byte format of the chat, in one place: the line protocol's room
 * lines and notices, the event streams' frames (each a new refcounted
 * outbuf, encoded once and shared by every recipient; the caller unrefs
 * it), and the HTTP API's JSON answers (each a new string the caller
 * frees). Text is JSON-escaped here.
 */
#ifndef BD_CORE_WIRE_H
#define BD_CORE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/outq.h"

struct buckets;
struct hist;
struct chat_stats;
struct strbuf;

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
/*
 * The notice of n people (n >= 1) who joined (join true) or left room at
 * once. names holds the first min(n, WIRE_GROUP_USERS) of them, in the
 * order they came: the formats read no further. The text is "alice joined
 * general" for one, "alice and bob joined general" for two, "alice, bob,
 * carol joined general" up to WIRE_GROUP_NAMES, and past that "alice, bob
 * and 48 others joined general" ("left" for leaves).
 */
#define WIRE_GROUP_NAMES 5
/* The most names a stream's frame lists ("users"); "count" is all. */
#define WIRE_GROUP_USERS 100
/* The text, into sb. */
void wire_group_text(struct strbuf *sb, const char *const *names, size_t n,
		     bool join, const char *room);
/* "[system] <text>\n" */
struct outbuf *wire_line_group(const char *room, bool join,
			       const char *const *names, size_t n);
/* event: system; data: {room, text} for one person (a lone join reads as
 * any notice), {room, text, users, count} for several: users are the
 * first WIRE_GROUP_USERS names, count is n. */
struct outbuf *wire_sse_group(const char *room, bool join,
			      const char *const *names, size_t n);
/* event: reset, data: {reason: "history truncated", missed} */
struct outbuf *wire_sse_reset(int64_t missed);
/* The retry hint that opens a stream. */
struct outbuf *wire_sse_retry(unsigned ms);
/* A comment that keeps proxies from closing an idle stream. */
struct outbuf *wire_sse_ping(void);

/* HTTP API answers: compact JSON objects, keys in this order. */
struct chat_room_info;
/* {"error":why} */
char *wire_json_error(const char *why);
/* {"success":true} */
char *wire_json_success(void);
/* {"session_id","user_id","nickname"} */
char *wire_json_connected(const char *token, int64_t uid, const char *nick);
/* {"success":ok,"message":text} */
char *wire_json_replied(bool ok, const char *text);
/* {"success":true,"message_id","seq"} */
char *wire_json_posted(int64_t id, int64_t seq);
/* {"rooms":[{"name","members","online"}...],"next":name or null} */
char *wire_json_rooms(const struct chat_room_info *rooms, size_t n,
		      const char *next);

/* GET /health. */
struct wire_health {
	bool ok;			/* database reachable */
	bool draining;			/* shutting down: "draining", 503 */
	uint64_t uptime_s;
	uint64_t tcp, http_sessions;	/* connections by transport */
	const char *instance_id;
	uint64_t sessions, streams, history_hits, history_misses;
	double notify_queue_usage;
	uint64_t http_connections, http_waiting, room_list_reads;
	uint64_t db_queued, db_queued_user, db_limit, db_refused, db_dropped;
	const struct hist *lat;		/* CHAT_LAT_N stages, or NULL */
};
char *wire_json_health(const struct wire_health *h);

/* GET /metrics: one snapshot, rendered as JSON or as Prometheus text. */
struct wire_metrics {
	const char *instance_id;
	uint64_t uptime_s;
	const struct chat_stats *chat;
	uint64_t tcp, http_sessions, sse_streams;	/* connections now */
	uint64_t rooms_in_memory;
	bool db_available;		/* query connection up and idle */
	uint64_t db_waiting;		/* statements queued or running */
	uint64_t db_refused, db_errors, db_reconnects, db_lost;
	uint64_t notifications;
	double notify_queue_usage;	/* 0..1 */
	uint64_t bytes_in, bytes_out;
	uint64_t lines_out, events_out;		/* written to sockets */
	uint64_t conns_refused;			/* over a connection limit */
	const struct buckets *post_batches, *ctl_batches;
};
char *wire_json_metrics(const struct wire_metrics *m);
/* The Prometheus text exposition format 0.0.4. */
char *wire_prom_metrics(const struct wire_metrics *m);

#endif
