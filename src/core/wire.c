/* See wire.h: the line protocol's and the event streams' byte formats. */
#include "core/wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/chat.h"

#include "util/jsonw.h"
#include "util/strbuf.h"

static struct outbuf *detach(struct strbuf *sb)
{
	struct outbuf *b = outbuf_new(sb->buf, sb->len);

	sb_fini(sb);
	return b;
}

struct outbuf *wire_line_message(const char *room, const char *nick,
				 const char *content)
{
	return outbuf_fmt("[%s] %s: %s\n", room, nick, content);
}

struct outbuf *wire_line_notice(const char *text, size_t len)
{
	return outbuf_fmt("[system] %.*s\n", (int)len, text);
}

struct outbuf *wire_line_error(const char *text, size_t len)
{
	return outbuf_fmt("[system] error: %.*s\n", (int)len, text);
}

struct outbuf *wire_sse_message(const char *room, int64_t seq, int64_t id,
				const char *nick, const char *content,
				int64_t time_ms)
{
	struct strbuf sb = STRBUF_INIT;

	sb_appendf(&sb, "id: %" PRId64 "\nevent: message\ndata: {\"id\":%" PRId64
		   ",\"seq\":%" PRId64 ",\"room\":", seq, id, seq);
	jsonw_str(&sb, room, strlen(room));
	sb_puts(&sb, ",\"user\":");
	jsonw_str(&sb, nick, strlen(nick));
	sb_puts(&sb, ",\"content\":");
	jsonw_str(&sb, content, strlen(content));
	sb_puts(&sb, ",\"created_at\":");
	jsonw_time_ms(&sb, time_ms);
	sb_puts(&sb, "}\n\n");
	return detach(&sb);
}

struct outbuf *wire_sse_system(const char *room, const char *text)
{
	struct strbuf sb = STRBUF_INIT;

	sb_puts(&sb, "event: system\ndata: {");
	if (room) {
		sb_puts(&sb, "\"room\":");
		jsonw_str(&sb, room, strlen(room));
		sb_puts(&sb, ",");
	}
	sb_puts(&sb, "\"text\":");
	jsonw_str(&sb, text, strlen(text));
	sb_puts(&sb, "}\n\n");
	return detach(&sb);
}

_Static_assert(WIRE_GROUP_USERS >= WIRE_GROUP_NAMES,
	       "a stream's list holds the names the text shows");

void wire_group_text(struct strbuf *sb, const char *const *names, size_t n,
		     bool join, const char *room)
{
	const char *verb = join ? "joined" : "left";

	if (n > WIRE_GROUP_NAMES) {
		sb_appendf(sb, "%s, %s and %zu others %s %s", names[0],
			   names[1], n - 2, verb, room);
		return;
	}
	for (size_t i = 0; i < n; i++)
		sb_appendf(sb, "%s%s", i == 0 ? "" : n == 2 ? " and " : ", ",
			   names[i]);
	sb_appendf(sb, " %s %s", verb, room);
}

struct outbuf *wire_line_group(const char *room, bool join,
			       const char *const *names, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	sb_puts(&sb, "[system] ");
	wire_group_text(&sb, names, n, join, room);
	sb_puts(&sb, "\n");
	return detach(&sb);
}

struct outbuf *wire_sse_group(const char *room, bool join,
			      const char *const *names, size_t n)
{
	struct strbuf text = STRBUF_INIT;
	struct strbuf sb = STRBUF_INIT;

	wire_group_text(&text, names, n, join, room);
	if (n == 1) {
		struct outbuf *b = wire_sse_system(room, text.buf);

		sb_fini(&text);
		return b;
	}
	sb_puts(&sb, "event: system\ndata: {\"room\":");
	jsonw_str(&sb, room, strlen(room));
	sb_puts(&sb, ",\"text\":");
	jsonw_str(&sb, text.buf, text.len);
	sb_puts(&sb, ",\"users\":[");
	for (size_t i = 0; i < n && i < WIRE_GROUP_USERS; i++) {
		if (i)
			sb_puts(&sb, ",");
		jsonw_str(&sb, names[i], strlen(names[i]));
	}
	sb_appendf(&sb, "],\"count\":%zu}\n\n", n);
	sb_fini(&text);
	return detach(&sb);
}

struct outbuf *wire_sse_reset(int64_t missed)
{
	return outbuf_fmt("event: reset\ndata: {\"reason\":\"history truncated\",\"missed\":%" PRId64 "}\n\n",
			  missed > 0 ? missed : 0);
}

struct outbuf *wire_sse_retry(unsigned ms)
{
	return outbuf_fmt("retry: %u\n\n", ms);
}

struct outbuf *wire_sse_ping(void)
{
	return outbuf_new(": ping\n\n", 8);
}

/* JSON answers */

static void key(struct strbuf *sb, const char *k)
{
	sb_appendf(sb, "%s\"%s\":", sb->len > 1 ? "," : "", k);
}

