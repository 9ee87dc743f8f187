/*
 * loadgen: nchan's publisher and subscriber endpoints (nchan.h), as
 * configured in tests/bench/peers/nchan.conf.
 */
#include "nchan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "sender.h"

void nchan_subscribe(struct lg *lg, struct lg_conn *c)
{
	char req[256];
	int n = snprintf(req, sizeof(req),
			 "GET /sub/%s HTTP/1.1\r\nHost: %s\r\n"
			 "Accept: text/event-stream\r\n\r\n",
			 lg_room_of(lg, c)->name, lg->host_hdr[c->inst]);

	lg_set_state(lg, c, LG_SUBSCRIBING);
	conn_write(lg, c, req, (size_t)n);
}

void nchan_data(struct lg *lg, struct lg_conn *c, const char *data)
{
	uint64_t v[3];

	if (!lg_parse_payload(data, v))
		return;
	if (!lg->running || v[2] < lg->t0) {
		/* Kept by the channel from an earlier run. */
		lg->k[LG_SSE].history_skipped++;
		lg_inst(lg, c)->history_skipped++;
		return;
	}
	lg_deliver(lg, c, v);
}

void nchan_publish(struct lg *lg, struct lg_conn *c, const char *payload,
		   size_t len)
{
	char req[320];
	int n = snprintf(req, sizeof(req),
			 "POST /pub/%s HTTP/1.1\r\nHost: %s\r\n"
			 "Content-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n\r\n%.*s",
			 lg_room_of(lg, c)->name, lg->host_hdr[c->inst], len,
			 (int)len, payload);

	c->http_pending++;
	conn_write(lg, c, req, (size_t)n);
}

/* One answer at the start of c->rbuf: its length, 0 when incomplete. */
static size_t nchan_answer(struct lg *lg, struct lg_conn *c)
{
	char *hend, *line, *eol;
	size_t hlen, clen = 0;
	bool has_len = false;
	int status;

	c->rbuf[c->rlen] = '\0';
	hend = strstr(c->rbuf, "\r\n\r\n");
	if (!hend)
		return 0;
	if (strncmp(c->rbuf, "HTTP/1.1 ", 9)) {
		conn_lose(lg, c, "not an HTTP/1.1 answer");
		return 0;
	}
	status = atoi(c->rbuf + 9);
	hlen = (size_t)(hend + 4 - c->rbuf);
	for (line = strstr(c->rbuf, "\r\n") + 2; line < hend; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (!strncasecmp(line, "content-length:", 15)) {
			clen = strtoul(line + 15, NULL, 10);
			has_len = true;
		}
	}
	if (!has_len || hlen + clen > sizeof(c->rbuf) - 1) {
		conn_lose(lg, c, "publish answer without a usable length");
		return 0;
	}
	if (c->rlen < hlen + clen)
		return 0;
	if (c->http_pending)
		c->http_pending--;
	if (status < 200 || status > 299) {
		char why[64];

		lg->errors++;
		c->refused++;
		lg->refused++;
		snprintf(why, sizeof(why), "publish: HTTP %d", status);
		lg_show(lg, c, "server says", why);
		sender_pump(lg, c);
	}
	return hlen + clen;
}

void nchan_pub_input(struct lg *lg, struct lg_conn *c)
{
	size_t used;

	while (c->fd >= 0 && c->rlen > 0 && (used = nchan_answer(lg, c))) {
		c->rlen -= used;
		memmove(c->rbuf, c->rbuf + used, c->rlen);
	}
	if (c->fd >= 0 && c->rlen >= sizeof(c->rbuf) - 1)
		conn_lose(lg, c, "publish answer too long");
}
