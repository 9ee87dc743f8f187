/*
 * The HTTP API's requests as bytes (core/wire.h writes its answers): the
 * JSON bodies and the parameters of its GET requests, decoded and checked
 * into plain structs. Pure: nothing here touches a connection, a session
 * or the database, so it is unit tested and fuzzed on its own; what a
 * decoder refuses it says why in one line (the API's {"error": why}).
 */
#ifndef BD_NET_APIREQ_H
#define BD_NET_APIREQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/api_session.h"
#include "core/names.h"
#include "util/http1.h"

/* The POST endpoints that take a JSON body. */
enum apireq_kind {
	APIREQ_CONNECT,	/* {nickname} */
	APIREQ_COMMAND,	/* {session_id, command} */
	APIREQ_MESSAGE,	/* {session_id, room, content} */
	APIREQ_DISCONNECT,	/* {session_id} */
};

#define APIREQ_ROOM_BUF 64	/* room as asked: a longer one is "" (no
				 * such room, not cut into another) */

struct apireq {
	/* A session id that cannot be one (not API_TOKEN_LEN bytes) is ""
	 * here: unknown, never cut into a valid-looking one. */
	char session_id[API_TOKEN_LEN + 1];
	char nick[NICK_MAX + 1];	/* CONNECT: a valid nickname */
	char room[APIREQ_ROOM_BUF];	/* MESSAGE */
	char *text;			/* COMMAND: the line, starting with
					 * '/'; MESSAGE: the content (may hold
					 * anything but NUL; checked later) */
	size_t text_len;
};

/* Decodes body[0..len) for kind into r. 0, or the HTTP status to answer
 * (400) with *why. r needs apireq_fini() either way. max_line bounds a
 * command's length. */
int apireq_decode(enum apireq_kind kind, const char *body, size_t len,
		    size_t max_line, struct apireq *r, const char **why);
void apireq_fini(struct apireq *r);

/* GET /api/messages/<room>?session_id=...[&last_event_id=N] with an
 * optional Last-Event-ID header (it wins over the parameter). */
struct apireq_stream {
	char session_id[API_TOKEN_LEN + 1];
	char room[ROOM_NAME_MAX + 1];
	int64_t last_seq;		/* resume after it; -1: not asked */
};

/* room is the path after "/api/messages/". 0, or 404 with *why (an
 * unknown session or a room that cannot exist). A resume point that is
 * not a decimal number (spaces around allowed) is ignored. */
int apireq_stream_parse(struct http1_str room, struct http1_str query,
		    struct http1_str last_event_id, struct apireq_stream *r,
		    const char **why);

/* GET /api/rooms[?limit=N&after=name]: limit from 1 to
 * CHAT_ROOMS_LIMIT_MAX (default CHAT_ROOMS_PAGE), after a room name (""
 * when absent). 0, or 400 with *why. */
int apireq_rooms(struct http1_str query, size_t *limit,
		   char after[APIREQ_ROOM_BUF], const char **why);

#endif
