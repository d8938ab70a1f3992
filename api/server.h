/*
 * server.h - what the parts of convstored share: the configuration, the server object, the
 * per-request context, and the functions each part (router.c, http.c, auth.c, metrics.c,
 * log.c, the handlers) offers the others. Private to api/: struct MHD_* never leaves this folder,
 * and nothing outside api/ includes this header.
 *
 * Threads: libmicrohttpd's few event-loop threads move bytes; handlers run on the worker pool
 * (workers.c) with their connection suspended, so a handler may block (in cs_store_append's
 * group commit) without stalling other clients; long polls and SSE streams wait in the feed hub
 * (hub.c) holding no thread. Everything reachable from cs_server is safe to use from any thread:
 * the store is, the keyring and configuration are read-only after start, metrics are atomic
 * counters, and the hub and the pool have their own locks.
 */
#ifndef CONVSTORE_API_SERVER_H
#define CONVSTORE_API_SERVER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <sys/socket.h>

#include <microhttpd.h>

#include "convstore/pbjson.h"
#include "convstore/store.h"
#include "convstore/v1/api.pb-c.h"
#include "routes.h"

/* Roles, weakest first for the three tenant roles (API.md "Auth and tenants"). */
enum cs_role {
	CS_ROLE_NONE = 0, /* routes: no token needed */
	CS_ROLE_READ,
	CS_ROLE_APPEND,
	CS_ROLE_ADMIN,
	CS_ROLE_OPERATOR, /* tenant "*": /metrics and server-wide figures, no conversation */
};

/* Error codes of the HTTP layer, next to the store's CS_E* codes in http.c's one status table. */
enum {
	CS_HTTP_EUNAUTHENTICATED = -100, /* 401 */
	CS_HTTP_EFORBIDDEN = -101,	 /* 403 */
	CS_HTTP_EMETHOD = -102,		 /* 405 */
	CS_HTTP_EMEDIA = -103,		 /* 415 */
	CS_HTTP_ERATE = -104,		 /* 429 */
	CS_HTTP_EBUSY = -105,		 /* 503: the worker queue is full */
};

enum cs_log_level { CS_LOG_ERROR = 0, CS_LOG_WARN, CS_LOG_INFO, CS_LOG_DEBUG };

/* Defaults of the flags (API.md "Default limits"). */
#define CS_DEFAULT_PORT	       7070
#define CS_DEFAULT_MAX_BODY    (32u << 20)
#define CS_DEFAULT_CONNECTIONS 10000 /* open connections, idle and streaming ones included */
#define CS_DEFAULT_THREADS     64    /* handlers running at once (the worker pool) */
#define CS_DEFAULT_HEARTBEAT   15000 /* ms between SSE comment lines on a quiet stream */
#define CS_DEFAULT_QUEUE       1024  /* requests waiting for a worker before 503 */
#define CS_DEFAULT_IDLE	       60    /* s a connection may make no progress before it is closed */
#define CS_PAGE_LIMIT_DEFAULT  100
#define CS_PAGE_LIMIT_MAX      1000
#define CS_WAIT_MS_MAX	       60000 /* the longest long poll a client may ask for */
#define CS_MAX_PARAMS	       32    /* query parameters in one request */
#define CS_GZIP_MIN	       1024  /* smaller bodies are sent as they are */

typedef struct cs_config {
	const char *data;   /* store folder */
	const char *listen; /* numeric IPv4 or IPv6 address */
	unsigned port;	    /* 0: any free port (printed on stdout) */
	unsigned threads;   /* worker threads: handlers running at once */
	unsigned max_connections;
	unsigned heartbeat_ms; /* SSE keep-alive comment interval */
	unsigned idle_timeout; /* seconds without progress (a stalled reader, an idle client) */
	size_t max_body;       /* bytes of one request body */
	size_t max_event;      /* bytes of one packed event (the store checks) */
	size_t max_events;     /* events in one append */
	size_t max_map;	       /* the store's map cap in bytes; 0: none but the disk */
	const char *keys;      /* key file; NULL: one tenant "default", no auth, loopback only */
	bool no_sync;
	enum cs_log_level log_level;
	unsigned retention_interval;	/* seconds between retention sweeps; 0: none */
	unsigned rate_limit;		/* requests a second per tenant; 0: no limit */
	unsigned rate_burst;		/* bucket size; 0: rate_limit */
	unsigned max_queue;		/* requests waiting for a worker before 503 */
	const char *tls_cert, *tls_key; /* PEM files; both or neither */
} cs_config;

