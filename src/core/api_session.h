/*
 * HTTP API sessions as this instance holds them. The sessions live in the
 * database (chat_store_ops.session_*): every request first resumes its
 * session there, which brings this instance's copy (an api_session around
 * a core session of kind SESSION_API) up to date with what other
 * instances did; then the transport carries on with what the request
 * asked. Copies nobody uses are dropped; a session that ends anywhere is
 * dropped everywhere (chat_on_session_end()), closing its streams; a tick
 * keeps streamed sessions alive and their copies current.
 *
 * The transport names each request with a nonzero `req` of its own and
 * gets the outcome through struct chat_api_ops (chat_set_api()). A copy is
 * named by its `key` (the first 64 bits of its token). Nothing here keeps
 * time by itself: the transport runs chat_api_sweep() about once a second,
 * chat_api_tick() every third of the idle timeout, and chat_api_run() when
 * chat_api_ops.defer asks.
 */
#ifndef BD_CORE_API_SESSION_H
#define BD_CORE_API_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_TOKEN_LEN 32	/* hex digits of a session token */

struct chat;
struct chat_stored_session;
struct session;

/* A token as handed out: 32 lowercase hex digits, the first 16 not all
 * zero. */
bool chat_api_token_ok(const char *token);

/* Starts the API sessions (idle_s: a session with no stream and no request
 * for that long expires). Call once, after chat_set_api(). */
void chat_api_start(struct chat *c, unsigned idle_s);
/* Shutdown: copies are dropped from now on (the sessions stay stored),
 * and a /quit no longer ends its session. */
void chat_api_stop(struct chat *c);

/* A new session for nick under token (made by the transport from a
 * cryptographic source; chat_api_token_ok()), asked from address addr.
 * 0 (-> connected), BD_EINVAL (bad nickname), BD_EADDRRATE (addr made
 * connect_burst sessions lately), or the store's error. */
int chat_api_connect(struct chat *c, const char *token, const char *nick,
		     const char *addr, uint64_t req);
/* Looks token's session up in the database. 0 (-> resumed), BD_ENOENT (no
 * such token can exist) or the store's error. */
int chat_api_resume(struct chat *c, const char *token, uint64_t req);
/* Whether a command of token's session runs here now (known without the
 * database). */
bool chat_api_busy(struct chat *c, const char *token);

/* After resumed(req, 0, key): */
/* Runs one command line, sent from address addr. 0 (-> replied),
 * BD_ENOENT (the copy is gone) or BD_EAGAIN (another command of the
 * session runs). */
int chat_api_command(struct chat *c, uint64_t key, uint64_t req,
		     const char *line, size_t len, const char *addr);
/* Posts a message to room. 0 (-> posted), BD_ENOENT, or
 * chat_session_post()'s errors. */
int chat_api_post(struct chat *c, uint64_t key, uint64_t req,
		  const char *room, const char *text, size_t len);
/* Ends the session (disconnect). 0 (-> ended), BD_ENOENT or the store's
 * error. */
int chat_api_end(struct chat *c, uint64_t key, uint64_t req);
/* The core session of the copy, for a stream; NULL when it is gone.
 * stream_opened/closed count its streams (a streamed session is kept
 * alive by the tick). */
struct session *chat_api_session(struct chat *c, uint64_t key);
void chat_api_stream_opened(struct chat *c, uint64_t key);
void chat_api_stream_closed(struct chat *c, uint64_t key);
/* The client of request req went away: no outcome is wanted any more. */
void chat_api_request_gone(struct chat *c, uint64_t key, uint64_t req);

/* Timers and deferred work. */
void chat_api_sweep(struct chat *c);
void chat_api_tick(struct chat *c);
void chat_api_run(struct chat *c);

/* Store outcomes. */
void chat_on_session_opened(struct chat *c, uint64_t req, int err,
			    const char *token,
			    const struct chat_stored_session *ss);
void chat_on_session_resumed(struct chat *c, uint64_t req, int err,
			     const char *token,
			     const struct chat_stored_session *ss);
void chat_on_session_ended(struct chat *c, uint64_t req, int err);
/* One row of a tick: ss NULL when the session is gone. */
void chat_on_session_tick(struct chat *c, int64_t id,
			  const struct chat_stored_session *ss);
/* Session id ended somewhere (NOTIFY session_end). */
void chat_on_session_end(struct chat *c, int64_t id);

#endif
