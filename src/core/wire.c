/* See wire.h: the line protocol's and the event streams' byte formats. */
#include "core/wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/chat.h"

#include "util/buckets.h"
#include "util/hist.h"
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

/* "latency_us":{"<stage>":{"count":N,"p50":..,"p90":..,"p99":..,"max":..},...} */
static void json_latency(struct strbuf *sb, const struct hist *lat)
{
	sb_puts(sb, ",\"latency_us\":{");
	for (size_t i = 0; i < CHAT_LAT_N; i++) {
		const struct hist *h = &lat[i];

		sb_appendf(sb, "%s\"%s\":{\"count\":%" PRIu64 ",\"p50\":%" PRIu64
			   ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
			   ",\"max\":%" PRIu64 "}",
			   i ? "," : "", chat_lat_name(i), h->count,
			   hist_quantile(h, 0.5), hist_quantile(h, 0.9),
			   hist_quantile(h, 0.99), h->max);
	}
	sb_puts(sb, "}");
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
	if (h->lat)
		json_latency(&sb, h->lat);
	return close_obj(&sb);
}

/* Metrics */

static double hit_rate(const struct chat_stats *cs)
{
	uint64_t all = cs->history_hits + cs->history_misses;

	return all ? 100.0 * (double)cs->history_hits / (double)all : 100.0;
}

static void json_buckets(struct strbuf *sb, const struct buckets *b)
{
	sb_puts(sb, "{\"buckets\":{");
	for (size_t i = 0; i < b->n; i++)
		sb_appendf(sb, "%s\"%g\":%" PRIu64, i ? "," : "",
			   b->bounds[i], buckets_cumulative(b, i));
	sb_appendf(sb, "%s\"+Inf\":%" PRIu64 "},\"count\":%" PRIu64
		   ",\"sum\":%.17g}",
		   b->n ? "," : "", b->count, b->count, b->sum);
}

char *wire_json_metrics(const struct wire_metrics *m)
{
	const struct chat_stats *cs = m->chat;
	struct strbuf sb = STRBUF_INIT;

	sb_puts(&sb, "{");
	str_field(&sb, "instance_id", m->instance_id);
	int_field(&sb, "uptime_s", (int64_t)m->uptime_s);
	real_field(&sb, "history_buffer_hit_rate", hit_rate(cs));
	sb_appendf(&sb, ",\"active_connections\":{\"total\":%" PRIu64
		   ",\"tcp\":%" PRIu64 ",\"http_sessions\":%" PRIu64
		   ",\"sse_streams\":%" PRIu64 "}",
		   m->tcp + m->http_sessions + m->sse_streams, m->tcp,
		   m->http_sessions, m->sse_streams);
	int_field(&sb, "rooms_in_memory", (int64_t)m->rooms_in_memory);
	int_field(&sb, "db_pool_available", m->db_available ? 1 : 0);
	int_field(&sb, "db_pool_waiting", (int64_t)m->db_waiting);
	int_field(&sb, "messages_received", (int64_t)cs->messages_received);
	int_field(&sb, "messages_committed", (int64_t)cs->messages_posted);
	sb_appendf(&sb, ",\"deliveries\":{\"lines\":%" PRIu64
		   ",\"events\":%" PRIu64 ",\"lines_queued\":%" PRIu64
		   ",\"events_queued\":%" PRIu64 "}",
		   m->lines_out, m->events_out, cs->messages_delivered,
		   cs->events_delivered);
	sb_puts(&sb, ",\"rejected\":{");
	for (int i = 0; i < BD_NERRS; i++)
		sb_appendf(&sb, "%s\"%s\":%" PRIu64, i ? "," : "",
			   bd_errname(-i - 1), cs->rejected[i]);
	sb_puts(&sb, "},\"commands\":{");
	for (size_t i = 0; i < CHAT_NCOMMANDS; i++)
		sb_appendf(&sb, "%s\"%s\":%" PRIu64, i ? "," : "",
			   chat_command_name(i), cs->commands[i]);
	sb_puts(&sb, "}");
	int_field(&sb, "slow_consumers", (int64_t)cs->slow_consumers);
	int_field(&sb, "connections_refused", (int64_t)m->conns_refused);
	int_field(&sb, "bytes_in", (int64_t)m->bytes_in);
	int_field(&sb, "bytes_out", (int64_t)m->bytes_out);
	int_field(&sb, "db_refused", (int64_t)m->db_refused);
	int_field(&sb, "db_errors", (int64_t)m->db_errors);
	int_field(&sb, "db_reconnects", (int64_t)m->db_reconnects);
	int_field(&sb, "db_connections_lost", (int64_t)m->db_lost);
	int_field(&sb, "notifications_received", (int64_t)m->notifications);
	real_field(&sb, "notify_queue_usage", m->notify_queue_usage);
	sb_puts(&sb, ",\"batch_sizes\":{\"messages\":");
	json_buckets(&sb, m->post_batches);
	sb_puts(&sb, ",\"control\":");
	json_buckets(&sb, m->ctl_batches);
	sb_puts(&sb, "}");
	json_latency(&sb, cs->lat);
	return close_obj(&sb);
}

