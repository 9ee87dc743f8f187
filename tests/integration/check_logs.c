/*
 * Logs: with log_format json and log_file, every line of the file is one
 * JSON object with ts, level, instance and event; a TCP user's connect,
 * nick, create, join, leave and disconnect (with its reason) and an HTTP
 * session's connect are there with their fields; message bodies and
 * session ids are not (at info). SIGHUP reopens the file after a rotation
 * and takes log_level from the config again.
 */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers/tcl.h"
#include "../helpers/tfix.h"
#include "../helpers/thttp.h"
#include "../helpers/trun.h"
#include "../helpers/tsrv.h"

#define PORT tfix_tcp_port()
#define HPORT tfix_http_port()

/* T_SRV writes JSON lines into its own log file (the one the harness
 * also reads, for the ready line). */
static void setup_json_file(void)
{
	struct tsrv_opts o = {
		.extra_json = "\"log_format\": \"json\", \"log_file\": \"" TSRV_LOG_PATH "\""
	};

	tfix_use(&o);
}

/* The file's JSON lines (harness lines, which start with "----", are
 * skipped) as an array of objects; fails on any other line. */
static json_t *read_events(const char *path)
{
	FILE *f = fopen(path, "r");
	json_t *all = json_array();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	ck_assert_msg(f, "cannot open %s", path);
	while ((n = getline(&line, &cap, f)) > 0) {
		json_error_t e;
		json_t *o;

		if (!strncmp(line, "----", 4) || !strcmp(line, "\n"))
			continue;
		o = json_loads(line, 0, &e);
		ck_assert_msg(o && json_is_object(o), "not a JSON object: %s",
			      line);
		ck_assert_msg(json_is_string(json_object_get(o, "ts")) &&
				      json_is_string(json_object_get(o, "level")) &&
				      json_is_string(json_object_get(o, "event")),
			      "missing ts, level or event: %s", line);
		ck_assert_msg(!strcmp(json_string_value(json_object_get(
					      o, "instance")),
				      T_SRV.instance_id),
			      "instance: %s", line);
		json_array_append_new(all, o);
	}
	free(line);
	fclose(f);
	return all;
}

/* The first event named ev whose string field key is val (key NULL: any). */
static json_t *find_event(json_t *all, const char *ev, const char *key,
			  const char *val)
{
	size_t i;
	json_t *o;

	json_array_foreach(all, i, o) {
		const char *e = json_string_value(json_object_get(o, "event"));
		json_t *v;

		if (strcmp(e, ev))
			continue;
		if (!key)
			return o;
		v = json_object_get(o, key);
		if (json_is_string(v) && !strcmp(json_string_value(v), val))
			return o;
	}
	return NULL;
}

static const char *field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

/* Waits until the log has the event ev with key = val. */
static void wait_event(const char *ev, const char *key, const char *val)
{
	char needle[256];
	char *line;

	snprintf(needle, sizeof(needle), "\"event\":\"%s\"", ev);
	for (int64_t end = trun_now_ms() + trun_ms(10000);;) {
		json_t *all;
		json_t *o;

		line = tsrv_wait_log(&T_SRV, needle, 200);
		free(line);
		all = read_events(T_SRV.log);
		o = find_event(all, ev, key, val);
		json_decref(all);
		if (o)
			return;
		ck_assert_msg(trun_now_ms() < end, "no %s event with %s=%s", ev,
			      key, val);
	}
}

