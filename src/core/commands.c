/*
 * Slash commands: a const table (name, arity, preconditions, usage, help)
 * and one dispatcher that enforces it, so handlers only do their job.
 * Handlers that need the database start a store operation and mark the
 * session busy; the store's outcome (chat_on_nick(), chat_on_join(), ...,
 * at the end of this file) finishes them.
 */
#include "core/commands_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/chat.h"
#include "core/instance_int.h"
#include "core/room_int.h"
#include "core/session_int.h"
#include "log.h"
#include "util/strbuf.h"
#include "util/utf8.h"

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
	s->close_reason = "quit";
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
	session_set_want(c, s, nick);
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
	/* A new room costs its address a token (asking is enough: a
	 * name that exists does not make an attempt free). */
	if (create && !chat_addr_take(c, &c->addr_creates, s->addr)) {
		session_fail(c, s, BD_EADDRRATE, "%s",
			     bd_strerror(BD_EADDRRATE));
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
	err = c->store->rooms(c->st, s->id, 0);
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

static void cmd_run(struct chat *c, struct session *s, char *line)
{
	char *argv[CMD_MAX_ARGS];
	const struct cmd_def *d;
	int argc = 0, n, err;
	bool fits;

	if (!session_may_command(c, s)) {
		session_fail(c, s, BD_ERATE, "%s", bd_strerror(BD_ERATE));
		return;
	}
	fits = split_words(line + 1, &argc, argv, CMD_MAX_ARGS);
	d = argc ? cmd_find(argv[0]) : NULL;
	if (!d) {
		const char *name = argc ? argv[0] : "";

		/* Cut to 40 bytes, never inside a character (found by
		 * fuzz_lines: the reply was invalid UTF-8). */
		session_fail(c, s, BD_ENOCMD,
			     "unknown command /%.*s (try /help)",
			     (int)utf8_prefix(name, 40), name);
		return;
	}
	c->stats.commands[d - cmd_table]++;
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

static void cmd_post(struct chat *c, struct session *s, char *text,
		     size_t len)
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
	if (!session_may_post(c, s)) {
		session_fail(c, s, BD_ERATE, "%s", bd_strerror(BD_ERATE));
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
	c->stats.messages_received++;
}

void cmd_input(struct chat *c, struct session *s, char *line, size_t len)
{
	if (line[0] == '/')
		cmd_run(c, s, line);
	else
		cmd_post(c, s, line, len);
}

size_t cmd_table_size(void)
{
	return sizeof(cmd_table) / sizeof(cmd_table[0]);
}

const char *cmd_table_name(size_t i)
{
	return cmd_table[i].name;
}

_Static_assert(sizeof(cmd_table) / sizeof(cmd_table[0]) == CHAT_NCOMMANDS,
	       "CHAT_NCOMMANDS is the size of cmd_table");

const char *chat_command_name(size_t i)
{
	return i < CHAT_NCOMMANDS ? cmd_table[i].name : NULL;
}

const char *cmd_table_usage(size_t i)
{
	return cmd_table[i].usage;
}

/* Store outcomes of the commands */

/* A command's outcome arrived: let queued input run again. */
static void command_done(struct chat *c, struct session *s)
{
	s->cmd_busy = false;
	session_pump(c, s);
}

void chat_on_nick(struct chat *c, uint64_t sid, int err, int64_t uid,
		  const char *nick, const struct chat_room_ref *rooms,
		  size_t n)
{
	struct session *s = chat_find_session(c, sid);
	struct strbuf list = STRBUF_INIT;
	bool restored = false;

	if (!s)
		return;
	if (err == BD_ETAKEN) {
		session_fail(c, s, err, "nickname %s is taken", s->want_nick);
	} else if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
	} else {
		s->uid = uid;
		log_info("nick", LOG_U("conn", s->id), LOG_S("from", s->nick),
			 LOG_S("nick", nick));
		session_set_nick(c, s, nick);
		session_reply(c, s, "You are now %s", s->nick);
		for (size_t i = 0; i < n; i++) {
			struct room *r = room_get_or_add(c, rooms[i].id,
							 rooms[i].name);

			if (!session_in_room(s, r)) {
				restored = true;
				session_add_room(c, s, r);
			}
			if (i)
				sb_puts(&list, ", ");
			sb_puts(&list, r->name);
		}
		/* Not session_reply(): its buffer would cut a long list. */
		if (restored) {
			struct strbuf text = STRBUF_INIT;

			sb_appendf(&text, "You are a member of: %s", list.buf);
			session_say(c, s, false, text.buf, text.len);
			sb_fini(&text);
		}
		sb_fini(&list);
	}
	session_set_want(c, s, "");
	command_done(c, s);
}

void chat_on_join(struct chat *c, uint64_t sid, int err, int64_t uid,
		  int64_t room_id, const char *room_name)
{
	struct session *s = chat_find_session(c, sid);
	struct room *r;

	c->rooms_version++;
	if (!s)
		return;
	if (err == BD_EROOMSFULL) {
		session_fail(c, s, err, "%s (max %zu)", bd_strerror(err),
			     c->cfg.max_rooms);
		command_done(c, s);
		return;
	}
	if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
		command_done(c, s);
		return;
	}
	s->uid = uid;
	if (!room_id) {
		/* s->arg starts with '+' for /create. */
		if (s->arg[0] == '+')
			session_fail(c, s, BD_EEXIST,
				     "room %s already exists", s->arg + 1);
		else
			session_fail(c, s, BD_ENOENT, "no such room: %s",
				     s->arg);
		command_done(c, s);
		return;
	}
	r = room_get_or_add(c, room_id, room_name);
	log_info(s->arg[0] == '+' ? "create" : "join", LOG_U("conn", s->id),
		 LOG_S("nick", s->nick), LOG_S("room", r->name));
	if (s->arg[0] == '+')
		session_reply(c, s, "Created room %s", r->name);
	session_add_room(c, s, r);
	s->current = r;
	/* The command stays busy until the history is shown. */
	session_await_history(c, s, r);
}

