/*
 * libpq on the lws loop (see doc/lws-4.1.md). lws sees a dup
 * of libpq's socket, adopted as a raw file so lws only reports readiness and
 * libpq does all I/O. The socket can change during a connect, so it is
 * re-adopted when its inode changes.
 */
#include "store/pgconn.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "log.h"
#include "util/xalloc.h"

#define CONNECT_TIMEOUT_US (10 * LWS_US_PER_SEC)
#define BACKOFF_MIN_US (250 * LWS_US_PER_MS)
#define BACKOFF_MAX_US (5 * LWS_US_PER_SEC)
#define NOTIFIES_PER_TURN 256

enum pg_state { PG_DOWN, PG_CONNECTING, PG_UP };

struct pgq {
	struct pgq *next;
	char *sql;			/* owned copy */
	pgconn_result_fn *cb;
	pgconn_build_fn *build;		/* deferred parameters, or NULL */
	pgconn_wanted_fn *wanted;	/* asked before sending, or NULL */
	bool bounded;			/* counts toward pc->limit */
	void *arg;
	int nparams;
	char **values;			/* owned copies (not deferred) */
};

struct pgconn {
	struct lws_context *ctx;
	struct lws_vhost *vh;		/* internal vhost with "db" */
	char *conninfo;
	char *appname;
	const struct pgconn_cbs *cbs;
	void *arg;
	PGconn *conn;
	struct lws *wsi;		/* adopted dup of PQsocket() */
	ino_t ino;			/* which socket wsi watches */
	enum pg_state state;
	bool stopped;			/* shutting down: no reconnect */
	bool want_write;		/* PQflush() left data / connect */
	lws_usec_t backoff;
	struct pgq *head, **tail;	/* head is in flight when sent */
	bool sent;			/* head was sent */
	PGresult *last;			/* newest result of the head */
	unsigned nqueued;
	unsigned nbounded;		/* of those, bounded ones */
	unsigned ncharged;		/* pgconn_charge()s not given back */
	unsigned limit;			/* on nbounded + ncharged; 0: none */
	uint64_t refused;		/* bounded statements, charges refused */
	uint64_t dropped;		/* dropped unsent: not wanted */
	uint64_t errors, connects, lost, notifications;
	lws_sorted_usec_list_t sul_retry;	/* reconnect / deadline */
	lws_sorted_usec_list_t sul_write;	/* deferred writable */
	lws_sorted_usec_list_t sul_drain;	/* more notifies to hand out */
};

static void pg_lost(struct pgconn *pc, const char *why);
static void pg_service(struct pgconn *pc);

bool pgconn_is_up(const struct pgconn *pc)
{
	return pc->state == PG_UP;
}

unsigned pgconn_queued(const struct pgconn *pc)
{
	return pc->nqueued;
}

void pgconn_set_limit(struct pgconn *pc, unsigned limit)
{
	pc->limit = limit;
}

void pgconn_get_stats(const struct pgconn *pc, struct pgconn_stats *out)
{
	out->queued = pc->nqueued;
	out->bounded = pc->nbounded + pc->ncharged;
	out->limit = pc->limit;
	out->refused = pc->refused;
	out->dropped = pc->dropped;
	out->errors = pc->errors;
	out->connects = pc->connects;
	out->lost = pc->lost;
	out->notifications = pc->notifications;
}

/* Whether one more user request would go over the limit (and count it as
 * refused when so). */
static bool over_limit(struct pgconn *pc)
{
	if (!pc->limit || pc->nbounded + pc->ncharged < pc->limit)
		return false;
	pc->refused++;
	return true;
}

int pgconn_charge(struct pgconn *pc)
{
	if (over_limit(pc))
		return BD_EBUSY;
	pc->ncharged++;
	return 0;
}

void pgconn_discharge(struct pgconn *pc, unsigned n)
{
	pc->ncharged -= n;
}

static void notice_receiver(void *arg, const PGresult *res)
{
	struct pgconn *pc = arg;

	log_debug("db_result", LOG_S("conn", pc->appname),
		  LOG_S("msg", PQresultErrorMessage(res)));
}