static void str_field(struct strbuf *sb, const char *k, const char *v)
{
	key(sb, k);
	jsonw_str(sb, v, strlen(v));
}

static void int_field(struct strbuf *sb, const char *k, int64_t v)
{
	key(sb, k);
	sb_appendf(sb, "%" PRId64, v);
}

static char *close_obj(struct strbuf *sb)
{
	sb_puts(sb, "}");
	return sb_detach(sb, NULL);
}

char *wire_json_error(const char *why)
{
	struct strbuf sb = STRBUF_INIT;

	sb_puts(&sb, "{");
	str_field(&sb, "error", why);
	return close_obj(&sb);
}

char *wire_json_success(void)
{
	struct strbuf sb = STRBUF_INIT;

	sb_puts(&sb, "{\"success\":true");
	return close_obj(&sb);
}

char *wire_json_connected(const char *token, int64_t uid, const char *nick)
{
	struct strbuf sb = STRBUF_INIT;

	sb_puts(&sb, "{");
	str_field(&sb, "session_id", token);
	int_field(&sb, "user_id", uid);
	str_field(&sb, "nickname", nick);
	return close_obj(&sb);
}

char *wire_json_replied(bool ok, const char *text)
{
	struct strbuf sb = STRBUF_INIT;

	sb_appendf(&sb, "{\"success\":%s", ok ? "true" : "false");
	str_field(&sb, "message", text);
	return close_obj(&sb);
}

char *wire_json_posted(int64_t id, int64_t seq)
{
	struct strbuf sb = STRBUF_INIT;

	sb_puts(&sb, "{\"success\":true");
	int_field(&sb, "message_id", id);
	int_field(&sb, "seq", seq);
	return close_obj(&sb);
}

char *wire_json_rooms(const struct chat_room_info *rooms, size_t n,
		      const char *next)
{
	struct strbuf sb = STRBUF_INIT;

	sb_puts(&sb, "{\"rooms\":[");
	for (size_t i = 0; i < n; i++) {
		sb_puts(&sb, i ? ",{" : "{");
		sb_puts(&sb, "\"name\":");
		jsonw_str(&sb, rooms[i].name, strlen(rooms[i].name));
		sb_appendf(&sb, ",\"members\":%" PRId64 ",\"online\":%" PRId64
			   "}", rooms[i].members, rooms[i].online);
	}
	sb_puts(&sb, "],\"next\":");
	if (next)
		jsonw_str(&sb, next, strlen(next));
	else
		sb_puts(&sb, "null");
	return close_obj(&sb);
}

/* A real as jansson writes it: shortest exact form, always with a point
 * or an exponent. */
static void real_field(struct strbuf *sb, const char *k, double v)
{
	char buf[32];

	key(sb, k);
	snprintf(buf, sizeof(buf), "%.17g", v);
	sb_puts(sb, buf);
	if (!strpbrk(buf, ".eE"))
		sb_puts(sb, ".0");
}

char *wire_json_health(const struct wire_health *h)
{
	struct strbuf sb = STRBUF_INIT;

	sb_puts(&sb, "{");
	str_field(&sb, "status", h->draining ? "draining"
				 : h->ok   ? "healthy"
					   : "unhealthy");
	str_field(&sb, "db", h->ok ? "connected" : "disconnected");
	str_field(&sb, "instance_id", h->instance_id);
	int_field(&sb, "uptime_s", (int64_t)h->uptime_s);
	sb_appendf(&sb, ",\"connections\":{\"tcp\":%" PRIu64
		   ",\"http_sessions\":%" PRIu64 ",\"sse_streams\":%" PRIu64
		   ",\"total\":%" PRIu64 "}",
		   h->tcp, h->http_sessions, h->streams,
		   h->tcp + h->http_sessions + h->streams);
	int_field(&sb, "sessions", (int64_t)h->sessions);
	int_field(&sb, "streams", (int64_t)h->streams);
	int_field(&sb, "history_hits", (int64_t)h->history_hits);
	int_field(&sb, "history_misses", (int64_t)h->history_misses);
	real_field(&sb, "notify_queue_usage", h->notify_queue_usage);
	int_field(&sb, "http_connections", (int64_t)h->http_connections);
	int_field(&sb, "http_waiting", (int64_t)h->http_waiting);
	int_field(&sb, "room_list_reads", (int64_t)h->room_list_reads);
	sb_puts(&sb, ",\"db_queue\":{");
	sb_appendf(&sb, "\"queued\":%" PRIu64 ",\"queued_user\":%" PRIu64
		   ",\"limit\":%" PRIu64 ",\"refused\":%" PRIu64
		   ",\"dropped\":%" PRIu64 "}",
		   h->db_queued, h->db_queued_user, h->db_limit, h->db_refused,
		   h->db_dropped);
	return close_obj(&sb);
}
