/*
 * Connection limits: how many client connections (TCP and HTTP) this
 * instance holds, in all and per source address. A connection is counted
 * from its adoption to its close; one over a limit is answered with a
 * short refusal and closed without being counted.
 */
#include "net/net.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* The count of one address (the map's key points into it). */
struct ip_count {
	char ip[NET_IP_LEN];
	unsigned n;
};

void net_limits_init(struct net_limits *l, unsigned max_conns,
		     unsigned max_per_ip)
{
	memset(l, 0, sizeof(*l));
	l->max_conns = max_conns;
	l->max_per_ip = max_per_ip;
	strmap_init(&l->by_ip);
}

void net_limits_fini(struct net_limits *l)
{
	for (size_t i = 0; i < l->by_ip.cap; i++)
		if (l->by_ip.slots[i].key)
			free(l->by_ip.slots[i].val);
	strmap_fini(&l->by_ip);
}

bool net_admit(struct net_ctx *nc, struct lws *wsi, char *ip)
{
	struct net_limits *l = &nc->limits;
	struct ip_count *c;

	ip[0] = '\0';
	lws_get_peer_simple(wsi, ip, NET_IP_LEN);
	if (!ip[0])
		strcpy(ip, "?");
	c = strmap_get(&l->by_ip, ip);
	if ((l->max_conns && l->conns >= l->max_conns) ||
	    (l->max_per_ip && c && c->n >= l->max_per_ip)) {
		l->refused++;
		return false;
	}
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		memcpy(c->ip, ip, NET_IP_LEN);
		strmap_put(&l->by_ip, c->ip, c);
	}
	c->n++;
	l->conns++;
	return true;
}

void net_release(struct net_ctx *nc, const char *ip)
{
	struct net_limits *l = &nc->limits;
	struct ip_count *c = strmap_get(&l->by_ip, ip);

	if (!c)
		return;
	l->conns--;
	if (--c->n)
		return;
	strmap_del(&l->by_ip, c->ip);
	free(c);
}
