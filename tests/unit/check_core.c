/*
 * Unit tests for src/core: commands, routing, history and the sync state
 * machine, driven through the public chat API with a fake store (records
 * calls; the test plays the database's answers) and a fake sink.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/chat.h"
#include "core/commands_int.h"
#include "core/instance_int.h"
#include "core/session_int.h"
#include "core/msg.h"
#include "core/outq.h"
#include "tmain.h"
#include "util/utf8.h"

/* Fake transport: one per session. */
struct fconn {
	struct session *s;
	int wakes;
	bool closed, flushed, throttled;
};

static void f_wake(void *conn)
{
	((struct fconn *)conn)->wakes++;
}

static void f_close(void *conn, bool flush)
{
	struct fconn *fc = conn;

	fc->closed = true;
	fc->flushed = flush;
}

static void f_throttle(void *conn, bool stop)
{
	((struct fconn *)conn)->throttled = stop;
}

static const struct chat_sink_ops fsink = {
	.wake = f_wake, .close = f_close, .throttle = f_throttle,
};

/* Fake store: remembers the last call of each kind. */
static struct fstore {
	bool down;
	int down_err;	/* what a down store returns; 0: BD_EDB */
	int nick_calls, join_calls, leave_calls, post_calls, rooms_calls;
	int watch_calls, unwatch_calls;
	uint64_t sid;
	int64_t api_id, uid, room_id;
	char name[64];
	bool create;
	size_t max_rooms;
	char content[4096];
	int64_t watch_room, watch_after;
	uint64_t watch_gen;
	unsigned watch_limit;
	uint64_t token;
	int presence_adds, presence_dels, list_calls;
	int replay_calls;
	int64_t replay_after;
	unsigned replay_limit;
} fs;

/* What a call returns while the store is down. */
static int fs_down(void)
{
	return fs.down_err ? fs.down_err : BD_EDB;
}

/* Who asked (the calls made for a session). */
static void fs_who(uint64_t sid, int64_t api_id, int64_t uid)
{
	fs.sid = sid;
	fs.api_id = api_id;
	fs.uid = uid;
}

static int fs_replay(void *st, int64_t room_id, uint64_t token, int64_t after,
		     unsigned limit)
{
	(void)st;
	(void)room_id;
	if (fs.down)
		return fs_down();
	fs.replay_calls++;
	fs.token = token;
	fs.replay_after = after;
	fs.replay_limit = limit;
	return 0;
}

static int fs_nick(void *st, uint64_t sid, int64_t api_id, int64_t uid,
		   const char *old, const char *nick, const char *cur)
{
	(void)st;
	(void)old;
	(void)cur;
	if (fs.down)
		return fs_down();
	fs.nick_calls++;
	fs_who(sid, api_id, uid);
	snprintf(fs.name, sizeof(fs.name), "%s", nick);
	return 0;
}

static int fs_join(void *st, uint64_t sid, int64_t api_id, int64_t uid,
		   const char *nick, const char *room, bool create,
		   size_t max_rooms, const char *cur)
{
	(void)st;
	(void)nick;
	(void)cur;
	if (fs.down)
		return fs_down();
	fs.join_calls++;
	fs_who(sid, api_id, uid);
	fs.create = create;
	fs.max_rooms = max_rooms;
	snprintf(fs.name, sizeof(fs.name), "%s", room);
	return 0;
}

static int fs_leave(void *st, uint64_t sid, int64_t api_id, int64_t uid,
		    const char *nick, int64_t room_id)
{
	(void)st;
	(void)nick;
	if (fs.down)
		return fs_down();
	fs.leave_calls++;
	fs_who(sid, api_id, uid);
	fs.room_id = room_id;
	return 0;
}

static int fs_post(void *st, uint64_t sid, uint64_t token, int64_t room_id,
		   int64_t uid, const char *nick, const char *content,
		   size_t len)
{
	(void)st;
	fs.token = token;
	(void)uid;
	(void)nick;
	if (fs.down)
		return fs_down();
	fs.post_calls++;
	fs.sid = sid;
	fs.room_id = room_id;
	snprintf(fs.content, sizeof(fs.content), "%.*s", (int)len, content);
	return 0;
}

static int fs_rooms(void *st, uint64_t sid, uint64_t token)
{
	(void)st;
	fs.token = token;
	if (fs.down)
		return fs_down();
	fs.rooms_calls++;
	fs.sid = sid;
	return 0;
}

static int fs_presence_add(void *st, uint64_t sid, const char *nick)
{
	(void)st;
	(void)nick;
	if (fs.down)
		return fs_down();
	fs.presence_adds++;
	fs.sid = sid;
	return 0;
}

static void fs_presence_del(void *st, uint64_t sid)
{
	(void)st;
	(void)sid;
	fs.presence_dels++;
}

static int fs_list(void *st, uint64_t sid)
{
	(void)st;
	if (fs.down)
		return fs_down();
	fs.list_calls++;
	fs.sid = sid;
	return 0;
}

static int fs_watch(void *st, int64_t room_id, uint64_t gen, int64_t after,
		    unsigned limit)
{
	(void)st;
	if (fs.down)
		return fs_down();
	fs.watch_calls++;
	fs.watch_room = room_id;
	fs.watch_gen = gen;
	fs.watch_after = after;
	fs.watch_limit = limit;
	return 0;
}

static void fs_unwatch(void *st, int64_t room_id)
{
	(void)st;
	(void)room_id;
	fs.unwatch_calls++;
}

static const struct chat_store_ops fops = {
	.nick = fs_nick, .join = fs_join, .leave = fs_leave, .post = fs_post,
	.rooms = fs_rooms, .replay = fs_replay, .watch = fs_watch,
	.unwatch = fs_unwatch, .presence_add = fs_presence_add,
	.presence_del = fs_presence_del, .list = fs_list,
};

static struct chat *c;
static struct fconn *conns[16];	/* freed by teardown */
static int nconns;

static void setup(void)
{
	struct chat_config cfg = {
		.history_size = 3,
		.max_message_bytes = 20,
		.outq_limit = 4096,
		.seed = 42,
	};

	memset(&fs, 0, sizeof(fs));
	c = chat_new(&cfg, &fops, NULL);
	chat_on_listen_up(c);
}

static void teardown(void)
{
	chat_free(c);
	while (nconns)
		free(conns[--nconns]);
}

static struct fconn *open_conn(void)
{
	struct fconn *fc = calloc(1, sizeof(*fc));

	fc->s = chat_session_open(c, SESSION_LINE, &fsink, fc);
	conns[nconns++] = fc;
	return fc;
}

/* Everything queued for the session since the last call. */
static char *drain(struct fconn *fc)
{
	static char buf[65536];
	struct outq *q = session_outq(fc->s);
	size_t n = outq_copy(q, buf, sizeof(buf) - 1);

	outq_consume(q, n);
	buf[n] = '\0';
	return buf;
}

static void say(struct fconn *fc, const char *line)
{
	chat_session_input(c, fc->s, line, strlen(line));
}

/* fc says line; all it was sent since the last drain() is then want. */
#define expect_reply(fc, line, want)                 \
	do {                                         \
		say((fc), (line));                   \
		ck_assert_str_eq(drain(fc), (want)); \
	} while (0)

/* The same, and the session's last error is err. */
#define expect_refusal(fc, line, err, want)                           \
	do {                                                          \
		expect_reply((fc), (line), (want));                   \
		ck_assert_int_eq(session_last_error((fc)->s), (err)); \
	} while (0)

/* "/leave", and the store's answer that it is done. */
static void leave(struct fconn *fc)
{
	say(fc, "/leave");
	chat_on_leave(c, session_id(fc->s), 0);
}

/* A connected session named nick, with user id uid, output drained. */
static struct fconn *user(const char *nick, int64_t uid)
{
	struct fconn *fc = open_conn();
	char line[64];

	snprintf(line, sizeof(line), "/nick %s", nick);
	say(fc, line);
	chat_on_nick(c, session_id(fc->s), 0, uid, nick, NULL, 0);
	drain(fc);
	return fc;
}

static void message_event(int64_t room, int64_t seq, const char *nick,
			  const char *text)
{
	struct chat_event ev = {
		.kind = CHAT_EV_MESSAGE, .room_id = room, .seq = seq,
		.id = seq, .nick = nick, .content = text,
		.content_len = strlen(text),
	};

	chat_on_event(c, &ev);
}

static struct fconn *new_fconn(void);
static int count_of(const char *hay, const char *needle);
static struct fconn *api_member(const char *nick, int64_t uid);
static char *drain_stream(struct stream *st);
static struct fconn *stored(int64_t api_id, const char *nick, int64_t uid);
static struct stream *open_stream(struct fconn *owner, struct fconn *sc,
				  int64_t last);

/* fc joins room (id) whose database history is rows[0..n). */
static void join_room(struct fconn *fc, const char *room, int64_t id,
		      const struct chat_msg_row *rows, size_t n)
{
	char line[64];

	snprintf(line, sizeof(line), "/join %s", room);
	say(fc, line);
	chat_on_join(c, session_id(fc->s), 0, fc->s->uid, id, room);
	if (fs.watch_calls && fs.watch_room == id)
		chat_on_room_sync(c, id, fs.watch_gen, 0, rows, n);
}

/* A session named nick (user id uid) in general (id 7, no history),
 * output drained. */
static struct fconn *member(const char *nick, int64_t uid)
{
	struct fconn *fc = user(nick, uid);

	join_room(fc, "general", 7, NULL, 0);
	drain(fc);
	return fc;
}

START_TEST(test_welcome_assigns_guest_nick)
{
	struct fconn *fc = open_conn();
	char *out = drain(fc);

	ck_assert(strstr(out, "[system] Welcome to Baby Discord!\n"));
	ck_assert(strstr(out, "[system] You are guest-"));
	ck_assert(strstr(out, "[system] Type /help for commands.\n"));
	ck_assert(!strncmp(session_nick(fc->s), "guest-", 6));
}
END_TEST

START_TEST(test_command_table_is_sane)
{
	for (size_t i = 0; i < cmd_table_size(); i++) {
		const char *n = cmd_table_name(i);

		ck_assert(cmd_table_usage(i)[0] == '/');
		for (const char *p = n; *p; p++)
			ck_assert(*p >= 'a' && *p <= 'z');
		if (i)
			ck_assert(strcmp(cmd_table_name(i - 1), n) < 0);
	}
	ck_assert_uint_eq(cmd_table_size(), 8);
}
END_TEST

START_TEST(test_help_lists_every_command)
{
	struct fconn *fc = open_conn();
	char *out;

	drain(fc);
	say(fc, "/help");
	out = drain(fc);
	for (size_t i = 0; i < cmd_table_size(); i++) {
		char want[64];

		snprintf(want, sizeof(want), "[system] /%s", cmd_table_name(i));
		ck_assert_msg(strstr(out, want), "missing %s", want);
	}
}
END_TEST

