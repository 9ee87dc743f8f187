/*
 * libFuzzer harness: core/apireq.c, the HTTP API's request decoders.
 * The first byte picks the decoder (the four JSON bodies, the stream's
 * path/query/Last-Event-ID, the room list's query); the rest is its
 * input. Whatever it accepts holds only what the API promises: a valid
 * nickname, a command starting with '/' within its bound, a session id
 * that is "" or a whole one, rooms that are valid names, limits in range.
 */
#include <stdlib.h>
#include <string.h>

#include "core/chat.h"
#include "net/apireq.h"

#define MAX_LINE 64

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_body(enum apireq_kind kind, const char *in, size_t n)
{
	struct apireq r;
	const char *why = NULL;
	size_t sid = 0;
	int st = apireq_decode(kind, in, n, MAX_LINE, &r, &why);

	if (st) {
		if (st != 400 || !why || !*why)
			abort();
		apireq_fini(&r);
		return;
	}
	sid = strlen(r.session_id);
	if (sid && sid != API_TOKEN_LEN)
		abort();
	switch (kind) {
	case APIREQ_CONNECT:
		if (!name_is_valid_nick(r.nick))
			abort();
		break;
	case APIREQ_COMMAND:
		if (!r.text || r.text[0] != '/' || r.text_len > MAX_LINE)
			abort();
		break;
	case APIREQ_MESSAGE:
		if (!r.text && r.text_len)
			abort();
		if (strlen(r.room) >= APIREQ_ROOM_BUF)
			abort();
		break;
	case APIREQ_DISCONNECT:
		break;
	}
	apireq_fini(&r);
}

/* The input as three slices cut at the first two NULs: room path, query,
 * Last-Event-ID. */
static void check_stream(const char *in, size_t n)
{
	struct http1_str part[3] = { { in, 0 }, { "", 0 }, { "", 0 } };
	struct apireq_stream sr;
	const char *why = NULL;
	size_t k = 0, start = 0;

	for (size_t i = 0; i <= n && k < 3; i++)
		if (i == n || (in[i] == '\0' && k < 2)) {
			part[k++] = (struct http1_str){ in + start, i - start };
			start = i + 1;
		}
	if (apireq_stream_parse(part[0], part[1], part[2], &sr, &why)) {
		if (!why)
			abort();
		return;
	}
	if (!name_is_valid_room(sr.room) ||
	    !chat_api_token_ok(sr.session_id) || sr.last_seq < -1)
		abort();
}

static void check_rooms(const char *in, size_t n)
{
	char after[APIREQ_ROOM_BUF];
	size_t limit = 0;
	const char *why = NULL;

	if (apireq_rooms((struct http1_str){ in, n }, &limit, after, &why)) {
		if (!why)
			abort();
		return;
	}
	if (limit < 1 || limit > CHAT_ROOMS_LIMIT_MAX ||
	    (after[0] && !name_is_valid_room(after)))
		abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *in;
	unsigned pick;

	if (!size)
		return 0;
	pick = data[0] % 6;
	size--;
	in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data + 1, size);
	in[size] = '\0';
	if (pick < 4)
		check_body((enum apireq_kind)pick, in, size);
	else if (pick == 4)
		check_stream(in, size);
	else
		check_rooms(in, size);
	free(in);
	return 0;
}