typedef struct cs_keyring cs_keyring;

/* Route metrics: counters by status class are kept per exact status among these. */
#define CS_METRIC_STATUSES 20
#define CS_METRIC_BUCKETS  14

typedef struct cs_metrics {
	atomic_ullong requests[CS_ROUTE_COUNT + 1][CS_METRIC_STATUSES];
	atomic_ullong duration_buckets[CS_ROUTE_COUNT + 1][CS_METRIC_BUCKETS];
	atomic_ullong duration_us_sum[CS_ROUTE_COUNT + 1];
	atomic_ullong append_events_buckets[CS_METRIC_BUCKETS];
	atomic_ullong append_events_sum;
	atomic_ullong append_latency_buckets[CS_METRIC_BUCKETS];
	atomic_ullong append_latency_us_sum;
	atomic_ullong appends;
} cs_metrics;

typedef struct cs_hub cs_hub;
typedef struct cs_workers cs_workers;
typedef struct cs_limits cs_limits;

typedef struct cs_server {
	cs_config cfg;
	cs_store *store;
	cs_keyring *keys; /* NULL without --keys */
	struct MHD_Daemon *daemon;
	cs_metrics metrics;
	cs_hub *hub;			  /* the feed hub (hub.c) */
	cs_workers *workers;		  /* the handler pool (workers.c) */
	cs_limits *limits;		  /* per-tenant rate limits (limits.c); NULL: none */
	char *tls_cert_pem, *tls_key_pem; /* read from --tls-cert/--tls-key; NULL: plain HTTP */
	atomic_bool draining; /* SIGTERM: not ready, no new connections, long polls end */
	atomic_bool closing;  /* the drain is over: the pool stops, requests are refused */
	atomic_int in_flight;
} cs_server;

/* Event types a stream wants (?types=); none: every type. */
#define CS_TYPES_MAX 32
typedef struct cs_types {
	size_t n;
	char names[CS_TYPES_MAX][64];
} cs_types;

/*
 * Something parked in the feed hub until an event concerns it, its deadline passes, or the
 * server drains: a long poll (its cs_req) or an SSE stream (feed.c).
 */
typedef struct cs_waiter cs_waiter;
struct cs_waiter {
	cs_waiter *prev, *next;	       /* the hub's list, while parked */
	const char *tenant;	       /* whose events concern it */
	const char *conversation;      /* NULL: any of the tenant's */
	const cs_types *types;	       /* NULL: any type */
	uint64_t deadline_ms;	       /* cs_mono_ms() time to wake at the latest */
	void (*wake)(cs_waiter *w);    /* called under the hub's lock, once unparked */
	void (*on_park)(cs_waiter *w); /* NULL, or called under the hub's lock when parked */
	bool parked;
	uint64_t key; /* the hub's hash of (tenant, conversation) */
};

/* A growable byte buffer. */
typedef struct cs_buf {
	char *p;
	size_t len, cap;
} cs_buf;

/* One query parameter, percent-decoded. */
typedef struct cs_param {
	char *key;
	char *value;
} cs_param;

