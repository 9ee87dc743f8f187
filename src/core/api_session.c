/*
 * This instance's copies of the stored HTTP API sessions (see
 * api_session.h): made or brought up to date by each request's resume,
 * dropped when unused, ended or gone elsewhere, and refreshed by the tick
 * when they are streamed to.
 */
#include "core/api_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api_session_int.h"
#include "core/chat.h"
#include "core/instance_int.h"
#include "core/session_int.h"
#include "log.h"
#include "util/clock.h"
#include "util/xalloc.h"

#define US_PER_S 1000000LL

/* This instance's copy of a stored session, around a core session. */
struct api_session {
	char token[API_TOKEN_LEN + 1];	/* the client's secret */
	uint64_t key;			/* its first 64 bits: the map key */
	int64_t id;			/* api_sessions.id */
	struct session *s;
	uint64_t waiting;		/* request awaiting a command, or 0 */
	int nstreams;			/* open streams */
	int64_t last_used_us;		/* unused copies are dropped */
	int64_t rooms_version;		/* of the memberships synced, or -1 */
	bool closing;			/* being dropped (or ended) */
	bool end;			/* end it in the database too (/quit) */
	bool queued;			/* on the list chat_api_run() frees */
	struct api_session *prev, *next;	/* all copies */
	struct api_session *next_free;
	struct chat *c;
};

struct api_sessions {
	struct idmap by_key;		/* key -> api_session */
	struct idmap by_id;		/* id -> api_session */
	struct idmap quits;		/* req of a /quit -> its reply text */
	struct api_session *first;
	struct api_session *to_free;
	unsigned idle_s;
	bool stopping;
};

static int64_t now_us(void)
{
	return clock_mono_ns() / 1000;
}

static uint64_t token_key(const char *token)
{
	char head[17];

	memcpy(head, token, 16);
	head[16] = '\0';
	return strtoull(head, NULL, 16);
}

bool chat_api_token_ok(const char *token)
{
	return token && strlen(token) == API_TOKEN_LEN &&
	       strspn(token, "0123456789abcdef") == API_TOKEN_LEN &&
	       token_key(token);
}

/* The live copy with this token, if this instance has one. */
static struct api_session *by_token(struct api_sessions *a,
				    const char *token)
{
	struct api_session *as = idmap_get(&a->by_key, token_key(token));

	if (!as || as->closing || strcmp(as->token, token))
		return NULL;
	return as;
}

static struct api_session *by_key(struct chat *c, uint64_t key)
{
	struct api_session *as = key ? idmap_get(&c->apis->by_key, key) : NULL;

	return as && !as->closing ? as : NULL;
}

/* Drops the copy (and ends the stored session with end), later, from
 * chat_api_run(): never from inside a core callback. */
static void sess_close(struct api_session *as, bool end)
{
	struct chat *c = as->c;

	if (as->closing)
		return;
	as->closing = true;
	as->end = end;
	if (!as->queued) {
		as->queued = true;
		as->next_free = c->apis->to_free;
		c->apis->to_free = as;
	}
	c->api->defer(c->api_arg);
}

/* The command's outcome, when its session went idle. */
static void api_idle(void *conn)
{
	struct api_session *as = conn;
	struct chat *c = as->c;
	uint64_t req = as->waiting;
	int err = session_last_error(as->s);
	char *msg;

	if (!req)
		return;
	as->waiting = 0;
	if (as->closing) {
		/* Ended (e.g. a disconnect) while the command ran: what it
		 * did is not reported as a success. */
		c->api->replied(c->api_arg, req, BD_ENOENT, NULL);
		return;
	}
	msg = session_take_replies(as->s);
	c->api->replied(c->api_arg, req, err, msg);
	free(msg);
}

static void api_wake(void *conn)
{
	(void)conn;	/* replies are collected when the command is idle */
}

static void api_close(void *conn, bool flush)
{
	struct api_session *as = conn;

	(void)flush;
	/* /quit ends the session; a shutdown only drops this copy. */
	sess_close(as, !as->c->apis->stopping);
}

