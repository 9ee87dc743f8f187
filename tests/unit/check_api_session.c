/*
 * Unit tests for src/core/api_session.c: this instance's copies of stored
 * HTTP API sessions, driven against a fake store and fake transport
 * outcomes (no sockets, no database).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api_session.h"
#include "core/chat.h"
#include "tmain.h"

#define TOKEN "0123456789abcdef0123456789abcdef"

/* The fake store: the last call of each session op. */
static struct {
	int opens, resumes, ends, ticks, joins, posts;
	char token[64], nick[64];
	uint64_t req;
	int64_t known, end_id;
	int64_t keep[8];
	size_t nkeep;
} fs;

static int fs_session_open(void *st, const char *token, const char *nick,
			   uint64_t req)
{
	(void)st;
	fs.opens++;
	snprintf(fs.token, sizeof(fs.token), "%s", token);
	snprintf(fs.nick, sizeof(fs.nick), "%s", nick);
	fs.req = req;
	return 0;
}

static int fs_session_resume(void *st, const char *token, unsigned idle_s,
			     int64_t known, uint64_t req)
{
	(void)st;
	(void)idle_s;
	fs.resumes++;
	snprintf(fs.token, sizeof(fs.token), "%s", token);
	fs.known = known;
	fs.req = req;
	return 0;
}

static int fs_session_end(void *st, int64_t id, uint64_t req)
{
	(void)st;
	fs.ends++;
	fs.end_id = id;
	fs.req = req;
	return 0;
}

static int fs_session_tick(void *st, const int64_t *keep, size_t n,
			   unsigned idle_s)
{
	(void)st;
	(void)idle_s;
	fs.ticks++;
	fs.nkeep = n;
	memcpy(fs.keep, keep, n * sizeof(*keep));
	return 0;
}

static int fs_join(void *st, uint64_t sid, int64_t api_id, int64_t uid,
		   const char *nick, const char *room, bool create,
		   size_t max_rooms, const char *cur)
{
	(void)st, (void)sid, (void)api_id, (void)uid, (void)nick, (void)room;
	(void)create, (void)max_rooms, (void)cur;
	fs.joins++;
	return 0;
}

static void fs_presence_del(void *st, uint64_t sid)
{
	(void)st;
	(void)sid;
}

static const struct chat_store_ops fops = {
	.join = fs_join,
	.presence_del = fs_presence_del,
	.session_open = fs_session_open,
	.session_resume = fs_session_resume,
	.session_end = fs_session_end,
	.session_tick = fs_session_tick,
};

/* The fake transport: the last outcome, and deferred work asked for. */
static struct {
	int connected, resumed, replied, ended, defers;
	uint64_t req, key;
	int err;
	char text[4096], token[64];
	int64_t uid;
} out;

static void o_connected(void *arg, uint64_t req, int err, const char *token,
			int64_t uid, const char *nick)
{
	(void)arg;
	(void)nick;
	out.connected++;
	out.req = req;
	out.err = err;
	snprintf(out.token, sizeof(out.token), "%s", token ? token : "");
	out.uid = uid;
}

static void o_resumed(void *arg, uint64_t req, int err, uint64_t key)
{
	(void)arg;
	out.resumed++;
	out.req = req;
	out.err = err;
	out.key = key;
}

static void o_replied(void *arg, uint64_t req, int err, const char *text)
{
	(void)arg;
	out.replied++;
	out.req = req;
	out.err = err;
	snprintf(out.text, sizeof(out.text), "%s", text ? text : "(null)");
}

static void o_ended(void *arg, uint64_t req, int err)
{
	(void)arg;
	out.ended++;
	out.req = req;
	out.err = err;
}

static void o_defer(void *arg)
{
	(void)arg;
	out.defers++;
}

static const struct chat_api_ops aops = {
	.connected = o_connected,
	.resumed = o_resumed,
	.replied = o_replied,
	.ended = o_ended,
	.defer = o_defer,
};

static struct chat *c;

static void setup(void)
{
	struct chat_config cfg = {
		.history_size = 3, .max_message_bytes = 200,
		.outq_limit = 65536, .seed = 1,
	};

	memset(&fs, 0, sizeof(fs));
	memset(&out, 0, sizeof(out));
	c = chat_new(&cfg, &fops, NULL);
	chat_set_api(c, &aops, NULL);
	chat_api_start(c, 60);
	chat_on_listen_up(c);
}

static void teardown(void)
{
	chat_free(c);
}

/* Session 7 (user 3, alice, in no room) as the database has it. */
static struct chat_stored_session alice(int64_t version, bool unchanged)
{
	return (struct chat_stored_session){
		.id = 7, .uid = 3, .nick = "alice",
		.rooms_version = version, .rooms_unchanged = unchanged,
	};
}

