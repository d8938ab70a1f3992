/*
 * main.c - convstored: flags, the store, the key file, signals.
 *
 * Startup order: parse flags; refuse to listen anywhere but loopback without a key file
 * (without one there is no auth); block SIGINT and SIGTERM before any thread exists (every
 * thread inherits the mask), so that only this thread receives them, through sigwait(); load
 * the keys; open the store; start serving and print "listening on ADDR:PORT" (tests read the
 * port).
 *
 * Shutdown (SIGINT or SIGTERM): stop accepting, let in-flight requests finish (server.c),
 * then cs_store_close(), which commits every append already queued, and exit 0.
 *
 * --tls-cert and --tls-key are read here, so that a missing or unreadable file is a clear
 * startup error; libmicrohttpd (built with GnuTLS on Debian) serves HTTPS with them.
 *
 * --no-sync turns fsync off and is for tests and benchmarks only: it is honoured only when
 * that exact flag is given (no environment variable, no abbreviation) and logs a loud warning.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "server.h"

#define DRAIN_GRACE_MS 10000
#define CS_INITIAL_MAP (64u << 20) /* the store's default first map size */

static const char usage_text[] =
    "usage: convstored [options]\n"
    "  --data DIR          store folder (default ./convstore-data)\n"
    "  --listen ADDR       numeric IPv4 or IPv6 address (default 127.0.0.1)\n"
    "  --port N            port (default 7070; 0: pick a free one and print it)\n"
    "  --threads N         requests handled at once (worker threads, default 64)\n"
    "  --max-connections N open connections, streams and idle ones included (default 10000)\n"
    "  --idle-timeout S    close a connection that makes no progress for S seconds: an idle\n"
    "                      client, or a stream reader that stopped reading (default 60)\n"
    "  --heartbeat-ms MS   comment line on a quiet SSE stream this often (default 15000)\n"
    "  --max-queue N       requests waiting for a worker before new ones get 503 (default\n"
    "                      1024)\n"
    "  --rate-limit N      requests a second per tenant before 429 (default 0: no limit)\n"
    "  --rate-burst N      requests a tenant may make at once (default: the rate)\n"
    "  --tls-cert FILE     serve HTTPS with this PEM certificate (chain) ...\n"
    "  --tls-key FILE      ... and this PEM private key\n"
    "  --max-body BYTES    largest request body (default 33554432)\n"
    "  --max-event BYTES   largest event (default 16777216)\n"
    "  --max-events N      most events in one append (default 10000)\n"
    "  --max-map BYTES     cap the store's map (default: as far as the disk goes)\n"
    "  --keys FILE         key file: '<sha-256 of token> <tenant> <role>' lines; without it\n"
    "                      one tenant 'default', no auth, loopback addresses only\n"
    "  --no-sync           DANGER: no fsync; acknowledged appends can be lost (tests only)\n"
    "  --log-level LEVEL   error, warn, info (default) or debug\n"
    "  --retention-interval SECONDS\n"
    "                      apply the conversations' retention policies this often (default\n"
    "                      60; 0: never)\n"
    "  --keygen TENANT ROLE  print a new token and its key-file line, and exit\n"
    "  --routes            print the route table (METHOD PATH) and exit\n"
    "  --help              this text\n";

enum {
	OPT_DATA = 1,
	OPT_LISTEN,
	OPT_PORT,
	OPT_THREADS,
	OPT_MAX_CONNECTIONS,
	OPT_IDLE_TIMEOUT,
	OPT_HEARTBEAT,
	OPT_MAX_QUEUE,
	OPT_RATE_LIMIT,
	OPT_RATE_BURST,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_MAX_BODY,
	OPT_MAX_EVENT,
	OPT_MAX_EVENTS,
	OPT_MAX_MAP,
	OPT_KEYS,
	OPT_NO_SYNC,
	OPT_LOG_LEVEL,
	OPT_RETENTION,
	OPT_KEYGEN,
	OPT_ROUTES,
	OPT_HELP
};

