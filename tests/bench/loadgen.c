/*
 * loadgen: load generator for the Baby Discord TCP line protocol and its
 * HTTP event streams. Puts receivers and senders in one room, or in
 * --rooms N rooms (TCP line clients, and with --sse-clients also HTTP
 * sessions that read the room's Server-Sent Events stream), sends
 * timestamped lines from TCP senders and checks that every member gets every
 * message of its room exactly once and in order; reports throughput,
 * latency (all receivers, TCP, SSE, and per instance when the clients are
 * spread over several servers with --ports) and the servers' RSS and CPU.
 * Single thread, one epoll loop.
 *
 * With --api-requests N it measures the JSON API instead: one HTTP session,
 * then N sequential requests of each kind (POST /api/message, POST
 * /api/command /help, GET /api/rooms) on one blocking keep-alive
 * connection per HTTP port, rotating over the ports (see lg_api_run).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define LG_RBUF_SIZE 8192		/* longest server line we keep */
#define LG_WBUF_MAX (1 << 20)		/* unsent bytes a sender may queue */
#define LG_READS_PER_EVENT 8		/* fairness between connections */
#define LG_EVENTS_MAX 256
#define LG_SHOWN_MAX 5			/* errors and failures printed */
#define LG_BURST_MAX 10000		/* rate mode: most sends per tick */
#define LG_TICK_MS 50			/* longest epoll_wait */
#define LG_DELIVERIES_MAX (64ull << 20)	/* tracking memory bound */
#define LG_TIMER_TAG UINT64_MAX		/* epoll tag of the rate timer */
#define LG_HTTP_TIMEOUT_S 2		/* blocking requests at the end */
#define LG_TEARDOWN_S 20ull		/* all POST /api/disconnect */
#define LG_CONTENT_MAX 96		/* longest bench payload, SSE */
#define LG_INST_MAX 16			/* --ports, --http-ports, pids */
#define LG_API_TIMEOUT_S 5		/* --api-requests: one request */
#define LG_API_RESP_MAX (4u << 20)	/* longest API answer we read */
#define LG_API_WORST 8			/* slowest requests listed */
#define NSEC 1000000000ull

enum lg_state {
	LG_IDLE,	/* not connected yet */
	LG_CONNECTING,	/* non-blocking connect() in progress */
	LG_WELCOME,	/* reading the welcome lines */
	LG_NICKING,	/* sent /nick (SSE: POST /api/connect), waiting */
	LG_READY,	/* welcomed, waiting for its turn to join */
	LG_CREATING,	/* sent /create, waiting for "You joined" */
	LG_JOINING,	/* sent /join (SSE: POST /api/command), waiting */
	LG_SUBSCRIBING,	/* SSE: sent GET /api/messages/ROOM, waiting */
	LG_JOINED,	/* member of the room (SSE: stream open) */
	LG_FAILED,	/* setup failed; socket closed */
	LG_CLOSED,	/* lost after joining; socket closed */
};

static const char *const lg_state_name[] = {
	[LG_IDLE] = "idle", [LG_CONNECTING] = "connecting",
	[LG_WELCOME] = "welcome", [LG_NICKING] = "nick/connect",
	[LG_READY] = "ready", [LG_CREATING] = "create",
	[LG_JOINING] = "join", [LG_SUBSCRIBING] = "subscribe",
	[LG_JOINED] = "joined", [LG_FAILED] = "failed",
	[LG_CLOSED] = "closed",
};

/* Receiver kinds, reported together and separately. */
enum lg_kind { LG_TCP, LG_SSE, LG_KINDS };

static const char *const lg_kind_name[LG_KINDS] = { "tcp", "sse" };

/* The SSE event being read (its "event:" field). */
enum lg_sse_event { LG_EV_MESSAGE, LG_EV_SYSTEM, LG_EV_RESET, LG_EV_OTHER };

struct lg_conn {
	int fd;			/* socket, -1 when closed */
	int idx;		/* index; sender s is connection s */
	int inst;		/* server: index in --ports/--http-ports */
	uint32_t room;		/* index of its room (see lg_place) */
	bool member;		/* in the room when the run started */
	bool sse;		/* HTTP session + event stream */
	enum lg_sse_event ev;	/* SSE: type of the event being read */
	char sid[33];		/* SSE: session_id */
	enum lg_state state;	/* where it is in the setup */
	bool want_out;		/* EPOLLOUT is registered */
	int welcome;		/* welcome lines read so far */
	long history;		/* history lines still to skip after join */
	bool discard;		/* dropping an over-long line */
	size_t rlen;		/* bytes in rbuf */
	uint64_t rx_ns;		/* kernel receive time of the last read */
	char *wbuf;		/* bytes to write, from woff to wlen */
	size_t woff, wlen, wcap;
	uint32_t sent;		/* sender: messages queued */
	uint32_t confirmed;	/* sender: own messages seen echoed */
	uint32_t refused;	/* sender: errors received while sending */
	char rbuf[LG_RBUF_SIZE];	/* partial line read */
};

struct lg_opts {
	struct sockaddr_in addr[LG_INST_MAX];	   /* TCP, per instance */
	struct sockaddr_in http_addr[LG_INST_MAX]; /* HTTP, per instance */
	uint32_t ninst;			/* TCP ports (instances) */
	uint32_t nhttp;			/* HTTP ports: 1 or ninst */
	int sender_inst;		/* -1: senders round-robin too */
	bool http_given;		/* --http-port(s): ask GET /health */
	const char *room;		/* room name (prefix with --rooms) */
	uint32_t rooms;			/* rooms, at most senders */
	const char *nick_prefix;	/* NULL: stay guest-NNNNNN */
	uint32_t clients;		/* receive-only connections */
	uint32_t senders;		/* sending connections */
	uint32_t sse_clients;		/* receive-only SSE subscribers */
	uint32_t messages;		/* per sender */
	double rate;			/* total msg/s, 0 = flat out */
	uint32_t window;		/* flat out: unconfirmed per sender */
	uint32_t concurrency;		/* setup operations in flight */
	double duration_max;		/* run phase hard stop, seconds */
	double setup_timeout;		/* setup phase hard stop, seconds */
	double idle_timeout;		/* stop after this long w/o progress */
	double hold;			/* idle seconds between setup and run */
	long server_pid[LG_INST_MAX];	/* 0: no RSS report */
	uint32_t npids;			/* 1, or one per instance */
	bool verbose;			/* progress lines on stderr */
	uint32_t api_requests;		/* API mode: requests of each kind */
};

/* Per receiver kind. */
struct lg_kstats {
	uint32_t planned;		/* connections of this kind */
	uint32_t joined;		/* in the room now */
	uint32_t failed;		/* setup failures */
	uint64_t members;		/* joined when the run started */
	uint64_t expected;		/* deliveries due (at the report) */
	uint64_t cap;			/* entries in lat_us, rx_lat_us */
	uint64_t deliveries;		/* unique deliveries */
	uint64_t duplicated;
	uint64_t reordered;
	uint64_t bogus;			/* sender or n out of range */
	uint64_t history_skipped;
	uint64_t dropped;		/* connections lost during the run */
	uint64_t resets;		/* SSE "event: reset" */
	uint64_t system_events;		/* SSE "event: system" */
	uint64_t heartbeats;		/* SSE comment lines (": ping") */
	uint32_t *lat_us;		/* latency of each unique delivery */
	uint32_t *rx_lat_us;		/* same, to the kernel's receive time */
	uint64_t rx_lats;		/* entries in rx_lat_us */
};

/* What GET /health said at the end (-1: unknown). */
struct lg_health {
	int status;
	long long sessions, streams;
	double queue;			/* notify_queue_usage */
};

/* A server process watched through /proc (-1: unknown). */
struct lg_server {
	long rss_before, rss_setup, rss_end, rss_peak;	/* kB */
	double cpu_before, cpu_setup, cpu_end;	/* user + system, s */
	long fds;				/* open at the end */
};

/* One room of the run and the server lines that belong to it. */
struct lg_room {
	char name[64];
	char prefix[80];		/* "[room] " */
	size_t prefix_len;
	char joined[100];		/* "[system] You joined room (" */
	size_t joined_len;
	char exists[120];		/* "... room room already exists" */
	char sse[80];			/* "room":"<name>" in SSE data */
	bool ready;			/* its creator is in it */
	uint32_t senders;
	uint64_t members;		/* joined when the run started */
	uint64_t sent;			/* messages sent into it */
};

struct lg {
	struct lg_opts o;
	struct lg_conn *conns;
	uint32_t nconn;			/* clients + senders + sse_clients */
	uint32_t ntcp;			/* clients + senders; SSE after them */
	struct lg_kstats k[LG_KINDS];
	struct lg_kstats inst[LG_INST_MAX];	/* per server instance */
	struct lg_room *rooms;
	int epfd;
	int tfd;			/* rate timer */
	bool running;			/* run phase (after setup) */

	/* Setup. */
	uint32_t next_connect;		/* next connection to start */
	uint32_t join_cursor;		/* next connection to join */
	uint32_t busy;			/* setup operations in flight */
	uint32_t joined;		/* connections in the room */
	uint32_t failed;		/* setup failures */
	uint32_t rooms_ready;		/* rooms whose creator is in */

	char host_hdr[LG_INST_MAX][64];	/* "Host: ..." value */
	char nick_tag[24];		/* "_<pid>" after SSE nicknames */

	/* Delivery tracking. */
	uint8_t *seen;			/* bit per (conn, sender, n) */
	uint32_t *next_n;		/* per (conn, sender): max n + 1 */
	uint8_t *committed_map;		/* bit per (sender, n) */
	uint32_t *first_lat_us;		/* per message: to its first receiver */
	uint32_t *first_at_ms;		/* per message: sent, ms after t0 */
	int64_t rt_offset;		/* CLOCK_REALTIME - CLOCK_MONOTONIC */
	uint64_t members;		/* conns joined when the run started */
	uint64_t expected;		/* deliveries due for what was sent */
	uint64_t deliveries;		/* unique deliveries, all kinds */
	uint64_t committed;
	uint64_t sent;
	uint64_t refused;
	uint64_t skipped;		/* rate mode: sender gone or blocked */
	uint64_t g_next;		/* rate mode: next global message */
	uint64_t errors;		/* error lines, HTTP errors */
	uint64_t dropped;		/* connections lost during the run */
	uint32_t shown;			/* errors/failures printed */
	bool shutdown_seen;		/* "[system] server shutting down" */

	/* Times (CLOCK_MONOTONIC ns). */
	uint64_t t_setup;		/* setup start */
	uint64_t t_hold;		/* everybody in the room (0: not yet) */
	uint64_t t0;			/* run start */
	uint64_t t_last_send;
	uint64_t t_last_delivery;
	uint64_t t_progress;		/* last send or unique delivery */
	uint64_t t_report;		/* last progress line */
	const char *stop_reason;

	struct lg_server srv[LG_INST_MAX];	/* per --server-pid */
	struct lg_health health[LG_INST_MAX];	/* per HTTP port */
	uint32_t teardown_tried;	/* sessions to disconnect */
	uint32_t teardown_done;		/* answered 200 */
	double teardown_s;
};

static volatile sig_atomic_t lg_interrupted;

static void lg_on_signal(int sig)
{
	(void)sig;
	lg_interrupted = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

/* CLOCK_REALTIME minus CLOCK_MONOTONIC, from the closest of a few samples. */
static int64_t lg_clock_offset(void)
{
	int64_t best = 0, off, span, best_span = INT64_MAX;
	struct timespec a, r, b;
	int i;

	for (i = 0; i < 5; i++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		clock_gettime(CLOCK_REALTIME, &r);
		clock_gettime(CLOCK_MONOTONIC, &b);
		span = (b.tv_sec - a.tv_sec) * (int64_t)NSEC +
		       (b.tv_nsec - a.tv_nsec);
		off = r.tv_sec * (int64_t)NSEC + r.tv_nsec -
		      (a.tv_sec * (int64_t)NSEC + a.tv_nsec + span / 2);
		if (span < best_span) {
			best_span = span;
			best = off;
		}
	}
	return best;
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static void *lg_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		fprintf(stderr, "loadgen: out of memory\n");
		exit(2);
	}
	return p;
}

