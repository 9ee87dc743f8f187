/*
 * A strict HTTP/1.x request-head parser (see http1.h). It accepts what
 * RFC 9112 requires of a server and refuses every head whose framing two
 * parsers could read differently.
 */
#include "util/http1.h"

#include <string.h>
#include <strings.h>

#define MAX_LEADING_EMPTY 4	/* CRLFs tolerated before a request */

/* RFC 9110 token characters. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

/* Field-value bytes: VCHAR, obs-text, SP and HTAB. */
static bool is_vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool http1_str_ieq(struct http1_str s, const char *lit)
{
	return s.len == strlen(lit) && !strncasecmp(s.p, lit, s.len);
}

static struct http1_str trim(const char *p, size_t len)
{
	while (len && (*p == ' ' || *p == '\t')) {
		p++;
		len--;
	}
	while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	return (struct http1_str){ p, len };
}

/* Whether the comma-separated list v holds token tok (any case). */
static bool list_has(struct http1_str v, const char *tok)
{
	const char *p = v.p, *end = v.p + v.len;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *e = c ? c : end;

		if (http1_str_ieq(trim(p, (size_t)(e - p)), tok))
			return true;
		p = e + 1;
	}
	return false;
}

/* The last element of the comma-separated list v. */
static struct http1_str list_last(struct http1_str v)
{
	const char *p = v.p + v.len;

	while (p > v.p && p[-1] != ',')
		p--;
	return trim(p, (size_t)(v.p + v.len - p));
}

static int fail(const char **why, const char *reason, int status)
{
	*why = reason;
	return -status;
}

/* Where the head ends (just past its blank line), or 0. */
static size_t head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Next line of [*p, end): sets *line and *n (without its LF or CRLF). Returns
 * false on a bare CR. */
static bool next_line(const char **p, const char *end, const char **line,
		      size_t *n)
{
	const char *lf = memchr(*p, '\n', (size_t)(end - *p));
	size_t len = (size_t)(lf - *p);

	*line = *p;
	if (len && (*p)[len - 1] == '\r')
		len--;
	*n = len;
	*p = lf + 1;
	return !memchr(*line, '\r', len);
}

static int parse_method(const char *m, size_t n, struct http1_req *r)
{
	static const char *const other[] = { "PUT", "DELETE", "OPTIONS",
					     "PATCH", "CONNECT", "TRACE" };

	if (n == 3 && !memcmp(m, "GET", 3)) {
		r->method = HTTP1_GET;
		return 0;
	}
	if (n == 4 && !memcmp(m, "HEAD", 4)) {
		r->method = HTTP1_HEAD;
		return 0;
	}
	if (n == 4 && !memcmp(m, "POST", 4)) {
		r->method = HTTP1_POST;
		return 0;
	}
	r->method = HTTP1_OTHER;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (n == strlen(other[i]) && !memcmp(m, other[i], n))
			return 0;
	return -1;
}

static int parse_request_line(const char *l, size_t n, struct http1_req *r,
			      const char **why)
{
	const char *sp1 = memchr(l, ' ', n), *sp2, *t, *q;
	size_t tlen, vlen;

	if (!sp1 || sp1 == l)
		return fail(why, "malformed request line", 400);
	for (const char *c = l; c < sp1; c++)
		if (!is_tchar((unsigned char)*c))
			return fail(why, "malformed request line", 400);
	t = sp1 + 1;
	sp2 = memchr(t, ' ', (size_t)(l + n - t));
	tlen = sp2 ? (size_t)(sp2 - t) : (size_t)(l + n - t);
	if (tlen > HTTP1_MAX_TARGET)
		return fail(why, "request target too long", 414);
	if (!sp2)
		return fail(why, "malformed request line", 400);
	if (parse_method(l, (size_t)(sp1 - l), r))
		return fail(why, "unknown method", 501);
	if (!tlen || *t != '/')
		return fail(why, "request target must be a path", 400);
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return fail(why, "invalid byte in request target",
				    400);
	vlen = (size_t)(l + n - sp2 - 1);
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/", 5) || sp2[7] != '.' ||
	    sp2[6] < '0' || sp2[6] > '9' || sp2[8] < '0' || sp2[8] > '9')
		return fail(why, "malformed HTTP version", 400);
	if (sp2[6] != '1' || sp2[8] > '1')
		return fail(why, "HTTP version not supported", 505);
	r->minor = sp2[8] - '0';
	q = memchr(t, '?', tlen);
	r->path = (struct http1_str){ t, q ? (size_t)(q - t) : tlen };
	r->query = q ? (struct http1_str){ q + 1, (size_t)(t + tlen - q - 1) }
		     : (struct http1_str){ t + tlen, 0 };
	return 0;
}

static int parse_length(struct http1_str v, int64_t *out)
{
	int64_t n = 0;

	if (!v.len || v.len > 18)
		return -1;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		n = n * 10 + (v.p[i] - '0');
	}
	*out = n;
	return 0;
}

/* What the fields say that http1_req does not keep. */
struct fields {
	int hosts;
	bool te;			/* Transfer-Encoding present */
	struct http1_str te_last;	/* its final coding */
	bool conn_close, conn_keep;
};

static int parse_field(const char *l, size_t n, struct http1_req *r,
		       struct fields *f, const char **why)
{
	const char *colon = memchr(l, ':', n);
	struct http1_str name, v;

