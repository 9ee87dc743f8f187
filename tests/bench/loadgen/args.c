/*
 * loadgen: the command line (args.h). Every value is checked here, so the
 * rest of loadgen trusts struct args; what the options mean for the run is
 * in the usage text.
 */
#include "args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void args_usage(FILE *f)
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
		"  --rooms N            N rooms NAME_0 .. NAME_<N-1> (1);\n"
		"                       rooms past --senders get no messages\n"
		"  --nick-prefix P      /nick P<i> before joining (off)\n"
		"  --concurrency C      connects/joins in flight (64)\n"
		"  --setup-timeout SEC  hard stop for connects and joins (60)\n"
		"  --duration-max SEC   hard stop for the run phase (60)\n"
		"  --idle-timeout SEC   stop after SEC without progress (10)\n"
		"  --hold SEC           stay connected and idle SEC between\n"
		"                       setup and sending (0)\n"
		"  --server-pid P[,P..] report each server's RSS and CPU\n"
		"                       from /proc (one per --ports; with one\n"
		"                       port, any number: all added up)\n"
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
		"  --proto P            what the senders and the TCP clients\n"
		"                       speak: bd (Baby Discord's line\n"
		"                       protocol), irc (NICK/USER, wait for\n"
		"                       001; JOIN #ROOM, wait for 366;\n"
		"                       PRIVMSG #ROOM :payload; PING gets\n"
		"                       PONG) or nchan (no TCP clients;\n"
		"                       senders POST /pub/ROOM on --http-port,\n"
		"                       pipelined on one keep-alive\n"
		"                       connection each) (bd)\n"
		"  --sse-proto P        what the SSE subscribers speak: bd\n"
		"                       (session, /join, GET /api/messages)\n"
		"                       or nchan (GET /sub/ROOM with Accept:\n"
		"                       text/event-stream) (nchan with\n"
		"                       --proto nchan, else bd); --proto\n"
		"                       irc --sse-proto nchan: two servers\n"
		"                       side by side, the nchan streams only\n"
		"                       connect (no messages reach them)\n"
		"  --server-tree        --server-pid figures include each\n"
		"                       pid's child processes (nginx: master\n"
		"                       and workers)\n"
		"  --reconnect          a member that loses its connection\n"
		"                       during the run comes back: TCP to the\n"
		"                       next of --ports (/nick, /join; the\n"
		"                       history /join shows fills the gap),\n"
		"                       SSE to its HTTP port with\n"
		"                       Last-Event-ID; reports the time until\n"
		"                       every one is back and caught up\n"
		"                       (--proto bd with --nick-prefix)\n"
		"  --kill-pid PID       send PID SIGKILL --kill-at seconds\n"
		"  --kill-at SEC        into the run (the reconnect storm)\n"
		"Sender s is connection s, in room s %% N, on instance s %% I\n"
		"(I ports) or on --sender-port. Receiver j (TCP and SSE each\n"
		"counted from 0) is in room j %% N on instance (j / N) %% I,\n"
		"so that every room has receivers on every instance. Every\n"
		"member of a room receives all its messages (irc: but its\n"
		"own; nchan senders are not members). Without an echo\n"
		"(irc, nchan) a message counts as confirmed for --window\n"
		"when the first other member of its room got it.\n"
		"One --http-port with several --ports: a proxy in front of\n"
		"them takes every SSE subscriber.\n"
		"SSE subscribers are named sse<i>_<pid>; they skip the\n"
		"stream's history (messages sent before this run).\n"
		"Exit 0: every member got every message once, in order (API\n"
		"mode: every request answered 200, seq increasing);\n"
		"1: loss, duplicates, reordering or failed connections (API\n"
		"mode: a failed request);\n"
		"2: usage or system error.\n");
}

static double args_num(const char *opt, const char *arg, double min, double max)
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

static uint32_t args_count(const char *opt, const char *arg, double min,
			   double max)
{
	double v = args_num(opt, arg, min, max);

	if (v != (double)(uint64_t)v) {
		fprintf(stderr, "loadgen: --%s: expected an integer\n", opt);
		exit(2);
	}
	return (uint32_t)v;
}

static void args_fail(const char *msg)
{
	fprintf(stderr, "loadgen: %s\n", msg);
	exit(2);
}

/* A comma-separated list of at most max numbers in [min, vmax]. */
static uint32_t args_list(const char *opt, const char *arg, long *out,
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
		out[n++] = (long)args_count(opt, tok, min, vmax);
	}
	if (n == 0) {
		fprintf(stderr, "loadgen: --%s: empty list\n", opt);
		exit(2);
	}
	return n;
}

static enum args_proto args_proto(const char *opt, const char *arg)
{
	if (!strcmp(arg, "bd"))
		return ARGS_BD;
	if (!strcmp(arg, "irc"))
		return ARGS_IRC;
	if (!strcmp(arg, "nchan"))
		return ARGS_NCHAN;
	fprintf(stderr, "loadgen: --%s: bd, irc or nchan\n", opt);
	exit(2);
}

/* The combinations of --proto, --sse-proto and the modes that exist. */
static void args_check_protos(struct args *o, bool sse_proto_given)
{
	if (!sse_proto_given)
		o->sse_proto = o->proto == ARGS_NCHAN ? ARGS_NCHAN : ARGS_BD;
	if (o->sse_proto == ARGS_IRC)
		args_fail("--sse-proto: bd or nchan");
	if (o->proto == ARGS_NCHAN && o->clients)
		args_fail("--proto nchan: no --clients (nchan has no TCP "
			  "clients; use --sse-clients)");
	if (o->proto == ARGS_NCHAN && o->sse_proto != ARGS_NCHAN)
		args_fail("--proto nchan: --sse-proto nchan");
	if (o->proto != ARGS_BD && o->sse_clients &&
	    o->sse_proto == ARGS_BD)
		args_fail("--sse-proto bd needs --proto bd");
	if (o->api_requests && o->proto != ARGS_BD)
		args_fail("--api-requests: --proto bd only");
	if (o->reconnect && (o->proto != ARGS_BD ||
			     o->sse_proto != ARGS_BD || !o->nick_prefix))
		args_fail("--reconnect: --proto bd with --nick-prefix "
			  "(a TCP client takes its nickname back)");
	if (o->kill_pid && !o->kill_at)
		args_fail("--kill-pid needs --kill-at");
}

