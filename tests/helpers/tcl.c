/*
 * Line client: a blocking socket read through poll() with a deadline, so a
 * missing reply fails the test in bounded time instead of hanging it.
 */
#include "tcl.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* tcl_free() for trun_track(). */
static void free_tracked(void *c)
{
	tcl_free(c);
}

struct tcl *tcl_connect_opt(int port, const char *label, int rcvbuf)
{
	struct tcl *c = calloc(1, sizeof(*c));

	ck_assert(c);
	snprintf(c->label, sizeof(c->label), "%s", label);
	c->fd = trun_dial(port, rcvbuf, false, label);
	trun_track(c, free_tracked);
	return c;
}

struct tcl *tcl_connect(int port, const char *label)
{
	return tcl_connect_opt(port, label, 0);
}

void tcl_free(struct tcl *c)
{
	if (!c)
		return;
	trun_untrack(c);
	if (c->fd >= 0)
		close(c->fd);
	for (int i = 0; i < c->nhist; i++)
		free(c->hist[i]);
	free(c->hist);
	free(c->line);
	free(c);
}

void tcl_send_raw(struct tcl *c, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "%s: send: %s", c->label, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

void tcl_send_str(struct tcl *c, const char *s)
{
	tcl_send_raw(c, s, strlen(s));
}

void tcl_send(struct tcl *c, const char *fmt, ...)
{
	char small[8192], *buf = small;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small) - 1, fmt, ap);
	va_end(ap);
	ck_assert(n >= 0);
	if ((size_t)n >= sizeof(small) - 1) {
		buf = malloc((size_t)n + 2);
		ck_assert(buf);
		va_start(ap, fmt);
		vsnprintf(buf, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	buf[n] = '\n';
	tcl_send_raw(c, buf, (size_t)n + 1);
	if (buf != small)
		free(buf);
}

/* Moves the first complete line of buf into c->line. */
static bool take_line(struct tcl *c)
{
	char *nl = memchr(c->buf, '\n', c->len);
	size_t n;

	if (!nl)
		return false;
	n = (size_t)(nl - c->buf);
	if (n + 1 > c->cap) {
		c->cap = n + 1;
		c->line = realloc(c->line, c->cap);
		ck_assert(c->line);
	}
	/* Kept as sent: the server ends lines in "\n" alone, so a "\r" here
	 * is a bug the comparison must see. */
	memcpy(c->line, c->buf, n);
	c->line[n] = '\0';
	c->len -= n + 1;
	memmove(c->buf, nl + 1, c->len);
	return true;
}

enum tcl_rc tcl_read(struct tcl *c, int timeout_ms)
{
	int64_t deadline = trun_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int64_t left;
		ssize_t n;
		int r;

		if (take_line(c))
			return TCL_LINE;
		if (c->eof)
			return TCL_EOF;
		ck_assert_msg(c->len < sizeof(c->buf),
			      "%s: line longer than %zu bytes from the server",
			      c->label, sizeof(c->buf));
		left = deadline - trun_now_ms();
		if (left < 0)
			left = 0;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		ck_assert_msg(r >= 0, "poll: %s", strerror(errno));
		if (r == 0)
			return TCL_TIMEOUT;
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno != ECONNRESET)
			ck_abort_msg("%s: recv: %s", c->label, strerror(errno));
		c->eof = true;
		c->err = n < 0 ? errno : 0;
		if (c->len) { /* a last line without "\n" */
			c->buf[c->len++] = '\n';
		}
	}
}

static const char *rc_text(struct tcl *c, enum tcl_rc rc)
{
	if (rc == TCL_TIMEOUT)
		return "then nothing (timeout)";
	return c->err ? "then connection reset" : "then connection closed";
}

typedef bool match_fn(const char *line, const char *want);

static bool match_exact(const char *line, const char *want)
{
	return !strcmp(line, want);
}

static bool match_prefix(const char *line, const char *want)
{
	return !strncmp(line, want, strlen(want));
}

