/* Decoding the HTTP API's requests (see apireq.h). */
#include "net/apireq.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/chat.h"
#include "util/xalloc.h"

static const char *get_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Copies s into dst (cap bytes) when it fits whole, else "". */
static void copy_whole(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n >= cap)
		n = 0;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static void keep_text(struct apireq *r, json_t *v)
{
	r->text_len = json_string_length(v);
	r->text = xmemdup(json_string_value(v), r->text_len);
}

static void keep_sid(struct apireq *r, const char *sid)
{
	if (strlen(sid) == API_TOKEN_LEN)
		memcpy(r->session_id, sid, API_TOKEN_LEN + 1);
}

static int decode(enum apireq_kind kind, json_t *o, size_t max_line,
		  struct apireq *r, const char **why)
{
	const char *sid = get_str(o, "session_id");
	json_t *v;

	switch (kind) {
	case APIREQ_CONNECT: {
		const char *nick = get_str(o, "nickname");

		if (!nick) {
			*why = "missing string field: nickname";
			return 400;
		}
		if (!name_is_valid_nick(nick)) {
			*why = "invalid nickname (1-32 letters, digits, _ or -)";
			return 400;
		}
		memcpy(r->nick, nick, strlen(nick) + 1);
		return 0;
	}
	case APIREQ_COMMAND:
		v = json_object_get(o, "command");
		if (!sid || !json_is_string(v)) {
			*why = "missing string fields: session_id, command";
			return 400;
		}
		if (json_string_value(v)[0] != '/') {
			*why = "a command starts with /; send messages to /api/message";
			return 400;
		}
		if (json_string_length(v) > max_line) {
			*why = "command too long";
			return 400;
		}
		keep_text(r, v);
		keep_sid(r, sid);
		return 0;
	case APIREQ_MESSAGE: {
		const char *room = get_str(o, "room");

		v = json_object_get(o, "content");
		if (!sid || !room || !json_is_string(v)) {
			*why = "missing string fields: session_id, room, content";
			return 400;
		}
		copy_whole(r->room, sizeof(r->room), room);
		keep_text(r, v);
		keep_sid(r, sid);
		return 0;
	}
	case APIREQ_DISCONNECT:
		if (!sid) {
			*why = "missing string field: session_id";
			return 400;
		}
		keep_sid(r, sid);
		return 0;
	}
	*why = "unknown request";
	return 400;
}

int apireq_decode(enum apireq_kind kind, const char *body, size_t len,
		    size_t max_line, struct apireq *r, const char **why)
{
	json_error_t jerr;
	json_t *o;
	int status;

	memset(r, 0, sizeof(*r));
	o = json_loadb(body, len, 0, &jerr);
	if (!json_is_object(o)) {
		*why = o ? "expected a JSON object" : "malformed JSON";
		json_decref(o);
		return 400;
	}
	status = decode(kind, o, max_line, r, why);
	json_decref(o);
	return status;
}

void apireq_fini(struct apireq *r)
{
	free(r->text);
	r->text = NULL;
}

/* A sequence number: digits with spaces around, else -1. */
static int64_t parse_seq(const char *s)
{
	char *end;
	long long v;

	while (*s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoll(s, &end, 10);
	while (*end == ' ')
		end++;
	return *end || v < 0 ? -1 : v;
}

int apireq_stream_parse(struct http1_str room, struct http1_str query,
		    struct http1_str last_event_id, struct apireq_stream *r,
		    const char **why)
{
	char lei[32];

	memset(r, 0, sizeof(*r));
	r->last_seq = -1;
	if (http1_query_param(query, "session_id", r->session_id,
			      sizeof(r->session_id)) < 0 ||
	    !chat_api_token_ok(r->session_id)) {
		*why = "unknown session";
		return 404;
	}
	if (room.len >= sizeof(r->room)) {
		*why = "no such room";
		return 404;
	}
	memcpy(r->room, room.p, room.len);
	r->room[room.len] = '\0';
	if (!name_is_valid_room(r->room)) {
		*why = "no such room";
		return 404;
	}
	if (last_event_id.len && last_event_id.len < sizeof(lei)) {
		memcpy(lei, last_event_id.p, last_event_id.len);
		lei[last_event_id.len] = '\0';
		r->last_seq = parse_seq(lei);
	} else if (http1_query_param(query, "last_event_id", lei,
				     sizeof(lei)) >= 0) {
		r->last_seq = parse_seq(lei);
	}
	return 0;
}

int apireq_rooms(struct http1_str query, size_t *limit,
		   char after[APIREQ_ROOM_BUF], const char **why)
{
	char buf[64];
	int n;

	after[0] = '\0';
	*limit = CHAT_ROOMS_PAGE;
	n = http1_query_param(query, "limit", buf, sizeof(buf));
	if (n >= 0) {
		char *end;
		long v = strtol(buf, &end, 10);

		if (!n || *end || buf[0] < '0' || buf[0] > '9' || v < 1 ||
		    v > CHAT_ROOMS_LIMIT_MAX) {
			*why = "limit must be 1 to 500";
			return 400;
		}
		*limit = (size_t)v;
	}
	if (http1_query_param(query, "after", buf, sizeof(buf)) >= 0) {
		if (!name_is_valid_room(buf)) {
			*why = "after must be a room name";
			return 400;
		}
		memcpy(after, buf, strlen(buf) + 1);
	}
	return 0;
}
