/*
 * loadgen's TCP line clients: the server's lines during setup (welcome,
 * /nick, /create, /join) and during the run (room lines carrying payloads,
 * errors). The socket is conn.c's; checking a payload is lg_deliver()'s.
 */
#ifndef BD_BENCH_LG_LINE_H
#define BD_BENCH_LG_LINE_H

#include <stddef.h>

#include "lg.h"

/* Sends "cmd arg\n" on c (conn_write()). */
void line_command(struct lg *lg, struct lg_conn *c, const char *cmd,
		  const char *arg);

/* Sends "/nick <--nick-prefix><index>" on c; c waits for the answer. */
void line_nick(struct lg *lg, struct lg_conn *c);

/*
 * One line from the server to c (NUL-ended, len bytes, "\r" allowed at
 * the end, which it strips): advances c's setup, delivers payloads of
 * c's room, counts errors and lines of other rooms. Can close c.
 */
void line_on_line(struct lg *lg, struct lg_conn *c, char *line, size_t len);

#endif
