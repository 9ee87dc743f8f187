/*
 * A hostile crowd at a size CI can carry, loopback only, bounded in count
 * and time: 300 hostile connections (random bytes, NULs, a 1 MiB line,
 * invalid UTF-8, truncated and deeply nested JSON, smuggling, the
 * pipelined crash sequence, slowloris heads, connect-and-idle) arrive over
 * 30 s while 10 good clients (5 TCP members, 5 HTTP sessions reading event
 * streams) chat in turn, 120 messages, with the default limits. Every
 * good client gets every message once and in order, /health answers 200
 * throughout, and the server's RSS comes back within 10% of what it was
 * before the crowd.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../helpers/tcl.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"
#include "../helpers/tsse.h"

#define PORT tfix_tcp_port()
#define HPORT tfix_http_port()
#define GOOD 5		/* TCP members, and as many streams */
#define MESSAGES 120	/* one each 250 ms */
#define CROWD_MS 30000	/* how long the crowd keeps coming */
#define HOSTILE 300
#define KINDS 10
#define KEPT_MAX 64	/* slowloris and idle ones held open at once */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Writes what the socket takes; a hostile peer does not care. */
static void spew(int fd, const void *p, size_t n)
{
	const char *b = p;

	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Hostile connection i: its kind's bytes; returns the socket when it is
 * to be held open (slowloris, idle), else closes it and returns -1. */
static int hostile(int i)
{
	static char buf[1 << 20];
	int kind = i % KINDS, fd, n = 0;
	bool http = kind >= 4 && kind <= 7, keep = kind == 7 || kind == 8;

	fd = trun_dial(http ? HPORT : PORT, 0, true, "hostile");
	if (fd < 0)
		return -1;
	switch (kind) {
	case 0:		/* random bytes */
		for (n = 0; n < 4096; n++)
			buf[n] = (char)next_rand();
		break;
	case 1:		/* NULs */
		n = 4096;
		memset(buf, 0, (size_t)n);
		break;
	case 2:		/* a 1 MiB line (every 30th), else 64 KiB */
		n = i % 30 == 2 ? (int)sizeof(buf) : 65536;
		memset(buf, 'x', (size_t)n);
		break;
	case 3:		/* invalid UTF-8 lines */
		for (int k = 0; k < 100; k++)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n,
				      "\xff\xfe\xc3(\n");
		break;
	case 4:		/* truncated JSON */
		n = snprintf(buf, sizeof(buf),
			     "POST /api/message HTTP/1.1\r\nHost: x\r\n"
			     "Content-Type: application/json\r\n"
			     "Content-Length: 40\r\n\r\n{\"session_id\":\"ab\",\"ro");
		break;
	case 5: {	/* deeply nested JSON */
		int depth = 4000;

		n = snprintf(buf, sizeof(buf),
			     "POST /api/connect HTTP/1.1\r\nHost: x\r\n"
			     "Content-Type: application/json\r\n"
			     "Content-Length: %d\r\n\r\n", 2 * depth);
		memset(buf + n, '[', (size_t)depth);
		memset(buf + n + depth, ']', (size_t)depth);
		n += 2 * depth;
		break;
	}
	case 6:		/* smuggling, then the pipelined crash sequence */
		n = snprintf(buf, sizeof(buf),
			     "POST /api/message HTTP/1.1\r\nHost: x\r\n"
			     "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n"
			     "\r\n0\r\n\r\nGET /health HTTP/1.1\r\n\r\n"
			     "POST /index.html HTTP/1.1\r\nHost: x\r\n"
			     "Content-Length: 4\r\n\r\nbody"
			     "POST /api/message HTTP/1.1\r\nHost: x\r\n"
			     "Content-Type: application/json\r\n"
			     "Content-Length: 2\r\n\r\n{}");
		break;
	case 7:		/* slowloris: a head that never ends */
		n = snprintf(buf, sizeof(buf),
			     "GET /health HTTP/1.1\r\nHost: x\r\nX-A: ");
		break;
	case 8:		/* connect and say nothing */
		break;
	case 9:		/* a command flood, mixed with junk */
		for (int k = 0; k < 200; k++)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n,
				      "%s\n", k % 2 ? "/rooms" : "/nick \x01");
		break;
	}
	spew(fd, buf, (size_t)n);
	if (keep)
		return fd;
	close(fd);
	return -1;
}

/* Waits until the observer has seen "[good] nick: text" (committed and
 * delivered), past notices. */
static void seen(struct tcl *observer, const char *nick, const char *text)
{
	char want[64];

	snprintf(want, sizeof(want), "[good] %s: %s", nick, text);
	for (;;) {
		ck_assert_msg(tcl_read(observer, trun_ms(T_WAIT)) == TCL_LINE,
			      "%s never arrived", want);
		if (!strcmp(observer->line, want))
			return;
		ck_assert_msg(!strncmp(observer->line, "[system] ", 9),
			      "observer: \"%s\" before %s", observer->line,
			      want);
	}
}