void args_parse(struct args *o, int argc, char **argv)
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
		{ "proto", required_argument, NULL, 'X' },
		{ "sse-proto", required_argument, NULL, 'Y' },
		{ "server-tree", no_argument, NULL, 't' },
		{ "reconnect", no_argument, NULL, 'B' },
		{ "kill-pid", required_argument, NULL, 'K' },
		{ "kill-at", required_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1";
	long ports[ARGS_INST_MAX] = { 9001 };
	long http_ports[ARGS_INST_MAX] = { 3001 };
	long sender_port = 0;
	bool port_given = false, ports_given = false;
	bool sse_proto_given = false;
	struct in_addr ip;
	uint32_t i;
	int opt;

	*o = (struct args){
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
			ports[0] = args_count("port", optarg, 1, 65535);
			o->ninst = 1;
			port_given = true;
			break;
		case 'L':
			o->ninst = args_list("ports", optarg, ports,
					     ARGS_INST_MAX, 1, 65535);
			ports_given = true;
			break;
		case 'Q':
			sender_port = args_count("sender-port", optarg, 1,
						 65535);
			break;
		case 'T':
			http_ports[0] = args_count("http-port", optarg, 1,
						   65535);
			o->nhttp = 1;
			o->http_given = true;
			break;
		case 'W':
			o->nhttp = args_list("http-ports", optarg, http_ports,
					     ARGS_INST_MAX, 1, 65535);
			o->http_given = true;
			break;
		case 'c':
			o->clients = args_count("clients", optarg, 0, 1e6);
			break;
		case 'e':
			o->sse_clients = args_count("sse-clients", optarg, 0,
						    1e6);
			break;
		case 'o':
			o->hold = args_num("hold", optarg, 0, 86400);
			break;
		case 's':
			o->senders = args_count("senders", optarg, 1, 1e5);
			break;
		case 'm':
			o->messages = args_count("messages", optarg, 1, 1e9);
			break;
		case 'r':
			o->rate = args_num("rate", optarg, 0, 1e9);
			break;
		case 'w':
			o->window = args_count("window", optarg, 1, 1e6);
			break;
		case 'R':
			o->room = optarg;
			break;
		case 'N':
			o->rooms = args_count("rooms", optarg, 1, 1e5);
			break;
		case 'n':
			o->nick_prefix = optarg;
			break;
		case 'C':
			o->concurrency = args_count("concurrency", optarg, 1,
						    1e5);
			break;
		case 'S':
			o->setup_timeout = args_num("setup-timeout", optarg,
						    0.1, 86400);
			break;
		case 'd':
			o->duration_max = args_num("duration-max", optarg, 0.1,
						   86400);
			break;
		case 'i':
			o->idle_timeout = args_num("idle-timeout", optarg, 0.1,
						   86400);
			break;
		case 'P':
			o->npids = args_list("server-pid", optarg,
					     o->server_pid, ARGS_INST_MAX, 1,
					     4194304);
			break;
		case 'A':
			o->api_requests = args_count("api-requests", optarg, 1,
						     1e6);
			break;
		case 'X':
			o->proto = args_proto("proto", optarg);
			break;
		case 'Y':
			o->sse_proto = args_proto("sse-proto", optarg);
			sse_proto_given = true;
			break;
		case 't':
			o->server_tree = true;
			break;
		case 'B':
			o->reconnect = true;
			break;
		case 'K':
			o->kill_pid = (long)args_count("kill-pid", optarg, 2,
						       4194304);
			break;
		case 'k':
			o->kill_at = args_num("kill-at", optarg, 0.001, 86400);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			args_usage(stdout);
			exit(0);
		default:
			args_usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		args_usage(stderr);
		exit(2);
	}
	if (port_given && ports_given)
		args_fail("give --port or --ports, not both");
	if (o->api_requests) {
		/* Only the HTTP ports matter. */
		if (o->npids > 1 && o->npids != o->nhttp)
			args_fail("--server-pid: one, or one per port of "
				  "--http-ports");
	} else {
		/* One HTTP port with several --ports: a proxy in front. */
		if (o->nhttp > 1 && o->nhttp != o->ninst)
			args_fail("--http-ports: one per port of --ports");
		/* One port (or --proto irc + --sse-proto nchan, two
		 * servers): any number of pids, added up. */
		if (o->npids > 1 && o->ninst > 1 && o->npids != o->ninst)
			args_fail("--server-pid: one, or one per port of "
				  "--ports");
	}
	for (i = 0; sender_port && i < o->ninst; i++)
		if (ports[i] == sender_port && o->sender_inst < 0)
			o->sender_inst = (int)i;
	if (sender_port && o->sender_inst < 0)
		args_fail("--sender-port: not one of --port/--ports");
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
	args_check_protos(o, sse_proto_given);
	if (o->rooms > 1 && strlen(o->room) + 1 + 5 > 50)
		args_fail("--room: at most 44 bytes with --rooms");
	if (o->nick_prefix && strlen(o->nick_prefix) > 24) {
		fprintf(stderr, "loadgen: --nick-prefix: at most 24 bytes\n");
		exit(2);
	}
}