/* lws clears POLLOUT after a WRITEABLE callback returns, so a request made
 * inside one is lost: always ask from a fresh timer callback. */
static void sul_write_cb(lws_sorted_usec_list_t *sul)
{
	struct pgconn *pc = lws_container_of(sul, struct pgconn, sul_write);

	if (pc->wsi)
		lws_callback_on_writable(pc->wsi);
}

static void want_writable(struct pgconn *pc)
{
	pc->want_write = true;
	lws_sul_schedule(pc->ctx, 0, &pc->sul_write, sul_write_cb, 1);
}

static void drop_wsi(struct pgconn *pc)
{
	if (!pc->wsi)
		return;
	lws_set_opaque_user_data(pc->wsi, NULL);
	lws_set_timeout(pc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	pc->wsi = NULL;
}

/* Adopts libpq's current socket unless it already watches it. */
static int watch_socket(struct pgconn *pc)
{
	lws_adopt_desc_t ad;
	struct stat st;
	int fd = PQsocket(pc->conn);

	if (fd < 0 || fstat(fd, &st))
		return -1;
	if (pc->wsi && st.st_ino == pc->ino)
		return 0;
	drop_wsi(pc);
	memset(&ad, 0, sizeof(ad));
	ad.vh = pc->vh;
	ad.type = LWS_ADOPT_RAW_FILE_DESC;
	ad.fd.filefd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	ad.vh_prot_name = "db";
	ad.opaque = pc;
	if (ad.fd.filefd < 0)
		return -1;
	pc->wsi = lws_adopt_descriptor_vhost_via_info(&ad);
	if (!pc->wsi) {
		close(ad.fd.filefd);	/* not closed by lws on failure */
		return -1;
	}
	pc->ino = st.st_ino;
	return 0;
}

static void pgq_free(struct pgq *q)
{
	for (int i = 0; q->values && i < q->nparams; i++)
		free(q->values[i]);
	free(q->values);
	free(q->sql);
	free(q);
}

/* A deferred statement that will not be sent is sealed all the same. */
static void seal(struct pgq *q)
{
	const char *const *v;

	if (q->build)
		q->build(q->arg, &v);
}

/* Fails every queued statement: the head with `head_err` if it was sent. */
static void fail_all(struct pgconn *pc, int head_err)
{
	struct pgq *q = pc->head;
	bool sent = pc->sent;

	pc->head = NULL;
	pc->tail = &pc->head;
	pc->sent = false;
	pc->nqueued = 0;
	pc->nbounded = 0;
	PQclear(pc->last);
	pc->last = NULL;
	while (q) {
		struct pgq *next = q->next;

		if (!sent)
			seal(q);
		q->cb(q->arg, NULL, sent ? head_err : BD_EDB);
		sent = false;
		pgq_free(q);
		q = next;
	}
}

static void retry_cb(lws_sorted_usec_list_t *sul);

static void schedule_retry(struct pgconn *pc)
{
	if (pc->stopped)
		return;
	lws_sul_schedule(pc->ctx, 0, &pc->sul_retry, retry_cb, pc->backoff);
	log_info("db_reconnect", LOG_S("conn", pc->appname),
		 LOG_I("in_ms", pc->backoff / LWS_US_PER_MS));
	pc->backoff *= 2;
	if (pc->backoff > BACKOFF_MAX_US)
		pc->backoff = BACKOFF_MAX_US;
}

static void pg_lost(struct pgconn *pc, const char *why)
{
	bool was_up = pc->state == PG_UP;
	char line[256];
	size_t n = 0;

	if (pc->state == PG_DOWN)
		return;
	/* libpq's messages span lines: log one. */
	for (; *why && n < sizeof(line) - 1; why++)
		if (*why != '\n' || (why[1] && n))
			line[n++] = *why == '\n' || *why == '\t' ? ' ' : *why;
	line[n] = '\0';
	if (pc->stopped)
		log_debug("db_closed", LOG_S("conn", pc->appname));
	else
		log_warn(was_up ? "db_lost" : "db_connect_failed",
			 LOG_S("conn", pc->appname), LOG_S("reason", line));
	if (was_up && !pc->stopped)
		pc->lost++;
	pc->state = PG_DOWN;
	lws_sul_cancel(&pc->sul_retry);
	lws_sul_cancel(&pc->sul_write);
	lws_sul_cancel(&pc->sul_drain);
	drop_wsi(pc);
	PQfinish(pc->conn);
	pc->conn = NULL;
	pc->want_write = false;
	fail_all(pc, BD_ELOST);
	if (was_up && pc->cbs->down)
		pc->cbs->down(pc->arg);
	schedule_retry(pc);
}

static void connect_start(struct pgconn *pc)
{
	/* Short statements only: JIT compiling one (PostgreSQL does when
	 * the plan looks big, e.g. /rooms over many memberships) costs more
	 * than it saves. The conninfo comes after, so it may say otherwise. */
	const char *keys[] = { "options", "dbname", "application_name", NULL };
	const char *vals[] = { "-c jit=off", pc->conninfo, pc->appname, NULL };

	pc->conn = PQconnectStartParams(keys, vals, 1);
	pc->state = PG_CONNECTING;
	if (!pc->conn || PQstatus(pc->conn) == CONNECTION_BAD) {
		pg_lost(pc, pc->conn ? PQerrorMessage(pc->conn)
				     : "out of memory");
		return;
	}
	PQsetNoticeReceiver(pc->conn, notice_receiver, pc);
	/* PQconnectPoll() ignores connect_timeout: keep our own deadline. */
	lws_sul_schedule(pc->ctx, 0, &pc->sul_retry, retry_cb,
			 CONNECT_TIMEOUT_US);
	if (watch_socket(pc)) {
		pg_lost(pc, "cannot watch the socket");
		return;
	}
	want_writable(pc);
}

static void retry_cb(lws_sorted_usec_list_t *sul)
{
	struct pgconn *pc = lws_container_of(sul, struct pgconn, sul_retry);

	if (pc->state == PG_CONNECTING) {
		pg_lost(pc, "connect timed out");
		return;
	}
	if (pc->state == PG_DOWN && !pc->stopped)
		connect_start(pc);
}

static void connect_step(struct pgconn *pc)
{
	PostgresPollingStatusType st = PQconnectPoll(pc->conn);

	if (st == PGRES_POLLING_FAILED) {
		pg_lost(pc, PQerrorMessage(pc->conn));
		return;
	}
	if (watch_socket(pc)) {
		pg_lost(pc, "cannot watch the socket");
		return;
	}
	if (st == PGRES_POLLING_WRITING) {
		want_writable(pc);
		return;
	}
	pc->want_write = false;
	if (st != PGRES_POLLING_OK)
		return;			/* READING: POLLIN stays armed */
	lws_sul_cancel(&pc->sul_retry);
	if (PQsetnonblocking(pc->conn, 1)) {
		pg_lost(pc, "cannot make the connection non-blocking");
		return;
	}
	pc->state = PG_UP;
	pc->connects++;
	pc->backoff = BACKOFF_MIN_US;
	log_info("db_connected", LOG_S("conn", pc->appname),
		 LOG_I("backend_pid", PQbackendPID(pc->conn)));
	if (pc->cbs->up)
		pc->cbs->up(pc->arg);
	pg_service(pc);
}

static void send_head(struct pgconn *pc)
{
	struct pgq *q = pc->head;
	const char *const *values = (const char *const *)q->values;
	int n = q->nparams, rc;

	if (q->build) {
		n = q->build(q->arg, &values);
		q->nparams = 0;
	}
	rc = PQsendQueryParams(pc->conn, q->sql, n, NULL, values, NULL,
			       NULL, 0);
	pc->sent = true;
	if (!rc) {
		pg_lost(pc, PQerrorMessage(pc->conn));
		return;
	}
	rc = PQflush(pc->conn);
	if (rc < 0)
		pg_lost(pc, PQerrorMessage(pc->conn));
	else if (rc == 1)
		want_writable(pc);
}

/* The head statement finished: hand out its result, start the next. */
static void finish_head(struct pgconn *pc)
{
	struct pgq *q = pc->head;
	PGresult *res = pc->last;

	pc->head = q->next;
	if (!pc->head)
		pc->tail = &pc->head;
	pc->sent = false;
	pc->last = NULL;
	pc->nqueued--;
	pc->nbounded -= q->bounded;
	q->cb(q->arg, res, 0);
	PQclear(res);
	pgq_free(q);
}

/* Sends the head, after dropping the statements at the front that are no
 * longer wanted (their requester left while they waited). */
static void send_next(struct pgconn *pc)
{
	unsigned n = 0;

	while (pc->head && !pc->sent) {
		struct pgq *q = pc->head;

		if (!q->wanted || q->wanted(q->arg)) {
			send_head(pc);
			break;
		}
		pc->head = q->next;
		if (!pc->head)
			pc->tail = &pc->head;
		pc->nqueued--;
		pc->nbounded -= q->bounded;
		seal(q);
		q->cb(q->arg, NULL, BD_ECANCELED);
		pgq_free(q);
		n++;
	}
	if (!n)
		return;
	pc->dropped += n;
	log_debug("db_dropped", LOG_S("conn", pc->appname),
		  LOG_U("total", pc->dropped), LOG_U("statements", n));
}

static void drain_cb(lws_sorted_usec_list_t *sul)
{
	struct pgconn *pc = lws_container_of(sul, struct pgconn, sul_drain);

	pg_service(pc);
}

/* Reads what arrived, completes statements, hands out notifications and
 * sends the next statement. */
static void pg_service(struct pgconn *pc)
{
	PGnotify *n;
	int handed = 0;

	if (pc->state != PG_UP)
		return;
	if (!PQconsumeInput(pc->conn)) {
		pg_lost(pc, PQerrorMessage(pc->conn));
		return;
	}
	while (pc->head && pc->sent && !PQisBusy(pc->conn)) {
		PGresult *r = PQgetResult(pc->conn);

		if (!r) {
			finish_head(pc);
			if (pc->state != PG_UP)
				return;
			continue;
		}
		if (PQresultStatus(r) == PGRES_FATAL_ERROR)
			pc->errors++;
		PQclear(pc->last);
		pc->last = r;
	}
	while (handed < NOTIFIES_PER_TURN && (n = PQnotifies(pc->conn))) {
		if (pc->cbs->notify)
			pc->cbs->notify(pc->arg, n->relname, n->extra);
		PQfreemem(n);
		handed++;
		pc->notifications++;
		if (pc->state != PG_UP)
			return;
	}
	if (handed && pc->cbs->notify_done)
		pc->cbs->notify_done(pc->arg);
	if (pc->state != PG_UP)
		return;
	if (handed == NOTIFIES_PER_TURN)	/* libpq holds more: no POLLIN */
		lws_sul_schedule(pc->ctx, 0, &pc->sul_drain, drain_cb, 1);
	if (pc->head && !pc->sent)
		send_next(pc);
	if (pc->state == PG_UP && PQstatus(pc->conn) == CONNECTION_BAD)
		pg_lost(pc, "connection closed");
}

static void on_writable(struct pgconn *pc)
{
	int rc;

	if (pc->state == PG_CONNECTING) {
		connect_step(pc);
		return;
	}
	if (pc->state != PG_UP || !pc->want_write)
		return;
	pc->want_write = false;
	rc = PQflush(pc->conn);
	if (rc < 0)
		pg_lost(pc, PQerrorMessage(pc->conn));
	else if (rc == 1)
		want_writable(pc);
}

int pgconn_lws_callback(struct lws *wsi, enum lws_callback_reasons reason,
			void *user, void *in, size_t len)
{
	struct pgconn *pc = lws_get_opaque_user_data(wsi);

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (!pc || pc->wsi != wsi)
			return -1;	/* stale socket: close it */
		if (pc->state == PG_CONNECTING)
			connect_step(pc);
		else
			pg_service(pc);
		if (pc->state == PG_UP && pc->want_write)
			on_writable(pc);
		break;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		if (pc && pc->wsi == wsi)
			on_writable(pc);
		break;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (pc && pc->wsi == wsi) {
			pc->wsi = NULL;
			pg_lost(pc, "socket closed");
		}
		break;
	default:
		break;
	}
	return 0;
}

