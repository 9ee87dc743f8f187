/*
 * HTTP endpoints on callback mounts. For now: GET /health. Each answer is
 * prepared in LWS_CALLBACK_HTTP and written from HTTP_WRITEABLE: headers
 * first, then the body as the final write.
 */
#include "net/net.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct http_conn {
	int status;		/* HTTP status of the prepared answer */
	char *body;		/* JSON body (malloc), NULL when idle */
	size_t len;
	bool headers_sent;
};

size_t http_pss_size(void)
{
	return sizeof(struct http_conn);
}

static void http_reset(struct http_conn *hc)
{
	free(hc->body);
	memset(hc, 0, sizeof(*hc));
}

/* Takes ownership of obj. */
static void http_answer(struct lws *wsi, struct http_conn *hc, int status,
			json_t *obj)
{
	http_reset(hc);
	hc->status = status;
	hc->body = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	hc->len = hc->body ? strlen(hc->body) : 0;
	lws_callback_on_writable(wsi);
}

static void http_error(struct lws *wsi, struct http_conn *hc, int status,
		       const char *why)
{
	http_answer(wsi, hc, status, json_pack("{ss}", "error", why));
}

static void handle_health(struct lws *wsi, struct http_conn *hc)
{
	struct net_ctx *nc = net_ctx_of(wsi);
	const struct chat_stats *cs = chat_get_stats(nc->chat);
	bool ok = nc->db_ok(nc->db_arg);

	http_answer(wsi, hc, ok ? HTTP_STATUS_OK : 503,
		json_pack("{sssssssIsIsI}",
			  "status", ok ? "healthy" : "unhealthy",
			  "db", ok ? "connected" : "disconnected",
			  "instance_id", nc->instance_id,
			  "sessions", (json_int_t)chat_session_count(nc->chat),
			  "history_hits", (json_int_t)cs->history_hits,
			  "history_misses", (json_int_t)cs->history_misses));
}

static int http_writeable(struct lws *wsi, struct http_conn *hc)
{
	unsigned char buf[LWS_PRE + 512];
	unsigned char *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf);

	if (!hc->body)
		return 0;
	if (!hc->headers_sent) {
		if (lws_add_http_common_headers(wsi, (unsigned)hc->status,
						"application/json", hc->len,
						&p, end) ||
		    lws_add_http_header_by_token(wsi,
				WSI_TOKEN_HTTP_CACHE_CONTROL,
				(const unsigned char *)"no-store", 8, &p, end) ||
		    lws_finalize_write_http_header(wsi, start, &p, end))
			return -1;
		hc->headers_sent = true;
		lws_callback_on_writable(wsi);
		return 0;
	}
	/* The body is small: one write, as the final one. */
	{
		unsigned char *out = malloc(LWS_PRE + hc->len + 1);
		int n;

		if (!out)
			return -1;
		memcpy(out + LWS_PRE, hc->body, hc->len);
		n = lws_write(wsi, out + LWS_PRE, hc->len,
			      LWS_WRITE_HTTP_FINAL);
		free(out);
		if (n < (int)hc->len)
			return -1;
	}
	http_reset(hc);
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
		  void *user, void *in, size_t len)
{
	struct http_conn *hc = user;
	char path[256];

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		/* The mount point is "/health": `in` is what follows it. */
		snprintf(path, sizeof(path), "%s", in ? (const char *)in : "");
		if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
			http_error(wsi, hc, 405, "method not allowed");
			return 0;
		}
		if (path[0] && strcmp(path, "/")) {
			http_error(wsi, hc, 404, "not found");
			return 0;
		}
		handle_health(wsi, hc);
		return 0;
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return http_writeable(wsi, hc);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		http_reset(hc);
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