static const struct option options[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"port", required_argument, NULL, OPT_PORT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
    {"max-queue", required_argument, NULL, OPT_MAX_QUEUE},
    {"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},
    {"rate-burst", required_argument, NULL, OPT_RATE_BURST},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"max-event", required_argument, NULL, OPT_MAX_EVENT},
    {"max-events", required_argument, NULL, OPT_MAX_EVENTS},
    {"max-map", required_argument, NULL, OPT_MAX_MAP},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"no-sync", no_argument, NULL, OPT_NO_SYNC},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"retention-interval", required_argument, NULL, OPT_RETENTION},
    {"keygen", required_argument, NULL, OPT_KEYGEN},
    {"routes", no_argument, NULL, OPT_ROUTES},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int bad_flag(const char *flag, const char *value)
{
	fprintf(stderr, "convstored: bad value '%s' for --%s\n%s", value, flag, usage_text);
	return 2;
}

static bool number_in(size_t *out, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;
	if (!cs_parse_u64(&v, s) || v < min || v > max)
		return false;
	*out = (size_t)v;
	return true;
}

static bool log_level_parse(enum cs_log_level *out, const char *s)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum cs_log_level)i;
			return true;
		}
	return false;
}

/* One flag with a value; 0 or the exit status. */
static int flag_value(cs_config *c, int opt, const char *v)
{
	size_t n;
	switch (opt) {
	case OPT_DATA: c->data = v; return 0;
	case OPT_LISTEN: c->listen = v; return 0;
	case OPT_KEYS: c->keys = v; return 0;
	case OPT_PORT:
		if (!number_in(&n, v, 0, 65535))
			return bad_flag("port", v);
		c->port = (unsigned)n;
		return 0;
	case OPT_THREADS:
		if (!number_in(&n, v, 1, 4096))
			return bad_flag("threads", v);
		c->threads = (unsigned)n;
		return 0;
	case OPT_MAX_CONNECTIONS:
		if (!number_in(&n, v, 1, 1000000))
			return bad_flag("max-connections", v);
		c->max_connections = (unsigned)n;
		return 0;
	case OPT_IDLE_TIMEOUT:
		if (!number_in(&n, v, 1, 86400))
			return bad_flag("idle-timeout", v);
		c->idle_timeout = (unsigned)n;
		return 0;
	case OPT_TLS_CERT: c->tls_cert = v; return 0;
	case OPT_TLS_KEY: c->tls_key = v; return 0;
	case OPT_MAX_QUEUE:
		if (!number_in(&n, v, 1, 1000000))
			return bad_flag("max-queue", v);
		c->max_queue = (unsigned)n;
		return 0;
	case OPT_RATE_LIMIT:
		if (!number_in(&n, v, 0, 10000000))
			return bad_flag("rate-limit", v);
		c->rate_limit = (unsigned)n;
		return 0;
	case OPT_RATE_BURST:
		if (!number_in(&n, v, 1, 10000000))
			return bad_flag("rate-burst", v);
		c->rate_burst = (unsigned)n;
		return 0;
	case OPT_HEARTBEAT:
		if (!number_in(&n, v, 10, 3600000))
			return bad_flag("heartbeat-ms", v);
		c->heartbeat_ms = (unsigned)n;
		return 0;
	case OPT_MAX_BODY:
		return number_in(&c->max_body, v, 1, SIZE_MAX / 2) ? 0 : bad_flag("max-body", v);
	case OPT_MAX_EVENT:
		return number_in(&c->max_event, v, 64, CS_MAX_EVENT_BYTES_LIMIT)
			   ? 0
			   : bad_flag("max-event", v);
	case OPT_MAX_EVENTS:
		return number_in(&c->max_events, v, 1, 1000000) ? 0 : bad_flag("max-events", v);
	case OPT_MAX_MAP:
		return number_in(&c->max_map, v, 1u << 20, SIZE_MAX / 2) ? 0
									 : bad_flag("max-map", v);
	case OPT_LOG_LEVEL: return log_level_parse(&c->log_level, v) ? 0 : bad_flag("log-level", v);
	case OPT_RETENTION:
		if (!number_in(&n, v, 0, 86400 * 365))
			return bad_flag("retention-interval", v);
		c->retention_interval = (unsigned)n;
		return 0;
	default: fputs(usage_text, stderr); return 2;
	}
}

static int print_routes(void)
{
	for (int i = 0; i < CS_ROUTE_COUNT; i++)
		printf("%s %s\n", cs_routes[i].method, cs_routes[i].path);
	return 0;
}

