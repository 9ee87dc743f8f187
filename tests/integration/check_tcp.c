/*
 * The TCP line protocol, command by command, against the real server on a
 * fresh database (tests/helpers: tfix, tcl). To show that something did
 * NOT arrive, a later request on the same connection must be answered
 * first.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers/tchat.h"
#include "../helpers/tcl.h"
#include "../helpers/tdb.h"
#include "../helpers/tfix.h"
#include "../helpers/trun.h"

#define PORT tfix_tcp_port()
#define TIMEOUT 30 /* seconds per test */

#define NOT_IN_ROOM \
	"[system] error: you are not in a room; /join <room> or /create <room> first"

static const char *const commands[] = {
	"create", "help", "join", "leave", "list", "nick", "quit", "rooms",
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

START_TEST(test_welcome_lines)
{
	struct tcl *a = tcl_guest(PORT, "a"), *b = tcl_guest(PORT, "b");

	ck_assert_msg(strcmp(a->nick, b->nick),
		      "two sessions got the same guest nick %s", a->nick);
	/* Nothing else came after the welcome: /list answers next. */
	expect_reply(a, "/list", "[system] Online users (2):");
}
END_TEST

START_TEST(test_help_lists_all_commands)
{
	struct tcl *a = tcl_guest(PORT, "a");

	expect_reply(a, "/help", "[system] Commands:");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char pre[64];
		const char *dash;
		size_t n;

		ck_assert_int_eq(tcl_read(a, trun_ms(T_WAIT)), TCL_LINE);
		n = (size_t)snprintf(pre, sizeof(pre), "[system] /%s",
				     commands[i]);
		ck_assert_msg(!strncmp(a->line, pre, n) && (a->line[n] == ' '),
			      "help line %zu: expected \"%s ...\", got \"%s\"",
			      i + 1, pre, a->line);
		dash = strstr(a->line, " - ");
		ck_assert_msg(dash && dash[3],
			      "help line without \" - description\": \"%s\"",
			      a->line);
	}
	/* The contract spells this one out. */
	expect_reply(a, "/help", "[system] Commands:");
	expect_next(a, "[system] /create <room> - create a room and join it");
	for (size_t i = 1; i < NCOMMANDS; i++)
		ck_assert_int_eq(tcl_read(a, trun_ms(T_WAIT)), TCL_LINE);
	/* Exactly 8 commands: the next reply is the /list header. */
	expect_reply(a, "/list", "[system] Online users (1):");
}
END_TEST

START_TEST(test_nick_sets_name)
{
	struct tcl *a = tcl_guest(PORT, "a");

	expect_reply(a, "/nick alice", "[system] You are now alice");
	expect_reply(a, "/list", "[system] Online users (1):");
	expect_next(a, "[system]   alice (no room)");
	/* Renaming again works too. */
	expect_reply(a, "/nick alice2", "[system] You are now alice2");
	expect_reply(a, "/list", "[system] Online users (1):");
	expect_next(a, "[system]   alice2 (no room)");
}
END_TEST

/* A rename is NOTIFYed on each of the renamer's rooms; a member of two of
 * them sees it once. */
START_TEST(test_rename_seen_once_across_rooms)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *alice = tcl_user(PORT, "alice");

	do_create(bob, "one");
	do_create(bob, "two");
	do_join_seen(alice, "one", bob);
	do_join_seen(alice, "two", bob);
	expect_reply(alice, "/nick alicia", "[system] You are now alicia");
	expect_next(bob, "[system] alice is now known as alicia");
	/* Next for bob: her message, not the rename again. */
	tcl_send(alice, "renamed");
	expect_next(bob, "[two] alicia: renamed");
	/* Renamed back and again: each rename is shown (once). */
	tcl_send(alice, "/nick alice");
	expect_next(bob, "[system] alicia is now known as alice");
	tcl_send(alice, "/nick alicia");
	expect_next(bob, "[system] alice is now known as alicia");
	tcl_send(alice, "again");
	expect_next(bob, "[two] alicia: again");
}
END_TEST