static void api_throttle(void *conn, bool stop)
{
	(void)conn;
	(void)stop;
}

static void api_posted(void *conn, uint64_t token, int err, int64_t id,
		       int64_t seq)
{
	struct api_session *as = conn;

	as->c->api->posted(as->c->api_arg, token, err, id, seq);
}

static const struct chat_sink_ops api_sink = {
	.wake = api_wake,
	.close = api_close,
	.throttle = api_throttle,
	.idle = api_idle,
	.posted = api_posted,
};

static void sess_free(struct chat *c, struct api_session *as)
{
	struct api_sessions *a = c->apis;
	uint64_t req = as->end ? as->waiting : 0;
	int err;

	if (req) {
		/* /quit: answered once the session is deleted. */
		as->waiting = 0;
		idmap_put(&a->quits, req, session_take_replies(as->s));
	} else {
		api_idle(as);	/* a closing session is never idle */
	}
	if (!as->s->close_reason)
		as->s->close_reason = as->end ? "session ended" : "copy dropped";
	chat_session_closed(c, as->s);
	if (as->end) {
		err = c->store->session_end(c->st, as->id, req);
		if (err) {
			log_warn("session_end_failed", LOG_I("session", as->id),
				 LOG_S("reason", bd_strerror(err)));
			if (req)
				chat_on_session_ended(c, req, 0);
		}
	}
	if (idmap_get(&a->by_key, as->key) == as)
		idmap_del(&a->by_key, as->key);
	idmap_del(&a->by_id, (uint64_t)as->id);
	if (as->prev)
		as->prev->next = as->next;
	else
		a->first = as->next;
	if (as->next)
		as->next->prev = as->prev;
	free(as);
}

void chat_api_run(struct chat *c)
{
	struct api_sessions *a = c->apis;

	while (a->to_free) {
		struct api_session *as = a->to_free;

		a->to_free = as->next_free;
		as->queued = false;
		if (as->closing)	/* else a request took it back */
			sess_free(c, as);
	}
}

/* This instance's copy of a stored session, made or brought up to date;
 * NULL when the copy here is on its way out with the session (/quit). */
static struct api_session *sess_sync(struct chat *c, const char *token,
				     const struct chat_stored_session *ss)
{
	struct api_sessions *a = c->apis;
	struct api_session *as = idmap_get(&a->by_id, (uint64_t)ss->id);

	if (as && as->closing) {
		if (as->end || session_is_closing(as->s))
			return NULL;
		as->closing = false;	/* only being dropped: keep it */
	}
	if (!as) {
		as = xcalloc(1, sizeof(*as));
		snprintf(as->token, sizeof(as->token), "%s", token);
		as->key = token_key(token);
		as->id = ss->id;
		as->c = c;
		as->rooms_version = -1;
		as->s = chat_session_open_api(c, &api_sink, as, ss->id);
		idmap_put(&a->by_key, as->key, as);
		idmap_put(&a->by_id, (uint64_t)as->id, as);
		as->next = a->first;
		if (a->first)
			a->first->prev = as;
		a->first = as;
	}
	as->last_used_us = now_us();
	if (ss->rooms_unchanged) {
		chat_session_sync_head(c, as->s, ss->uid, ss->nick, ss->room);
		return as;
	}
	chat_session_sync(c, as->s, ss->uid, ss->nick, ss->room, ss->rooms,
			  ss->nrooms);
	as->rooms_version = ss->rooms_version;
	return as;
}

/* The session ended elsewhere, expired, or is unknown: drop the copy. */
static void sess_gone(struct chat *c, int64_t id)
{
	struct api_session *as = idmap_get(&c->apis->by_id, (uint64_t)id);

	if (!as || as->closing)
		return;
	log_info("session_ended", LOG_I("session", as->id),
		 LOG_S("nick", session_nick(as->s)),
		 LOG_I("streams", as->nstreams));
	sess_close(as, false);
}

/* Requests */

