/*
 * loadgen: SSE subscribers (sse.h). Setup requests share the socket of the
 * stream, as a browser's EventSource does after its fetches; the end of the
 * run uses blocking connections of its own (http.c).
 */
#include "sse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "chunk.h"
#include "conn.h"
#include "http.h"
#include "nchan.h"
#include "util.h"

#define SSE_CONTENT_MAX 96		/* longest bench payload */
#define SSE_TEARDOWN_S 20ull		/* all POST /api/disconnect */

/* HTTP/1.1 request on the subscriber's keep-alive connection. */
static void sse_request(struct lg *lg, struct lg_conn *c, const char *method,
			const char *target, const char *json)
{
	char req[512];
	int n = http_format(req, sizeof(req), method, target,
			    lg->host_hdr[c->inst], json, true);

	if (n < 0) {
		conn_close(lg, c, LG_FAILED, "HTTP request too long");
		return;
	}
	conn_write(lg, c, req, (size_t)n);
}

static void sse_subscribe(struct lg *lg, struct lg_conn *c);

void sse_connect(struct lg *lg, struct lg_conn *c)
{
	char body[96];

	if (c->back && c->sid[0]) {
		/* --reconnect: the session lives on; only the stream. */
		sse_subscribe(lg, c);
		return;
	}
	snprintf(body, sizeof(body), "{\"nickname\":\"sse%" PRIu32 "%s\"}",
		 (uint32_t)c->idx - lg->ntcp, lg->nick_tag);
	lg_set_state(lg, c, LG_NICKING);
	sse_request(lg, c, "POST", "/api/connect", body);
}

/* POST /api/command {"session_id":..., "command":"/join ROOM"}. */
static void sse_join(struct lg *lg, struct lg_conn *c)
{
	char body[160];

	snprintf(body, sizeof(body),
		 "{\"session_id\":\"%s\",\"command\":\"/join %s\"}", c->sid,
		 lg_room_of(lg, c)->name);
	lg_set_state(lg, c, LG_JOINING);
	sse_request(lg, c, "POST", "/api/command", body);
}

/*
 * GET /api/messages/ROOM?session_id=...: the stream, on the same socket;
 * coming back (--reconnect), with Last-Event-ID: the last id it saw, as a
 * browser's EventSource does.
 */
static void sse_subscribe(struct lg *lg, struct lg_conn *c)
{
	char req[512];
	int n;

	if (c->back && c->last_id[0])
		n = snprintf(req, sizeof(req),
			     "GET /api/messages/%s?session_id=%s HTTP/1.1\r\n"
			     "Host: %s\r\nAccept: text/event-stream\r\n"
			     "Last-Event-ID: %s\r\n\r\n",
			     lg_room_of(lg, c)->name, c->sid,
			     lg->host_hdr[c->inst], c->last_id);
	else
		n = snprintf(req, sizeof(req),
			     "GET /api/messages/%s?session_id=%s HTTP/1.1\r\n"
			     "Host: %s\r\nAccept: text/event-stream\r\n\r\n",
			     lg_room_of(lg, c)->name, c->sid,
			     lg->host_hdr[c->inst]);
	lg_set_state(lg, c, LG_SUBSCRIBING);
	conn_write(lg, c, req, (size_t)n);
}

/* The answer to a setup request (body: NUL-ended). */
static void sse_answer(struct lg *lg, struct lg_conn *c, int status,
		       const char *body)
{
	char why[256];

	if (status != 200 || (c->state == LG_JOINING &&
			      !strstr(body, "\"success\":true"))) {
		lg->errors++;
		snprintf(why, sizeof(why), "HTTP %d: %.200s", status, body);
		conn_close(lg, c, LG_FAILED, why);
		return;
	}
	switch (c->state) {
	case LG_NICKING:
		if (!http_json_sid(body, c->sid)) {
			snprintf(why, sizeof(why), "no session_id in %.200s",
				 body);
			conn_close(lg, c, LG_FAILED, why);
			return;
		}
		sse_join(lg, c);	/* the room exists: see conn.c */
		return;
	case LG_JOINING:
		sse_subscribe(lg, c);
		return;
	default:
		return;
	}
}

bool sse_http_response(struct lg *lg, struct lg_conn *c)
{
	char *hend, *line, *eol, body[LG_RBUF_SIZE];
	size_t hlen, clen = 0, total;
	bool has_len = false, chunked = false;
	int status;

	c->rbuf[c->rlen] = '\0';
	hend = strstr(c->rbuf, "\r\n\r\n");
	if (!hend) {
		if (c->rlen >= sizeof(c->rbuf) - 1)
			conn_lose(lg, c, "HTTP response headers too long");
		return false;
	}
	hlen = (size_t)(hend + 4 - c->rbuf);
	if (strncmp(c->rbuf, "HTTP/1.1 ", 9) &&
	    strncmp(c->rbuf, "HTTP/1.0 ", 9)) {
		conn_lose(lg, c, "not an HTTP response");
		return false;
	}
	status = atoi(c->rbuf + 9);
	for (line = strstr(c->rbuf, "\r\n") + 2; line < hend; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (!strncasecmp(line, "content-length:", 15)) {
			clen = strtoul(line + 15, NULL, 10);
			has_len = true;
		} else if (!strncasecmp(line, "transfer-encoding:", 18)) {
			chunked = true;
		}
	}
	if (c->state == LG_SUBSCRIBING && status == 200) {
		c->rlen -= hlen;
		memmove(c->rbuf, c->rbuf + hlen, c->rlen);
		c->ev = LG_EV_MESSAGE;
		if (chunked) {
			/* Through a proxy: what came with the head, too. */
			long d;

			c->chunked = true;
			c->ch = LG_CH_SIZE;
			c->chunk_left = 0;
			d = chunk_decode(c, c->rbuf, c->rlen);
			if (d < 0) {
				conn_lose(lg, c, "malformed chunked body");
				return false;
			}
			c->rlen = (size_t)d;
		}
		lg_set_state(lg, c, LG_JOINED);
		return true;
	}
	if (chunked) {
		conn_lose(lg, c, "chunked answer to a setup request");
		return false;
	}
	if (!has_len) {
		conn_lose(lg, c, "HTTP response without Content-Length");
		return false;
	}
	total = hlen + clen;
	if (total > sizeof(c->rbuf) - 1) {
		conn_lose(lg, c, "HTTP response too long");
		return false;
	}
	if (c->rlen < total)
		return false;
	memcpy(body, c->rbuf + hlen, clen);
	body[clen] = '\0';
	c->rlen -= total;
	memmove(c->rbuf, c->rbuf + total, c->rlen);
	sse_answer(lg, c, status, body);
	return c->fd >= 0;
}

