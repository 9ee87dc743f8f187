/* NOTIFY payload decoding: {"k": kind, "r": room, ...}; see db/. */
#include "store/notify.h"

#include <string.h>

static int store_get_i64(json_t *o, const char *key, int64_t *dst)
{
	json_t *v = json_object_get(o, key);

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

static const char *get_str(json_t *o, const char *key, size_t *len)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return NULL;
	if (len)
		*len = json_string_length(v);
	return json_string_value(v);
}

int notify_decode(const char *payload, struct chat_event *ev, json_t **root)
{
	json_t *o = json_loads(payload, 0, NULL);
	const char *kind;

	memset(ev, 0, sizeof(*ev));
	*root = NULL;
	if (!json_is_object(o) || !(kind = get_str(o, "k", NULL)) ||
	    store_get_i64(o, "r", &ev->room_id) || !(ev->nick = get_str(o, "u", NULL)))
		goto out_bad;
	if (!strcmp(kind, "m")) {
		ev->kind = CHAT_EV_MESSAGE;
		ev->content = get_str(o, "c", &ev->content_len);
		if (!ev->content || store_get_i64(o, "s", &ev->seq) ||
		    store_get_i64(o, "i", &ev->id) || store_get_i64(o, "t", &ev->time_ms))
			goto out_bad;
	} else if (!strcmp(kind, "j") || !strcmp(kind, "l")) {
		ev->kind = kind[0] == 'j' ? CHAT_EV_JOIN : CHAT_EV_LEAVE;
		if (store_get_i64(o, "uid", &ev->uid))
			goto out_bad;
	} else if (!strcmp(kind, "h")) {
		ev->kind = CHAT_EV_HISTORY;
	} else if (!strcmp(kind, "n")) {
		ev->kind = CHAT_EV_NICK;
		ev->new_nick = get_str(o, "to", NULL);
		if (!ev->new_nick || store_get_i64(o, "uid", &ev->uid))
			goto out_bad;
		if (store_get_i64(o, "x", &ev->rename_id))	/* before 008 */
			ev->rename_id = 0;
	} else {
		goto out_bad;
	}
	*root = o;
	return 0;
out_bad:
	json_decref(o);
	return -1;
}