static int keygen(int argc, char **argv, const char *tenant)
{
	cs_error err = CS_ERROR_INIT;
	if (optind != argc - 1) {
		fprintf(stderr, "usage: convstored --keygen TENANT ROLE\n");
		return 2;
	}
	if (cs_keygen(tenant, argv[optind], &err)) {
		fprintf(stderr, "convstored: %s\n", err.msg);
		return 2;
	}
	return 0;
}

/* Parse argv into @c. Returns -1 to go on, or an exit status (help, keygen, routes, errors). */
static int parse_flags(cs_config *c, int argc, char **argv)
{
	int opt;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		int rc = -1;
		if (opt == OPT_HELP) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (opt == OPT_ROUTES)
			return print_routes();
		if (opt == OPT_KEYGEN)
			return keygen(argc, argv, optarg);
		if (opt == OPT_NO_SYNC && strcmp(argv[optind - 1], "--no-sync") != 0) {
			fprintf(stderr, "convstored: --no-sync must be spelled out in full\n");
			return 2;
		}
		if (opt == OPT_NO_SYNC)
			c->no_sync = true;
		else if ((rc = flag_value(c, opt, optarg)) != 0)
			return rc;
	}
	if (optind != argc) {
		fprintf(stderr, "convstored: unexpected argument '%s'\n%s", argv[optind],
			usage_text);
		return 2;
	}
	return -1;
}

/* @addr from --listen; false when it is not a numeric address. */
static bool address_parse(struct sockaddr_storage *addr, const cs_config *c, bool *loopback)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
	memset(addr, 0, sizeof(*addr));
	if (inet_pton(AF_INET, c->listen, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)c->port);
		*loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
		return true;
	}
	if (inet_pton(AF_INET6, c->listen, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)c->port);
		*loopback =
		    memcmp(&v6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback)) == 0;
		return true;
	}
	return false;
}

static int open_store(cs_server *srv, cs_error *err)
{
	cs_store_options o = CS_STORE_OPTIONS_INIT;
	o.path = srv->cfg.data;
	o.no_sync = srv->cfg.no_sync;
	o.max_event_bytes = srv->cfg.max_event;
	o.max_request_events = srv->cfg.max_events;
	o.max_map_size = srv->cfg.max_map;
	if (o.max_map_size && o.max_map_size < CS_INITIAL_MAP)
		o.map_size = o.max_map_size;
	if (srv->cfg.no_sync)
		cs_log(srv, CS_LOG_WARN,
		       "WARNING: --no-sync: commits are NOT flushed to disk; acknowledged appends "
		       "can be lost in a crash. For tests and benchmarks only.");
	return cs_store_open(&srv->store, &o, err);
}

/* Apply the retention policies (the store removes what they no longer keep). */
static void sweep(cs_server *srv)
{
	uint64_t removed = 0;
	cs_error err = CS_ERROR_INIT;
	if (cs_store_retention_sweep(&removed, srv->store, 0, &err))
		cs_log(srv, CS_LOG_ERROR, "retention sweep: %s", err.msg);
	else if (removed)
		cs_log(srv, CS_LOG_INFO, "retention sweep removed %llu events",
		       (unsigned long long)removed);
}

/* Wait for SIGINT or SIGTERM on this (the main) thread, sweeping every retention interval
 * meanwhile; the signal's number. */
static int wait_for_stop(cs_server *srv, const sigset_t *stop)
{
	unsigned every = srv->cfg.retention_interval;
	for (;;) {
		if (!every) {
			int sig = 0;
			sigwait(stop, &sig);
			return sig;
		}
		struct timespec t = {.tv_sec = every};
		int sig = sigtimedwait(stop, NULL, &t);
		if (sig > 0)
			return sig;
		if (errno == EAGAIN)
			sweep(srv);
	}
}

/* Serve until SIGINT or SIGTERM, then drain. */
/* SIGINT and SIGTERM, blocked in every thread so that only wait_for_stop() takes them. */
static void stop_signals(sigset_t *stop)
{
	sigemptyset(stop);
	sigaddset(stop, SIGINT);
	sigaddset(stop, SIGTERM);
}

