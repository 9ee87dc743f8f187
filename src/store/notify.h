/* Decoding of room-channel NOTIFY payloads (written by db/ functions). */
#ifndef BD_STORE_NOTIFY_H
#define BD_STORE_NOTIFY_H

#include "core/chat.h"

/*
 * Decodes payload and hands each event it carries to fn, in order: one
 * for a join, leave, rename, history reload or single message ("k" j, l,
 * n, h, m), and one per message for a batch of a room's messages ("k":
 * "b", {"r": room, "t": ms, "m": [[seq, id, nick, content], ...]}, in seq
 * order, as bd_post() writes them). The strings of ev are valid during
 * the call. Returns the number of events, or -1 when the payload is
 * malformed anywhere (then fn was not called at all).
 */
typedef void notify_fn(void *arg, struct chat_event *ev);
int notify_decode(const char *payload, notify_fn *fn, void *arg);

#endif