START_TEST(test_unknown_command_and_usage_errors)
{
	struct fconn *fc = open_conn();

	drain(fc);
	expect_reply(
		fc, "/frobnicate now",
		"[system] error: unknown command /frobnicate (try /help)\n");
	expect_reply(fc, "/join", "[system] error: usage: /join <room>\n");
	expect_reply(fc, "/join a b", "[system] error: usage: /join <room>\n");
	expect_reply(fc, "/leave", "[system] error: you are not in a room\n");
	ck_assert_int_eq(fs.join_calls + fs.leave_calls, 0);
}
END_TEST

START_TEST(test_command_with_more_than_8_words_gets_usage)
{
	struct fconn *fc = open_conn();

	drain(fc);
	expect_reply(fc, "/nick a b c d e f g h i",
		     "[system] error: usage: /nick <name>\n");
	expect_refusal(
		fc, "/frobnicate a b c d e f g h i j", BD_ENOCMD,
		"[system] error: unknown command /frobnicate (try /help)\n");
	ck_assert_int_eq(fs.nick_calls, 0);
}
END_TEST

START_TEST(test_member_list_of_60_rooms_is_whole)
{
	struct chat_room_ref rooms[60];
	char names[60][ROOM_NAME_MAX + 1];
	struct fconn *b = open_conn();
	char *out, *end;

	for (int i = 0; i < 60; i++) {
		/* 50-byte names: the list is over 3,000 bytes. */
		snprintf(names[i], sizeof(names[i]), "room-%02u-%s",
			 (unsigned)i % 100,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		rooms[i].id = 100 + i;
		rooms[i].name = names[i];
	}
	drain(b);
	say(b, "/nick alice");
	chat_on_nick(c, session_id(b->s), 0, 1, "alice", rooms, 60);
	out = drain(b);
	out = strstr(out, "[system] You are a member of: ");
	ck_assert_ptr_nonnull(out);
	end = strchr(out, '\n');
	ck_assert_ptr_nonnull(end);
	*end = '\0';
	for (int i = 0; i < 60; i++)
		ck_assert_msg(strstr(out, names[i]), "%s missing", names[i]);
	ck_assert(!strcmp(end - strlen(names[59]), names[59]));
}
END_TEST

START_TEST(test_nick_validation_and_local_uniqueness)
{
	struct fconn *a = user("alice", 1);
	struct fconn *b = open_conn();

	drain(b);
	expect_reply(
		b, "/nick bad!name",
		"[system] error: invalid nickname (1-32 letters, digits, _ or -)\n");
	say(b, "/nick abcdefghijabcdefghijabcdefghijabc");
	ck_assert(strstr(drain(b), "invalid nickname"));
	expect_reply(b, "/nick ALICE",
		     "[system] error: nickname ALICE is taken\n");
	ck_assert_int_eq(fs.nick_calls, 1);	/* only alice's */
	say(b, "/nick bob");
	ck_assert_int_eq(fs.nick_calls, 2);
	/* Reserved while it runs. */
	{
		struct fconn *d = open_conn();

		drain(d);
		expect_reply(d, "/nick Bob",
			     "[system] error: nickname Bob is taken\n");
	}
	chat_on_nick(c, session_id(b->s), 0, 2, "bob", NULL, 0);
	ck_assert_str_eq(drain(b), "[system] You are now bob\n");
	ck_assert_str_eq(session_nick(b->s), "bob");
	/* Free again once its holder is gone. */
	chat_session_closed(c, a->s);
	say(b, "/nick Alice");
	ck_assert_int_eq(fs.nick_calls, 3);
}
END_TEST

START_TEST(test_nick_taken_in_database_race)
{
	struct fconn *b = open_conn();

	drain(b);
	say(b, "/nick carol");
	chat_on_nick(c, session_id(b->s), BD_ETAKEN, 0, NULL, NULL, 0);
	ck_assert_str_eq(drain(b), "[system] error: nickname carol is taken\n");
	ck_assert(!strncmp(session_nick(b->s), "guest-", 6));
}
END_TEST

START_TEST(test_nick_restores_memberships)
{
	struct fconn *b = open_conn();
	struct chat_room_ref rooms[] = { { 5, "general" }, { 6, "random" } };
	char *out;

	drain(b);
	say(b, "/nick alice");
	chat_on_nick(c, session_id(b->s), 0, 1, "alice", rooms, 2);
	out = drain(b);
	ck_assert(strstr(out, "[system] You are now alice\n"));
	ck_assert(strstr(out, "[system] You are a member of: general, random\n"));
	ck_assert_int_eq(fs.watch_calls, 2);
	chat_on_room_sync(c, 6, fs.watch_gen, 0, NULL, 0);
	message_event(6, 1, "bob", "hey");
	ck_assert_str_eq(drain(b), "[random] bob: hey\n");
}
END_TEST

START_TEST(test_create_exists_and_invalid)
{
	struct fconn *a = user("alice", 1);

	say(a, "/create General");
	ck_assert(strstr(drain(a), "invalid room name"));
	say(a, "/create general");
	ck_assert(fs.create);
	chat_on_join(c, session_id(a->s), 0, 1, 0, NULL);
	ck_assert_str_eq(drain(a),
			 "[system] error: room general already exists\n");
}
END_TEST

START_TEST(test_reserved_room_name_refused)
{
	struct fconn *a = user("alice", 1);

	/* "[system] error: ..." from a user named error in a room named
	 * system would pass for a server notice. */
	expect_refusal(a, "/create system", BD_ERESERVED,
		       "[system] error: room name system is reserved\n");
	expect_reply(a, "/join system",
		     "[system] error: room name system is reserved\n");
	ck_assert_int_eq(fs.join_calls, 0);
	ck_assert(name_is_reserved_room("system"));
	ck_assert(!name_is_reserved_room("systems"));
	ck_assert_str_eq(bd_strerror(BD_ERESERVED), "name is reserved");
}
END_TEST

/* The core again, with these caps. */
static void set_caps(size_t max_rooms, size_t per_user)
{
	struct chat_config cfg = {
		.history_size = 3,
		.max_message_bytes = 20,
		.outq_limit = 4096,
		.seed = 42,
		.max_rooms = max_rooms,
		.max_rooms_per_user = per_user,
	};

	chat_free(c);
	c = chat_new(&cfg, &fops, NULL);
	chat_on_listen_up(c);
}

START_TEST(test_join_beyond_max_rooms_per_user_refused)
{
	struct fconn *a;

	set_caps(0, 3);
	a = user("alice", 1);
	join_room(a, "r1", 1, NULL, 0);
	join_room(a, "r2", 2, NULL, 0);
	join_room(a, "r3", 3, NULL, 0);
	drain(a);
	ck_assert_int_eq(fs.join_calls, 3);
	expect_refusal(a, "/join r4", BD_ETOOMANY,
		       "[system] error: you are in too many rooms (max 3)\n");
	expect_reply(a, "/create r5",
		     "[system] error: you are in too many rooms (max 3)\n");
	ck_assert_int_eq(fs.join_calls, 3);
	ck_assert_str_eq(bd_strerror(BD_ETOOMANY), "you are in too many rooms");
	/* Back to one of its rooms: fine. */
	join_room(a, "r1", 1, NULL, 0);
	ck_assert_int_eq(fs.join_calls, 4);
	ck_assert(strstr(drain(a), "[system] You joined r1"));
	/* One left: room for one more. */
	leave(a);
	join_room(a, "r4", 4, NULL, 0);
	ck_assert_int_eq(fs.join_calls, 5);
	ck_assert(strstr(drain(a), "[system] You joined r4"));
}
END_TEST

START_TEST(test_create_beyond_max_rooms_refused_by_store)
{
	struct fconn *a;

	set_caps(5, 100);
	a = user("alice", 1);
	say(a, "/create r6");
	ck_assert(fs.create);
	ck_assert_uint_eq(fs.max_rooms, 5);	/* the database counts */
	chat_on_join(c, session_id(a->s), BD_EROOMSFULL, 0, 0, NULL);
	ck_assert_str_eq(drain(a),
		"[system] error: too many rooms on this server (max 5)\n");
	ck_assert_int_eq(session_last_error(a->s), BD_EROOMSFULL);
	say(a, "/join r1");
	ck_assert(!fs.create);
	ck_assert_uint_eq(fs.max_rooms, 0);
}
END_TEST

START_TEST(test_join_unknown_room)
{
	struct fconn *a = user("alice", 1);

	say(a, "/join nowhere");
	ck_assert(!fs.create);
	chat_on_join(c, session_id(a->s), 0, 1, 0, NULL);
	ck_assert_str_eq(drain(a), "[system] error: no such room: nowhere\n");
}
END_TEST

START_TEST(test_join_shows_last_history_oldest_first)
{
	struct fconn *a = user("alice", 1);
	struct chat_msg_row rows[] = {
		{ 4, 4, 0, "bob", "four", 4 },
		{ 5, 5, 0, "bob", "five", 4 },
	};

	join_room(a, "general", 7, rows, 2);
	ck_assert_int_eq(fs.watch_after, 0);
	ck_assert_uint_eq(fs.watch_limit, 3);
	ck_assert_str_eq(drain(a),
		"[system] You joined general (2 recent messages)\n"
		"[general] bob: four\n[general] bob: five\n");
	ck_assert_uint_eq(chat_get_stats(c)->history_misses, 1);
}
END_TEST

START_TEST(test_second_join_is_served_from_ring)
{
	struct fconn *a = user("alice", 1);
	struct fconn *b = user("bob", 2);

	join_room(a, "general", 7, NULL, 0);
	for (int i = 1; i <= 5; i++) {
		char t[16];

		snprintf(t, sizeof(t), "m%d", i);
		message_event(7, i, "alice", t);
	}
	drain(a);
	say(b, "/join general");
	chat_on_join(c, session_id(b->s), 0, 2, 7, "general");
	ck_assert_int_eq(fs.watch_calls, 1);	/* no new load */
	ck_assert_str_eq(drain(b),
		"[system] You joined general (3 recent messages)\n"
		"[general] alice: m3\n[general] alice: m4\n[general] alice: m5\n");
	ck_assert_uint_eq(chat_get_stats(c)->history_hits, 1);
}
END_TEST

START_TEST(test_messages_reach_every_member_once_in_order)
{
	struct fconn *a = member("alice", 1);
	struct fconn *b = member("bob", 2);

	message_event(7, 1, "alice", "one");
	message_event(7, 2, "bob", "two");
	message_event(7, 2, "bob", "two");	/* duplicate NOTIFY */
	message_event(7, 1, "alice", "one");	/* stale */
	ck_assert_str_eq(drain(a), "[general] alice: one\n[general] bob: two\n");
	ck_assert_str_eq(drain(b), "[general] alice: one\n[general] bob: two\n");
	ck_assert_uint_eq(chat_get_stats(c)->events_dropped, 2);
}
END_TEST

START_TEST(test_events_during_sync_follow_history)
{
	struct fconn *a = user("alice", 1);
	struct chat_msg_row rows[] = { { 1, 1, 0, "bob", "old", 3 } };

	say(a, "/join general");
	chat_on_join(c, session_id(a->s), 0, 1, 7, "general");
	/* Arrive after LISTEN but before the history result. */
	message_event(7, 1, "bob", "old");
	message_event(7, 2, "bob", "new");
	chat_on_room_sync(c, 7, fs.watch_gen, 0, rows, 1);
	ck_assert_str_eq(drain(a),
		"[system] You joined general (1 recent message)\n"
		"[general] bob: old\n[general] bob: new\n");
}
END_TEST

START_TEST(test_plain_line_posts_to_current_room)
{
	struct fconn *a = user("alice", 1);

	expect_reply(
		a, "hello",
		"[system] error: you are not in a room; /join <room> or /create <room> first\n");
	join_room(a, "general", 7, NULL, 0);
	drain(a);
	say(a, "a\x01" "b\x7f");
	ck_assert_int_eq(fs.post_calls, 1);
	ck_assert_str_eq(fs.content, "ab");
	ck_assert_int_eq(fs.room_id, 7);
	/* Nothing is shown until the database NOTIFYs it. */
	chat_on_posted(c, session_id(a->s), 0, 0, 1, 1);
	ck_assert_str_eq(drain(a), "");
	message_event(7, 1, "alice", "ab");
	ck_assert_str_eq(drain(a), "[general] alice: ab\n");
}
END_TEST

START_TEST(test_bad_input_is_rejected)
{
	struct fconn *a = member("alice", 1);

	expect_reply(a, "\xff\xfe", "[system] error: invalid UTF-8\n");
	expect_reply(a, "this message is longer than twenty bytes",
		     "[system] error: message too long (max 20 bytes)\n");
	chat_session_line_too_long(c, a->s);
	ck_assert_str_eq(drain(a),
			 "[system] error: line too long (max 4096 bytes)\n");
	say(a, "");
	say(a, "   ");
	say(a, "\x01\x02");
	ck_assert_str_eq(drain(a), "");
	ck_assert_int_eq(fs.post_calls, 0);
}
END_TEST

static int64_t fake_now_us;

static int64_t fake_clock(void)
{
	return fake_now_us;
}

/* Per-session token buckets: a burst, then one a second; commands have
 * their own bucket; what is refused is not posted, and says so. */
START_TEST(test_rate_limits)
{
	struct chat_config cfg = {
		.history_size = 3,
		.max_message_bytes = 20,
		.outq_limit = 4096,
		.seed = 42,
		.msg_rate = 1,
		.msg_burst = 2,
		.cmd_rate = 1,
		.cmd_burst = 3,
		.now_us = fake_clock,
	};
	struct fconn *a, *b, *carol;

	chat_free(c);
	c = chat_new(&cfg, &fops, NULL);
	chat_on_listen_up(c);
	fake_now_us = 1000000;
	a = member("alice", 1);	/* /nick and /join: 2 of 3 commands */
	b = member("bob", 2);
	say(a, "one");
	say(a, "two");
	expect_reply(a, "three",
		     "[system] error: slow down (rate limit)\n");
	ck_assert_int_eq(fs.post_calls, 2);
	/* Bob has buckets of his own. */
	say(b, "bob's");
	ck_assert_int_eq(fs.post_calls, 3);
	/* A second later, one more. */
	fake_now_us += 1000000;
	say(a, "four");
	ck_assert_int_eq(fs.post_calls, 4);
	expect_reply(a, "five", "[system] error: slow down (rate limit)\n");
	/* Commands: carol's /nick and /join took 2 of her 3; one more,
	 * then refused (alice's would wait behind her messages). */
	carol = member("carol", 3);
	say(carol, "/help");
	ck_assert(strstr(drain(carol), "Commands:"));
	expect_reply(carol, "/help",
		     "[system] error: slow down (rate limit)\n");
	ck_assert_int_eq(chat_get_stats(c)->rejected[-BD_ERATE - 1], 3);
}
END_TEST

/* /create is limited per source address, across its sessions: a
 * burst, then one a minute's share; refused creates reach no store and
 * say so; /join is not limited; another address has its own bucket. */
START_TEST(test_create_rate_per_address)
{
	struct chat_config cfg = {
		.history_size = 3, .max_message_bytes = 20,
		.outq_limit = 4096, .seed = 42,
		.create_per_min = 6, .create_burst = 2,	/* one each 10 s */
		.now_us = fake_clock,
	};
	struct fconn *a, *b, *d;

	chat_free(c);
	c = chat_new(&cfg, &fops, NULL);
	chat_on_listen_up(c);
	fake_now_us = 1000000;
	a = user("alice", 1);
	b = user("bob", 2);
	d = user("dave", 4);
	chat_session_set_addr(a->s, "10.0.0.1");
	chat_session_set_addr(b->s, "10.0.0.1");
	chat_session_set_addr(d->s, "10.0.0.2");
	join_room(a, "one", 11, NULL, 0);	/* a /join: free */
	say(a, "/create one");
	chat_on_join(c, session_id(a->s), 0, 1, 11, "one");
	say(b, "/create two");
	chat_on_join(c, session_id(b->s), 0, 2, 12, "two");
	chat_on_room_sync(c, 12, fs.watch_gen, 0, NULL, 0);
	drain(a);
	drain(b);
	ck_assert_int_eq(fs.join_calls, 3);
	expect_refusal(b, "/create three", BD_EADDRRATE,
		       "[system] error: too many from your address, slow down\n");
	expect_refusal(a, "/create three", BD_EADDRRATE,
		       "[system] error: too many from your address, slow down\n");
	ck_assert_int_eq(fs.join_calls, 3);
	say(d, "/create four");
	ck_assert_int_eq(fs.join_calls, 4);
	chat_on_join(c, session_id(d->s), 0, 4, 13, "four");
	fake_now_us += 10000000;
	say(b, "/create three");
	ck_assert_int_eq(fs.join_calls, 5);
	ck_assert_int_eq(chat_get_stats(c)->rejected[-BD_EADDRRATE - 1], 2);
}
END_TEST

/* Found by fuzz_lines: an unknown command's name was cut at 40 bytes in
 * the middle of a character, and the reply was invalid UTF-8. */
START_TEST(test_unknown_command_reply_never_cuts_a_character)
{
	struct fconn *a = member("alice", 1);
	char line[64];
	const char *out;

	/* 39 bytes of name, then a 3-byte character across the 40th. */
	snprintf(line, sizeof(line), "/%s\xe4\x8a\xb0x",
		 "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL");
	say(a, line);
	out = drain(a);
	ck_assert_str_eq(out, "[system] error: unknown command "
			      "/LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL "
			      "(try /help)\n");
	ck_assert(utf8_valid(out, strlen(out)));
}
END_TEST

START_TEST(test_database_down_rejects_message)
{
	struct fconn *a = member("alice", 1);

	fs.down = true;
	expect_reply(
		a, "hi",
		"[system] error: message not sent (database unavailable)\n");
	expect_reply(a, "/rooms",
		     "[system] error: database unavailable, try again\n");
	fs.down = false;
	say(a, "hi");
	chat_on_posted(c, session_id(a->s), 0, BD_ELOST, 0, 0);
	ck_assert(strstr(drain(a), "database connection lost"));
}
END_TEST

/* The store refuses user requests while too many wait for the database:
 * commands and messages say so, in the session's order, and the session
 * goes on. */
START_TEST(test_busy_store_refuses_command_and_message)
{
	struct fconn *a = member("alice", 1);

	fs.down = true;
	fs.down_err = BD_EBUSY;
	expect_refusal(
		a, "hi", BD_EBUSY,
		"[system] error: message not sent (server busy, try again)\n");
	say(a, "/rooms");
	say(a, "/list");
	expect_reply(a, "/join other",
		     "[system] error: server busy, try again\n"
		     "[system] error: server busy, try again\n"
		     "[system] error: server busy, try again\n");
	fs.down = false;
	say(a, "hi");
	ck_assert_int_eq(fs.post_calls, 1);
	chat_on_posted(c, session_id(a->s), 0, 0, 1, 1);
	ck_assert_str_eq(drain(a), "");
}
END_TEST

/* Whether a read is still wanted by the session that asked for it. */
START_TEST(test_session_wanted_until_closing_or_gone)
{
	struct fconn *a = user("alice", 1);
	uint64_t sid = session_id(a->s);

	ck_assert(chat_session_wanted(c, sid));
	ck_assert(!chat_session_wanted(c, sid + 1000));
	say(a, "/quit");
	ck_assert(!chat_session_wanted(c, sid));
	chat_session_closed(c, a->s);
	ck_assert(!chat_session_wanted(c, sid));
}
END_TEST

static uint64_t api_unwanted_token;

static bool api_wanted(void *arg, uint64_t token)
{
	(void)arg;
	return token != api_unwanted_token;
}

static const struct chat_api_ops wanted_api = { .wanted = api_wanted };

/* Requests of no session ask the HTTP layer's hook, when it has one. */
START_TEST(test_api_wanted_asks_the_hook)
{
	ck_assert(chat_api_wanted(c, 5));
	chat_set_api(c, &wanted_api, NULL);
	api_unwanted_token = 5;
	ck_assert(!chat_api_wanted(c, 5));
	ck_assert(chat_api_wanted(c, 6));
}
END_TEST

START_TEST(test_lines_wait_for_running_command)
{
	struct fconn *a = user("alice", 1);

	say(a, "/join general");
	say(a, "hello");	/* must go to general, after the join */
	ck_assert_int_eq(fs.post_calls, 0);
	chat_on_join(c, session_id(a->s), 0, 1, 7, "general");
	ck_assert_int_eq(fs.post_calls, 0);	/* history not shown yet */
	chat_on_room_sync(c, 7, fs.watch_gen, 0, NULL, 0);
	ck_assert_int_eq(fs.post_calls, 1);
	ck_assert_int_eq(fs.room_id, 7);
	/* A command waits for the messages before it to commit. */
	say(a, "/leave");
	ck_assert_int_eq(fs.leave_calls, 0);
	chat_on_posted(c, session_id(a->s), 0, 0, 1, 1);
	ck_assert_int_eq(fs.leave_calls, 1);
}
END_TEST

START_TEST(test_many_pending_lines_throttle_input)
{
	struct fconn *a = user("alice", 1);

	say(a, "/rooms");
	for (int i = 0; i < SESSION_PENDING_MAX; i++)
		say(a, "   ");	/* blank: ignored when its turn comes */
	ck_assert(a->throttled);
	chat_on_rooms(c, session_id(a->s), 0, 0, NULL, 0);
	ck_assert(!a->throttled);
}
END_TEST

START_TEST(test_join_leave_notices_skip_subject)
{
	struct fconn *a = user("alice", 1);
	struct fconn *b = user("bob", 2);
	struct chat_event ev = {
		.kind = CHAT_EV_JOIN, .room_id = 7, .uid = 2, .nick = "bob",
	};

	join_room(a, "general", 7, NULL, 0);
	join_room(b, "general", 7, NULL, 0);
	drain(a);
	drain(b);
	chat_on_event(c, &ev);
	ck_assert_str_eq(drain(a), "");	/* held for the pass's notice */
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] bob joined general\n");
	ck_assert_str_eq(drain(b), "");
	ev.kind = CHAT_EV_NICK;
	ev.new_nick = "robert";
	chat_on_event(c, &ev);
	ck_assert_str_eq(drain(a), "[system] bob is now known as robert\n");
	leave(b);
	ck_assert_str_eq(drain(b), "[system] You left general\n");
	ev.kind = CHAT_EV_LEAVE;
	chat_on_event(c, &ev);
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] bob left general\n");
	message_event(7, 1, "alice", "still here?");
	ck_assert_str_eq(drain(b), "");	/* no longer a member */
}
END_TEST

