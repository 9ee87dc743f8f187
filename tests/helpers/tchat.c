/*
 * Expectations that need a client, the fixture's database and its server's
 * log at once. Failures report the caller's file:line (the *_at
 * functions) or, inside the flood, the reader and the message number.
 */
#include "tchat.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdb.h"
#include "tfix.h"

PGresult *tchat_rows(const char *room)
{
	return tdb_query(
		&T_DB,
		"SELECT m.id, m.room_id, m.seq, m.nickname, m.content, "
		"m.nickname || ': ' || m.content, r.id "
		"FROM messages m JOIN rooms r ON r.id = m.room_id "
		"WHERE r.name = $1 ORDER BY m.seq",
		room, NULL);
}

int tchat_count(const char *room, const char *nick)
{
	return (int)tdb_int(&T_DB,
			    "SELECT count(*) FROM messages m "
			    "JOIN rooms r ON r.id = m.room_id "
			    "WHERE r.name = $1 AND m.nickname = $2",
			    room, nick, NULL);
}

void tchat_expect_stored_at(const char *file, int line, int n)
{
	long long got = tdb_int(&T_DB, "SELECT count(*) FROM messages", NULL);

	if (got != n)
		trun_fail(file, line,
			  "the messages table holds %lld rows, expected %d",
			  got, n);
}

/* The test ends in trun_fail(): what is not freed goes with its process. */
void tchat_expect_table_at(const char *file, int line, const char *who,
			   const char *room, char *const *got, int n)
{
	PGresult *res = tchat_rows(room);
	int rows = PQntuples(res);

	for (int j = 0; j < rows && j < n; j++)
		if (strcmp(got[j], PQgetvalue(res, j, TCHAT_LINE)))
			trun_fail(
				file, line,
				"%s: message %d is \"%s\", the table says \"%s\"",
				who, j + 1, got[j],
				PQgetvalue(res, j, TCHAT_LINE));
	if (n != rows)
		trun_fail(file, line,
			  "%s received %d messages, the table has %d", who, n,
			  rows);
	PQclear(res);
}

PGresult *tchat_expect_lines_at(const char *file, int line, struct tcl *c,
				const char *room, int n)
{
	char **lines = calloc((size_t)n + 1, sizeof(*lines));
	PGresult *res;

	ck_assert(lines);
	for (int i = 0; i < n; i++) {
		if (tcl_read(c, trun_ms(T_WAIT)) != TCL_LINE)
			trun_fail(file, line, "%s: line %d of %d missing",
				  c->label, i + 1, n);
		lines[i] = strdup(c->line);
	}
	res = tchat_rows(room);
	if (PQntuples(res) != n)
		trun_fail(file, line, "room %s has %d messages, %s got %d",
			  room, PQntuples(res), c->label, n);
	for (int i = 0; i < n; i++) {
		char want[8192];

		if (atoll(PQgetvalue(res, i, TCHAT_SEQ)) != i + 1)
			trun_fail(file, line, "row %d of %s has seq %s", i + 1,
				  room, PQgetvalue(res, i, TCHAT_SEQ));
		snprintf(want, sizeof(want), "[%s] %s: %s", room,
			 PQgetvalue(res, i, TCHAT_NICK),
			 PQgetvalue(res, i, TCHAT_CONTENT));
		if (strcmp(lines[i], want))
			trun_fail(file, line,
				  "%s's line %d is \"%s\"; seq %d is \"%s\"",
				  c->label, i + 1, lines[i], i + 1, want);
		free(lines[i]);
	}
	free(lines);
	return res;
}

void tchat_expect_rows_at(const char *file, int line, struct tsse *s,
			  PGresult *res, int from, int to, const char *room)
{
	for (int k = from; k < to; k++) {
		struct tsse_msg m;

		tsse_expect_seq_at(file, line, s,
				   atoll(PQgetvalue(res, k, TCHAT_SEQ)), &m);
		if (m.id != atoll(PQgetvalue(res, k, TCHAT_ID)) ||
		    strcmp(m.room, room) ||
		    strcmp(m.user, PQgetvalue(res, k, TCHAT_NICK)) ||
		    strcmp(m.content, PQgetvalue(res, k, TCHAT_CONTENT)) ||
		    strcmp(PQgetvalue(res, k, TCHAT_ROOM_ID),
			   PQgetvalue(res, k, TCHAT_ROOMS_ID)))
			trun_fail(
				file, line,
				"%s: seq %lld is {id %lld, room %s, user %s, content \"%s\"}; the table has {id %s, room_id %s, nickname %s, content \"%s\"}",
				s->label, m.seq, m.id, m.room, m.user,
				m.content, PQgetvalue(res, k, TCHAT_ID),
				PQgetvalue(res, k, TCHAT_ROOM_ID),
				PQgetvalue(res, k, TCHAT_NICK),
				PQgetvalue(res, k, TCHAT_CONTENT));
	}
}

void tchat_wait_expired_at(const char *file, int line, struct tcl *c,
			   const char *sid, const char *entry)
{
	int64_t deadline = trun_now_ms() + trun_ms(10000);

	while (tdb_stage_idle(&T_DB, sid) ||
	       tcl_listed_at(file, line, c, entry)) {
		if (trun_now_ms() >= deadline)
			trun_fail(
				file, line,
				"%s still stored or listed %d ms after its last stream closed",
				entry, trun_ms(10000));
		trun_pace();
	}
}