static void expect(const char *file, int line, struct tcl *c, const char *want,
		   int timeout_ms, match_fn *match, bool skip, const char *what)
{
	struct trun_seen seen = { .len = 0 };
	int64_t deadline = trun_now_ms() + timeout_ms;

	for (;;) {
		enum tcl_rc rc = tcl_read(c, trun_left_ms(deadline));

		if (rc != TCL_LINE)
			trun_fail(
				file, line,
				"%s: expected %s \"%s\" within %d ms; got %d other line(s):%s\n  %s",
				c->label, what, want, timeout_ms, seen.count,
				seen.text, rc_text(c, rc));
		if (match(c->line, want))
			return;
		if (!skip)
			trun_fail(
				file, line,
				"%s: expected %s \"%s\" as the next line; got \"%.500s\"",
				c->label, what, want, c->line);
		trun_seen_add(&seen, c->line, 300);
	}
}

void tcl_expect_next_at(const char *file, int line, struct tcl *c,
			const char *text, int timeout_ms)
{
	expect(file, line, c, text, timeout_ms, match_exact, false, "line");
}

void tcl_expect_line_at(const char *file, int line, struct tcl *c,
			const char *text, int timeout_ms)
{
	expect(file, line, c, text, timeout_ms, match_exact, true, "line");
}

const char *tcl_expect_prefix_at(const char *file, int line, struct tcl *c,
				 const char *prefix, int timeout_ms)
{
	expect(file, line, c, prefix, timeout_ms, match_prefix, true,
	       "a line starting with");
	return c->line;
}

void tcl_expect_eof_at(const char *file, int line, struct tcl *c,
		       int timeout_ms, bool lines_ok)
{
	struct trun_seen seen = { .len = 0 };
	int64_t deadline = trun_now_ms() + timeout_ms;

	for (;;) {
		enum tcl_rc rc = tcl_read(c, trun_left_ms(deadline));

		if (rc == TCL_EOF)
			return;
		if (rc == TCL_TIMEOUT)
			trun_fail(
				file, line,
				"%s: expected the server to close the connection within %d ms; got %d line(s):%s\n  then nothing (timeout)",
				c->label, timeout_ms, seen.count, seen.text);
		if (!lines_ok)
			trun_fail(
				file, line,
				"%s: expected the connection to close; got \"%.500s\"",
				c->label, c->line);
		trun_seen_add(&seen, c->line, 300);
	}
}

