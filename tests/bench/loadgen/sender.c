/*
 * loadgen: sending (sender.h). Each message carries its sender, number and
 * send time, so that any receiver can check it and time it without asking
 * anybody.
 */
#include "sender.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "irc.h"
#include "nchan.h"
#include "util.h"

#define SENDER_WBUF_MAX (1 << 20)	/* unsent bytes a sender may queue */
#define SENDER_BURST_MAX 10000		/* rate mode: most sends per tick */

static bool sender_is_alive(const struct lg *lg, uint32_t s)
{
	return lg->conns[s].state == LG_JOINED;
}

static void sender_send(struct lg *lg, struct lg_conn *c, uint32_t n)
{
	char line[96];
	uint64_t t = util_now_ns();
	int len = snprintf(line, sizeof(line), "b %d %" PRIu32 " %" PRIu64 "\n",
			   c->idx, n, t);

	struct lg_room *r = lg_room_of(lg, c);

	c->sent++;
	lg->sent++;
	r->sent++;
	/* IRC does not echo a message to its sender. */
	lg->expected += r->members - (c->proto == LG_P_IRC && c->member);
	lg->t_last_send = t;
	lg->t_progress = t;
	switch (c->proto) {
	case LG_P_IRC:
		irc_say(lg, c, line, (size_t)len - 1);
		break;
	case LG_P_NCHAN_PUB:
		nchan_publish(lg, c, line, (size_t)len - 1);
		break;
	default:
		conn_write(lg, c, line, (size_t)len);
		break;
	}
}

void sender_pump(struct lg *lg, struct lg_conn *c)
{
	if (!lg->running || lg->o.rate > 0)
		return;
	while (c->state == LG_JOINED && c->sent < lg->o.messages &&
	       c->sent - c->confirmed - c->refused < lg->o.window &&
	       conn_pending(c) < SENDER_WBUF_MAX)
		sender_send(lg, c, c->sent);
}

static uint64_t sender_due(const struct lg *lg, uint64_t g)
{
	return lg->t0 + (uint64_t)((double)g * 1e9 / lg->o.rate);
}

static void sender_timer_arm(struct lg *lg, uint64_t at)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)(at / UTIL_NSEC);
	its.it_value.tv_nsec = (long)(at % UTIL_NSEC);
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;	/* zero would disarm */
	if (timerfd_settime(lg->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		perror("loadgen: timerfd_settime");
		exit(2);
	}
}

void sender_start(struct lg *lg)
{
	uint32_t i;

	if (lg->o.rate > 0) {
		sender_timer_arm(lg, lg->t0);
		return;
	}
	for (i = 0; i < lg->o.senders; i++)
		sender_pump(lg, &lg->conns[i]);
}

/*
 * Rate mode: global message g is sender g % S's number g / S, due at
 * t0 + g / rate, so the senders take turns evenly.
 */
void sender_rate_tick(struct lg *lg)
{
	uint64_t total = (uint64_t)lg->o.senders * lg->o.messages;
	uint64_t expirations, now = util_now_ns();
	uint32_t burst = 0;

	if (read(lg->tfd, &expirations, sizeof(expirations)) < 0 &&
	    errno != EAGAIN) {
		perror("loadgen: timerfd read");
		exit(2);
	}
	while (lg->g_next < total && sender_due(lg, lg->g_next) <= now &&
	       burst++ < SENDER_BURST_MAX) {
		uint32_t s = (uint32_t)(lg->g_next % lg->o.senders);
		uint32_t n = (uint32_t)(lg->g_next / lg->o.senders);
		struct lg_conn *c = &lg->conns[s];

		if (sender_is_alive(lg, s) && conn_pending(c) < SENDER_WBUF_MAX)
			sender_send(lg, c, n);
		else
			lg->skipped++;
		lg->g_next++;
	}
	if (lg->g_next < total) {
		uint64_t due = sender_due(lg, lg->g_next);

		sender_timer_arm(lg, due > now ? due : now + 1);
	}
}

bool sender_is_over(const struct lg *lg)
{
	uint32_t s, m = lg->o.messages;

	if (lg->o.rate > 0)
		return lg->g_next >= (uint64_t)lg->o.senders * m;
	for (s = 0; s < lg->o.senders; s++)
		if (sender_is_alive(lg, s) && lg->conns[s].sent < m)
			return false;
	return true;
}