/* One request, from its headers to its completion callback. */
typedef struct cs_req {
	cs_server *srv;
	struct MHD_Connection *conn;
	enum cs_route_id route;
	const char *method;
	const char
	    *id_raw; /* the {id} or {file} segment as sent (in the URL), not NUL-terminated */
	size_t id_raw_len;
	char id[CS_MAX_ID_LEN + 1]; /* the {id} segment, decoded and checked */
	const char *tenant;	    /* NULL until authenticated */
	enum cs_role role;
	char trace_id[33], span_id[17]; /* from traceparent; "" when absent or malformed */
	bool pb_in, pb_out, gzip_ok;
	cs_param params[CS_MAX_PARAMS];
	size_t n_params;
	char *body;
	size_t body_len, body_cap;
	bool body_too_big;
	bool answered; /* a response is queued */
	struct timespec start;
	unsigned status;
	char error[256]; /* the error message sent, for the log line */
	/* the worker pool and the hub (workers.c, hub.c) */
	struct cs_req *work_next; /* the pool's queue */
	bool dispatched;	  /* handed to the pool */
	bool failed;		  /* the handler gave up without an answer: close */
	bool park;		  /* the handler asks to wait in the hub ... */
	uint64_t park_seen;	  /* ... unless the hub published after this */
	cs_waiter waiter;
	/* an append committed without a thread waiting (conv.c, server.c) */
	bool inline_append;			      /* run on the event loop, not the pool */
	cs_append_op *append_op;		      /* queued in the store, not answered yet */
	Convstore__V1__AppendRequest *append_request; /* its events, alive until then */
	struct timespec append_t0;
	uint64_t poll_after;	/* a long poll: where its reading has got to */
	uint64_t poll_until_ms; /* ... and when it gives up */
	bool poll_started;
	char allow[64];	      /* 405: the methods the path takes */
	unsigned retry_after; /* seconds for a Retry-After header (429, 503); 0: none */
} cs_req;

typedef enum MHD_Result (*cs_handler)(cs_req *r);

/* ---- handlers (conv.c, feed.c, ops.c): each queues exactly one response ------------------- */
#define CS_ROUTE_DECL(name, method, path, role, handler, params) enum MHD_Result handler(cs_req *r);
CS_ROUTES(CS_ROUTE_DECL)
#undef CS_ROUTE_DECL

/* ---- conv.c: what the conversation handlers share ----------------------------------------- */

/**
 * The entries of a request's map<string, string>, re-typed as entries of @desc (the event's own
 * map type, same layout) so that the store packs and checks them with the right descriptor.
 * The strings stay the request's. *@out (NULL when @n is 0) is freed with free().
 * @return CS_OK; CS_ENOMEM (the request must fail, not lose its metadata); CS_EINVAL.
 */
int cs_map_retype(void ***out, const ProtobufCMessageDescriptor *desc, void *const *src, size_t n,
		  cs_error *err);

/** A body's id: @given (checked like a path id), or a new UUID v4 when it is empty. */
int cs_body_id(char out[CS_MAX_ID_LEN + 1], const char *given, cs_error *err);

/** Reply @status with the state view of @id (after a create, patch or fork). */
enum MHD_Result cs_reply_state(cs_req *r, unsigned status, const char *id);

/**
 * The expected version of a write: the body's (@body_set, @body_value) or If-Match ("N", or *
 * for any); when both are given they must agree. CS_ANY_VERSION when neither is.
 */
int cs_if_match(int64_t *out, const cs_req *r, bool body_set, uint64_t body_value, cs_error *err);

/** Bodies up to this size are appended from the event loop without a worker (server.c). */
#define CS_INLINE_APPEND_BODY (64u << 10)

/** Give up an append still queued (the connection ended): its outcome is dropped. */
void cs_append_abandon(cs_req *r);

/** After a write returned @rc: wake feed readers when it stored something. Returns @rc. */
int cs_write_done(cs_req *r, int rc);

/** Clear what the API does not show of stored events (the tenant). */
void cs_events_public(Convstore__V1__Event **events, size_t n);

/* ---- router.c ------------------------------------------------------------------------------ */

typedef struct cs_route_info {
	const char *method;
	const char *path;
	enum cs_role role;
	cs_handler handler;
	const char *params;
} cs_route_info;

extern const cs_route_info cs_routes[CS_ROUTE_COUNT];

/**
 * Find the route of @method and the raw (still percent-encoded) @path; fill r->route and
 * r->id_raw (@path must outlive the request, as libmicrohttpd's URL does). On CS_HTTP_EMETHOD,
 * r->allow lists the methods the path does take ("GET, POST").
 * @return CS_OK; CS_ENOTFOUND (no such path); CS_HTTP_EMETHOD.
 */
int cs_route_match(cs_req *r, const char *method, const char *path, cs_error *err);

/**
 * Decode and check the route's {id} segment into r->id (nothing to do for routes without one).
 * @return CS_OK; CS_EINVAL (a bad id).
 */
int cs_route_id(cs_req *r, cs_error *err);

/**
 * Percent-decode @in into @out (@out_size bytes with the NUL). Refuses malformed escapes, a
 * decoded NUL, and output that does not fit.
 */
