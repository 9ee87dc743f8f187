/*
 * SSE reader: the response head is parsed like thttp's, the body is
 * de-chunked when needed, CRLF and CR line ends become LF, and blocks are
 * split at blank lines. Each read polls the socket with a deadline, so a
 * missing event fails the test in bounded time.
 */
#include "tsse.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static void grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	while (*cap < need)
		*cap = *cap ? *cap * 2 : 4096;
	*p = realloc(*p, *cap);
	ck_assert(*p);
}

/* Appends decoded stream bytes, turning CRLF and CR into LF. */
static void add_text(struct tsse *s, const char *p, size_t n)
{
	grow(&s->buf, &s->cap, s->len + n + 1);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && s->cr) {
			s->cr = false;
			continue;
		}
		s->cr = p[i] == '\r';
		s->buf[s->len++] = s->cr ? '\n' : p[i];
	}
	s->buf[s->len] = '\0';
}

/* Moves whole chunks from s->raw to the text; false on a framing error. */
static bool dechunk(struct tsse *s)
{
	size_t in = 0;
	bool ok = true;

	for (;;) {
		char *crlf = NULL, *end;
		unsigned long n;

		for (size_t i = in; i + 1 < s->rlen; i++)
			if (s->raw[i] == '\r' && s->raw[i + 1] == '\n') {
				crlf = s->raw + i;
				break;
			}
		if (!crlf)
			break;
		n = strtoul(s->raw + in, &end, 16);
		if (end == s->raw + in) {
			ok = false;
			break;
		}
		if ((size_t)(crlf - s->raw) + 2 + n + 2 > s->rlen)
			break;
		add_text(s, crlf + 2, n);
		in = (size_t)(crlf - s->raw) + 2 + n + 2;
		if (!n) {
			s->eof = true; /* the last chunk: the stream ended */
			break;
		}
	}
	memmove(s->raw, s->raw + in, s->rlen - in);
	s->rlen -= in;
	return ok;
}

static void add_body(struct tsse *s, const char *p, size_t n)
{
	if (!s->chunked) {
		add_text(s, p, n);
		return;
	}
	grow(&s->raw, &s->rcap, s->rlen + n + 1);
	memcpy(s->raw + s->rlen, p, n);
	s->rlen += n;
	ck_assert_msg(dechunk(s), "%s: bad chunked framing: \"%.200s\"",
		      s->label, s->raw);
}

/* One recv into the stream; false on timeout. Sets s->eof at the end. */
static bool recv_some(struct tsse *s, int64_t deadline)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	char chunk[65536];
	int64_t left = deadline - trun_now_ms();
	ssize_t n;
	int r;

	if (left < 0)
		left = 0;
	r = poll(&pfd, 1, (int)left);
	if (r < 0 && errno == EINTR)
		return true;
	ck_assert_msg(r >= 0, "poll: %s", strerror(errno));
	if (!r)
		return false;
	n = recv(s->fd, chunk, sizeof(chunk), 0);
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0) {
		ck_assert_msg(n == 0 || errno == ECONNRESET, "%s: recv: %s",
			      s->label, strerror(errno));
		s->eof = true;
		return true;
	}
	add_body(s, chunk, (size_t)n);
	return true;
}

/* Reads the status line and headers; the rest goes to the stream. */
static void read_head(struct tsse *s, const char *path)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
	char head[sizeof(s->resp.head) + 1];
	size_t len = 0;
	char *sep;

	for (;;) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		int64_t left = deadline - trun_now_ms();
		ssize_t n;

		head[len] = '\0';
		if ((sep = strstr(head, "\r\n\r\n")))
			break;
		ck_assert_msg(
			left > 0 && len < sizeof(head) - 1,
			"%s: GET %s: no response head within %d ms: \"%.300s\"",
			s->label, path, trun_ms(T_WAIT), head);
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		/* Byte by byte is cheap here and leaves the body unread. */
		n = recv(s->fd, head + len, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(
			n > 0,
			"%s: GET %s: connection %s before a response head: \"%.300s\"",
			s->label, path, n ? "reset" : "closed", head);
		len += (size_t)n;
	}
	*sep = '\0';
	memcpy(s->resp.head, head, strnlen(head, sizeof(s->resp.head) - 1));
	ck_assert_msg(sscanf(head, "HTTP/1.%*d %d", &s->resp.status) == 1,
		      "%s: GET %s: bad status line: \"%.200s\"", s->label, path,
		      head);
	{
		char te[64];

		s->chunked = thttp_header(&s->resp, "Transfer-Encoding", te,
					  sizeof(te)) &&
			     !strncasecmp(te, "chunked", 7);
	}
}

