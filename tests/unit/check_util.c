/*
 * Unit tests for src/util: line splitting, UTF-8, the id and string maps,
 * strbuf.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/outq.h"
#include "util/hist.h"
#include "util/idmap.h"
#include "util/linebuf.h"
#include "util/strbuf.h"
#include "util/strmap.h"
#include "util/keyrate.h"
#include "util/tokens.h"
#include "util/utf8.h"
#include "tmain.h"

struct lines {
	char got[16][64];
	int n;
	int too_long;
};

static void collect(void *arg, const char *line, size_t len, bool too_long)
{
	struct lines *l = arg;

	if (too_long) {
		l->too_long++;
		snprintf(l->got[l->n++], 64, "<too long>");
		return;
	}
	snprintf(l->got[l->n++], 64, "%.*s", (int)len, line);
}

START_TEST(test_lines_split_on_lf_and_crlf)
{
	struct linebuf lb;
	struct lines l = { 0 };

	linebuf_init(&lb, 16);
	linebuf_feed(&lb, "a\nbb\r\n\nccc", 10, collect, &l);
	ck_assert_int_eq(l.n, 3);
	ck_assert_str_eq(l.got[0], "a");
	ck_assert_str_eq(l.got[1], "bb");
	ck_assert_str_eq(l.got[2], "");
	linebuf_feed(&lb, "c\r", 2, collect, &l);
	ck_assert_int_eq(l.n, 3);
	linebuf_feed(&lb, "\n", 1, collect, &l);
	ck_assert_int_eq(l.n, 4);
	ck_assert_str_eq(l.got[3], "cccc");
	linebuf_fini(&lb);
}
END_TEST

START_TEST(test_lines_over_cap_reported_once_and_discarded)
{
	struct linebuf lb;
	struct lines l = { 0 };
	char big[40];

	memset(big, 'x', sizeof(big));
	linebuf_init(&lb, 16);
	linebuf_feed(&lb, big, 10, collect, &l);
	linebuf_feed(&lb, big, 30, collect, &l);
	ck_assert_int_eq(l.too_long, 1);
	linebuf_feed(&lb, big, 30, collect, &l);
	linebuf_feed(&lb, "\nok\n", 4, collect, &l);
	ck_assert_int_eq(l.too_long, 1);
	ck_assert_int_eq(l.n, 2);
	ck_assert_str_eq(l.got[1], "ok");
	linebuf_fini(&lb);
}
END_TEST

START_TEST(test_lines_exactly_cap_is_accepted_with_crlf)
{
	struct linebuf lb;
	struct lines l = { 0 };
	char line[18];

	memset(line, 'y', 16);
	line[16] = '\r';
	line[17] = '\n';
	linebuf_init(&lb, 16);
	linebuf_feed(&lb, line, 18, collect, &l);
	linebuf_feed(&lb, line, 16, collect, &l);
	linebuf_feed(&lb, "y\n", 2, collect, &l);
	ck_assert_int_eq(l.n, 2);
	ck_assert_int_eq(l.too_long, 1);
	ck_assert_uint_eq(strlen(l.got[0]), 16);
	linebuf_fini(&lb);
}
END_TEST

/* What a line's pieces need only: nothing until a partial line is kept,
 * then growing with it up to cap + 1 (a 4,000-byte line in 7-byte
 * pieces arrives whole). */
static size_t line_len;

static void measure(void *arg, const char *line, size_t len, bool too_long)
{
	(void)arg;
	(void)line;
	line_len = too_long ? (size_t)-1 : len;
}

START_TEST(test_line_buffer_allocated_when_needed)
{
	struct linebuf lb;
	char piece[7];

	memset(piece, 'z', sizeof(piece));
	linebuf_init(&lb, 4096);
	ck_assert_ptr_null(lb.buf);
	linebuf_feed(&lb, "whole\n", 6, measure, NULL);
	ck_assert_ptr_null(lb.buf);
	ck_assert_uint_eq(line_len, 5);
	for (int i = 0; i < 4000 / 7; i++)
		linebuf_feed(&lb, piece, sizeof(piece), measure, NULL);
	ck_assert_uint_le(lb.size, 4097);
	ck_assert_uint_ge(lb.size, 4000 / 7 * 7);
	linebuf_feed(&lb, "\n", 1, measure, NULL);
	ck_assert_uint_eq(line_len, 4000 / 7 * 7);
	for (int i = 0; i < 600; i++)
		linebuf_feed(&lb, piece, sizeof(piece), measure, NULL);
	ck_assert_uint_eq(line_len, (size_t)-1);	/* over the cap */
	ck_assert_uint_le(lb.size, 4097);
	linebuf_fini(&lb);
}
END_TEST

