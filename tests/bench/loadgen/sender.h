/*
 * loadgen's senders (connections 0 .. --senders - 1): the payload
 * "b <sender> <n> <t_ns>" they send as chat lines, flat out within a
 * window of unconfirmed messages or at --rate on a timer. Receiving and
 * checking the payload is lg_deliver()'s.
 */
#ifndef BD_BENCH_LG_SENDER_H
#define BD_BENCH_LG_SENDER_H

#include <stdbool.h>

#include "lg.h"

/*
 * Starts sending at lg->t0: at --rate, arms the timer (lg->tfd); flat
 * out, fills every sender's window.
 */
void sender_start(struct lg *lg);

/*
 * Flat out, during the run: sends from c until --window of its messages
 * are unconfirmed, all are sent or its write buffer is full. Otherwise
 * (setup, --rate) nothing.
 */
void sender_pump(struct lg *lg, struct lg_conn *c);

/*
 * The rate timer fired: sends every message now due (at most a burst),
 * skipping (and counting) those whose sender is gone or blocked, and
 * re-arms the timer for the next. Exits 2 when the timer fails.
 */
void sender_rate_tick(struct lg *lg);

/* Whether every message was sent, or every sender left is done. */
bool sender_is_over(const struct lg *lg);

#endif
