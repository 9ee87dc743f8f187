/*
 * loadgen: sockets and the epoll loop (conn.h). A single thread serves
 * every connection; fairness comes from reading at most a few times per
 * connection per event. Protocol lines go to line.c (TCP) and sse.c.
 */
#include "conn.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "chunk.h"
#include "irc.h"
#include "line.h"
#include "nchan.h"
#include "sender.h"
#include "sse.h"
#include "util.h"

#define CONN_READS_PER_EVENT 8		/* fairness between connections */
#define CONN_EVENTS_MAX 256
#define CONN_TICK_MS 50			/* longest epoll_wait */
#define CONN_TIMER_TAG UINT64_MAX	/* epoll tag of the rate timer */
#define CONN_RETRY_MAX 40		/* --reconnect: attempts per loss */
#define CONN_RETRY_NS 50000000ull	/* --reconnect: pause, x attempts */
#define CONN_RETRY_CAP_NS 500000000ull	/* --reconnect: longest pause */

static void conn_recon_lost(struct lg *lg, struct lg_conn *c);
static void conn_recon_failed(struct lg *lg, struct lg_conn *c,
			      const char *why);

void conn_close(struct lg *lg, struct lg_conn *c, enum lg_state s,
		const char *why)
{
	bool lost_member = c->state == LG_JOINED && lg->running &&
			   c->member && s == LG_CLOSED;

	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->wbuf);
	c->wbuf = NULL;
	c->woff = c->wlen = c->wcap = 0;
	c->rlen = 0;
	if (c->back && s == LG_FAILED) {
		/* Coming back failed: try again (or give up). */
		conn_recon_failed(lg, c, why);
		return;
	}
	if (s == LG_FAILED) {
		char what[64];

		lg->failed++;
		lg_kind(lg, c)->failed++;
		lg_inst(lg, c)->failed++;
		snprintf(what, sizeof(what), "setup failed (%s)",
			 lg_state_str(c->state));
		lg_show(lg, c, what, why);
	} else if (c->state == LG_JOINED && lg->running) {
		lg->dropped++;
		lg_kind(lg, c)->dropped++;
		lg_inst(lg, c)->dropped++;
		lg_show(lg, c, "lost", why);
	}
	lg_set_state(lg, c, s);
	if (lost_member && lg->o.reconnect)
		conn_recon_lost(lg, c);
}

void conn_lose(struct lg *lg, struct lg_conn *c, const char *why)
{
	bool after_setup = c->state == LG_JOINED && lg->running;

	conn_close(lg, c, after_setup ? LG_CLOSED : LG_FAILED, why);
}

static void conn_update_events(struct lg *lg, struct lg_conn *c,
			       bool want_out)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (want_out == c->want_out)
		return;
	if (want_out)
		ev.events |= EPOLLOUT;
	ev.data.u64 = (uint64_t)c->idx;
	if (epoll_ctl(lg->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		conn_lose(lg, c, strerror(errno));
		return;
	}
	c->want_out = want_out;
}

static void conn_flush(struct lg *lg, struct lg_conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_update_events(lg, c, true);
			return;
		}
		if (n <= 0) {
			conn_lose(lg, c, n < 0 ? strerror(errno) :
						 "short write");
			return;
		}
		c->woff += (size_t)n;
	}
	c->woff = c->wlen = 0;
	conn_update_events(lg, c, false);
}

size_t conn_pending(const struct lg_conn *c)
{
	return c->wlen - c->woff;
}