START_TEST(test_nick_rename_seen_by_room_members)
{
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *g = tcl_connect(PORT, "guest");
	struct tcl *carol = tcl_user(PORT, "carol");
	char want[128], guest[64];

	do_create(bob, "general");
	snprintf(guest, sizeof(guest), "%s", read_welcome(g));
	ck_assert_int_eq(do_join(g, "general"), 0);
	snprintf(want, sizeof(want), "[system] %s joined general", guest);
	expect_next(bob, want);

	expect_reply(g, "/nick alice", "[system] You are now alice");
	snprintf(want, sizeof(want), "[system] %s is now known as alice",
		 guest);
	expect_next(bob, want);
	/* carol is in no room: the rename is not hers to see. */
	expect_reply(carol, "/list", "[system] Online users (3):");
	/* And the room now shows the new name on messages. */
	tcl_send(bob, "hi alice");
	expect_line(g, "[general] bob: hi alice");
	tcl_send(g, "hi bob");
	expect_line(g, "[general] alice: hi bob");
	expect_line(bob, "[general] alice: hi bob");
}
END_TEST

START_TEST(test_nick_taken_case_insensitive)
{
	const char *const want[] = { "[system]   alice (no room)",
				     "[system]   bob (no room)" };
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *b = tcl_guest(PORT, "b");

	expect_reply(b, "/nick alice",
		     "[system] error: nickname alice is taken");
	expect_reply(b, "/nick ALICE",
		     "[system] error: nickname ALICE is taken");
	expect_reply(b, "/nick aLiCe",
		     "[system] error: nickname aLiCe is taken");
	/* b is still its guest self, and can take a free name. */
	do_nick(b, "bob");
	expect_list(alice, want, 2);
}
END_TEST

/*
 * "<cmd> <name>" for each name of bad[] (NULL-terminated), then for a name
 * of max + 1 times unit: each is answered err.
 */
static void expect_names_refused_at(const char *file, int line, struct tcl *c,
				    const char *cmd, const char *const *bad,
				    const char *unit, size_t max,
				    const char *err)
{
	char *over = trun_repeat(unit, max + 1);

	for (size_t i = 0; bad[i]; i++) {
		tcl_send(c, "%s %s", cmd, bad[i]);
		tcl_expect_next_at(file, line, c, err, trun_ms(T_WAIT));
	}
	tcl_send(c, "%s %s", cmd, over);
	tcl_expect_next_at(file, line, c, err, trun_ms(T_WAIT));
	free(over);
}

#define expect_names_refused(c, cmd, bad, unit, max, err)                      \
	expect_names_refused_at(__FILE__, __LINE__, (c), (cmd), (bad), (unit), \
				(max), (err))

START_TEST(test_nick_invalid)
{
	static const char *const bad[] = { "bad!name", "h\xc3\xa9llo", "a.b",
					   NULL };
	struct tcl *a = tcl_guest(PORT, "a");
	char *n32 = trun_repeat("n", 32);

	expect_names_refused(
		a, "/nick", bad, "n", 32,
		"[system] error: invalid nickname (1-32 letters, digits, _ or -)");
	/* The edges of the valid set. */
	do_nick(a, n32);
	do_nick(a, "A-b_9");
	free(n32);
}
END_TEST

START_TEST(test_nick_restores_memberships)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *again;

	do_create(alice, "general");
	do_create(alice, "random");
	ck_assert_int_eq(do_join(bob, "general"), 0);
	expect_line(alice, "[system] bob joined general");
	do_quit(alice);
	tcl_free(alice);
	wait_online(bob, 1);

	again = user_back(PORT, "alice", "general, random");
	/* Membership is live again: bob's message in general arrives. */
	tcl_send(bob, "welcome back");
	expect_line(bob, "[general] bob: welcome back");
	expect_line(again, "[general] bob: welcome back");
}
END_TEST

START_TEST(test_list_users_and_rooms)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	const char *const want[] = { "[system]   alice (in general)",
				     "[system]   bob (no room)" };

	do_create(alice, "general");
	expect_list(bob, want, 2);
}
END_TEST

START_TEST(test_create_room)
{
	struct tcl *alice = tcl_user(PORT, "alice");

	expect_reply(alice, "/create general", "[system] Created room general");
	expect_next(alice, "[system] You joined general (0 recent messages)");
	do_say(alice, "general", "first!");
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT count(*) FROM rooms WHERE name = 'general'",
			NULL),
		1);
}
END_TEST