void tchat_send_burst(struct tcl *c, int n, const char *fmt, int who)
{
	size_t cap = (size_t)n * 128, len = 0;
	char *buf = malloc(cap);

	ck_assert(buf);
	for (int k = 0; k < n; k++) {
		int w = snprintf(buf + len, cap - len - 1, fmt, k, who);

		ck_assert(w > 0 && (size_t)w < cap - len - 1);
		len += (size_t)w;
		buf[len++] = '\n';
	}
	tcl_send_raw(c, buf, len);
	free(buf);
}

void tchat_expect_received_at(const char *file, int line, struct tcl *c,
			      const char *room, int n)
{
	char **got = calloc((size_t)n + 1, sizeof(*got));
	char pre[128], joined[128];

	ck_assert(got);
	snprintf(pre, sizeof(pre), "[%s] ", room);
	snprintf(joined, sizeof(joined), " joined %s", room);
	for (int k = 0; k < n;) {
		enum tcl_rc rc = tcl_read(c, trun_ms(15000));
		size_t len;

		ck_assert_msg(rc == TCL_LINE,
			      "%s: got %d of %d messages, then %s", c->label, k,
			      n, rc == TCL_EOF ? "EOF" : "timeout");
		len = strlen(c->line);
		if (!strncmp(c->line, "[system] ", 9) && len > strlen(joined) &&
		    !strcmp(c->line + len - strlen(joined), joined))
			continue;
		ck_assert_msg(!strncmp(c->line, pre, strlen(pre)),
			      "%s: unexpected \"%s\"", c->label, c->line);
		got[k++] = strdup(c->line + strlen(pre));
	}
	tchat_expect_table_at(file, line, c->label, room, got, n);
	for (int k = 0; k < n; k++)
		free(got[k]);
	free(got);
}

/* Whether text is flood message i ("%06d " and 'f's, TCL_FLOOD_BODY
 * bytes). */
static bool is_flood(const char *text, int i)
{
	char want[16];

	snprintf(want, sizeof(want), "%06d ", i);
	return !strncmp(text, want, 7) && strlen(text) == TCL_FLOOD_BODY &&
	       strspn(text + 7, "f") == TCL_FLOOD_BODY - 7;
}

/* The next TCL_FLOOD_BATCH lines on c are from's flood messages from
 * first on. */
static void read_flood_tcp(struct tcl *c, const struct tcl *from, int first)
{
	char p[128];

	snprintf(p, sizeof(p), "[flood] %s: ", from->nick);
	for (int i = first; i < first + TCL_FLOOD_BATCH; i++) {
		enum tcl_rc rc = tcl_read(c, trun_ms(T_WAIT));

		ck_assert_msg(rc == TCL_LINE,
			      "%s: flood message %d missing (%s)", c->label, i,
			      rc == TCL_EOF ? "connection closed" : "timeout");
		ck_assert_msg(!strncmp(c->line, p, strlen(p)) &&
				      is_flood(c->line + strlen(p), i),
			      "%s: expected flood message %d, got \"%.80s\"",
			      c->label, i, c->line);
	}
}

/* The next TCL_FLOOD_BATCH events on s are from's flood messages from
 * first on. */
static void read_flood_sse(struct tsse *s, const struct tcl *from, int first)
{
	struct tsse_msg m;

	for (int i = first; i < first + TCL_FLOOD_BATCH; i++) {
		sse_expect_msg(s, &m);
		ck_assert_msg(
			!strcmp(m.user, from->nick) && is_flood(m.content, i),
			"%s: expected flood message %d, got %s: \"%.80s\"",
			s->label, i, m.user, m.content);
	}
}

/* One batch, read by everyone. */
static void flood_round(struct tchat_flood *f)
{
	tcl_send_flood(f->from, f->next);
	read_flood_tcp(f->from, f->from, f->next);
	for (int i = 0; i < f->ntcp; i++)
		read_flood_tcp(f->tcp[i], f->from, f->next);
	for (int i = 0; i < f->nsse; i++)
		read_flood_sse(f->sse[i], f->from, f->next);
	f->next += TCL_FLOOD_BATCH;
	f->sent += (long)TCL_FLOOD_BATCH * TCL_FLOOD_BODY;
}

char *tchat_flood_until_slow(struct tchat_flood *f, size_t limit)
{
	size_t queued, more, lim;
	const char *fig;
	char *line;

	while (!(line = tsrv_log_find(&T_SRV, " WARN slow_consumer "))) {
		ck_assert_msg(
			f->sent < TCL_FLOOD_MAX,
			"no slow_consumer in the log after %ld bytes of traffic",
			f->sent);
		flood_round(f);
	}
	trun_note("slow consumer dropped after %d messages (%ld bytes): %s",
		  f->next, f->sent, line);
	/* Its figures: what was queued, and what did not fit any more. */
	fig = strstr(line, " queued=");
	ck_assert_msg(
		fig && sscanf(fig,
			      " queued=%zu more=%zu limit=%zu",
			      &queued, &more, &lim) == 3,
		"slow-consumer log line: %s", line);
	ck_assert_uint_eq(lim, limit);
	ck_assert_uint_le(queued, lim);
	ck_assert_uint_gt(queued + more, lim);
	flood_round(f);
	return line;
}
