/*
 * The API endpoints that take a JSON body (/api/connect, /api/command,
 * /api/message, /api/disconnect) and the outcomes of their requests. The
 * sessions they belong to are the core's (core/api_session.h): this file
 * reads the requests, parks them under their token until the core
 * answers, turns the outcomes into HTTP answers and runs the sessions'
 * timers.
 */
#include "net/http_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/api_session.h"
#include "core/wire.h"
#include "log.h"
#include "util/xalloc.h"

/* Outcomes */

void apisess_connected(void *arg, uint64_t req, int err, const char *token,
		       int64_t uid, const char *nick)
{
	struct http_state *hs = arg;
	struct http_conn *hc = http_claim(hs, req);

	if (!hc)
		return;		/* the client went away; the session expires */
	if (err == BD_ETAKEN) {
		char why[96];

		snprintf(why, sizeof(why), "nickname %s is taken", hc->nick);
		http_answer_error(hc, 409, why);
		return;
	}
	if (err) {
		http_answer_err(hc, err);
		return;
	}
	http_answer(hc, 200, wire_json_connected(token, uid, nick));
}

void apisess_replied(void *arg, uint64_t req, int err, const char *text)
{
	struct http_state *hs = arg;
	struct http_conn *hc = http_claim(hs, req);

	if (!hc)
		return;
	hc->sess_key = 0;
	if (err == BD_ENOENT && !text) {
		http_answer_error(hc, 404, "session ended while the command ran");
		return;
	}
	http_answer(hc, 200, wire_json_replied(!err, text ? text : ""));
}

void apisess_posted(void *arg, uint64_t req, int err, int64_t id,
		    int64_t seq)
{
	struct http_state *hs = arg;
	struct http_conn *hc = http_claim(hs, req);

	if (!hc)
		return;		/* the client went away */
	if (err == BD_ENOENT)	/* deleted while the message was sent */
		http_answer_error(hc, 404, "room no longer exists");
	else if (err)
		http_answer_err(hc, err);
	else
		http_answer(hc, 200, wire_json_posted(id, seq));
}

void apisess_ended(void *arg, uint64_t req, int err)
{
	struct http_state *hs = arg;
	struct http_conn *hc = http_claim(hs, req);

	if (!hc)
		return;
	if (err)
		http_answer_err(hc, err);
	else
		http_answer(hc, 200, wire_json_success());
}

static void post_message(struct http_state *hs, struct http_conn *hc,
			 uint64_t key)
{
	int err;

	http_park(hs, hc);
	err = chat_api_post(hs->chat, key, hc->token, hc->room, hc->text,
			    hc->text_len);
	if (!err)
		return;		/* apisess_posted() answers */
	http_unpark(hs, hc);
	if (err == BD_EPERM && !chat_room_known(hs->chat, hc->room))
		rooms_member_check(hs, hc);	/* 403 or 404 */
	else if (err == BD_ENOENT)
		http_answer_error(hc, 404, "unknown session");	/* copy gone */
	else
		http_answer_err(hc, err);
}

/* The request's session, resumed from the database as copy `key`: carry
 * on with what the request asked. */
void apisess_resumed(void *arg, uint64_t req, int err, uint64_t key)
{
	struct http_state *hs = arg;
	struct http_conn *hc = http_claim(hs, req);

	if (!hc)
		return;		/* the client went away */
	if (err) {
		http_answer_err(hc, err);
		return;
	}
	switch (hc->route) {
	case R_COMMAND:
		http_park(hs, hc);
		hc->sess_key = key;
		err = chat_api_command(hs->chat, key, hc->token, hc->text,
				       hc->text_len, hc->client);
		if (err) {
			http_unpark(hs, hc);
			hc->sess_key = 0;
			http_answer_err(hc, err);
		}
		break;
	case R_MESSAGE:
		post_message(hs, hc, key);
		break;
	case R_DISCONNECT:
		http_park(hs, hc);
		err = chat_api_end(hs->chat, key, hc->token);
		if (err) {
			http_unpark(hs, hc);
			http_answer_err(hc, err);
		}
		break;
	case R_STREAM_OPEN:
		hc->sess_key = key;
		net_want_write(hc->wsi, &hc->write_armed);
		break;
	default:
		http_answer_error(hc, 500, "internal error");
	}
}