/* Resumes TOKEN as request req; returns the copy's key. */
static uint64_t resume(uint64_t req, int64_t version, bool unchanged)
{
	struct chat_stored_session ss = alice(version, unchanged);

	ck_assert_int_eq(chat_api_resume(c, TOKEN, req), 0);
	chat_on_session_resumed(c, req, 0, TOKEN, &ss);
	ck_assert_int_eq(out.err, 0);
	ck_assert_uint_eq(out.req, req);
	return out.key;
}

START_TEST(test_token_format)
{
	ck_assert(chat_api_token_ok(TOKEN));
	ck_assert(!chat_api_token_ok("0123456789ABCDEF0123456789abcdef"));
	ck_assert(!chat_api_token_ok("0000000000000000ffffffffffffffff"));
	ck_assert(!chat_api_token_ok("0123"));
	ck_assert(!chat_api_token_ok(NULL));
	ck_assert_int_eq(chat_api_resume(c, "nope", 1), BD_ENOENT);
	ck_assert_int_eq(fs.resumes, 0);
}
END_TEST

START_TEST(test_connect_makes_a_copy)
{
	struct chat_stored_session ss = alice(-1, false);

	ck_assert_int_eq(chat_api_connect(c, TOKEN, "bad nick", "127.0.0.1", 1), BD_EINVAL);
	ck_assert_int_eq(chat_api_connect(c, TOKEN, "alice", "127.0.0.1", 1), 0);
	ck_assert_str_eq(fs.nick, "alice");
	chat_on_session_opened(c, 1, 0, TOKEN, &ss);
	ck_assert_int_eq(out.connected, 1);
	ck_assert_str_eq(out.token, TOKEN);
	ck_assert_int_eq(out.uid, 3);
	chat_on_session_opened(c, 2, BD_ETAKEN, TOKEN, NULL);
	ck_assert_int_eq(out.err, BD_ETAKEN);
}
END_TEST

/* New sessions are limited per source address: past the burst the store
 * is not asked; other addresses are not affected. */
START_TEST(test_connect_rate_per_address)
{
	struct chat_config cfg = {
		.history_size = 3, .max_message_bytes = 200,
		.outq_limit = 65536, .seed = 1,
		.connect_per_min = 1, .connect_burst = 2,
	};
	int opens;

	chat_free(c);
	c = chat_new(&cfg, &fops, NULL);
	chat_set_api(c, &aops, NULL);
	chat_api_start(c, 60);
	ck_assert_int_eq(chat_api_connect(c, TOKEN, "a1", "10.0.0.1", 1), 0);
	ck_assert_int_eq(chat_api_connect(c, TOKEN, "a2", "10.0.0.1", 2), 0);
	opens = fs.opens;
	ck_assert_int_eq(chat_api_connect(c, TOKEN, "a3", "10.0.0.1", 3),
			 BD_EADDRRATE);
	ck_assert_int_eq(fs.opens, opens);
	ck_assert_int_eq(chat_api_connect(c, TOKEN, "b1", "10.0.0.2", 4), 0);
	ck_assert_int_eq(chat_get_stats(c)->rejected[-BD_EADDRRATE - 1], 1);
}
END_TEST

/* The copy's memberships version goes with the next resume; an answer
 * "unchanged" for a version the copy does not have asks again. */
START_TEST(test_resume_sends_known_version)
{
	uint64_t key = resume(1, 5, false);
	struct chat_stored_session ss = alice(5, true);

	ck_assert(chat_api_session(c, key));
	ck_assert_int_eq(fs.known, -1);
	ck_assert_int_eq(chat_api_resume(c, TOKEN, 2), 0);
	ck_assert_int_eq(fs.known, 5);
	chat_on_session_resumed(c, 2, 0, TOKEN, &ss);
	ck_assert_int_eq(out.resumed, 2);
	ck_assert_uint_eq(out.key, key);
	/* Unchanged at version 6: not what the copy knows. */
	ss = alice(6, true);
	chat_on_session_resumed(c, 3, 0, TOKEN, &ss);
	ck_assert_int_eq(out.resumed, 2);
	ck_assert_int_eq(fs.resumes, 3);
	ck_assert_int_eq(fs.known, -1);
	ck_assert_uint_eq(fs.req, 3);
}
END_TEST

