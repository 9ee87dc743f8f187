/*
 * Server-Sent Events reader over a raw loopback socket: sends the GET
 * (optionally with Last-Event-ID), parses the status and headers, then
 * reads the stream block by block (a block ends at a blank line) with a
 * deadline per read. The expect_* macros report the caller's file:line
 * and what arrived instead.
 */
#ifndef BD_TESTS_HELPERS_TSSE_H
#define BD_TESTS_HELPERS_TSSE_H

#include <stdbool.h>
#include <stddef.h>

#include "thttp.h"
#include "trun.h"

/* One block of the stream, its fields as the SSE format defines them. */
struct tsse_ev {
	char *id;      /* value of the id field, NULL when none */
	char *event;   /* value of the event field, NULL when none */
	char *data;    /* data fields joined with "\n", NULL when none */
	char *retry;   /* value of the retry field, NULL when none */
	char *comment; /* first comment line without its ':', NULL if none */
	char *raw;     /* the block as received, "\\n" between its lines */
};

struct tsse {
	int fd;			/* connected socket, -1 after close */
	char label[40];		/* who this is, in failure messages */
	struct thttp_resp resp; /* status and headers; body of a refusal */
	bool chunked;		/* Transfer-Encoding: chunked */
	char *raw;		/* received body bytes not yet de-chunked */
	size_t rlen, rcap;
	char *buf; /* stream text not yet split into blocks */
	size_t len, cap;
	bool cr;	   /* the last byte decoded was a CR */
	bool eof;	   /* the server closed (FIN or RST) */
	struct tsse_ev ev; /* the last block read */
	int blocks;	   /* blocks read so far */
};

enum tsse_rc { TSSE_BLOCK, TSSE_EOF, TSSE_TIMEOUT };

/* A message event's data, checked against the contract's shape. */
struct tsse_msg {
	long long id;	     /* messages.id */
	long long seq;	     /* the room's sequence number (= the SSE id) */
	char room[64];	     /* room name */
	char user[64];	     /* sender's nickname */
	char created_at[40]; /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
	char content[8192];  /* text */
};

/*
 * GET path (sent as it is) with Last-Event-ID: last_event_id unless NULL;
 * waits for the status line and headers (and, unless the status is 200,
 * the body). Fails the test when nothing complete arrives in T_WAIT.
 */
struct tsse *tsse_open(int port, const char *label, const char *path,
		       const char *last_event_id);

/* tsse_open() with SO_RCVBUF set to rcvbuf first (unless 0): a reader that
 * stops reading then leaves the server's data in the server's queue. */
struct tsse *tsse_open_opt(int port, const char *label, const char *path,
			   const char *last_event_id, int rcvbuf);

/* GET /api/messages/<room>?session_id=<sid>, as tsse_open(). */
struct tsse *tsse_open_room(int port, const char *label, const char *room,
			    const char *sid, const char *last_event_id);

/* tsse_open_room(), then sse_expect_open() (reported at file:line). */
struct tsse *tsse_open_room_at(const char *file, int line, int port,
			       const char *label, const char *room,
			       const char *sid, const char *last_event_id);
#define sse_open_room(port, label, room, sid, last)                           \
	tsse_open_room_at(__FILE__, __LINE__, (port), (label), (room), (sid), \
			  (last))

/* tsse_open_room() is refused with status st (sse_expect_refused());
 * closes it. */
void tsse_room_refused_at(const char *file, int line, int port,
			  const char *label, const char *room, const char *sid,
			  int st);
#define sse_expect_room_refused(port, label, room, sid, st)               \
	tsse_room_refused_at(__FILE__, __LINE__, (port), (label), (room), \
			     (sid), (st))

/* Closes the connection (FIN) and frees s; accepts NULL. A stream the
 * test does not free, the fixture's teardown does (trun_free_tracked()). */
void tsse_free(struct tsse *s);

/* Closes with a reset (SO_LINGER 0) and frees s. */
void tsse_abort(struct tsse *s);

/* Reads the next block into s->ev, waiting at most timeout_ms. */
enum tsse_rc tsse_read(struct tsse *s, int timeout_ms);

/* Implementations of the macros below. */
void tsse_expect_open_at(const char *file, int line, struct tsse *s);
/* The same for a stream through nginx (no X-Accel-Buffering: nginx takes
 * it for itself). */
void tsse_expect_open_proxied_at(const char *file, int line, struct tsse *s);
void tsse_expect_refused_at(const char *file, int line, struct tsse *s,
			    int status);
void tsse_expect_msg_at(const char *file, int line, struct tsse *s,
			struct tsse_msg *m, int timeout_ms);
void tsse_expect_seq_at(const char *file, int line, struct tsse *s,
			long long seq, struct tsse_msg *m);
void tsse_expect_range_at(const char *file, int line, struct tsse *s,
			  long long first, long long last);
void tsse_expect_system_at(const char *file, int line, struct tsse *s,
			   const char *room, const char *text);
long long tsse_expect_reset_at(const char *file, int line, struct tsse *s);
void tsse_expect_comment_at(const char *file, int line, struct tsse *s,
			    const char *text, int timeout_ms);
void tsse_expect_end_at(const char *file, int line, struct tsse *s);

/*
 * Status 200 with Content-Type text/event-stream, Cache-Control no-cache,
 * no-transform and X-Accel-Buffering: no, then "retry: 3000" as the first
 * block.
 */
#define sse_expect_open(s) tsse_expect_open_at(__FILE__, __LINE__, (s))
/* Refused with status st and a JSON {"error": ...} body. */
#define sse_expect_refused(s, st) \
	tsse_expect_refused_at(__FILE__, __LINE__, (s), (st))
/*
 * The next block other than comments is "event: message" with an id equal
 * to its data's seq and the data's fields all present; fills *m.
 */
#define sse_expect_msg(s, m) \
	tsse_expect_msg_at(__FILE__, __LINE__, (s), (m), trun_ms(T_WAIT))
/* The same, and its seq is seq. m may be NULL. */
#define sse_expect_seq(s, seq, m) \
	tsse_expect_seq_at(__FILE__, __LINE__, (s), (seq), (m))
/* The next messages are seq first..last, each once, in order. */
#define sse_expect_range(s, first, last) \
	tsse_expect_range_at(__FILE__, __LINE__, (s), (first), (last))
/* The next block other than comments is the system event
 * {"room": room, "text": text}. */
#define sse_expect_system(s, room, text) \
	tsse_expect_system_at(__FILE__, __LINE__, (s), (room), (text))
/* The next block other than comments is "event: reset" with
 * {"reason": "history truncated", "missed": M > 0}; returns M. */
#define sse_expect_reset(s) tsse_expect_reset_at(__FILE__, __LINE__, (s))
/* The very next block is the comment ":<text>" alone (": ping" has text
 * " ping"), within ms. */
#define sse_expect_comment(s, text, ms) \
	tsse_expect_comment_at(__FILE__, __LINE__, (s), (text), (ms))
/* The server ends s (closes the connection, or ends the chunked body)
 * within T_WAIT; blocks may come first. */
#define sse_expect_end(s) tsse_expect_end_at(__FILE__, __LINE__, (s))

#endif