/* A membership event of room (id) for user uid. */
static void room_member_event(int64_t room, enum chat_event_kind kind,
			      int64_t uid, const char *nick)
{
	struct chat_event ev = {
		.kind = kind,
		.room_id = room,
		.uid = uid,
		.nick = nick,
	};

	chat_on_event(c, &ev);
}

/* The same in room 7 (general). */
static void member_event(enum chat_event_kind kind, int64_t uid,
			 const char *nick)
{
	room_member_event(7, kind, uid, nick);
}

/*
 * 50 joins in one pass: one line naming two and counting the others, one
 * system event with the list and the count. Two and three joins are
 * listed; a lone join is as ever.
 */
START_TEST(test_joins_of_one_pass_one_notice)
{
	struct fconn *a = user("alice", 1);
	struct fconn *b = user("bob", 2);
	struct fconn *w = api_member("webby", 3);
	struct fconn *sc = new_fconn();
	struct stream *st = open_stream(w, sc, -1);
	const char *got;

	join_room(a, "general", 7, NULL, 0);
	join_room(b, "general", 7, NULL, 0);
	drain(a);
	drain(b);
	drain_stream(st);
	for (int i = 0; i < 50; i++) {
		char nick[16];

		snprintf(nick, sizeof(nick), "u%02d", i);
		member_event(CHAT_EV_JOIN, 100 + i, nick);
	}
	ck_assert_str_eq(drain(a), "");
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a),
			 "[system] u00, u01 and 48 others joined general\n");
	ck_assert_str_eq(drain(b),
			 "[system] u00, u01 and 48 others joined general\n");
	got = drain_stream(st);
	ck_assert_msg(strstr(got, "\"text\":\"u00, u01 and 48 others joined general\",\"users\":[\"u00\",\"u01\",") &&
			      strstr(got, "\"u49\"],\"count\":50}") &&
			      count_of(got, "event: system") == 1,
		      "%s", got);
	/* Done again: nothing more. */
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "");
	member_event(CHAT_EV_JOIN, 5, "dave");
	member_event(CHAT_EV_JOIN, 4, "carol");
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] dave and carol joined general\n");
	ck_assert_str_eq(drain(b), "[system] dave and carol joined general\n");
	member_event(CHAT_EV_LEAVE, 4, "carol");
	member_event(CHAT_EV_LEAVE, 5, "dave");
	member_event(CHAT_EV_LEAVE, 6, "erin");
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] carol, dave, erin left general\n");
	drain(b);
	member_event(CHAT_EV_JOIN, 2, "bob");
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] bob joined general\n");
	ck_assert_str_eq(drain(b), "");
}
END_TEST