START_TEST(test_json_log_events)
{
	struct tcl *alice = tcl_user(PORT, "alice");
	char sid[64], *text;
	json_t *all, *o;

	do_create(alice, "logroom");
	do_say(alice, "logroom", "a secret body");
	expect_reply(alice, "/leave", "[system] You left logroom");
	api_connect(HPORT, "bob", sid);
	do_quit(alice);
	wait_event("disconnect", "nick", "alice");

	all = read_events(T_SRV.log);
	ck_assert_ptr_nonnull(find_event(all, "start", NULL, NULL));
	ck_assert_ptr_nonnull(find_event(all, "ready", NULL, NULL));
	o = find_event(all, "connect", "transport", "tcp");
	ck_assert_msg(o && json_is_integer(json_object_get(o, "conn")),
		      "tcp connect event");
	ck_assert_ptr_nonnull(find_event(all, "connect", "transport", "http"));
	o = find_event(all, "nick", "nick", "alice");
	ck_assert_msg(o && !strncmp(field(o, "from"), "guest-", 6),
		      "nick event");
	ck_assert_ptr_nonnull(find_event(all, "create", "room", "logroom"));
	ck_assert_ptr_nonnull(find_event(all, "leave", "room", "logroom"));
	o = find_event(all, "disconnect", "nick", "alice");
	ck_assert_str_eq(field(o, "reason"), "quit");
	ck_assert_str_eq(field(o, "level"), "info");
	json_decref(all);

	text = tsrv_log_tail(&T_SRV, 1 << 20);
	ck_assert_msg(!strstr(text, "a secret body"),
		      "a message body at level info");
	ck_assert_msg(!strstr(text, sid), "the session id %s is logged", sid);
	free(text);
	tcl_free(alice);
}
END_TEST

/* Replaces the config's log_level. */
static void set_config_level(const char *level)
{
	FILE *f = fopen(T_SRV.cfg, "r");
	char buf[8192], *p, *q, out[8300];
	size_t n;

	ck_assert(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	p = strstr(buf, "\"log_level\": \"");
	ck_assert_msg(p, "no log_level in %s", buf);
	p += strlen("\"log_level\": \"");
	q = strchr(p, '"');
	snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - buf), buf, level, q);
	f = fopen(T_SRV.cfg, "w");
	ck_assert(f);
	fputs(out, f);
	fclose(f);
}

START_TEST(test_sighup_reopens_and_rereads_level)
{
	char rotated[1100], *line;
	struct tcl *c;
	json_t *all;

	tfix_begin();
	snprintf(rotated, sizeof(rotated), "%s.1", T_SRV.log);
	ck_assert_int_eq(rename(T_SRV.log, rotated), 0);
	set_config_level("debug");
	T_SRV.run_start = 0;	/* a new file: read it from its start */
	tsrv_signal(&T_SRV, SIGHUP);
	for (int64_t end = trun_now_ms() + trun_ms(10000);
	     access(T_SRV.log, F_OK);) {
		ck_assert_msg(trun_now_ms() < end, "%s not created again",
			      T_SRV.log);
		trun_pace();
	}
	line = tsrv_wait_log(&T_SRV, "\"event\":\"reload\"", trun_ms(10000));
	ck_assert_msg(line, "no reload event in a new %s", T_SRV.log);
	ck_assert_msg(strstr(line, "\"log_level\":\"debug\""), "%s", line);
	free(line);
	/* Debug events now: a /nick's control batch. */
	c = tcl_user(PORT, "carol");
	line = tsrv_wait_log(&T_SRV, "\"level\":\"debug\"", trun_ms(10000));
	ck_assert_msg(line, "no debug line after the reload");
	free(line);
	all = read_events(T_SRV.log);
	ck_assert_ptr_nonnull(find_event(all, "nick", "nick", "carol"));
	json_decref(all);
	tcl_free(c);
	/* The old file kept what came before. */
	all = read_events(rotated);
	ck_assert_ptr_nonnull(find_event(all, "ready", NULL, NULL));
	ck_assert_ptr_null(find_event(all, "reload", NULL, NULL));
	json_decref(all);
}
END_TEST

int main(void)
{
	const struct tfix_case cases[] = {
		TFIX_CASE(test_json_log_events, 60, setup_json_file),
		TFIX_CASE(test_sighup_reopens_and_rereads_level, 60,
			  setup_json_file),
	};

	return tfix_main("logs", cases, TMAIN_N(cases), NULL);
}