void conn_write(struct lg *lg, struct lg_conn *c, const char *buf, size_t len)
{
	if (c->fd < 0)
		return;
	if (c->woff > 0) {
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	if (c->wlen + len > c->wcap) {
		size_t cap = c->wcap ? c->wcap : 256;

		while (cap < c->wlen + len)
			cap *= 2;
		c->wbuf = util_realloc(c->wbuf, cap);
		c->wcap = cap;
	}
	memcpy(c->wbuf + c->wlen, buf, len);
	c->wlen += len;
	conn_flush(lg, c);
}

static void conn_connect(struct lg *lg, struct lg_conn *c)
{
	bool http = c->sse || c->proto == LG_P_NCHAN_PUB;
	const struct sockaddr_in *addr = http ? &lg->o.http_addr[c->inst] :
						&lg->o.addr[c->inst];
	struct epoll_event ev = { .events = EPOLLOUT };
	int one = 1;

	c->rlen = 0;
	c->discard = false;
	c->welcome = 0;
	c->history = 0;
	c->chunked = false;
	c->ch = LG_CH_SIZE;
	c->chunk_left = 0;
	c->http_pending = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_close(lg, c, LG_FAILED, strerror(errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Receive times without our own queueing: see conn_recv(). */
	setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	lg_set_state(lg, c, LG_CONNECTING);
	if (connect(c->fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 &&
	    errno != EINPROGRESS) {
		conn_close(lg, c, LG_FAILED, strerror(errno));
		return;
	}
	ev.data.u64 = (uint64_t)c->idx;
	if (epoll_ctl(lg->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		conn_close(lg, c, LG_FAILED, strerror(errno));
		return;
	}
	c->want_out = true;
}

/*
 * Start connections and joins while fewer than --concurrency are in flight.
 * A connection joins as soon as it is ready (welcomed, nickname set) and
 * its room exists, whatever the others do, so that one slow welcome holds
 * up nobody else; the first connection placed in a room creates it (IRC:
 * joins it first; nchan rooms need nobody), so nobody sees "no such
 * room". SSE subscribers (after the TCP connections) start only once every
 * room exists and go through connect, join and subscribe without pausing:
 * the server closes idle keep-alive connections and expires HTTP sessions
 * without a stream.
 */
static void conn_setup_pump(struct lg *lg)
{
	uint32_t n;

	while (lg->busy < lg->o.concurrency && lg->next_connect < lg->nconn &&
	       (!lg->conns[lg->next_connect].sse ||
		lg->rooms_ready == lg->o.rooms))
		conn_connect(lg, &lg->conns[lg->next_connect++]);
	/* Each waiting connection looked at once per pass at most. */
	for (n = lg_ready_count(lg); n > 0 && lg->busy < lg->o.concurrency;
	     n--) {
		struct lg_conn *c = lg_ready_pop(lg);
		struct lg_room *r = lg_room_of(lg, c);
		bool create = (uint32_t)c->idx == r->creator;

		if (c->state != LG_READY)
			continue;	/* failed meanwhile */
		if (!create && !r->ready) {
			lg_ready_push(lg, c);	/* its room is not there yet */
			continue;
		}
		lg_set_state(lg, c, create ? LG_CREATING : LG_JOINING);
		if (c->proto == LG_P_IRC)
			irc_join(lg, c);
		else
			line_command(lg, c, create ? "/create" : "/join",
				     r->name);
	}
}

/*
 * One loadgen thread reads 1,000 sockets per broadcast, so the time it reads
 * a line includes its own backlog. The kernel's receive timestamp (of the
 * last segment read, CLOCK_REALTIME) does not: it is kept in c->rx_ns.
 */
static ssize_t conn_recv(struct lg *lg, struct lg_conn *c, size_t room)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = c->rbuf + c->rlen, .iov_len = room };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *cm;
	ssize_t n = recvmsg(c->fd, &mh, 0);

	c->rx_ns = 0;
	for (cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		struct timespec ts;
		int64_t rt;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		rt = (int64_t)ts.tv_sec * (int64_t)UTIL_NSEC + ts.tv_nsec;
		if (rt > lg->rt_offset)
			c->rx_ns = (uint64_t)(rt - lg->rt_offset);
	}
	return n;
}

static void conn_on_readable(struct lg *lg, struct lg_conn *c)
{
	int reads;

	for (reads = 0; reads < CONN_READS_PER_EVENT && c->fd >= 0; reads++) {
		size_t room = sizeof(c->rbuf) - 1 - c->rlen;
		ssize_t n = conn_recv(lg, c, room);
		char *p, *nl, *end;
		size_t left;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_lose(lg, c, n < 0 ? strerror(errno) :
						 "closed by server");
			return;
		}
		if (c->chunked && c->state == LG_JOINED) {
			long d = chunk_decode(c, c->rbuf + c->rlen, (size_t)n);

			if (d < 0) {
				conn_lose(lg, c, "malformed chunked body");
				return;
			}
			c->rlen += (size_t)d;
		} else {
			c->rlen += (size_t)n;
		}
		if (c->proto == LG_P_NCHAN_PUB) {
			nchan_pub_input(lg, c);
			if (c->fd < 0)
				return;
			if ((size_t)n < room)
				return;
			continue;
		}
		while (c->sse && c->state != LG_JOINED && c->rlen > 0 &&
		       sse_http_response(lg, c))
			;	/* each pass consumes one response */
		if (c->fd < 0)
			return;
		if (c->sse && c->state != LG_JOINED) {
			if ((size_t)n < room)
				return;
			continue;	/* a partial response */
		}
		p = c->rbuf;
		end = c->rbuf + c->rlen;
		while (c->fd >= 0 && (left = (size_t)(end - p)) > 0 &&
		       (nl = memchr(p, '\n', left))) {
			*nl = '\0';
			if (c->discard)
				c->discard = false;
			else if (c->sse)
				sse_line(lg, c, p, (size_t)(nl - p));
			else if (c->proto == LG_P_IRC)
				irc_on_line(lg, c, p, (size_t)(nl - p));
			else
				line_on_line(lg, c, p, (size_t)(nl - p));
			p = nl + 1;
		}
		if (c->fd < 0)
			return;
		if (c->chunked && c->ch == LG_CH_END) {
			/* A proxy ended the stream (its upstream went away). */
			conn_lose(lg, c, "stream ended");
			return;
		}
		c->rlen = (size_t)(end - p);
		memmove(c->rbuf, p, c->rlen);
		if (c->rlen == sizeof(c->rbuf) - 1) {
			/* Longer than anything the protocol sends: drop it. */
			c->rlen = 0;
			c->discard = true;
		}
		if ((size_t)n < room)
			return;
	}
}

static void conn_on_event(struct lg *lg, struct lg_conn *c, uint32_t events)
{
	if (c->fd < 0)
		return;
	if (c->state == LG_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_close(lg, c, LG_FAILED, strerror(err));
			return;
		}
		c->want_out = true;	/* registered as EPOLLOUT only */
		conn_update_events(lg, c, false);
		if (c->fd < 0)
			return;
		switch (c->proto) {
		case LG_P_BD_SSE:
			sse_connect(lg, c);
			break;
		case LG_P_NCHAN_SUB:
			nchan_subscribe(lg, c);
			break;
		case LG_P_NCHAN_PUB:
			lg_set_state(lg, c, LG_JOINED);
			break;
		case LG_P_IRC:
			irc_register(lg, c);
			break;
		case LG_P_LINE:
			lg_set_state(lg, c, LG_WELCOME);
			break;
		}
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_on_readable(lg, c);
	if (c->fd >= 0 && (events & EPOLLOUT)) {
		conn_flush(lg, c);
		if (lg_is_sender(lg, c))
			sender_pump(lg, c);
	}
}

static void conn_retry_at(struct lg *lg, struct lg_conn *c, uint64_t at)
{
	if (!c->retry_at)
		lg->retry_q[lg->nretry++] = (uint32_t)c->idx;
	c->retry_at = at ? at : 1;
}

void conn_retry_later(struct lg *lg, struct lg_conn *c)
{
	uint64_t pause = CONN_RETRY_NS * ++c->tries;

	lg->nick_retries++;
	if (pause > CONN_RETRY_CAP_NS)
		pause = CONN_RETRY_CAP_NS;
	conn_retry_at(lg, c, util_now_ns() + pause);
}

/* A member lost during the run (--reconnect): it comes back at once. */
static void conn_recon_lost(struct lg *lg, struct lg_conn *c)
{
	uint64_t now = util_now_ns();

	c->back = true;
	c->t_lost = now;
	c->tries = 0;
	lg->away++;
	lg->lost_links[c->sse ? LG_SSE : LG_TCP]++;
	if (!lg->t_first_lost)
		lg->t_first_lost = now;
	lg->t_all_back = 0;
	if (!c->sse)	/* the next address of the list */
		c->inst = (c->inst + 1) % (int)lg->o.ninst;
	conn_retry_at(lg, c, now);
}

/* Coming back failed (refused, closed, refused command): again, later. */
static void conn_recon_failed(struct lg *lg, struct lg_conn *c,
			      const char *why)
{
	uint64_t pause = CONN_RETRY_NS * ++c->tries;

	lg_set_state(lg, c, LG_CLOSED);
	lg->retries++;
	if (c->tries > CONN_RETRY_MAX) {
		c->back = false;	/* stays away: never all back */
		lg->failed++;
		lg_kind(lg, c)->failed++;
		lg_inst(lg, c)->failed++;
		lg_show(lg, c, "could not come back", why);
		return;
	}
	if (!c->sse)
		c->inst = (c->inst + 1) % (int)lg->o.ninst;
	if (pause > CONN_RETRY_CAP_NS)
		pause = CONN_RETRY_CAP_NS;
	conn_retry_at(lg, c, util_now_ns() + pause);
}

/*
 * Due retries: a connection lost connects again; one still connected
 * (its /nick was refused) sends its /nick again.
 */
static void conn_recon_pump(struct lg *lg, uint64_t now)
{
	uint32_t i, n = lg->nretry, kept = 0;

	for (i = 0; i < n; i++) {
		struct lg_conn *c = &lg->conns[lg->retry_q[i]];

		if (c->retry_at > now) {
			lg->retry_q[kept++] = lg->retry_q[i];
			continue;
		}
		c->retry_at = 0;
		if (c->fd < 0 && c->back)
			conn_connect(lg, c);
		else if (c->fd >= 0 && c->state == LG_NICKING)
			line_nick(lg, c);
	}
	/* A failed connect may have queued more, behind the first n. */
	for (i = n; i < lg->nretry; i++)
		lg->retry_q[kept++] = lg->retry_q[i];
	lg->nretry = kept;
}

/* --kill-pid: SIGKILL once, --kill-at seconds into the run. */
static void conn_kill(struct lg *lg, uint64_t now)
{
	if (!lg->o.kill_pid || lg->killed || !lg->running ||
	    now < lg->t0 + (uint64_t)(lg->o.kill_at * 1e9))
		return;
	lg->killed = true;
	lg->t_kill = now;
	if (kill((pid_t)lg->o.kill_pid, SIGKILL) < 0)
		fprintf(stderr, "loadgen: kill %ld: %s\n", lg->o.kill_pid,
			strerror(errno));
}

static void conn_raise_nofile(rlim_t need)
{
	struct rlimit rl;
	rlim_t hard;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		perror("loadgen: getrlimit");
		exit(2);
	}
	if (rl.rlim_cur >= need)
		return;
	hard = rl.rlim_max;
	if (rl.rlim_max < need)
		rl.rlim_max = need;	/* needs CAP_SYS_RESOURCE */
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "loadgen: RLIMIT_NOFILE %lu (hard %lu): %s\n",
			(unsigned long)need, (unsigned long)hard,
			strerror(errno));
		exit(2);
	}
}

