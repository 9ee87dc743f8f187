/*
 * loadgen: HTTP/1.1 request formatting, blocking calls and JSON scraping
 * (http.h). Answers are parsed only as far as loadgen needs: a status, a
 * Content-Length and the body; no chunked encoding.
 */
#include "http.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int http_format(char *buf, size_t cap, const char *method, const char *target,
		const char *host, const char *json, bool event_stream)
{
	int n;

	if (json)
		n = snprintf(buf, cap,
			     "%s %s HTTP/1.1\r\nHost: %s\r\n"
			     "Content-Type: application/json\r\n"
			     "Content-Length: %zu\r\n\r\n%s",
			     method, target, host, strlen(json), json);
	else
		n = snprintf(buf, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n",
			     method, target, host,
			     event_stream ? "Accept: text/event-stream\r\n" :
					    "");
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}

int http_open(const struct sockaddr_in *addr)
{
	struct timeval tv = { .tv_sec = HTTP_TIMEOUT_S };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int http_call(int fd, const char *req, char *body, size_t cap)
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

/* Where the value of "key": starts in json, or NULL. */
static const char *http_json_value(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? p + strlen(pat) : NULL;
}

long long http_json_int(const char *json, const char *key)
{
	const char *p = http_json_value(json, key);

	return p ? strtoll(p, NULL, 10) : -1;
}

double http_json_num(const char *json, const char *key)
{
	const char *p = http_json_value(json, key);

	return p ? strtod(p, NULL) : -1;
}

bool http_json_sid(const char *json, char sid[33])
{
	static const char key[] = "\"session_id\":\"";
	const char *p = strstr(json, key);

	if (!p || strspn(p + sizeof(key) - 1, "0123456789abcdef") != 32)
		return false;
	memcpy(sid, p + sizeof(key) - 1, 32);
	sid[32] = '\0';
	return true;
}
