/*
 * Tiny HTTP client: one request per connection ("Connection: close"), the
 * response read until Content-Length is satisfied or the server closes.
 */
#include "thttp.h"

#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "trun.h"

/* Content-Length from the header block, -1 when absent. */
static long content_length(const char *head)
{
	for (const char *p = head; (p = strchr(p, '\n'));) {
		p++;
		if (!strncasecmp(p, "content-length:", 15))
			return strtol(p + 15, NULL, 10);
	}
	return -1;
}

bool thttp_try_get(int port, const char *path, struct thttp_resp *r,
		   int timeout_ms)
{
	static char buf[sizeof(r->head) + sizeof(r->body)];
	int64_t deadline = trun_now_ms() + timeout_ms;
	struct sockaddr_in sa = { 0 };
	char req[512];
	size_t len = 0;
	char *sep = NULL;
	long clen = -1;
	int fd, n;

	memset(r, 0, sizeof(*r));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		close(fd);
		ck_assert_msg(e == ECONNREFUSED, "connect 127.0.0.1:%d: %s",
			      port, strerror(e));
		return false;
	}
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		     "Connection: close\r\n\r\n",
		     path, port);
	ck_assert_msg(send(fd, req, (size_t)n, MSG_NOSIGNAL) == n, "send: %s",
		      strerror(errno));
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - trun_now_ms();
		ssize_t got;

		if (sep && clen >= 0 &&
		    len - (size_t)(sep + 4 - buf) >= (size_t)clen)
			break;
		ck_assert_msg(
			left > 0,
			"GET %s on port %d: no complete response within %d ms (got %zu bytes)",
			path, port, timeout_ms, len);
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		ck_assert_msg(len < sizeof(buf) - 1, "response too large");
		got = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
		buf[len] = '\0';
		if (!sep && (sep = strstr(buf, "\r\n\r\n")))
			clen = content_length(buf);
	}
	close(fd);
	buf[len] = '\0';
	ck_assert_msg(sep, "GET %s on port %d: no complete header: \"%.300s\"",
		      path, port, buf);
	*sep = '\0';
	memcpy(r->head, buf, strnlen(buf, sizeof(r->head) - 1));
	memcpy(r->body, sep + 4, strnlen(sep + 4, sizeof(r->body) - 1));
	if (clen >= 0 && (size_t)clen < sizeof(r->body))
		r->body[clen] = '\0';
	ck_assert_msg(sscanf(buf, "HTTP/1.%*d %d", &r->status) == 1,
		      "GET %s: bad status line: \"%.200s\"", path, buf);
	return true;
}

void thttp_get(int port, const char *path, struct thttp_resp *r)
{
	ck_assert_msg(thttp_try_get(port, path, r, trun_ms(T_WAIT)),
		      "GET %s: connection to port %d refused", path, port);
}

void thttp_wait_status(int port, const char *path, int status,
		       struct thttp_resp *r, int timeout_ms)
{
	int64_t deadline = trun_now_ms() + timeout_ms;

	for (;;) {
		bool up = thttp_try_get(port, path, r, trun_ms(T_WAIT));

		if (up && r->status == status)
			return;
		ck_assert_msg(
			trun_now_ms() < deadline,
			"GET %s on port %d did not answer %d within %d ms; last: %s %d %s",
			path, port, status, timeout_ms,
			up ? "status" : "refused", r->status, r->body);
		trun_pace();
	}
}

bool thttp_json_has(const char *json, const char *key, const char *value)
{
	char k[256];
	size_t vl = strlen(value);
	const char *p = json;

	snprintf(k, sizeof(k), "\"%s\"", key);
	while ((p = strstr(p, k))) {
		const char *q = p + strlen(k);

		p = q;
		while (isspace((unsigned char)*q))
			q++;
		if (*q++ != ':')
			continue;
		while (isspace((unsigned char)*q))
			q++;
		if (*q == '"' && !strncmp(q + 1, value, vl) && q[1 + vl] == '"')
			return true;
	}
	return false;
}
