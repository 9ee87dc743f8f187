/*
 * The room list as HTTP serves it: GET /api/rooms, and the check whether a
 * room that a session is not a member of exists (403) or not (404). All
 * requests share one snapshot of the list, used while it is under a
 * second old; requests that come while it is being read wait for that one
 * read, so repeating the request does not repeat the query. GET /api/rooms
 * pages through it in byte order of the names (?after=<name>&limit=<n>).
 */
#include "net/http_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/wire.h"
#include "util/http1.h"
#include "util/xalloc.h"

#define MAX_AGE_US LWS_US_PER_SEC

struct rooms_snap {
	struct chat_room_info *v;	/* as chat_rooms_after() wants it;
					 * the names are ours */
	size_t n;
	lws_usec_t at;			/* when it was read; 0: never */
	uint64_t version;		/* chat_rooms_version() then */
	bool loading;			/* a read is in flight */
	uint64_t reads;			/* reads started */
	uint64_t *waiters;		/* tokens of parked requests */
	size_t nwait, capwait;
};

struct rooms_snap *rooms_new(void)
{
	return xcalloc(1, sizeof(struct rooms_snap));
}

static void snap_clear(struct rooms_snap *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free((char *)rs->v[i].name);
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}

void rooms_free(struct rooms_snap *rs)
{
	if (!rs)
		return;
	snap_clear(rs);
	free(rs->waiters);
	free(rs);
}

static bool fresh(struct http_state *hs)
{
	struct rooms_snap *rs = hs->rooms;

	return rs->at && http_now_us() - rs->at < MAX_AGE_US &&
	       rs->version == chat_rooms_version(hs->chat);
}

static bool exists(const struct rooms_snap *rs, const char *name)
{
	for (size_t i = 0; i < rs->n; i++)
		if (!strcmp(rs->v[i].name, name))
			return true;
	return false;
}

/* hc's answer from the snapshot. */
static void answer(struct http_state *hs, struct http_conn *hc)
{
	struct rooms_snap *rs = hs->rooms;
	size_t first, count;

	if (hc->route == R_MEMBER_CHECK) {
		if (exists(rs, hc->room))
			http_answer_err(hc, BD_EPERM);
		else
			http_answer_error(hc, 404, "no such room");
		return;
	}
	first = chat_rooms_after(rs->v, rs->n, hc->room, hc->page_limit,
				 &count);
	http_answer(hc, 200, wire_json_rooms(rs->v + first, count,
					     first + count < rs->n ?
					     rs->v[first + count - 1].name :
					     NULL));
}

/* The outcome of chat_list_rooms() (sorted by name): the new snapshot,
 * for every waiter. */
void rooms_loaded(void *arg, uint64_t token, int err,
		  const struct chat_room_info *rooms, size_t n)
{
	struct http_state *hs = arg;
	struct rooms_snap *rs = hs->rooms;
	size_t nwait = rs->nwait;
	uint64_t *waiters = rs->waiters;

	(void)token;
	rs->loading = false;
	if (!err) {
		snap_clear(rs);
		rs->v = xcalloc(n + 1, sizeof(*rs->v));
		for (size_t i = 0; i < n; i++) {
			rs->v[i] = rooms[i];
			rs->v[i].name = xstrdup(rooms[i].name);
		}
		rs->n = n;
		rs->at = http_now_us();
	}
	/* Answering may start another read (a pipelined request): take the
	 * list first. */
	rs->waiters = NULL;
	rs->nwait = rs->capwait = 0;
	for (size_t i = 0; i < nwait; i++) {
		struct http_conn *hc = http_claim(hs, waiters[i]);

		if (!hc)
			continue;	/* the client went away */
		if (err)
			http_answer_err(hc, err);
		else
			answer(hs, hc);
	}
	free(waiters);
}

/* The one read in flight is wanted while one of its waiters is. */
bool rooms_wanted(struct http_state *hs)
{
	struct rooms_snap *rs = hs->rooms;

	for (size_t i = 0; i < rs->nwait; i++)
		if (idmap_get(&hs->pending, rs->waiters[i]))
			return true;
	return false;
}

uint64_t rooms_reads(const struct http_state *hs)
{
	return hs->rooms->reads;
}

/* Answers hc from a fresh snapshot, or parks it until the next read. */
static void want(struct http_state *hs, struct http_conn *hc)
{
	struct rooms_snap *rs = hs->rooms;
	int err;

	if (fresh(hs)) {
		answer(hs, hc);
		return;
	}
	http_park(hs, hc);
	if (rs->nwait == rs->capwait) {
		rs->capwait = rs->capwait ? 2 * rs->capwait : 8;
		rs->waiters = xrealloc(rs->waiters,
				       rs->capwait * sizeof(*rs->waiters));
	}
	rs->waiters[rs->nwait++] = hc->token;
	if (rs->loading)
		return;
	rs->loading = true;
	rs->reads++;
	rs->version = chat_rooms_version(hs->chat);
	err = chat_list_rooms(hs->chat, 0);
	if (err) {
		rs->loading = false;
		rooms_loaded(hs, 0, err, NULL, 0);
	}
}

void rooms_handle(struct http_state *hs, struct http_conn *hc,
		  const struct http1_req *rq)
{
	const char *why;
	int status;

	status = apireq_rooms(rq->query, &hc->page_limit, hc->room, &why);
	if (status) {
		http_answer_error(hc, status, why);
		return;
	}
	want(hs, hc);
}

void rooms_member_check(struct http_state *hs, struct http_conn *hc)
{
	hc->route = R_MEMBER_CHECK;
	want(hs, hc);
}