static int serve(cs_server *srv, const struct sockaddr_storage *addr)
{
	cs_error err = CS_ERROR_INIT;
	sigset_t stop;
	stop_signals(&stop);
	signal(SIGPIPE, SIG_IGN);
	if (cs_server_start(srv, (const struct sockaddr *)addr, &err)) {
		cs_log(srv, CS_LOG_ERROR, "%s", err.msg);
		return 1;
	}
	unsigned port = cs_server_port(srv);
	bool v6 = addr->ss_family == AF_INET6;
	printf("listening on %s%s%s:%u\n", v6 ? "[" : "", srv->cfg.listen, v6 ? "]" : "", port);
	fflush(stdout);
	cs_log(srv, CS_LOG_INFO, "convstored serving %s on %s port %u%s", srv->cfg.data,
	       srv->cfg.listen, port, srv->keys ? "" : " (no key file: tenant default, no auth)");
	int sig = wait_for_stop(srv, &stop);
	cs_log(srv, CS_LOG_INFO, "signal %d: draining %d in-flight requests", sig,
	       atomic_load(&srv->in_flight));
	cs_server_drain(srv, DRAIN_GRACE_MS);
	return 0;
}

/* Read a PEM file (--tls-cert, --tls-key) into a NUL-terminated buffer. */
static int read_pem(char **out, const char *path, cs_error *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	if (f) {
		FILE *m = open_memstream(&buf, &len);
		char chunk[4096];
		size_t n;
		while (m && (n = fread(chunk, 1, sizeof(chunk), f)) > 0 && len < (1u << 20))
			fwrite(chunk, 1, n, m);
		if (m)
			fclose(m);
		fclose(f);
	}
	if (!f || !buf || !strstr(buf, "-----BEGIN ")) {
		free(buf);
		return cs_error_set(err, CS_EINVAL, "%s: %s", path,
				    f ? "not a PEM file" : strerror(errno));
	}
	*out = buf;
	return CS_OK;
}

/* Every connection is a descriptor: lift the soft limit to the hard one, and say when the
 * hard one is below --max-connections. */
static void raise_fd_limit(const cs_server *srv)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)srv->cfg.max_connections + 64)
		cs_log(
		    srv, CS_LOG_WARN,
		    "open files are limited to %llu, below --max-connections %u: raise ulimit -n",
		    (unsigned long long)rl.rlim_cur, srv->cfg.max_connections);
}

int main(int argc, char **argv)
{
	static cs_server srv; /* large (metrics); lives for the whole run */
	cs_config *c = &srv.cfg;
	cs_config_defaults(c);
	int rc = parse_flags(c, argc, argv);
	if (rc >= 0)
		return rc;
	struct sockaddr_storage addr;
	bool loopback = false;
	if (!address_parse(&addr, c, &loopback))
		return bad_flag("listen", c->listen);
	if (!c->keys && !loopback) {
		fprintf(stderr,
			"convstored: without --keys there is no auth, so only a loopback "
			"address may be used (not %s)\n",
			c->listen);
		return 2;
	}
	/* Before any thread exists (the store's writer starts in open_store()): a thread that
	 * does not block them could take a SIGTERM and end the process without a drain. */
	sigset_t stop;
	stop_signals(&stop);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (!c->tls_cert != !c->tls_key) {
		fprintf(stderr, "convstored: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (!c->rate_burst)
		c->rate_burst = c->rate_limit;
	cs_error err = CS_ERROR_INIT;
	if ((c->tls_cert && (read_pem(&srv.tls_cert_pem, c->tls_cert, &err) ||
			     read_pem(&srv.tls_key_pem, c->tls_key, &err))) ||
	    (c->keys && cs_keyring_load(&srv.keys, c->keys, &err)) || cs_limits_init(&srv, &err) ||
	    open_store(&srv, &err)) {
		fprintf(stderr, "convstored: %s\n", err.msg);
		cs_keyring_free(srv.keys);
		cs_limits_free(&srv);
		free(srv.tls_cert_pem);
		free(srv.tls_key_pem);
		return 1;
	}
	raise_fd_limit(&srv);
	rc = serve(&srv, &addr);
	cs_store_close(srv.store); /* commits whatever is still queued */
	cs_keyring_free(srv.keys);
	cs_limits_free(&srv);
	free(srv.tls_cert_pem);
	if (srv.tls_key_pem)
		explicit_bzero(srv.tls_key_pem, strlen(srv.tls_key_pem));
	free(srv.tls_key_pem);
	cs_log(&srv, CS_LOG_INFO, "convstored stopped");
	return rc;
}