struct pgconn *pgconn_new(struct lws_context *ctx, struct lws_vhost *vh,
			  const char *conninfo, const char *appname,
			  const struct pgconn_cbs *cbs, void *arg)
{
	struct pgconn *pc = xcalloc(1, sizeof(*pc));

	pc->ctx = ctx;
	pc->vh = vh;
	pc->conninfo = xstrdup(conninfo);
	pc->appname = xstrdup(appname);
	pc->cbs = cbs;
	pc->arg = arg;
	pc->tail = &pc->head;
	pc->backoff = BACKOFF_MIN_US;
	return pc;
}

void pgconn_start(struct pgconn *pc)
{
	pc->stopped = false;
	if (pc->state == PG_DOWN)
		connect_start(pc);
}

void pgconn_stop(struct pgconn *pc)
{
	pc->stopped = true;
	lws_sul_cancel(&pc->sul_retry);
	lws_sul_cancel(&pc->sul_write);
	lws_sul_cancel(&pc->sul_drain);
}

void pgconn_free(struct pgconn *pc)
{
	if (!pc)
		return;
	pc->stopped = true;
	pc->wsi = NULL;		/* lws_context_destroy() closed it */
	fail_all(pc, BD_ELOST);
	PQfinish(pc->conn);
	free(pc->conninfo);
	free(pc->appname);
	free(pc);
}

