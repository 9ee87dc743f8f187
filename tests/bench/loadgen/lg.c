/*
 * loadgen: the run's state (lg.h): allocation and placement of the
 * connections and rooms, state bookkeeping, and the delivery checks every
 * receiver kind goes through. No sockets here.
 */
#include "lg.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sender.h"
#include "util.h"

#define LG_DELIVERIES_MAX (64ull << 20)	/* tracking memory bound */

const char *const lg_kind_name[LG_KINDS] = { "tcp", "sse" };

static const char *const lg_state_name[] = {
	[LG_IDLE] = "idle", [LG_CONNECTING] = "connecting",
	[LG_WELCOME] = "welcome", [LG_NICKING] = "nick/connect",
	[LG_READY] = "ready", [LG_CREATING] = "create",
	[LG_JOINING] = "join", [LG_SUBSCRIBING] = "subscribe",
	[LG_JOINED] = "joined", [LG_FAILED] = "failed",
	[LG_CLOSED] = "closed",
};

const char *lg_state_str(enum lg_state s)
{
	return lg_state_name[s];
}

static bool lg_state_is_busy(enum lg_state s)
{
	return s == LG_CONNECTING || s == LG_WELCOME || s == LG_NICKING ||
	       s == LG_CREATING || s == LG_JOINING || s == LG_SUBSCRIBING;
}

struct lg_kstats *lg_kind(struct lg *lg, const struct lg_conn *c)
{
	return &lg->k[c->sse ? LG_SSE : LG_TCP];
}

struct lg_kstats *lg_inst(struct lg *lg, const struct lg_conn *c)
{
	return &lg->inst[c->inst];
}

struct lg_room *lg_room_of(struct lg *lg, const struct lg_conn *c)
{
	return &lg->rooms[c->room];
}

uint32_t lg_ready_count(const struct lg *lg)
{
	return lg->rq_len;
}

struct lg_conn *lg_ready_pop(struct lg *lg)
{
	uint32_t i = lg->ready_q[lg->rq_head];

	lg->rq_head = (lg->rq_head + 1) % lg->nconn;
	lg->rq_len--;
	return &lg->conns[i];
}

void lg_ready_push(struct lg *lg, struct lg_conn *c)
{
	/* At most once each: only LG_READY connections are in it. */
	lg->ready_q[(lg->rq_head + lg->rq_len++) % lg->nconn] =
		(uint32_t)c->idx;
}

void lg_set_state(struct lg *lg, struct lg_conn *c, enum lg_state s)
{
	if (s == LG_READY && c->state != LG_READY && !lg->running)
		lg_ready_push(lg, c);
	if (lg_state_is_busy(c->state))
		lg->busy--;
	if (lg_state_is_busy(s))
		lg->busy++;
	if (s == LG_JOINED && c->back) {
		/* --reconnect: back in its room. */
		uint64_t now = util_now_ns();

		c->back = false;
		c->reconnects++;
		c->t_back = now;
		c->tries = 0;
		lg->came_back[c->sse ? LG_SSE : LG_TCP]++;
		if (--lg->away == 0)
			lg->t_all_back = now;
	}
	if (s == LG_JOINED) {
		lg->joined++;
		lg_kind(lg, c)->joined++;
		lg_inst(lg, c)->joined++;
	} else if (c->state == LG_JOINED) {
		lg->joined--;
		lg_kind(lg, c)->joined--;
		lg_inst(lg, c)->joined--;
	}
	c->state = s;
}

bool lg_may_show(struct lg *lg)
{
	if (lg->shown >= LG_SHOWN_MAX)
		return false;
	lg->shown++;
	return true;
}

void lg_show(struct lg *lg, const struct lg_conn *c, const char *what,
	     const char *text)
{
	if (!lg_may_show(lg))
		return;
	fprintf(stderr, "loadgen: %s conn %d (instance %d): %s: %s\n",
		lg_kind_name[c->sse ? LG_SSE : LG_TCP], c->idx, c->inst + 1,
		what, text);
}

