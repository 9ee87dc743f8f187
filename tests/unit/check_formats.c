/* Unit tests for src/core/wire.c: every byte format, exactly. */
#include <check.h>
#include <string.h>

#include "core/wire.h"
#include "tmain.h"

static void expect(struct outbuf *b, const char *want)
{
	ck_assert_uint_eq(b->len, strlen(want));
	ck_assert_msg(!memcmp(b->data, want, b->len), "got %.*s", (int)b->len,
		      b->data);
	outbuf_unref(b);
}

START_TEST(test_line_formats)
{
	expect(wire_line_message("general", "alice", "hi there"),
	       "[general] alice: hi there\n");
	expect(wire_line_notice("You are now bob", 15),
	       "[system] You are now bob\n");
	expect(wire_line_notice("cut here", 3), "[system] cut\n");
	expect(wire_line_error("no such room", 12),
	       "[system] error: no such room\n");
}
END_TEST

START_TEST(test_sse_frames)
{
	expect(wire_sse_message("general", 41, 412, "alice",
				"say \"hi\"\n<b>", 0),
	       "id: 41\nevent: message\ndata: {\"id\":412,\"seq\":41,"
	       "\"room\":\"general\",\"user\":\"alice\",\"content\":"
	       "\"say \\\"hi\\\"\\n<b>\",\"created_at\":"
	       "\"1970-01-01T00:00:00.000Z\"}\n\n");
	expect(wire_sse_system("general", "bob joined general"),
	       "event: system\ndata: {\"room\":\"general\","
	       "\"text\":\"bob joined general\"}\n\n");
	expect(wire_sse_system(NULL, "server shutting down"),
	       "event: system\ndata: {\"text\":\"server shutting down\"}\n\n");
	expect(wire_sse_reset(22),
	       "event: reset\ndata: {\"reason\":\"history truncated\","
	       "\"missed\":22}\n\n");
	expect(wire_sse_reset(-3),
	       "event: reset\ndata: {\"reason\":\"history truncated\","
	       "\"missed\":0}\n\n");
	expect(wire_sse_retry(3000), "retry: 3000\n\n");
	expect(wire_sse_ping(), ": ping\n\n");
}
END_TEST

static Suite *formats_suite(void)
{
	const struct tmain_case cases[] = {
		{ "line_formats", test_line_formats },
		{ "sse_frames", test_sse_frames },
	};

	return tmain_suite("formats", cases, sizeof(cases) / sizeof(cases[0]),
			   NULL, NULL);
}

int main(void)
{
	return tmain_run(formats_suite());
}
