/*
 * libFuzzer harness: the TCP line path as the server runs it, without
 * sockets or a database. The input goes through util/linebuf.c in pieces
 * (sizes from its first byte) into the chat core's session input: UTF-8
 * checks, control-character cleaning, the command parser and every
 * command, messages. A stand-in store answers every operation with
 * success after each piece (a committed message comes back as its
 * NOTIFY would), so commands run to their end. A second session sits in
 * "general" and receives what is said there. Whatever is written to
 * either session is whole lines of valid UTF-8 without control bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/chat.h"
#include "log.h"
#include "util/linebuf.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

enum op_kind { OP_NICK, OP_JOIN, OP_LEAVE, OP_PRESENCE, OP_LIST, OP_POST,
	       OP_ROOMS, OP_REPLAY, OP_WATCH };

struct op {
	enum op_kind kind;
	uint64_t sid, token, gen;
	int64_t room_id, uid;
	char name[64], nick[64];
	char *content;
	size_t len;
};

#define OPS_MAX 256

static struct {
	struct op ops[OPS_MAX];
	size_t n;
	int64_t seq, next_uid;
} st;

struct conn {
	struct session *s;
	bool closed;
};

static struct op *op_new(enum op_kind kind, uint64_t sid)
{
	struct op *o;

	if (st.n == OPS_MAX)
		return NULL;
	o = &st.ops[st.n++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->sid = sid;
	return o;
}

/* Room ids from names: the same name, the same id. */
static int64_t room_id_of(const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (int64_t)(h >> 2) + 1;
}

static int s_nick(void *x, uint64_t sid, int64_t api_id, int64_t uid,
		  const char *old, const char *nick, const char *cur)
{
	struct op *o = op_new(OP_NICK, sid);

	(void)x, (void)api_id, (void)old, (void)cur;
	if (!o)
		return BD_EBUSY;
	o->uid = uid ? uid : ++st.next_uid;
	snprintf(o->nick, sizeof(o->nick), "%s", nick);
	return 0;
}

static int s_join(void *x, uint64_t sid, int64_t api_id, int64_t uid,
		  const char *nick, const char *room, bool create,
		  size_t max_rooms, const char *cur)
{
	struct op *o = op_new(OP_JOIN, sid);

	(void)x, (void)api_id, (void)nick, (void)create, (void)max_rooms;
	(void)cur;
	if (!o)
		return BD_EBUSY;
	o->uid = uid ? uid : ++st.next_uid;
	snprintf(o->name, sizeof(o->name), "%s", room);
	o->room_id = room_id_of(room);
	return 0;
}

static int s_leave(void *x, uint64_t sid, int64_t api_id, int64_t uid,
		   const char *nick, int64_t room_id)
{
	(void)x, (void)api_id, (void)uid, (void)nick, (void)room_id;
	return op_new(OP_LEAVE, sid) ? 0 : BD_EBUSY;
}

static int s_presence_add(void *x, uint64_t sid, const char *nick)
{
	(void)x, (void)nick;
	return op_new(OP_PRESENCE, sid) ? 0 : BD_EBUSY;
}

static void s_presence_del(void *x, uint64_t sid)
{
	(void)x, (void)sid;
}

static int s_list(void *x, uint64_t sid)
{
	(void)x;
	return op_new(OP_LIST, sid) ? 0 : BD_EBUSY;
}

static int s_post(void *x, uint64_t sid, uint64_t token, int64_t room_id,
		  int64_t uid, const char *nick, const char *content,
		  size_t len)
{
	struct op *o = op_new(OP_POST, sid);

	(void)x;
	if (!o)
		return BD_EBUSY;
	o->token = token;
	o->room_id = room_id;
	o->uid = uid;
	snprintf(o->nick, sizeof(o->nick), "%s", nick);
	o->content = malloc(len + 1);
	if (!o->content)
		abort();
	memcpy(o->content, content, len);
	o->content[len] = '\0';
	o->len = len;
	return 0;
}

static int s_rooms(void *x, uint64_t sid, uint64_t token)
{
	struct op *o = op_new(OP_ROOMS, sid);

	(void)x;
	if (!o)
		return BD_EBUSY;
	o->token = token;
	return 0;
}

static int s_replay(void *x, int64_t room_id, uint64_t token, int64_t after,
		    unsigned limit)
{
	struct op *o = op_new(OP_REPLAY, 0);

	(void)x, (void)room_id, (void)after, (void)limit;
	if (!o)
		return BD_EDB;
	o->token = token;
	return 0;
}

static int s_watch(void *x, int64_t room_id, uint64_t gen, int64_t after,
		   unsigned limit)
{
	struct op *o = op_new(OP_WATCH, 0);

	(void)x, (void)after, (void)limit;
	if (!o)
		return BD_EDB;
	o->room_id = room_id;
	o->gen = gen;
	return 0;
}

static void s_unwatch(void *x, int64_t room_id)
{
	(void)x, (void)room_id;
}