static void sleep_until(int64_t t_ms)
{
	int64_t left = t_ms - trun_now_ms();

	if (left > 0) {
		struct timespec ts = { left / 1000, (left % 1000) * 1000000 };

		nanosleep(&ts, NULL);
	}
}

/* Message m's sender: the TCP members and the HTTP sessions in turn. */
static void sender_of(int m, char *nick, size_t len)
{
	int i = m % (2 * GOOD);

	snprintf(nick, len, i < GOOD ? "good%d" : "watch%d", i % GOOD);
}

START_TEST(test_hostile_crowd)
{
	struct tcl *observer, *good[GOOD];
	struct tsse *st[GOOD];
	char sid[GOOD][THTTP_SID_LEN + 1], nick[24], text[24];
	int kept[KEPT_MAX], nkept = 0, h = 0;
	int64_t t0;
	long before, after;

	observer = tcl_user(PORT, "observer");
	do_create(observer, "good");
	for (int i = 0; i < GOOD; i++) {
		snprintf(nick, sizeof(nick), "good%d", i);
		good[i] = tcl_user(PORT, nick);
		ck_assert_int_eq(do_join(good[i], "good"), 0);
		snprintf(nick, sizeof(nick), "watch%d", i);
		api_user(HPORT, nick, HPORT, "/join good", sid[i]);
		st[i] = sse_open_room(HPORT, nick, "good", sid[i], NULL);
	}
	before = rss_kb(T_SRV.pid);
	/* CROWD_MS of chat, one message a slot, the hostile connections
	 * spread over it; each message is seen delivered before the next
	 * goes, so the order every good client must see is m's. */
	t0 = trun_now_ms();
	for (int m = 1; m <= MESSAGES; m++) {
		int i = m % (2 * GOOD);

		snprintf(text, sizeof(text), "m%03d", m);
		sender_of(m, nick, sizeof(nick));
		if (i < GOOD)
			tcl_send(good[i], "%s", text);
		else
			api_say(HPORT, sid[i % GOOD], "good", text, NULL);
		seen(observer, nick, text);
		for (; h < HOSTILE * m / MESSAGES; h++) {
			int fd = hostile(h);

			if (fd < 0)
				continue;
			if (nkept == KEPT_MAX)
				close(kept[--nkept]);
			kept[nkept++] = fd;
		}
		if (m % 10 == 0) {
			struct thttp_resp r;

			thttp_get(HPORT, "/health", &r);
			ck_assert_msg(r.status == 200, "/health %d during the crowd",
				      r.status);
		}
		sleep_until(t0 + (int64_t)CROWD_MS * m / MESSAGES);
	}
	trun_note("%d messages and %d hostile connections in %lld ms",
		  MESSAGES, h, (long long)(trun_now_ms() - t0));
	while (nkept)
		close(kept[--nkept]);
	/* Every good client: every message once, in order. */
	for (int i = 0; i < GOOD; i++) {
		for (int m = 1; m <= MESSAGES;) {
			char want[48];

			ck_assert_msg(tcl_read(good[i], trun_ms(T_WAIT)) ==
					      TCL_LINE,
				      "good%d: m%03d missing", i, m);
			if (!strncmp(good[i]->line, "[system] ", 9))
				continue;	/* joins and leaves */
			sender_of(m, nick, sizeof(nick));
			snprintf(want, sizeof(want), "[good] %s: m%03d", nick,
				 m);
			ck_assert_str_eq(good[i]->line, want);
			m++;
		}
		for (int m = 1; m <= MESSAGES;) {
			ck_assert_msg(tsse_read(st[i], trun_ms(T_WAIT)) ==
					      TSSE_BLOCK,
				      "watch%d: seq %d missing", i, m);
			if (!st[i]->ev.event || strcmp(st[i]->ev.event, "message"))
				continue;	/* joins, comments */
			ck_assert_msg(st[i]->ev.id && atoi(st[i]->ev.id) == m,
				      "watch%d: got seq %s, %d was due", i,
				      st[i]->ev.id ? st[i]->ev.id : "(none)", m);
			m++;
		}
	}
	{
		struct thttp_resp r;

		thttp_get(HPORT, "/health", &r);
		expect_status(&r, 200);
	}
	after = rss_kb(T_SRV.pid);
	trun_note("RSS before the crowd %ld kB, after %ld kB", before, after);
#ifndef __SANITIZE_ADDRESS__
	ck_assert_msg(after <= before + before / 10,
		      "RSS %ld kB after the crowd, %ld kB before", after,
		      before);
#else
	/* ASan keeps freed memory in quarantine: RSS says nothing there. */
	trun_note("sanitizer build: RSS not compared");
#endif
	for (int i = 0; i < GOOD; i++) {
		tcl_free(good[i]);
		tsse_free(st[i]);
	}
	tcl_free(observer);
}
END_TEST

static void setup_limits_on(void)
{
	/* The limits as configured by default: ten people chatting in turn
	 * stay well within them. */
	struct tsrv_opts o = { .rate_limits = true };

	tfix_use(&o);
}

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_hostile_crowd, 120, setup_limits_on),
	};

	return tfix_main("abuse", cases, TMAIN_N(cases), NULL);
}
