/*
 * server.c - the request life cycle on libmicrohttpd.
 *
 * Threading model: libmicrohttpd runs its own event loops (epoll, a pool of POLL_THREADS
 * threads) that only read requests and write responses; every connection, idle or streaming,
 * costs a socket and a little memory but no thread. When a request is complete its connection
 * is suspended and the request goes to the worker pool (workers.c), because handlers may block.
 * The one exception is the hot path: an append with a body of at most CS_INLINE_APPEND_BODY is
 * decoded right here and queued in the store with a completion callback (conv.c), so no thread
 * waits for its group commit and 64 clients appending at once still share one commit. Long polls
 * and SSE streams wait in the feed hub (hub.c), suspended, holding no thread; --max-connections
 * caps the connections, --threads the handlers running at once. A connection that makes no progress
 * for --idle-timeout seconds is closed: an idle client, or a stream reader that stopped reading
 * once its socket buffers filled (suspended connections - requests being handled, parked waits - do
 * not count as idle).
 *
 * A request goes through on_request() in three steps:
 *   1. headers (first call): route (404, 405), auth (401, 403, before the conversation id is
 *      even looked at), the tenant's rate (429), the id (400), query parameters (400), content type
 * (415), and Content-Length against --max-body (413) - all before a byte of the body is read;
 *   2. body chunks: appended to a buffer that never grows past --max-body; a body that
 *      streams past it (chunked encoding) is dropped as it arrives and answered 413;
 *   3. final call: the route's handler, which queues exactly one response.
 * on_completed() logs the one line and counts the metrics, whatever happened.
 *
 * Writes wake the feed through cs_hub_notify() (cs_write_done() in conv.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define POLL_THREADS 2

static bool route_has_body(enum cs_route_id route)
{
	const char *m = cs_routes[route].method;
	return strcmp(m, "POST") == 0 || strcmp(m, "PATCH") == 0;
}

/* Content-Length against --max-body; a body without one is counted as it streams. */
static int check_length(cs_req *r, cs_error *err)
{
	const char *cl = cs_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t n;
	if (cl && cs_parse_u64(&n, cl) && n > r->srv->cfg.max_body)
		return cs_error_set(err, CS_ETOOBIG, "body of %llu bytes is over the limit of %zu",
				    (unsigned long long)n, r->srv->cfg.max_body);
	return CS_OK;
}

/* Step 1: everything that can be refused from the headers alone. */
static enum MHD_Result on_headers(cs_req *r, const char *url)
{
	cs_error err = CS_ERROR_INIT;
	int rc = cs_route_match(r, r->method, url, &err);
	if (!rc)
		rc = cs_auth_check(r, &err);
	if (!rc)
		rc = cs_rate_check(r, &err);
	if (!rc)
		rc = cs_route_id(r, &err);
	if (!rc)
		rc = cs_query_parse(r, &err);
	if (!rc)
		rc = cs_req_negotiate(r, route_has_body(r->route), &err);
	if (!rc)
		rc = check_length(r, &err);
	if (rc)
		return cs_reply_error(r, &err);
	return MHD_YES;
}