/* For a refusal: the body, by Content-Length or until the close. */
static void read_refusal_body(struct tsse *s)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
	char cl[32];
	long want = -1;

	if (thttp_header(&s->resp, "Content-Length", cl, sizeof(cl)))
		want = strtol(cl, NULL, 10);
	while (!s->eof && (want < 0 || (long)s->len < want))
		ck_assert_msg(
			recv_some(s, deadline),
			"%s: status %d: body incomplete after %d ms (%zu of %ld bytes)",
			s->label, s->resp.status, trun_ms(T_WAIT), s->len,
			want);
	s->resp.body_len = s->buf ? strnlen(s->buf, sizeof(s->resp.body) - 1) :
				    0;
	if (s->resp.body_len)
		memcpy(s->resp.body, s->buf, s->resp.body_len);
}

/* tsse_free() for trun_track(). */
static void free_tracked(void *s)
{
	tsse_free(s);
}

struct tsse *tsse_open(int port, const char *label, const char *path,
		       const char *last_event_id)
{
	return tsse_open_opt(port, label, path, last_event_id, 0);
}

struct tsse *tsse_open_opt(int port, const char *label, const char *path,
			   const char *last_event_id, int rcvbuf)
{
	struct tsse *s = calloc(1, sizeof(*s));
	char req[2048];
	int n;

	ck_assert(s);
	snprintf(s->label, sizeof(s->label), "%s", label);
	s->fd = trun_dial(port, rcvbuf, false, label);
	trun_track(s, free_tracked);
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		     "Accept: text/event-stream\r\n%s%s%s\r\n",
		     path, port, last_event_id ? "Last-Event-ID: " : "",
		     last_event_id ? last_event_id : "",
		     last_event_id ? "\r\n" : "");
	ck_assert(n > 0 && (size_t)n < sizeof(req));
	ck_assert_msg(send(s->fd, req, (size_t)n, MSG_NOSIGNAL) == n,
		      "%s: send: %s", label, strerror(errno));
	read_head(s, path);
	if (s->resp.status != 200)
		read_refusal_body(s);
	return s;
}

struct tsse *tsse_open_room(int port, const char *label, const char *room,
			    const char *sid, const char *last_event_id)
{
	char path[512];

	snprintf(path, sizeof(path), "/api/messages/%s?session_id=%s", room,
		 sid);
	return tsse_open(port, label, path, last_event_id);
}

struct tsse *tsse_open_room_at(const char *file, int line, int port,
			       const char *label, const char *room,
			       const char *sid, const char *last_event_id)
{
	struct tsse *s = tsse_open_room(port, label, room, sid, last_event_id);

	tsse_expect_open_at(file, line, s);
	return s;
}

void tsse_room_refused_at(const char *file, int line, int port,
			  const char *label, const char *room, const char *sid,
			  int st)
{
	struct tsse *s = tsse_open_room(port, label, room, sid, NULL);

	tsse_expect_refused_at(file, line, s, st);
	tsse_free(s);
}

static void ev_clear(struct tsse_ev *ev)
{
	free(ev->id);
	free(ev->event);
	free(ev->data);
	free(ev->retry);
	free(ev->comment);
	free(ev->raw);
	memset(ev, 0, sizeof(*ev));
}

void tsse_free(struct tsse *s)
{
	if (!s)
		return;
	trun_untrack(s);
	if (s->fd >= 0)
		close(s->fd);
	ev_clear(&s->ev);
	free(s->raw);
	free(s->buf);
	free(s);
}

void tsse_abort(struct tsse *s)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (s && s->fd >= 0)
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	tsse_free(s);
}

/* Sets *f to a copy of v (the last one wins, as for id and event). */
static void set_field(char **f, const char *v)
{
	free(*f);
	*f = strdup(v);
	ck_assert(*f);
}

