/*
 * loadgen: an IRC client (irc.h), as much of RFC 2812 as the bench needs.
 * A line is [":" prefix " "] command params; the last param may start
 * with ":" and hold spaces. Only the replies named below matter; the rest
 * (welcome numerics, MOTD, other members' JOIN lines, NAMES, NOTICE) is
 * read and dropped.
 */
#include "irc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"

void irc_register(struct lg *lg, struct lg_conn *c)
{
	char buf[160];
	int n = snprintf(buf, sizeof(buf),
			 "NICK %s%d\r\nUSER lg%d 0 * :loadgen\r\n",
			 lg->irc_nick, c->idx, c->idx);

	lg_set_state(lg, c, LG_NICKING);
	conn_write(lg, c, buf, (size_t)n);
}

void irc_join(struct lg *lg, struct lg_conn *c)
{
	char buf[96];
	int n = snprintf(buf, sizeof(buf), "JOIN %s\r\n",
			 lg_room_of(lg, c)->irc);

	conn_write(lg, c, buf, (size_t)n);
}

void irc_say(struct lg *lg, struct lg_conn *c, const char *payload,
	     size_t len)
{
	char buf[192];
	int n = snprintf(buf, sizeof(buf), "PRIVMSG %s :%.*s\r\n",
			 lg_room_of(lg, c)->irc, (int)len, payload);

	conn_write(lg, c, buf, (size_t)n);
}

/* The next space-separated word of *p (moved past it), or NULL. */
static char *irc_word(char **p)
{
	char *w = *p, *sp;

	while (*w == ' ')
		w++;
	if (!*w)
		return NULL;
	sp = strchr(w, ' ');
	if (sp) {
		*sp = '\0';
		*p = sp + 1;
	} else {
		*p = w + strlen(w);
	}
	return w;
}

/* PRIVMSG <target> :<text> to a member. */
static void irc_privmsg(struct lg *lg, struct lg_conn *c, char *rest)
{
	struct lg_room *r = lg_room_of(lg, c);
	char *target = irc_word(&rest);
	uint64_t v[3];

	if (!target || *rest != ':')
		return;
	if (strcasecmp(target, r->irc)) {
		/* A channel it is not in (IRC names ignore case). */
		lg->k[LG_TCP].bogus++;
		lg_inst(lg, c)->bogus++;
		return;
	}
	if (!lg_parse_payload(rest + 1, v))
		return;		/* somebody else's chatter */
	lg_deliver(lg, c, v);
}

/* An error numeric: counted; during setup it fails the connection. */
static void irc_error(struct lg *lg, struct lg_conn *c, const char *line)
{
	lg->errors++;
	lg_show(lg, c, "server says", line);
	if (c->state == LG_NICKING || c->state == LG_CREATING ||
	    c->state == LG_JOINING)
		conn_close(lg, c, LG_FAILED, "IRC error reply");
	else if (c->state == LG_JOINED && lg_is_sender(lg, c) &&
		 lg->running) {
		c->refused++;	/* a message refused: send the next */
		lg->refused++;
	}
}

void irc_on_line(struct lg *lg, struct lg_conn *c, char *line, size_t len)
{
	struct lg_room *r = lg_room_of(lg, c);
	char whole[LG_RBUF_SIZE];
	char *p = line, *cmd, *me, *chan;
	int num;

	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (!strncmp(line, "PING ", 5)) {
		line[1] = 'O';	/* PING x -> PONG x */
		line[len] = '\n';
		conn_write(lg, c, line, len + 1);
		return;
	}
	snprintf(whole, sizeof(whole), "%s", line);
	if (*p == ':' && !irc_word(&p))
		return;		/* the prefix alone */
	cmd = irc_word(&p);
	if (!cmd)
		return;
	if (!strcmp(cmd, "PRIVMSG")) {
		if (c->state == LG_JOINED)
			irc_privmsg(lg, c, p);
		return;
	}
	if (strlen(cmd) != 3 || strspn(cmd, "0123456789") != 3)
		return;		/* JOIN, MODE, NOTICE, ERROR ... */
	num = atoi(cmd);
	/* 422: no MOTD, part of a normal welcome. */
	if (num >= 400 && num < 600 && num != 422) {
		irc_error(lg, c, whole);
		return;
	}
	if (num == 1 && c->state == LG_NICKING) {
		lg_set_state(lg, c, LG_READY);
		return;
	}
	if (num != 366 ||
	    (c->state != LG_CREATING && c->state != LG_JOINING))
		return;
	/* 366 <me> <channel> :End of NAMES list */
	me = irc_word(&p);
	chan = me ? irc_word(&p) : NULL;
	if (!chan || strcasecmp(chan, r->irc))
		return;
	lg_set_state(lg, c, LG_JOINED);
	if ((uint32_t)c->idx == r->creator && !r->ready) {
		r->ready = true;
		lg->rooms_ready++;
	}
}
