/*
 * Line client for the TCP protocol: connect, send lines, read lines with a
 * deadline per read (poll), and expectations that fail the test with what
 * arrived instead. The expect_* macros report the caller's file:line.
 */
#ifndef BD_TESTS_HELPERS_TCL_H
#define BD_TESTS_HELPERS_TCL_H

#include <stdbool.h>
#include <stddef.h>

#include "trun.h"

#define TCL_BUF (64 * 1024) /* longest line the server may send */

struct tcl {
	int fd;		   /* connected socket, -1 after close */
	char label[40];	   /* who this is, in failure messages */
	char nick[64];	   /* nickname as the server knows it */
	char buf[TCL_BUF]; /* received, not yet returned bytes */
	size_t len;	   /* bytes in buf */
	char *line;	   /* last line read, without "\n" */
	size_t cap;	   /* size of line */
	bool eof;	   /* peer closed (FIN or RST) */
	int err;	   /* errno of a reset, 0 for FIN */
	char **hist;	   /* history lines of the last tcl_join() */
	int nhist;	   /* how many */
};

enum tcl_rc { TCL_LINE, TCL_EOF, TCL_TIMEOUT };

/* Connects to 127.0.0.1:port; rcvbuf > 0 sets SO_RCVBUF first. */
struct tcl *tcl_connect_opt(int port, const char *label, int rcvbuf);
struct tcl *tcl_connect(int port, const char *label);
/* Closes the connection and frees c; accepts NULL. A client the test
 * does not free, the fixture's teardown does (trun_free_tracked()). */
void tcl_free(struct tcl *c);