START_TEST(test_create_existing_room)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");

	do_create(alice, "general");
	expect_reply(bob, "/create general",
		     "[system] error: room general already exists");
	/* bob did not end up in it. */
	expect_reply(bob, "hello?", NOT_IN_ROOM);
}
END_TEST

START_TEST(test_create_invalid_name)
{
	static const char *const bad[] = { "General", "a.b", NULL };
	struct tcl *alice = tcl_user(PORT, "alice");
	char *r50 = trun_repeat("r", 50);

	expect_names_refused(
		alice, "/create", bad, "r", 50,
		"[system] error: invalid room name (1-50 lowercase letters, digits, _ or -)");
	/* The edges of the valid set. */
	do_create(alice, r50);
	do_create(alice, "a_b-9");
	ck_assert_int_eq(tdb_int(&T_DB, "SELECT count(*) FROM rooms", NULL), 2);
	free(r50);
}
END_TEST

START_TEST(test_join_shows_last_ten_messages)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	char text[32], want[64];

	do_create(alice, "general");
	for (int i = 1; i <= 12; i++) {
		snprintf(text, sizeof(text), "m%02d", i);
		do_say(alice, "general", text);
	}
	expect_reply(bob, "/join general",
		     "[system] You joined general (10 recent messages)");
	for (int i = 3; i <= 12; i++) {
		snprintf(want, sizeof(want), "[general] alice: m%02d", i);
		expect_next(bob, want);
	}
	/* Then live traffic, and nothing in between. */
	expect_next(alice, "[system] bob joined general");
	do_say_seen(alice, "general", "live", bob);
}
END_TEST

START_TEST(test_join_history_count_wording)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");

	do_create(alice, "empty");
	expect_reply(bob, "/join empty",
		     "[system] You joined empty (0 recent messages)");
	expect_next(alice, "[system] bob joined empty");
	do_create(alice, "one");
	do_say(alice, "one", "only");
	expect_reply(bob, "/join one",
		     "[system] You joined one (1 recent message)");
	expect_next(bob, "[one] alice: only");
}
END_TEST

START_TEST(test_join_unknown_room)
{
	struct tcl *alice = tcl_user(PORT, "alice");

	expect_reply(alice, "/join nowhere",
		     "[system] error: no such room: nowhere");
	expect_reply(alice, "text", NOT_IN_ROOM);
}
END_TEST

START_TEST(test_join_and_leave_notices)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *carol = tcl_user(PORT, "carol");

	do_create(alice, "general");
	ck_assert_int_eq(do_join_seen(bob, "general", alice), 0);
	expect_reply(bob, "/leave", "[system] You left general");
	expect_next(alice, "[system] bob left general");
	/* carol, in no room, saw neither: her /list answer comes first. */
	expect_reply(carol, "/list", "[system] Online users (3):");
	/* bob left for real: alice's message does not reach him. */
	do_say(alice, "general", "after bob left");
	expect_reply(bob, "/list", "[system] Online users (3):");
}
END_TEST

START_TEST(test_rooms_counts)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *carol = tcl_user(PORT, "carol");
	struct tcl *dave = tcl_user(PORT, "dave");
	const char *const want[] = { "[system]   general: 3 members, 2 online",
				     "[system]   random: 2 members, 2 online" };

	tcl_send(alice, "/rooms");
	expect_next(alice,
		    "[system] No rooms yet. Create one with /create <room>");
	do_create(alice, "general");
	do_join_seen(bob, "general", alice);
	do_join_seen(dave, "general", alice, bob);
	do_create(carol, "random");
	do_join_seen(alice, "random", carol);
	do_quit(dave);
	wait_online(carol, 3);
	expect_reply(carol, "/rooms", "[system] Rooms (2):");
	expect_set(carol, want, 2);
}
END_TEST

START_TEST(test_leave_then_plain_line_is_error)
{
	struct tcl *alice = tcl_user(PORT, "alice");

	do_create(alice, "general");
	expect_reply(alice, "/leave", "[system] You left general");
	expect_reply(alice, "anyone?", NOT_IN_ROOM);
	expect_reply(alice, "/leave", "[system] error: you are not in a room");
	ck_assert_int_eq(
		tdb_int(&T_DB,
			"SELECT count(*) FROM room_members m JOIN users u "
			"ON u.id = m.user_id WHERE u.nickname = 'alice'",
			NULL),
		0);
	expect_stored(0);
}
END_TEST