/* The buffer at the head of q (what the next copy starts with). */
static struct outbuf *head_of(struct outq *q)
{
	ck_assert_uint_gt(q->count, 0);
	return q->items[q->head];
}

/*
 * The people a grouped notice names do not see themselves in it: each gets
 * the line (or event) of the others. Everyone else shares one encoding.
 */
START_TEST(test_grouped_notice_subjects_see_the_others)
{
	struct fconn *a = user("alice", 1);
	struct fconn *b = user("bob", 2);
	struct fconn *d = user("dave", 5);
	struct fconn *w = api_member("webby", 3);
	struct fconn *sc = new_fconn(), *sc2 = new_fconn();
	struct stream *st = open_stream(w, sc, -1);
	struct stream *st2 = open_stream(w, sc2, -1);
	struct outbuf *shared;

	join_room(a, "general", 7, NULL, 0);
	join_room(b, "general", 7, NULL, 0);
	join_room(d, "general", 7, NULL, 0);
	drain(a);
	drain(b);
	drain(d);
	drain_stream(st);
	drain_stream(st2);
	/* bob and webby are members here already when their joins are
	 * heard (their own join's outcome came first). */
	member_event(CHAT_EV_JOIN, 2, "bob");
	member_event(CHAT_EV_JOIN, 4, "carol");
	member_event(CHAT_EV_JOIN, 3, "webby");
	chat_on_events_done(c);
	shared = head_of(session_outq(a->s));
	ck_assert_ptr_eq(head_of(session_outq(d->s)), shared);
	ck_assert_ptr_ne(head_of(session_outq(b->s)), shared);
	ck_assert_uint_eq(shared->refs, 2); /* alice's and dave's queues */
	/* webby's two streams share webby's own frame. */
	ck_assert_ptr_eq(head_of(stream_outq(st)), head_of(stream_outq(st2)));
	ck_assert_str_eq(drain(a),
			 "[system] bob, carol, webby joined general\n");
	ck_assert_str_eq(drain(d),
			 "[system] bob, carol, webby joined general\n");
	ck_assert_str_eq(drain(b), "[system] carol and webby joined general\n");
	ck_assert_str_eq(drain_stream(st),
			 "event: system\ndata: {\"room\":\"general\",\"text\":"
			 "\"bob and carol joined general\",\"users\":[\"bob\","
			 "\"carol\"],\"count\":2}\n\n");
	drain_stream(st2);
	/* Of two, each subject sees the other alone, as a lone join. */
	member_event(CHAT_EV_LEAVE, 2, "bob");
	member_event(CHAT_EV_LEAVE, 3, "webby");
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] bob and webby left general\n");
	ck_assert_str_eq(drain(b), "[system] webby left general\n");
	ck_assert_str_eq(drain_stream(st),
			 "event: system\ndata: {\"room\":\"general\","
			 "\"text\":\"bob left general\"}\n\n");
	/* Named twice and no one else: nothing for bob. */
	member_event(CHAT_EV_JOIN, 2, "bob");
	member_event(CHAT_EV_JOIN, 2, "bob");
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] bob and bob joined general\n");
	ck_assert_str_eq(drain(b), "");
}
END_TEST

/* A subject among many: the others' line counts one fewer, and its
 * event lists the first 100 others (never itself) and counts them all. */
START_TEST(test_grouped_notice_subject_among_many)
{
	struct fconn *a = user("alice", 1);
	struct fconn *b = user("bob", 2);
	struct fconn *w = api_member("webby", 3);
	struct fconn *sc = new_fconn(), *bsc = new_fconn();
	struct stream *st = open_stream(w, sc, -1);
	struct stream *bst;
	const char *got;

	join_room(a, "general", 7, NULL, 0);
	join_room(b, "general", 7, NULL, 0);
	drain(a);
	drain(b);
	/* Another API member's stream: webby is not its owner's subject. */
	bst = open_stream(api_member("bobby", 6), bsc, -1);
	drain_stream(st);
	drain_stream(bst);
	for (int i = 0; i < 120; i++) {
		char nick[16];

		if (i == 1)
			member_event(CHAT_EV_JOIN, 3, "webby");
		if (i == 50)
			member_event(CHAT_EV_JOIN, 1, "alice");
		snprintf(nick, sizeof(nick), "u%03d", i);
		member_event(CHAT_EV_JOIN, 100 + i, nick);
	}
	chat_on_events_done(c);
	ck_assert_str_eq(
		drain(b),
		"[system] u000, webby and 120 others joined general\n");
	ck_assert_str_eq(
		drain(a),
		"[system] u000, webby and 119 others joined general\n");
	got = drain_stream(st);
	ck_assert_msg(
		strstr(got,
		       "\"text\":\"u000, u001 and 119 others joined general\",\"users\":[\"u000\",\"u001\",\"u002\",") &&
			strstr(got, ",\"u049\",\"alice\",\"u050\",") &&
			strstr(got, ",\"u098\"],\"count\":121}\n\n") &&
			!strstr(got, "webby") &&
			count_of(got, "event: system") == 1,
		"%s", got);
	got = drain_stream(bst);
	ck_assert_msg(
		strstr(got,
		       "\"text\":\"u000, webby and 120 others joined general\",\"users\":[\"u000\",\"webby\",\"u001\",") &&
			strstr(got, ",\"u097\"],\"count\":122}\n\n") &&
			count_of(got, "event: system") == 1,
		"%s", got);
}
END_TEST

/* A room syncing parks its joins and leaves one by one, as they came, and
 * shows them after its history; its subject does not get its own. */
START_TEST(test_joins_while_syncing_are_parked_alone)
{
	struct fconn *a = user("alice", 1);
	struct fconn *b = user("bob", 2);

	join_room(a, "general", 7, NULL, 0);
	drain(a);
	say(b, "/join general");
	chat_on_join(c, session_id(b->s), 0, 2, 7, "general");
	drain(b);
	/* Another room, syncing: dev. */
	say(a, "/join dev");
	chat_on_join(c, session_id(a->s), 0, 1, 8, "dev");
	member_event(CHAT_EV_JOIN, 4, "carol");
	member_event(CHAT_EV_JOIN, 2, "bob");
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] carol and bob joined general\n");
	ck_assert_str_eq(drain(b), "[system] carol joined general\n");
	room_member_event(8, CHAT_EV_JOIN, 4, "carol");
	room_member_event(8, CHAT_EV_JOIN, 1, "alice");
	room_member_event(8, CHAT_EV_JOIN, 5, "dave");
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "");
	chat_on_room_sync(c, 8, fs.watch_gen, 0, NULL, 0);
	ck_assert_str_eq(drain(a),
			 "[system] You joined dev (0 recent messages)\n"
			 "[system] carol joined dev\n"
			 "[system] dave joined dev\n");
}
END_TEST

/* The last member leaving drops the room's pending notice with the
 * room; members that stay still get theirs. */
START_TEST(test_pending_notice_outlives_a_member_leaving)
{
	struct fconn *a = user("alice", 1);
	struct fconn *w = stored(41, "webby", 5);
	struct fconn *sc = new_fconn();
	struct stream *st;
	int err = 0;

	chat_on_room_sync(c, 7, fs.watch_gen - 1, 0, NULL, 0); /* general */
	chat_on_room_sync(c, 8, fs.watch_gen, 0, NULL, 0);     /* dev */
	join_room(a, "general", 7, NULL, 0);
	drain(a);
	st = chat_stream_open(c, w->s, "general", -1, &fsink, sc, &err);
	ck_assert_ptr_nonnull(st);
	drain_stream(st);
	/* webby left through another instance, with carol, in one pass. */
	member_event(CHAT_EV_LEAVE, 4, "carol");
	member_event(CHAT_EV_LEAVE, 5, "webby");
	ck_assert(sc->closed); /* webby's stream of the room ends */
	chat_stream_closed(c, st);
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] carol and webby left general\n");
	/* dev: webby is its only member here; it leaves with carol. */
	room_member_event(8, CHAT_EV_LEAVE, 4, "carol");
	room_member_event(8, CHAT_EV_LEAVE, 5, "webby");
	chat_on_events_done(c);
	ck_assert_uint_eq(fs.unwatch_calls, 1); /* dev is gone here */
}
END_TEST