static bool lg_state_is_busy(enum lg_state s)
{
	return s == LG_CONNECTING || s == LG_WELCOME || s == LG_NICKING ||
	       s == LG_CREATING || s == LG_JOINING || s == LG_SUBSCRIBING;
}

static struct lg_kstats *lg_kind(struct lg *lg, const struct lg_conn *c)
{
	return &lg->k[c->sse ? LG_SSE : LG_TCP];
}

static struct lg_kstats *lg_inst(struct lg *lg, const struct lg_conn *c)
{
	return &lg->inst[c->inst];
}

static struct lg_room *lg_room_of(struct lg *lg, const struct lg_conn *c)
{
	return &lg->rooms[c->room];
}

static void lg_set_state(struct lg *lg, struct lg_conn *c, enum lg_state s)
{
	if (lg_state_is_busy(c->state))
		lg->busy--;
	if (lg_state_is_busy(s))
		lg->busy++;
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

/* Print only the first few problems: with 1,000 clients one cause repeats. */
static void lg_show(struct lg *lg, const struct lg_conn *c, const char *what,
		    const char *text)
{
	if (lg->shown >= LG_SHOWN_MAX)
		return;
	lg->shown++;
	fprintf(stderr, "loadgen: %s conn %d (instance %d): %s: %s\n",
		lg_kind_name[c->sse ? LG_SSE : LG_TCP], c->idx, c->inst + 1,
		what, text);
}

static void lg_close(struct lg *lg, struct lg_conn *c, enum lg_state s,
		     const char *why)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->wbuf);
	c->wbuf = NULL;
	c->woff = c->wlen = c->wcap = 0;
	if (s == LG_FAILED) {
		char what[64];

		lg->failed++;
		lg_kind(lg, c)->failed++;
		lg_inst(lg, c)->failed++;
		snprintf(what, sizeof(what), "setup failed (%s)",
			 lg_state_name[c->state]);
		lg_show(lg, c, what, why);
	} else if (c->state == LG_JOINED && lg->running) {
		lg->dropped++;
		lg_kind(lg, c)->dropped++;
		lg_inst(lg, c)->dropped++;
		lg_show(lg, c, "lost", why);
	}
	lg_set_state(lg, c, s);
}

/* Close for a reason that depends on when it happens. */
static void lg_lose(struct lg *lg, struct lg_conn *c, const char *why)
{
	bool after_setup = c->state == LG_JOINED && lg->running;

	lg_close(lg, c, after_setup ? LG_CLOSED : LG_FAILED, why);
}

static void lg_update_events(struct lg *lg, struct lg_conn *c, bool want_out)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (want_out == c->want_out)
		return;
	if (want_out)
		ev.events |= EPOLLOUT;
	ev.data.u64 = (uint64_t)c->idx;
	if (epoll_ctl(lg->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		lg_lose(lg, c, strerror(errno));
		return;
	}
	c->want_out = want_out;
}

static void lg_flush(struct lg *lg, struct lg_conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			lg_update_events(lg, c, true);
			return;
		}
		if (n <= 0) {
			lg_lose(lg, c, n < 0 ? strerror(errno) : "short write");
			return;
		}
		c->woff += (size_t)n;
	}
	c->woff = c->wlen = 0;
	lg_update_events(lg, c, false);
}

static size_t lg_pending(const struct lg_conn *c)
{
	return c->wlen - c->woff;
}

static void lg_write(struct lg *lg, struct lg_conn *c, const char *buf,
		     size_t len)
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
		c->wbuf = realloc(c->wbuf, cap);
		if (!c->wbuf) {
			fprintf(stderr, "loadgen: out of memory\n");
			exit(2);
		}
		c->wcap = cap;
	}
	memcpy(c->wbuf + c->wlen, buf, len);
	c->wlen += len;
	lg_flush(lg, c);
}

static void lg_command(struct lg *lg, struct lg_conn *c, const char *cmd,
		       const char *arg)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "%s %s\n", cmd, arg);

	lg_write(lg, c, line, (size_t)n);
}

/* HTTP/1.1 request on the subscriber's keep-alive connection. */
static void lg_http_request(struct lg *lg, struct lg_conn *c,
			    const char *method, const char *target,
			    const char *json)
{
	char req[512];
	int n;

	if (json)
		n = snprintf(req, sizeof(req),
			     "%s %s HTTP/1.1\r\nHost: %s\r\n"
			     "Content-Type: application/json\r\n"
			     "Content-Length: %zu\r\n\r\n%s",
			     method, target, lg->host_hdr[c->inst],
			     strlen(json), json);
	else
		n = snprintf(req, sizeof(req),
			     "%s %s HTTP/1.1\r\nHost: %s\r\n"
			     "Accept: text/event-stream\r\n\r\n",
			     method, target, lg->host_hdr[c->inst]);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		lg_close(lg, c, LG_FAILED, "HTTP request too long");
		return;
	}
	lg_write(lg, c, req, (size_t)n);
}

/* POST /api/connect {"nickname":"sse<i>_<pid>"}. */
static void lg_sse_connect(struct lg *lg, struct lg_conn *c)
{
	char body[96];

	snprintf(body, sizeof(body), "{\"nickname\":\"sse%" PRIu32 "%s\"}",
		 (uint32_t)c->idx - lg->ntcp, lg->nick_tag);
	lg_set_state(lg, c, LG_NICKING);
	lg_http_request(lg, c, "POST", "/api/connect", body);
}

/* POST /api/command {"session_id":..., "command":"/join ROOM"}. */
static void lg_sse_join(struct lg *lg, struct lg_conn *c)
{
	char body[160];

	snprintf(body, sizeof(body),
		 "{\"session_id\":\"%s\",\"command\":\"/join %s\"}", c->sid,
		 lg_room_of(lg, c)->name);
	lg_set_state(lg, c, LG_JOINING);
	lg_http_request(lg, c, "POST", "/api/command", body);
}

/* GET /api/messages/ROOM?session_id=...: the stream, on the same socket. */
static void lg_sse_subscribe(struct lg *lg, struct lg_conn *c)
{
	char target[160];

	snprintf(target, sizeof(target), "/api/messages/%s?session_id=%s",
		 lg_room_of(lg, c)->name, c->sid);
	lg_set_state(lg, c, LG_SUBSCRIBING);
	lg_http_request(lg, c, "GET", target, NULL);
}

