/*
 * libFuzzer harness: store/notify.c's NOTIFY payload decoder. Either it
 * refuses the payload and hands out nothing, or it hands out as many
 * events as it says, each with every string the core reads there and the
 * message fields filled; a batch's messages are all of its room.
 */
#include <stdlib.h>
#include <string.h>

#include "store/notify.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

struct seen {
	int n;
	int64_t room;
};

static void on_event(void *arg, struct chat_event *ev)
{
	struct seen *s = arg;

	if (!ev->nick)
		abort();
	if (ev->kind == CHAT_EV_MESSAGE &&
	    (!ev->content || strlen(ev->content) != ev->content_len))
		abort();
	if (ev->kind == CHAT_EV_NICK && !ev->new_nick)
		abort();
	if (s->n++ && ev->room_id != s->room)
		abort();
	s->room = ev->room_id;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *payload = malloc(size + 1);
	struct seen s = { 0 };
	int n;

	if (!payload)
		return 0;
	memcpy(payload, data, size);
	payload[size] = '\0';
	n = notify_decode(payload, on_event, &s);
	if (n < 0 ? s.n != 0 : n != s.n)
		abort();
	free(payload);
	return 0;
}