START_TEST(test_quit_says_goodbye_and_closes)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");

	do_quit(alice);
	wait_online(bob, 1);
}
END_TEST

START_TEST(test_unknown_command)
{
	struct tcl *a = tcl_guest(PORT, "a");

	expect_reply(a, "/foo",
		     "[system] error: unknown command /foo (try /help)");
	expect_reply(a, "/dance with me",
		     "[system] error: unknown command /dance (try /help)");
}
END_TEST

START_TEST(test_usage_errors)
{
	struct tcl *a = tcl_user(PORT, "alice");
	char usage[NCOMMANDS][128], want[256];

	expect_reply(a, "/join", "[system] error: usage: /join <room>");
	expect_reply(a, "/join a b", "[system] error: usage: /join <room>");
	/* Every command: the usage is the one /help shows. */
	expect_reply(a, "/help", "[system] Commands:");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const char *dash;

		ck_assert_int_eq(tcl_read(a, trun_ms(T_WAIT)), TCL_LINE);
		dash = strstr(a->line, " - ");
		ck_assert(dash);
		snprintf(usage[i], sizeof(usage[i]), "%.*s",
			 (int)(dash - a->line - 9), a->line + 9);
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		snprintf(want, sizeof(want), "[system] error: usage: %.120s",
			 usage[i]);
		if (strchr(usage[i], '<')) {
			tcl_send(a, "/%s", commands[i]);
			expect_next(a, want);
			tcl_send(a, "/%s one two", commands[i]);
			expect_next(a, want);
		} else {
			tcl_send(a, "/%s extra", commands[i]);
			expect_next(a, want);
		}
	}
	/* Nothing happened: still connected, named alice, in no room. */
	expect_reply(a, "/list", "[system] Online users (1):");
	expect_next(a, "[system]   alice (no room)");
}
END_TEST

START_TEST(test_plain_line_outside_room)
{
	struct tcl *a = tcl_guest(PORT, "a");

	expect_reply(a, "hello world", NOT_IN_ROOM);
	expect_stored(0);
}
END_TEST

START_TEST(test_two_users_chat)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");

	do_create(alice, "general");
	do_join_seen(bob, "general", alice);
	do_say_seen(alice, "general", "hi bob", bob);
	do_say_seen(bob, "general", "hi alice, how are you?", alice);
	do_say_seen(alice, "general", "fine", bob);
}
END_TEST

START_TEST(test_two_rooms_traffic_prefixed)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	struct tcl *bob = tcl_user(PORT, "bob");
	struct tcl *carol = tcl_user(PORT, "carol");

	do_create(bob, "general");
	do_create(carol, "random");
	do_join_seen(alice, "general", bob);
	do_join_seen(alice, "random", carol);
	do_say_seen(bob, "general", "in general", alice);
	do_say_seen(carol, "random", "in random", alice);
	/* alice's plain line goes to her current room, the last joined. */
	expect_reply(alice, "to random", "[random] alice: to random");
	expect_next(carol, "[random] alice: to random");
	/* bob is not in random: his next line is his own message. */
	do_say_seen(bob, "general", "still here", alice);
}
END_TEST

