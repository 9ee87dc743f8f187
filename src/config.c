/* Config file parsing and validation. Unknown keys are errors. */
#include "config.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util/xalloc.h"

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->instance_id = xstrdup("default");
	cfg->listen_address = xstrdup("127.0.0.1");
	cfg->tcp_port = 9001;
	cfg->http_port = 3001;
	cfg->database_url = xstrdup("postgresql:///babydiscord");
	cfg->static_dir = xstrdup("static");
	cfg->history_size = 10;
	cfg->max_message_bytes = 2000;
	cfg->outq_limit_bytes = 1024 * 1024;
	cfg->log_level = LOG_INFO;
	cfg->log_format = LOG_TEXT;
	cfg->cleanup_interval_s = 0;
	cfg->cleanup_keep = 1000;
	cfg->session_idle_timeout_s = 60;
	cfg->sse_heartbeat_s = 15;
	cfg->presence_timeout_s = 15;
	cfg->max_rooms = 10000;
	cfg->max_rooms_per_user = 100;
	cfg->db_queue_limit = 1000;
	cfg->shutdown_timeout_s = 10;
	cfg->msg_rate_per_s = 5;
	cfg->msg_burst = 20;
	cfg->cmd_rate_per_s = 10;
	cfg->cmd_burst = 30;
	cfg->max_connections = 20000;
	cfg->tcp_idle_timeout_s = 600;
	cfg->tcp_line_timeout_s = 60;
	cfg->max_connections_per_ip = 0;	/* behind a proxy: all one address */
	cfg->connect_rate_per_min = 30;
	cfg->connect_burst = 30;
	cfg->create_rate_per_min = 10;
	cfg->create_burst = 10;
}

void config_fini(struct config *cfg)
{
	free(cfg->instance_id);
	free(cfg->listen_address);
	free(cfg->database_url);
	free(cfg->static_dir);
	free(cfg->log_file);
	free(cfg->real_ip_from);
	memset(cfg, 0, sizeof(*cfg));
}

static int get_string(json_t *v, const char *key, char **dst, char *err,
		      size_t errlen)
{
	if (!json_is_string(v) || !json_string_length(v)) {
		snprintf(err, errlen, "%s: expected a non-empty string", key);
		return -1;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(err, errlen, "%s: contains a NUL byte", key);
		return -1;
	}
	free(*dst);
	*dst = xstrdup(json_string_value(v));
	return 0;
}

static int get_int(json_t *v, const char *key, long long lo, long long hi,
		   long long *dst, char *err, size_t errlen)
{
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi) {
		snprintf(err, errlen, "%s: expected an integer in %lld..%lld",
			 key, lo, hi);
		return -1;
	}
	*dst = json_integer_value(v);
	return 0;
}

/* Integer keys: where each goes and its accepted range. */
enum int_kind { K_INT, K_SIZE, K_UNSIGNED };

static const struct int_key {
	const char *key;
	size_t off;		/* offsetof(struct config, ...) */
	enum int_kind kind;	/* the field's type */
	long long lo, hi;
} int_keys[] = {
	{ "tcp_port", offsetof(struct config, tcp_port), K_INT, 0, 65535 },
	{ "http_port", offsetof(struct config, http_port), K_INT, 0, 65535 },
	{ "history_size", offsetof(struct config, history_size), K_SIZE, 1,
	  1000 },
	{ "max_message_bytes", offsetof(struct config, max_message_bytes),
	  K_SIZE, 1, CONFIG_MESSAGE_BYTES_MAX },
	{ "outq_limit_bytes", offsetof(struct config, outq_limit_bytes),
	  K_SIZE, 16384, 1LL << 30 },
	{ "cleanup_interval_s", offsetof(struct config, cleanup_interval_s),
	  K_UNSIGNED, 0, 86400 * 7 },
	{ "cleanup_keep", offsetof(struct config, cleanup_keep), K_UNSIGNED,
	  1, 100000000 },
	{ "session_idle_timeout_s",
	  offsetof(struct config, session_idle_timeout_s), K_UNSIGNED, 1,
	  86400 },
	{ "sse_heartbeat_s", offsetof(struct config, sse_heartbeat_s),
	  K_UNSIGNED, 1, 3600 },
	{ "presence_timeout_s", offsetof(struct config, presence_timeout_s),
	  K_UNSIGNED, 3, 3600 },
	{ "max_rooms", offsetof(struct config, max_rooms), K_SIZE, 1,
	  10000000 },
	{ "max_rooms_per_user", offsetof(struct config, max_rooms_per_user),
	  K_SIZE, 1, 100000 },
	{ "db_queue_limit", offsetof(struct config, db_queue_limit),
	  K_UNSIGNED, 1, 1000000 },
	{ "shutdown_timeout_s", offsetof(struct config, shutdown_timeout_s),
	  K_UNSIGNED, 1, 3600 },
	{ "msg_rate_per_s", offsetof(struct config, msg_rate_per_s),
	  K_UNSIGNED, 0, 1000000 },
	{ "msg_burst", offsetof(struct config, msg_burst), K_UNSIGNED, 1,
	  1000000 },
	{ "cmd_rate_per_s", offsetof(struct config, cmd_rate_per_s),
	  K_UNSIGNED, 0, 1000000 },
	{ "cmd_burst", offsetof(struct config, cmd_burst), K_UNSIGNED, 1,
	  1000000 },
	{ "tcp_idle_timeout_s", offsetof(struct config, tcp_idle_timeout_s),
	  K_UNSIGNED, 0, 86400 * 7 },
	{ "tcp_line_timeout_s", offsetof(struct config, tcp_line_timeout_s),
	  K_UNSIGNED, 0, 86400 },
	{ "max_connections", offsetof(struct config, max_connections),
	  K_UNSIGNED, 0, 10000000 },
	{ "max_connections_per_ip",
	  offsetof(struct config, max_connections_per_ip), K_UNSIGNED, 0,
	  10000000 },
	{ "connect_rate_per_min",
	  offsetof(struct config, connect_rate_per_min), K_UNSIGNED, 0,
	  1000000 },
	{ "connect_burst", offsetof(struct config, connect_burst),
	  K_UNSIGNED, 1, 1000000 },
	{ "create_rate_per_min", offsetof(struct config, create_rate_per_min),
	  K_UNSIGNED, 0, 1000000 },
	{ "create_burst", offsetof(struct config, create_burst), K_UNSIGNED,
	  1, 1000000 },
};