bool lg_parse_payload(const char *p, uint64_t *v)
{
	int i;

	if (p[0] != 'b' || p[1] != ' ')
		return false;
	p += 2;
	for (i = 0; i < 3; i++) {
		uint64_t x = 0;
		const char *start = p;

		while (*p >= '0' && *p <= '9' && p - start < 20)
			x = x * 10 + (uint64_t)(*p++ - '0');
		if (p == start || *p != (i < 2 ? ' ' : '\0'))
			return false;
		v[i] = x;
		p++;
	}
	return true;
}

bool lg_is_sender(const struct lg *lg, const struct lg_conn *c)
{
	return (uint32_t)c->idx < lg->o.senders;
}

static bool lg_bit_test_set(uint8_t *map, uint64_t bit)
{
	uint8_t mask = (uint8_t)(1u << (bit & 7));
	bool was = map[bit >> 3] & mask;

	map[bit >> 3] |= mask;
	return was;
}

/* Records one unique delivery's latencies in k (kind or instance). */
static void lg_record(struct lg_kstats *k, const struct lg_conn *c,
		      uint64_t now, uint64_t t_sent)
{
	if (k->deliveries < k->cap) {
		k->lat_us[k->deliveries] = util_us(t_sent, now);
		if (c->rx_ns)
			k->rx_lat_us[k->rx_lats++] = util_us(t_sent, c->rx_ns);
	}
	k->deliveries++;
}

/* Whether payload v can be c's: a message of this run into c's room. */
static bool lg_payload_ok(struct lg *lg, struct lg_conn *c, const uint64_t *v)
{
	if (v[0] < lg->o.senders && v[1] < lg->o.messages && lg->running &&
	    lg->conns[v[0]].room == c->room)
		return true;
	lg_kind(lg, c)->bogus++;
	lg_inst(lg, c)->bogus++;
	return false;
}

/*
 * Sender s's message was seen by c: its echo, or (senders without one)
 * its room's witness: the sender may send more.
 */
static void lg_confirm(struct lg *lg, struct lg_conn *c, uint32_t s)
{
	struct lg_conn *sc = &lg->conns[s];
	const struct lg_room *r = lg_room_of(lg, sc);
	int32_t w;

	if (sc->proto == LG_P_LINE) {
		if (c != sc)
			return;
	} else {
		w = r->witness[0] == (int32_t)s ? r->witness[1] : r->witness[0];
		if (w != c->idx)
			return;
	}
	sc->confirmed++;
	sender_pump(lg, sc);
}

/* A message sent before c came back, now delivered: catching up. */
static void lg_note_catch_up(struct lg *lg, const struct lg_conn *c,
			     uint64_t t_sent, uint64_t now)
{
	if (c->reconnects && (c->back || t_sent < c->t_back))
		lg->t_caught_up = now;
}

void lg_deliver_history(struct lg *lg, struct lg_conn *c, const uint64_t *v)
{
	struct lg_kstats *k = lg_kind(lg, c), *ki = lg_inst(lg, c);
	uint64_t now, bit;

	if (v[2] < lg->t0) {
		k->history_skipped++;
		ki->history_skipped++;
		return;
	}
	if (!lg_payload_ok(lg, c, v))
		return;
	bit = ((uint64_t)c->idx * lg->o.senders + v[0]) * lg->o.messages +
	      v[1];
	if (lg_bit_test_set(lg->seen, bit)) {
		lg->history_seen++;
		return;
	}
	lg->history_new++;
	now = util_now_ns();
	lg_record(k, c, now, v[2]);
	lg_record(ki, c, now, v[2]);
	lg->deliveries++;
	lg->deliveries_rx += !lg_is_sender(lg, c);
	lg->t_last_delivery = now;
	lg->t_progress = now;
	lg_note_catch_up(lg, c, v[2], now);
}

