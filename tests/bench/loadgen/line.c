/*
 * loadgen: the TCP line protocol as a client (line.h). It matches the
 * server's texts exactly ("[system] You joined ROOM (", "[ROOM] nick: "),
 * so a change there shows up here as failed setups or lost messages.
 */
#include "line.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "sender.h"

void line_command(struct lg *lg, struct lg_conn *c, const char *cmd,
		  const char *arg)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "%s %s\n", cmd, arg);

	conn_write(lg, c, line, (size_t)n);
}

void line_nick(struct lg *lg, struct lg_conn *c)
{
	char nick[64];

	snprintf(nick, sizeof(nick), "%s%d", lg->o.nick_prefix, c->idx);
	lg_set_state(lg, c, LG_NICKING);
	line_command(lg, c, "/nick", nick);
}

static void line_on_room_line(struct lg *lg, struct lg_conn *c,
			      const char *line)
{
	const char *sep = strstr(line + lg_room_of(lg, c)->prefix_len, ": ");
	uint64_t v[3];

	if (c->history > 0) {
		c->history--;
		/* Back after a loss: the history fills its gap. */
		if (c->reconnects && sep && lg_parse_payload(sep + 2, v)) {
			lg_deliver_history(lg, c, v);
			return;
		}
		lg->k[LG_TCP].history_skipped++;
		lg_inst(lg, c)->history_skipped++;
		return;
	}
	if (!sep || !lg_parse_payload(sep + 2, v))
		return;		/* somebody else's chatter */
	lg_deliver(lg, c, v);
}

static void line_on_error(struct lg *lg, struct lg_conn *c, const char *line)
{
	struct lg_room *r = lg_room_of(lg, c);

	if (c->state == LG_CREATING && !strcmp(line, r->exists)) {
		/* A previous run left the room: join it instead. */
		lg_set_state(lg, c, LG_JOINING);
		line_command(lg, c, "/join", r->name);
		return;
	}
	if (c->back && c->state == LG_NICKING && strstr(line, " is taken")) {
		/* Its old connection still holds the name: again soon. */
		conn_retry_later(lg, c);
		return;
	}
	lg->errors++;
	lg_show(lg, c, "server says", line);
	switch (c->state) {
	case LG_NICKING:
	case LG_CREATING:
	case LG_JOINING:
		conn_close(lg, c, LG_FAILED, "command refused");
		return;
	case LG_JOINED:
		if ((uint32_t)c->idx < lg->o.senders && lg->running) {
			/* The server refused one of our messages. */
			c->refused++;
			lg->refused++;
			sender_pump(lg, c);
		}
		return;
	default:
		return;
	}
}

void line_on_line(struct lg *lg, struct lg_conn *c, char *line, size_t len)
{
	struct lg_room *r = lg_room_of(lg, c);

	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (!strncmp(line, "[system] error:", 15)) {
		line_on_error(lg, c, line);
		return;
	}
	if (!strcmp(line, "[system] server restarting, please reconnect")) {
		lg->shutdown_seen = true;
		return;
	}
	switch (c->state) {
	case LG_WELCOME:
		if (++c->welcome < 3)
			return;
		if (lg->o.nick_prefix)
			line_nick(lg, c);
		else
			lg_set_state(lg, c, LG_READY);
		return;
	case LG_NICKING:
		if (c->back && !strncmp(line, r->prefix, r->prefix_len)) {
			/* Its rooms came back with the nickname. */
			line_on_room_line(lg, c, line);
		} else if (!strncmp(line, "[system] You are now ", 21)) {
			lg_set_state(lg, c, c->back ? LG_JOINING : LG_READY);
			if (c->back)
				line_command(lg, c, "/join", r->name);
		}
		return;
	case LG_CREATING:
	case LG_JOINING:
		if (c->back && !strncmp(line, r->prefix, r->prefix_len)) {
			line_on_room_line(lg, c, line);
			return;
		}
		if (strncmp(line, r->joined, r->joined_len))
			return;
		c->history = strtol(line + r->joined_len, NULL, 10);
		if (c->history < 0)
			c->history = 0;
		lg_set_state(lg, c, LG_JOINED);
		if ((uint32_t)c->idx == r->creator && !r->ready) {
			r->ready = true;
			lg->rooms_ready++;
		}
		return;
	case LG_JOINED:
		if (!strncmp(line, r->prefix, r->prefix_len)) {
			line_on_room_line(lg, c, line);
		} else if (line[0] == '[' && strncmp(line, "[system] ", 9)) {
			/* Another room's line: not a member there. */
			lg->k[LG_TCP].bogus++;
			lg_inst(lg, c)->bogus++;
			lg_show(lg, c, "line of another room", line);
		}
		return;
	default:
		return;
	}
}