int chat_api_connect(struct chat *c, const char *token, const char *nick,
		     const char *addr, uint64_t req)
{
	if (!name_is_valid_nick(nick) || !chat_api_token_ok(token))
		return BD_EINVAL;
	if (!chat_addr_take(c, &c->addr_connects, addr)) {
		c->stats.rejected[-BD_EADDRRATE - 1]++;
		return BD_EADDRRATE;
	}
	return c->store->session_open(c->st, token, nick, req);
}

void chat_on_session_opened(struct chat *c, uint64_t req, int err,
			    const char *token,
			    const struct chat_stored_session *ss)
{
	struct api_session *as;

	if (err) {
		c->api->connected(c->api_arg, req, err, NULL, 0, NULL);
		return;
	}
	as = sess_sync(c, token, ss);	/* a new one: never NULL */
	c->api->connected(c->api_arg, req, 0, as->token, ss->uid, ss->nick);
}

static int resume(struct chat *c, const char *token, int64_t known,
		  uint64_t req)
{
	return c->store->session_resume(c->st, token, c->apis->idle_s, known,
					req);
}

int chat_api_resume(struct chat *c, const char *token, uint64_t req)
{
	struct api_session *as;

	if (!chat_api_token_ok(token))
		return BD_ENOENT;
	as = by_token(c->apis, token);
	return resume(c, token, as ? as->rooms_version : -1, req);
}

void chat_on_session_resumed(struct chat *c, uint64_t req, int err,
			     const char *token,
			     const struct chat_stored_session *ss)
{
	struct api_sessions *a = c->apis;
	struct api_session *as;

	if (err == BD_ECANCELED)
		return;		/* nobody waits for it */
	if (err == BD_ENOENT) {
		as = by_token(a, token);
		if (as)
			sess_gone(c, as->id);
	}
	if (err) {
		c->api->resumed(c->api_arg, req, err, 0);
		return;
	}
	as = idmap_get(&a->by_id, (uint64_t)ss->id);
	if (ss->rooms_unchanged &&
	    (!as || as->rooms_version != ss->rooms_version)) {
		/* The copy that knew the memberships went meanwhile. */
		err = resume(c, token, -1, req);
		if (err)
			c->api->resumed(c->api_arg, req, err, 0);
		return;
	}
	as = sess_sync(c, token, ss);
	c->api->resumed(c->api_arg, req, as ? 0 : BD_ENOENT, as ? as->key : 0);
}

bool chat_api_busy(struct chat *c, const char *token)
{
	struct api_session *as = chat_api_token_ok(token) ?
				 by_token(c->apis, token) : NULL;

	return as && as->waiting;
}

int chat_api_command(struct chat *c, uint64_t key, uint64_t req,
		     const char *line, size_t len, const char *addr)
{
	struct api_session *as = by_key(c, key);

	if (!as)
		return BD_ENOENT;
	if (as->waiting)
		return BD_EAGAIN;
	session_clear_error(as->s);
	free(session_take_replies(as->s));	/* drop anything stale */
	as->waiting = req;
	chat_session_set_addr(as->s, addr);
	chat_session_input(c, as->s, line, len);
	return 0;
}

int chat_api_post(struct chat *c, uint64_t key, uint64_t req,
		  const char *room, const char *text, size_t len)
{
	struct api_session *as = by_key(c, key);

	if (!as)
		return BD_ENOENT;
	return chat_session_post(c, as->s, room, text, len, req);
}

int chat_api_end(struct chat *c, uint64_t key, uint64_t req)
{
	struct api_session *as = by_key(c, key);

	if (!as)
		return BD_ENOENT;
	sess_close(as, false);
	return c->store->session_end(c->st, as->id, req);
}

void chat_on_session_ended(struct chat *c, uint64_t req, int err)
{
	char *text;

	if (!req)
		return;
	text = idmap_get(&c->apis->quits, req);
	if (!text) {
		c->api->ended(c->api_arg, req, err);
		return;
	}
	idmap_del(&c->apis->quits, req);
	if (err && err != BD_ENOENT)
		log_warn("session_end_failed", LOG_S("reason", bd_strerror(err)));
	c->api->replied(c->api_arg, req, 0, text);
	free(text);
}