void lg_deliver(struct lg *lg, struct lg_conn *c, const uint64_t *v)
{
	struct lg_kstats *k = lg_kind(lg, c), *ki = lg_inst(lg, c);
	uint64_t now, cs, bit;
	uint32_t s, n;

	if (!lg_payload_ok(lg, c, v))
		return;
	s = (uint32_t)v[0];
	n = (uint32_t)v[1];
	cs = (uint64_t)c->idx * lg->o.senders + s;
	bit = cs * lg->o.messages + n;
	if (lg_bit_test_set(lg->seen, bit)) {
		k->duplicated++;
		ki->duplicated++;
		return;
	}
	now = util_now_ns();
	if (n + 1 < lg->next_n[cs]) {
		k->reordered++;
		ki->reordered++;
	} else {
		lg->next_n[cs] = n + 1;
	}
	lg_note_catch_up(lg, c, v[2], now);
	lg_record(k, c, now, v[2]);
	lg_record(ki, c, now, v[2]);
	lg->deliveries++;
	lg->deliveries_rx += !lg_is_sender(lg, c);
	lg->t_last_delivery = now;
	lg->t_progress = now;
	if (!lg_bit_test_set(lg->committed_map,
			     (uint64_t)s * lg->o.messages + n)) {
		/* Commit + NOTIFY path; the rest of the latency is fan-out. */
		lg->first_at_ms[lg->committed] =
			v[2] > lg->t0 ? (uint32_t)((v[2] - lg->t0) / 1000000) :
					0;
		lg->first_lat_us[lg->committed++] =
			util_us(v[2], c->rx_ns ? c->rx_ns : now);
	}
	lg_confirm(lg, c, s);
}

/* Room and instance of connection c: see lg_init() in lg.h. */
static void lg_place(struct lg *lg, struct lg_conn *c)
{
	const struct args *o = &lg->o;
	uint32_t i = (uint32_t)c->idx, j;

	if (c->sse)
		c->proto = o->sse_proto == ARGS_NCHAN ? LG_P_NCHAN_SUB :
							LG_P_BD_SSE;
	else if (o->proto == ARGS_IRC)
		c->proto = LG_P_IRC;
	else if (o->proto == ARGS_NCHAN)
		c->proto = LG_P_NCHAN_PUB;
	else
		c->proto = LG_P_LINE;
	if (i < o->senders) {
		c->room = i % o->rooms;
		c->inst = o->sender_inst >= 0 ? o->sender_inst :
						(int)(i % o->ninst);
		return;
	}
	j = c->sse ? i - lg->ntcp : i - o->senders;
	c->room = j % o->rooms;
	c->inst = (int)((j / o->rooms) % (c->sse ? o->nhttp : o->ninst));
}

static void lg_init_rooms(struct lg *lg)
{
	uint32_t i;

	lg->rooms = util_calloc(lg->o.rooms, sizeof(*lg->rooms));
	for (i = 0; i < lg->o.rooms; i++) {
		struct lg_room *r = &lg->rooms[i];

		if (lg->o.rooms == 1)
			snprintf(r->name, sizeof(r->name), "%s", lg->o.room);
		else
			snprintf(r->name, sizeof(r->name), "%s_%" PRIu32,
				 lg->o.room, i);
		snprintf(r->prefix, sizeof(r->prefix), "[%s] ", r->name);
		r->prefix_len = strlen(r->prefix);
		snprintf(r->joined, sizeof(r->joined),
			 "[system] You joined %s (", r->name);
		r->joined_len = strlen(r->joined);
		snprintf(r->exists, sizeof(r->exists),
			 "[system] error: room %s already exists", r->name);
		snprintf(r->sse, sizeof(r->sse), "\"room\":\"%s\"", r->name);
		snprintf(r->irc, sizeof(r->irc), "#%s", r->name);
	}
	for (i = 0; i < lg->o.senders; i++)
		lg->rooms[i % lg->o.rooms].senders++;
	for (i = 0; i < lg->o.rooms; i++) {
		lg->rooms[i].creator = UINT32_MAX;
		lg->rooms[i].witness[0] = lg->rooms[i].witness[1] = -1;
		/* nchan makes a channel on first use: every room exists. */
		if (lg->o.proto == ARGS_NCHAN) {
			lg->rooms[i].ready = true;
			lg->rooms_ready++;
		}
	}
}

