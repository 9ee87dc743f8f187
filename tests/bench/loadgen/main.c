/*
 * loadgen: load generator for the Baby Discord TCP line protocol, its HTTP
 * event streams and its JSON API, and, to compare, for IRC servers and
 * nginx + nchan (irc.c, nchan.c). This file only wires the modules: parse,
 * set up, run the chat scenario (or API mode), report. See args.c's usage
 * for what a run does, report.c for what it prints.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>

#include "api.h"
#include "conn.h"
#include "lg.h"
#include "report.h"
#include "server.h"
#include "sse.h"
#include "util.h"

/* The first line of the output: what runs against which servers. */
static void main_banner(const struct lg *lg)
{
	const struct args *o = &lg->o;
	uint32_t i;

	if (o->api_requests) {
		printf("loadgen: api http %s:", inet_ntoa(o->addr[0].sin_addr));
		for (i = 0; i < o->nhttp; i++)
			printf("%s%u", i ? "," : "",
			       ntohs(o->http_addr[i].sin_port));
		printf(" room %s requests %" PRIu32 " per kind (message, "
		       "command /help, rooms)%s\n", o->room,
		       o->api_requests, o->nhttp > 1 ?
		       ", rotating over the ports" : "");
		fflush(stdout);
		return;
	}
	printf("loadgen: server %s:", inet_ntoa(o->addr[0].sin_addr));
	for (i = 0; i < o->ninst; i++)
		printf("%s%u", i ? "," : "", ntohs(o->addr[i].sin_port));
	if (o->ninst > 1 && o->sender_inst >= 0)
		printf(" (senders on %u)",
		       ntohs(o->addr[o->sender_inst].sin_port));
	printf(" room %s", o->room);
	if (o->rooms > 1)
		printf(" (%" PRIu32 " rooms %s_0..%s_%" PRIu32 ")", o->rooms,
		       o->room, o->room, o->rooms - 1);
	printf(" clients %" PRIu32 " senders %" PRIu32 " messages %" PRIu32
	       " rate %g window %" PRIu32, o->clients, o->senders,
	       o->messages, o->rate, o->window);
	if (o->sse_clients) {
		printf(" sse_clients %" PRIu32 " (http ", o->sse_clients);
		for (i = 0; i < o->nhttp; i++)
			printf("%s%s", i ? "," : "", lg->host_hdr[i]);
		printf(")");
	}
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct lg lg;
	uint32_t i;
	int rc;

	lg_init(&lg, argc, argv);
	if (!lg.o.api_requests)
		conn_init(&lg);
	util_catch_signals();
	server_sample(lg.srv, lg.o.server_pid, lg.o.npids,
		      lg.o.server_tree, SERVER_BEFORE);
	main_banner(&lg);
	if (lg.o.api_requests)
		return api_run(&lg);
	conn_loop(&lg);
	/* Measured while every client is still connected. */
	server_sample(lg.srv, lg.o.server_pid, lg.o.npids,
		      lg.o.server_tree, SERVER_END);
	if (report_has_health(&lg))
		for (i = 0; i < lg.o.nhttp; i++)
			server_get_health(&lg.health[i], &lg.o.http_addr[i],
					  lg.host_hdr[i]);
	sse_teardown(&lg);

	rc = report_run(&lg);
	conn_fini(&lg);
	lg_fini(&lg);
	return rc;
}
