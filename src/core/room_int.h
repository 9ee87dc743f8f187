/*
 * Rooms (room.c), the bottom of the chat entities: a room knows who gets
 * its traffic only through struct room_sub, a handle its subscribers
 * (sessions, streams) embed and attach themselves with; so room.c calls
 * nothing above it, and sessions and streams apply the delivery rules to
 * themselves. Only room.c writes a struct room; the modules above read its
 * name, id, ring and last_seq (and session.c its members, which are all
 * sessions).
 */
#ifndef BD_CORE_ROOM_INT_H
#define BD_CORE_ROOM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"
#include "core/names.h"

struct chat;
struct chat_event;
struct outbuf;
struct parked;
struct room;
struct room_sub;

enum room_state {
	ROOM_IDLE,	/* no local members: not listening, ring unused */
	ROOM_SYNCING,	/* LISTEN + load in flight; events are parked */
	ROOM_LIVE,	/* listening; ring current */
	ROOM_STALE,	/* has members but notifications were lost */
};

/* A system notice of a room, in each transport's frame, with the rules
 * its subscribers apply through room_notice_frame(): its subject does not
 * get it, the people a grouped notice names get it without their own name,
 * and a line session gets one rename once across its rooms. */
struct room_notice {
	struct outbuf *line;	/* for line sessions */
	struct outbuf *sse;	/* the same text for streams */
	int64_t skip_uid;	/* the subject, by user id (0: none) */
	const char *skip_nick;	/* or by nickname, for a rename (or NULL) */
	int64_t once;		/* rename_id: the same in every room of one
				 * rename; 0: no such rule */
	struct room *grouped;	/* the room whose pending joins or leaves
				 * this notice shows (its group's subjects
				 * get frames of their own), or NULL */
};

/* Which frame of a notice a subscriber sends. */
enum room_frame {
	ROOM_FRAME_LINE,	/* struct room_notice's line */
	ROOM_FRAME_SSE,		/* its sse */
};

/* What a room calls on its subscribers, on the loop, from a store outcome.
 * None may free the subscriber or the room; sending may close a
 * connection (later, through its sink). */
struct room_sub_ops {
	/* A message, each once and in seq order; m is borrowed (its
	 * encodings are shared: queue a reference, don't copy). */
	void (*message)(struct chat *c, struct room_sub *sub, struct room *r,
			struct msg *m);
	/* A notice; the subscriber applies its rules. */
	void (*notice)(struct chat *c, struct room_sub *sub, struct room *r,
		       const struct room_notice *n);
	/* The room went live (ok: its ring is current) or failed to sync:
	 * for a member once per room_await(), for a stream on every sync
	 * that succeeds. */
	void (*ready)(struct chat *c, struct room_sub *sub, struct room *r,
		      bool ok);
};

/* A subscriber of rooms, embedded in what subscribes (a session, a
 * stream): one handle serves all its rooms. */
struct room_sub {
	const struct room_sub_ops *ops;
};

/* Joins (or leaves) of a room heard in one delivery pass and not shown
 * yet: one notice for all of them, shown before the room's next other
 * event, before a member is added, or when the pass ends
 * (chat_on_events_done()). Only a live room has pending ones: they are
 * shown before the LISTEN connection goes down and dropped when the last
 * member leaves. */
struct room_group {
	bool join;			/* joined, or left */
	bool listed;			/* the room is in chat's grouped list */
	struct room_group_who {		/* the people, in the order heard */
		int64_t uid;
		char nick[NICK_MAX + 1];
	} *who;
	size_t n, cap;
	/* While the notice is delivered: the distinct user ids among who,
	 * sorted, each with the frames it gets (built on first use). */
	struct room_group_subject {
		int64_t uid;
		size_t times;		/* entries of who with this uid */
		struct outbuf *line, *sse;	/* NULL: not built yet */
	} *subjects;
	size_t nsubjects, capsubjects;
};

struct room {
	int64_t id;			/* rooms.id */
	char name[ROOM_NAME_MAX + 1];
	struct room_sub **members;	/* local sessions that are members */
	size_t nmembers, capmembers;
	enum room_state state;
	uint64_t sync_gen;		/* matches watch() to its outcome;
					 * drawn from chat's counter, so a
					 * room freed and made again never
					 * takes its old sync's outcome */
	bool sync_initial;		/* the sync in flight loads the ring */
	bool ring_valid;		/* ring and last_seq are current */
	int64_t last_seq;		/* newest seq seen (delivered) */
	struct ring ring;		/* last history_size messages */
	struct parked *parked, **parked_tail;	/* events while syncing */
	struct room_sub **waiters;	/* members waiting for the history */
	size_t nwaiters, capwaiters;
	struct room_sub **streams;	/* open streams of this room: they get
					 * its traffic but are not members */
	size_t nstreams, capstreams;
	struct room_group group;	/* joins or leaves not shown yet */
};

struct room *room_get(struct chat *c, int64_t id);
/* A room in use here, by name. */
struct room *room_find(struct chat *c, const char *name);
/* m's event-stream frame, encoded once (kept in m). */
struct outbuf *room_msg_sse(struct room *r, struct msg *m);
/* The room, made (idle) if not in use here; the caller makes it used
 * (adds a member) before returning to the loop. */
struct room *room_get_or_add(struct chat *c, int64_t id, const char *name);
/* Frees r if nothing here uses it any more (no member, no stream): it
 * is unwatched already; a later join makes and loads it again. */
void room_release(struct chat *c, struct room *r);
void room_free(struct room *r);

/* A member: the room is watched while it has one; sub gets its traffic
 * and may wait for its history. The caller takes a member waiting for the
 * history off with room_cancel_await() first. */
void room_add_member(struct chat *c, struct room *r, struct room_sub *sub);
void room_remove_member(struct chat *c, struct room *r, struct room_sub *sub);
/* A stream: gets the traffic and keeps r in use, does not keep it
 * watched. */
void room_add_stream(struct room *r, struct room_sub *sub);
void room_remove_stream(struct room *r, struct room_sub *sub);
/* Member sub's ready() once the history is there: at once when r is live,
 * else when its sync ends (counted as a history hit or miss). */
void room_await(struct chat *c, struct room *r, struct room_sub *sub);
/* sub waits no more; false when it was not waiting. */
bool room_cancel_await(struct room *r, struct room_sub *sub);

bool room_is_live(const struct room *r);
/* Whether r hears its notifications now (syncing or live). */
bool room_is_listening(const struct room *r);
/* A notification of r (which is listening): delivered to the subscribers,
 * or parked while r syncs. A join or leave of a live room waits in its
 * group for one notice with the others of the pass (see struct
 * room_group). */
void room_take_event(struct chat *c, struct room *r,
		     const struct chat_event *ev);
/* The frame (kind f) of n that the subscriber with user id uid and
 * nickname nick gets, or NULL for none (it is n's subject; or the only
 * person a grouped notice names). Borrowed for the notice() call: queue a
 * reference. Nothing is allocated unless the subscriber is one of the
 * people a grouped notice names: each of them gets a frame built without
 * their name, once per notice and kind. */
struct outbuf *room_notice_frame(const struct room_notice *n, enum room_frame f,
				 int64_t uid, const char *nick);

#endif