/* Sends bytes as they are (no newline added); fails on error. */
void tcl_send_raw(struct tcl *c, const void *data, size_t len);
/* Sends the bytes of a C string as they are. */
void tcl_send_str(struct tcl *c, const char *s);
/* Sends a formatted line plus "\n". */
void tcl_send(struct tcl *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Reads one line into c->line (without its "\n"; a "\r" is kept),
 * waiting at most timeout_ms for it.
 */
enum tcl_rc tcl_read(struct tcl *c, int timeout_ms);

/* Implementations of the macros below. */
void tcl_expect_next_at(const char *file, int line, struct tcl *c,
			const char *text, int timeout_ms);
void tcl_expect_line_at(const char *file, int line, struct tcl *c,
			const char *text, int timeout_ms);
const char *tcl_expect_prefix_at(const char *file, int line, struct tcl *c,
				 const char *prefix, int timeout_ms);
void tcl_expect_eof_at(const char *file, int line, struct tcl *c,
		       int timeout_ms, bool lines_ok);
const char *tcl_welcome_at(const char *file, int line, struct tcl *c);
void tcl_nick_at(const char *file, int line, struct tcl *c, const char *nick);
int tcl_join_at(const char *file, int line, struct tcl *c, const char *room);
void tcl_create_at(const char *file, int line, struct tcl *c, const char *room);
void tcl_say_at(const char *file, int line, struct tcl *c, const char *room,
		const char *text);

/* The very next line must be text. */
#define expect_next(c, text) \
	tcl_expect_next_at(__FILE__, __LINE__, (c), (text), trun_ms(T_WAIT))
/* Reads (skipping other lines) until a line equals text. */
#define expect_line(c, text) \
	tcl_expect_line_at(__FILE__, __LINE__, (c), (text), trun_ms(T_WAIT))
/* Reads (skipping) until a line starts with prefix; returns that line. */
#define expect_prefix(c, prefix) \
	tcl_expect_prefix_at(__FILE__, __LINE__, (c), (prefix), trun_ms(T_WAIT))
/* The server closes the connection and sends nothing more first. */
#define expect_eof(c) \
	tcl_expect_eof_at(__FILE__, __LINE__, (c), trun_ms(T_WAIT), false)
/* Drains whatever is pending until the server closes the connection. */
#define expect_eof_after_lines(c, ms) \
	tcl_expect_eof_at(__FILE__, __LINE__, (c), (ms), true)
/* Reads the 3 welcome lines; returns (and records) the guest nick. */
#define read_welcome(c) tcl_welcome_at(__FILE__, __LINE__, (c))
/* "/nick x", expecting "[system] You are now x" as the next line. */
#define do_nick(c, x) tcl_nick_at(__FILE__, __LINE__, (c), (x))
/* "/join r", consuming "You joined r (N ...)" and N history lines (kept in
 * c->hist); returns N. */
#define do_join(c, r) tcl_join_at(__FILE__, __LINE__, (c), (r))
/* "/create r": "Created room r" then "You joined r (0 recent messages)". */
#define do_create(c, r) tcl_create_at(__FILE__, __LINE__, (c), (r))
/* Sends text as a message and expects it back, "[room] nick: text", as the
 * next line. */
#define do_say(c, room, text) \
	tcl_say_at(__FILE__, __LINE__, (c), (room), (text))

void tcl_expect_reply_at(const char *file, int line, struct tcl *c,
			 const char *send, const char *reply);
int tcl_join_seen_at(const char *file, int line, struct tcl *c,
		     const char *room, ...);
void tcl_say_seen_at(const char *file, int line, struct tcl *c,
		     const char *room, const char *text, ...);
void tcl_quit_at(const char *file, int line, struct tcl *c);
struct tcl *tcl_user_back_at(const char *file, int line, int port,
			     const char *nick, const char *rooms);

/* Sends the line send (as it is) and expects reply as the next line. */
#define expect_reply(c, send, reply) \
	tcl_expect_reply_at(__FILE__, __LINE__, (c), (send), (reply))
/*
 * do_join(c, room), then the next line of each client after room (a
 * member already) is "[system] <c's nick> joined <room>". Returns the
 * number of history lines, as do_join().
 */
#define do_join_seen(c, room, ...)                                     \
	tcl_join_seen_at(__FILE__, __LINE__, (c), (room), __VA_ARGS__, \
			 (struct tcl *)NULL)
/* do_say(c, room, text), then the next line of each client after text is
 * "[room] <c's nick>: text" as well. */
#define do_say_seen(c, room, text, ...)                                       \
	tcl_say_seen_at(__FILE__, __LINE__, (c), (room), (text), __VA_ARGS__, \
			(struct tcl *)NULL)
/* "/quit": "[system] Goodbye" as the next line, then the server closes. */
#define do_quit(c) tcl_quit_at(__FILE__, __LINE__, (c))
/*
 * A new connection (labelled "<nick>-again") that takes the used nickname
 * nick back: "You are now <nick>", then "You are a member of: <rooms>".
 */
#define user_back(port, nick, rooms) \
	tcl_user_back_at(__FILE__, __LINE__, (port), (nick), (rooms))

void tcl_expect_set_at(const char *file, int line, struct tcl *c,
		       const char *const *want, int n);
void tcl_expect_list_at(const char *file, int line, struct tcl *c,
			const char *const *want, int n);
int tcl_list_at(const char *file, int line, struct tcl *c);
void tcl_wait_online_at(const char *file, int line, struct tcl *c, int n);

/* The next n lines are exactly want[0..n-1] in some order. */
#define expect_set(c, want, n) \
	tcl_expect_set_at(__FILE__, __LINE__, (c), (want), (n))
/* Sends /list: "[system] Online users (n):", then want[0..n-1] ("[system]
 *   alice (no room)") in some order. */
#define expect_list(c, want, n) \
	tcl_expect_list_at(__FILE__, __LINE__, (c), (want), (n))
/* Sends /list, consumes the reply; returns the number of users. */
#define do_list(c) tcl_list_at(__FILE__, __LINE__, (c))
/* Sends /list until it shows n users (after a disconnect was handled). */
#define wait_online(c, n) tcl_wait_online_at(__FILE__, __LINE__, (c), (n))

bool tcl_listed_at(const char *file, int line, struct tcl *c,
		   const char *entry);
long long tcl_wait_unlisted_at(const char *file, int line, struct tcl *c,
			       const char *entry, int ms);

/*
 * Sends /list and consumes the reply; whether one of its entries is
 * exactly "[system]   <entry>" ("alice (in general)").
 */
#define listed(c, entry) tcl_listed_at(__FILE__, __LINE__, (c), (entry))
/*
 * Polls /list (paced: expiry has no event) until it no longer shows
 * entry; fails after ms. Returns the ms it took.
 */
#define wait_unlisted(c, entry, ms) \
	tcl_wait_unlisted_at(__FILE__, __LINE__, (c), (entry), (ms))

/* The server's refusals of a message line (TCP). */
#define TCL_NOT_SENT "[system] error: message not sent (database unavailable)"
/* Sent to the database when the connection died: stored or not. */
#define TCL_LOST \
	"[system] error: database connection lost; your message may not have been sent"

/* The refusals one client got for its message lines. */
struct tcl_refusals {
	int not_sent; /* TCL_NOT_SENT lines */
	int lost;     /* TCL_LOST lines */
};

/* Counts line in r when it is one of the refusals above: true. */
bool tcl_count_refusal(struct tcl_refusals *r, const char *line);

void tcl_expect_accounted_at(const char *file, int line, const char *who,
			     int sent, int stored,
			     const struct tcl_refusals *r, bool lost_unstored);

/*
 * who sent `sent` message lines (each text once), `stored` of them are in
 * the table, and it got the refusals r. Each line must be stored XOR
 * refused, except that a TCL_LOST refusal may go with a stored line (its
 * statement was in flight; it may have committed). Refusals do not name
 * their line and need not come in line order (a line refused at once can
 * overtake the refusals of a failed batch), so this is the condition for
 * such a line-by-line mapping to exist: not_sent <= sent - stored <=
 * not_sent + lost. With lost_unstored (the in-flight statement certainly
 * did not commit) the right-hand side is an equality.
 */
#define expect_accounted(who, sent, stored, r, lost_unstored)            \
	tcl_expect_accounted_at(__FILE__, __LINE__, (who), (sent), (stored), \
				(r), (lost_unstored))

/* A connected client that read its welcome and set its nickname. */
struct tcl *tcl_user(int port, const char *nick);

/* A connected client that read its welcome (its guest nickname is in
 * c->nick). */
struct tcl *tcl_guest(int port, const char *label);

/* A flood of messages for slow consumer tests. */
#define TCL_FLOOD_BATCH 50	  /* lines per tcl_send_flood() */
#define TCL_FLOOD_BODY 1900	  /* bytes per message */
#define TCL_FLOOD_MAX (32L << 20) /* give up after this many bytes */

/*
 * Sends TCL_FLOOD_BATCH message lines in one write, numbered from from:
 * each "%06d " and 'f's up to TCL_FLOOD_BODY bytes.
 */
void tcl_send_flood(struct tcl *c, int from);

#endif
