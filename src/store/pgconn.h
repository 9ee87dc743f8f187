/*
 * One non-blocking libpq connection living on the lws loop: its socket is
 * adopted as a raw file descriptor, statements run one at a time from a
 * FIFO, notifications are handed to the owner, and a lost connection is
 * re-established with backoff. Nothing here blocks and nothing polls.
 */
#ifndef BD_STORE_PGCONN_H
#define BD_STORE_PGCONN_H

#include <libpq-fe.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

struct pgconn;

struct pgconn_cbs {
	/* Connected (again) and idle: statements can be queued. */
	void (*up)(void *arg);
	/* Lost; every queued statement has already failed. */
	void (*down)(void *arg);
	/* A notification; both strings are borrowed. */
	void (*notify)(void *arg, const char *channel, const char *payload);
	/* The notifications of one read were all handed over (optional). */
	void (*notify_done)(void *arg);
};

/* Outcome of a statement: res is the last result (check its status) and is
 * freed after the call; res is NULL when err is BD_EDB (never sent) or
 * BD_ELOST (sent, outcome unknown). */
typedef void pgconn_result_fn(void *arg, PGresult *res, int err);

/* Builds a deferred statement's parameters just before it is sent (the
 * statement is sealed then; also before it fails or is dropped unsent).
 * Returns the number of parameters; values stay valid until the result
 * callback. */
typedef int pgconn_build_fn(void *arg, const char *const **values);

/* Whether a queued statement is still wanted, asked with the statement's
 * arg just before it would be sent. false: it is not sent, and its result
 * callback gets (NULL, BD_ECANCELED) at once. Must not queue, fail or
 * otherwise change anything on this connection: a pure lookup. */
typedef bool pgconn_wanted_fn(void *arg);

/* Flags of pgconn_submit(). */
enum {
	/* A user request: counts toward the limit (pgconn_set_limit()) while
	 * queued or in flight; refused with BD_EBUSY when the limit is
	 * reached. Statements without it are never refused for the limit. */
	PGCONN_BOUNDED = 1 << 0,
};

/* Counters since pgconn_new(). */
struct pgconn_stats {
	unsigned queued;	/* statements queued or in flight now */
	unsigned bounded;	/* PGCONN_BOUNDED statements and charges */
	unsigned limit;		/* on bounded ones; 0: none */
	uint64_t refused;	/* PGCONN_BOUNDED statements and charges
				 * refused (BD_EBUSY) */
	uint64_t dropped;	/* statements dropped unsent (BD_ECANCELED) */
	uint64_t errors;	/* statements that failed (an SQL error) */
	uint64_t connects;	/* connections made (the first included) */
	uint64_t lost;		/* connections lost while up */
	uint64_t notifications;	/* NOTIFYs received */
};

/* The lws protocol the internal vhost must carry, named "db". */
int pgconn_lws_callback(struct lws *wsi, enum lws_callback_reasons reason,
			void *user, void *in, size_t len);

struct pgconn *pgconn_new(struct lws_context *ctx, struct lws_vhost *vh,
			  const char *conninfo, const char *appname,
			  const struct pgconn_cbs *cbs, void *arg);
/* Starts connecting (and reconnecting until pgconn_stop()). */
void pgconn_start(struct pgconn *pc);
/* No more reconnects; queued statements fail with BD_EDB. */
void pgconn_stop(struct pgconn *pc);
/* Call after lws_context_destroy(). Accepts NULL. */
void pgconn_free(struct pgconn *pc);
bool pgconn_is_up(const struct pgconn *pc);
/* Statements queued or in flight. */
unsigned pgconn_queued(const struct pgconn *pc);
/* At most limit PGCONN_BOUNDED statements queued or in flight (0: no
 * limit, the default). Those already queued stay. */
void pgconn_set_limit(struct pgconn *pc, unsigned limit);
void pgconn_get_stats(const struct pgconn *pc, struct pgconn_stats *out);

/* A user request that rides in a statement already queued (an item of a
 * batch): it counts toward the limit like a PGCONN_BOUNDED statement, and
 * is refused like one (BD_EBUSY, counted), until pgconn_discharge() gives
 * it back. 0 or BD_EBUSY. */
int pgconn_charge(struct pgconn *pc);
/* Gives back n charges; the statement carrying them completed or failed. */
void pgconn_discharge(struct pgconn *pc, unsigned n);

/* Queues sql with text parameters (copied). BD_EDB when not up. Never
 * refused for the limit, never dropped. */
int pgconn_query(struct pgconn *pc, const char *sql, int nparams,
		 const char *const *values, pgconn_result_fn *cb, void *arg);
/* Queues sql whose parameters build() makes at send time. */
int pgconn_query_deferred(struct pgconn *pc, const char *sql,
			  pgconn_build_fn *build, pgconn_result_fn *cb,
			  void *arg);
/* pgconn_query() with PGCONN_* flags and an optional wanted() check (NULL:
 * always sent). 0; BD_EDB when not up; BD_EBUSY when PGCONN_BOUNDED and
 * the limit is reached. On error nothing was queued and cb is not
 * called. */
int pgconn_submit(struct pgconn *pc, unsigned flags, pgconn_wanted_fn *wanted,
		  const char *sql, int nparams, const char *const *values,
		  pgconn_result_fn *cb, void *arg);
/* pgconn_query_deferred() with PGCONN_* flags (errors as above). */
int pgconn_submit_deferred(struct pgconn *pc, unsigned flags,
			   const char *sql, pgconn_build_fn *build,
			   pgconn_result_fn *cb, void *arg);

#endif
