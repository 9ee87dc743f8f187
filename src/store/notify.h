/* Decoding of room-channel NOTIFY payloads (written by db/ functions). */
#ifndef BD_STORE_NOTIFY_H
#define BD_STORE_NOTIFY_H

#include <jansson.h>

#include "core/chat.h"

/* Fills ev from payload; strings point into *root, which the caller must
 * json_decref(). Returns 0, or -1 (root NULL) when malformed. */
int notify_decode(const char *payload, struct chat_event *ev, json_t **root);

#endif
