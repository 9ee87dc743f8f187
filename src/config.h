/*
 * Configuration: a JSON file (jansson) plus DATABASE_URL from the
 * environment, validated once at start and read-only afterwards.
 */
#ifndef BD_CONFIG_H
#define BD_CONFIG_H

#include <stddef.h>

struct config {
	char *instance_id;		/* names this instance in logs/health */
	char *listen_address;		/* IPv4 address both listeners bind */
	int tcp_port;			/* line protocol; 0: any free port */
	int http_port;			/* HTTP API and /health; 0: any */
	char *database_url;		/* libpq conninfo or URL */
	char *static_dir;		/* files served at / over HTTP */
	size_t history_size;		/* messages kept per room in memory */
	size_t max_message_bytes;	/* content bytes per message */
	size_t outq_limit_bytes;	/* output queued per connection */
	int log_level;			/* enum log_level */
	int log_format;			/* enum log_format */
	char *log_file;			/* append here; NULL: stderr */
	unsigned cleanup_interval_s;	/* retention job period, 0 = off */
	unsigned cleanup_keep;		/* messages kept per room by it */
	unsigned session_idle_timeout_s; /* HTTP session without activity */
	unsigned sse_heartbeat_s;	/* ": ping" comment period */
	unsigned presence_timeout_s;	/* silent instances leave presence */
	size_t max_rooms;		/* rooms /create may make in total */
	size_t max_rooms_per_user;	/* rooms one user may /join or make */
	unsigned shutdown_timeout_s;	/* drain at most this long */
	unsigned msg_rate_per_s, msg_burst;	/* per session; rate 0: off */
	unsigned cmd_rate_per_s, cmd_burst;
	unsigned max_connections;	/* client connections; 0: no limit */
	unsigned max_connections_per_ip;	/* 0: no limit */
	unsigned connect_rate_per_min, connect_burst;	/* new HTTP sessions
							 * per address */
	unsigned create_rate_per_min, create_burst;	/* /create per
							 * address */
	char *real_ip_from;		/* a proxy whose X-Real-IP names the
					 * client; NULL: none */
	unsigned tcp_idle_timeout_s;	/* silent TCP clients; 0: never */
	unsigned tcp_line_timeout_s;	/* unfinished lines; 0: never */
	unsigned db_queue_limit;	/* user requests waiting for the
					 * database; more: "server busy" */
};

/* Largest max_message_bytes: escaped content plus the rest of the NOTIFY
 * payload must stay under PostgreSQL's 8000-byte limit. */
#define CONFIG_MESSAGE_BYTES_MAX 3500

/* Defaults for every key. */
void config_defaults(struct config *cfg);
/* Reads path (NULL: defaults only) and applies DATABASE_URL. On error
 * returns -1 with a one-line explanation in err. */
int config_load(struct config *cfg, const char *path, char *err,
		size_t errlen);
void config_fini(struct config *cfg);

#endif