int cs_percent_decode(char *out, size_t out_size, const char *in, cs_error *err);

/** Read and check the query string against the route's parameter list (into r->params). */
int cs_query_parse(cs_req *r, cs_error *err);

/** The decoded value of query parameter @name, or NULL. */
const char *cs_query_get(const cs_req *r, const char *name);

/**
 * Parse query parameter @name as a decimal integer in [@min, @max]; @def when absent.
 * @return CS_OK; CS_EINVAL naming the parameter.
 */
int cs_query_u64(uint64_t *out, const cs_req *r, const char *name, uint64_t def, uint64_t min,
		 uint64_t max, cs_error *err);

/**
 * The page size: `limit`, CS_PAGE_LIMIT_DEFAULT when absent, capped at CS_PAGE_LIMIT_MAX.
 * @return CS_OK; CS_EINVAL when it is not a whole number of 1 or more.
 */
int cs_query_limit(size_t *out, const cs_req *r, cs_error *err);

/** Parse a whole decimal number (no sign, no spaces) into @out. */
bool cs_parse_u64(uint64_t *out, const char *s);

/* ---- http.c: negotiation, bodies, the one error replier --------------------------------- */

/** The HTTP status of a CS_* or CS_HTTP_* code (the one table). */
unsigned cs_http_status(int code);

/** Queue the error response for @e: {"error": {"code", "message", current_version?, index?}}. */
enum MHD_Result cs_reply_error(cs_req *r, const cs_error *e);