/* One metric's # HELP and # TYPE lines. */
static void prom_head(struct strbuf *sb, const char *name, const char *type,
		      const char *help)
{
	sb_appendf(sb, "# HELP babydiscord_%s %s\n# TYPE babydiscord_%s %s\n",
		   name, help, name, type);
}

/* A label value: \, " and newlines escaped (instance ids are free text). */
static void prom_label(struct strbuf *sb, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sb_appendf(sb, "\\%c", *v);
		else if (*v == '\n')
			sb_puts(sb, "\\n");
		else
			sb_append(sb, v, 1);
	}
}

/* name{instance="...",extra} value */
static void prom_sample(struct strbuf *sb, const char *inst,
			const char *name, const char *extra, double v)
{
	sb_appendf(sb, "babydiscord_%s{instance=\"", name);
	prom_label(sb, inst);
	sb_appendf(sb, "\"%s%s} %.17g\n", extra ? "," : "", extra ? extra : "",
		   v);
}

static void prom_one(struct strbuf *sb, const char *inst, const char *name,
		     const char *type, const char *help, double v)
{
	prom_head(sb, name, type, help);
	prom_sample(sb, inst, name, NULL, v);
}

static void prom_buckets(struct strbuf *sb, const char *inst,
			 const char *name, const char *label,
			 const struct buckets *b)
{
	char extra[96], sample[64];

	for (size_t i = 0; i <= b->n; i++) {
		if (i < b->n)
			snprintf(extra, sizeof(extra), "%s,le=\"%g\"", label,
				 b->bounds[i]);
		else
			snprintf(extra, sizeof(extra), "%s,le=\"+Inf\"", label);
		snprintf(sample, sizeof(sample), "%s_bucket", name);
		prom_sample(sb, inst, sample, extra,
			    (double)buckets_cumulative(b, i));
	}
	snprintf(sample, sizeof(sample), "%s_sum", name);
	prom_sample(sb, inst, sample, label, b->sum);
	snprintf(sample, sizeof(sample), "%s_count", name);
	prom_sample(sb, inst, sample, label, (double)b->count);
}

/* A stage's histogram in seconds; a bucket's count includes the values
 * in the fine bucket holding its bound (within 3% above it). */
static void prom_latency(struct strbuf *sb, const char *inst,
			 const char *stage, const struct hist *h)
{
	static const double bounds[] = { 0.0001, 0.00025, 0.0005, 0.001,
					 0.0025, 0.005,	  0.01,	  0.025,
					 0.05,	 0.1,	  0.25,	  0.5,
					 1,	 2.5,	  5,	  10 };
	char extra[96];

	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		snprintf(extra, sizeof(extra), "stage=\"%s\",le=\"%g\"",
			 stage, bounds[i]);
		prom_sample(sb, inst, "message_latency_seconds_bucket", extra,
			    (double)hist_count_le(h, (uint64_t)(bounds[i] *
								1e6)));
	}
	snprintf(extra, sizeof(extra), "stage=\"%s\",le=\"+Inf\"", stage);
	prom_sample(sb, inst, "message_latency_seconds_bucket", extra,
		    (double)h->count);
	snprintf(extra, sizeof(extra), "stage=\"%s\"", stage);
	prom_sample(sb, inst, "message_latency_seconds_sum", extra,
		    (double)h->sum / 1e6);
	prom_sample(sb, inst, "message_latency_seconds_count", extra,
		    (double)h->count);
}

