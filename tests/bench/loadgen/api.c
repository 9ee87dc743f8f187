/*
 * loadgen's API mode (--api-requests): what one JSON API request costs,
 * measured one request at a time on blocking keep-alive connections, and
 * its own report. Uses none of the event loop.
 */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"
#include "report.h"
#include "util.h"

#define API_TIMEOUT_S 5		/* one request */
#define API_RESP_MAX (4u << 20)	/* longest answer we read */
#define API_WORST 8		/* slowest requests listed */

/*
 * Every request with a session first resumes it from the database; GET
 * /api/rooms has no session and is the baseline without that lookup.
 */
enum api_kind { API_MESSAGE, API_COMMAND, API_ROOMS, API_KINDS };

static const char *const api_name[API_KINDS] = {
	"message", "command", "rooms",
};

/* A blocking keep-alive connection to one HTTP port. */
struct api_conn {
	int fd;				/* -1: (re)open before the next use */
	uint32_t opened;		/* connections made to this port */
	char *buf;			/* the answer being read */
	size_t cap;
};

/* Per request kind, and per kind and instance. */
struct api_stats {
	uint64_t count;			/* requests issued */
	uint64_t failures;		/* no answer, non-200 or a bad answer */
	uint64_t non200;		/* of which answered, not with 200 */
	uint64_t busy_ns;		/* time spent in them, all of them */
	uint32_t *lat_us;		/* latency of each successful one */
	size_t n;
};

/* One of the slowest requests. */
struct api_slow {
	uint32_t lat_us;
	uint32_t at_ms;			/* started, ms after the first */
	uint32_t index;			/* i-th of its kind */
	uint8_t kind, inst;
};

struct api {
	struct api_conn conn[ARGS_INST_MAX];
	struct api_stats k[API_KINDS];
	struct api_stats ki[API_KINDS][ARGS_INST_MAX];
	struct api_slow worst[API_WORST];
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
static bool api_open(const struct lg *lg, struct api_conn *c, int h)
{
	struct timeval tv = { .tv_sec = API_TIMEOUT_S };
	int one = 1;

	if (c->fd >= 0)
		return true;
	c->fd = http_open(&lg->o.http_addr[h]);
	if (c->fd < 0)
		return false;
	c->opened++;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return true;
}

/* Whether header line [line, eol) has "close" in it, in any case. */
static bool api_has_close(const char *line, const char *eol)
{
	for (; line + 5 <= eol; line++)
		if (!strncasecmp(line, "close", 5))
			return true;
	return false;
}

static void api_drop(struct api_conn *c)
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
 * API_TIMEOUT_S per receive, and it gives up once a receive returns
 * after API_TIMEOUT_S in all.
 */
static int api_call(struct lg *lg, struct api *a, int h, const char *method,
		    const char *target, const char *json, const char **body,
		    uint64_t *ns)
{
	struct api_conn *c = &a->conn[h];
	char req[1024], *hend, *line, *eol;
	size_t have = 0, hlen = 0, clen = SIZE_MAX, len;
	bool keep = true;
	uint64_t t, t_stop;
	int n, status = -1;

	*body = "";
	*ns = 0;
	n = http_format(req, sizeof(req), method, target, lg->host_hdr[h],
			json, false);
	if (n < 0 || !api_open(lg, c, h))
		return -1;
	len = (size_t)n;
	if (!c->buf) {
		c->cap = 65536;
		c->buf = util_calloc(c->cap, 1);
	}
	t = util_now_ns();
	t_stop = t + API_TIMEOUT_S * UTIL_NSEC;
	if (send(c->fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		goto fail;
	for (;;) {
		ssize_t r;

		if (have + 1 >= c->cap) {
			if (c->cap >= API_RESP_MAX)
				goto fail;
			c->cap *= 2;
			c->buf = util_realloc(c->buf, c->cap);
		}
		r = recv(c->fd, c->buf + have, c->cap - 1 - have, 0);
		if (r < 0 && errno == EINTR && !util_interrupted())
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
					 api_has_close(line + 11, eol))
					keep = false;
				else if (!strncasecmp(line,
						      "transfer-encoding:", 18))
					goto fail;
			}
			if (clen == SIZE_MAX || clen > API_RESP_MAX)
				goto fail;
		}
		if (hlen && have >= hlen + clen)
			break;
		if (util_now_ns() >= t_stop)
			goto fail;
	}
	*ns = util_now_ns() - t;
	if (have != hlen + clen)
		goto fail;	/* more than one answer: out of step */
	if (!keep)
		api_drop(c);
	*body = c->buf + hlen;
	return status;
fail:
	*ns = util_now_ns() - t;
	api_drop(c);
	return -1;
}

/* Prints one of the first problems (they repeat). */
static void api_show(struct lg *lg, const char *what, int h, int status,
		     const char *body)
{
	if (!lg_may_show(lg))
		return;
	fprintf(stderr, "loadgen: api %s (instance %d): %s%d: %.200s\n", what,
		h + 1, status < 0 ? "no answer, status " : "HTTP ", status,
		body);
}