static struct pgq *enqueue(struct pgconn *pc, unsigned flags,
			   const char *sql, pgconn_result_fn *cb, void *arg)
{
	struct pgq *q = xcalloc(1, sizeof(*q));

	q->sql = xstrdup(sql);
	q->cb = cb;
	q->arg = arg;
	q->bounded = flags & PGCONN_BOUNDED;
	*pc->tail = q;
	pc->tail = &q->next;
	pc->nqueued++;
	pc->nbounded += q->bounded;
	return q;
}

/* Queues a statement with flags and schedules the drain (never sent, nor
 * failed, synchronously: outcomes must not re-enter the caller; a deferred
 * one also gathers what arrives meanwhile). NULL with *err BD_EDB (down)
 * or BD_EBUSY (over the limit). */
static struct pgq *admit(struct pgconn *pc, unsigned flags, const char *sql,
			 pgconn_result_fn *cb, void *arg, int *err)
{
	struct pgq *q;

	*err = 0;
	if (pc->state != PG_UP || pc->stopped) {
		*err = BD_EDB;
		return NULL;
	}
	if ((flags & PGCONN_BOUNDED) && over_limit(pc)) {
		*err = BD_EBUSY;
		return NULL;
	}
	q = enqueue(pc, flags, sql, cb, arg);
	lws_sul_schedule(pc->ctx, 0, &pc->sul_drain, drain_cb, 1);
	return q;
}