/* The endpoints: their bodies decoded by net/apireq.h */

static void keep_text(struct http_conn *hc, const struct apireq *rq)
{
	free(hc->text);
	hc->text = xmemdup(rq->text, rq->text_len);
	hc->text_len = rq->text_len;
}

void apisess_connect(struct http_state *hs, struct http_conn *hc,
		     const struct apireq *rq)
{
	unsigned char rnd[16];
	char token[API_TOKEN_LEN + 1];
	int err;

	do {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			log_error("session_refused",
				  LOG_S("reason", "getrandom failed"));
			http_answer_error(hc, 500, "cannot create a session");
			return;
		}
		for (int i = 0; i < 16; i++)
			snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	} while (!chat_api_token_ok(token));
	snprintf(hc->nick, sizeof(hc->nick), "%s", rq->nick);
	http_park(hs, hc);
	err = chat_api_connect(hs->chat, token, rq->nick, hc->client,
			       hc->token);
	if (err) {
		http_unpark(hs, hc);
		http_answer_err(hc, err);
	}
}

void apisess_resume(struct http_state *hs, struct http_conn *hc,
		    const char *token)
{
	int err;

	http_park(hs, hc);
	err = chat_api_resume(hs->chat, token, hc->token);
	if (!err)
		return;		/* apisess_resumed() carries on */
	http_unpark(hs, hc);
	http_answer_err(hc, err);
}

void apisess_command(struct http_state *hs, struct http_conn *hc,
		     const struct apireq *rq)
{
	/* Known here without asking the database (which may be what the
	 * running command waits for). */
	if (chat_api_busy(hs->chat, rq->session_id)) {
		http_answer_err(hc, BD_EAGAIN);
		return;
	}
	keep_text(hc, rq);
	apisess_resume(hs, hc, rq->session_id);
}

void apisess_message(struct http_state *hs, struct http_conn *hc,
		     const struct apireq *rq)
{
	snprintf(hc->room, sizeof(hc->room), "%s", rq->room);
	keep_text(hc, rq);
	apisess_resume(hs, hc, rq->session_id);
}

void apisess_disconnect(struct http_state *hs, struct http_conn *hc,
			const struct apireq *rq)
{
	apisess_resume(hs, hc, rq->session_id);
}

/* Timers: the sessions' sweep, tick and deferred work */

static void sweep_cb(lws_sorted_usec_list_t *sul)
{
	struct http_state *hs = lws_container_of(sul, struct http_state,
						 sul_sweep);

	chat_api_sweep(hs->chat);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_sweep, sweep_cb,
			 hs->stopping ? 50 * LWS_US_PER_MS : LWS_US_PER_SEC);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
	struct http_state *hs = lws_container_of(sul, struct http_state,
						 sul_tick);

	chat_api_tick(hs->chat);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_tick, tick_cb,
			 hs->idle_timeout / 3);
}

static void run_cb(lws_sorted_usec_list_t *sul)
{
	struct http_state *hs = lws_container_of(sul, struct http_state,
						 sul_run);

	chat_api_run(hs->chat);
}

void apisess_defer(void *arg)
{
	struct http_state *hs = arg;

	lws_sul_schedule(hs->ctx, 0, &hs->sul_run, run_cb, 1);
}

void apisess_start(struct http_state *hs)
{
	chat_api_start(hs->chat, hs->idle_s);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_sweep, sweep_cb, LWS_US_PER_SEC);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_tick, tick_cb,
			 hs->idle_timeout / 3);
}

void apisess_stop(struct http_state *hs)
{
	chat_api_stop(hs->chat);
	lws_sul_schedule(hs->ctx, 0, &hs->sul_sweep, sweep_cb, 1);
}

void apisess_timers_cancel(struct http_state *hs)
{
	lws_sul_cancel(&hs->sul_sweep);
	lws_sul_cancel(&hs->sul_tick);
	lws_sul_cancel(&hs->sul_run);
}