/* Parses the block text b (lines without the final blank line). */
static void parse_block(struct tsse_ev *ev, const char *b, size_t n)
{
	const char *p = b, *end = b + n;

	/* For messages: the block on one line, "\n" where lines end. */
	ev->raw = malloc(2 * n + 1);
	ck_assert(ev->raw);
	{
		size_t j = 0;

		for (size_t i = 0; i < n; i++) {
			if (b[i] == '\n') {
				ev->raw[j++] = '\\';
				ev->raw[j++] = 'n';
			} else {
				ev->raw[j++] = b[i];
			}
		}
		ev->raw[j] = '\0';
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *line = strndup(p, ll), *colon, *val;

		ck_assert(line);
		p += ll + 1;
		if (line[0] == ':') {
			if (!ev->comment)
				set_field(&ev->comment, line + 1);
			free(line);
			continue;
		}
		colon = strchr(line, ':');
		val = colon ? colon + 1 : line + strlen(line);
		if (colon)
			*colon = '\0';
		if (*val == ' ')
			val++;
		if (!strcmp(line, "id")) {
			set_field(&ev->id, val);
		} else if (!strcmp(line, "event")) {
			set_field(&ev->event, val);
		} else if (!strcmp(line, "retry")) {
			set_field(&ev->retry, val);
		} else if (!strcmp(line, "data")) {
			size_t ol = ev->data ? strlen(ev->data) : 0;
			char *d = malloc(ol + strlen(val) + 2);

			ck_assert(d);
			if (ev->data)
				sprintf(d, "%s\n%s", ev->data, val);
			else
				strcpy(d, val);
			free(ev->data);
			ev->data = d;
		}
		free(line);
	}
}

enum tsse_rc tsse_read(struct tsse *s, int timeout_ms)
{
	int64_t deadline = trun_now_ms() + timeout_ms;

	ev_clear(&s->ev);
	for (;;) {
		char *blank;
		size_t start = 0, n;

		/* Blank lines before a block (stray line ends) are skipped. */
		while (start < s->len && s->buf[start] == '\n')
			start++;
		blank = s->len > start ? strstr(s->buf + start, "\n\n") : NULL;
		if (blank) {
			n = (size_t)(blank - (s->buf + start));
			parse_block(&s->ev, s->buf + start, n);
			n = (size_t)(blank + 2 - s->buf);
			memmove(s->buf, s->buf + n, s->len - n + 1);
			s->len -= n;
			s->blocks++;
			return TSSE_BLOCK;
		}
		if (s->eof)
			return TSSE_EOF;
		if (!recv_some(s, deadline))
			return TSSE_TIMEOUT;
	}
}

static const char *rc_text(enum tsse_rc rc)
{
	return rc == TSSE_TIMEOUT ? "then nothing (timeout)" :
				    "then the stream ended";
}

static bool is_comment_only(const struct tsse_ev *ev)
{
	return ev->comment && !ev->id && !ev->event && !ev->data && !ev->retry;
}

/* Reads the next block that is not only comments (heartbeats). */
static void next_event(const char *file, int line, struct tsse *s,
		       const char *what, int timeout_ms)
{
	struct trun_seen sn = { .len = 0 };
	int64_t deadline = trun_now_ms() + timeout_ms;

	for (;;) {
		enum tsse_rc rc = tsse_read(s, trun_left_ms(deadline));

		if (rc != TSSE_BLOCK)
			trun_fail(
				file, line,
				"%s: expected %s within %d ms; got %d comment block(s):%s\n  %s",
				s->label, what, timeout_ms, sn.count, sn.text,
				rc_text(rc));
		if (!is_comment_only(&s->ev))
			return;
		trun_seen_add(&sn, s->ev.raw, 400);
	}
}