void conn_init(struct lg *lg)
{
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = CONN_TIMER_TAG };

	conn_raise_nofile((rlim_t)lg->nconn + 32);
	lg->epfd = epoll_create1(EPOLL_CLOEXEC);
	lg->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (lg->epfd < 0 || lg->tfd < 0 ||
	    epoll_ctl(lg->epfd, EPOLL_CTL_ADD, lg->tfd, &ev) < 0) {
		perror("loadgen: epoll/timerfd");
		exit(2);
	}
}

void conn_fini(struct lg *lg)
{
	uint32_t i;

	for (i = 0; i < lg->nconn; i++) {
		if (lg->conns[i].fd >= 0)
			close(lg->conns[i].fd);
		free(lg->conns[i].wbuf);
	}
	close(lg->tfd);
	close(lg->epfd);
}

static void conn_progress(struct lg *lg, uint64_t now)
{
	if (!lg->o.verbose || now - lg->t_report < UTIL_NSEC)
		return;
	lg->t_report = now;
	if (!lg->running)
		fprintf(stderr, "loadgen: setup %.1fs: joined %" PRIu32
			" (tcp %" PRIu32 ", sse %" PRIu32 ") failed %" PRIu32
			" busy %" PRIu32 "\n",
			util_secs(now - lg->t_setup), lg->joined,
			lg->k[LG_TCP].joined, lg->k[LG_SSE].joined,
			lg->failed, lg->busy);
	else
		fprintf(stderr, "loadgen: run %.1fs: sent %" PRIu64
			" committed %" PRIu64 " deliveries %" PRIu64 "\n",
			util_secs(now - lg->t0), lg->sent, lg->committed,
			lg->deliveries);
}