struct session *chat_api_session(struct chat *c, uint64_t key)
{
	struct api_session *as = by_key(c, key);

	return as ? as->s : NULL;
}

void chat_api_stream_opened(struct chat *c, uint64_t key)
{
	struct api_session *as = key ? idmap_get(&c->apis->by_key, key) : NULL;

	if (as)
		as->nstreams++;
}

void chat_api_stream_closed(struct chat *c, uint64_t key)
{
	struct api_session *as = key ? idmap_get(&c->apis->by_key, key) : NULL;

	if (as) {
		as->nstreams--;
		as->last_used_us = now_us();
	}
}

void chat_api_request_gone(struct chat *c, uint64_t key, uint64_t req)
{
	struct api_session *as = key ? idmap_get(&c->apis->by_key, key) : NULL;

	if (as && as->waiting == req)
		as->waiting = 0;
}

/* Timers */

/* Drops copies nobody used for a while (all of them at shutdown); the
 * sessions stay in the database. */
void chat_api_sweep(struct chat *c)
{
	struct api_sessions *a = c->apis;
	int64_t now = now_us();

	for (struct api_session *as = a->first; as; as = as->next) {
		if (as->closing || as->nstreams || as->waiting)
			continue;
		if (a->stopping ||
		    now - as->last_used_us > (int64_t)a->idle_s * US_PER_S) {
			log_debug("session_copy_dropped", LOG_I("session", as->id),
				  LOG_S("nick", session_nick(as->s)));
			sess_close(as, false);
		}
	}
}

/* Keeps the sessions this instance streams to alive in the database,
 * ends idle ones (any instance may) and refreshes the copies of the
 * streamed ones (chat_on_session_tick()). */
void chat_api_tick(struct chat *c)
{
	struct api_sessions *a = c->apis;
	int64_t *keep;
	size_t n = 0;

	if (a->stopping)
		return;
	keep = xcalloc(a->by_id.count + 1, sizeof(*keep));
	for (struct api_session *as = a->first; as; as = as->next)
		if (!as->closing && as->nstreams)
			keep[n++] = as->id;
	c->store->session_tick(c->st, keep, n, a->idle_s);
	free(keep);
}

/* A streamed session as the tick found it: gone (drop the copy), or its
 * state now, which the copy takes unless a command of it is running here
 * (its outcome brings what it changed). This catches what a lost
 * notification would have told, e.g. a /leave through another instance
 * while this one's LISTEN connection was down. */
void chat_on_session_tick(struct chat *c, int64_t id,
			  const struct chat_stored_session *ss)
{
	struct api_session *as = idmap_get(&c->apis->by_id, (uint64_t)id);

	if (!as || as->closing)
		return;
	if (!ss) {
		sess_gone(c, id);
		return;
	}
	if (!as->waiting)
		chat_session_sync(c, as->s, ss->uid, ss->nick, ss->room,
				  ss->rooms, ss->nrooms);
}

void chat_on_session_end(struct chat *c, int64_t id)
{
	if (c->apis)
		sess_gone(c, id);
}

/* Lifetime */

void chat_api_start(struct chat *c, unsigned idle_s)
{
	struct api_sessions *a = xcalloc(1, sizeof(*a));

	idmap_init(&a->by_key);
	idmap_init(&a->by_id);
	idmap_init(&a->quits);
	a->idle_s = idle_s;
	c->apis = a;
}

void chat_api_stop(struct chat *c)
{
	c->apis->stopping = true;
}

void api_sessions_free(struct chat *c)
{
	struct api_sessions *a = c->apis;

	if (!a)
		return;
	while (a->first) {
		struct api_session *as = a->first;

		a->first = as->next;
		as->s->close_reason = "shutdown";
		chat_session_closed(c, as->s);
		free(as);
	}
	for (size_t i = 0; i < a->quits.cap; i++)
		if (a->quits.slots[i].key)
			free(a->quits.slots[i].val);
	idmap_fini(&a->by_key);
	idmap_fini(&a->by_id);
	idmap_fini(&a->quits);
	free(a);
	c->apis = NULL;
}