static void lg_connect(struct lg *lg, struct lg_conn *c)
{
	const struct sockaddr_in *addr = c->sse ? &lg->o.http_addr[c->inst] :
						  &lg->o.addr[c->inst];
	struct epoll_event ev = { .events = EPOLLOUT };
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		lg_close(lg, c, LG_FAILED, strerror(errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Receive times without our own queueing: see lg_recv(). */
	setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	lg_set_state(lg, c, LG_CONNECTING);
	if (connect(c->fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 &&
	    errno != EINPROGRESS) {
		lg_close(lg, c, LG_FAILED, strerror(errno));
		return;
	}
	ev.data.u64 = (uint64_t)c->idx;
	if (epoll_ctl(lg->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		lg_close(lg, c, LG_FAILED, strerror(errno));
		return;
	}
	c->want_out = true;
}

/*
 * Start connections and joins while fewer than --concurrency are in flight.
 * Joins go in connection order and only after the creator is in the room, so
 * nobody sees "no such room": connection r < --rooms creates room r. SSE
 * subscribers (after the TCP connections) start only once every room exists
 * and go through connect, join and subscribe without pausing: the server
 * closes idle keep-alive connections and expires HTTP sessions without a
 * stream.
 */
static void lg_setup_pump(struct lg *lg)
{
	while (lg->busy < lg->o.concurrency && lg->next_connect < lg->nconn &&
	       (!lg->conns[lg->next_connect].sse ||
		lg->rooms_ready == lg->o.rooms))
		lg_connect(lg, &lg->conns[lg->next_connect++]);
	while (lg->join_cursor < lg->ntcp && lg->busy < lg->o.concurrency) {
		struct lg_conn *c = &lg->conns[lg->join_cursor];
		struct lg_room *r = lg_room_of(lg, c);

		if (c->state == LG_READY && (uint32_t)c->idx < lg->o.rooms) {
			lg_set_state(lg, c, LG_CREATING);
			lg_command(lg, c, "/create", r->name);
		} else if (c->state == LG_READY && r->ready) {
			lg_set_state(lg, c, LG_JOINING);
			lg_command(lg, c, "/join", r->name);
		} else if (c->state != LG_JOINED && c->state != LG_FAILED &&
			   c->state != LG_CLOSED && c->state != LG_CREATING &&
			   c->state != LG_JOINING) {
			break;	/* not welcomed yet */
		}
		lg->join_cursor++;
	}
}

static bool lg_sender_alive(const struct lg *lg, uint32_t s)
{
	return lg->conns[s].state == LG_JOINED;
}

static void lg_send_msg(struct lg *lg, struct lg_conn *c, uint32_t n)
{
	char line[96];
	uint64_t t = now_ns();
	int len = snprintf(line, sizeof(line), "b %d %" PRIu32 " %" PRIu64 "\n",
			   c->idx, n, t);

	c->sent++;
	lg->sent++;
	lg_room_of(lg, c)->sent++;
	lg->expected += lg_room_of(lg, c)->members;
	lg->t_last_send = t;
	lg->t_progress = t;
	lg_write(lg, c, line, (size_t)len);
}

/* Flat out: keep at most --window of the sender's messages unconfirmed. */
static void lg_sender_pump(struct lg *lg, struct lg_conn *c)
{
	if (!lg->running || lg->o.rate > 0)
		return;
	while (c->state == LG_JOINED && c->sent < lg->o.messages &&
	       c->sent - c->confirmed - c->refused < lg->o.window &&
	       lg_pending(c) < LG_WBUF_MAX)
		lg_send_msg(lg, c, c->sent);
}

static uint64_t lg_due(const struct lg *lg, uint64_t g)
{
	return lg->t0 + (uint64_t)((double)g * 1e9 / lg->o.rate);
}

static void lg_timer_arm(struct lg *lg, uint64_t at)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)(at / NSEC);
	its.it_value.tv_nsec = (long)(at % NSEC);
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;	/* zero would disarm */
	if (timerfd_settime(lg->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		perror("loadgen: timerfd_settime");
		exit(2);
	}
}

/*
 * Rate mode: global message g is sender g % S's number g / S, due at
 * t0 + g / rate, so the senders take turns evenly.
 */
static void lg_rate_tick(struct lg *lg)
{
	uint64_t total = (uint64_t)lg->o.senders * lg->o.messages;
	uint64_t expirations, now = now_ns();
	uint32_t burst = 0;

	if (read(lg->tfd, &expirations, sizeof(expirations)) < 0 &&
	    errno != EAGAIN) {
		perror("loadgen: timerfd read");
		exit(2);
	}
	while (lg->g_next < total && lg_due(lg, lg->g_next) <= now &&
	       burst++ < LG_BURST_MAX) {
		uint32_t s = (uint32_t)(lg->g_next % lg->o.senders);
		uint32_t n = (uint32_t)(lg->g_next / lg->o.senders);
		struct lg_conn *c = &lg->conns[s];

		if (lg_sender_alive(lg, s) && lg_pending(c) < LG_WBUF_MAX)
			lg_send_msg(lg, c, n);
		else
			lg->skipped++;
		lg->g_next++;
	}
	if (lg->g_next < total) {
		uint64_t due = lg_due(lg, lg->g_next);

		lg_timer_arm(lg, due > now ? due : now + 1);
	}
}

/* Parses "b <sender> <n> <t_ns>" exactly. */
static bool lg_parse_body(const char *p, uint64_t *v)
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

static bool lg_bit_test_set(uint8_t *map, uint64_t bit)
{
	uint8_t mask = (uint8_t)(1u << (bit & 7));
	bool was = map[bit >> 3] & mask;

	map[bit >> 3] |= mask;
	return was;
}

static uint32_t lg_us(uint64_t from, uint64_t to)
{
	uint64_t us = to > from ? (to - from) / 1000 : 0;

	return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* Records one unique delivery's latencies in k (kind or instance). */
static void lg_record(struct lg_kstats *k, const struct lg_conn *c,
		      uint64_t now, uint64_t t_sent)
{
	if (k->deliveries < k->cap) {
		k->lat_us[k->deliveries] = lg_us(t_sent, now);
		if (c->rx_ns)
			k->rx_lat_us[k->rx_lats++] = lg_us(t_sent, c->rx_ns);
	}
	k->deliveries++;
}

/*
 * One delivery of payload v = (sender, n, t_ns) to connection c: checks
 * range, room, duplicates and each sender's order, records the latency for
 * c's kind and c's instance.
 */
static void lg_deliver(struct lg *lg, struct lg_conn *c, const uint64_t *v)
{
	struct lg_kstats *k = lg_kind(lg, c), *ki = lg_inst(lg, c);
	uint64_t now, cs, bit;
	uint32_t s, n;

	if (v[0] >= lg->o.senders || v[1] >= lg->o.messages ||
	    !lg->running || lg->conns[v[0]].room != c->room) {
		k->bogus++;
		ki->bogus++;
		return;
	}
	s = (uint32_t)v[0];
	n = (uint32_t)v[1];
	cs = (uint64_t)c->idx * lg->o.senders + s;
	bit = cs * lg->o.messages + n;
	if (lg_bit_test_set(lg->seen, bit)) {
		k->duplicated++;
		ki->duplicated++;
		return;
	}
	now = now_ns();
	if (n + 1 < lg->next_n[cs]) {
		k->reordered++;
		ki->reordered++;
	} else {
		lg->next_n[cs] = n + 1;
	}
	lg_record(k, c, now, v[2]);
	lg_record(ki, c, now, v[2]);
	lg->deliveries++;
	lg->t_last_delivery = now;
	lg->t_progress = now;
	if (!lg_bit_test_set(lg->committed_map,
			     (uint64_t)s * lg->o.messages + n)) {
		/* Commit + NOTIFY path; the rest of the latency is fan-out. */
		lg->first_at_ms[lg->committed] =
			v[2] > lg->t0 ? (uint32_t)((v[2] - lg->t0) / 1000000) :
					0;
		lg->first_lat_us[lg->committed++] =
			lg_us(v[2], c->rx_ns ? c->rx_ns : now);
	}
	if (!c->sse && (uint32_t)c->idx == s) {
		c->confirmed++;
		lg_sender_pump(lg, c);
	}
}

static void lg_on_room_line(struct lg *lg, struct lg_conn *c, const char *line)
{
	const char *sep = strstr(line + lg_room_of(lg, c)->prefix_len, ": ");
	uint64_t v[3];

	if (c->history > 0) {
		c->history--;
		lg->k[LG_TCP].history_skipped++;
		lg_inst(lg, c)->history_skipped++;
		return;
	}
	if (!sep || !lg_parse_body(sep + 2, v))
		return;		/* somebody else's chatter */
	lg_deliver(lg, c, v);
}

/*
 * The data line of an SSE "message" event: a JSON object whose "content" is
 * the payload. The stream starts with the room's history: messages sent
 * before this run started (t_ns < t0) are skipped, not counted.
 */
static void lg_sse_message(struct lg *lg, struct lg_conn *c, const char *json)
{
	static const char key[] = "\"content\":\"";
	const char *p = strstr(json, key), *end;
	char body[LG_CONTENT_MAX];
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
	if (!lg_parse_body(body, v))
		return;
	if (!lg->running || v[2] < lg->t0) {
		lg->k[LG_SSE].history_skipped++;
		lg_inst(lg, c)->history_skipped++;
		return;
	}
	lg_deliver(lg, c, v);
}

/* One line of an event stream (only single-line data fields are used). */
static void lg_sse_line(struct lg *lg, struct lg_conn *c, char *line,
			size_t len)
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
	if (strncmp(line, "data:", 5))
		return;			/* id:, retry: */
	v = line + 5 + (line[5] == ' ');
	if (c->ev == LG_EV_MESSAGE) {
		lg_sse_message(lg, c, v);
	} else if (c->ev == LG_EV_SYSTEM) {
		lg->k[LG_SSE].system_events++;
	} else if (c->ev == LG_EV_RESET) {
		lg->k[LG_SSE].resets++;
		lg_show(lg, c, "stream reset", v);
	}
}

static void lg_on_error_line(struct lg *lg, struct lg_conn *c,
			     const char *line)
{
	struct lg_room *r = lg_room_of(lg, c);

	if (c->state == LG_CREATING && !strcmp(line, r->exists)) {
		/* A previous run left the room: join it instead. */
		lg_set_state(lg, c, LG_JOINING);
		lg_command(lg, c, "/join", r->name);
		return;
	}
	lg->errors++;
	lg_show(lg, c, "server says", line);
	switch (c->state) {
	case LG_NICKING:
	case LG_CREATING:
	case LG_JOINING:
		lg_close(lg, c, LG_FAILED, "command refused");
		return;
	case LG_JOINED:
		if ((uint32_t)c->idx < lg->o.senders && lg->running) {
			/* The server refused one of our messages. */
			c->refused++;
			lg->refused++;
			lg_sender_pump(lg, c);
		}
		return;
	default:
		return;
	}
}

static void lg_on_line(struct lg *lg, struct lg_conn *c, char *line,
		       size_t len)
{
	struct lg_room *r = lg_room_of(lg, c);

	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (!strncmp(line, "[system] error:", 15)) {
		lg_on_error_line(lg, c, line);
		return;
	}
	if (!strcmp(line, "[system] server shutting down")) {
		lg->shutdown_seen = true;
		return;
	}
	switch (c->state) {
	case LG_WELCOME:
		if (++c->welcome < 3)
			return;
		if (lg->o.nick_prefix) {
			char nick[64];

			snprintf(nick, sizeof(nick), "%s%d", lg->o.nick_prefix,
				 c->idx);
			lg_set_state(lg, c, LG_NICKING);
			lg_command(lg, c, "/nick", nick);
		} else {
			lg_set_state(lg, c, LG_READY);
		}
		return;
	case LG_NICKING:
		if (!strncmp(line, "[system] You are now ", 21))
			lg_set_state(lg, c, LG_READY);
		return;
	case LG_CREATING:
	case LG_JOINING:
		if (strncmp(line, r->joined, r->joined_len))
			return;
		c->history = strtol(line + r->joined_len, NULL, 10);
		if (c->history < 0)
			c->history = 0;
		lg_set_state(lg, c, LG_JOINED);
		if ((uint32_t)c->idx < lg->o.rooms && !r->ready) {
			r->ready = true;
			lg->rooms_ready++;
		}
		return;
	case LG_JOINED:
		if (!strncmp(line, r->prefix, r->prefix_len)) {
			lg_on_room_line(lg, c, line);
		} else if (line[0] == '[' && strncmp(line, "[system] ", 9)) {
			/* Another room's line: not a member there. */
			lg->k[LG_TCP].bogus++;
			lg_inst(lg, c)->bogus++;
			lg_show(lg, c, "line of another room", line);
		}
		return;
	default:
		return;
	}
}

/*
 * One loadgen thread reads 1,000 sockets per broadcast, so the time it reads
 * a line includes its own backlog. The kernel's receive timestamp (of the
 * last segment read, CLOCK_REALTIME) does not: it is kept in c->rx_ns.
 */
static ssize_t lg_recv(struct lg *lg, struct lg_conn *c, size_t room)
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
		rt = (int64_t)ts.tv_sec * (int64_t)NSEC + ts.tv_nsec;
		if (rt > lg->rt_offset)
			c->rx_ns = (uint64_t)(rt - lg->rt_offset);
	}
	return n;
}

/* The HTTP answer to an SSE subscriber's setup request (body: NUL-ended). */
static void lg_http_answer(struct lg *lg, struct lg_conn *c, int status,
			   const char *body)
{
	static const char sid_key[] = "\"session_id\":\"";
	char why[256];
	const char *p;

	if (status != 200 || (c->state == LG_JOINING &&
			      !strstr(body, "\"success\":true"))) {
		lg->errors++;
		snprintf(why, sizeof(why), "HTTP %d: %.200s", status, body);
		lg_close(lg, c, LG_FAILED, why);
		return;
	}
	switch (c->state) {
	case LG_NICKING:
		p = strstr(body, sid_key);
		if (!p || strspn(p + sizeof(sid_key) - 1, "0123456789abcdef") !=
				  32) {
			snprintf(why, sizeof(why), "no session_id in %.200s",
				 body);
			lg_close(lg, c, LG_FAILED, why);
			return;
		}
		memcpy(c->sid, p + sizeof(sid_key) - 1, 32);
		c->sid[32] = '\0';
		lg_sse_join(lg, c);	/* the room exists: see lg_setup_pump */
		return;
	case LG_JOINING:
		lg_sse_subscribe(lg, c);
		return;
	default:
		return;
	}
}

/*
 * SSE subscriber during setup: handles one complete HTTP response at the
 * start of rbuf. Returns true when it consumed one and c is still open.
 * A 200 to the GET has no length: the rest of the connection is the stream.
 */
static bool lg_http_response(struct lg *lg, struct lg_conn *c)
{
	char *hend, *line, *eol, body[LG_RBUF_SIZE];
	size_t hlen, clen = 0, total;
	bool has_len = false;
	int status;

	c->rbuf[c->rlen] = '\0';
	hend = strstr(c->rbuf, "\r\n\r\n");
	if (!hend) {
		if (c->rlen >= sizeof(c->rbuf) - 1)
			lg_lose(lg, c, "HTTP response headers too long");
		return false;
	}
	hlen = (size_t)(hend + 4 - c->rbuf);
	if (strncmp(c->rbuf, "HTTP/1.1 ", 9) &&
	    strncmp(c->rbuf, "HTTP/1.0 ", 9)) {
		lg_lose(lg, c, "not an HTTP response");
		return false;
	}
	status = atoi(c->rbuf + 9);
	for (line = strstr(c->rbuf, "\r\n") + 2; line < hend; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (!strncasecmp(line, "content-length:", 15)) {
			clen = strtoul(line + 15, NULL, 10);
			has_len = true;
		} else if (!strncasecmp(line, "transfer-encoding:", 18)) {
			lg_lose(lg, c, "Transfer-Encoding not supported");
			return false;
		}
	}
	if (c->state == LG_SUBSCRIBING && status == 200) {
		c->rlen -= hlen;
		memmove(c->rbuf, c->rbuf + hlen, c->rlen);
		c->ev = LG_EV_MESSAGE;
		lg_set_state(lg, c, LG_JOINED);
		return true;
	}
	if (!has_len) {
		lg_lose(lg, c, "HTTP response without Content-Length");
		return false;
	}
	total = hlen + clen;
	if (total > sizeof(c->rbuf) - 1) {
		lg_lose(lg, c, "HTTP response too long");
		return false;
	}
	if (c->rlen < total)
		return false;
	memcpy(body, c->rbuf + hlen, clen);
	body[clen] = '\0';
	c->rlen -= total;
	memmove(c->rbuf, c->rbuf + total, c->rlen);
	lg_http_answer(lg, c, status, body);
	return c->fd >= 0;
}

static void lg_on_readable(struct lg *lg, struct lg_conn *c)
{
	int reads;

	for (reads = 0; reads < LG_READS_PER_EVENT && c->fd >= 0; reads++) {
		size_t room = sizeof(c->rbuf) - 1 - c->rlen;
		ssize_t n = lg_recv(lg, c, room);
		char *p, *nl, *end;
		size_t left;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			lg_lose(lg, c, n < 0 ? strerror(errno) :
					       "closed by server");
			return;
		}
		c->rlen += (size_t)n;
		while (c->sse && c->state != LG_JOINED && c->rlen > 0 &&
		       lg_http_response(lg, c))
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
				lg_sse_line(lg, c, p, (size_t)(nl - p));
			else
				lg_on_line(lg, c, p, (size_t)(nl - p));
			p = nl + 1;
		}
		if (c->fd < 0)
			return;
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

static void lg_on_event(struct lg *lg, struct lg_conn *c, uint32_t events)
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
			lg_close(lg, c, LG_FAILED, strerror(err));
			return;
		}
		c->want_out = true;	/* registered as EPOLLOUT only */
		if (c->sse) {
			lg_update_events(lg, c, false);
			if (c->fd >= 0)
				lg_sse_connect(lg, c);
			return;
		}
		lg_set_state(lg, c, LG_WELCOME);
		lg_update_events(lg, c, false);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		lg_on_readable(lg, c);
	if (c->fd >= 0 && (events & EPOLLOUT)) {
		lg_flush(lg, c);
		if ((uint32_t)c->idx < lg->o.senders)
			lg_sender_pump(lg, c);
	}
}

