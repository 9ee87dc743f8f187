/*
 * The chat: the lifetime of one instance's core state (struct chat,
 * instance_int.h), its counters, the dispatch of room notifications and
 * of the room list's outcome, and the room list requests that belong to no
 * session. The top of the core: it uses every module, none uses it.
 * Sessions are session.c's, commands and their outcomes commands.c's.
 */
#include "core/chat.h"

#include <stdlib.h>
#include <string.h>

#include "core/api_session_int.h"
#include "core/commands_int.h"
#include "core/instance_int.h"
#include "core/room_int.h"
#include "core/session_int.h"
#include "core/stream_int.h"
#include "core/wire.h"
#include "util/xalloc.h"

struct chat *chat_new(const struct chat_config *cfg,
		      const struct chat_store_ops *store, void *st)
{
	struct chat *c = xcalloc(1, sizeof(*c));

	c->cfg = *cfg;
	c->store = store;
	c->st = st;
	c->next_sid = 1;
	c->rng = cfg->seed ? cfg->seed : 0x9e3779b97f4a7c15ULL;
	c->next_stream_id = 1;
	c->run_line = cmd_input;
	idmap_init(&c->sessions);
	idmap_init(&c->nicks);
	idmap_init(&c->rooms);
	strmap_init(&c->room_names);
	idmap_init(&c->streams);
	keyrate_init(&c->addr_connects, cfg->connect_per_min,
		     cfg->connect_burst, CHAT_ADDR_KEYS);
	keyrate_init(&c->addr_creates, cfg->create_per_min, cfg->create_burst,
		     CHAT_ADDR_KEYS);
	return c;
}

void chat_set_api(struct chat *c, const struct chat_api_ops *api, void *arg)
{
	c->api = api;
	c->api_arg = arg;
}

void chat_free(struct chat *c)
{
	if (!c)
		return;
	api_sessions_free(c);
	while (c->first)
		session_free(c, c->first);
	/* Closing one reshuffles the map: always take the first left. */
	while (c->streams.count) {
		size_t i = 0;

		while (!c->streams.slots[i].key)
			i++;
		chat_stream_closed(c, c->streams.slots[i].val);
	}
	/* Rooms went with their last member or stream; any left over: */
	for (size_t i = 0; i < c->rooms.cap; i++)
		if (c->rooms.slots[i].key)
			room_free(c->rooms.slots[i].val);
	idmap_fini(&c->rooms);
	strmap_fini(&c->room_names);
	idmap_fini(&c->sessions);
	idmap_fini(&c->nicks);
	idmap_fini(&c->streams);
	keyrate_fini(&c->addr_connects);
	keyrate_fini(&c->addr_creates);
	free(c->grouped);
	free(c);
}

const struct chat_stats *chat_get_stats(const struct chat *c)
{
	return &c->stats;
}

size_t chat_session_count(const struct chat *c)
{
	return c->nsessions;
}

size_t chat_tcp_count(const struct chat *c)
{
	return c->nsessions - c->napi;
}

size_t chat_api_count(const struct chat *c)
{
	return c->napi;
}

const char *chat_lat_name(size_t i)
{
	static const char *const names[CHAT_LAT_N] = {
		"queue", "commit", "notify", "first_write", "last_write",
		"read_to_commit", "delivery", "read_to_first_write",
		"read_to_last_write",
	};

	return i < CHAT_LAT_N ? names[i] : NULL;
}

void chat_record_latency(struct chat *c, enum chat_lat stage, uint64_t us)
{
	hist_record(&c->stats.lat[stage], us);
}

size_t chat_room_count(const struct chat *c)
{
	return c->rooms.count;
}

bool chat_api_wanted(struct chat *c, uint64_t token)
{
	return !c->api || !c->api->wanted || c->api->wanted(c->api_arg, token);
}

void chat_shutdown(struct chat *c)
{
	struct outbuf *b = wire_sse_system(NULL, "server restarting, please reconnect");

	for (size_t i = 0; i < c->streams.cap; i++) {
		struct stream *st = c->streams.slots[i].val;

		if (!c->streams.slots[i].key)
			continue;
		stream_send(c, st, b);
		stream_kill(st, true);
	}
	outbuf_unref(b);
	for (struct session *s = c->first; s; s = s->next) {
		session_reply(c, s, "server restarting, please reconnect");
		session_kill(s, true, "shutdown");
	}
}

struct chat_presence *chat_presence_snapshot(struct chat *c, size_t *n)
{
	struct chat_presence *v = xcalloc(c->nsessions + 1, sizeof(*v));

	*n = 0;
	for (struct session *s = c->first; s; s = s->next) {
		if (s->api_id)
			continue;	/* the database keeps those */
		v[*n].sid = s->id;
		v[*n].nick = s->nick;
		v[*n].uid = s->uid;
		v[*n].room = s->current ? s->current->name : NULL;
		(*n)++;
	}
	return v;
}

int chat_room_info_cmp(const void *a, const void *b)
{
	const struct chat_room_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

size_t chat_rooms_after(const struct chat_room_info *rooms, size_t n,
			const char *after, size_t limit, size_t *count)
{
	size_t lo = 0, hi = n;

	if (!limit)
		limit = CHAT_ROOMS_PAGE;
	if (limit > CHAT_ROOMS_LIMIT_MAX)
		limit = CHAT_ROOMS_LIMIT_MAX;
	/* The first name greater than after. */
	while (after && *after && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(rooms[mid].name, after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*count = n - lo < limit ? n - lo : limit;
	return lo;
}

int chat_list_rooms(struct chat *c, uint64_t token)
{
	return c->store->rooms(c->st, 0, token);
}

/* The room list for a session's /rooms (sid) or for an API request
 * (token). */
void chat_on_rooms(struct chat *c, uint64_t sid, uint64_t token, int err,
		   const struct chat_room_info *rooms, size_t n)
{
	struct chat_room_info *sorted = NULL;
	struct session *s = NULL;

	if (sid) {
		s = chat_find_session(c, sid);
		if (!s)
			return;
	}
	/* Pages and `after` need one order, not the database's collation:
	 * byte order, on a copy (the strings stay the store's). */
	if (!err && n) {
		sorted = xmalloc(n * sizeof(*sorted));
		memcpy(sorted, rooms, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), chat_room_info_cmp);
	}
	if (s)
		cmd_rooms_done(c, s, err, sorted, n);
	else if (c->api && c->api->rooms)
		c->api->rooms(c->api_arg, token, err,
			      err ? NULL : sorted ? sorted : rooms, n);
	free(sorted);
}

/* Notifications */

void chat_on_event(struct chat *c, const struct chat_event *ev)
{
	struct room *r = room_get(c, ev->room_id);

	if (!r || !room_is_listening(r))
		return;		/* not watched here (or resynced later) */
	room_take_event(c, r, ev);
	if (ev->kind == CHAT_EV_LEAVE || ev->kind == CHAT_EV_NICK)
		session_follow_event(c, r, ev);
}

bool chat_room_known(struct chat *c, const char *name)
{
	return room_find(c, name) != NULL;
}

uint64_t chat_rooms_version(const struct chat *c)
{
	return c->rooms_version;
}