/* A string that is an IPv4 address. */
static int get_ipv4(json_t *v, const char *key, char **dst, char *err,
		    size_t errlen)
{
	struct in_addr a;

	if (get_string(v, key, dst, err, errlen))
		return -1;
	if (inet_pton(AF_INET, *dst, &a) != 1) {
		snprintf(err, errlen,
			 "%s: expected an IPv4 address, got \"%s\"", key, *dst);
		return -1;
	}
	return 0;
}

static int apply_key(struct config *cfg, const char *key, json_t *v,
		     char *err, size_t errlen)
{
	long long n;

	if (!strcmp(key, "instance_id"))
		return get_string(v, key, &cfg->instance_id, err, errlen);
	if (!strcmp(key, "listen_address"))
		return get_ipv4(v, key, &cfg->listen_address, err, errlen);
	if (!strcmp(key, "database_url"))
		return get_string(v, key, &cfg->database_url, err, errlen);
	if (!strcmp(key, "real_ip_from"))
		return get_ipv4(v, key, &cfg->real_ip_from, err, errlen);
	if (!strcmp(key, "static_dir"))
		return get_string(v, key, &cfg->static_dir, err, errlen);
	if (!strcmp(key, "log_level")) {
		int lvl;

		if (!json_is_string(v) ||
		    (lvl = log_level_parse(json_string_value(v))) < 0) {
			snprintf(err, errlen,
				 "log_level: expected debug, info, warn or error");
			return -1;
		}
		cfg->log_level = lvl;
		return 0;
	}
	if (!strcmp(key, "log_format")) {
		int fmt;

		if (!json_is_string(v) ||
		    (fmt = log_format_parse(json_string_value(v))) < 0) {
			snprintf(err, errlen,
				 "log_format: expected text or json");
			return -1;
		}
		cfg->log_format = fmt;
		return 0;
	}
	if (!strcmp(key, "log_file")) {
		if (json_is_null(v)) {
			free(cfg->log_file);
			cfg->log_file = NULL;
			return 0;
		}
		return get_string(v, key, &cfg->log_file, err, errlen);
	}
	for (size_t i = 0; i < sizeof(int_keys) / sizeof(int_keys[0]); i++) {
		const struct int_key *k = &int_keys[i];
		char *field = (char *)cfg + k->off;

		if (strcmp(key, k->key))
			continue;
		if (get_int(v, key, k->lo, k->hi, &n, err, errlen))
			return -1;
		if (k->kind == K_INT)
			*(int *)field = (int)n;
		else if (k->kind == K_SIZE)
			*(size_t *)field = (size_t)n;
		else
			*(unsigned *)field = (unsigned)n;
		return 0;
	}
	snprintf(err, errlen, "unknown key \"%s\"", key);
	return -1;
}

int config_load(struct config *cfg, const char *path, char *err,
		size_t errlen)
{
	const char *env = getenv("DATABASE_URL");
	json_error_t jerr;
	const char *key;
	json_t *root, *v;
	int rc = 0;

	if (path) {
		root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
		if (!root) {
			snprintf(err, errlen, "%s:%d: %s", path, jerr.line,
				 jerr.text);
			return -1;
		}
		if (!json_is_object(root)) {
			snprintf(err, errlen, "%s: expected a JSON object",
				 path);
			json_decref(root);
			return -1;
		}
		json_object_foreach(root, key, v) {
			char why[256];

			if (apply_key(cfg, key, v, why, sizeof(why))) {
				snprintf(err, errlen, "%s: %s", path, why);
				rc = -1;
				break;
			}
		}
		json_decref(root);
		if (rc)
			return rc;
	}
	if (env && *env) {
		free(cfg->database_url);
		cfg->database_url = xstrdup(env);
	}
	return 0;
}