char *wire_prom_metrics(const struct wire_metrics *m)
{
	const struct chat_stats *cs = m->chat;
	const char *in = m->instance_id;
	struct strbuf sb = STRBUF_INIT;
	char label[64];

	prom_one(&sb, in, "uptime_seconds", "gauge",
		 "Seconds since the instance started.", (double)m->uptime_s);
	prom_one(&sb, in, "history_buffer_hit_ratio", "gauge",
		 "Joins served from a room's in-memory ring, of all joins (1 when none).",
		 hit_rate(cs) / 100.0);
	prom_head(&sb, "active_connections", "gauge",
		  "Open client connections by transport.");
	prom_sample(&sb, in, "active_connections", "transport=\"tcp\"",
		    (double)m->tcp);
	prom_sample(&sb, in, "active_connections",
		    "transport=\"http_session\"", (double)m->http_sessions);
	prom_sample(&sb, in, "active_connections",
		    "transport=\"sse_stream\"", (double)m->sse_streams);
	prom_one(&sb, in, "rooms_in_memory", "gauge",
		 "Rooms with members or streams on this instance.",
		 (double)m->rooms_in_memory);
	prom_one(&sb, in, "db_pool_available", "gauge",
		 "Query connections up and idle.", m->db_available ? 1 : 0);
	prom_one(&sb, in, "db_pool_waiting", "gauge",
		 "Statements queued or running on the query connection.",
		 (double)m->db_waiting);
	prom_one(&sb, in, "messages_received_total", "counter",
		 "Messages accepted from clients and handed to the database.",
		 (double)cs->messages_received);
	prom_one(&sb, in, "messages_committed_total", "counter",
		 "Messages this instance committed.",
		 (double)cs->messages_posted);
	prom_head(&sb, "deliveries_total", "counter",
		  "Whole lines written to TCP clients, event frames to streams.");
	prom_sample(&sb, in, "deliveries_total", "kind=\"line\"",
		    (double)m->lines_out);
	prom_sample(&sb, in, "deliveries_total", "kind=\"event\"",
		    (double)m->events_out);
	prom_head(&sb, "deliveries_queued_total", "counter",
		  "Lines queued to line and HTTP sessions, events to streams.");
	prom_sample(&sb, in, "deliveries_queued_total", "kind=\"line\"",
		    (double)cs->messages_delivered);
	prom_sample(&sb, in, "deliveries_queued_total", "kind=\"event\"",
		    (double)cs->events_delivered);
	prom_head(&sb, "rejected_total", "counter",
		  "Requests and messages refused, by reason.");
	for (int i = 0; i < BD_NERRS; i++) {
		snprintf(label, sizeof(label), "reason=\"%s\"",
			 bd_errname(-i - 1));
		prom_sample(&sb, in, "rejected_total", label,
			    (double)cs->rejected[i]);
	}
	prom_head(&sb, "commands_total", "counter",
		  "Line-protocol commands run, by name.");
	for (size_t i = 0; i < CHAT_NCOMMANDS; i++) {
		snprintf(label, sizeof(label), "command=\"%s\"",
			 chat_command_name(i));
		prom_sample(&sb, in, "commands_total", label,
			    (double)cs->commands[i]);
	}
	prom_one(&sb, in, "slow_consumers_total", "counter",
		 "Connections closed because their output queue was full.",
		 (double)cs->slow_consumers);
	prom_one(&sb, in, "connections_refused_total", "counter",
		 "Connections refused at once: over max_connections or max_connections_per_ip.",
		 (double)m->conns_refused);
	prom_one(&sb, in, "received_bytes_total", "counter",
		 "Bytes read from client sockets.", (double)m->bytes_in);
	prom_one(&sb, in, "sent_bytes_total", "counter",
		 "Bytes written to client sockets.", (double)m->bytes_out);
	prom_one(&sb, in, "db_refused_total", "counter",
		 "User requests refused because too many waited for the database.",
		 (double)m->db_refused);
	prom_one(&sb, in, "db_errors_total", "counter",
		 "Statements or batched operations that failed.",
		 (double)m->db_errors);
	prom_one(&sb, in, "db_reconnects_total", "counter",
		 "Database connections made after the first ones.",
		 (double)m->db_reconnects);
	prom_one(&sb, in, "db_connections_lost_total", "counter",
		 "Database connections lost while up.", (double)m->db_lost);
	prom_one(&sb, in, "notifications_received_total", "counter",
		 "NOTIFYs received on the LISTEN connection.",
		 (double)m->notifications);
	prom_one(&sb, in, "notify_queue_usage_ratio", "gauge",
		 "PostgreSQL's pg_notification_queue_usage() at the last heartbeat.",
		 m->notify_queue_usage);
	prom_head(&sb, "message_latency_seconds", "histogram",
		  "Where one message's time goes, by stage (see the README).");
	for (size_t i = 0; i < CHAT_LAT_N; i++)
		prom_latency(&sb, in, chat_lat_name(i), &cs->lat[i]);
	prom_head(&sb, "batch_size", "histogram",
		  "Messages per bd_post() and operations per bd_ctl() statement.");
	prom_buckets(&sb, in, "batch_size", "kind=\"messages\"",
		     m->post_batches);
	prom_buckets(&sb, in, "batch_size", "kind=\"control\"",
		     m->ctl_batches);
	return sb_detach(&sb, NULL);
}
