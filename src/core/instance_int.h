/*
 * struct chat: one instance's core state, read by every core module, so
 * it sits below all of them and includes no module's header. Each group of
 * fields belongs to the module named beside it, which alone writes it;
 * chat.c makes and frees the whole. Nothing outside src/core includes
 * this (the unit tests aside).
 */
#ifndef BD_CORE_INSTANCE_INT_H
#define BD_CORE_INSTANCE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/chat.h"
#include "util/idmap.h"
#include "util/keyrate.h"
#include "util/strmap.h"

struct api_sessions;

struct chat {
	/* chat.c: set once by chat_new() / chat_set_api() */
	struct chat_config cfg;
	const struct chat_store_ops *store;
	void *st;
	const struct chat_api_ops *api;
	void *api_arg;
	/* Runs a session's input line: cmd_input(). A pointer, so that
	 * session.c (below commands.c) calls up without naming it. */
	void (*run_line)(struct chat *c, struct session *s, char *line,
			 size_t len);

	/* session.c */
	struct idmap sessions;		/* id -> session */
	struct session *first, *last;	/* all sessions, connect order */
	struct idmap nicks;		/* hash of a line session's nickname
					 * (or the one its /nick reserves),
					 * ignoring case -> how many have it */
	size_t nsessions;
	size_t napi;			/* of them HTTP (SESSION_API) */
	uint64_t next_sid;
	uint64_t rng;			/* xorshift state (guest names) */

	/* room.c */
	struct idmap rooms;		/* id -> room, only rooms in use: with
					 * local members or open streams */
	struct strmap room_names;	/* name -> room, the same rooms */
	uint64_t sync_gen;		/* last generation given a sync */
	bool listen_up;			/* notifications are flowing */
	int64_t *grouped;		/* ids of rooms whose joins or leaves
					 * wait for chat_on_events_done() */
	size_t ngrouped, capgrouped;

	/* stream.c */
	struct idmap streams;		/* id -> stream */
	uint64_t next_stream_id;

	/* api_session.c */
	struct api_sessions *apis;	/* NULL until chat_api_start() */

	/* Per source address limits (session.c: chat_addr_take()). */
	struct keyrate addr_connects, addr_creates;

	/* Every module counts here. */
	struct chat_stats stats;
	uint64_t rooms_version;		/* see chat_rooms_version() */
};

#endif
