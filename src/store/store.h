/*
 * The database side of the chat: two libpq connections on the loop (one
 * for queries, one that only LISTENs), implementing struct chat_store_ops
 * and turning notifications into chat events. Messages that arrive while a
 * statement runs are batched into one statement (one transaction), and so
 * are control operations (commands, presence, HTTP sessions: ctl.c).
 */
#ifndef BD_STORE_STORE_H
#define BD_STORE_STORE_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/chat.h"
#include "util/buckets.h"

struct store;

extern const struct chat_store_ops store_ops;

/* ready() runs once, when both connections first came up. The instance
 * registers itself and its sessions (presence) under instance_id and
 * heartbeats; instances silent for presence_timeout_s are reaped. */
struct store *store_new(struct lws_context *ctx, struct lws_vhost *vh,
			const char *conninfo, const char *instance_id,
			unsigned presence_timeout_s, void (*ready)(void *arg),
			void *arg);
/* At most limit user requests (the chat_store_ops nick, join, leave,
 * list, post (a new batch), rooms, session_open and session_resume)
 * queued or running on the query connection at once, each counted alone
 * even where several share one batched statement (messages aside: a
 * message joining a batch that waits unsent does not count); beyond it
 * they return BD_EBUSY and nothing is queued. Internal statements and
 * operations (presence, heartbeat, LISTEN, history and catch-up loads,
 * replays, session ticks and ends, cleanup) are never refused so and do not
 * count. 0: no limit (the default). */
void store_set_queue_limit(struct store *st, unsigned limit);

/* The query connection's queue, for /health. */
struct store_stats {
	unsigned queued;	/* statements queued or running now */
	unsigned queued_user;	/* user requests in them (limited) */
	unsigned queue_limit;	/* store_set_queue_limit(); 0: none */
	uint64_t refused;	/* user requests refused (BD_EBUSY) */
	uint64_t dropped;	/* reads and session lookups dropped
				 * unsent: requester gone */
	uint64_t errors;	/* statements or batched items that failed */
	uint64_t reconnects;	/* connections made after the first ones */
	uint64_t lost;		/* connections lost while up */
	uint64_t notifications;	/* NOTIFYs received */
	bool query_idle;	/* the query connection is up and idle */
	struct buckets post_batches;	/* messages per bd_post() */
	struct buckets ctl_batches;	/* operations per bd_ctl() */
};
void store_get_stats(const struct store *st, struct store_stats *out);

/* Wires the chat that receives outcomes and events (before start). */
void store_set_chat(struct store *st, struct chat *c);
void store_start(struct store *st);
/* Runs the retention job every interval_s seconds, keeping `keep` messages
 * per room, removing guests no longer connected and users unused for the
 * retention period (bd_cleanup_users, migration 011). */
void store_schedule_cleanup(struct store *st, unsigned interval_s,
			    unsigned keep);
/* Stops reconnecting and timers (before lws_context_destroy()). */
void store_stop(struct store *st);
/* After lws_context_destroy(). Accepts NULL. */
void store_free(struct store *st);
/* No statement queued or running on the query connection (shutdown waits
 * for this so that the sessions' presence rows are gone). */
bool store_is_idle(const struct store *st);
/* Both connections are up. */
bool store_is_connected(const struct store *st);
/* Fraction of PostgreSQL's NOTIFY queue in use, sampled with each
 * heartbeat. */
double store_notify_queue_usage(const struct store *st);

#endif
