/*
 * babydiscord: arguments, configuration, the lws context with its three
 * vhosts (raw TCP, HTTP, and an internal one for libpq sockets), signals,
 * the event loop and an orderly shutdown.
 *
 * The loop is libuv's (epoll underneath), created here and lent to lws as
 * a foreign loop: lws's event-library plugin watches every socket with a
 * uv_poll handle, so a pass costs what is ready, not what is open. Signals
 * are uv_signal handles, handled on the loop like any other event.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <uv.h>

#include "config.h"
#include "core/chat.h"
#include "log.h"
#include "net/net.h"
#include "store/pgconn.h"
#include "store/store.h"
#include "util/clock.h"

#define BD_VERSION "0.1.0"

struct app {
	struct config cfg;
	struct net_ctx net;		/* the context's user data */
	struct lws_context *ctx;
	struct store *store;
	struct chat *chat;
	bool stopping;			/* shutdown started */
	bool done;			/* leave the loop */
	int tcp_port;			/* bound line protocol port */
	int http_port;			/* bound HTTP port */
	lws_sorted_usec_list_t sul_grace;
	uv_loop_t loop;
	uv_signal_t sigint, sigterm, sighup;
	const char *config_path;	/* re-read on SIGHUP */
};

static void lws_log_emit(int level, const char *line)
{
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	char msg[512];

	snprintf(msg, sizeof(msg), "%.*s", (int)(n < 511 ? n : 511), line);
	log_at(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws",
	       LOG_S("msg", msg));
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: babydiscord [--config FILE]\n"
		"  -c, --config FILE  JSON configuration (see config/default.json)\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n"
		"DATABASE_URL in the environment overrides database_url.\n");
}

static bool db_ok(void *arg)
{
	return store_is_connected(arg);
}

static double db_queue(void *arg)
{
	return store_notify_queue_usage(arg);
}

static void db_stats(void *arg, struct net_db_stats *out)
{
	struct store_stats ss;

	store_get_stats(arg, &ss);
	out->queued = ss.queued;
	out->queued_user = ss.queued_user;
	out->limit = ss.queue_limit;
	out->refused = ss.refused;
	out->dropped = ss.dropped;
	out->errors = ss.errors;
	out->reconnects = ss.reconnects;
	out->lost = ss.lost;
	out->notifications = ss.notifications;
	out->query_idle = ss.query_idle;
	out->post_batches = ss.post_batches;
	out->ctl_batches = ss.ctl_batches;
}

static void on_ready(void *arg)
{
	struct app *app = arg;

	char tcp[80], http[80];

	snprintf(tcp, sizeof(tcp), "%s:%d", app->cfg.listen_address,
		 app->tcp_port);
	snprintf(http, sizeof(http), "%s:%d", app->cfg.listen_address,
		 app->http_port);
	log_info("ready", LOG_S("tcp", tcp), LOG_S("http", http));
}

static void grace_cb(lws_sorted_usec_list_t *sul)
{
	struct app *app = lws_container_of(sul, struct app, sul_grace);

	log_warn("stop_grace_expired",
		 LOG_U("connections", chat_session_count(app->chat)));
	app->done = true;
}

