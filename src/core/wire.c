/* See wire.h: the line protocol's and the event streams' byte formats. */
#include "core/wire.h"

#include <inttypes.h>
#include <string.h>

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