START_TEST(test_crlf_split_and_batched_lines)
{
	struct tcl *a = tcl_guest(PORT, "a");
	struct tcl *b = tcl_user(PORT, "bob");

	/* CRLF line ends. */
	tcl_send_str(a, "/nick alice\r\n");
	expect_next(a, "[system] You are now alice");
	tcl_send_str(a, "/create general\r\n");
	expect_next(a, "[system] Created room general");
	expect_next(a, "[system] You joined general (0 recent messages)");
	tcl_send_str(a, "crlf text\r\n");
	expect_next(a, "[general] alice: crlf text");

	/* One line in pieces; bob's round trips let the server read each
	 * piece on its own. A UTF-8 character is cut in two as well. */
	tcl_send_str(a, "sp");
	do_list(b);
	tcl_send_str(a, "lit h\xc3");
	do_list(b);
	tcl_send_str(a, "\xa9llo\r");
	do_list(b);
	tcl_send_str(a, "\n");
	expect_next(a, "[general] alice: split h\xc3\xa9llo");

	/* Several lines in one write, answered in order. */
	tcl_send_str(b, "/join general\nfirst\nsecond\r\nthird\n");
	expect_next(b, "[system] You joined general (2 recent messages)");
	expect_next(b, "[general] alice: crlf text");
	expect_next(b, "[general] alice: split h\xc3\xa9llo");
	expect_next(b, "[general] bob: first");
	expect_next(b, "[general] bob: second");
	expect_next(b, "[general] bob: third");
	expect_next(a, "[system] bob joined general");
	expect_next(a, "[general] bob: first");
	expect_next(a, "[general] bob: second");
	expect_next(a, "[general] bob: third");
}
END_TEST

START_TEST(test_blank_lines_ignored)
{
	struct tcl *a = tcl_guest(PORT, "a");
	char want[128];

	/* Outside a room a blank line would be an error if not ignored. */
	tcl_send_str(a, "\n\r\n   \n \r\n");
	expect_reply(a, "/list", "[system] Online users (1):");
	snprintf(want, sizeof(want), "[system]   %s (no room)", a->nick);
	expect_next(a, want);
	do_nick(a, "alice");
	do_create(a, "general");
	tcl_send_str(a, "\n  \n\r\n");
	do_say(a, "general", "after blanks");
	expect_stored(1);
}
END_TEST

START_TEST(test_long_line_rejected_session_survives)
{
	static const char err[] =
		"[system] error: line too long (max 4096 bytes)";
	struct tcl *a = tcl_user(PORT, "alice");
	char *x5000 = trun_repeat("x", 5000), *x4097 = trun_repeat("y", 4097);
	char *x4096 = trun_repeat("z", 4096);

	do_create(a, "general");
	expect_reply(a, x5000, err);
	do_say(a, "general", "still alive");
	/* Over-long in pieces, and just over the limit. */
	tcl_send_raw(a, x5000, 3000);
	tcl_send_raw(a, x5000, 2000);
	tcl_send_str(a, "\n");
	expect_next(a, err);
	expect_reply(a, x4097, err);
	/* 4096 bytes is a line; as a message it is too long. */
	expect_reply(a, x4096,
		     "[system] error: message too long (max 2000 bytes)");
	/* Commands still work and nothing of the long lines was stored. */
	expect_reply(a, "/list", "[system] Online users (1):");
	expect_next(a, "[system]   alice (in general)");
	expect_stored(1);
	free(x5000);
	free(x4097);
	free(x4096);
}
END_TEST

START_TEST(test_invalid_utf8_rejected)
{
	static const char err[] = "[system] error: invalid UTF-8";
	static const char *const bad[] = {
		"bad \xff byte",	  /* never valid */
		"lone \x80 continuation", /* continuation without lead */
		"overlong \xc0\xaf",	  /* "/" in two bytes */
		"surrogate \xed\xa0\x80", /* U+D800 */
		"cut \xe2\x82",		  /* truncated at the end */
	};
	struct tcl *a = tcl_user(PORT, "alice");

	do_create(a, "general");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_reply(a, bad[i], err);
	}
	do_say(a, "general", "valid: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	expect_stored(1);
}
END_TEST

START_TEST(test_control_characters_stripped)
{
	struct tcl *a = tcl_user(PORT, "alice");
	struct tcl *b = tcl_user(PORT, "bob");

	do_create(a, "general");
	do_join(b, "general");
	tcl_send(a, "a\x01"
		    "b");
	expect_line(a, "[general] alice: ab");
	expect_line(b, "[general] alice: ab");
	expect_reply(a, "x\x1b[31my\x07z\x7f!", "[general] alice: x[31myz!");
	expect_next(b, "[general] alice: x[31myz!");
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM messages "
				 "WHERE content ~ '[[:cntrl:]]'",
				 NULL),
			 0);
}
END_TEST

