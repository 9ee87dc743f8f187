/*
 * What chat.c, the only module above api_session.c, needs of it besides
 * its public contract (api_session.h).
 */
#ifndef BD_CORE_API_SESSION_INT_H
#define BD_CORE_API_SESSION_INT_H

struct chat;

/* Frees the copies (and their sessions). */
void api_sessions_free(struct chat *c);

#endif