static const struct chat_store_ops store = {
	.nick = s_nick, .join = s_join, .leave = s_leave,
	.presence_add = s_presence_add, .presence_del = s_presence_del,
	.list = s_list, .post = s_post, .rooms = s_rooms,
	.replay = s_replay, .watch = s_watch, .unwatch = s_unwatch,
};

static void c_wake(void *conn)
{
	(void)conn;
}

static void c_close(void *conn, bool flush)
{
	(void)flush;
	((struct conn *)conn)->closed = true;
}

static void c_throttle(void *conn, bool stop)
{
	(void)conn, (void)stop;
}

static const struct chat_sink_ops sink = {
	.wake = c_wake, .close = c_close, .throttle = c_throttle,
};

/* Answers every operation asked so far (which may ask more). */
static void answer_all(struct chat *c)
{
	for (int round = 0; st.n && round < 16; round++) {
		struct op ops[OPS_MAX];
		size_t n = st.n;

		memcpy(ops, st.ops, n * sizeof(ops[0]));
		st.n = 0;
		for (size_t i = 0; i < n; i++) {
			struct op *o = &ops[i];

			switch (o->kind) {
			case OP_NICK:
				chat_on_nick(c, o->sid, 0, o->uid, o->nick,
					     NULL, 0);
				break;
			case OP_JOIN:
				chat_on_join(c, o->sid, 0, o->uid, o->room_id,
					     o->name);
				break;
			case OP_LEAVE:
				chat_on_leave(c, o->sid, 0);
				break;
			case OP_PRESENCE:
				chat_on_presence(c, o->sid, 0);
				break;
			case OP_LIST:
				chat_on_list(c, o->sid, 0, NULL, 0);
				break;
			case OP_POST: {
				struct chat_event ev = {
					.kind = CHAT_EV_MESSAGE,
					.room_id = o->room_id,
					.uid = o->uid, .nick = o->nick,
					.seq = ++st.seq, .id = st.seq,
					.content = o->content,
					.content_len = o->len,
				};

				chat_on_posted(c, o->sid, o->token, 0, st.seq,
					       st.seq);
				chat_on_event(c, &ev);
				chat_on_events_done(c);
				free(o->content);
				break;
			}
			case OP_ROOMS:
				chat_on_rooms(c, o->sid, o->token, 0, NULL, 0);
				break;
			case OP_REPLAY:
				chat_on_replay(c, o->token, 0, NULL, 0);
				break;
			case OP_WATCH:
				chat_on_room_sync(c, o->room_id, o->gen, 0,
						  NULL, 0);
				break;
			}
		}
	}
	for (size_t i = 0; i < st.n; i++)
		free(st.ops[i].content);
	st.n = 0;
}

/* Everything written to s: whole lines, valid UTF-8, no control bytes
 * but the line ends. */
static void drain(struct session *s)
{
	static char buf[1 << 16];
	struct outq *q = session_outq(s);
	size_t n;

	while ((n = outq_copy(q, buf, sizeof(buf)))) {
		outq_consume(q, n);
		if (!utf8_valid(buf, n)) {
			fprintf(stderr, "fuzz_lines: invalid UTF-8 written: %.*s\n",
				(int)n, buf);
			abort();
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char b = (unsigned char)buf[i];

			if ((b < 0x20 && b != '\n') || b == 0x7f)
				abort();
		}
	}
}

struct feed {
	struct chat *c;
	struct session *s;
};

static void on_line(void *arg, const char *line, size_t len, bool too_long)
{
	struct feed *f = arg;

	if (too_long)
		chat_session_line_too_long(f->c, f->s);
	else
		chat_session_input(f->c, f->s, line, len);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct chat_config cfg = {
		.history_size = 3, .max_message_bytes = 200,
		.outq_limit = 1 << 20, .seed = 7, .max_rooms = 50,
		.max_rooms_per_user = 8,
	};
	struct conn a = { 0 }, b = { 0 };
	struct linebuf lb;
	struct feed f;
	struct chat *c;
	size_t step, off = 1;

	if (!size)
		return 0;
	log_min_level = LOG_ERROR;
	memset(&st, 0, sizeof(st));
	c = chat_new(&cfg, &store, NULL);
	chat_on_listen_up(c);
	b.s = chat_session_open(c, SESSION_LINE, &sink, &b);
	chat_session_input(c, b.s, "/join general", 13);
	answer_all(c);
	a.s = chat_session_open(c, SESSION_LINE, &sink, &a);
	answer_all(c);
	f.c = c;
	f.s = a.s;
	step = (size_t)data[0] % 61 + 1;
	linebuf_init(&lb, 256);
	while (off < size && !a.closed) {
		size_t n = size - off < step ? size - off : step;

		linebuf_feed(&lb, (const char *)data + off, n, on_line, &f);
		off += n;
		answer_all(c);
		drain(a.s);
		drain(b.s);
	}
	linebuf_fini(&lb);
	chat_session_closed(c, a.s);
	answer_all(c);
	drain(b.s);
	chat_session_closed(c, b.s);
	chat_free(c);
	return 0;
}
