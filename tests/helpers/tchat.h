/*
 * The messages table as the reference for what clients received (a room's
 * rows; TCP lines and stream events checked against them), a burst of
 * lines from many clients at once, the flood that pushes a reader over the
 * slow-consumer limit, and a staged session expiry. Works on the fixture's
 * database (T_DB) and server (T_SRV); the expect_* macros report the
 * caller's file:line.
 */
#ifndef BD_TESTS_HELPERS_TCHAT_H
#define BD_TESTS_HELPERS_TCHAT_H

#include <libpq-fe.h>
#include <stddef.h>

#include "tcl.h"
#include "tsse.h"

/* The columns of tchat_rows(). */
enum {
	TCHAT_ID,      /* messages.id */
	TCHAT_ROOM_ID, /* messages.room_id */
	TCHAT_SEQ,     /* messages.seq */
	TCHAT_NICK,    /* messages.nickname */
	TCHAT_CONTENT, /* messages.content */
	TCHAT_LINE,    /* "nickname: content", as a TCP line shows it */
	TCHAT_ROOMS_ID /* rooms.id of the room asked for */
};

/* room's messages in seq order (columns TCHAT_*). The caller PQclear()s. */
PGresult *tchat_rows(const char *room);

/* How many messages of nick room holds. */
int tchat_count(const char *room, const char *nick);

void tchat_expect_stored_at(const char *file, int line, int n);
/* The messages table (all rooms) holds n rows. */
#define expect_stored(n) tchat_expect_stored_at(__FILE__, __LINE__, (n))

/* Implementations of the macros below. */
void tchat_expect_table_at(const char *file, int line, const char *who,
			   const char *room, char *const *got, int n);
PGresult *tchat_expect_lines_at(const char *file, int line, struct tcl *c,
				const char *room, int n);
void tchat_expect_rows_at(const char *file, int line, struct tsse *s,
			  PGresult *res, int from, int to, const char *room);
void tchat_wait_expired_at(const char *file, int line, struct tcl *c,
			   const char *sid, const char *entry);
void tchat_expect_received_at(const char *file, int line, struct tcl *c,
			      const char *room, int n);

/*
 * got[0..n-1] ("nick: content", as received) is exactly room's messages
 * in seq order; who names the client in a failure.
 */
#define expect_table(who, room, got, n) \
	tchat_expect_table_at(__FILE__, __LINE__, (who), (room), (got), (n))
/*
 * Reads c's next n lines (each within T_WAIT), then room's rows: there
 * must be n, seq 1..n, and line i must be "[room] nickname: content" of
 * row i. Returns the rows (the caller PQclear()s).
 */
#define expect_lines_are_rows(c, room, n) \
	tchat_expect_lines_at(__FILE__, __LINE__, (c), (room), (n))
/*
 * The next messages of s are rows [from, to) of res (tchat_rows(room)),
 * each once, in order, each with the row's id, room, nickname and content.
 */
#define expect_rows(s, res, from, to, room)                                \
	tchat_expect_rows_at(__FILE__, __LINE__, (s), (res), (from), (to), \
			     (room))
/*
 * Makes the API session sid idle (tdb_stage_idle()) again and again, paced,
 * until it is gone from the database and c's /list no longer shows entry
 * ("keeper (in k)"): a tick that ran before the server saw its last stream
 * close may mark it active once more. Fails after 10 s (scaled).
 */
#define wait_expired(c, sid, entry) \
	tchat_wait_expired_at(__FILE__, __LINE__, (c), (sid), (entry))

/*
 * Sends n lines in one write: line k is fmt formatted with the two ints
 * k and who ("m%02d from u%d").
 */
void tchat_send_burst(struct tcl *c, int n, const char *fmt, int who);

/*
 * Reads c's next n messages of room (each within 15 s, scaled; notices
 * "<nick> joined <room>" between them are skipped, any other line fails
 * the test): they must be room's messages in seq order (expect_table()).
 */
#define expect_received(c, room, n) \
	tchat_expect_received_at(__FILE__, __LINE__, (c), (room), (n))

/* The readers of a flood: they all get every message. */
struct tchat_flood {
	struct tcl *from; /* sends the flood; reads it too */
	struct tcl **tcp; /* other TCP readers, ntcp of them */
	int ntcp;
	struct tsse **sse; /* streams of the room, nsse of them */
	int nsse;
	int next;  /* number of the next flood message */
	long sent; /* bytes of flood sent */
};

/*
 * In room "flood": from sends tcl_send_flood() batches, each read whole
 * and in order by from, every tcp[] and every sse[] (the messages'
 * contents checked), until T_SRV's log has a "slow consumer" line; fails
 * after TCL_FLOOD_MAX bytes. The line's figures ("N bytes queued, M more
 * would pass the limit (L)") must show L == limit and N <= L < N + M. Then
 * one more batch reaches every reader (traffic goes on for the others).
 * Returns the log line (malloc'd) for the caller to check whom it names.
 */
char *tchat_flood_until_slow(struct tchat_flood *f, size_t limit);

#endif
