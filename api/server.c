/*
 * server.c - the request life cycle on libmicrohttpd, and the feed signal.
 *
 * Threading model: one thread per connection (MHD_USE_THREAD_PER_CONNECTION). An append
 * blocks its caller until the store's group commit has made it durable, and long polls and SSE
 * streams block by design; with a thread per connection each of those waits costs one parked
 * thread and nothing else, and 64 clients appending at once put 64 requests into one group
 * commit. --threads caps the connections (and so the threads) served at once. Each thread
 * waits for its connection with poll(), not select(): select() cannot watch a descriptor
 * above FD_SETSIZE (1024), and --threads may allow more connections than that.
 *
 * A request goes through on_request() in three steps:
 *   1. headers (first call): route (404, 405), auth (401, 403, before the conversation id is
 *      even looked at), the id (400), query parameters (400), content type (415), and
 *      Content-Length against --max-body (413) - all before a byte of the body is read;
 *   2. body chunks: appended to a buffer that never grows past --max-body; a body that
 *      streams past it (chunked encoding) is dropped as it arrives and answered 413;
 *   3. final call: the route's handler, which queues exactly one response.
 * on_completed() logs the one line and counts the metrics, whatever happened.
 *
 * The feed signal: every successful write bumps feed_seq and broadcasts feed_cond, so long
 * polls and SSE streams wake without polling the store. Draining broadcasts it too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

void cs_server_notify(cs_server *srv)
{
	pthread_mutex_lock(&srv->feed_lock);
	srv->feed_seq++;
	pthread_cond_broadcast(&srv->feed_cond);
	pthread_mutex_unlock(&srv->feed_lock);
}

uint64_t cs_server_seq(cs_server *srv)
{
	pthread_mutex_lock(&srv->feed_lock);
	uint64_t seq = srv->feed_seq;
	pthread_mutex_unlock(&srv->feed_lock);
	return seq;
}

uint64_t cs_server_wait(cs_server *srv, uint64_t seen, const struct timespec *deadline)
{
	pthread_mutex_lock(&srv->feed_lock);
	while (srv->feed_seq == seen && !atomic_load(&srv->draining))
		if (pthread_cond_timedwait(&srv->feed_cond, &srv->feed_lock, deadline))
			break;
	uint64_t seq = srv->feed_seq;
	pthread_mutex_unlock(&srv->feed_lock);
	return seq;
}

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
	if (r->body_too_big)
		return cs_reply_fail(r, CS_ETOOBIG, "body is over the limit of %zu bytes",
				     r->srv->cfg.max_body);
	return cs_routes[r->route].handler(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)conn, (void)toe;
	cs_req *r = *con_cls;
	if (!r)
		return;
	uint64_t us = cs_us_since(&r->start);
	if (!r->status)
		r->status = 499; /* the client went away before an answer */
	cs_metrics_request(&r->srv->metrics, r->route, r->status, us);
	cs_log_request(r, us);
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

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[400];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	cs_log(cls, CS_LOG_WARN, "libmicrohttpd: %s", msg);
}

int cs_server_start(cs_server *srv, const struct sockaddr *addr, cs_error *err)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	srv->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, addr,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_UNESCAPE_CALLBACK,
	    keep_escapes, NULL, MHD_OPTION_CONNECTION_LIMIT, srv->cfg.threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_END);
	if (!srv->daemon)
		return cs_error_set(err, CS_EIO, "cannot listen on %s port %u", srv->cfg.listen,
				    srv->cfg.port);
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
	cs_server_notify(srv);
	for (unsigned waited = 0; atomic_load(&srv->in_flight) > 0 && waited < grace_ms;
	     waited += 10) {
		struct timespec ten_ms = {0, 10 * 1000 * 1000};
		nanosleep(&ten_ms, NULL);
		cs_server_notify(srv);
	}
	MHD_stop_daemon(srv->daemon);
	srv->daemon = NULL;
}