/*
 * The data line of an SSE "message" event: a JSON object whose "content" is
 * the payload. The stream starts with the room's history: messages sent
 * before this run started (t_ns < t0) are skipped, not counted.
 */
static void sse_message(struct lg *lg, struct lg_conn *c, const char *json)
{
	static const char key[] = "\"content\":\"";
	const char *p = strstr(json, key), *end;
	char body[SSE_CONTENT_MAX];
	uint64_t v[3];

	if (!strstr(json, lg_room_of(lg, c)->sse)) {
		lg->k[LG_SSE].bogus++;	/* another room's message */
		lg_inst(lg, c)->bogus++;
		return;
	}
	if (!p)
		return;
	p += sizeof(key) - 1;
	end = strchr(p, '"');
	if (!end || (size_t)(end - p) >= sizeof(body) ||
	    memchr(p, '\\', (size_t)(end - p)))
		return;		/* escapes: somebody else's chatter */
	memcpy(body, p, (size_t)(end - p));
	body[end - p] = '\0';
	if (!lg_parse_payload(body, v))
		return;
	if (!lg->running || v[2] < lg->t0) {
		lg->k[LG_SSE].history_skipped++;
		lg_inst(lg, c)->history_skipped++;
		return;
	}
	lg_deliver(lg, c, v);
}

void sse_line(struct lg *lg, struct lg_conn *c, char *line, size_t len)
{
	const char *v;

	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len == 0) {
		c->ev = LG_EV_MESSAGE;	/* end of event: back to default */
		return;
	}
	if (line[0] == ':') {
		lg->k[LG_SSE].heartbeats++;	/* comment: heartbeat */
		return;
	}
	if (!strncmp(line, "event:", 6)) {
		v = line + 6 + (line[6] == ' ');
		if (!strcmp(v, "message"))
			c->ev = LG_EV_MESSAGE;
		else if (!strcmp(v, "system"))
			c->ev = LG_EV_SYSTEM;
		else if (!strcmp(v, "reset"))
			c->ev = LG_EV_RESET;
		else
			c->ev = LG_EV_OTHER;
		return;
	}
	if (!strncmp(line, "id:", 3)) {
		v = line + 3 + (line[3] == ' ');
		snprintf(c->last_id, sizeof(c->last_id), "%s", v);
		return;
	}
	if (strncmp(line, "data:", 5))
		return;			/* retry: */
	v = line + 5 + (line[5] == ' ');
	if (c->proto == LG_P_NCHAN_SUB) {
		nchan_data(lg, c, v);
		return;
	}
	if (c->ev == LG_EV_MESSAGE) {
		sse_message(lg, c, v);
	} else if (c->ev == LG_EV_SYSTEM) {
		lg->k[LG_SSE].system_events++;
	} else if (c->ev == LG_EV_RESET) {
		lg->k[LG_SSE].resets++;
		lg_show(lg, c, "stream reset", v);
	}
}

void sse_teardown(struct lg *lg)
{
	uint64_t t = util_now_ns(), deadline = t + SSE_TEARDOWN_S * UTIL_NSEC;
	char req[256], body[256], json[96];
	int fds[ARGS_INST_MAX], status;
	uint32_t i;

	for (i = 0; i < ARGS_INST_MAX; i++)
		fds[i] = -1;
	for (i = lg->ntcp; i < lg->nconn && util_now_ns() < deadline; i++) {
		struct lg_conn *c = &lg->conns[i];
		int *fd = &fds[c->inst];

		if (!c->sid[0])
			continue;
		lg->teardown_tried++;
		if (*fd < 0)
			*fd = http_open(&lg->o.http_addr[c->inst]);
		if (*fd < 0)
			continue;
		snprintf(json, sizeof(json), "{\"session_id\":\"%s\"}", c->sid);
		http_format(req, sizeof(req), "POST", "/api/disconnect",
			    lg->host_hdr[c->inst], json, false);
		status = http_call(*fd, req, body, sizeof(body));
		if (status == 200) {
			lg->teardown_done++;
			continue;
		}
		if (status < 0) {
			close(*fd);
			*fd = -1;
		}
		if (lg_may_show(lg))
			fprintf(stderr, "loadgen: sse conn %" PRIu32
				": disconnect: HTTP %d %s\n", i, status, body);
	}
	for (i = 0; i < ARGS_INST_MAX; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	lg->teardown_s = util_secs(util_now_ns() - t);
}