static long lg_proc_status_kb(long pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long kb = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			kb = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* User + system CPU seconds of process pid, from /proc (-1: unknown). */
static double lg_proc_cpu_s(long pid)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;
	long tck = sysconf(_SC_CLK_TCK);
	size_t n;
	FILE *f;

	if (pid <= 0 || tck <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After "pid (comm) ": state is field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)tck;
}

/* Descriptors the server has open (-1: unknown). */
static long lg_count_fds(long pid)
{
	char path[64];
	struct dirent *de;
	long n = 0;
	DIR *d;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void lg_raise_nofile(rlim_t need)
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

static int lg_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in ms. */
static double lg_pct_ms(const uint32_t *v, size_t n, double q)
{
	size_t rank = (size_t)(q * (double)n);

	if (n == 0)
		return 0;
	if ((double)rank < q * (double)n)
		rank++;		/* ceil without libm */
	if (rank > n)
		rank = n;
	if (rank < 1)
		rank = 1;
	return v[rank - 1] / 1000.0;
}

static bool lg_sending_over(const struct lg *lg)
{
	uint32_t s, m = lg->o.messages;

	if (lg->o.rate > 0)
		return lg->g_next >= (uint64_t)lg->o.senders * m;
	for (s = 0; s < lg->o.senders; s++)
		if (lg_sender_alive(lg, s) && lg->conns[s].sent < m)
			return false;
	return true;
}

static void lg_progress(struct lg *lg, uint64_t now)
{
	if (!lg->o.verbose || now - lg->t_report < NSEC)
		return;
	lg->t_report = now;
	if (!lg->running)
		fprintf(stderr, "loadgen: setup %.1fs: joined %" PRIu32
			" (tcp %" PRIu32 ", sse %" PRIu32 ") failed %" PRIu32
			" busy %" PRIu32 "\n",
			secs(now - lg->t_setup), lg->joined,
			lg->k[LG_TCP].joined, lg->k[LG_SSE].joined,
			lg->failed, lg->busy);
	else
		fprintf(stderr, "loadgen: run %.1fs: sent %" PRIu64
			" committed %" PRIu64 " deliveries %" PRIu64 "\n",
			secs(now - lg->t0), lg->sent, lg->committed,
			lg->deliveries);
}

enum lg_phase { LG_BEFORE, LG_AFTER_SETUP, LG_END };

/* Memory, CPU time and descriptors of each --server-pid, from /proc. */
static void lg_sample_servers(struct lg *lg, enum lg_phase phase)
{
	uint32_t i;

	for (i = 0; i < lg->o.npids; i++) {
		struct lg_server *sv = &lg->srv[i];
		long pid = lg->o.server_pid[i];
		long rss = lg_proc_status_kb(pid, "VmRSS");
		double cpu = lg_proc_cpu_s(pid);

		switch (phase) {
		case LG_BEFORE:
			*sv = (struct lg_server){ rss, -1, -1, -1,
						  cpu, -1, -1, -1 };
			break;
		case LG_AFTER_SETUP:
			sv->rss_setup = rss;
			sv->cpu_setup = cpu;
			break;
		case LG_END:
			sv->rss_end = rss;
			sv->rss_peak = lg_proc_status_kb(pid, "VmHWM");
			sv->fds = lg_count_fds(pid);
			sv->cpu_end = cpu;
			break;
		}
	}
}

static void lg_start_run(struct lg *lg)
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

		c->member = c->state == LG_JOINED;
		if (c->member)
			lg_room_of(lg, c)->members++;
	}
	lg->t0 = now_ns();
	lg->t_progress = lg->t0;
	lg_sample_servers(lg, LG_AFTER_SETUP);
	if (lg->o.rate > 0) {
		lg_timer_arm(lg, lg->t0);
		return;
	}
	for (i = 0; i < lg->o.senders; i++)
		lg_sender_pump(lg, &lg->conns[i]);
}

