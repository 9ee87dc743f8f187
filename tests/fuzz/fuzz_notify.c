/*
 * libFuzzer harness: store/notify.c's NOTIFY payload decoder. Either it
 * refuses the payload, or every string it hands the core is there and
 * the message fields are filled.
 */
#include <stdlib.h>
#include <string.h>

#include "store/notify.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *payload = malloc(size + 1);
	struct chat_event ev;
	json_t *root = NULL;

	if (!payload)
		return 0;
	memcpy(payload, data, size);
	payload[size] = '\0';
	if (!notify_decode(payload, &ev, &root)) {
		if (!ev.nick)
			abort();
		if (ev.kind == CHAT_EV_MESSAGE &&
		    (!ev.content || strlen(ev.content) != ev.content_len))
			abort();
		if (ev.kind == CHAT_EV_NICK && !ev.new_nick)
			abort();
		json_decref(root);
	}
	free(payload);
	return 0;
}
