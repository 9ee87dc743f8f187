/*
 * The state of one loadgen run (struct lg): its connections, rooms,
 * counters and delivery tracking, shared by the modules that drive it.
 * lg.c owns setup and teardown of that state, connection state changes
 * and the delivery checks; sockets are conn.c's.
 */
#ifndef BD_BENCH_LG_LG_H
#define BD_BENCH_LG_LG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "args.h"
#include "server.h"

#define LG_RBUF_SIZE 8192	/* longest server line we keep */
#define LG_SHOWN_MAX 5		/* errors and failures printed */

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

/* Receiver kinds, reported together and separately. */
enum lg_kind { LG_TCP, LG_SSE, LG_KINDS };

extern const char *const lg_kind_name[LG_KINDS];	/* "tcp", "sse" */

/* What a connection speaks (from --proto and --sse-proto). */
enum lg_proto {
	LG_P_LINE,	/* Baby Discord's line protocol */
	LG_P_IRC,	/* IRC client */
	LG_P_BD_SSE,	/* Baby Discord HTTP session + event stream */
	LG_P_NCHAN_SUB,	/* nchan event stream subscriber */
	LG_P_NCHAN_PUB,	/* nchan publisher (a sender; not a member) */
};

/* Where a chunked HTTP body's decoder is (chunk.c). */
enum lg_chunk_state {
	LG_CH_SIZE,	/* hex digits of the chunk size */
	LG_CH_EXT,	/* after the size, up to LF */
	LG_CH_DATA,	/* chunk_left bytes of data */
	LG_CH_DATA_CR,	/* CRLF after the data */
	LG_CH_DATA_LF,
	LG_CH_END,	/* the last (empty) chunk came: the body ended */
};

/* The SSE event being read (its "event:" field). */
enum lg_sse_event { LG_EV_MESSAGE, LG_EV_SYSTEM, LG_EV_RESET, LG_EV_OTHER };

struct lg_conn {
	int fd;			/* socket, -1 when closed */
	int idx;		/* index; sender s is connection s */
	int inst;		/* server: index in --ports/--http-ports */
	uint32_t room;		/* index of its room (see lg_init) */
	bool member;		/* in the room when the run started */
	bool sse;		/* HTTP event stream (a subscriber) */
	enum lg_proto proto;	/* what it speaks */
	bool chunked;		/* SSE: stream body in chunks (a proxy) */
	enum lg_chunk_state ch;	/* chunked: decoder state */
	uint64_t chunk_left;	/* chunked: data bytes left in the chunk */
	char last_id[40];	/* SSE: last "id:" seen (Last-Event-ID) */
	uint32_t http_pending;	/* nchan publisher: answers due */
	bool back;		/* --reconnect: rejoining after a loss */
	uint32_t reconnects;	/* --reconnect: times it came back */
	uint32_t tries;		/* --reconnect: attempts since the loss */
	uint64_t t_lost;	/* --reconnect: when it lost its link */
	uint64_t t_back;	/* --reconnect: when it was back last */
	uint64_t retry_at;	/* --reconnect: next attempt (0: none) */
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

/* Per receiver kind, and per server instance. */
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

/* One room of the run and the server lines that belong to it. */
struct lg_room {
	char name[64];
	char prefix[80];		/* "[room] " */
	size_t prefix_len;
	char joined[100];		/* "[system] You joined room (" */
	size_t joined_len;
	char exists[120];		/* "... room room already exists" */
	char sse[80];			/* "room":"<name>" in SSE data */
	char irc[72];			/* "#<name>": its IRC channel */
	bool ready;			/* its creator is in it */
	uint32_t creator;		/* first connection placed in it */
	int32_t witness[2];		/* its first two members, or -1 */
	uint32_t senders;
	uint64_t members;		/* joined when the run started */
	uint64_t sent;			/* messages sent into it */
};

struct lg {
	struct args o;
	struct lg_conn *conns;
	uint32_t nconn;			/* clients + senders + sse_clients */
	uint32_t ntcp;			/* clients + senders; SSE after them */
	struct lg_kstats k[LG_KINDS];
	struct lg_kstats inst[ARGS_INST_MAX];	/* per server instance */
	struct lg_room *rooms;
	int epfd;			/* conn.c's epoll instance */
	int tfd;			/* rate timer (sender.c) */
	bool running;			/* run phase (after setup) */

	/* Setup. */
	uint32_t next_connect;		/* next connection to start */
	uint32_t *ready_q;		/* ring: ready to join, in turn */
	uint32_t rq_head, rq_len;
	uint32_t busy;			/* setup operations in flight */
	uint32_t joined;		/* connections in the room */
	uint32_t failed;		/* setup failures */
	uint32_t rooms_ready;		/* rooms whose creator is in */

	char host_hdr[ARGS_INST_MAX][64];	/* "Host: ..." value */
	char nick_tag[24];		/* "_<pid>" after SSE nicknames */
	const char *irc_nick;		/* IRC nickname prefix */