/* Nothing overtakes: a message, a rename or the other kind of change
 * shows the joins or leaves heard before it first. */
START_TEST(test_grouped_notices_keep_their_order)
{
	struct fconn *a = user("alice", 1);
	struct chat_event nick = {
		.kind = CHAT_EV_NICK, .room_id = 7, .uid = 9, .nick = "zed",
		.new_nick = "zoe",
	};

	join_room(a, "general", 7, NULL, 0);
	drain(a);
	member_event(CHAT_EV_JOIN, 2, "bob");
	member_event(CHAT_EV_JOIN, 3, "carol");
	message_event(7, 1, "bob", "hi");
	member_event(CHAT_EV_JOIN, 4, "dave");
	member_event(CHAT_EV_LEAVE, 2, "bob");
	member_event(CHAT_EV_LEAVE, 3, "carol");
	chat_on_event(c, &nick);
	member_event(CHAT_EV_LEAVE, 4, "dave");
	chat_on_events_done(c);
	ck_assert_str_eq(drain(a), "[system] bob and carol joined general\n"
				   "[general] bob: hi\n"
				   "[system] dave joined general\n"
				   "[system] bob and carol left general\n"
				   "[system] zed is now known as zoe\n"
				   "[system] dave left general\n");
}
END_TEST

START_TEST(test_last_local_member_leaving_unwatches)
{
	struct fconn *a = user("alice", 1);

	join_room(a, "general", 7, NULL, 0);
	leave(a);
	ck_assert_int_eq(fs.unwatch_calls, 1);
	join_room(a, "general", 7, NULL, 0);
	ck_assert_int_eq(fs.watch_calls, 2);	/* reloaded */
}
END_TEST

START_TEST(test_unused_room_is_freed_and_found_by_name)
{
	struct fconn *a = user("alice", 1);
	struct fconn *w = api_member("webby", 2);	/* in general (7) */
	struct fconn *sc = new_fconn();
	struct stream *st = open_stream(w, sc, -1);
	uint64_t stale;

	join_room(a, "dev", 8, NULL, 0);
	ck_assert(chat_room_known(c, "general"));
	ck_assert(chat_room_known(c, "dev"));
	ck_assert_uint_eq(c->rooms.count, 2);
	/* Its last member gone: dev is freed at once. */
	leave(a);
	ck_assert(!chat_room_known(c, "dev"));
	ck_assert_uint_eq(c->rooms.count, 1);
	/* general's last member left, but its stream is still open. */
	leave(w);
	ck_assert(sc->closed);
	ck_assert_uint_eq(c->rooms.count, 1);
	chat_stream_closed(c, st);
	ck_assert(!chat_room_known(c, "general"));
	ck_assert_uint_eq(c->rooms.count, 0);
	/* Joined again: loaded again (a miss). A sync answered for the
	 * freed room (same id) is not taken for the new one's. */
	say(a, "/join dev");
	chat_on_join(c, session_id(a->s), 0, 1, 8, "dev");
	stale = fs.watch_gen;
	say(a, "/leave");	/* waits for the history */
	chat_session_closed(c, a->s);
	a = user("alicia", 1);
	join_room(a, "dev", 8, NULL, 0);
	ck_assert_uint_ne(fs.watch_gen, stale);
	ck_assert(chat_room_known(c, "dev"));
	ck_assert_uint_eq(chat_get_stats(c)->history_misses, 4);
	message_event(8, 1, "bob", "hi");
	ck_assert(strstr(drain(a), "[dev] bob: hi\n"));
}
END_TEST

START_TEST(test_stale_sync_of_freed_room_is_ignored)
{
	struct fconn *a = user("alice", 1);
	struct chat_msg_row old[] = { { 1, 1, 0, "bob", "old", 3 } };
	uint64_t stale;

	say(a, "/join dev");
	chat_on_join(c, session_id(a->s), 0, 1, 8, "dev");
	stale = fs.watch_gen;
	chat_session_closed(c, a->s);	/* dev freed, its sync in flight */
	a = user("alicia", 1);
	say(a, "/join dev");
	chat_on_join(c, session_id(a->s), 0, 1, 8, "dev");
	drain(a);
	chat_on_room_sync(c, 8, stale, 0, old, 1);
	ck_assert_str_eq(drain(a), "");	/* still waiting for its own */
	chat_on_room_sync(c, 8, fs.watch_gen, 0, NULL, 0);
	ck_assert_str_eq(drain(a),
			 "[system] You joined dev (0 recent messages)\n");
}
END_TEST

START_TEST(test_reconnect_catches_up_after_last_seq)
{
	struct fconn *a = user("alice", 1);
	struct chat_msg_row missed[] = {
		{ 3, 3, 0, "bob", "three", 5 },
		{ 4, 4, 0, "bob", "four", 4 },
	};

	join_room(a, "general", 7, NULL, 0);
	message_event(7, 1, "bob", "one");
	message_event(7, 2, "bob", "two");
	drain(a);
	chat_on_listen_down(c);
	message_event(7, 3, "bob", "three");	/* ignored while stale */
	ck_assert_str_eq(drain(a), "");
	chat_on_listen_up(c);
	ck_assert_int_eq(fs.watch_after, 2);
	message_event(7, 4, "bob", "four");	/* parked */
	message_event(7, 5, "bob", "five");	/* parked */
	chat_on_room_sync(c, 7, fs.watch_gen, 0, missed, 2);
	ck_assert_str_eq(drain(a),
		"[general] bob: three\n[general] bob: four\n[general] bob: five\n");
}
END_TEST

START_TEST(test_rooms_output)
{
	struct fconn *a = user("alice", 1);
	struct chat_room_info info[] = { { "general", 3, 2 }, { "x", 1, 0 } };

	say(a, "/rooms");
	ck_assert_int_eq(fs.rooms_calls, 1);
	chat_on_rooms(c, session_id(a->s), 0, 0, info, 2);
	ck_assert_str_eq(drain(a), "[system] Rooms (2):\n"
				   "[system]   general: 3 members, 2 online\n"
				   "[system]   x: 1 member, 0 online\n");
	say(a, "/rooms");
	chat_on_rooms(c, session_id(a->s), 0, 0, NULL, 0);
	ck_assert_str_eq(drain(a),
		"[system] No rooms yet. Create one with /create <room>\n");
}
END_TEST

/* 120 rooms, as a database with another collation might list them. */
static struct chat_room_info *rooms_120(void)
{
	static char names[120][8];
	static struct chat_room_info info[120];

	for (int i = 0; i < 120; i++) {
		snprintf(names[i], sizeof(names[i]), "r%03d", 119 - i);
		info[i].name = names[i];
		info[i].members = 1;
		info[i].online = 0;
	}
	return info;
}

START_TEST(test_rooms_paginated_by_50)
{
	struct fconn *a = user("alice", 1);
	struct chat_room_info *info = rooms_120();
	char *out;

	say(a, "/rooms");
	chat_on_rooms(c, session_id(a->s), 0, 0, info, 120);
	out = drain(a);
	ck_assert_int_eq(count_of(out, "\n"), 52);
	ck_assert(!strncmp(out, "[system] Rooms 1-50 of 120:\n"
				"[system]   r000: 1 member, 0 online\n"
				"[system]   r001: 1 member, 0 online\n", 84));
	ck_assert(strstr(out, "[system]   r049: 1 member, 0 online\n"
			      "[system] page 1 of 3; /rooms 2 for more\n"));
	ck_assert(!strstr(out, "r050"));
	say(a, "/rooms 2");
	chat_on_rooms(c, session_id(a->s), 0, 0, info, 120);
	out = drain(a);
	ck_assert(!strncmp(out, "[system] Rooms 51-100 of 120:\n"
				"[system]   r050: ", 47));
	ck_assert(strstr(out, "[system] page 2 of 3; /rooms 3 for more\n"));
	say(a, "/rooms 3");
	chat_on_rooms(c, session_id(a->s), 0, 0, info, 120);
	out = drain(a);
	ck_assert_int_eq(count_of(out, "\n"), 22);
	ck_assert(strstr(out, "[system]   r119: 1 member, 0 online\n"
			      "[system] page 3 of 3\n"));
	say(a, "/rooms 4");
	chat_on_rooms(c, session_id(a->s), 0, 0, info, 120);
	ck_assert_str_eq(drain(a),
			 "[system] error: no page 4 (there are 3)\n");
	ck_assert_int_eq(fs.rooms_calls, 4);
	expect_reply(a, "/rooms 0", "[system] error: usage: /rooms [page]\n");
	expect_reply(a, "/rooms two", "[system] error: usage: /rooms [page]\n");
	ck_assert_int_eq(fs.rooms_calls, 4);
	/* One page: as before, no page line. */
	say(a, "/rooms");
	chat_on_rooms(c, session_id(a->s), 0, 0, info + 70, 50);
	out = drain(a);
	ck_assert(!strncmp(out, "[system] Rooms (50):\n"
				"[system]   r000: ", 37));
	ck_assert(!strstr(out, "page"));
}
END_TEST

static struct {
	int calls;
	bool sorted;
	size_t n;
} api_got;

static void fake_api_rooms(void *arg, uint64_t token,
			   int err, const struct chat_room_info *rooms,
			   size_t n)
{
	(void)arg;
	(void)token;
	(void)err;
	api_got.calls++;
	api_got.n = n;
	api_got.sorted = true;
	for (size_t i = 1; i < n; i++)
		if (strcmp(rooms[i - 1].name, rooms[i].name) >= 0)
			api_got.sorted = false;
}

