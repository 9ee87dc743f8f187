/* NOTIFY payload decoding: {"k": kind, "r": room, ...}; see db/. */
#include "store/notify.h"

#include <jansson.h>
#include <string.h>

/* A JSON number that is a whole int64_t. */
static int val_i64(json_t *v, int64_t *dst)
{
	if (json_is_integer(v)) {
		*dst = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {	/* jsonb may render big numbers as reals */
		double d = json_real_value(v);

		/* Only whole numbers an int64_t holds (casting others is
		 * undefined: found by tests/fuzz/fuzz_notify). */
		if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) ||
		    d != (double)(int64_t)d)
			return -1;
		*dst = (int64_t)d;
		return 0;
	}
	return -1;
}

static int store_get_i64(json_t *o, const char *key, int64_t *dst)
{
	return val_i64(json_object_get(o, key), dst);
}

static const char *get_str(json_t *o, const char *key, size_t *len)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return NULL;
	if (len)
		*len = json_string_length(v);
	return json_string_value(v);
}

/* One message of a batch: [seq, id, nick, content]. */
static int batch_item(json_t *m, struct chat_event *ev)
{
	json_t *n = json_array_get(m, 2), *c = json_array_get(m, 3);

	if (!json_is_array(m) || json_array_size(m) != 4 ||
	    !json_is_string(n) || !json_is_string(c))
		return -1;
	ev->nick = json_string_value(n);
	ev->content = json_string_value(c);
	ev->content_len = json_string_length(c);
	return val_i64(json_array_get(m, 0), &ev->seq) ||
			       val_i64(json_array_get(m, 1), &ev->id) ?
		       -1 :
		       0;
}

/* A batch: every item checked before the first is handed out. */
static int decode_batch(json_t *o, struct chat_event *ev, notify_fn *fn,
			void *arg)
{
	json_t *ms = json_object_get(o, "m");
	size_t n = json_array_size(ms);

	if (!json_is_array(ms) || !n || store_get_i64(o, "t", &ev->time_ms))
		return -1;
	ev->kind = CHAT_EV_MESSAGE;
	for (size_t i = 0; i < n; i++)
		if (batch_item(json_array_get(ms, i), ev))
			return -1;
	for (size_t i = 0; i < n; i++) {
		batch_item(json_array_get(ms, i), ev);
		fn(arg, ev);
	}
	return (int)n;
}

/* One event of kind `kind` (not a batch) from o into ev. */
static int decode_one(json_t *o, const char *kind, struct chat_event *ev)
{
	if (!(ev->nick = get_str(o, "u", NULL)))
		return -1;
	if (!strcmp(kind, "m")) {	/* before migration 017 */
		ev->kind = CHAT_EV_MESSAGE;
		ev->content = get_str(o, "c", &ev->content_len);
		if (!ev->content || store_get_i64(o, "s", &ev->seq) ||
		    store_get_i64(o, "i", &ev->id) ||
		    store_get_i64(o, "t", &ev->time_ms))
			return -1;
	} else if (!strcmp(kind, "j") || !strcmp(kind, "l")) {
		ev->kind = kind[0] == 'j' ? CHAT_EV_JOIN : CHAT_EV_LEAVE;
		if (store_get_i64(o, "uid", &ev->uid))
			return -1;
	} else if (!strcmp(kind, "h")) {
		ev->kind = CHAT_EV_HISTORY;
	} else if (!strcmp(kind, "n")) {
		ev->kind = CHAT_EV_NICK;
		ev->new_nick = get_str(o, "to", NULL);
		if (!ev->new_nick || store_get_i64(o, "uid", &ev->uid))
			return -1;
		if (store_get_i64(o, "x", &ev->rename_id))	/* before 008 */
			ev->rename_id = 0;
	} else {
		return -1;
	}
	return 0;
}

int notify_decode(const char *payload, notify_fn *fn, void *arg)
{
	json_t *o = json_loads(payload, 0, NULL);
	struct chat_event ev;
	const char *kind;
	int n = -1;

	memset(&ev, 0, sizeof(ev));
	if (!json_is_object(o) || !(kind = get_str(o, "k", NULL)) ||
	    store_get_i64(o, "r", &ev.room_id))
		goto out;
	if (!strcmp(kind, "b")) {
		n = decode_batch(o, &ev, fn, arg);
	} else if (!decode_one(o, kind, &ev)) {
		fn(arg, &ev);
		n = 1;
	}
out:
	json_decref(o);
	return n;
}