static void conn_start_run(struct lg *lg)
{
	uint32_t i;

	lg->running = true;
	lg->members = lg->joined;
	lg->k[LG_TCP].members = lg->k[LG_TCP].joined;
	lg->k[LG_SSE].members = lg->k[LG_SSE].joined;
	for (i = 0; i < lg->o.ninst; i++)
		lg->inst[i].members = lg->inst[i].joined;
	for (i = 0; i < lg->nconn; i++) {
		struct lg_conn *c = &lg->conns[i];
		struct lg_room *r = lg_room_of(lg, c);

		/* nchan publishers do not subscribe; with --proto irc, the
		 * nchan subscribers are on another server: no messages. */
		c->member = c->state == LG_JOINED &&
			    c->proto != LG_P_NCHAN_PUB &&
			    !(c->proto == LG_P_NCHAN_SUB &&
			      lg->o.proto != ARGS_NCHAN);
		if (!c->member)
			continue;
		r->members++;
		if (r->witness[0] < 0)
			r->witness[0] = c->idx;
		else if (r->witness[1] < 0)
			r->witness[1] = c->idx;
	}
	lg->t0 = util_now_ns();
	lg->t_progress = lg->t0;
	server_sample(lg->srv, lg->o.server_pid, lg->o.npids,
		      lg->o.server_tree, SERVER_AFTER_SETUP);
	sender_start(lg);
}