void chat_on_presence(struct chat *c, uint64_t sid, int err)
{
	struct session *s = chat_find_session(c, sid);

	if (!s || err != BD_ETAKEN || s->want_nick[0])
		return;
	/* Another instance has this guest name: pick another one. */
	session_guest_nick(c, s);
	c->store->presence_add(c->st, s->id, s->nick);
	if (s->kind == SESSION_LINE)
		session_reply(c, s, "You are now %s", s->nick);
}

void chat_on_nick_lost(struct chat *c, uint64_t sid)
{
	struct session *s = chat_find_session(c, sid);
	char old[NICK_MAX + 1];
	bool busy;

	if (!s || s->kind != SESSION_LINE)
		return;
	busy = s->cmd_busy;
	/* The nickname, and so its user and rooms, are another session's
	 * now: this one goes on as a new guest, in no room. */
	snprintf(old, sizeof(old), "%s", s->nick);
	while (s->rooms.count) {
		size_t i = 0;

		while (!s->rooms.slots[i].key)
			i++;
		session_remove_room(c, s, s->rooms.slots[i].val);
	}
	s->current = NULL;
	s->uid = 0;
	session_guest_nick(c, s);
	c->store->presence_add(c->st, s->id, s->nick);
	session_reply(c, s,
		      "error: while the database was away, another session took the nickname %s; you are now %s (/nick to pick another)",
		      old, s->nick);
	if (busy && !s->cmd_busy)
		session_pump(c, s);	/* a join ended by leaving */
}

void chat_on_list(struct chat *c, uint64_t sid, int err,
		  const struct chat_presence *rows, size_t n)
{
	struct session *s = chat_find_session(c, sid);

	if (!s)
		return;
	if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
	} else {
		session_reply(c, s, "Online users (%zu):", n);
		for (size_t i = 0; i < n; i++) {
			if (rows[i].room)
				session_reply(c, s, "  %s (in %s)",
					      rows[i].nick, rows[i].room);
			else
				session_reply(c, s, "  %s (no room)",
					      rows[i].nick);
		}
	}
	command_done(c, s);
}

void chat_on_leave(struct chat *c, uint64_t sid, int err)
{
	struct session *s = chat_find_session(c, sid);
	struct room *r;

	c->rooms_version++;
	if (!s)
		return;
	r = s->current;
	if (err) {
		session_fail(c, s, err, "%s", bd_strerror(err));
	} else if (r) {
		log_info("leave", LOG_U("conn", s->id), LOG_S("nick", s->nick),
			 LOG_S("room", r->name));
		session_reply(c, s, "You left %s", r->name);
		session_remove_room(c, s, r);
	}
	command_done(c, s);
}

void chat_on_posted(struct chat *c, uint64_t sid, uint64_t token, int err,
		    int64_t id, int64_t seq)
{
	struct session *s = chat_find_session(c, sid);

	if (!err && seq)
		c->stats.messages_posted++;
	if (!s)
		return;
	if (token) {
		if (!err && !seq)
			err = BD_ENOENT;	/* the room is gone */
		if (s->sink->posted)
			s->sink->posted(s->conn, token, err, id, seq);
		return;
	}
	s->inflight--;
	if (err == BD_ELOST)
		session_fail(c, s, err, "database connection lost; your message may not have been sent");
	else if (err)
		session_fail(c, s, err, "message not sent (database unavailable)");
	else if (!seq)
		session_fail(c, s, BD_ENOENT, "message not sent (room no longer exists)");
	session_pump(c, s);
}

/* Page s->page of /rooms: a page of CHAT_ROOMS_PAGE, then where it is
 * when there are several. A single page looks as it always did. */
static void show_rooms_page(struct chat *c, struct session *s,
			    const struct chat_room_info *rooms, size_t n)
{
	size_t pages = (n + CHAT_ROOMS_PAGE - 1) / CHAT_ROOMS_PAGE;
	size_t first = (s->page - 1) * CHAT_ROOMS_PAGE, end;

	if (s->page > pages) {
		session_fail(c, s, BD_ENOENT, "no page %zu (there %s %zu)",
			     s->page, pages == 1 ? "is" : "are", pages);
		return;
	}
	end = first + CHAT_ROOMS_PAGE < n ? first + CHAT_ROOMS_PAGE : n;
	if (pages == 1)
		session_reply(c, s, "Rooms (%zu):", n);
	else
		session_reply(c, s, "Rooms %zu-%zu of %zu:", first + 1, end,
			      n);
	for (size_t i = first; i < end; i++)
		session_reply(c, s,
			      "  %s: %" PRId64 " member%s, %" PRId64 " online",
			      rooms[i].name, rooms[i].members,
			      rooms[i].members == 1 ? "" : "s",
			      rooms[i].online);
	if (pages > 1 && s->page < pages)
		session_reply(c, s, "page %zu of %zu; /rooms %zu for more",
			      s->page, pages, s->page + 1);
	else if (pages > 1)
		session_reply(c, s, "page %zu of %zu", s->page, pages);
}

void cmd_rooms_done(struct chat *c, struct session *s, int err,
		    const struct chat_room_info *rooms, size_t n)
{
	if (err)
		session_fail(c, s, err, "%s", bd_strerror(err));
	else if (!n)
		session_reply(c, s,
			      "No rooms yet. Create one with /create <room>");
	else
		show_rooms_page(c, s, rooms, n);
	command_done(c, s);
}