/* One pass of the loop's stop rules; sets stop_reason when done. */
static void lg_check(struct lg *lg, uint64_t now, uint64_t setup_deadline)
{
	uint32_t i;

	if (lg_interrupted) {
		lg->stop_reason = "interrupted";
		return;
	}
	if (!lg->running) {
		if (now >= setup_deadline) {
			for (i = 0; i < lg->nconn; i++)
				if (lg->conns[i].state != LG_JOINED &&
				    lg->conns[i].state != LG_FAILED &&
				    lg->conns[i].state != LG_CLOSED)
					lg_close(lg, &lg->conns[i], LG_FAILED,
						 "setup timeout");
		}
		for (i = 0; i < lg->o.rooms; i++) {
			if (lg->conns[i].state == LG_FAILED) {
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
		lg_start_run(lg);
		return;
	}
	if (lg_sending_over(lg) && lg->deliveries >= lg->expected) {
		lg->stop_reason = "complete";
		return;
	}
	if (now - lg->t0 >= (uint64_t)(lg->o.duration_max * 1e9)) {
		lg->stop_reason = "duration-max reached";
		return;
	}
	if ((lg->o.rate == 0 || lg_sending_over(lg)) &&
	    now - lg->t_progress >= (uint64_t)(lg->o.idle_timeout * 1e9)) {
		lg->stop_reason = "idle timeout (no progress)";
		return;
	}
	if (lg->joined == 0)
		lg->stop_reason = "all connections lost";
}

static void lg_loop(struct lg *lg)
{
	struct epoll_event evs[LG_EVENTS_MAX];
	uint64_t setup_deadline;

	lg->t_setup = now_ns();
	lg->t_report = lg->t_setup;
	setup_deadline = lg->t_setup + (uint64_t)(lg->o.setup_timeout * 1e9);
	lg_setup_pump(lg);
	while (!lg->stop_reason) {
		int i, n = epoll_wait(lg->epfd, evs, LG_EVENTS_MAX,
				      LG_TICK_MS);
		uint64_t now;

		if (n < 0 && errno != EINTR) {
			perror("loadgen: epoll_wait");
			exit(2);
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.u64 == LG_TIMER_TAG)
				lg_rate_tick(lg);
			else
				lg_on_event(lg, &lg->conns[evs[i].data.u64],
					    evs[i].events);
		}
		if (!lg->running)
			lg_setup_pump(lg);
		now = now_ns();
		lg_progress(lg, now);
		lg_check(lg, now, setup_deadline);
	}
}

static long long lg_json_int(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* A blocking HTTP connection for the end of the run (-1: failed). */
static int lg_http_open(const struct lg *lg, int h)
{
	struct timeval tv = { .tv_sec = LG_HTTP_TIMEOUT_S };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&lg->o.http_addr[h],
		    sizeof(lg->o.http_addr[h])) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * One request on a blocking keep-alive connection: its status (-1: failed,
 * the connection is then unusable) and its body, NUL-ended, in body.
 */
static int lg_http_call(int fd, const char *req, char *body, size_t cap)
{
	char buf[4096], *hend, *line, *eol;
	size_t have = 0, hlen, clen;
	int reads;

	body[0] = '\0';
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		return -1;
	/* Bounded: each read adds bytes or waits at most the timeout. */
	for (reads = 0; reads < 64 && have < sizeof(buf) - 1; reads++) {
		ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);

		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		hend = strstr(buf, "\r\n\r\n");
		if (!hend)
			continue;
		if (strncmp(buf, "HTTP/1.", 7) || have < 12)
			return -1;
		hlen = (size_t)(hend + 4 - buf);
		clen = SIZE_MAX;
		for (line = strstr(buf, "\r\n") + 2; line < hend;
		     line = eol + 2) {
			eol = strstr(line, "\r\n");
			if (!strncasecmp(line, "content-length:", 15))
				clen = strtoul(line + 15, NULL, 10);
		}
		if (clen == SIZE_MAX || hlen + clen > sizeof(buf) - 1)
			return -1;
		if (have < hlen + clen)
			continue;
		snprintf(body, cap, "%.*s", (int)clen, buf + hlen);
		return atoi(buf + 9);
	}
	return -1;
}

static double lg_json_num(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

/*
 * GET /health once per HTTP port, blocking with timeouts (the run is over):
 * each server's own count of sessions and SSE streams while every client is
 * connected, and its NOTIFY queue usage.
 */
static void lg_get_health(struct lg *lg)
{
	char req[128], body[1024];
	uint32_t h;

	for (h = 0; h < lg->o.nhttp; h++) {
		struct lg_health *hl = &lg->health[h];
		int fd = lg_http_open(lg, (int)h);

		*hl = (struct lg_health){ -1, -1, -1, -1 };
		if (fd < 0)
			continue;
		snprintf(req, sizeof(req),
			 "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n",
			 lg->host_hdr[h]);
		hl->status = lg_http_call(fd, req, body, sizeof(body));
		close(fd);
		hl->sessions = lg_json_int(body, "sessions");
		hl->streams = lg_json_int(body, "streams");
		hl->queue = lg_json_num(body, "notify_queue_usage");
	}
}

/*
 * POST /api/disconnect for every session we opened, on one keep-alive
 * connection per HTTP port, so that they do not linger for
 * session_idle_timeout_s into the next scenario. Bounded by LG_TEARDOWN_S
 * in all.
 */
static void lg_teardown(struct lg *lg)
{
	uint64_t t = now_ns(), deadline = t + LG_TEARDOWN_S * NSEC;
	char req[256], body[256], json[96];
	int fds[LG_INST_MAX], status;
	uint32_t i;

	for (i = 0; i < LG_INST_MAX; i++)
		fds[i] = -1;
	for (i = lg->ntcp; i < lg->nconn && now_ns() < deadline; i++) {
		struct lg_conn *c = &lg->conns[i];
		int *fd = &fds[c->inst];

		if (!c->sid[0])
			continue;
		lg->teardown_tried++;
		if (*fd < 0)
			*fd = lg_http_open(lg, c->inst);
		if (*fd < 0)
			continue;
		snprintf(json, sizeof(json), "{\"session_id\":\"%s\"}", c->sid);
		snprintf(req, sizeof(req),
			 "POST /api/disconnect HTTP/1.1\r\nHost: %s\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 lg->host_hdr[c->inst], strlen(json), json);
		status = lg_http_call(*fd, req, body, sizeof(body));
		if (status == 200) {
			lg->teardown_done++;
			continue;
		}
		if (status < 0) {
			close(*fd);
			*fd = -1;
		}
		if (lg->shown < LG_SHOWN_MAX) {
			lg->shown++;
			fprintf(stderr, "loadgen: sse conn %" PRIu32
				": disconnect: HTTP %d %s\n", i, status, body);
		}
	}
	for (i = 0; i < LG_INST_MAX; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	lg->teardown_s = secs(now_ns() - t);
}

static void lg_print_lat(const char *name, uint32_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), lg_cmp_u32);
	printf("%s: p50 %.3f p90 %.3f p99 %.3f max %.3f (n %zu)\n", name,
	       lg_pct_ms(v, n, 0.50), lg_pct_ms(v, n, 0.90),
	       lg_pct_ms(v, n, 0.99), lg_pct_ms(v, n, 1.0), n);
}

static size_t lg_nlat(const struct lg_kstats *k)
{
	return k->deliveries < k->cap ? (size_t)k->deliveries : (size_t)k->cap;
}

/* Latencies of all kinds together, then of each kind (sorts them all). */
static void lg_print_lats(struct lg *lg, const char *base, bool rx)
{
	char name[40];
	size_t n[LG_KINDS], total = 0, off = 0;
	uint32_t *all;
	int i;

	for (i = 0; i < LG_KINDS; i++) {
		n[i] = rx ? (size_t)lg->k[i].rx_lats : lg_nlat(&lg->k[i]);
		total += n[i];
	}
	all = lg_calloc(total, sizeof(*all));
	for (i = 0; i < LG_KINDS; i++) {
		memcpy(all + off, rx ? lg->k[i].rx_lat_us : lg->k[i].lat_us,
		       n[i] * sizeof(*all));
		off += n[i];
	}
	snprintf(name, sizeof(name), "%s_ms", base);
	lg_print_lat(name, all, total);
	free(all);
	if (!lg->o.sse_clients)
		return;
	for (i = 0; i < LG_KINDS; i++) {
		snprintf(name, sizeof(name), "%s_%s_ms", base,
			 lg_kind_name[i]);
		lg_print_lat(name, rx ? lg->k[i].rx_lat_us : lg->k[i].lat_us,
			     n[i]);
	}
}

static uint64_t lg_lost(const struct lg_kstats *k)
{
	return k->expected > k->deliveries ? k->expected - k->deliveries : 0;
}

/* What each kind and instance should have received: its members' rooms. */
static void lg_expect(struct lg *lg)
{
	uint32_t i;

	for (i = 0; i < lg->nconn; i++) {
		const struct lg_conn *c = &lg->conns[i];
		uint64_t due = lg->rooms[c->room].sent;

		if (!c->member)
			continue;
		lg_kind(lg, c)->expected += due;
		lg_inst(lg, c)->expected += due;
	}
}

static void lg_print_deliveries(const struct lg *lg, const char *name,
				const struct lg_kstats *k)
{
	printf("%s: expected %" PRIu64 ", received %" PRIu64 ", lost %" PRIu64
	       ", duplicated %" PRIu64 ", reordered %" PRIu64
	       ", unparsable %" PRIu64 ", history skipped %" PRIu64,
	       name, k->expected, k->deliveries, lg_lost(k), k->duplicated,
	       k->reordered, k->bogus, k->history_skipped);
	if (lg->o.sse_clients)
		printf(", stream resets %" PRIu64, k->resets);
	printf("\n");
	if (k == &lg->k[LG_SSE])
		printf("sse_events: system %" PRIu64 ", heartbeats %" PRIu64
		       "\n", k->system_events, k->heartbeats);
}

/*
 * The messages that took longest to reach their first receiver, with when
 * they were sent: stalls show up as a cluster at one time.
 */
static void lg_print_worst(const struct lg *lg)
{
	enum { WORST = 8 };
	uint64_t top[WORST];
	uint64_t i;
	int n = 0, j;

	for (i = 0; i < lg->committed; i++) {
		/* Latency in the high half, index in the low half. */
		uint64_t key = (uint64_t)lg->first_lat_us[i] << 32 | i;

		if (n == WORST && key <= top[WORST - 1])
			continue;
		if (n < WORST)
			n++;
		for (j = n - 1; j > 0 && top[j - 1] < key; j--)
			top[j] = top[j - 1];
		top[j] = key;
	}
	printf("latency_first_worst:");
	for (j = 0; j < n; j++) {
		uint32_t k = (uint32_t)top[j];

		printf(" %.1f ms at %.3f s", lg->first_lat_us[k] / 1000.0,
		       lg->first_at_ms[k] / 1000.0);
		if (j + 1 < n)
			printf(",");
	}
	printf("\n");
}

static void lg_print_server(const char *name, const struct lg_server *sv)
{
	printf("%s: before %ld after_setup %ld end %ld peak %ld\n", name,
	       sv->rss_before, sv->rss_setup, sv->rss_end, sv->rss_peak);
}

static void lg_print_health(const char *name, const struct lg_health *h)
{
	printf("%s: status %d sessions %lld streams %lld "
	       "notify_queue_usage %g\n", name, h->status, h->sessions,
	       h->streams, h->queue);
}

/*
 * With several instances (--ports): for each, its connections, deliveries
 * and latencies (of the receivers connected to it, senders included), the
 * server process and what its /health said.
 */
static void lg_print_instances(struct lg *lg)
{
	char name[48];
	uint32_t i;

	for (i = 0; i < lg->o.ninst; i++) {
		struct lg_kstats *k = &lg->inst[i];

		printf("instance_i%" PRIu32 ": port %u", i + 1,
		       ntohs(lg->o.addr[i].sin_port));
		if (lg->o.nhttp == lg->o.ninst)
			printf(" http %u", ntohs(lg->o.http_addr[i].sin_port));
		if (lg->o.npids == lg->o.ninst)
			printf(" pid %ld", lg->o.server_pid[i]);
		printf(", connections planned %" PRIu32 ", joined %" PRIu64
		       ", failed %" PRIu32 ", lost during run %" PRIu64
		       ", connected at end %" PRIu32 "\n", k->planned,
		       k->members, k->failed, k->dropped, k->joined);
		snprintf(name, sizeof(name), "deliveries_i%" PRIu32, i + 1);
		lg_print_deliveries(lg, name, k);
		snprintf(name, sizeof(name), "latency_i%" PRIu32 "_ms", i + 1);
		lg_print_lat(name, k->lat_us, lg_nlat(k));
		snprintf(name, sizeof(name), "latency_rx_i%" PRIu32 "_ms",
			 i + 1);
		lg_print_lat(name, k->rx_lat_us, (size_t)k->rx_lats);
	}
}

/*
 * Latency lines: latency_ms is from the send to when loadgen read the line;
 * latency_rx_ms to the kernel's receive timestamp, without loadgen's own
 * backlog; latency_first_ms per message, to its first receiver (the commit
 * and NOTIFY path; the rest is the server's fan-out), and
 * latency_first_worst lists the slowest of those with their send times.
 * With SSE subscribers each comes for all receivers, then _tcp_ and _sse_
 * alone; with several instances, for the receivers of each (_i1_ ...).
 * Rates are over "elapsed": from the first send to the last send or
 * delivery.
 */
static int lg_report(struct lg *lg)
{
	uint64_t end = lg->t_last_send > lg->t_last_delivery ?
			       lg->t_last_send : lg->t_last_delivery;
	uint64_t planned = (uint64_t)lg->o.senders * lg->o.messages;
	struct lg_kstats all = { .members = lg->members };
	const char *verdict = "PASS";
	double elapsed, send_span, cpu_setup = 0, cpu_run = 0;
	bool cpu_known = lg->o.npids > 0;
	struct rusage ru;
	uint64_t lost;
	int i;

	lg_expect(lg);

	for (i = 0; i < LG_KINDS; i++) {
		const struct lg_kstats *k = &lg->k[i];

		all.expected += k->expected;
		all.deliveries += k->deliveries;
		all.duplicated += k->duplicated;
		all.reordered += k->reordered;
		all.bogus += k->bogus;
		all.history_skipped += k->history_skipped;
		all.resets += k->resets;
	}
	lost = lg_lost(&all);
	if (!lg->running)
		end = lg->t0 = now_ns();
	if (end < lg->t0)
		end = lg->t0;
	elapsed = secs(end - lg->t0);
	send_span = lg->t_last_send > lg->t0 ? secs(lg->t_last_send - lg->t0) :
					       0;

	printf("connections: planned %" PRIu32 " (%" PRIu32 " receivers + %"
	       PRIu32 " senders", lg->nconn, lg->o.clients, lg->o.senders);
	if (lg->o.sse_clients)
		printf(" over TCP, %" PRIu32 " SSE subscribers",
		       lg->o.sse_clients);
	printf("), joined %" PRIu64 ", failed %" PRIu32
	       ", lost during run %" PRIu64 "\n",
	       lg->members, lg->failed, lg->dropped);
	if (lg->o.sse_clients)
		for (i = 0; i < LG_KINDS; i++)
			printf("connections_%s: planned %" PRIu32
			       ", joined %" PRIu64 ", failed %" PRIu32
			       ", lost during run %" PRIu64
			       ", connected at end %" PRIu32 "\n",
			       lg_kind_name[i], lg->k[i].planned,
			       lg->k[i].members, lg->k[i].failed,
			       lg->k[i].dropped, lg->k[i].joined);
	printf("setup: %.3f s", secs((lg->t_hold ? lg->t_hold : lg->t0) -
				    lg->t_setup));
	if (lg->o.hold > 0)
		printf(" (then %.3f s idle)",
		       lg->t_hold ? secs(lg->t0 - lg->t_hold) : 0.0);
	printf("\n");
	printf("messages: planned %" PRIu64 ", sent %" PRIu64
	       ", committed %" PRIu64 ", refused %" PRIu64 ", skipped %"
	       PRIu64 "\n", planned, lg->sent, lg->committed, lg->refused,
	       lg->skipped);
	lg_print_deliveries(lg, "deliveries", &all);
	if (lg->o.sse_clients)
		for (i = 0; i < LG_KINDS; i++) {
			char name[32];

			snprintf(name, sizeof(name), "deliveries_%s",
				 lg_kind_name[i]);
			lg_print_deliveries(lg, name, &lg->k[i]);
		}
	printf("elapsed: %.3f s (%s)\n", elapsed, lg->stop_reason);
	printf("rates: send %.1f msg/s, committed %.1f msg/s, "
	       "deliveries %.1f/s\n",
	       send_span > 0 ? lg->sent / send_span : 0,
	       elapsed > 0 ? lg->committed / elapsed : 0,
	       elapsed > 0 ? all.deliveries / elapsed : 0);
	lg_print_lats(lg, "latency", false);
	lg_print_lats(lg, "latency_rx", true);
	lg_print_worst(lg);	/* before lg_print_lat sorts them */
	lg_print_lat("latency_first_ms", lg->first_lat_us, lg->committed);
	if (lg->o.ninst > 1)
		lg_print_instances(lg);
	for (i = 0; i < (int)lg->o.npids; i++) {
		const struct lg_server *sv = &lg->srv[i];
		char name[48];

		if (sv->cpu_before < 0 || sv->cpu_setup < 0 || sv->cpu_end < 0)
			cpu_known = false;
		cpu_setup += sv->cpu_setup - sv->cpu_before;
		cpu_run += sv->cpu_end - sv->cpu_setup;
		if (lg->o.npids == 1) {
			lg_print_server("server_rss_kb", sv);
			printf("server_fds: %ld at end\n", sv->fds);
			continue;
		}
		snprintf(name, sizeof(name), "server_rss_kb_i%d", i + 1);
		lg_print_server(name, sv);
		printf("server_fds_i%d: %ld at end\n", i + 1, sv->fds);
		printf("server_cpu_s_i%d: before_run %.2f run %.2f\n", i + 1,
		       sv->cpu_setup - sv->cpu_before,
		       sv->cpu_end - sv->cpu_setup);
	}
	if (cpu_known)
		printf("server_cpu_s: before_run %.2f run %.2f%s\n", cpu_setup,
		       cpu_run, lg->o.npids > 1 ? " (all servers)" : "");
	if (lg->o.http_given || lg->o.sse_clients) {
		for (i = 0; i < (int)lg->o.nhttp; i++) {
			char name[48];

			if (lg->o.nhttp == 1)
				snprintf(name, sizeof(name), "server_health");
			else
				snprintf(name, sizeof(name),
					 "server_health_i%d", i + 1);
			lg_print_health(name, &lg->health[i]);
		}
	}
	if (lg->o.sse_clients)
		printf("teardown: %" PRIu32 " of %" PRIu32 " sessions "
		       "disconnected in %.3f s\n", lg->teardown_done,
		       lg->teardown_tried, lg->teardown_s);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("loadgen_cpu: user %.3f s sys %.3f s\n",
		       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	printf("server_errors: %" PRIu64 "%s\n", lg->errors,
	       lg->shutdown_seen ? " (server shutting down seen)" : "");

	if (lg->failed > 0 || !lg->running)
		verdict = "FAIL (connections failed)";
	else if (lost > 0 || lg->sent < planned)
		verdict = "FAIL (messages lost or not sent)";
	else if (all.duplicated > 0 || all.reordered > 0)
		verdict = "FAIL (duplicated or reordered deliveries)";
	else if (all.resets > 0)
		verdict = "FAIL (stream reset)";
	printf("result: %s\n", verdict);
	fflush(stdout);
	return strcmp(verdict, "PASS") ? 1 : 0;
}

/*
 * API mode (--api-requests N): what one JSON API request costs. Every
 * request with a session first resumes it from the database; GET
 * /api/rooms has no session and is the baseline without that lookup.
 */
enum lg_api_kind { LG_API_MESSAGE, LG_API_COMMAND, LG_API_ROOMS, LG_API_KINDS };

static const char *const lg_api_name[LG_API_KINDS] = {
	"message", "command", "rooms",
};

/* A blocking keep-alive connection to one HTTP port. */
struct lg_api_conn {
	int fd;				/* -1: (re)open before the next use */
	uint32_t opened;		/* connections made to this port */
	char *buf;			/* the answer being read */
	size_t cap;
};

/* Per request kind, and per kind and instance. */
struct lg_api_stats {
	uint64_t count;			/* requests issued */
	uint64_t failures;		/* no answer, non-200 or a bad answer */
	uint64_t non200;		/* of which answered, not with 200 */
	uint64_t busy_ns;		/* time spent in them, all of them */
	uint32_t *lat_us;		/* latency of each successful one */
	size_t n;
};

/* One of the slowest requests. */
struct lg_api_slow {
	uint32_t lat_us;
	uint32_t at_ms;			/* started, ms after the first */
	uint32_t index;			/* i-th of its kind */
	uint8_t kind, inst;
};

struct lg_api {
	struct lg_api_conn conn[LG_INST_MAX];
	struct lg_api_stats k[LG_API_KINDS];
	struct lg_api_stats ki[LG_API_KINDS][LG_INST_MAX];
	struct lg_api_slow worst[LG_API_WORST];
	int nworst;
	char sid[33];
	char room_key[80];		/* "name":"<room>" in /api/rooms */
	int64_t seq_first, seq_last;	/* /api/message answers */
	uint64_t seq_errors;		/* seq not above the previous one */
	uint64_t t0, t_end;		/* the measured requests */
	const char *stop_reason;
	int td_status;			/* POST /api/disconnect: status */
	uint64_t td_ns;			/* and duration */
};

/* (Re)opens connection h; false when it cannot. */
static bool lg_api_open(const struct lg *lg, struct lg_api_conn *c, int h)
{
	struct timeval tv = { .tv_sec = LG_API_TIMEOUT_S };
	int one = 1;

	if (c->fd >= 0)
		return true;
	c->fd = lg_http_open(lg, h);
	if (c->fd < 0)
		return false;
	c->opened++;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return true;
}

/* Whether header line [line, eol) has "close" in it, in any case. */
static bool lg_has_close(const char *line, const char *eol)
{
	for (; line + 5 <= eol; line++)
		if (!strncasecmp(line, "close", 5))
			return true;
	return false;
}

static void lg_api_drop(struct lg_api_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/*
 * One request on port h's keep-alive connection (opened if need be): the
 * answer's status (-1: none, the connection is then closed), its body
 * NUL-ended in *body, and the time from before the request went out to
 * after the answer's last byte came in, in *ns. Bounded: at most
 * LG_API_TIMEOUT_S per receive, and it gives up once a receive returns
 * after LG_API_TIMEOUT_S in all.
 */
static int lg_api_call(struct lg *lg, struct lg_api *a, int h,
		       const char *method, const char *target,
		       const char *json, const char **body, uint64_t *ns)
{
	struct lg_api_conn *c = &a->conn[h];
	char req[1024], *hend, *line, *eol;
	size_t have = 0, hlen = 0, clen = SIZE_MAX, len;
	bool keep = true;
	uint64_t t, t_stop;
	int n, status = -1;

	*body = "";
	*ns = 0;
	if (json)
		n = snprintf(req, sizeof(req),
			     "%s %s HTTP/1.1\r\nHost: %s\r\n"
			     "Content-Type: application/json\r\n"
			     "Content-Length: %zu\r\n\r\n%s",
			     method, target, lg->host_hdr[h], strlen(json),
			     json);
	else
		n = snprintf(req, sizeof(req),
			     "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", method,
			     target, lg->host_hdr[h]);
	if (n < 0 || (size_t)n >= sizeof(req) || !lg_api_open(lg, c, h))
		return -1;
	len = (size_t)n;
	if (!c->buf) {
		c->cap = 65536;
		c->buf = lg_calloc(c->cap, 1);
	}
	t = now_ns();
	t_stop = t + LG_API_TIMEOUT_S * NSEC;
	if (send(c->fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		goto fail;
	for (;;) {
		ssize_t r;

		if (have + 1 >= c->cap) {
			if (c->cap >= LG_API_RESP_MAX)
				goto fail;
			c->cap *= 2;
			c->buf = realloc(c->buf, c->cap);
			if (!c->buf) {
				fprintf(stderr, "loadgen: out of memory\n");
				exit(2);
			}
		}
		r = recv(c->fd, c->buf + have, c->cap - 1 - have, 0);
		if (r < 0 && errno == EINTR && !lg_interrupted)
			continue;
		if (r <= 0)
			goto fail;
		/* Look for the header's end from just before the new bytes. */
		if (!hlen) {
			size_t from = have > 3 ? have - 3 : 0;

			c->buf[have + (size_t)r] = '\0';
			hend = strstr(c->buf + from, "\r\n\r\n");
			if (hend)
				hlen = (size_t)(hend + 4 - c->buf);
		}
		have += (size_t)r;
		c->buf[have] = '\0';
		if (hlen && clen == SIZE_MAX) {
			if (strncmp(c->buf, "HTTP/1.", 7) || hlen < 16)
				goto fail;
			status = atoi(c->buf + 9);
			hend = c->buf + hlen - 4;
			for (line = strstr(c->buf, "\r\n") + 2; line < hend;
			     line = eol + 2) {
				eol = strstr(line, "\r\n");
				if (!strncasecmp(line, "content-length:", 15))
					clen = strtoul(line + 15, NULL, 10);
				else if (!strncasecmp(line, "connection:", 11) &&
					 lg_has_close(line + 11, eol))
					keep = false;
				else if (!strncasecmp(line,
						      "transfer-encoding:", 18))
					goto fail;
			}
			if (clen == SIZE_MAX || clen > LG_API_RESP_MAX)
				goto fail;
		}
		if (hlen && have >= hlen + clen)
			break;
		if (now_ns() >= t_stop)
			goto fail;
	}
	*ns = now_ns() - t;
	if (have != hlen + clen)
		goto fail;	/* more than one answer: out of step */
	if (!keep)
		lg_api_drop(c);
	*body = c->buf + hlen;
	return status;
fail:
	*ns = now_ns() - t;
	lg_api_drop(c);
	return -1;
}

/* Prints one of the first problems (they repeat). */
static void lg_api_show(struct lg *lg, const char *what, int h, int status,
			const char *body)
{
	if (lg->shown >= LG_SHOWN_MAX)
		return;
	lg->shown++;
	fprintf(stderr, "loadgen: api %s (instance %d): %s%d: %.200s\n", what,
		h + 1, status < 0 ? "no answer, status " : "HTTP ", status,
		body);
}

/* Keeps the slowest requests, slowest first. */
static void lg_api_slow(struct lg_api *a, const struct lg_api_slow *s)
{
	int j;

	if (a->nworst == LG_API_WORST &&
	    s->lat_us <= a->worst[LG_API_WORST - 1].lat_us)
		return;
	if (a->nworst < LG_API_WORST)
		a->nworst++;
	for (j = a->nworst - 1; j > 0 && a->worst[j - 1].lat_us < s->lat_us;
	     j--)
		a->worst[j] = a->worst[j - 1];
	a->worst[j] = *s;
}

/* Request i of kind k on port h; checks its answer and records it. */
static void lg_api_one(struct lg *lg, struct lg_api *a, int k, uint32_t i,
		       int h)
{
	struct lg_api_stats *st = &a->k[k], *si = &a->ki[k][h];
	char json[256], what[48];
	const char *body;
	uint64_t ns, t = now_ns();
	int64_t seq = -1;
	bool ok, shown = false;
	int status;

	switch (k) {
	case LG_API_MESSAGE:
		snprintf(json, sizeof(json),
			 "{\"session_id\":\"%s\",\"room\":\"%s\","
			 "\"content\":\"api %" PRIu32 "\"}", a->sid,
			 lg->o.room, i);
		status = lg_api_call(lg, a, h, "POST", "/api/message", json,
				     &body, &ns);
		ok = status == 200 && strstr(body, "\"success\":true");
		seq = ok ? lg_json_int(body, "seq") : -1;
		if (ok && seq <= a->seq_last) {
			a->seq_errors++;
			snprintf(what, sizeof(what), "message %" PRIu32
				 ": seq %" PRId64 " after %" PRId64, i, seq,
				 a->seq_last);
			lg_api_show(lg, what, h, status, body);
			ok = false;
			shown = true;
		}
		if (seq > 0) {
			if (a->seq_first < 0)
				a->seq_first = seq;
			if (seq > a->seq_last)
				a->seq_last = seq;
		}
		break;
	case LG_API_COMMAND:
		snprintf(json, sizeof(json),
			 "{\"session_id\":\"%s\",\"command\":\"/help\"}",
			 a->sid);
		status = lg_api_call(lg, a, h, "POST", "/api/command", json,
				     &body, &ns);
		ok = status == 200 && strstr(body, "\"success\":true");
		break;
	default:
		status = lg_api_call(lg, a, h, "GET", "/api/rooms", NULL,
				     &body, &ns);
		ok = status == 200 && strstr(body, a->room_key);
		break;
	}
	st->count++;
	si->count++;
	st->busy_ns += ns;
	si->busy_ns += ns;
	if (!ok) {
		st->failures++;
		si->failures++;
		if (status >= 0 && status != 200) {
			st->non200++;
			si->non200++;
		}
		snprintf(what, sizeof(what), "%s %" PRIu32, lg_api_name[k], i);
		if (!shown)
			lg_api_show(lg, what, h, status, body);
		return;
	}
	st->lat_us[st->n++] = lg_us(0, ns);
	si->lat_us[si->n++] = lg_us(0, ns);
	lg_api_slow(a, &(struct lg_api_slow){
		.lat_us = lg_us(0, ns), .at_ms = lg_us(a->t0, t) / 1000,
		.index = i, .kind = (uint8_t)k, .inst = (uint8_t)h });
}

/*
 * POST /api/connect and /api/command "/create ROOM" (or /join ROOM when a
 * previous run left it) on port 0. False when the session or the room
 * could not be had.
 */
static bool lg_api_setup(struct lg *lg, struct lg_api *a)
{
	static const char sid_key[] = "\"session_id\":\"";
	char json[256];
	const char *body, *p;
	uint64_t ns;
	int status;

	snprintf(json, sizeof(json), "{\"nickname\":\"api%s\"}", lg->nick_tag);
	status = lg_api_call(lg, a, 0, "POST", "/api/connect", json, &body,
			     &ns);
	p = status == 200 ? strstr(body, sid_key) : NULL;
	if (!p || strspn(p + sizeof(sid_key) - 1, "0123456789abcdef") != 32) {
		lg_api_show(lg, "connect", 0, status, body);
		printf("api_setup: connect %d in %.3f ms: no session\n",
		       status, ns / 1e6);
		return false;
	}
	memcpy(a->sid, p + sizeof(sid_key) - 1, 32);
	a->sid[32] = '\0';
	printf("api_setup: connect %d in %.3f ms (nickname api%s)", status,
	       ns / 1e6, lg->nick_tag);
	snprintf(json, sizeof(json),
		 "{\"session_id\":\"%s\",\"command\":\"/create %s\"}", a->sid,
		 lg->o.room);
	status = lg_api_call(lg, a, 0, "POST", "/api/command", json, &body,
			     &ns);
	printf(", create %d in %.3f ms", status, ns / 1e6);
	if (status == 200 && strstr(body, "already exists")) {
		snprintf(json, sizeof(json),
			 "{\"session_id\":\"%s\",\"command\":\"/join %s\"}",
			 a->sid, lg->o.room);
		status = lg_api_call(lg, a, 0, "POST", "/api/command", json,
				     &body, &ns);
		printf(" (exists), join %d in %.3f ms", status, ns / 1e6);
	}
	printf("\n");
	if (status != 200 || !strstr(body, "\"success\":true")) {
		lg_api_show(lg, "create/join", 0, status, body);
		return false;
	}
	return true;
}

/* POST /api/disconnect on port 0. */
static bool lg_api_teardown(struct lg *lg, struct lg_api *a)
{
	char json[96];
	const char *body;

	snprintf(json, sizeof(json), "{\"session_id\":\"%s\"}", a->sid);
	a->td_status = lg_api_call(lg, a, 0, "POST", "/api/disconnect", json,
				   &body, &a->td_ns);
	if (a->td_status != 200 || !strstr(body, "\"success\":true")) {
		lg_api_show(lg, "disconnect", 0, a->td_status, body);
		return false;
	}
	return true;
}

static void lg_api_print(const char *name, struct lg_api_stats *st)
{
	char lat[48];

	printf("%s: count %" PRIu64 ", failures %" PRIu64 " (non-200 %" PRIu64
	       "), rate %.1f req/s\n", name, st->count, st->failures,
	       st->non200, st->busy_ns ? st->count * 1e9 / st->busy_ns : 0.0);
	snprintf(lat, sizeof(lat), "%s_ms", name);
	lg_print_lat(lat, st->lat_us, st->n);
}

/*
 * api_<kind>: requests issued, failures (no answer, not 200, or a bad
 * answer: no "success":true, a seq not above the previous one, our room
 * missing from /api/rooms) and the rate one client doing only these
 * requests one after the other would get (count over the time spent in
 * them); api_<kind>_ms: latency of the successful ones, from before the
 * request is sent to the answer's last byte; with several ports also per
 * instance (_i1 ...).
 */
static int lg_api_report(struct lg *lg, struct lg_api *a, bool setup_ok,
			 bool teardown_ok)
{
	uint64_t total = 0, failures = 0, planned;
	uint32_t opened = 0;
	double span = a->t_end > a->t0 ? secs(a->t_end - a->t0) : 0;
	double cpu = 0;
	bool cpu_known = lg->o.npids > 0;
	const char *verdict = "PASS";
	char name[48];
	struct rusage ru;
	uint32_t h;
	int k, j;

	planned = (uint64_t)lg->o.api_requests * LG_API_KINDS;
	for (k = 0; k < LG_API_KINDS; k++) {
		snprintf(name, sizeof(name), "api_%s", lg_api_name[k]);
		lg_api_print(name, &a->k[k]);
		total += a->k[k].count;
		failures += a->k[k].failures;
		for (h = 0; lg->o.nhttp > 1 && h < lg->o.nhttp; h++) {
			snprintf(name, sizeof(name), "api_%s_i%" PRIu32,
				 lg_api_name[k], h + 1);
			lg_api_print(name, &a->ki[k][h]);
		}
	}
	printf("api_seq: first %" PRId64 " last %" PRId64 " errors %" PRIu64
	       "\n", a->seq_first, a->seq_last, a->seq_errors);
	printf("api_worst:");
	for (j = 0; j < a->nworst; j++)
		printf(" %.1f ms %s #%" PRIu32 " on i%d at %.3f s%s",
		       a->worst[j].lat_us / 1000.0,
		       lg_api_name[a->worst[j].kind], a->worst[j].index,
		       a->worst[j].inst + 1, a->worst[j].at_ms / 1000.0,
		       j + 1 < a->nworst ? "," : "");
	printf("\n");
	for (h = 0; h < lg->o.nhttp; h++)
		opened += a->conn[h].opened;
	printf("api_total: requests %" PRIu64 " of %" PRIu64 ", failures %"
	       PRIu64 ", elapsed %.3f s (%s), rate %.1f req/s, "
	       "connections opened %" PRIu32 " (ports %" PRIu32 ")\n",
	       total, planned, failures, span, a->stop_reason,
	       span > 0 ? total / span : 0, opened, lg->o.nhttp);
	if (a->sid[0])
		printf("api_teardown: disconnect %d in %.3f ms\n",
		       a->td_status, a->td_ns / 1e6);
	for (j = 0; j < (int)lg->o.npids; j++) {
		const struct lg_server *sv = &lg->srv[j];

		if (sv->cpu_setup < 0 || sv->cpu_end < 0) {
			cpu_known = false;
			continue;
		}
		cpu += sv->cpu_end - sv->cpu_setup;
		if (lg->o.npids > 1)
			printf("server_cpu_s_i%d: run %.2f\n", j + 1,
			       sv->cpu_end - sv->cpu_setup);
	}
	if (cpu_known)
		printf("server_cpu_s: run %.2f%s, %.1f us per request\n", cpu,
		       lg->o.npids > 1 ? " (all servers)" : "",
		       total ? cpu * 1e6 / total : 0.0);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("loadgen_cpu: user %.3f s sys %.3f s\n",
		       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	if (!setup_ok)
		verdict = "FAIL (no session or room)";
	else if (total < planned)
		verdict = "FAIL (requests not made)";
	else if (failures > 0)
		verdict = "FAIL (failed requests)";
	else if (!teardown_ok)
		verdict = "FAIL (disconnect)";
	printf("result: %s\n", verdict);
	fflush(stdout);
	return strcmp(verdict, "PASS") ? 1 : 0;
}

/*
 * Round i sends one request of each kind in turn (message, command,
 * rooms); request k of round i goes to port (i + k) % P. With several
 * ports, consecutive requests so land on different instances (as behind a
 * round-robin proxy) and each kind visits every instance equally often.
 * Stops at --duration-max or on a signal; requests not made are failures.
 */
static int lg_api_run(struct lg *lg)
{
	struct lg_api *a = lg_calloc(1, sizeof(*a));
	uint32_t n = lg->o.api_requests, per = n / lg->o.nhttp + 1, i, h;
	bool setup_ok, teardown_ok = false;
	uint64_t deadline;
	int k, rc;

	a->seq_first = -1;
	a->seq_last = 0;
	a->stop_reason = "complete";
	snprintf(a->room_key, sizeof(a->room_key), "\"name\":\"%s\"",
		 lg->o.room);
	for (k = 0; k < LG_API_KINDS; k++) {
		a->k[k].lat_us = lg_calloc(n, sizeof(uint32_t));
		for (h = 0; h < lg->o.nhttp; h++)
			a->ki[k][h].lat_us = lg_calloc(per, sizeof(uint32_t));
	}
	for (h = 0; h < LG_INST_MAX; h++)
		a->conn[h].fd = -1;
	/* Every port's connection first: a refused one fails early. */
	for (h = 0; h < lg->o.nhttp; h++) {
		if (!lg_api_open(lg, &a->conn[h], (int)h)) {
			fprintf(stderr, "loadgen: api: cannot connect to %s: "
				"%s\n", lg->host_hdr[h], strerror(errno));
			printf("result: FAIL (cannot connect)\n");
			return 1;
		}
	}
	setup_ok = lg_api_setup(lg, a);
	lg_sample_servers(lg, LG_AFTER_SETUP);
	a->t0 = now_ns();
	deadline = a->t0 + (uint64_t)(lg->o.duration_max * 1e9);
	for (i = 0; setup_ok && i < n; i++) {
		if (lg_interrupted) {
			a->stop_reason = "interrupted";
			break;
		}
		if (now_ns() >= deadline) {
			a->stop_reason = "duration-max reached";
			break;
		}
		for (k = 0; k < LG_API_KINDS; k++)
			lg_api_one(lg, a, k, i,
				   (int)((i + (uint32_t)k) % lg->o.nhttp));
		if (lg->o.verbose && (i + 1) % 500 == 0)
			fprintf(stderr, "loadgen: api %.1fs: %" PRIu32
				" rounds\n", secs(now_ns() - a->t0), i + 1);
	}
	a->t_end = now_ns();
	lg_sample_servers(lg, LG_END);
	if (!setup_ok)
		a->stop_reason = "setup failed";
	if (a->sid[0])
		teardown_ok = lg_api_teardown(lg, a);
	rc = lg_api_report(lg, a, setup_ok, teardown_ok);
	for (h = 0; h < LG_INST_MAX; h++) {
		lg_api_drop(&a->conn[h]);
		free(a->conn[h].buf);
	}
	for (k = 0; k < LG_API_KINDS; k++) {
		free(a->k[k].lat_us);
		for (h = 0; h < lg->o.nhttp; h++)
			free(a->ki[k][h].lat_us);
	}
	free(a);
	return rc;
}

static void lg_usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen [options]\n"
		"  --host ADDR          server IPv4 address (127.0.0.1)\n"
		"  --port PORT          server TCP port (9001)\n"
		"  --ports P1,P2,...    TCP ports of several instances (at most\n"
		"                       16); receivers round-robin over them,\n"
		"                       senders too unless --sender-port\n"
		"  --sender-port PORT   every sender on this one of --ports\n"
		"  --http-port PORT     server HTTP port (3001); given: also\n"
		"                       report GET /health at the end\n"
		"  --http-ports H1,...  HTTP port of each of --ports (SSE\n"
		"                       subscribers spread like receivers;\n"
		"                       GET /health of each at the end)\n"
		"  --clients N          receive-only clients (10)\n"
		"  --sse-clients N      receive-only HTTP sessions, each on\n"
		"                       an SSE stream of the room (0)\n"
		"  --senders S          sending clients, also members (1)\n"
		"  --messages M         messages per sender (100)\n"
		"  --rate R             total msg/s, 0 = flat out (0)\n"
		"  --window W           flat out: unconfirmed per sender (64)\n"
		"  --room NAME          room to create or join (bench)\n"
		"  --rooms N            N rooms NAME_0 .. NAME_<N-1>, at most\n"
		"                       --senders (1)\n"
		"  --nick-prefix P      /nick P<i> before joining (off)\n"
		"  --concurrency C      connects/joins in flight (64)\n"
		"  --setup-timeout SEC  hard stop for connects and joins (60)\n"
		"  --duration-max SEC   hard stop for the run phase (60)\n"
		"  --idle-timeout SEC   stop after SEC without progress (10)\n"
		"  --hold SEC           stay connected and idle SEC between\n"
		"                       setup and sending (0)\n"
		"  --server-pid P[,P..] report each server's RSS and CPU\n"
		"                       from /proc (one, or one per --ports)\n"
		"  --verbose            progress lines on stderr every second\n"
		"  --api-requests N     API mode, instead of the above: one\n"
		"                       HTTP session (POST /api/connect, then\n"
		"                       /create --room), then N requests of\n"
		"                       each kind, one after another: POST\n"
		"                       /api/message, POST /api/command /help,\n"
		"                       GET /api/rooms (no session); one\n"
		"                       keep-alive connection per --http-ports\n"
		"                       port, request k of round i on port\n"
		"                       (i + k) %% P; then POST /api/disconnect.\n"
		"                       Reports count, failures, latency and\n"
		"                       rate per kind; --duration-max bounds\n"
		"                       the requests; --server-pid: one, or\n"
		"                       one per --http-ports port\n"
		"Sender s is connection s, in room s %% N, on instance s %% I\n"
		"(I ports) or on --sender-port. Receiver j (TCP and SSE each\n"
		"counted from 0) is in room j %% N on instance (j / N) %% I,\n"
		"so that every room has receivers on every instance. Every\n"
		"member of a room receives all its messages.\n"
		"SSE subscribers are named sse<i>_<pid>; they skip the\n"
		"stream's history (messages sent before this run).\n"
		"Exit 0: every member got every message once, in order (API\n"
		"mode: every request answered 200, seq increasing);\n"
		"1: loss, duplicates, reordering or failed connections (API\n"
		"mode: a failed request);\n"
		"2: usage or system error.\n");
}

static double lg_num(const char *opt, const char *arg, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= min && v <= max)) {
		fprintf(stderr, "loadgen: --%s: want a number in [%g, %g]\n",
			opt, min, max);
		exit(2);
	}
	return v;
}

static uint32_t lg_count(const char *opt, const char *arg, double min,
			 double max)
{
	double v = lg_num(opt, arg, min, max);

	if (v != (double)(uint64_t)v) {
		fprintf(stderr, "loadgen: --%s: expected an integer\n", opt);
		exit(2);
	}
	return (uint32_t)v;
}

static void lg_fail(const char *msg)
{
	fprintf(stderr, "loadgen: %s\n", msg);
	exit(2);
}

/* A comma-separated list of at most max numbers in [min, vmax]. */
static uint32_t lg_list(const char *opt, const char *arg, long *out,
			uint32_t max, double min, double vmax)
{
	char buf[256], *tok, *save = NULL;
	uint32_t n = 0;

	if (strlen(arg) >= sizeof(buf)) {
		fprintf(stderr, "loadgen: --%s: too long\n", opt);
		exit(2);
	}
	strcpy(buf, arg);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == max) {
			fprintf(stderr, "loadgen: --%s: at most %" PRIu32
				" values\n", opt, max);
			exit(2);
		}
		out[n++] = (long)lg_count(opt, tok, min, vmax);
	}
	if (n == 0) {
		fprintf(stderr, "loadgen: --%s: empty list\n", opt);
		exit(2);
	}
	return n;
}

static void lg_parse_args(struct lg_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "ports", required_argument, NULL, 'L' },
		{ "sender-port", required_argument, NULL, 'Q' },
		{ "http-port", required_argument, NULL, 'T' },
		{ "http-ports", required_argument, NULL, 'W' },
		{ "clients", required_argument, NULL, 'c' },
		{ "sse-clients", required_argument, NULL, 'e' },
		{ "hold", required_argument, NULL, 'o' },
		{ "senders", required_argument, NULL, 's' },
		{ "messages", required_argument, NULL, 'm' },
		{ "rate", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'w' },
		{ "room", required_argument, NULL, 'R' },
		{ "rooms", required_argument, NULL, 'N' },
		{ "nick-prefix", required_argument, NULL, 'n' },
		{ "concurrency", required_argument, NULL, 'C' },
		{ "setup-timeout", required_argument, NULL, 'S' },
		{ "duration-max", required_argument, NULL, 'd' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "server-pid", required_argument, NULL, 'P' },
		{ "api-requests", required_argument, NULL, 'A' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1";
	long ports[LG_INST_MAX] = { 9001 }, http_ports[LG_INST_MAX] = { 3001 };
	long sender_port = 0;
	bool port_given = false, ports_given = false;
	struct in_addr ip;
	uint32_t i;
	int opt;

	*o = (struct lg_opts){
		.room = "bench", .clients = 10, .senders = 1,
		.messages = 100, .window = 64, .concurrency = 64,
		.duration_max = 60, .setup_timeout = 60, .idle_timeout = 10,
		.ninst = 1, .nhttp = 1, .sender_inst = -1, .rooms = 1,
	};
	while ((opt = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (opt) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			ports[0] = lg_count("port", optarg, 1, 65535);
			o->ninst = 1;
			port_given = true;
			break;
		case 'L':
			o->ninst = lg_list("ports", optarg, ports, LG_INST_MAX,
					   1, 65535);
			ports_given = true;
			break;
		case 'Q':
			sender_port = lg_count("sender-port", optarg, 1,
					       65535);
			break;
		case 'T':
			http_ports[0] = lg_count("http-port", optarg, 1, 65535);
			o->nhttp = 1;
			o->http_given = true;
			break;
		case 'W':
			o->nhttp = lg_list("http-ports", optarg, http_ports,
					   LG_INST_MAX, 1, 65535);
			o->http_given = true;
			break;
		case 'c':
			o->clients = lg_count("clients", optarg, 0, 1e6);
			break;
		case 'e':
			o->sse_clients = lg_count("sse-clients", optarg, 0,
						  1e6);
			break;
		case 'o':
			o->hold = lg_num("hold", optarg, 0, 86400);
			break;
		case 's':
			o->senders = lg_count("senders", optarg, 1, 1e5);
			break;
		case 'm':
			o->messages = lg_count("messages", optarg, 1, 1e9);
			break;
		case 'r':
			o->rate = lg_num("rate", optarg, 0, 1e9);
			break;
		case 'w':
			o->window = lg_count("window", optarg, 1, 1e6);
			break;
		case 'R':
			o->room = optarg;
			break;
		case 'N':
			o->rooms = lg_count("rooms", optarg, 1, 1e5);
			break;
		case 'n':
			o->nick_prefix = optarg;
			break;
		case 'C':
			o->concurrency = lg_count("concurrency", optarg, 1,
						  1e5);
			break;
		case 'S':
			o->setup_timeout = lg_num("setup-timeout", optarg, 0.1,
						  86400);
			break;
		case 'd':
			o->duration_max = lg_num("duration-max", optarg, 0.1,
						 86400);
			break;
		case 'i':
			o->idle_timeout = lg_num("idle-timeout", optarg, 0.1,
						 86400);
			break;
		case 'P':
			o->npids = lg_list("server-pid", optarg, o->server_pid,
					   LG_INST_MAX, 1, 4194304);
			break;
		case 'A':
			o->api_requests = lg_count("api-requests", optarg, 1,
						   1e6);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			lg_usage(stdout);
			exit(0);
		default:
			lg_usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		lg_usage(stderr);
		exit(2);
	}
	if (port_given && ports_given)
		lg_fail("give --port or --ports, not both");
	if (o->api_requests) {
		/* Only the HTTP ports matter. */
		if (o->npids > 1 && o->npids != o->nhttp)
			lg_fail("--server-pid: one, or one per port of "
				"--http-ports");
	} else {
		if (o->nhttp > 1 && o->nhttp != o->ninst)
			lg_fail("--http-ports: one per port of --ports");
		if (o->sse_clients && o->ninst > 1 && o->nhttp != o->ninst)
			lg_fail("--sse-clients with --ports needs "
				"--http-ports");
		if (o->npids > 1 && o->npids != o->ninst)
			lg_fail("--server-pid: one, or one per port of "
				"--ports");
	}
	for (i = 0; sender_port && i < o->ninst; i++)
		if (ports[i] == sender_port && o->sender_inst < 0)
			o->sender_inst = (int)i;
	if (sender_port && o->sender_inst < 0)
		lg_fail("--sender-port: not one of --port/--ports");
	if (inet_pton(AF_INET, host, &ip) != 1) {
		fprintf(stderr, "loadgen: --host: not an IPv4 address: %s\n",
			host);
		exit(2);
	}
	for (i = 0; i < o->ninst; i++) {
		o->addr[i].sin_family = AF_INET;
		o->addr[i].sin_addr = ip;
		o->addr[i].sin_port = htons((uint16_t)ports[i]);
	}
	for (i = 0; i < o->nhttp; i++) {
		o->http_addr[i] = o->addr[0];
		o->http_addr[i].sin_port = htons((uint16_t)http_ports[i]);
	}
	if (strlen(o->room) < 1 || strlen(o->room) > 50 ||
	    strspn(o->room, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
		    strlen(o->room)) {
		fprintf(stderr, "loadgen: --room: 1-50 of a-z 0-9 _ -\n");
		exit(2);
	}
	if (o->rooms > o->senders)
		lg_fail("--rooms: at most --senders (each room has a sender)");
	if (o->rooms > 1 && strlen(o->room) + 1 + 5 > 50)
		lg_fail("--room: at most 44 bytes with --rooms");
	if (o->nick_prefix && strlen(o->nick_prefix) > 24) {
		fprintf(stderr, "loadgen: --nick-prefix: at most 24 bytes\n");
		exit(2);
	}
}

/* Room and instance of connection i: see lg_usage. */
static void lg_place(struct lg *lg, struct lg_conn *c)
{
	const struct lg_opts *o = &lg->o;
	uint32_t i = (uint32_t)c->idx, j;

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

	lg->rooms = lg_calloc(lg->o.rooms, sizeof(*lg->rooms));
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
	}
	for (i = 0; i < lg->o.senders; i++)
		lg->rooms[i % lg->o.rooms].senders++;
}

static void lg_init(struct lg *lg, int argc, char **argv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = LG_TIMER_TAG };
	struct sigaction sa = { .sa_handler = lg_on_signal };
	uint64_t tracked;
	uint32_t i;

	memset(lg, 0, sizeof(*lg));
	lg_parse_args(&lg->o, argc, argv);
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
	if (lg->o.api_requests) {
		/* API mode: no TCP clients, no event loop. */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		lg_sample_servers(lg, LG_BEFORE);
		return;
	}
	lg_init_rooms(lg);

	lg->conns = lg_calloc(lg->nconn, sizeof(*lg->conns));
	for (i = 0; i < lg->nconn; i++) {
		struct lg_conn *c = &lg->conns[i];
		/* Most deliveries it can see: its room's senders' messages. */
		uint64_t due;

		c->fd = -1;
		c->idx = (int)i;
		c->sse = i >= lg->ntcp;
		lg_place(lg, c);
		due = (uint64_t)lg_room_of(lg, c)->senders * lg->o.messages;
		lg_kind(lg, c)->cap += due;
		lg_inst(lg, c)->planned++;
		lg_inst(lg, c)->cap += due;
	}
	lg->seen = lg_calloc(tracked / 8 + 1, 1);
	lg->next_n = lg_calloc((size_t)lg->nconn * lg->o.senders,
			       sizeof(*lg->next_n));
	lg->committed_map =
		lg_calloc((uint64_t)lg->o.senders * lg->o.messages / 8 + 1, 1);
	lg->first_lat_us = lg_calloc((size_t)lg->o.senders * lg->o.messages,
				     sizeof(*lg->first_lat_us));
	lg->first_at_ms = lg_calloc((size_t)lg->o.senders * lg->o.messages,
				    sizeof(*lg->first_at_ms));
	/* calloc leaves untouched pages unmapped: pay only for what arrives. */
	for (i = 0; i < LG_KINDS + lg->o.ninst; i++) {
		struct lg_kstats *k = i < LG_KINDS ? &lg->k[i] :
						     &lg->inst[i - LG_KINDS];

		if (k->cap > LG_DELIVERIES_MAX)
			k->cap = LG_DELIVERIES_MAX;
		k->lat_us = lg_calloc(k->cap, sizeof(*k->lat_us));
		k->rx_lat_us = lg_calloc(k->cap, sizeof(*k->rx_lat_us));
	}

	lg_raise_nofile((rlim_t)lg->nconn + 32);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lg->epfd = epoll_create1(EPOLL_CLOEXEC);
	lg->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (lg->epfd < 0 || lg->tfd < 0 ||
	    epoll_ctl(lg->epfd, EPOLL_CTL_ADD, lg->tfd, &ev) < 0) {
		perror("loadgen: epoll/timerfd");
		exit(2);
	}
	lg->rt_offset = lg_clock_offset();
	lg_sample_servers(lg, LG_BEFORE);
}

static void lg_fini(struct lg *lg)
{
	uint32_t i;

	for (i = 0; i < lg->nconn; i++) {
		if (lg->conns[i].fd >= 0)
			close(lg->conns[i].fd);
		free(lg->conns[i].wbuf);
	}
	close(lg->tfd);
	close(lg->epfd);
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
}

int main(int argc, char **argv)
{
	static struct lg lg;
	uint32_t i;
	int rc;

	lg_init(&lg, argc, argv);
	if (lg.o.api_requests) {
		printf("loadgen: api http %s:", inet_ntoa(lg.o.addr[0].sin_addr));
		for (i = 0; i < lg.o.nhttp; i++)
			printf("%s%u", i ? "," : "",
			       ntohs(lg.o.http_addr[i].sin_port));
		printf(" room %s requests %" PRIu32 " per kind (message, "
		       "command /help, rooms)%s\n", lg.o.room,
		       lg.o.api_requests, lg.o.nhttp > 1 ?
		       ", rotating over the ports" : "");
		fflush(stdout);
		return lg_api_run(&lg);
	}
	printf("loadgen: server %s:", inet_ntoa(lg.o.addr[0].sin_addr));
	for (i = 0; i < lg.o.ninst; i++)
		printf("%s%u", i ? "," : "", ntohs(lg.o.addr[i].sin_port));
	if (lg.o.ninst > 1 && lg.o.sender_inst >= 0)
		printf(" (senders on %u)",
		       ntohs(lg.o.addr[lg.o.sender_inst].sin_port));
	printf(" room %s", lg.o.room);
	if (lg.o.rooms > 1)
		printf(" (%" PRIu32 " rooms %s_0..%s_%" PRIu32 ")", lg.o.rooms,
		       lg.o.room, lg.o.room, lg.o.rooms - 1);
	printf(" clients %" PRIu32 " senders %" PRIu32 " messages %" PRIu32
	       " rate %g window %" PRIu32, lg.o.clients, lg.o.senders,
	       lg.o.messages, lg.o.rate, lg.o.window);
	if (lg.o.sse_clients) {
		printf(" sse_clients %" PRIu32 " (http ", lg.o.sse_clients);
		for (i = 0; i < lg.o.nhttp; i++)
			printf("%s%s", i ? "," : "", lg.host_hdr[i]);
		printf(")");
	}
	printf("\n");
	fflush(stdout);
	lg_loop(&lg);
	/* Measured while every client is still connected. */
	lg_sample_servers(&lg, LG_END);
	if (lg.o.http_given || lg.o.sse_clients)
		lg_get_health(&lg);
	lg_teardown(&lg);

	rc = lg_report(&lg);
	lg_fini(&lg);
	return rc;
}