/* One pass of the loop's stop rules; sets stop_reason when done. */
static void conn_check(struct lg *lg, uint64_t now, uint64_t setup_deadline)
{
	uint32_t i;

	if (util_interrupted()) {
		lg->stop_reason = "interrupted";
		return;
	}
	if (!lg->running) {
		if (now >= setup_deadline) {
			for (i = 0; i < lg->nconn; i++)
				if (lg->conns[i].state != LG_JOINED &&
				    lg->conns[i].state != LG_FAILED &&
				    lg->conns[i].state != LG_CLOSED)
					conn_close(lg, &lg->conns[i],
						   LG_FAILED, "setup timeout");
		}
		for (i = 0; i < lg->o.rooms && lg->o.proto != ARGS_NCHAN;
		     i++) {
			if (lg->conns[lg->rooms[i].creator].state ==
			    LG_FAILED) {
				lg->stop_reason =
					"setup failed (could not enter room)";
				return;
			}
		}
		if (lg->joined + lg->failed < lg->nconn)
			return;
		for (i = 0; i < lg->o.senders; i++) {
			if (lg->conns[i].state != LG_JOINED) {
				lg->stop_reason = "setup failed";
				return;
			}
		}
		/* --hold: stay idle, connected, before sending. */
		if (!lg->t_hold)
			lg->t_hold = now;
		if (now - lg->t_hold < (uint64_t)(lg->o.hold * 1e9))
			return;
		conn_start_run(lg);
		return;
	}
	if (sender_is_over(lg) && lg->deliveries >= lg->expected) {
		lg->stop_reason = "complete";
		return;
	}
	if (now - lg->t0 >= (uint64_t)(lg->o.duration_max * 1e9)) {
		lg->stop_reason = "duration-max reached";
		return;
	}
	if ((lg->o.rate == 0 || sender_is_over(lg)) &&
	    now - lg->t_progress >= (uint64_t)(lg->o.idle_timeout * 1e9)) {
		lg->stop_reason = "idle timeout (no progress)";
		return;
	}
	if (lg->joined == 0)
		lg->stop_reason = "all connections lost";
}

void conn_loop(struct lg *lg)
{
	struct epoll_event evs[CONN_EVENTS_MAX];
	uint64_t setup_deadline;

	lg->t_setup = util_now_ns();
	lg->t_report = lg->t_setup;
	setup_deadline = lg->t_setup + (uint64_t)(lg->o.setup_timeout * 1e9);
	conn_setup_pump(lg);
	while (!lg->stop_reason) {
		int i, n = epoll_wait(lg->epfd, evs, CONN_EVENTS_MAX,
				      CONN_TICK_MS);
		uint64_t now;

		if (n < 0 && errno != EINTR) {
			perror("loadgen: epoll_wait");
			exit(2);
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.u64 == CONN_TIMER_TAG)
				sender_rate_tick(lg);
			else
				conn_on_event(lg, &lg->conns[evs[i].data.u64],
					      evs[i].events);
		}
		if (!lg->running)
			conn_setup_pump(lg);
		now = util_now_ns();
		conn_kill(lg, now);
		if (lg->nretry)
			conn_recon_pump(lg, now);
		conn_progress(lg, now);
		conn_check(lg, now, setup_deadline);
	}
}