/* proxied: through nginx, which keeps X-Accel-Buffering for itself. */
static void expect_open(const char *file, int line, struct tsse *s,
			bool proxied)
{
	char v[256];
	enum tsse_rc rc;

	if (s->resp.status != 200)
		trun_fail(file, line,
			  "%s: expected an event stream (200), got %d: %.500s",
			  s->label, s->resp.status, s->resp.body);
	if (!thttp_header(&s->resp, "Content-Type", v, sizeof(v)) ||
	    strncasecmp(v, "text/event-stream", 17) || (v[17] && v[17] != ';'))
		trun_fail(
			file, line,
			"%s: expected Content-Type text/event-stream\n  head: %s",
			s->label, s->resp.head);
	if (!thttp_header(&s->resp, "Cache-Control", v, sizeof(v)) ||
	    !strstr(v, "no-cache") || !strstr(v, "no-transform"))
		trun_fail(
			file, line,
			"%s: expected Cache-Control: no-cache, no-transform\n  head: %s",
			s->label, s->resp.head);
	if (!proxied &&
	    (!thttp_header(&s->resp, "X-Accel-Buffering", v, sizeof(v)) ||
	     strcasecmp(v, "no")))
		trun_fail(file, line,
			  "%s: expected X-Accel-Buffering: no\n  head: %s",
			  s->label, s->resp.head);
	if (thttp_header(&s->resp, "Content-Length", v, sizeof(v)))
		trun_fail(file, line,
			  "%s: an event stream with Content-Length %s",
			  s->label, v);
	rc = tsse_read(s, trun_ms(T_WAIT));
	if (rc != TSSE_BLOCK)
		trun_fail(file, line, "%s: expected \"retry: 3000\" first; %s",
			  s->label, rc_text(rc));
	if (!s->ev.retry || strcmp(s->ev.retry, "3000") || s->ev.id ||
	    s->ev.event || s->ev.data)
		trun_fail(
			file, line,
			"%s: expected the block \"retry: 3000\" first; got \"%.500s\"",
			s->label, s->ev.raw);
}

void tsse_expect_open_at(const char *file, int line, struct tsse *s)
{
	expect_open(file, line, s, false);
}

void tsse_expect_open_proxied_at(const char *file, int line, struct tsse *s)
{
	expect_open(file, line, s, true);
}

void tsse_expect_refused_at(const char *file, int line, struct tsse *s,
			    int status)
{
	thttp_expect_error_at(file, line, &s->resp, status);
}

/* Copies string member key of o into buf; false when not a string. */
static bool get_str(json_t *o, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) >= len)
		return false;
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return true;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static bool is_timestamp(const char *t)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (strlen(t) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)t[i]) :
				      t[i] != shape[i])
			return false;
	return true;
}

void tsse_expect_msg_at(const char *file, int line, struct tsse *s,
			struct tsse_msg *m, int timeout_ms)
{
	const struct tsse_ev *ev = &s->ev;
	json_error_t err;
	json_t *j, *id, *seq;
	char *end;
	long long idv;

	next_event(file, line, s, "a message event", timeout_ms);
	if (!ev->event || strcmp(ev->event, "message") || !ev->id || !ev->data)
		trun_fail(
			file, line,
			"%s: expected \"id: N\", \"event: message\", \"data: {...}\"; got \"%.1000s\"",
			s->label, ev->raw);
	j = json_loads(ev->data, 0, &err);
	if (!json_is_object(j))
		trun_fail(
			file, line,
			"%s: message data is not a JSON object (%s): \"%.1000s\"",
			s->label, j ? "not an object" : err.text, ev->raw);
	memset(m, 0, sizeof(*m));
	id = json_object_get(j, "id");
	seq = json_object_get(j, "seq");
	idv = strtoll(ev->id, &end, 10);
	if (!json_is_integer(id) || json_integer_value(id) <= 0 ||
	    !json_is_integer(seq) || json_integer_value(seq) <= 0 ||
	    !get_str(j, "room", m->room, sizeof(m->room)) ||
	    !get_str(j, "user", m->user, sizeof(m->user)) ||
	    !get_str(j, "content", m->content, sizeof(m->content)) ||
	    !get_str(j, "created_at", m->created_at, sizeof(m->created_at)) ||
	    !is_timestamp(m->created_at))
		trun_fail(
			file, line,
			"%s: message data lacks id, seq, room, user, content or created_at (\"YYYY-MM-DDTHH:MM:SS.mmmZ\"): \"%.1000s\"",
			s->label, ev->raw);
	m->id = json_integer_value(id);
	m->seq = json_integer_value(seq);
	json_decref(j);
	if (*end || end == ev->id || idv != m->seq)
		trun_fail(
			file, line,
			"%s: the event id \"%s\" is not the message's seq %lld: \"%.1000s\"",
			s->label, ev->id, m->seq, ev->raw);
}