START_TEST(test_api_rooms_sorted_and_sliced_after_name)
{
	static const struct chat_api_ops api = { .rooms = fake_api_rooms };
	struct chat_room_info *info = rooms_120();
	size_t first, n;

	chat_set_api(c, &api, NULL);
	ck_assert_int_eq(chat_list_rooms(c, 9), 0);
	chat_on_rooms(c, 0, 9, 0, info, 120);
	ck_assert_int_eq(api_got.calls, 1);
	ck_assert_uint_eq(api_got.n, 120);
	ck_assert(api_got.sorted);
	/* What GET /api/rooms?limit=&after= needs, on a sorted list. */
	qsort(info, 120, sizeof(*info), chat_room_info_cmp);
	first = chat_rooms_after(info, 120, NULL, 0, &n);
	ck_assert_uint_eq(first, 0);
	ck_assert_uint_eq(n, CHAT_ROOMS_PAGE);
	first = chat_rooms_after(info, 120, "", 10, &n);
	ck_assert_uint_eq(first, 0);
	ck_assert_uint_eq(n, 10);
	first = chat_rooms_after(info, 120, "r009", 10, &n);
	ck_assert_str_eq(info[first].name, "r010");
	ck_assert_uint_eq(n, 10);
	/* A name that is not (or no longer) there: the rooms after it. */
	first = chat_rooms_after(info, 120, "r0095", 3, &n);
	ck_assert_str_eq(info[first].name, "r010");
	first = chat_rooms_after(info, 120, "r110", 50, &n);
	ck_assert_str_eq(info[first].name, "r111");
	ck_assert_uint_eq(n, 9);
	first = chat_rooms_after(info, 120, "r119", 50, &n);
	ck_assert_uint_eq(first, 120);
	ck_assert_uint_eq(n, 0);
	first = chat_rooms_after(info, 120, NULL, 100000, &n);
	ck_assert_uint_eq(n, CHAT_ROOMS_LIMIT_MAX < 120 ?
			     CHAT_ROOMS_LIMIT_MAX : 120);
	first = chat_rooms_after(NULL, 0, "x", 5, &n);
	ck_assert_uint_eq(first, 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_list_shows_sessions_and_rooms)
{
	struct fconn *a = user("alice", 1);
	struct chat_presence rows[] = {
		{ 0, "alice", 1, "general" }, { 0, "bob", 2, NULL },
	};

	say(a, "/list");
	ck_assert_int_eq(fs.list_calls, 1);
	chat_on_list(c, session_id(a->s), 0, rows, 2);
	ck_assert_str_eq(drain(a), "[system] Online users (2):\n"
				   "[system]   alice (in general)\n"
				   "[system]   bob (no room)\n");
}
END_TEST

START_TEST(test_presence_registered_and_dropped)
{
	struct fconn *a = open_conn();
	size_t n;
	struct chat_presence *p;

	ck_assert_int_eq(fs.presence_adds, 1);
	p = chat_presence_snapshot(c, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(p[0].nick, session_nick(a->s));
	free(p);
	chat_session_closed(c, a->s);
	ck_assert_int_eq(fs.presence_dels, 1);
}
END_TEST

START_TEST(test_guest_name_clash_elsewhere_renames)
{
	struct fconn *a = open_conn();
	char first[64];

	drain(a);
	snprintf(first, sizeof(first), "%s", session_nick(a->s));
	chat_on_presence(c, session_id(a->s), BD_ETAKEN);
	ck_assert_str_ne(session_nick(a->s), first);
	ck_assert_int_eq(fs.presence_adds, 2);
	ck_assert(strstr(drain(a), "[system] You are now guest-"));
}
END_TEST

START_TEST(test_quit_says_goodbye_and_closes_flushed)
{
	struct fconn *a = user("alice", 1);

	expect_reply(a, "/quit", "[system] Goodbye\n");
	ck_assert(a->closed);
	ck_assert(a->flushed);
	say(a, "/help");	/* ignored once closing */
	ck_assert_str_eq(drain(a), "");
}
END_TEST

START_TEST(test_slow_consumer_is_closed_others_unaffected)
{
	struct fconn *a = user("alice", 1);
	struct fconn *b = user("bob", 2);
	char text[200];
	int i;

	join_room(a, "general", 7, NULL, 0);
	join_room(b, "general", 7, NULL, 0);
	drain(a);
	memset(text, 'z', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (i = 1; i <= 40; i++) {	/* 40 * ~215 bytes > 4096 */
		message_event(7, i, "bob", text);
		drain(a);		/* a keeps reading */
	}
	ck_assert(b->closed);
	ck_assert(!b->flushed);
	ck_assert(!a->closed);
	ck_assert_uint_eq(chat_get_stats(c)->slow_consumers, 1);
	chat_session_closed(c, b->s);
	message_event(7, i, "bob", "after");
	ck_assert_str_eq(drain(a), "[general] bob: after\n");
}
END_TEST

START_TEST(test_shutdown_notifies_everyone)
{
	struct fconn *a = user("alice", 1);
	struct fconn *b = user("bob", 2);

	chat_shutdown(c);
	ck_assert_str_eq(drain(a), "[system] server restarting, please reconnect\n");
	ck_assert_str_eq(drain(b), "[system] server restarting, please reconnect\n");
	ck_assert(a->closed && a->flushed && b->closed);
}
END_TEST

START_TEST(test_outcome_for_closed_session_is_ignored)
{
	struct fconn *a = user("alice", 1);
	uint64_t sid = session_id(a->s);

	say(a, "/join general");
	chat_session_closed(c, a->s);
	ck_assert_uint_eq(chat_session_count(c), 0);
	/* The join's outcome arrives for nobody: no room made or loaded. */
	chat_on_join(c, sid, 0, 1, 7, "general");
	ck_assert(!chat_room_known(c, "general"));
	ck_assert_uint_eq(c->rooms.count, 0);
	ck_assert_int_eq(fs.watch_calls, 0);
	/* Nor does a late post outcome bring anything back. */
	chat_on_posted(c, sid, 0, 0, 1, 1);
	ck_assert_uint_eq(chat_session_count(c), 0);
	ck_assert_uint_eq(c->rooms.count, 0);
	ck_assert_int_eq(fs.watch_calls, 0);
}
END_TEST

START_TEST(test_ring_keeps_newest)
{
	struct ring r;

	ring_init(&r, 2);
	for (int i = 1; i <= 5; i++) {
		struct msg *m = msg_new("g", 1, i, i, 0, "n", "x", 1);

		ring_push(&r, m);
		msg_unref(m);
	}
	ck_assert_uint_eq(r.count, 2);
	ck_assert_int_eq(ring_at(&r, 0)->seq, 4);
	ck_assert_int_eq(ring_last(&r)->seq, 5);
	ring_fini(&r);
}
END_TEST

START_TEST(test_outq_partial_writes_and_limit)
{
	struct outq q;
	struct outbuf *a = outbuf_new("hello ", 6), *b = outbuf_new("world", 5);
	char buf[16];

	outq_init(&q, 12);
	ck_assert_int_eq(outq_push(&q, a), 0);
	ck_assert_int_eq(outq_push(&q, b), 0);
	ck_assert_int_eq(outq_push(&q, b), BD_EFULL);
	ck_assert_uint_eq(outq_copy(&q, buf, 4), 4);
	outq_consume(&q, 4);
	ck_assert_uint_eq(outq_copy(&q, buf, sizeof(buf)), 7);
	ck_assert(!memcmp(buf, "o world", 7));
	outq_consume(&q, 7);
	ck_assert(outq_empty(&q));
	outbuf_unref(a);
	outbuf_unref(b);
	outq_fini(&q);
}
END_TEST

START_TEST(test_name_rules)
{
	ck_assert(name_is_valid_nick("Alice_01-x"));
	ck_assert(!name_is_valid_nick(""));
	ck_assert(!name_is_valid_nick("al ice"));
	ck_assert(!name_is_valid_nick("\xc3\xa9"));
	ck_assert(name_is_valid_room("general-2_x"));
	ck_assert(!name_is_valid_room("General"));
	ck_assert(!name_is_valid_room("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	ck_assert(name_equal_nocase("ALICE", "alice"));
	ck_assert(!name_equal_nocase("alice", "alicex"));
}
END_TEST


/* A fake connection for a stream, freed by teardown. */
static struct fconn *new_fconn(void)
{
	struct fconn *fc = calloc(1, sizeof(*fc));

	conns[nconns++] = fc;
	return fc;
}

/* An API session that is a member of "general" (id 7, live). */
static struct fconn *api_member(const char *nick, int64_t uid)
{
	struct fconn *fc = calloc(1, sizeof(*fc));
	char line[64];

	fc->s = chat_session_open(c, SESSION_API, &fsink, fc);
	conns[nconns++] = fc;
	snprintf(line, sizeof(line), "/nick %s", nick);
	say(fc, line);
	chat_on_nick(c, session_id(fc->s), 0, uid, nick, NULL, 0);
	join_room(fc, "general", 7, NULL, 0);
	drain(fc);
	return fc;
}

static struct stream *open_stream(struct fconn *owner, struct fconn *sc,
				  int64_t last)
{
	int err = 0;
	struct stream *st = chat_stream_open(c, owner->s, "general", last,
					     &fsink, sc, &err);

	ck_assert_ptr_nonnull(st);
	return st;
}

static char *drain_stream(struct stream *st)
{
	static char buf[65536];
	struct outq *q = stream_outq(st);
	size_t n = outq_copy(q, buf, sizeof(buf) - 1);

	outq_consume(q, n);
	buf[n] = '\0';
	return buf;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

START_TEST(test_api_session_gets_no_welcome_or_lines)
{
	struct fconn *a = api_member("webby", 1);

	message_event(7, 1, "bob", "hi");
	ck_assert_str_eq(drain(a), "");	/* room traffic goes to streams */
}
END_TEST

/* Fails unless every one of parts (NULL-terminated) occurs in out, each
 * after the one before. */
static void assert_in_order(const char *out, const char *const *parts)
{
	const char *at = out;

	for (size_t i = 0; parts[i]; i++) {
		const char *p = strstr(at, parts[i]);

		ck_assert_msg(p, "\"%s\" missing or out of order in:\n%s",
			      parts[i], out);
		at = p + strlen(parts[i]);
	}
}

START_TEST(test_stream_history_then_live)
{
	struct fconn *a = api_member("webby", 1);
	struct fconn *sc = new_fconn();
	struct stream *st;
	char *out;

	message_event(7, 1, "bob", "one");
	message_event(7, 2, "bob", "two \"q\"");
	st = open_stream(a, sc, -1);
	out = drain_stream(st);
	ck_assert_int_eq(count_of(out, "event: message\n"), 2);
	ck_assert(strstr(out, "id: 1\nevent: message\ndata: {\"id\":1,\"seq\":1,\"room\":\"general\",\"user\":\"bob\",\"content\":\"one\""));
	ck_assert(strstr(out, "\"content\":\"two \\\"q\\\"\""));
	message_event(7, 3, "bob", "three");
	out = drain_stream(st);
	ck_assert(strstr(out, "id: 3\n"));
	ck_assert_int_eq(count_of(out, "event: message\n"), 1);
}
END_TEST

START_TEST(test_stream_not_member_refused)
{
	struct fconn *b = user("bob", 2);
	struct fconn *sc = new_fconn();
	int err = 0;

	b->s->kind = SESSION_API;
	ck_assert_ptr_null(chat_stream_open(c, b->s, "general", -1, &fsink,
					    sc, &err));
	ck_assert_int_eq(err, BD_EPERM);
}
END_TEST

START_TEST(test_stream_resume_within_ring)
{
	struct fconn *a = api_member("webby", 1);
	struct fconn *sc = new_fconn();
	struct stream *st;
	char *out;

	for (int i = 1; i <= 3; i++)
		message_event(7, i, "bob", "x");
	st = open_stream(a, sc, 1);
	out = drain_stream(st);
	ck_assert(!strstr(out, "id: 1\n"));
	ck_assert(strstr(out, "id: 2\n") && strstr(out, "id: 3\n"));
	ck_assert_int_eq(fs.replay_calls, 0);
}
END_TEST

START_TEST(test_stream_resume_from_database_parks_live)
{
	struct fconn *a = api_member("webby", 1);
	struct fconn *sc = new_fconn();
	struct chat_msg_row rows[] = {
		{ 3, 3, 0, "bob", "three", 5 },
		{ 4, 4, 0, "bob", "four", 4 },
		{ 5, 5, 0, "bob", "five", 4 },
	};
	struct stream *st;
	char *out;

	for (int i = 1; i <= 6; i++)	/* ring (3) keeps 4..6 */
		message_event(7, i, "bob", "x");
	st = open_stream(a, sc, 2);
	ck_assert_int_eq(fs.replay_calls, 1);
	ck_assert_int_eq(fs.replay_after, 2);
	message_event(7, 7, "bob", "seven");	/* parked */
	ck_assert_str_eq(drain_stream(st), "");
	/* The database saw up to 5; 6 was live before, 7 during. */
	chat_on_replay(c, fs.token, 0, rows, 3);
	out = drain_stream(st);
	ck_assert_int_eq(count_of(out, "event: message\n"), 5);
	assert_in_order(out, (const char *const[]){ "id: 3\n", "id: 4\n",
						    "id: 5\n", "id: 6\n",
						    "id: 7\n", NULL });
}
END_TEST

START_TEST(test_stream_reset_when_history_deleted)
{
	struct fconn *a = api_member("webby", 1);
	struct fconn *sc = new_fconn();
	struct chat_msg_row rows[] = { { 5, 5, 0, "bob", "five", 4 } };
	struct stream *st;
	char *out;

	for (int i = 1; i <= 6; i++)
		message_event(7, i, "bob", "x");
	st = open_stream(a, sc, 1);
	/* 2..4 are gone from the table, but 4 is still in the ring (4..6)
	 * and is shown: 2 and 3 are what the client misses. */
	chat_on_replay(c, fs.token, 0, rows, 1);
	out = drain_stream(st);
	ck_assert_msg(!strncmp(out, "event: reset\ndata: {\"reason\":\"history truncated\",\"missed\":2}", 60), "got %s", out);
	ck_assert_int_eq(count_of(out, "event: message\n"), 3);	/* ring */
	ck_assert(strstr(out, "id: 4\n") && strstr(out, "id: 6\n"));
}
END_TEST

START_TEST(test_stream_closed_when_session_leaves)
{
	struct fconn *a = api_member("webby", 1);
	struct fconn *sc = new_fconn();
	struct stream *st = open_stream(a, sc, -1);

	leave(a);
	ck_assert(sc->closed);
	chat_stream_closed(c, st);
	ck_assert_uint_eq(chat_stream_count(c), 0);
}
END_TEST

START_TEST(test_stream_notices_and_heartbeat)
{
	struct fconn *a = api_member("webby", 1);
	struct fconn *sc = new_fconn();
	struct stream *st = open_stream(a, sc, -1);
	struct chat_event ev = {
		.kind = CHAT_EV_JOIN, .room_id = 7, .uid = 2, .nick = "bob",
	};

	drain_stream(st);
	chat_on_event(c, &ev);
	chat_on_events_done(c);
	ck_assert_str_eq(drain_stream(st),
		"event: system\ndata: {\"room\":\"general\",\"text\":\"bob joined general\"}\n\n");
	chat_heartbeat(c);
	ck_assert_str_eq(drain_stream(st), ": ping\n\n");
}
END_TEST

START_TEST(test_rename_shown_once_across_rooms)
{
	struct fconn *b = user("bob", 2);
	struct fconn *a = api_member("webby", 3);
	struct fconn *sc = new_fconn();
	struct stream *st = open_stream(a, sc, -1);
	struct chat_event ev = {
		.kind = CHAT_EV_NICK, .uid = 1, .nick = "alice",
		.new_nick = "alicia", .rename_id = 99,
	};

	join_room(b, "general", 7, NULL, 0);
	join_room(b, "dev", 8, NULL, 0);
	drain(b);
	drain_stream(st);
	ev.room_id = 7;
	chat_on_event(c, &ev);
	ev.room_id = 8;
	chat_on_event(c, &ev);
	ck_assert_str_eq(drain(b), "[system] alice is now known as alicia\n");
	/* The stream of general gets general's notice. */
	ck_assert_int_eq(count_of(drain_stream(st), "is now known as"), 1);
	/* Another rename is shown again, also with the same text. */
	ev.rename_id = 100;
	chat_on_event(c, &ev);
	ck_assert_str_eq(drain(b), "[system] alice is now known as alicia\n");
	/* Without an id (from before migration 008): once per room. */
	ev.rename_id = 0;
	ev.room_id = 7;
	chat_on_event(c, &ev);
	ev.room_id = 8;
	chat_on_event(c, &ev);
	ck_assert_int_eq(count_of(drain(b), "is now known as"), 2);
}
END_TEST

/* Stored (database) API sessions */

static const struct chat_room_ref general_and_dev[] = {
	{ 7, "general" }, { 8, "dev" },
};

/* This instance's copy of stored session api_id, synced as the database
 * has it: member of general (current) and dev. */
static struct fconn *stored(int64_t api_id, const char *nick, int64_t uid)
{
	struct fconn *fc = new_fconn();

	fc->s = chat_session_open_api(c, &fsink, fc, api_id);
	chat_session_sync(c, fc->s, uid, nick, "general", general_and_dev, 2);
	return fc;
}

START_TEST(test_stored_session_registers_no_presence)
{
	struct fconn *a = stored(41, "webby", 5);
	size_t n;
	struct chat_presence *p;

	ck_assert_int_eq(fs.presence_adds, 0);
	ck_assert_int_eq(session_api_id(a->s), 41);
	p = chat_presence_snapshot(c, &n);
	ck_assert_uint_eq(n, 0);	/* the database keeps its row */
	free(p);
	/* Commands name the stored session to the store. */
	say(a, "/nick webster");
	ck_assert_int_eq(fs.nick_calls, 1);
	ck_assert_int_eq(fs.api_id, 41);
	chat_on_nick(c, session_id(a->s), 0, 5, "webster", NULL, 0);
	say(a, "/leave");
	ck_assert_int_eq(fs.leave_calls, 1);
	ck_assert_int_eq(fs.api_id, 41);
	ck_assert_int_eq(fs.room_id, 7);	/* its current room */
	chat_on_leave(c, session_id(a->s), 0);
	chat_session_closed(c, a->s);
	a->s = NULL;
	ck_assert_int_eq(fs.presence_dels, 0);
}
END_TEST

START_TEST(test_stored_session_sync_follows_database)
{
	struct fconn *a = stored(41, "webby", 5);
	struct fconn *sc = new_fconn();
	struct stream *st;
	int err = 0;

	ck_assert_int_eq(fs.watch_calls, 2);	/* general and dev */
	chat_on_room_sync(c, 8, fs.watch_gen, 0, NULL, 0);	/* dev's */
	st = chat_stream_open(c, a->s, "dev", -1, &fsink, sc, &err);
	ck_assert_ptr_nonnull(st);
	/* Another instance did /nick and left dev. */
	chat_session_sync(c, a->s, 5, "webster", NULL, general_and_dev, 1);
	ck_assert_str_eq(session_nick(a->s), "webster");
	ck_assert(sc->closed);
	chat_stream_closed(c, st);
	ck_assert_ptr_null(chat_stream_open(c, a->s, "dev", -1, &fsink, sc,
					    &err));
	ck_assert_int_eq(err, BD_EPERM);
	ck_assert_int_eq(fs.unwatch_calls, 1);	/* its last member here */
	/* No current room any more: /leave needs one. */
	say(a, "/leave");
	ck_assert_int_eq(fs.leave_calls, 0);
}
END_TEST

#define MANY 2000

static struct chat_room_ref many[MANY + 500];
static char many_names[MANY + 500][16];

/* Rooms 1000..(1000 + n) named r<i>, from index first. */
static const struct chat_room_ref *many_rooms(size_t first, size_t n)
{
	for (size_t i = first; i < first + n; i++) {
		snprintf(many_names[i], sizeof(many_names[i]), "r%zu", i);
		many[i].id = 1000 + (int64_t)i;
		many[i].name = many_names[i];
	}
	return many + first;
}

static bool in_room(struct fconn *fc, const char *name)
{
	struct room *r = room_find(c, name);

	return r && session_in_room(fc->s, r);
}

START_TEST(test_stored_session_sync_skipped_when_unchanged)
{
	struct fconn *a = new_fconn();
	const struct chat_room_ref *v = many_rooms(0, MANY);

	a->s = chat_session_open_api(c, &fsink, a, 41);
	chat_session_sync(c, a->s, 5, "webby", "r7", v, MANY);
	ck_assert_int_eq(fs.watch_calls, MANY);
	ck_assert_uint_eq(chat_get_stats(c)->syncs_skipped, 0);
	/* The same state again (each request of the session): nothing to
	 * do, whatever the order the database listed the rooms in. */
	chat_session_sync(c, a->s, 5, "webby", "r7", v, MANY);
	ck_assert_uint_eq(chat_get_stats(c)->syncs_skipped, 1);
	chat_session_sync(c, a->s, 5, "webby", "r7", v + 1, MANY - 1);
	ck_assert_uint_eq(chat_get_stats(c)->syncs_skipped, 1);
	ck_assert(!in_room(a, "r0"));
	chat_session_sync(c, a->s, 5, "webby", "r7", v, MANY);
	ck_assert(in_room(a, "r0"));
	/* Each of uid, nickname and current room counts. */
	chat_session_sync(c, a->s, 6, "webby", "r7", v, MANY);
	chat_session_sync(c, a->s, 6, "webster", "r7", v, MANY);
	chat_session_sync(c, a->s, 6, "webster", "r8", v, MANY);
	chat_session_sync(c, a->s, 6, "webster", NULL, v, MANY);
	ck_assert_uint_eq(chat_get_stats(c)->syncs_skipped, 1);
	ck_assert_int_eq(session_uid(a->s), 6);
	ck_assert_str_eq(session_nick(a->s), "webster");
	/* A change made here (a /leave through this instance) is not
	 * hidden by the last sync having said the same. */
	chat_session_sync(c, a->s, 6, "webster", "r7", v, MANY);
	say(a, "/leave");
	ck_assert_int_eq(fs.room_id, 1007);
	chat_on_leave(c, session_id(a->s), 0);
	ck_assert(!in_room(a, "r7"));
	chat_session_sync(c, a->s, 6, "webster", "r7", v, MANY);
	ck_assert(in_room(a, "r7"));
	ck_assert_uint_eq(chat_get_stats(c)->syncs_skipped, 1);
}
END_TEST

/* Memberships unchanged (the database's version says so): only user,
 * nickname and current room are applied, and the rooms stay. */
START_TEST(test_stored_session_sync_head_keeps_rooms)
{
	struct fconn *a = new_fconn();
	const struct chat_room_ref *v = many_rooms(0, MANY);

	a->s = chat_session_open_api(c, &fsink, a, 42);
	chat_session_sync(c, a->s, 5, "webby", "r7", v, MANY);
	chat_session_sync_head(c, a->s, 5, "webby", "r7");
	ck_assert_uint_eq(chat_get_stats(c)->syncs_skipped, 1);
	chat_session_sync_head(c, a->s, 6, "webster", "r8");
	ck_assert_uint_eq(chat_get_stats(c)->syncs_skipped, 1);
	ck_assert_int_eq(session_uid(a->s), 6);
	ck_assert_str_eq(session_nick(a->s), "webster");
	ck_assert(in_room(a, "r0") && in_room(a, "r7"));
	ck_assert_int_eq(fs.watch_calls, MANY);
	/* A current room it is not in is no current room. */
	chat_session_sync_head(c, a->s, 6, "webster", "elsewhere");
	say(a, "hello");
	ck_assert_int_eq(fs.post_calls, 0);
}
END_TEST

START_TEST(test_stored_session_sync_diffs_many_rooms)
{
	struct fconn *a = new_fconn();
	struct chat_room_ref next[MANY];
	size_t n = 0;

	many_rooms(0, MANY + 500);
	a->s = chat_session_open_api(c, &fsink, a, 41);
	chat_session_sync(c, a->s, 5, "webby", "r1", many, MANY);
	/* Left every even room elsewhere, joined 500 new ones. */
	for (size_t i = 1; i < MANY + 500; i++)
		if (i >= MANY || i % 2)
			next[n++] = many[i];
	ck_assert_uint_eq(n, MANY / 2 + 500);
	chat_session_sync(c, a->s, 5, "webby", "r2001", next, n);
	ck_assert_int_eq(fs.watch_calls, MANY + 500);
	ck_assert_int_eq(fs.unwatch_calls, MANY / 2);
	ck_assert_uint_eq(a->s->rooms.count, n);
	for (size_t i = 0; i < MANY + 500; i++)
		ck_assert_msg(in_room(a, many_names[i]) ==
			      (i >= MANY || i % 2), "%s", many_names[i]);
	/* The even rooms had no other member here: freed. */
	ck_assert_uint_eq(c->rooms.count, n);
	ck_assert_str_eq(a->s->current->name, "r2001");
}
END_TEST

START_TEST(test_stored_session_follows_leave_elsewhere)
{
	struct fconn *a = stored(41, "webby", 5);
	struct fconn *b = user("bob", 5);	/* same user id, TCP */
	struct fconn *sc = new_fconn();
	struct stream *st;
	struct chat_event leave = {
		.kind = CHAT_EV_LEAVE, .room_id = 7, .uid = 5, .nick = "webby",
	};
	struct chat_event nick = {
		.kind = CHAT_EV_NICK, .room_id = 7, .uid = 5, .nick = "webby",
		.new_nick = "webster",
	};
	int err = 0;

	chat_on_room_sync(c, 7, fs.watch_gen - 1, 0, NULL, 0);	/* general's */
	join_room(b, "general", 7, NULL, 0);
	st = chat_stream_open(c, a->s, "general", -1, &fsink, sc, &err);
	ck_assert_ptr_nonnull(st);
	chat_on_event(c, &nick);
	ck_assert_str_eq(session_nick(a->s), "webster");
	ck_assert(!sc->closed);
	chat_on_event(c, &leave);
	ck_assert(sc->closed);	/* its stream of the room ends */
	chat_stream_closed(c, st);
	/* The TCP session left nothing through another instance. */
	drain(b);
	message_event(7, 1, "carol", "still here");
	ck_assert_str_eq(drain(b), "[general] carol: still here\n");
}
END_TEST

START_TEST(test_stored_session_nick_is_not_checked_locally)
{
	struct fconn *a = stored(41, "webby", 5);
	struct fconn *b = open_conn();

	(void)a;
	drain(b);
	/* A copy here may be stale: the database decides. */
	say(b, "/nick webby");
	ck_assert_int_eq(fs.nick_calls, 1);
	ck_assert_str_eq(drain(b), "");
}
END_TEST

START_TEST(test_api_post_checks_membership_and_text)
{
	struct fconn *a = api_member("webby", 1);

	ck_assert_int_eq(chat_session_post(c, a->s, "other", "hi", 2, 9),
			 BD_EPERM);
	ck_assert_int_eq(chat_session_post(c, a->s, "general", "\xff", 1, 9),
			 BD_EUTF8);
	ck_assert_int_eq(chat_session_post(c, a->s, "general", " \x01", 2, 9),
			 BD_EINVAL);
	ck_assert_int_eq(chat_session_post(c, a->s, "general",
		"this is longer than twenty bytes", 32, 9), BD_ETOOLONG);
	ck_assert_int_eq(chat_session_post(c, a->s, "general", "ok", 2, 9), 0);
	ck_assert_uint_eq(fs.token, 9);
	ck_assert_str_eq(fs.content, "ok");
}
END_TEST

/* A join waits for its room's history; the session leaves the room (its
 * nickname went to another session) before the sync answers: the join
 * ends at once and the input queued behind it runs, rather than waiting
 * forever for a room that is gone. */
START_TEST(test_join_waiting_for_history_ends_when_removed)
{
	struct fconn *a = user("alice", 1);
	uint64_t gen;
	char *out;

	say(a, "/join general");
	chat_on_join(c, session_id(a->s), 0, 1, 7, "general");
	ck_assert_int_eq(fs.watch_calls, 1);	/* syncing: the join waits */
	gen = fs.watch_gen;
	say(a, "/help");			/* queued behind the join */
	ck_assert(!strstr(drain(a), "Commands:"));
	chat_on_nick_lost(c, session_id(a->s));
	out = drain(a);
	ck_assert_msg(strstr(out, "[system] You joined general (no history: no longer a member)\n"),
		      "got: %s", out);
	ck_assert(strstr(out, "another session took the nickname alice"));
	ck_assert(strstr(out, "[system] Commands:\n"));
	ck_assert(!chat_room_known(c, "general"));
	/* The freed room's sync answers late: ignored. */
	chat_on_room_sync(c, 7, gen, 0, NULL, 0);
	ck_assert_str_eq(drain(a), "");
}
END_TEST

int main(void)
{
	const struct tmain_case cases[] = {
		{ "welcome", test_welcome_assigns_guest_nick },
		{ "cmd_table", test_command_table_is_sane },
		{ "help", test_help_lists_every_command },
		{ "unknown_usage", test_unknown_command_and_usage_errors },
		{ "long_command",
		  test_command_with_more_than_8_words_gets_usage },
		{ "member_list_60", test_member_list_of_60_rooms_is_whole },
		{ "nick_rules", test_nick_validation_and_local_uniqueness },
		{ "nick_race", test_nick_taken_in_database_race },
		{ "nick_restore", test_nick_restores_memberships },
		{ "create", test_create_exists_and_invalid },
		{ "reserved_room", test_reserved_room_name_refused },
		{ "join_unknown", test_join_unknown_room },
		{ "max_per_user", test_join_beyond_max_rooms_per_user_refused },
		{ "max_rooms", test_create_beyond_max_rooms_refused_by_store },
		{ "join_history", test_join_shows_last_history_oldest_first },
		{ "join_ring_hit", test_second_join_is_served_from_ring },
		{ "join_removed_waiting",
		  test_join_waiting_for_history_ends_when_removed },
		{ "fanout_order",
		  test_messages_reach_every_member_once_in_order },
		{ "sync_parking", test_events_during_sync_follow_history },
		{ "post", test_plain_line_posts_to_current_room },
		{ "bad_input", test_bad_input_is_rejected },
		{ "rate_limits", test_rate_limits },
		{ "create_rate_per_address", test_create_rate_per_address },
		{ "unknown_command_reply_never_cuts_a_character",
		  test_unknown_command_reply_never_cuts_a_character },
		{ "db_down", test_database_down_rejects_message },
		{ "db_busy", test_busy_store_refuses_command_and_message },
		{ "session_wanted", test_session_wanted_until_closing_or_gone },
		{ "api_wanted", test_api_wanted_asks_the_hook },
		{ "ordering", test_lines_wait_for_running_command },
		{ "throttle", test_many_pending_lines_throttle_input },
		{ "notices", test_join_leave_notices_skip_subject },
		{ "grouped_notices", test_joins_of_one_pass_one_notice },
		{ "grouped_order", test_grouped_notices_keep_their_order },
		{ "grouped_subjects",
		  test_grouped_notice_subjects_see_the_others },
		{ "grouped_subject_many",
		  test_grouped_notice_subject_among_many },
		{ "grouped_syncing",
		  test_joins_while_syncing_are_parked_alone },
		{ "grouped_member_leaves",
		  test_pending_notice_outlives_a_member_leaving },
		{ "unwatch", test_last_local_member_leaving_unwatches },
		{ "room_freed", test_unused_room_is_freed_and_found_by_name },
		{ "stale_sync", test_stale_sync_of_freed_room_is_ignored },
		{ "catch_up", test_reconnect_catches_up_after_last_seq },
		{ "rooms", test_rooms_output },
		{ "rooms_pages", test_rooms_paginated_by_50 },
		{ "rooms_after", test_api_rooms_sorted_and_sliced_after_name },
		{ "list", test_list_shows_sessions_and_rooms },
		{ "presence", test_presence_registered_and_dropped },
		{ "guest_clash", test_guest_name_clash_elsewhere_renames },
		{ "quit", test_quit_says_goodbye_and_closes_flushed },
		{ "slow_consumer",
		  test_slow_consumer_is_closed_others_unaffected },
		{ "shutdown", test_shutdown_notifies_everyone },
		{ "closed_session",
		  test_outcome_for_closed_session_is_ignored },
		{ "ring", test_ring_keeps_newest },
		{ "outq", test_outq_partial_writes_and_limit },
		{ "names", test_name_rules },
		{ "api_no_lines", test_api_session_gets_no_welcome_or_lines },
		{ "stream_history", test_stream_history_then_live },
		{ "stream_not_member", test_stream_not_member_refused },
		{ "stream_resume_ring", test_stream_resume_within_ring },
		{ "stream_resume_db",
		  test_stream_resume_from_database_parks_live },
		{ "stream_reset", test_stream_reset_when_history_deleted },
		{ "stream_leave", test_stream_closed_when_session_leaves },
		{ "stream_notices", test_stream_notices_and_heartbeat },
		{ "api_post", test_api_post_checks_membership_and_text },
		{ "rename_once", test_rename_shown_once_across_rooms },
		{ "stored_presence",
		  test_stored_session_registers_no_presence },
		{ "stored_sync", test_stored_session_sync_follows_database },
		{ "stored_leave", test_stored_session_follows_leave_elsewhere },
		{ "sync_skipped",
		  test_stored_session_sync_skipped_when_unchanged },
		{ "sync_head", test_stored_session_sync_head_keeps_rooms },
		{ "sync_many", test_stored_session_sync_diffs_many_rooms },
		{ "stored_nick",
		  test_stored_session_nick_is_not_checked_locally },
	};

	return tmain_main("core", cases, TMAIN_N(cases), setup, teardown);
}
