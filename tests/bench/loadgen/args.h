/*
 * loadgen's command line: options and their checks into struct args, and
 * the usage text. Knows nothing of sockets or of the run.
 */
#ifndef BD_BENCH_LG_ARGS_H
#define BD_BENCH_LG_ARGS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define ARGS_INST_MAX 16	/* --ports, --http-ports, --server-pid */

/* What the servers speak (--proto, --sse-proto). */
enum args_proto {
	ARGS_BD,	/* Baby Discord: line protocol, HTTP API + SSE */
	ARGS_IRC,	/* IRC: NICK/USER, JOIN, PRIVMSG */
	ARGS_NCHAN,	/* nginx + nchan: GET /sub/ROOM, POST /pub/ROOM */
};

/* The options, checked; read-only after args_parse(). */
struct args {
	struct sockaddr_in addr[ARGS_INST_MAX];	     /* TCP, per instance */
	struct sockaddr_in http_addr[ARGS_INST_MAX]; /* HTTP, per instance */
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
	long server_pid[ARGS_INST_MAX];	/* 0: no RSS report */
	uint32_t npids;			/* 1, or one per instance */
	bool verbose;			/* progress lines on stderr */
	uint32_t api_requests;		/* API mode: requests of each kind */
	enum args_proto proto;		/* senders and TCP clients */
	enum args_proto sse_proto;	/* SSE subscribers */
	bool server_tree;		/* pids: add their children's figures */
	bool reconnect;			/* lost members reconnect and rejoin */
	long kill_pid;			/* SIGKILL it at kill_at (0: never) */
	double kill_at;			/* seconds after the run started */
};

/*
 * Fills *a from argv (defaults for what is not given). --help prints the
 * usage on stdout and exits 0; a bad option or value prints why on stderr
 * and exits 2. argv must outlive *a (room and prefix point into it).
 */
void args_parse(struct args *a, int argc, char **argv);

#endif
