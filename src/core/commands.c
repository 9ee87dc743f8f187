/*
 * Slash commands: a const table (name, arity, preconditions, usage, help)
 * and one dispatcher that enforces it, so handlers only do their job.
 * Handlers that need the database start a store operation and mark the
 * session busy; chat.c finishes them when the outcome arrives.
 */
#include "core/chat_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define CMD_MAX_ARGS 8

typedef int cmd_fn(struct chat *c, struct session *s, int argc, char **argv);

enum { CMD_IN_ROOM = 1 << 0 };

struct cmd_def {
	const char *name;
	cmd_fn *fn;
	int min_args, max_args;	/* arguments after the name */
	unsigned needs;		/* CMD_* */
	const char *usage;
	const char *help;
};

static cmd_fn cmd_create, cmd_help, cmd_join, cmd_leave, cmd_list, cmd_nick,
	cmd_quit, cmd_rooms;

/* Alphabetical: /help prints it in this order. */
static const struct cmd_def cmd_table[] = {
	{ "create", cmd_create, 1, 1, 0, "/create <room>",
	  "create a room and join it" },
	{ "help", cmd_help, 0, 0, 0, "/help", "show this help" },
	{ "join", cmd_join, 1, 1, 0, "/join <room>",
	  "join a room and show its recent messages" },
	{ "leave", cmd_leave, 0, 0, CMD_IN_ROOM, "/leave",
	  "leave the current room" },
	{ "list", cmd_list, 0, 0, 0, "/list",
	  "show connected users and their current room" },
	{ "nick", cmd_nick, 1, 1, 0, "/nick <name>", "change your nickname" },
	{ "quit", cmd_quit, 0, 0, 0, "/quit", "disconnect" },
	{ "rooms", cmd_rooms, 0, 1, 0, "/rooms [page]",
	  "list rooms with member and online counts, 50 per page" },
};

static const struct cmd_def *cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
		if (!strcmp(cmd_table[i].name, name))
			return &cmd_table[i];
	return NULL;
}

static int cmd_help(struct chat *c, struct session *s, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	session_reply(c, s, "Commands:");
	for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
		session_reply(c, s, "%s - %s", cmd_table[i].usage,
			      cmd_table[i].help);
	return 0;
}

static int cmd_list(struct chat *c, struct session *s, int argc, char **argv)
{
	int err;

	(void)argc;
	(void)argv;
	err = c->store->list(c->st, s->id);
	if (err)
		return err;
	s->cmd_busy = true;
	return 0;
}

static int cmd_quit(struct chat *c, struct session *s, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	session_reply(c, s, "Goodbye");
	s->closing = true;
	s->sink->close(s->conn, true);
	return 0;
}

static int cmd_nick(struct chat *c, struct session *s, int argc, char **argv)
{
	const char *nick = argv[0];
	int err;

	(void)argc;
	if (!name_is_valid_nick(nick)) {
		session_fail(c, s, BD_EINVAL,
			     "invalid nickname (1-32 letters, digits, _ or -)");
		return 0;
	}
	if (chat_nick_in_use(c, s, nick)) {
		session_fail(c, s, BD_ETAKEN, "nickname %s is taken", nick);
		return 0;
	}
	err = c->store->nick(c->st, s->id, s->api_id, s->uid, s->nick, nick,
			     s->current ? s->current->name : NULL);
	if (err)
		return err;
	snprintf(s->want_nick, sizeof(s->want_nick), "%s", nick);
	s->cmd_busy = true;
	return 0;
}

static int start_join(struct chat *c, struct session *s, const char *room,
		      bool create)
{
	struct room *r;
	int err;

	if (!name_is_valid_room(room)) {
		session_fail(c, s, BD_EINVAL,
			     "invalid room name (1-50 lowercase letters, digits, _ or -)");
		return 0;
	}
	if (name_is_reserved_room(room)) {
		session_fail(c, s, BD_ERESERVED, "room name %s is reserved",
			     room);
		return 0;
	}
	/* Its memberships are all here: restored by /nick, or synced for
	 * a stored session. Going back to one of them is always fine. */
	r = room_find(c, room);
	if (c->cfg.max_rooms_per_user &&
	    s->rooms.count >= c->cfg.max_rooms_per_user &&
	    (create || !r || !session_in_room(s, r))) {
		session_fail(c, s, BD_ETOOMANY, "%s (max %zu)",
			     bd_strerror(BD_ETOOMANY),
			     c->cfg.max_rooms_per_user);
		return 0;
	}
	err = c->store->join(c->st, s->id, s->api_id, s->uid, s->nick, room,
			     create, create ? c->cfg.max_rooms : 0,
			     s->current ? s->current->name : NULL);
	if (err)
		return err;
	snprintf(s->arg, sizeof(s->arg), "%s%s", create ? "+" : "", room);
	s->cmd_busy = true;
	return 0;
}