/** cs_reply_error() for a code and a message made here. */
enum MHD_Result cs_reply_fail(cs_req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Queue @msg with @status, as JSON or protobuf (r->pb_out), gzip when it pays. @etag_version:
 * sent as ETag "<n>" when not 0.
 */
enum MHD_Result cs_reply_message(cs_req *r, unsigned status, const ProtobufCMessage *msg,
				 uint64_t etag_version);

/**
 * Reply with the outcome of a store read: the error in @err when @rc is not CS_OK, else @view
 * with @status (as cs_reply_message()). @view (may be NULL on error) is freed in both cases.
 */
enum MHD_Result cs_reply_view(cs_req *r, int rc, const cs_error *err, unsigned status,
			      ProtobufCMessage *view, uint64_t etag_version);

/** Queue @len bytes of @content_type; @buf is copied. */
enum MHD_Result cs_reply_bytes(cs_req *r, unsigned status, const char *content_type,
			       const char *buf, size_t len);

/** Queue an empty response (204, 304); @etag_version as for cs_reply_message(). */
enum MHD_Result cs_reply_empty(cs_req *r, unsigned status, uint64_t etag_version);

/** Queue @resp (ownership stays with the caller) with @status, counting it for the log. */
enum MHD_Result cs_reply_queue(cs_req *r, unsigned status, struct MHD_Response *resp);

/**
 * Decode the request body as @desc (JSON or protobuf by Content-Type). An empty body decodes as
 * the empty message. Protobuf input gets the UTF-8 and JSON text checks JSON input gets from
 * the codec. @out: free with protobuf_c_message_free_unpacked(*out, NULL).
 */
int cs_body_decode(ProtobufCMessage **out, cs_req *r, const ProtobufCMessageDescriptor *desc,
		   cs_error *err);

/** Read the request's Accept, Accept-Encoding, Content-Type and traceparent headers. */
int cs_req_negotiate(cs_req *r, bool has_body, cs_error *err);

/** The value of request header @name, or NULL. */
const char *cs_req_header(const cs_req *r, const char *name);

/**
 * Whether the If-None-Match header names @version ("N", W/"N", a list, or *).
 */
bool cs_req_not_modified(const cs_req *r, uint64_t version);

/** Whether the If-None-Match header names the entity tag @want (quotes included), or is *. */
bool cs_req_etag_match(const cs_req *r, const char *want);

/* ---- present.c ----------------------------------------------------------------------------- */

/**
 * Add to @obj (the codec's JSON of a @desc message) the lists, maps and numbers API.md shows that
 * the codec left out at their default: never a bool, never inside an Event (present.c says which
 * and why). @depth: 1 for the response message itself.
 */
void cs_json_present(json_t *obj, const ProtobufCMessageDescriptor *desc, int depth);

/**
 * @msg as compact JSON for a response: the codec with CS_JSON_NULL_OPTIONAL, then
 * cs_json_present(). malloc'd text; NULL on failure (@err says why).
 */
char *cs_json_text(const ProtobufCMessage *msg, cs_error *err);

/* ---- auth.c -------------------------------------------------------------------------------- */

/**
 * Load the key file at @path: lines "<sha-256 hex> <tenant> <role>", blank lines and # comments.
 * @return CS_OK; CS_EINVAL naming the line; CS_EIO; CS_ENOMEM.
 */
int cs_keyring_load(cs_keyring **out, const char *path, cs_error *err);
void cs_keyring_free(cs_keyring *k);

/**
 * Authenticate @r (Authorization: Bearer) and check its role against the route's.
 * @return CS_OK (r->tenant, r->role set); CS_HTTP_EUNAUTHENTICATED; CS_HTTP_EFORBIDDEN.
 */
int cs_auth_check(cs_req *r, cs_error *err);

/** Print a fresh random token and its key-file line for @tenant and @role to stdout. */
int cs_keygen(const char *tenant, const char *role, cs_error *err);

/* ---- limits.c ------------------------------------------------------------------------------ */

/** Set up the rate limits of --rate-limit (nothing when it is 0). */
int cs_limits_init(cs_server *srv, cs_error *err);
void cs_limits_free(cs_server *srv);

/**
 * Take one request from the tenant's bucket. @return CS_OK; CS_HTTP_ERATE (r->retry_after set)
 * when the tenant is over its rate. Routes that need no token, and the operator, pass.
 */
int cs_rate_check(cs_req *r, cs_error *err);

/* ---- metrics.c ----------------------------------------------------------------------------- */

/** Count one request of @route answered @status after @us microseconds. */
void cs_metrics_request(cs_metrics *m, enum cs_route_id route, unsigned status, uint64_t us);

/** Count one append of @events events that waited @us microseconds for its commit. */
void cs_metrics_append(cs_metrics *m, size_t events, uint64_t us);

/** The Prometheus text of everything; malloc'd, NULL on failure. */
char *cs_metrics_render(cs_server *srv, size_t *len, cs_error *err);

/* ---- log.c --------------------------------------------------------------------------------- */

/** One JSON line to stderr at @level: {"ts", "level", "msg"}. */
void cs_log(const cs_server *srv, enum cs_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * The request's one line: method, route, status, duration_us (an integer), tenant,
 * conversation, trace_id, and the error message of a 4xx or 5xx.
 */
void cs_log_request(const cs_req *r, uint64_t us);

/** Microseconds since @start (CLOCK_MONOTONIC). */
uint64_t cs_us_since(const struct timespec *start);

/* ---- server.c ------------------------------------------------------------------------------ */

/** The defaults of every flag (API.md "Default limits"). */
void cs_config_defaults(cs_config *c);

/**
 * Start the hub, the worker pool and libmicrohttpd on @addr (a sockaddr_in or sockaddr_in6).
 * @return CS_OK; CS_EIO when the address cannot be bound or a thread cannot start.
 */
int cs_server_start(cs_server *srv, const struct sockaddr *addr, cs_error *err);

/** The port actually bound (what --port 0 picked). */
unsigned cs_server_port(const cs_server *srv);

/**
 * Stop accepting, let in-flight requests finish (long polls and streams are woken and end),
 * waiting at most @grace_ms, then stop the daemon. The store stays open for the caller to close.
 */
void cs_server_drain(cs_server *srv, unsigned grace_ms);

/* ---- workers.c ----------------------------------------------------------------------------- */

/** Start @n worker threads. */
int cs_workers_start(cs_server *srv, unsigned n, cs_error *err);

/** Finish the queued requests' handlers and join the workers. Accepts a server without any. */
void cs_workers_stop(cs_server *srv);

/** Stop (if need be) and free the pool, once libmicrohttpd is stopped too. */
void cs_workers_free(cs_server *srv);

/** Queue @r (its connection suspended) for a worker to run its handler. */
void cs_workers_submit(cs_server *srv, cs_req *r);

/** Whether a new request may queue: fewer than --max-queue are waiting for a worker. */
bool cs_workers_admit(cs_server *srv);

/* ---- hub.c --------------------------------------------------------------------------------- */

#define CS_HUB_BEHIND 1 /* cs_hub_copy(): the position is before the ring: read the store */

/** Start the hub thread, its ring starting at the end of the log. */
int cs_hub_start(cs_server *srv, cs_error *err);

/** Stop the hub thread and free the ring. Accepts a server without a hub. */
void cs_hub_stop(cs_server *srv);

/** A write was committed: the hub reads it and wakes whom it concerns. Never blocks long. */
void cs_hub_notify(cs_server *srv);

/** Blank the ring's frames of an erased conversation before its conversation_deleted. */
void cs_hub_forget(cs_server *srv, const char *tenant, const char *conversation,
		   uint64_t deleted_at);

/** Wake every waiter and refuse to park any more (the server is draining). */
void cs_hub_drain(cs_server *srv);

/** The hub's round counter: read it BEFORE looking for events, and pass it to cs_hub_park(). */
uint64_t cs_hub_published(cs_server *srv);

/**
 * Park @w until an event concerns it, its deadline passes or the server drains (then the hub
 * unparks it and calls w->wake). Refused (false: look for events again) when the hub has
 * published since @seen, or when draining.
 */
bool cs_hub_park(cs_server *srv, cs_waiter *w, uint64_t seen);

/** Take @w out of the hub if it is parked. */
void cs_hub_unpark(cs_server *srv, cs_waiter *w);

/**
 * Append to @out (until it holds @budget bytes) the ring's frames after *@after that concern
 * @filter, advancing *@after past every frame looked at. For a conversation's stream, *@ended
 * is set after that conversation's conversation_deleted (sent or not, by ?types=).
 * @return CS_OK; CS_HUB_BEHIND when *@after is before the ring, or before @trusted (what
 *         cs_hub_attach() returned): read the store; CS_ENOMEM.
 */
int cs_hub_copy(cs_server *srv, const cs_waiter *filter, uint64_t trusted, uint64_t *after,
		cs_buf *out, size_t budget, bool *ended);

/**
 * A stream of @tenant's feed (@conversation NULL) or of one conversation attaches: from now on
 * the hub formats the events it can want. Returns the position up to which the ring may lack
 * them (pass it to cs_hub_copy()). Each attach is undone by one cs_hub_detach().
 */
uint64_t cs_hub_attach(cs_server *srv, const char *tenant, const char *conversation);
void cs_hub_detach(cs_server *srv, const char *tenant, const char *conversation);

typedef struct cs_hub_figures_t {
	uint64_t streams, streams_total, frames_total, waiters, ring_frames, ring_bytes;
} cs_hub_figures_t;

/** The hub's figures for /metrics. */
void cs_hub_figures(cs_server *srv, cs_hub_figures_t *out);

/** Whether @types (NULL or empty: all) has @type. */
bool cs_types_has(const cs_types *types, const char *type);

/** Milliseconds of CLOCK_MONOTONIC. */
uint64_t cs_mono_ms(void);

/* ---- feed.c -------------------------------------------------------------------------------- */

/** Append @len bytes to @b. CS_OK or CS_ENOMEM. */
int cs_buf_add(cs_buf *b, const char *s, size_t len);

/** Append @ev's SSE frame (id, event, data: its public JSON, blank line) to @out. */
int cs_sse_frame(cs_buf *out, const Convstore__V1__Event *ev);

/* ---- openapi.c (generated from api/openapi.yaml at build time) ---------------------------- */

extern const char cs_openapi_json[];
extern const size_t cs_openapi_json_len;

/* ---- ui_files.c (generated from api/ui/ at build time by api/embed_ui.py; served by ui.c) -- */

typedef struct cs_ui_file {
	const char *name;	  /* the file name under /ui/: "index.html", "app.js" */
	const char *content_type; /* with "; charset=utf-8" for text */
	const unsigned char *data;
	size_t len;
	const unsigned char *gz; /* the gzip form, or NULL when it is not smaller */
	size_t gz_len;
	const char *etag; /* "\"<16 hex digits of the SHA-256 of data>\"" */
} cs_ui_file;

extern const cs_ui_file cs_ui_files[];
extern const size_t cs_ui_files_count;

#endif