/* Step 2: one chunk of the body. */
static void on_body(cs_req *r, const char *data, size_t len)
{
	size_t max = r->srv->cfg.max_body;
	if (r->body_too_big || len > max - r->body_len) {
		r->body_too_big = true; /* drop it all: the answer is 413 */
		free(r->body);
		r->body = NULL;
		r->body_len = r->body_cap = 0;
		return;
	}
	if (r->body_len + len + 1 > r->body_cap) {
		size_t cap = r->body_cap ? r->body_cap : 4096;
		while (cap < r->body_len + len + 1)
			cap *= 2;
		char *grown = realloc(r->body, cap);
		if (!grown) {
			r->body_too_big = true;
			return;
		}
		r->body = grown;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	(void)version;
	cs_req *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		r->srv = cls;
		r->conn = conn;
		r->method = method;
		r->route = CS_ROUTE_NONE;
		clock_gettime(CLOCK_MONOTONIC, &r->start);
		atomic_fetch_add(&r->srv->in_flight, 1);
		return on_headers(r, url);
	}
	if (*upload_data_size) {
		if (!r->answered)
			on_body(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	if (r->failed)
		return MHD_NO;
	if (r->append_op) /* resumed by the store's writer: answer the append */
		return cs_h_append(r);
	if (r->body_too_big)
		return cs_reply_fail(r, CS_ETOOBIG, "body is over the limit of %zu bytes",
				     r->srv->cfg.max_body);
	if (!r->dispatched && atomic_load(&r->srv->closing)) { /* the pool is stopping */
		r->retry_after = 1;
		return cs_reply_fail(r, CS_ECLOSED, "the server is shutting down");
	}
	if (!r->dispatched && r->route == CS_ROUTE_APPEND && r->body_len <= CS_INLINE_APPEND_BODY) {
		/* a small append: decoded here, committed with no thread waiting (conv.c) */
		r->dispatched = r->inline_append = true;
		MHD_suspend_connection(conn);
		enum MHD_Result ret = cs_h_append(r);
		if (r->answered || ret == MHD_NO) {
			r->failed = !r->answered;
			MHD_resume_connection(conn);
		}
		return MHD_YES;
	}
	if (!r->dispatched) { /* step 3 on a worker; it resumes the connection when done */
		if (!cs_workers_admit(r->srv)) {
			r->retry_after = 1;
			return cs_reply_fail(r, CS_HTTP_EBUSY,
					     "%u requests are waiting already: retry shortly",
					     r->srv->cfg.max_queue);
		}
		r->dispatched = true;
		MHD_suspend_connection(conn);
		cs_workers_submit(r->srv, r);
	}
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)conn, (void)toe;
	cs_req *r = *con_cls;
	if (!r)
		return;
	uint64_t us = cs_us_since(&r->start);
	if (!r->status) { /* the client went away before an answer */
		r->status = 499;
		snprintf(r->error, sizeof(r->error), "the client closed the connection first");
	}
	cs_metrics_request(&r->srv->metrics, r->route, r->status, us);
	cs_log_request(r, us);
	cs_append_abandon(r);
	for (size_t i = 0; i < r->n_params; i++) {
		free(r->params[i].key);
		free(r->params[i].value);
	}
	free(r->body);
	atomic_fetch_sub(&r->srv->in_flight, 1);
	free(r);
	*con_cls = NULL;
}

/* Paths reach on_request() still percent-encoded: router.c decodes the id segment alone. */
static size_t keep_escapes(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls, (void)conn;
	return strlen(s);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[400];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	cs_log(cls, CS_LOG_WARN, "libmicrohttpd: %s", msg);
}

void cs_config_defaults(cs_config *c)
{
	*c = (cs_config){.data = "./convstore-data",
			 .listen = "127.0.0.1",
			 .port = CS_DEFAULT_PORT,
			 .threads = CS_DEFAULT_THREADS,
			 .max_connections = CS_DEFAULT_CONNECTIONS,
			 .idle_timeout = CS_DEFAULT_IDLE,
			 .heartbeat_ms = CS_DEFAULT_HEARTBEAT,
			 .max_queue = CS_DEFAULT_QUEUE,
			 .max_body = CS_DEFAULT_MAX_BODY,
			 .max_event = CS_DEFAULT_MAX_EVENT_BYTES,
			 .max_events = CS_DEFAULT_MAX_REQUEST_EVENTS,
			 .log_level = CS_LOG_INFO,
			 .retention_interval = 60};
}

int cs_server_start(cs_server *srv, const struct sockaddr *addr, cs_error *err)
{
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG | MHD_USE_TURBO;
	if (addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	bool tls = srv->tls_cert_pem && srv->tls_key_pem;
	if (tls)
		flags |= MHD_USE_TLS;
	int rc = cs_hub_start(srv, err);
	if (!rc)
		rc = cs_workers_start(srv, srv->cfg.threads, err);
	if (rc) {
		cs_hub_stop(srv);
		return rc;
	}
	srv->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, addr,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POLL_THREADS, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, srv, MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL,
	    MHD_OPTION_CONNECTION_LIMIT, srv->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
	    srv->cfg.idle_timeout, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
	    /* without TLS the list ends here and the two options after it are not read */
	    tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, srv->tls_key_pem,
	    MHD_OPTION_HTTPS_MEM_CERT, srv->tls_cert_pem, MHD_OPTION_END);
	if (!srv->daemon) {
		cs_workers_free(srv);
		cs_hub_stop(srv);
		return cs_error_set(err, CS_EIO, "cannot listen on %s port %u%s", srv->cfg.listen,
				    srv->cfg.port,
				    tls ? " (or the TLS certificate and key are not usable)" : "");
	}
	return CS_OK;
}

unsigned cs_server_port(const cs_server *srv)
{
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	return info ? info->port : 0;
}

void cs_server_drain(cs_server *srv, unsigned grace_ms)
{
	atomic_store(&srv->draining, true);
	MHD_quiesce_daemon(srv->daemon);
	cs_hub_drain(srv); /* long polls answer, streams end; nothing parks any more */
	for (unsigned waited = 0; atomic_load(&srv->in_flight) > 0 && waited < grace_ms;
	     waited += 10) {
		struct timespec ten_ms = {0, 10 * 1000 * 1000};
		nanosleep(&ten_ms, NULL);
	}
	atomic_store(&srv->closing, true); /* from here requests are refused, not queued */
	cs_workers_stop(srv); /* finishes what is queued, so no connection stays suspended */
	MHD_stop_daemon(srv->daemon);
	srv->daemon = NULL;
	cs_workers_free(srv);
	cs_hub_stop(srv);
}