void lg_init(struct lg *lg, int argc, char **argv)
{
	uint64_t tracked;
	uint32_t i;

	memset(lg, 0, sizeof(*lg));
	lg->epfd = lg->tfd = -1;
	args_parse(&lg->o, argc, argv);
	lg->ntcp = lg->o.clients + lg->o.senders;
	lg->nconn = lg->ntcp + lg->o.sse_clients;
	lg->k[LG_TCP].planned = lg->ntcp;
	lg->k[LG_SSE].planned = lg->o.sse_clients;
	tracked = (uint64_t)lg->nconn * lg->o.senders * lg->o.messages;
	if (tracked > LG_DELIVERIES_MAX * 8) {
		fprintf(stderr, "loadgen: %" PRIu64 " deliveries: too many\n",
			tracked);
		exit(2);
	}
	for (i = 0; i < lg->o.nhttp; i++)
		snprintf(lg->host_hdr[i], sizeof(lg->host_hdr[i]), "%s:%u",
			 inet_ntoa(lg->o.http_addr[i].sin_addr),
			 ntohs(lg->o.http_addr[i].sin_port));
	snprintf(lg->nick_tag, sizeof(lg->nick_tag), "_%ld", (long)getpid());
	lg->irc_nick = lg->o.nick_prefix ? lg->o.nick_prefix : "lg";
	if (lg->o.api_requests)
		return;		/* API mode: no TCP clients, no event loop. */
	lg_init_rooms(lg);

	lg->conns = util_calloc(lg->nconn, sizeof(*lg->conns));
	for (i = 0; i < lg->nconn; i++) {
		struct lg_conn *c = &lg->conns[i];
		/* Most deliveries it can see: its room's senders' messages. */
		uint64_t due;

		c->fd = -1;
		c->idx = (int)i;
		c->sse = i >= lg->ntcp;
		lg_place(lg, c);
		if (lg_room_of(lg, c)->creator == UINT32_MAX)
			lg_room_of(lg, c)->creator = i;
		due = (uint64_t)lg_room_of(lg, c)->senders * lg->o.messages;
		lg_kind(lg, c)->cap += due;
		lg_inst(lg, c)->planned++;
		lg_inst(lg, c)->cap += due;
	}
	for (i = 0; i < lg->o.rooms; i++) {
		const struct lg_room *r = &lg->rooms[i];

		if (r->creator == UINT32_MAX) {
			fprintf(stderr, "loadgen: --rooms: more rooms than "
				"connections\n");
			exit(2);
		}
		if (lg->conns[r->creator].proto == LG_P_BD_SSE) {
			fprintf(stderr, "loadgen: room %s has no TCP "
				"connection to create it (--clients)\n",
				r->name);
			exit(2);
		}
	}
	lg->seen = util_calloc(tracked / 8 + 1, 1);
	lg->next_n = util_calloc((size_t)lg->nconn * lg->o.senders,
				 sizeof(*lg->next_n));
	lg->committed_map = util_calloc(
		(uint64_t)lg->o.senders * lg->o.messages / 8 + 1, 1);
	lg->first_lat_us = util_calloc((size_t)lg->o.senders * lg->o.messages,
				       sizeof(*lg->first_lat_us));
	lg->first_at_ms = util_calloc((size_t)lg->o.senders * lg->o.messages,
				      sizeof(*lg->first_at_ms));
	/* calloc leaves untouched pages unmapped: pay only for what arrives. */
	for (i = 0; i < LG_KINDS + lg->o.ninst; i++) {
		struct lg_kstats *k = i < LG_KINDS ? &lg->k[i] :
						     &lg->inst[i - LG_KINDS];

		if (k->cap > LG_DELIVERIES_MAX)
			k->cap = LG_DELIVERIES_MAX;
		k->lat_us = util_calloc(k->cap, sizeof(*k->lat_us));
		k->rx_lat_us = util_calloc(k->cap, sizeof(*k->rx_lat_us));
	}
	lg->retry_q = util_calloc(lg->nconn, sizeof(*lg->retry_q));
	lg->ready_q = util_calloc(lg->nconn, sizeof(*lg->ready_q));
	lg->rt_offset = util_clock_offset();
}

void lg_fini(struct lg *lg)
{
	uint32_t i;

	free(lg->conns);
	free(lg->seen);
	free(lg->next_n);
	free(lg->committed_map);
	free(lg->first_lat_us);
	free(lg->first_at_ms);
	for (i = 0; i < LG_KINDS; i++) {
		free(lg->k[i].lat_us);
		free(lg->k[i].rx_lat_us);
	}
	for (i = 0; i < lg->o.ninst; i++) {
		free(lg->inst[i].lat_us);
		free(lg->inst[i].rx_lat_us);
	}
	free(lg->rooms);
	free(lg->retry_q);
	free(lg->ready_q);
}