/* Keeps the slowest requests, slowest first. */
static void api_slow(struct api *a, const struct api_slow *s)
{
	int j;

	if (a->nworst == API_WORST &&
	    s->lat_us <= a->worst[API_WORST - 1].lat_us)
		return;
	if (a->nworst < API_WORST)
		a->nworst++;
	for (j = a->nworst - 1; j > 0 && a->worst[j - 1].lat_us < s->lat_us;
	     j--)
		a->worst[j] = a->worst[j - 1];
	a->worst[j] = *s;
}

/* Request i of kind k on port h; checks its answer and records it. */
static void api_one(struct lg *lg, struct api *a, int k, uint32_t i,
		    int h)
{
	struct api_stats *st = &a->k[k], *si = &a->ki[k][h];
	char json[256], what[48];
	const char *body;
	uint64_t ns, t = util_now_ns();
	int64_t seq = -1;
	bool ok, shown = false;
	int status;

	switch (k) {
	case API_MESSAGE:
		snprintf(json, sizeof(json),
			 "{\"session_id\":\"%s\",\"room\":\"%s\","
			 "\"content\":\"api %" PRIu32 "\"}", a->sid,
			 lg->o.room, i);
		status = api_call(lg, a, h, "POST", "/api/message", json,
				  &body, &ns);
		ok = status == 200 && strstr(body, "\"success\":true");
		seq = ok ? http_json_int(body, "seq") : -1;
		if (ok && seq <= a->seq_last) {
			a->seq_errors++;
			snprintf(what, sizeof(what), "message %" PRIu32
				 ": seq %" PRId64 " after %" PRId64, i, seq,
				 a->seq_last);
			api_show(lg, what, h, status, body);
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
	case API_COMMAND:
		snprintf(json, sizeof(json),
			 "{\"session_id\":\"%s\",\"command\":\"/help\"}",
			 a->sid);
		status = api_call(lg, a, h, "POST", "/api/command", json,
				  &body, &ns);
		ok = status == 200 && strstr(body, "\"success\":true");
		break;
	default:
		status = api_call(lg, a, h, "GET", "/api/rooms", NULL,
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
		snprintf(what, sizeof(what), "%s %" PRIu32, api_name[k], i);
		if (!shown)
			api_show(lg, what, h, status, body);
		return;
	}
	st->lat_us[st->n++] = util_us(0, ns);
	si->lat_us[si->n++] = util_us(0, ns);
	api_slow(a, &(struct api_slow){
		.lat_us = util_us(0, ns), .at_ms = util_us(a->t0, t) / 1000,
		.index = i, .kind = (uint8_t)k, .inst = (uint8_t)h });
}

/*
 * POST /api/connect and /api/command "/create ROOM" (or /join ROOM when a
 * previous run left it) on port 0. False when the session or the room
 * could not be had.
 */
static bool api_setup(struct lg *lg, struct api *a)
{
	char json[256];
	const char *body;
	uint64_t ns;
	int status;

	snprintf(json, sizeof(json), "{\"nickname\":\"api%s\"}", lg->nick_tag);
	status = api_call(lg, a, 0, "POST", "/api/connect", json, &body,
			  &ns);
	if (status != 200 || !http_json_sid(body, a->sid)) {
		api_show(lg, "connect", 0, status, body);
		printf("api_setup: connect %d in %.3f ms: no session\n",
		       status, ns / 1e6);
		return false;
	}
	printf("api_setup: connect %d in %.3f ms (nickname api%s)", status,
	       ns / 1e6, lg->nick_tag);
	snprintf(json, sizeof(json),
		 "{\"session_id\":\"%s\",\"command\":\"/create %s\"}", a->sid,
		 lg->o.room);
	status = api_call(lg, a, 0, "POST", "/api/command", json, &body,
			  &ns);
	printf(", create %d in %.3f ms", status, ns / 1e6);
	if (status == 200 && strstr(body, "already exists")) {
		snprintf(json, sizeof(json),
			 "{\"session_id\":\"%s\",\"command\":\"/join %s\"}",
			 a->sid, lg->o.room);
		status = api_call(lg, a, 0, "POST", "/api/command", json,
				  &body, &ns);
		printf(" (exists), join %d in %.3f ms", status, ns / 1e6);
	}
	printf("\n");
	if (status != 200 || !strstr(body, "\"success\":true")) {
		api_show(lg, "create/join", 0, status, body);
		return false;
	}
	return true;
}

/* POST /api/disconnect on port 0. */
static bool api_teardown(struct lg *lg, struct api *a)
{
	char json[96];
	const char *body;

	snprintf(json, sizeof(json), "{\"session_id\":\"%s\"}", a->sid);
	a->td_status = api_call(lg, a, 0, "POST", "/api/disconnect", json,
				&body, &a->td_ns);
	if (a->td_status != 200 || !strstr(body, "\"success\":true")) {
		api_show(lg, "disconnect", 0, a->td_status, body);
		return false;
	}
	return true;
}

static void api_print(const char *name, struct api_stats *st)
{
	char lat[48];

	printf("%s: count %" PRIu64 ", failures %" PRIu64 " (non-200 %" PRIu64
	       "), rate %.1f req/s\n", name, st->count, st->failures,
	       st->non200, st->busy_ns ? st->count * 1e9 / st->busy_ns : 0.0);
	snprintf(lat, sizeof(lat), "%s_ms", name);
	report_lat(lat, st->lat_us, st->n);
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
static int api_report(struct lg *lg, struct api *a, bool setup_ok,
		      bool teardown_ok)
{
	uint64_t total = 0, failures = 0, planned;
	uint32_t opened = 0;
	double span = a->t_end > a->t0 ? util_secs(a->t_end - a->t0) : 0;
	double cpu = 0;
	bool cpu_known = lg->o.npids > 0;
	const char *verdict = "PASS";
	char name[48];
	uint32_t h;
	int k, j;

	planned = (uint64_t)lg->o.api_requests * API_KINDS;
	for (k = 0; k < API_KINDS; k++) {
		snprintf(name, sizeof(name), "api_%s", api_name[k]);
		api_print(name, &a->k[k]);
		total += a->k[k].count;
		failures += a->k[k].failures;
		for (h = 0; lg->o.nhttp > 1 && h < lg->o.nhttp; h++) {
			snprintf(name, sizeof(name), "api_%s_i%" PRIu32,
				 api_name[k], h + 1);
			api_print(name, &a->ki[k][h]);
		}
	}
	printf("api_seq: first %" PRId64 " last %" PRId64 " errors %" PRIu64
	       "\n", a->seq_first, a->seq_last, a->seq_errors);
	printf("api_worst:");
	for (j = 0; j < a->nworst; j++)
		printf(" %.1f ms %s #%" PRIu32 " on i%d at %.3f s%s",
		       a->worst[j].lat_us / 1000.0,
		       api_name[a->worst[j].kind], a->worst[j].index,
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
		const struct server_proc *sv = &lg->srv[j];

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
	report_rusage();
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
int api_run(struct lg *lg)
{
	struct api *a = util_calloc(1, sizeof(*a));
	uint32_t n = lg->o.api_requests, per = n / lg->o.nhttp + 1, i, h;
	bool setup_ok, teardown_ok = false;
	uint64_t deadline;
	int k, rc;

	a->seq_first = -1;
	a->seq_last = 0;
	a->stop_reason = "complete";
	snprintf(a->room_key, sizeof(a->room_key), "\"name\":\"%s\"",
		 lg->o.room);
	for (k = 0; k < API_KINDS; k++) {
		a->k[k].lat_us = util_calloc(n, sizeof(uint32_t));
		for (h = 0; h < lg->o.nhttp; h++)
			a->ki[k][h].lat_us = util_calloc(per, sizeof(uint32_t));
	}
	for (h = 0; h < ARGS_INST_MAX; h++)
		a->conn[h].fd = -1;
	/* Every port's connection first: a refused one fails early. */
	for (h = 0; h < lg->o.nhttp; h++) {
		if (!api_open(lg, &a->conn[h], (int)h)) {
			fprintf(stderr, "loadgen: api: cannot connect to %s: "
				"%s\n", lg->host_hdr[h], strerror(errno));
			printf("result: FAIL (cannot connect)\n");
			return 1;
		}
	}
	setup_ok = api_setup(lg, a);
	server_sample(lg->srv, lg->o.server_pid, lg->o.npids,
		      lg->o.server_tree, SERVER_AFTER_SETUP);
	a->t0 = util_now_ns();
	deadline = a->t0 + (uint64_t)(lg->o.duration_max * 1e9);
	for (i = 0; setup_ok && i < n; i++) {
		if (util_interrupted()) {
			a->stop_reason = "interrupted";
			break;
		}
		if (util_now_ns() >= deadline) {
			a->stop_reason = "duration-max reached";
			break;
		}
		for (k = 0; k < API_KINDS; k++)
			api_one(lg, a, k, i,
				(int)((i + (uint32_t)k) % lg->o.nhttp));
		if (lg->o.verbose && (i + 1) % 500 == 0)
			fprintf(stderr, "loadgen: api %.1fs: %" PRIu32
				" rounds\n", util_secs(util_now_ns() - a->t0),
				i + 1);
	}
	a->t_end = util_now_ns();
	server_sample(lg->srv, lg->o.server_pid, lg->o.npids,
		      lg->o.server_tree, SERVER_END);
	if (!setup_ok)
		a->stop_reason = "setup failed";
	if (a->sid[0])
		teardown_ok = api_teardown(lg, a);
	rc = api_report(lg, a, setup_ok, teardown_ok);
	for (h = 0; h < ARGS_INST_MAX; h++) {
		api_drop(&a->conn[h]);
		free(a->conn[h].buf);
	}
	for (k = 0; k < API_KINDS; k++) {
		free(a->k[k].lat_us);
		for (h = 0; h < lg->o.nhttp; h++)
			free(a->ki[k][h].lat_us);
	}
	free(a);
	return rc;
}