START_TEST(test_message_over_max_bytes)
{
	static const char err[] =
		"[system] error: message too long (max 2000 bytes)";
	struct tcl *a = tcl_user(PORT, "alice");
	char *m2000 = trun_repeat("m", 2000), *m2001 = trun_repeat("m", 2001);
	char *e1000 = trun_repeat("\xc3\xa9", 1000); /* 2000 bytes */
	char *e1001 = trun_repeat("\xc3\xa9", 1001); /* 2002 bytes */

	do_create(a, "general");
	expect_reply(a, m2001, err);
	expect_reply(a, e1001, err);
	do_say(a, "general", m2000);
	do_say(a, "general", e1000);
	ck_assert_int_eq(tdb_int(&T_DB,
				 "SELECT count(*) FROM messages "
				 "WHERE octet_length(content) = 2000",
				 NULL),
			 2);
	expect_stored(2);
	free(m2000);
	free(m2001);
	free(e1000);
	free(e1001);
}
END_TEST

static void setup_max_100(void)
{
	struct tsrv_opts o = { .max_message_bytes = 100 };

	tfix_use(&o);
}

START_TEST(test_message_limit_from_config)
{
	struct tcl *a = tcl_user(PORT, "alice");
	char *m100 = trun_repeat("m", 100), *m101 = trun_repeat("m", 101);

	do_create(a, "general");
	expect_reply(a, m101,
		     "[system] error: message too long (max 100 bytes)");
	do_say(a, "general", m100);
	free(m100);
	free(m101);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_welcome_lines, TIMEOUT, NULL),
		TFIX_CASE(test_help_lists_all_commands, TIMEOUT, NULL),
		TFIX_CASE(test_nick_sets_name, TIMEOUT, NULL),
		TFIX_CASE(test_nick_rename_seen_by_room_members, TIMEOUT, NULL),
		TFIX_CASE(test_rename_seen_once_across_rooms, TIMEOUT, NULL),
		TFIX_CASE(test_nick_taken_case_insensitive, TIMEOUT, NULL),
		TFIX_CASE(test_nick_invalid, TIMEOUT, NULL),
		TFIX_CASE(test_nick_restores_memberships, TIMEOUT, NULL),
		TFIX_CASE(test_list_users_and_rooms, TIMEOUT, NULL),
		TFIX_CASE(test_create_room, TIMEOUT, NULL),
		TFIX_CASE(test_create_existing_room, TIMEOUT, NULL),
		TFIX_CASE(test_create_invalid_name, TIMEOUT, NULL),
		TFIX_CASE(test_join_shows_last_ten_messages, TIMEOUT, NULL),
		TFIX_CASE(test_join_history_count_wording, TIMEOUT, NULL),
		TFIX_CASE(test_join_unknown_room, TIMEOUT, NULL),
		TFIX_CASE(test_join_and_leave_notices, TIMEOUT, NULL),
		TFIX_CASE(test_rooms_counts, TIMEOUT, NULL),
		TFIX_CASE(test_leave_then_plain_line_is_error, TIMEOUT, NULL),
		TFIX_CASE(test_quit_says_goodbye_and_closes, TIMEOUT, NULL),
		TFIX_CASE(test_unknown_command, TIMEOUT, NULL),
		TFIX_CASE(test_usage_errors, TIMEOUT, NULL),
		TFIX_CASE(test_plain_line_outside_room, TIMEOUT, NULL),
		TFIX_CASE(test_two_users_chat, TIMEOUT, NULL),
		TFIX_CASE(test_two_rooms_traffic_prefixed, TIMEOUT, NULL),
		TFIX_CASE(test_crlf_split_and_batched_lines, TIMEOUT, NULL),
		TFIX_CASE(test_blank_lines_ignored, TIMEOUT, NULL),
		TFIX_CASE(test_long_line_rejected_session_survives, TIMEOUT,
			  NULL),
		TFIX_CASE(test_invalid_utf8_rejected, TIMEOUT, NULL),
		TFIX_CASE(test_control_characters_stripped, TIMEOUT, NULL),
		TFIX_CASE(test_message_over_max_bytes, TIMEOUT, NULL),
		TFIX_CASE(test_message_limit_from_config, TIMEOUT,
			  setup_max_100),
	};

	return tfix_main("tcp", cases, TMAIN_N(cases), NULL);
}
