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

struct pgconn;

struct pgconn_cbs {
	/* Connected (again) and idle: statements can be queued. */
	void (*up)(void *arg);
	/* Lost; every queued statement has already failed. */
	void (*down)(void *arg);
	/* A notification; both strings are borrowed. */
	void (*notify)(void *arg, const char *channel, const char *payload);
};

/* Outcome of a statement: res is the last result (check its status) and is
 * freed after the call; res is NULL when err is BD_EDB (never sent) or
 * BD_ELOST (sent, outcome unknown). */
typedef void pgconn_result_fn(void *arg, PGresult *res, int err);

/* Builds a deferred statement's parameters just before it is sent (the
 * statement is sealed then). Returns the number of parameters; values
 * stay valid until the result callback. */
typedef int pgconn_build_fn(void *arg, const char *const **values);

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

/* Queues sql with text parameters (copied). BD_EDB when not up. */
int pgconn_query(struct pgconn *pc, const char *sql, int nparams,
		 const char *const *values, pgconn_result_fn *cb, void *arg);
/* Queues sql whose parameters build() makes at send time. */
int pgconn_query_deferred(struct pgconn *pc, const char *sql,
			  pgconn_build_fn *build, pgconn_result_fn *cb,
			  void *arg);

#endif