START_TEST(test_command_replies_without_prefixes)
{
	uint64_t key = resume(1, 0, false);

	ck_assert_int_eq(chat_api_command(c, key, 2, "/help", 5, "127.0.0.1"), 0);
	ck_assert_int_eq(out.replied, 1);
	ck_assert_int_eq(out.err, 0);
	ck_assert_msg(strstr(out.text, "/join") &&
			      !strstr(out.text, "[system]"),
		      "%s", out.text);
	ck_assert_int_eq(chat_api_command(c, key, 3, "/nope", 5, "127.0.0.1"), 0);
	ck_assert_int_ne(out.err, 0);
	ck_assert_msg(!strncmp(out.text, "unknown command", 15), "%s",
		      out.text);
}
END_TEST

/* A command still running when the session ends elsewhere answers an
 * error, not a success with nothing in it. */
START_TEST(test_command_racing_end_is_an_error)
{
	uint64_t key = resume(1, 0, false);

	ck_assert_int_eq(chat_api_command(c, key, 2, "/join general", 13, "127.0.0.1"), 0);
	ck_assert_int_eq(fs.joins, 1);
	ck_assert(chat_api_busy(c, TOKEN));
	ck_assert_int_eq(chat_api_command(c, key, 3, "/help", 5, "127.0.0.1"), BD_EAGAIN);
	chat_on_session_end(c, 7);
	ck_assert_int_eq(out.defers, 1);
	ck_assert_int_eq(out.replied, 0);
	chat_api_run(c);
	ck_assert_int_eq(out.replied, 1);
	ck_assert_uint_eq(out.req, 2);
	ck_assert_int_eq(out.err, BD_ENOENT);
	ck_assert(!chat_api_session(c, key));
	ck_assert_int_eq(fs.ends, 0);	/* it ended elsewhere */
}
END_TEST

/* /quit is answered once the session is deleted. */
START_TEST(test_quit_answered_after_delete)
{
	uint64_t key = resume(1, 0, false);

	ck_assert_int_eq(chat_api_command(c, key, 2, "/quit", 5, "127.0.0.1"), 0);
	ck_assert_int_eq(out.replied, 0);
	chat_api_run(c);
	ck_assert_int_eq(fs.ends, 1);
	ck_assert_int_eq(fs.end_id, 7);
	ck_assert_uint_eq(fs.req, 2);
	ck_assert_int_eq(out.replied, 0);
	chat_on_session_ended(c, 2, 0);
	ck_assert_int_eq(out.replied, 1);
	ck_assert_int_eq(out.err, 0);
	ck_assert_str_eq(out.text, "Goodbye");
}
END_TEST

START_TEST(test_disconnect_ends_and_drops)
{
	uint64_t key = resume(1, 0, false);

	ck_assert_int_eq(chat_api_end(c, key, 2), 0);
	ck_assert_int_eq(fs.ends, 1);
	ck_assert(!chat_api_session(c, key));
	chat_on_session_ended(c, 2, 0);
	ck_assert_int_eq(out.ended, 1);
	ck_assert_int_eq(out.err, 0);
	chat_api_run(c);
	ck_assert_int_eq(chat_api_end(c, key, 3), BD_ENOENT);
}
END_TEST

/* Streamed copies are kept alive by the tick; at shutdown the sweep drops
 * every idle copy without ending its session. */
START_TEST(test_tick_keeps_streamed_and_stop_drops)
{
	uint64_t key = resume(1, 0, false);

	chat_api_tick(c);
	ck_assert_int_eq(fs.ticks, 1);
	ck_assert_uint_eq(fs.nkeep, 0);
	chat_api_stream_opened(c, key);
	chat_api_tick(c);
	ck_assert_uint_eq(fs.nkeep, 1);
	ck_assert_int_eq(fs.keep[0], 7);
	chat_api_stop(c);
	chat_api_sweep(c);
	chat_api_run(c);
	ck_assert(chat_api_session(c, key));	/* streamed: kept */
	chat_api_stream_closed(c, key);
	chat_api_sweep(c);
	chat_api_run(c);
	ck_assert(!chat_api_session(c, key));
	ck_assert_int_eq(fs.ends, 0);
}
END_TEST

int main(void)
{
	const struct tmain_case cases[] = {
		{ "token_format", test_token_format },
		{ "connect", test_connect_makes_a_copy },
		{ "connect_rate_per_address", test_connect_rate_per_address },
		{ "known_version", test_resume_sends_known_version },
		{ "command_replies", test_command_replies_without_prefixes },
		{ "command_racing_end", test_command_racing_end_is_an_error },
		{ "quit_after_delete", test_quit_answered_after_delete },
		{ "disconnect", test_disconnect_ends_and_drops },
		{ "tick_and_stop", test_tick_keeps_streamed_and_stop_drops },
	};

	return tmain_main("api_session", cases, TMAIN_N(cases), setup,
			  teardown);
}
