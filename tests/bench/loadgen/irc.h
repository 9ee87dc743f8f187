/*
 * loadgen's IRC clients (--proto irc), for comparing Baby Discord with
 * IRC servers under the same load: registration (NICK, USER, then 001),
 * JOIN (the end of NAMES, 366, for the channel makes it a member),
 * PRIVMSG carrying the same payload as a Baby Discord line, and PONG for
 * the server's PING. The socket is conn.c's.
 */
#ifndef BD_BENCH_LG_IRC_H
#define BD_BENCH_LG_IRC_H

#include <stddef.h>

#include "lg.h"

/* c just connected: NICK <prefix><index> and USER; waits for 001. */
void irc_register(struct lg *lg, struct lg_conn *c);

/* JOIN #<room> (the caller set c's state: creating or joining). */
void irc_join(struct lg *lg, struct lg_conn *c);

/* PRIVMSG #<room> :<payload> from sender c. */
void irc_say(struct lg *lg, struct lg_conn *c, const char *payload,
	     size_t len);

/*
 * One line from the server (NUL-ended, len bytes, "\r" allowed at the
 * end): advances c's setup, answers PING, delivers PRIVMSG payloads of
 * c's channel, counts error numerics (400-599) and fails the setup on
 * one. Can close c.
 */
void irc_on_line(struct lg *lg, struct lg_conn *c, char *line, size_t len);

#endif
