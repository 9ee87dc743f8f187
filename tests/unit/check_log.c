/*
 * Unit tests for src/log.c: the text and JSON renderings of an event,
 * escaping (no value can start a line or end an object), cut lines, and
 * levels. Output goes to a temporary file through log_open_file().
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tmain.h"

static char path[64];

static void setup(void)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/bd-check-log-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(log_open_file(path), 0);
	log_min_level = LOG_DEBUG;
}

static void teardown(void)
{
	log_close_file();
	log_setup(LOG_TEXT, NULL);
	log_min_level = LOG_INFO;
	unlink(path);
}

/* The whole file written so far (malloc'd). */
static char *slurp(void)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	ck_assert(f && buf);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_text_event_with_fields)
{
	char *out;

	log_setup(LOG_TEXT, "i1");
	log_info("join", LOG_U("conn", 7), LOG_S("nick", "alice"),
		 LOG_S("room", "general"), LOG_I("n", -3));
	out = slurp();
	ck_assert_int_eq(count_lines(out), 1);
	ck_assert_msg(strstr(out, "Z INFO join conn=7 nick=alice room=general n=-3\n"),
		      "got: %s", out);
	free(out);
}
END_TEST

START_TEST(test_text_values_quoted_and_escaped)
{
	char *out;

	log_setup(LOG_TEXT, "i1");
	log_warn("x", LOG_S("reason", "no \"way\"\nZ ERROR forged=1"),
		 LOG_S("empty", ""), LOG_S("null", NULL),
		 LOG_S("bad", "\xff\x01"));
	out = slurp();
	ck_assert_int_eq(count_lines(out), 1);
	ck_assert_msg(strstr(out, " WARN x reason=\"no \\\"way\\\"\\nZ ERROR forged=1\" empty=\"\" null=\"\" bad=\"\\xff\\x01\"\n"),
		      "got: %s", out);
	free(out);
}
END_TEST

START_TEST(test_json_event)
{
	char *out;

	log_setup(LOG_JSON, "inst\"1");
	log_error("db_error", LOG_S("op", "bd_post"), LOG_U("rows", 2),
		  LOG_D("latency_ms", 1.5),
		  LOG_S("reason", "a\nb\t\"c\" \\ \x01 caf\xc3\xa9"));
	out = slurp();
	ck_assert_int_eq(count_lines(out), 1);
	ck_assert_msg(!strncmp(out, "{\"ts\":\"", 7), "got: %s", out);
	ck_assert_msg(strstr(out, "Z\",\"level\":\"error\",\"instance\":\"inst\\\"1\",\"event\":\"db_error\",\"op\":\"bd_post\",\"rows\":2,\"latency_ms\":1.500,\"reason\":\"a\\nb\\t\\\"c\\\" \\\\ \\u0001 caf\xc3\xa9\"}\n"),
		      "got: %s", out);
	free(out);
}
END_TEST

START_TEST(test_json_invalid_utf8_replaced)
{
	char *out;

	log_setup(LOG_JSON, "i");
	log_info("nick", LOG_S("nick", "a\xc3"));
	out = slurp();
	ck_assert_msg(strstr(out, "\"nick\":\"a\\ufffd\"}\n"), "got: %s", out);
	free(out);
}
END_TEST

/* A value longer than a line: the line is cut, stays one line, and a JSON
 * line stays one object (the field that did not fit is left out). */
START_TEST(test_long_values_cut)
{
	char *big = malloc(10000), *out;

	memset(big, 'a', 9999);
	big[9999] = '\0';
	log_setup(LOG_JSON, "i");
	log_info("big", LOG_S("first", "kept"), LOG_S("content", big));
	log_setup(LOG_TEXT, "i");
	log_info("big", LOG_S("content", big));
	out = slurp();
	ck_assert_int_eq(count_lines(out), 2);
	ck_assert_msg(strstr(out, "\"first\":\"kept\",\"cut\":true}\n"),
		      "got: %.200s", out);
	ck_assert_msg(strlen(out) < 2 * 4096, "lines of %zu bytes",
		      strlen(out));
	free(out);
	free(big);
}
END_TEST

START_TEST(test_level_filters)
{
	char *out;

	log_setup(LOG_TEXT, "i");
	log_min_level = LOG_WARN;
	log_info("hidden");
	log_debug("hidden");
	log_warn("shown");
	out = slurp();
	ck_assert_int_eq(count_lines(out), 1);
	ck_assert_msg(strstr(out, " WARN shown\n"), "got: %s", out);
	ck_assert_int_eq(log_level_parse("warn"), LOG_WARN);
	ck_assert_int_eq(log_level_parse("loud"), -1);
	ck_assert_int_eq(log_format_parse("json"), LOG_JSON);
	ck_assert_int_eq(log_format_parse("xml"), -1);
	free(out);
}
END_TEST

int main(void)
{
	const struct tmain_case cases[] = {
		{ "log_text", test_text_event_with_fields },
		{ "log_text_escaped", test_text_values_quoted_and_escaped },
		{ "log_json", test_json_event },
		{ "log_json_utf8", test_json_invalid_utf8_replaced },
		{ "log_cut", test_long_values_cut },
		{ "log_levels", test_level_filters },
	};

	return tmain_main("log", cases, TMAIN_N(cases), setup, teardown);
}