/* "guest-" and six digits. */
static bool is_guest_nick(const char *s, size_t n)
{
	if (n != 12 || strncmp(s, "guest-", 6))
		return false;
	for (size_t i = 6; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

const char *tcl_welcome_at(const char *file, int line, struct tcl *c)
{
	static const char pre[] = "[system] You are ";
	static const char post[] = ". Set a nickname with /nick <name>.";
	const size_t npre = sizeof(pre) - 1, npost = sizeof(post) - 1;
	enum tcl_rc rc;
	size_t n;

	tcl_expect_next_at(file, line, c, "[system] Welcome to Baby Discord!",
			   trun_ms(T_WAIT));
	rc = tcl_read(c, trun_ms(T_WAIT));
	if (rc != TCL_LINE)
		trun_fail(file, line, "%s: welcome line 2 missing (%s)",
			  c->label, rc_text(c, rc));
	n = strlen(c->line);
	if (n < npre + npost || strncmp(c->line, pre, npre) ||
	    strcmp(c->line + n - npost, post) ||
	    !is_guest_nick(c->line + npre, n - npre - npost))
		trun_fail(file, line,
			  "%s: expected \"%sguest-NNNNNN%s\"; got \"%.500s\"",
			  c->label, pre, post, c->line);
	snprintf(c->nick, sizeof(c->nick), "%.*s", (int)(n - npre - npost),
		 c->line + npre);
	tcl_expect_next_at(file, line, c, "[system] Type /help for commands.",
			   trun_ms(T_WAIT));
	return c->nick;
}

void tcl_nick_at(const char *file, int line, struct tcl *c, const char *nick)
{
	char want[256];

	tcl_send(c, "/nick %s", nick);
	snprintf(want, sizeof(want), "[system] You are now %s", nick);
	tcl_expect_next_at(file, line, c, want, trun_ms(T_WAIT));
	snprintf(c->nick, sizeof(c->nick), "%s", nick);
}

int tcl_join_at(const char *file, int line, struct tcl *c, const char *room)
{
	char pre[256], want[320], hpre[256];
	enum tcl_rc rc;
	int n = -1;

	for (int i = 0; i < c->nhist; i++)
		free(c->hist[i]);
	free(c->hist);
	c->hist = NULL;
	c->nhist = 0;
	tcl_send(c, "/join %s", room);
	rc = tcl_read(c, trun_ms(T_WAIT));
	if (rc != TCL_LINE)
		trun_fail(file, line, "%s: /join %s: no reply (%s)", c->label,
			  room, rc_text(c, rc));
	snprintf(pre, sizeof(pre), "[system] You joined %s (", room);
	if (!strncmp(c->line, pre, strlen(pre)))
		n = atoi(c->line + strlen(pre));
	snprintf(want, sizeof(want), "%s%d recent message%s)", pre, n,
		 n == 1 ? "" : "s");
	if (n < 0 || strcmp(c->line, want))
		trun_fail(
			file, line,
			"%s: expected \"%sN recent messages)\"; got \"%.500s\"",
			c->label, pre, c->line);
	c->hist = calloc((size_t)n + 1, sizeof(*c->hist));
	ck_assert(c->hist);
	snprintf(hpre, sizeof(hpre), "[%s] ", room);
	for (int i = 0; i < n; i++) {
		rc = tcl_read(c, trun_ms(T_WAIT));
		if (rc != TCL_LINE)
			trun_fail(
				file, line,
				"%s: /join %s: history line %d of %d missing (%s)",
				c->label, room, i + 1, n, rc_text(c, rc));
		if (strncmp(c->line, hpre, strlen(hpre)))
			trun_fail(
				file, line,
				"%s: /join %s: history line %d of %d is \"%.500s\"",
				c->label, room, i + 1, n, c->line);
		c->hist[c->nhist++] = strdup(c->line);
	}
	return n;
}

void tcl_create_at(const char *file, int line, struct tcl *c, const char *room)
{
	char want[256];

	tcl_send(c, "/create %s", room);
	snprintf(want, sizeof(want), "[system] Created room %s", room);
	tcl_expect_next_at(file, line, c, want, trun_ms(T_WAIT));
	snprintf(want, sizeof(want),
		 "[system] You joined %s (0 recent messages)", room);
	tcl_expect_next_at(file, line, c, want, trun_ms(T_WAIT));
}

void tcl_expect_set_at(const char *file, int line, struct tcl *c,
		       const char *const *want, int n)
{
	bool used[64] = { false };

	ck_assert(n <= 64);
	for (int i = 0; i < n; i++) {
		enum tcl_rc rc = tcl_read(c, trun_ms(T_WAIT));
		int j;

		if (rc != TCL_LINE)
			trun_fail(
				file, line,
				"%s: expected %d lines (any order), line %d missing (%s)",
				c->label, n, i + 1, rc_text(c, rc));
		for (j = 0; j < n; j++)
			if (!used[j] && !strcmp(c->line, want[j]))
				break;
		if (j == n) {
			char list[2048];
			size_t len = 0;

			list[0] = '\0';
			for (j = 0; j < n && len < sizeof(list) - 1; j++)
				len += (size_t)snprintf(
					list + len, sizeof(list) - len,
					"\n    \"%s\"%s", want[j],
					used[j] ? " (seen)" : "");
			trun_fail(file, line,
				  "%s: got \"%.500s\"; expected one of:%s",
				  c->label, c->line, list);
		}
		used[j] = true;
	}
}

int tcl_list_at(const char *file, int line, struct tcl *c)
{
	static const char pre[] = "[system] Online users (";
	enum tcl_rc rc;
	int n;

	tcl_send(c, "/list");
	rc = tcl_read(c, trun_ms(T_WAIT));
	if (rc != TCL_LINE)
		trun_fail(file, line, "%s: /list: no reply (%s)", c->label,
			  rc_text(c, rc));
	if (strncmp(c->line, pre, sizeof(pre) - 1) ||
	    (n = atoi(c->line + sizeof(pre) - 1)) < 0)
		trun_fail(file, line, "%s: /list: got \"%.500s\"", c->label,
			  c->line);
	for (int i = 0; i < n; i++) {
		rc = tcl_read(c, trun_ms(T_WAIT));
		if (rc != TCL_LINE || strncmp(c->line, "[system]   ", 11))
			trun_fail(file, line,
				  "%s: /list: entry %d of %d: \"%.500s\"",
				  c->label, i + 1, n,
				  rc == TCL_LINE ? c->line : rc_text(c, rc));
	}
	return n;
}

void tcl_wait_online_at(const char *file, int line, struct tcl *c, int n)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
	int got;

	while ((got = tcl_list_at(file, line, c)) != n)
		if (trun_now_ms() > deadline)
			trun_fail(file, line,
				  "%s: /list still shows %d users, expected %d",
				  c->label, got, n);
}

void tcl_say_at(const char *file, int line, struct tcl *c, const char *room,
		const char *text)
{
	char want[8192];

	tcl_send(c, "%s", text);
	snprintf(want, sizeof(want), "[%s] %s: %s", room, c->nick, text);
	tcl_expect_next_at(file, line, c, want, trun_ms(T_WAIT));
}

void tcl_expect_reply_at(const char *file, int line, struct tcl *c,
			 const char *send, const char *reply)
{
	tcl_send(c, "%s", send);
	tcl_expect_next_at(file, line, c, reply, trun_ms(T_WAIT));
}

/* Each client of the NULL-terminated list ap gets want as its next line. */
static void expect_next_each(const char *file, int line, va_list ap,
			     const char *want)
{
	struct tcl *o;

	while ((o = va_arg(ap, struct tcl *)))
		tcl_expect_next_at(file, line, o, want, trun_ms(T_WAIT));
}

int tcl_join_seen_at(const char *file, int line, struct tcl *c,
		     const char *room, ...)
{
	int n = tcl_join_at(file, line, c, room);
	char want[256];
	va_list ap;

	snprintf(want, sizeof(want), "[system] %s joined %s", c->nick, room);
	va_start(ap, room);
	expect_next_each(file, line, ap, want);
	va_end(ap);
	return n;
}

void tcl_say_seen_at(const char *file, int line, struct tcl *c,
		     const char *room, const char *text, ...)
{
	char want[8192];
	va_list ap;

	tcl_say_at(file, line, c, room, text);
	snprintf(want, sizeof(want), "[%s] %s: %s", room, c->nick, text);
	va_start(ap, text);
	expect_next_each(file, line, ap, want);
	va_end(ap);
}

void tcl_quit_at(const char *file, int line, struct tcl *c)
{
	tcl_expect_reply_at(file, line, c, "/quit", "[system] Goodbye");
	tcl_expect_eof_at(file, line, c, trun_ms(T_WAIT), false);
}

struct tcl *tcl_user_back_at(const char *file, int line, int port,
			     const char *nick, const char *rooms)
{
	char label[80], want[512];
	struct tcl *c;

	snprintf(label, sizeof(label), "%s-again", nick);
	c = tcl_connect(port, label);
	tcl_welcome_at(file, line, c);
	tcl_nick_at(file, line, c, nick);
	snprintf(want, sizeof(want), "[system] You are a member of: %s", rooms);
	tcl_expect_next_at(file, line, c, want, trun_ms(T_WAIT));
	return c;
}

void tcl_expect_list_at(const char *file, int line, struct tcl *c,
			const char *const *want, int n)
{
	char head[64];

	snprintf(head, sizeof(head), "[system] Online users (%d):", n);
	tcl_expect_reply_at(file, line, c, "/list", head);
	tcl_expect_set_at(file, line, c, want, n);
}

struct tcl *tcl_user(int port, const char *nick)
{
	struct tcl *c = tcl_guest(port, nick);

	do_nick(c, nick);
	return c;
}

struct tcl *tcl_guest(int port, const char *label)
{
	struct tcl *c = tcl_connect(port, label);

	read_welcome(c);
	return c;
}

bool tcl_count_refusal(struct tcl_refusals *r, const char *line)
{
	if (!strcmp(line, TCL_NOT_SENT))
		r->not_sent++;
	else if (!strcmp(line, TCL_LOST))
		r->lost++;
	else
		return false;
	return true;
}

void tcl_expect_accounted_at(const char *file, int line, const char *who,
			     int sent, int stored,
			     const struct tcl_refusals *r, bool lost_unstored)
{
	int unstored = sent - stored;

	if (stored > sent)
		trun_fail(file, line, "%s: %d lines sent, %d stored", who,
			  sent, stored);
	if (r->not_sent > unstored)
		trun_fail(file, line,
			  "%s: %d lines sent, %d stored, %d refused as not sent: %d stored and refused",
			  who, sent, stored, r->not_sent,
			  r->not_sent - unstored);
	if (unstored > r->not_sent + r->lost)
		trun_fail(file, line,
			  "%s: %d lines sent, %d stored, %d refused (%d as lost): %d neither stored nor refused",
			  who, sent, stored, r->not_sent + r->lost, r->lost,
			  unstored - r->not_sent - r->lost);
	if (lost_unstored && unstored != r->not_sent + r->lost)
		trun_fail(file, line,
			  "%s: %d lines sent, %d stored, %d refused (%d as lost, none of them committed): %d stored and refused",
			  who, sent, stored, r->not_sent + r->lost, r->lost,
			  r->not_sent + r->lost - unstored);
}

bool tcl_listed_at(const char *file, int line, struct tcl *c, const char *entry)
{
	char want[256];
	bool found = false;
	int n;

	snprintf(want, sizeof(want), "[system]   %s", entry);
	tcl_send(c, "/list");
	if (tcl_read(c, trun_ms(T_WAIT)) != TCL_LINE)
		trun_fail(file, line, "%s: /list: no reply", c->label);
	if (sscanf(c->line, "[system] Online users (%d):", &n) != 1)
		trun_fail(file, line, "%s /list: \"%s\"", c->label, c->line);
	for (int i = 0; i < n; i++) {
		if (tcl_read(c, trun_ms(T_WAIT)) != TCL_LINE)
			trun_fail(file, line,
				  "%s /list: entry %d of %d missing", c->label,
				  i + 1, n);
		found |= !strcmp(c->line, want);
	}
	return found;
}

long long tcl_wait_unlisted_at(const char *file, int line, struct tcl *c,
			       const char *entry, int ms)
{
	int64_t t0 = trun_now_ms(), deadline = t0 + ms;

	while (tcl_listed_at(file, line, c, entry)) {
		if (trun_now_ms() >= deadline)
			trun_fail(file, line,
				  "%s: /list still shows \"%s\" after %d ms",
				  c->label, entry, ms);
		trun_pace();
	}
	return trun_now_ms() - t0;
}

void tcl_send_flood(struct tcl *c, int from)
{
	static char buf[TCL_FLOOD_BATCH * (TCL_FLOOD_BODY + 1)];
	size_t len = 0;

	for (int i = from; i < from + TCL_FLOOD_BATCH; i++) {
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%06d ",
					i);
		memset(buf + len, 'f', TCL_FLOOD_BODY - 7);
		len += TCL_FLOOD_BODY - 7;
		buf[len++] = '\n';
	}
	tcl_send_raw(c, buf, len);
}