	if (!n || l[0] == ' ' || l[0] == '\t')
		return fail(why, "obsolete line folding", 400);
	if (!colon || colon == l)
		return fail(why, "malformed header field", 400);
	for (const char *c = l; c < colon; c++)
		if (!is_tchar((unsigned char)*c))
			return fail(why, "malformed header field", 400);
	for (const char *c = colon + 1; c < l + n; c++)
		if (!is_vchar((unsigned char)*c))
			return fail(why, "control byte in a header field",
				    400);
	name = (struct http1_str){ l, (size_t)(colon - l) };
	v = trim(colon + 1, (size_t)(l + n - colon - 1));
	if (http1_str_ieq(name, "content-length")) {
		if (r->content_length >= 0)
			return fail(why, "more than one Content-Length", 400);
		if (parse_length(v, &r->content_length))
			return fail(why, "invalid Content-Length", 400);
	} else if (http1_str_ieq(name, "transfer-encoding")) {
		f->te = true;
		f->te_last = list_last(v);
	} else if (http1_str_ieq(name, "host")) {
		f->hosts++;
	} else if (http1_str_ieq(name, "connection")) {
		f->conn_close |= list_has(v, "close");
		f->conn_keep |= list_has(v, "keep-alive");
	} else if (http1_str_ieq(name, "expect")) {
		r->expect_continue = http1_str_ieq(v, "100-continue");
	} else if (http1_str_ieq(name, "content-type")) {
		r->content_type = v;
	} else if (http1_str_ieq(name, "last-event-id")) {
		r->last_event_id = v;
	} else if (http1_str_ieq(name, "if-none-match")) {
		r->if_none_match = v;
	} else if (http1_str_ieq(name, "accept")) {
		r->accept = v;
	} else if (http1_str_ieq(name, "x-real-ip")) {
		r->real_ip = v;
	}
	return 0;
}

int http1_parse(const char *buf, size_t len, struct http1_req *r,
		const char **why)
{
	const char *p = buf, *end, *line;
	struct fields f = { 0 };
	size_t n, hlen, skip = 0;
	int nfields = 0, rc;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	*why = "";
	while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n') &&
	       skip < 2 * MAX_LEADING_EMPTY)
		skip++;
	hlen = head_end(buf + skip, len - skip);
	if (!hlen) {
		const char *lf = memchr(buf + skip, '\n', len - skip);

		if (len < HTTP1_MAX_HEAD)
			return 0;
		/* Too large; a request line alone that long is a 414. */
		if (!lf || lf - buf > HTTP1_MAX_TARGET + 32)
			return fail(why, "request target too long", 414);
		return fail(why, "request head too large", 431);
	}
	if (skip + hlen > HTTP1_MAX_HEAD)
		return fail(why, "request head too large", 431);
	p = buf + skip;
	end = p + hlen;
	if (!next_line(&p, end, &line, &n))
		return fail(why, "bare CR in the request line", 400);
	rc = parse_request_line(line, n, r, why);
	if (rc)
		return rc;
	while (p < end) {
		if (!next_line(&p, end, &line, &n))
			return fail(why, "bare CR in a header field", 400);
		if (!n)
			break;	/* the blank line */
		if (++nfields > HTTP1_MAX_FIELDS)
			return fail(why, "too many header fields", 431);
		rc = parse_field(line, n, r, &f, why);
		if (rc)
			return rc;
	}
	if (f.te && r->content_length >= 0)
		return fail(why, "both Transfer-Encoding and Content-Length",
			    400);
	if (f.te && http1_str_ieq(f.te_last, "chunked"))
		return fail(why, "chunked request bodies are not accepted; send Content-Length",
			    411);
	if (f.te)
		return fail(why, "unsupported Transfer-Encoding", 400);
	if (f.hosts > 1 || (r->minor == 1 && !f.hosts))
		return fail(why, "exactly one Host header is required", 400);
	r->keep_alive = !f.conn_close && (r->minor == 1 || f.conn_keep);
	return (int)(skip + hlen);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int http1_query_param(struct http1_str query, const char *name, char *out,
		      size_t cap)
{
	const char *p = query.p, *end = query.p + query.len;
	size_t nlen = strlen(name);

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		size_t o = 0;

		if ((size_t)(e - p) > nlen && !memcmp(p, name, nlen) &&
		    p[nlen] == '=') {
			for (const char *c = p + nlen + 1; c < e; c++) {
				int ch = (unsigned char)*c;

				if (ch == '+') {
					ch = ' ';
				} else if (ch == '%') {
					int hi, lo;

					if (e - c < 3)
						return -1;
					hi = hexval(c[1]);
					lo = hexval(c[2]);
					if (hi < 0 || lo < 0 || (!hi && !lo))
						return -1;
					ch = hi << 4 | lo;
					c += 2;
				}
				if (o + 1 >= cap)
					return -1;
				out[o++] = (char)ch;
			}
			out[o] = '\0';
			return (int)o;
		}
		p = e + 1;
	}
	return -1;
}

const char *http1_reason(int status)
{
	static const struct {
		int status;
		const char *text;
	} reasons[] = {
		{ 100, "Continue" },
		{ 200, "OK" },
		{ 304, "Not Modified" },
		{ 400, "Bad Request" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 408, "Request Timeout" },
		{ 409, "Conflict" },
		{ 411, "Length Required" },
		{ 413, "Content Too Large" },
		{ 414, "URI Too Long" },
		{ 415, "Unsupported Media Type" },
		{ 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 503, "Service Unavailable" },
		{ 505, "HTTP Version Not Supported" },
	};

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "";
}