void tsse_expect_seq_at(const char *file, int line, struct tsse *s,
			long long seq, struct tsse_msg *m)
{
	struct tsse_msg tmp;

	if (!m)
		m = &tmp;
	tsse_expect_msg_at(file, line, s, m, trun_ms(T_WAIT));
	if (m->seq != seq)
		trun_fail(
			file, line,
			"%s: expected the message with seq %lld; got seq %lld: \"%.1000s\"",
			s->label, seq, m->seq, s->ev.raw);
}

void tsse_expect_range_at(const char *file, int line, struct tsse *s,
			  long long first, long long last)
{
	for (long long q = first; q <= last; q++)
		tsse_expect_seq_at(file, line, s, q, NULL);
}

void tsse_expect_system_at(const char *file, int line, struct tsse *s,
			   const char *room, const char *text)
{
	char r[256], t[1024];
	json_t *j;

	next_event(file, line, s, "a system event", trun_ms(T_WAIT));
	if (!s->ev.event || strcmp(s->ev.event, "system") || !s->ev.data)
		trun_fail(
			file, line,
			"%s: expected \"event: system\" with \"%s\"; got \"%.1000s\"",
			s->label, text, s->ev.raw);
	j = json_loads(s->ev.data, 0, NULL);
	if (!json_is_object(j) || !get_str(j, "room", r, sizeof(r)) ||
	    !get_str(j, "text", t, sizeof(t)) || strcmp(r, room) ||
	    strcmp(t, text))
		trun_fail(
			file, line,
			"%s: expected system data {\"room\":\"%s\",\"text\":\"%s\"}; got \"%.1000s\"",
			s->label, room, text, s->ev.raw);
	json_decref(j);
}

long long tsse_expect_reset_at(const char *file, int line, struct tsse *s)
{
	char reason[256];
	json_t *j, *missed;
	long long m;

	next_event(file, line, s, "a reset event", trun_ms(T_WAIT));
	if (!s->ev.event || strcmp(s->ev.event, "reset") || !s->ev.data)
		trun_fail(file, line,
			  "%s: expected \"event: reset\"; got \"%.1000s\"",
			  s->label, s->ev.raw);
	j = json_loads(s->ev.data, 0, NULL);
	missed = json_object_get(j, "missed");
	if (!json_is_object(j) ||
	    !get_str(j, "reason", reason, sizeof(reason)) ||
	    strcmp(reason, "history truncated") || !json_is_integer(missed) ||
	    json_integer_value(missed) <= 0)
		trun_fail(
			file, line,
			"%s: expected reset data {\"reason\":\"history truncated\",\"missed\":M > 0}; got \"%.1000s\"",
			s->label, s->ev.raw);
	m = json_integer_value(missed);
	json_decref(j);
	return m;
}

void tsse_expect_comment_at(const char *file, int line, struct tsse *s,
			    const char *text, int timeout_ms)
{
	enum tsse_rc rc = tsse_read(s, timeout_ms);

	if (rc != TSSE_BLOCK)
		trun_fail(file, line,
			  "%s: expected the comment \":%s\" within %d ms; %s",
			  s->label, text, timeout_ms, rc_text(rc));
	if (!is_comment_only(&s->ev) || strcmp(s->ev.comment, text) ||
	    strstr(s->ev.raw, "\\n"))
		trun_fail(
			file, line,
			"%s: expected the block \":%s\" alone; got \"%.1000s\"",
			s->label, text, s->ev.raw);
}

void tsse_expect_end_at(const char *file, int line, struct tsse *s)
{
	int64_t deadline = trun_now_ms() + trun_ms(T_WAIT);
	struct trun_seen sn = { .len = 0 };

	for (;;) {
		enum tsse_rc rc = tsse_read(s, trun_left_ms(deadline));

		if (rc == TSSE_EOF)
			return;
		if (rc == TSSE_TIMEOUT)
			trun_fail(
				file, line,
				"%s: expected the server to end the stream within %d ms; it stayed open after %d block(s):%s",
				s->label, trun_ms(T_WAIT), sn.count, sn.text);
		trun_seen_add(&sn, s->ev.raw, 250);
	}
}