static int cmd_create(struct chat *c, struct session *s, int argc,
		      char **argv)
{
	(void)argc;
	return start_join(c, s, argv[0], true);
}

static int cmd_join(struct chat *c, struct session *s, int argc, char **argv)
{
	(void)argc;
	return start_join(c, s, argv[0], false);
}

static int cmd_leave(struct chat *c, struct session *s, int argc, char **argv)
{
	int err;

	(void)argc;
	(void)argv;
	err = c->store->leave(c->st, s->id, s->api_id, s->uid, s->nick,
			      s->current->id);
	if (err)
		return err;
	s->cmd_busy = true;
	return 0;
}

static int cmd_rooms(struct chat *c, struct session *s, int argc, char **argv)
{
	size_t page = 1;
	int err;

	if (argc) {
		/* Digits only, from 1; more than 9 would be a million rooms. */
		size_t len = strlen(argv[0]);

		if (len > 9 || strspn(argv[0], "0123456789") != len)
			return BD_EUSAGE;
		page = (size_t)strtoul(argv[0], NULL, 10);
		if (!page)
			return BD_EUSAGE;
	}
	s->page = page;
	err = chat_session_rooms(c, s);
	if (err)
		return err;
	s->cmd_busy = true;
	return 0;
}

/* Splits line on spaces into its first max words (*argc of them); false
 * when there are more. argv[0] is the command name either way, so a
 * command with too many words still gets its usage line. */
static bool split_words(char *line, int *argc, char **argv, int max)
{
	char *save = NULL;
	int n = 0;

	for (char *w = strtok_r(line, " ", &save); w;
	     w = strtok_r(NULL, " ", &save)) {
		if (n == max) {
			*argc = n;
			return false;
		}
		argv[n++] = w;
	}
	*argc = n;
	return true;
}

void cmd_run(struct chat *c, struct session *s, char *line)
{
	char *argv[CMD_MAX_ARGS];
	const struct cmd_def *d;
	int argc = 0, n, err;
	bool fits;

	fits = split_words(line + 1, &argc, argv, CMD_MAX_ARGS);
	d = argc ? cmd_find(argv[0]) : NULL;
	if (!d) {
		session_fail(c, s, BD_ENOCMD,
			     "unknown command /%.40s (try /help)",
			     argc ? argv[0] : "");
		return;
	}
	n = argc - 1;
	if (!fits || n < d->min_args || (d->max_args >= 0 && n > d->max_args))
		err = BD_EUSAGE;
	else if ((d->needs & CMD_IN_ROOM) && !s->current)
		err = BD_ENOROOM;
	else
		err = d->fn(c, s, n, argv + 1);
	if (err == BD_EUSAGE)
		session_fail(c, s, err, "usage: %s", d->usage);
	else if (err)
		session_fail(c, s, err, "%s", bd_strerror(err));
}

void cmd_post(struct chat *c, struct session *s, char *text, size_t len)
{
	int err;

	if (!s->current) {
		session_fail(c, s, BD_ENOROOM,
			     "you are not in a room; /join <room> or /create <room> first");
		return;
	}
	if (len > c->cfg.max_message_bytes) {
		session_fail(c, s, BD_ETOOLONG,
			     "message too long (max %zu bytes)",
			     c->cfg.max_message_bytes);
		return;
	}
	err = c->store->post(c->st, s->id, 0, s->current->id, s->uid, s->nick,
			     text, len);
	if (err) {
		session_fail(c, s, err, "message not sent (%s)",
			     err == BD_EBUSY ? bd_strerror(err) :
					       "database unavailable");
		return;
	}
	s->inflight++;
}

size_t cmd_table_size(void)
{
	return sizeof(cmd_table) / sizeof(cmd_table[0]);
}

const char *cmd_table_name(size_t i)
{
	return cmd_table[i].name;
}

const char *cmd_table_usage(size_t i)
{
	return cmd_table[i].usage;
}