int pgconn_submit(struct pgconn *pc, unsigned flags, pgconn_wanted_fn *wanted,
		  const char *sql, int nparams, const char *const *values,
		  pgconn_result_fn *cb, void *arg)
{
	int err;
	struct pgq *q = admit(pc, flags, sql, cb, arg, &err);

	if (!q)
		return err;
	q->wanted = wanted;
	q->nparams = nparams;
	q->values = xcalloc((size_t)nparams + 1, sizeof(char *));
	for (int i = 0; i < nparams; i++)
		q->values[i] = values[i] ? xstrdup(values[i]) : NULL;
	return 0;
}

int pgconn_query(struct pgconn *pc, const char *sql, int nparams,
		 const char *const *values, pgconn_result_fn *cb, void *arg)
{
	return pgconn_submit(pc, 0, NULL, sql, nparams, values, cb, arg);
}

int pgconn_submit_deferred(struct pgconn *pc, unsigned flags,
			   const char *sql, pgconn_build_fn *build,
			   pgconn_result_fn *cb, void *arg)
{
	int err;
	struct pgq *q = admit(pc, flags, sql, cb, arg, &err);

	if (!q)
		return err;
	q->build = build;
	return 0;
}

int pgconn_query_deferred(struct pgconn *pc, const char *sql,
			  pgconn_build_fn *build, pgconn_result_fn *cb,
			  void *arg)
{
	return pgconn_submit_deferred(pc, 0, sql, build, cb, arg);
}