	/* --reconnect: the storm (CLOCK_MONOTONIC ns; 0: not yet). */
	uint64_t t_first_lost;		/* first member lost in the run */
	uint64_t t_all_back;		/* every lost member back */
	uint64_t t_caught_up;		/* last catch-up delivery */
	uint32_t away;			/* lost and not back yet */
	uint64_t lost_links[LG_KINDS];	/* losses, per kind */
	uint64_t came_back[LG_KINDS];	/* returns, per kind */
	uint64_t retries;		/* reconnect attempts that failed */
	uint64_t nick_retries;		/* /nick refused: still taken */
	uint64_t history_seen;		/* history lines already delivered */
	uint64_t history_new;		/* history lines that filled a gap */
	bool killed;			/* --kill-pid done */
	uint64_t t_kill;		/* when it was sent */
	uint32_t *retry_q;		/* connections with a retry_at */
	uint32_t nretry;

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
	uint64_t deliveries_rx;		/* of those, to non-senders */
	uint64_t committed;
	uint64_t sent;
	uint64_t refused;
	uint64_t skipped;		/* rate mode: sender gone or blocked */
	uint64_t g_next;		/* rate mode: next global message */
	uint64_t errors;		/* error lines, HTTP errors */
	uint64_t dropped;		/* connections lost during the run */
	uint32_t shown;			/* errors/failures printed */
	bool shutdown_seen;		/* "[system] server restarting, please reconnect" */

	/* Times (CLOCK_MONOTONIC ns). */
	uint64_t t_setup;		/* setup start */
	uint64_t t_hold;		/* everybody in the room (0: not yet) */
	uint64_t t0;			/* run start */
	uint64_t t_last_send;
	uint64_t t_last_delivery;
	uint64_t t_progress;		/* last send or unique delivery */
	uint64_t t_report;		/* last progress line */
	const char *stop_reason;

	struct server_proc srv[ARGS_INST_MAX];	   /* per --server-pid */
	struct server_health health[ARGS_INST_MAX]; /* per HTTP port */
	uint32_t teardown_tried;	/* sessions to disconnect */
	uint32_t teardown_done;		/* answered 200 */
	double teardown_s;
};

/*
 * Parses the command line into lg->o (exits as args_parse() does) and
 * sets up the run: in API mode (--api-requests) only the Host headers and
 * the nickname tag; else also the rooms, every connection (closed, placed
 * in its room and on its instance: sender s in room s % N on instance
 * s % I or --sender-port, receiver j in room j % N on instance
 * (j / N) % I) and the tracking arrays. Exits 2 when there is too much to
 * track.
 */
void lg_init(struct lg *lg, int argc, char **argv);

/* Frees what lg_init() allocated (conn_fini() closes the sockets first). */
void lg_fini(struct lg *lg);

/* c's kind, instance and room counters. */
struct lg_kstats *lg_kind(struct lg *lg, const struct lg_conn *c);
struct lg_kstats *lg_inst(struct lg *lg, const struct lg_conn *c);
struct lg_room *lg_room_of(struct lg *lg, const struct lg_conn *c);

/* The name of state s, for messages. */
const char *lg_state_str(enum lg_state s);

/* Moves c to state s, keeping the busy and joined counts right. */
void lg_set_state(struct lg *lg, struct lg_conn *c, enum lg_state s);

/*
 * Whether one more problem may be printed: only the first LG_SHOWN_MAX
 * are (with 1,000 clients one cause repeats). Counts it when true.
 */
bool lg_may_show(struct lg *lg);

/* Prints "loadgen: <kind> conn <i> (instance <n>): what: text" if allowed. */
void lg_show(struct lg *lg, const struct lg_conn *c, const char *what,
	     const char *text);

/*
 * Parses a payload "b <sender> <n> <t_ns>" exactly into v[0..2]; false
 * when p is anything else.
 */
bool lg_parse_payload(const char *p, uint64_t *v);

/*
 * One delivery of payload v to c: checks range, room, duplicates and each
 * sender's order, records the latency for c's kind and instance, and the
 * first delivery of each message. When c is the payload's TCP sender it
 * counts the echo and lets the sender send more (sender_pump()); so does
 * the room's witness (the first member other than the sender) for
 * senders without an echo (irc, nchan).
 */
void lg_deliver(struct lg *lg, struct lg_conn *c, const uint64_t *v);

/*
 * A history line of payload v shown to c when it came back (--reconnect):
 * delivered as above if c has not seen it yet (a gap filled), else only
 * counted (a history line repeats what was seen: not a double). Messages
 * from before the run are skipped.
 */
void lg_deliver_history(struct lg *lg, struct lg_conn *c, const uint64_t *v);

/*
 * Connections ready to join (setup): lg_set_state() queues each that
 * becomes LG_READY before the run; the setup takes them in turn.
 */
uint32_t lg_ready_count(const struct lg *lg);
struct lg_conn *lg_ready_pop(struct lg *lg);
void lg_ready_push(struct lg *lg, struct lg_conn *c);

/* Whether c is one of the senders (connections 0 .. --senders - 1). */
bool lg_is_sender(const struct lg *lg, const struct lg_conn *c);

#endif