static const struct lws_protocols internal_protocols[] = {
	{ "db", pgconn_lws_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static struct lws_protocols tcp_protocols[] = {
	{ "tcp", tcp_callback, 0, 4096, 0, NULL, NET_CHUNK },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static struct lws_protocols http_protocols[] = {
	{ "http", http_callback, 0, 4096, 0, NULL, NET_CHUNK },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/*
 * A listening vhost whose connections are raw sockets of protocols[0]
 * (name is also the protocol's name). The HTTP one too: HTTP is framed by
 * net/http.c itself (lws 4.1's HTTP role re-feeds unread and pipelined
 * input; see doc/lws-4.1.md). IPv6 is off: with it, lws 4.1 binds an IPv4
 * iface to [::]. *bound is the port bound (port 0: a free one).
 */
static int listen_vhost(struct app *app, const char *name, int port,
			struct lws_protocols *protocols, size_t pss_size,
			int *bound)
{
	struct lws_context_creation_info info;
	struct lws_vhost *vh;

	memset(&info, 0, sizeof(info));
	info.vhost_name = name;
	info.port = port;
	info.iface = app->cfg.listen_address;
	info.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG |
		       LWS_SERVER_OPTION_DISABLE_IPV6;
	info.listen_accept_role = "raw-skt";
	info.listen_accept_protocol = name;
	protocols[0].per_session_data_size = pss_size;
	info.protocols = protocols;
	vh = lws_create_vhost(app->ctx, &info);
	if (!vh)
		return -1;
	*bound = lws_get_vhost_listen_port(vh);
	return 0;
}

/*
 * Port 0 in the config lets the kernel pick a free port; the ports actually
 * bound are kept in app and are the ones the ready line reports.
 */
static int create_vhosts(struct app *app, struct lws_vhost **internal)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.vhost_name = "internal";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = internal_protocols;
	*internal = lws_create_vhost(app->ctx, &info);
	if (!*internal)
		return -1;
	if (listen_vhost(app, "tcp", app->cfg.tcp_port, tcp_protocols,
			 tcp_pss_size(), &app->tcp_port) ||
	    listen_vhost(app, "http", app->cfg.http_port, http_protocols,
			 http_pss_size(), &app->http_port))
		return -1;
	return 0;
}

static int parse_args(int argc, char **argv, const char **config)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			*config = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("babydiscord %s\n", BD_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "babydiscord: unexpected argument: %s\n",
			argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

static void grace_cb(lws_sorted_usec_list_t *sul);

/*
 * Stops accepting on a listening port while its connections go on being
 * served. lws 4.1 has no call for that (destroying the vhost closes its
 * connections too), so the listening socket is found among the low
 * descriptors (the listeners are the first sockets made) and replaced,
 * by dup2(), with an eventfd that is never written: the listening socket
 * is closed at once (new connections are refused, so a proxy tries
 * another instance), and lws keeps a descriptor of its own to close at
 * the end. Not another socket: an unbound TCP socket reports EPOLLHUP,
 * and lws then called accept() on it a million times a second; an
 * eventfd at 0 never reports anything lws asks for.
 */
static void close_listener(int port)
{
	for (int fd = 0; fd < 256; fd++) {
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);
		int on = 0, s;
		socklen_t olen = sizeof(on);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen) ||
		    !on || getsockname(fd, (struct sockaddr *)&sa, &len) ||
		    sa.sin_family != AF_INET || ntohs(sa.sin_port) != port)
			continue;
		s = eventfd(0, EFD_CLOEXEC);
		if (s < 0 || dup2(s, fd) < 0)
			log_warn("listener_close_failed", LOG_I("port", port),
				 LOG_S("reason", strerror(errno)));
		if (s >= 0)
			close(s);
		return;
	}
}

/*
 * SIGINT or SIGTERM, on the loop: drain. /health says 503 "draining" at
 * once, the listeners close, every client is told to reconnect and
 * closed once its output is out, streams end (EventSource reconnects
 * elsewhere and resumes), batches in flight commit and deliver; the loop
 * ends when the last client and statement are gone, or after
 * shutdown_timeout_s.
 */
static void on_signal(uv_signal_t *h, int sig)
{
	struct app *app = h->data;

	if (app->stopping)
		return;
	app->stopping = true;
	app->net.draining = true;
	close_listener(app->tcp_port);
	close_listener(app->http_port);
	log_info("stop", LOG_S("reason", sig == SIGINT ? "SIGINT" : "SIGTERM"),
		 LOG_U("connections", chat_session_count(app->chat)));
	/* Stored API sessions outlive the instance: stop first, so that
	 * closing them here ends nothing. */
	http_state_stop(app->net.http);
	chat_shutdown(app->chat);
	lws_sul_schedule(app->ctx, 0, &app->sul_grace, grace_cb,
			 (lws_usec_t)app->cfg.shutdown_timeout_s *
				 LWS_US_PER_SEC);
}

/*
 * SIGHUP: reopen log_file (after a rotation) and take log_level from the
 * config file again. Reading a small local file is the only blocking
 * work here, once per signal.
 */
static void on_hup(uv_signal_t *h, int sig)
{
	struct app *app = h->data;
	struct config fresh;
	char err[512];

	(void)sig;
	if (app->cfg.log_file && log_open_file(app->cfg.log_file))
		log_error("log_reopen_failed", LOG_S("file", app->cfg.log_file),
			  LOG_S("reason", strerror(errno)));
	config_defaults(&fresh);
	if (config_load(&fresh, app->config_path, err, sizeof(err))) {
		log_warn("reload_failed", LOG_S("reason", err));
	} else {
		log_min_level = (enum log_level)fresh.log_level;
		log_info("reload", LOG_S("log_level",
					 log_level_name(log_min_level)));
	}
	config_fini(&fresh);
}

static int loop_init(struct app *app)
{
	if (uv_loop_init(&app->loop))
		return -1;
	uv_signal_init(&app->loop, &app->sigint);
	uv_signal_init(&app->loop, &app->sigterm);
	uv_signal_init(&app->loop, &app->sighup);
	app->sigint.data = app;
	app->sigterm.data = app;
	app->sighup.data = app;
	if (uv_signal_start(&app->sigint, on_signal, SIGINT) ||
	    uv_signal_start(&app->sigterm, on_signal, SIGTERM) ||
	    uv_signal_start(&app->sighup, on_hup, SIGHUP))
		return -1;
	return 0;
}

static void run_loop(struct app *app)
{
	while (!app->done) {
		uv_run(&app->loop, UV_RUN_ONCE);
		/* Done when every client is gone and so are their presence
		 * rows (or the grace timer says enough). */
		if (app->stopping && !chat_session_count(app->chat) &&
		    store_is_idle(app->store))
			app->done = true;
	}
	lws_sul_cancel(&app->sul_grace);
}

/*
 * With a foreign loop, the first lws_context_destroy() only starts closing
 * (libuv closes handles asynchronously); the loop runs until every handle,
 * ours included, is closed; the second call then frees the context.
 */
static void loop_fini(struct app *app)
{
	uv_close((uv_handle_t *)&app->sigint, NULL);
	uv_close((uv_handle_t *)&app->sigterm, NULL);
	uv_close((uv_handle_t *)&app->sighup, NULL);
	if (app->ctx) {
		lws_context_destroy(app->ctx);
		uv_run(&app->loop, UV_RUN_DEFAULT);
		lws_context_destroy(app->ctx);
		app->ctx = NULL;
	}
	uv_run(&app->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&app->loop))
		log_warn("stop_handles_left");
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct chat_config ccfg;
	struct lws_vhost *internal;
	void *foreign_loops[1];
	const char *config_path = NULL;
	struct app app;
	char err[512];

	memset(&app, 0, sizeof(app));
	if (parse_args(argc, argv, &config_path))
		return 2;
	config_defaults(&app.cfg);
	if (config_load(&app.cfg, config_path, err, sizeof(err))) {
		fprintf(stderr, "babydiscord: config: %s\n", err);
		config_fini(&app.cfg);
		return 2;
	}
	app.config_path = config_path;
	log_min_level = (enum log_level)app.cfg.log_level;
	log_setup((enum log_format)app.cfg.log_format, app.cfg.instance_id);
	if (app.cfg.log_file && log_open_file(app.cfg.log_file)) {
		fprintf(stderr, "babydiscord: log_file %s: %s\n",
			app.cfg.log_file, strerror(errno));
		config_fini(&app.cfg);
		return 2;
	}
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

	signal(SIGPIPE, SIG_IGN);
	if (loop_init(&app)) {
		log_error("start_failed", LOG_S("reason", "libuv loop"));
		config_fini(&app.cfg);
		return 1;
	}

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_LIBUV;
	foreign_loops[0] = &app.loop;
	info.foreign_loops = foreign_loops;
	info.user = &app.net;
	app.ctx = lws_create_context(&info);
	if (!app.ctx) {
		log_error("start_failed",
			  LOG_S("reason", "cannot create the lws context (is "
					  "libwebsockets-evlib-uv installed?)"));
		loop_fini(&app);
		config_fini(&app.cfg);
		return 1;
	}
	if (create_vhosts(&app, &internal)) {
		log_error("start_failed", LOG_S("reason", "cannot listen"),
			  LOG_S("address", app.cfg.listen_address),
			  LOG_I("tcp_port", app.cfg.tcp_port),
			  LOG_I("http_port", app.cfg.http_port));
		loop_fini(&app);
		config_fini(&app.cfg);
		return 1;
	}

	memset(&ccfg, 0, sizeof(ccfg));
	ccfg.history_size = app.cfg.history_size;
	ccfg.max_message_bytes = app.cfg.max_message_bytes;
	ccfg.outq_limit = app.cfg.outq_limit_bytes;
	ccfg.max_rooms = app.cfg.max_rooms;
	ccfg.max_rooms_per_user = app.cfg.max_rooms_per_user;
	ccfg.msg_rate = app.cfg.msg_rate_per_s;
	ccfg.msg_burst = app.cfg.msg_burst;
	ccfg.cmd_rate = app.cfg.cmd_rate_per_s;
	ccfg.cmd_burst = app.cfg.cmd_burst;
	ccfg.connect_per_min = app.cfg.connect_rate_per_min;
	ccfg.connect_burst = app.cfg.connect_burst;
	ccfg.create_per_min = app.cfg.create_rate_per_min;
	ccfg.create_burst = app.cfg.create_burst;
	if (getrandom(&ccfg.seed, sizeof(ccfg.seed), 0) !=
	    (ssize_t)sizeof(ccfg.seed))
		ccfg.seed = (uint64_t)time(NULL);
	app.store = store_new(app.ctx, internal, app.cfg.database_url,
			      app.cfg.instance_id, app.cfg.presence_timeout_s,
			      on_ready, &app);
	app.chat = chat_new(&ccfg, &store_ops, app.store);
	store_set_chat(app.store, app.chat);
	app.net.chat = app.chat;
	app.net.instance_id = app.cfg.instance_id;
	app.net.db_ok = db_ok;
	app.net.db_queue = db_queue;
	app.net.db_stats = db_stats;
	app.net.db_arg = app.store;
	net_limits_init(&app.net.limits, app.cfg.max_connections,
			app.cfg.max_connections_per_ip);
	app.net.tcp_idle_s = app.cfg.tcp_idle_timeout_s;
	app.net.tcp_line_s = app.cfg.tcp_line_timeout_s;
	app.net.real_ip_from = app.cfg.real_ip_from;
	/* One token comes back every 60 / rate seconds. */
	app.net.connect_retry_s = app.cfg.connect_rate_per_min ?
		(60 + app.cfg.connect_rate_per_min - 1) /
			app.cfg.connect_rate_per_min : 1;
	tcp_sweep_start(app.ctx, &app.net);
	app.net.started_s = clock_mono_ns() / 1000000000;
	app.net.http = http_state_new(app.ctx, app.chat, app.cfg.static_dir,
				      app.cfg.session_idle_timeout_s,
				      app.cfg.sse_heartbeat_s);
	store_schedule_cleanup(app.store, app.cfg.cleanup_interval_s,
			       app.cfg.cleanup_keep);
	store_set_queue_limit(app.store, app.cfg.db_queue_limit);
	log_info("start", LOG_S("version", BD_VERSION),
		 LOG_S("address", app.cfg.listen_address),
		 LOG_I("tcp_port", app.tcp_port),
		 LOG_I("http_port", app.http_port));
	store_start(app.store);

	run_loop(&app);

	store_stop(app.store);
	tcp_sweep_stop(&app.net);
	loop_fini(&app);	/* closes every connection */
	http_state_free(app.net.http);
	net_limits_fini(&app.net.limits);
	store_free(app.store);
	chat_free(app.chat);
	config_fini(&app.cfg);
	log_info("stopped");
	log_close_file();
	return 0;
}