START_TEST(test_utf8_validation)
{
	ck_assert(utf8_valid("plain ascii", 11));
	ck_assert(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	ck_assert(!utf8_valid("\xff", 1));
	ck_assert(!utf8_valid("\xc3", 1));		/* truncated */
	ck_assert(!utf8_valid("\xc0\xaf", 2));		/* overlong */
	ck_assert(!utf8_valid("\xe0\x80\xaf", 3));	/* overlong */
	ck_assert(!utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	ck_assert(!utf8_valid("\xf4\x90\x80\x80", 4));	/* > U+10FFFF */
	ck_assert(!utf8_valid("\xe2\x28\xa1", 3));	/* bad continuation */
}
END_TEST

START_TEST(test_controls_are_stripped)
{
	char s[] = "a\x01" "b\tc\x7f" "d\xc2\x85" "e\xc3\xa9\x1b[2J";
	size_t n = utf8_strip_controls(s, strlen(s));

	s[n] = '\0';
	ck_assert_str_eq(s, "ab cde\xc3\xa9[2J");
}
END_TEST

START_TEST(test_idmap_put_get_del_many)
{
	struct idmap m;

	idmap_init(&m);
	for (uint64_t i = 1; i <= 5000; i++)
		idmap_put(&m, i * 7919, (void *)(uintptr_t)i);
	for (uint64_t i = 1; i <= 5000; i += 2)
		idmap_del(&m, i * 7919);
	ck_assert_uint_eq(m.count, 2500);
	for (uint64_t i = 1; i <= 5000; i++) {
		void *v = idmap_get(&m, i * 7919);

		if (i % 2)
			ck_assert_ptr_null(v);
		else
			ck_assert_uint_eq((uintptr_t)v, i);
	}
	idmap_del(&m, 12345);	/* absent: no-op */
	ck_assert_uint_eq(m.count, 2500);
	idmap_fini(&m);
}
END_TEST

START_TEST(test_strmap_put_get_del_many)
{
	static char keys[5000][24];
	struct strmap m;
	char probe[24];

	strmap_init(&m);
	for (int i = 0; i < 5000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "room-%d", i);
		strmap_put(&m, keys[i], keys[i]);
	}
	for (int i = 0; i < 5000; i += 2) {
		/* Looked up by content, not by pointer. */
		snprintf(probe, sizeof(probe), "room-%d", i);
		strmap_del(&m, probe);
	}
	ck_assert_uint_eq(m.count, 2500);
	for (int i = 0; i < 5000; i++) {
		snprintf(probe, sizeof(probe), "room-%d", i);
		if (i % 2)
			ck_assert_ptr_eq(strmap_get(&m, probe), keys[i]);
		else
			ck_assert_ptr_null(strmap_get(&m, probe));
	}
	strmap_put(&m, keys[1], NULL);	/* replaces */
	ck_assert_uint_eq(m.count, 2500);
	ck_assert_ptr_null(strmap_get(&m, "room-1"));
	strmap_del(&m, "absent");	/* no-op */
	ck_assert_ptr_null(strmap_get(&m, ""));
	ck_assert_uint_eq(m.count, 2500);
	strmap_fini(&m);
}
END_TEST

START_TEST(test_strbuf_appends)
{
	struct strbuf sb = STRBUF_INIT;
	char want[512], *p;
	size_t n, w = 0;

	for (int i = 0; i < 100; i++) {
		sb_appendf(&sb, "%d,", i);
		w += (size_t)snprintf(want + w, sizeof(want) - w, "%d,", i);
	}
	sb_puts(&sb, "end");
	snprintf(want + w, sizeof(want) - w, "end");
	/* All of it, in order, NUL-terminated: not just a prefix. */
	ck_assert_uint_eq(sb.len, strlen(want));
	ck_assert_str_eq(sb.buf, want);
	p = sb_detach(&sb, &n);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_str_eq(p, want);
	ck_assert_ptr_null(sb.buf);
	free(p);
}
END_TEST

START_TEST(test_hist_quantiles)
{
	struct hist *h = calloc(1, sizeof(*h));

	ck_assert_uint_eq(hist_quantile(h, 0.5), 0);
	for (uint64_t v = 1; v <= 1000; v++)
		hist_record(h, v);
	ck_assert_uint_eq(h->count, 1000);
	ck_assert_uint_eq(h->max, 1000);
	ck_assert_uint_eq(h->sum, 500500);
	/* Within a bucket's width (about 3%) of the true value. */
	ck_assert_uint_ge(hist_quantile(h, 0.5), 485);
	ck_assert_uint_le(hist_quantile(h, 0.5), 516);
	ck_assert_uint_ge(hist_quantile(h, 0.99), 960);
	ck_assert_uint_le(hist_quantile(h, 0.99), 1000);
	ck_assert_uint_eq(hist_quantile(h, 1.0), 1000);
	/* Exact below 64. */
	ck_assert_uint_eq(hist_quantile(h, 0.01), 10);
	ck_assert_uint_eq(hist_count_le(h, 63), 63);
	ck_assert_uint_ge(hist_count_le(h, 500), 500);
	ck_assert_uint_le(hist_count_le(h, 500), 516);
	ck_assert_uint_eq(hist_count_le(h, 1u << 30), 1000);
	/* Huge values land in the last bucket, max stays exact. */
	hist_record(h, (uint64_t)1 << 50);
	ck_assert_uint_eq(h->max, (uint64_t)1 << 50);
	ck_assert_uint_eq(hist_quantile(h, 1.0), (uint64_t)1 << 50);
	free(h);
}
END_TEST

struct trace_log {
	struct outq_trace t;
	int first, last, none;
};

static void on_trace(struct outq_trace *t, enum outq_trace_event what)
{
	struct trace_log *l = (struct trace_log *)t;

	if (what == OUTQ_FIRST)
		l->first++;
	else if (what == OUTQ_LAST)
		l->last++;
	else
		l->none++;
}

/* A traced delivery to three queues in two encodings: FIRST at the first
 * copy written, LAST once the last queued copy is gone (written or
 * dropped), then the buffers are untraced (a later push is not counted). */
START_TEST(test_outq_trace)
{
	struct trace_log l = { .t.event = on_trace };
	struct outbuf *line = outbuf_new("line\n", 5);
	struct outbuf *ev = outbuf_new("event\n", 6);
	struct outq a, b, c;
	char buf[16];

	outq_init(&a, 100);
	outq_init(&b, 100);
	outq_init(&c, 100);
	outq_trace_attach(&l.t, line);
	outq_trace_attach(&l.t, ev);
	ck_assert_int_eq(outq_push(&a, line), 0);
	ck_assert_int_eq(outq_push(&b, line), 0);
	ck_assert_int_eq(outq_push(&c, ev), 0);
	outq_trace_settle(&l.t);
	ck_assert_int_eq(l.t.queued, 3);
	/* Part of a copy is not a written copy. */
	outq_consume(&a, outq_copy(&a, buf, 2));
	ck_assert_int_eq(l.first, 0);
	outq_consume(&a, outq_copy(&a, buf, sizeof(buf)));
	ck_assert_int_eq(l.first, 1);
	outq_consume(&c, outq_copy(&c, buf, sizeof(buf)));
	ck_assert_int_eq(l.first, 1);
	ck_assert_int_eq(l.last, 0);
	outq_fini(&b);		/* dropped unwritten: the last one gone */
	ck_assert_int_eq(l.last, 1);
	ck_assert_ptr_null(line->trace);
	ck_assert_ptr_null(ev->trace);
	outq_init(&b, 100);
	ck_assert_int_eq(outq_push(&b, line), 0);
	outq_fini(&b);
	ck_assert_int_eq(l.last + l.first + l.none, 2);
	outq_fini(&a);
	outq_fini(&c);
	outbuf_unref(line);
	outbuf_unref(ev);
}
END_TEST

/* Nobody to deliver to: settled at once, as never written. */
START_TEST(test_outq_trace_unqueued)
{
	struct trace_log l = { .t.event = on_trace };
	struct outbuf *line = outbuf_new("x\n", 2);

	outq_trace_attach(&l.t, line);
	outq_trace_settle(&l.t);
	ck_assert_int_eq(l.none, 1);
	ck_assert_ptr_null(line->trace);
	outbuf_unref(line);
}
END_TEST

START_TEST(test_tokens)
{
	struct tokens t = { 0 };
	int ok = 0;

	/* A full burst at first, then nothing until time passes. */
	for (int i = 0; i < 25; i++)
		ok += tokens_take(&t, 5, 20, 1000);
	ck_assert_int_eq(ok, 20);
	ck_assert(!tokens_take(&t, 5, 20, 1000));
	/* 5 a second: one token each 200 ms. */
	ck_assert(!tokens_take(&t, 5, 20, 1000 + 199000));
	ck_assert(tokens_take(&t, 5, 20, 1000 + 200000));
	ck_assert(!tokens_take(&t, 5, 20, 1000 + 200000));
	/* Never more than the burst saved up. */
	ok = 0;
	for (int i = 0; i < 30; i++)
		ok += tokens_take(&t, 5, 20, 1000 + 3600000000LL);
	ck_assert_int_eq(ok, 20);
	/* A clock going back gives nothing. */
	ck_assert(!tokens_take(&t, 5, 20, 0));
	/* Rate 0: no limit. */
	for (int i = 0; i < 1000; i++)
		ck_assert(tokens_take(&t, 0, 1, 0));
}
END_TEST

/* Prefixes never cut a character: a 2-, 3- and 4-byte one at the cut
 * is left out whole. */
START_TEST(test_utf8_prefix)
{
	ck_assert_uint_eq(utf8_prefix("abc", 5), 3);
	ck_assert_uint_eq(utf8_prefix("abc", 3), 3);
	ck_assert_uint_eq(utf8_prefix("abc", 2), 2);
	ck_assert_uint_eq(utf8_prefix("a\xc3\xa9", 2), 1);
	ck_assert_uint_eq(utf8_prefix("a\xc3\xa9", 3), 3);
	ck_assert_uint_eq(utf8_prefix("ab\xe4\x8a\xb0", 4), 2);
	ck_assert_uint_eq(utf8_prefix("\xf0\x9f\x98\x80x", 3), 0);
	ck_assert_uint_eq(utf8_prefix("\xf0\x9f\x98\x80x", 4), 4);
	ck_assert_uint_eq(utf8_prefix("", 0), 0);
}
END_TEST

/* Buckets by key: each key its own burst, refilled per minute; keys
 * whose bucket filled up again are forgotten; a full table refuses a new
 * key rather than letting it through. */
START_TEST(test_keyrate)
{
	struct keyrate kr;
	int64_t t0 = 1000000;
	int ok = 0;

	keyrate_init(&kr, 6, 3, 2);	/* one token each 10 s */
	for (int i = 0; i < 5; i++)
		ok += keyrate_take(&kr, "10.0.0.1", t0);
	ck_assert_int_eq(ok, 3);
	ck_assert_uint_eq(kr.refused, 2);
	ck_assert(keyrate_take(&kr, "10.0.0.2", t0));	/* its own bucket */
	ck_assert(keyrate_take(&kr, "10.0.0.2", t0));
	ck_assert(!keyrate_take(&kr, "10.0.0.1", t0 + 9999999));
	ck_assert(keyrate_take(&kr, "10.0.0.1", t0 + 10000000));
	/* Two keys held: a third finds no room while both refill... */
	ck_assert_uint_eq(keyrate_count(&kr), 2);
	ck_assert(!keyrate_take(&kr, "10.0.0.3", t0 + 10000000));
	ck_assert_uint_eq(kr.full, 1);
	/* ...and room once they are full again (forgotten). */
	ck_assert(keyrate_take(&kr, "10.0.0.3", t0 + 60000000));
	ck_assert_uint_eq(keyrate_count(&kr), 1);
	/* A long key is cut, not overflowed. */
	{
		char k[300];

		memset(k, 'a', sizeof(k) - 1);
		k[sizeof(k) - 1] = '\0';
		keyrate_fini(&kr);
		keyrate_init(&kr, 6, 1, 10);
		ck_assert(keyrate_take(&kr, k, t0));
		k[KEYRATE_KEY_MAX] = 'b';	/* past the cut: the same key */
		ck_assert(!keyrate_take(&kr, k, t0));
	}
	keyrate_fini(&kr);
	/* Rate 0: no limit, nothing held. */
	keyrate_init(&kr, 0, 1, 1);
	for (int i = 0; i < 100; i++)
		ck_assert(keyrate_take(&kr, "x", t0));
	ck_assert_uint_eq(keyrate_count(&kr), 0);
	keyrate_fini(&kr);
}
END_TEST

int main(void)
{
	const struct tmain_case cases[] = {
		{ "lines_split", test_lines_split_on_lf_and_crlf },
		{ "lines_over_cap", test_lines_over_cap_reported_once_and_discarded },
		{ "lines_cap_crlf", test_lines_exactly_cap_is_accepted_with_crlf },
		{ "lines_lazy", test_line_buffer_allocated_when_needed },
		{ "utf8_valid", test_utf8_validation },
		{ "strip_controls", test_controls_are_stripped },
		{ "idmap", test_idmap_put_get_del_many },
		{ "strmap", test_strmap_put_get_del_many },
		{ "strbuf", test_strbuf_appends },
		{ "hist", test_hist_quantiles },
		{ "tokens", test_tokens },
		{ "keyrate", test_keyrate },
		{ "utf8_prefix", test_utf8_prefix },
		{ "outq_trace", test_outq_trace },
		{ "outq_trace_unqueued", test_outq_trace_unqueued },
	};

	return tmain_main("util", cases, TMAIN_N(cases), NULL, NULL);
}
