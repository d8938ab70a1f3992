/*
 * routes.h - the route table of convstored, as one X-macro list.
 *
 * Everything that must agree about routes reads this one list: the router (router.c), the
 * handlers' declarations (server.h), the per-route metrics (metrics.c) and `convstored --routes`,
 * which prints it so that tests/api/test_openapi can hold api/openapi.yaml to it.
 *
 * X(name, method, path pattern, role, handler, allowed query parameters)
 *   - a pattern segment "{id}" matches one conversation id (percent-decoded, then checked);
 *   - role: the weakest role that may call it (auth.c); CS_ROLE_NONE needs no token;
 *   - query parameters: a space-separated list; any other is a 400. A name ending in '.'
 *     admits every parameter with that prefix (metadata.KEY).
 */
#ifndef CONVSTORE_API_ROUTES_H
#define CONVSTORE_API_ROUTES_H

#define CS_ROUTES(X)                                                                               \
	X(CREATE, "POST", "/v1/conversations", CS_ROLE_APPEND, cs_h_create, "")                    \
	X(LIST, "GET", "/v1/conversations", CS_ROLE_READ, cs_h_list,                               \
	  "limit cursor status updated_after metadata.")                                           \
	X(STATE, "GET", "/v1/conversations/{id}", CS_ROLE_READ, cs_h_state, "at_version")          \
	X(UPDATE, "PATCH", "/v1/conversations/{id}", CS_ROLE_APPEND, cs_h_update, "")              \
	X(ERASE, "DELETE", "/v1/conversations/{id}", CS_ROLE_ADMIN, cs_h_erase, "purge")           \
	X(APPEND, "POST", "/v1/conversations/{id}/events", CS_ROLE_APPEND, cs_h_append, "")        \
	X(EVENTS, "GET", "/v1/conversations/{id}/events", CS_ROLE_READ, cs_h_events,               \
	  "from_version limit direction")                                                          \
	X(MESSAGES, "GET", "/v1/conversations/{id}/messages", CS_ROLE_READ, cs_h_messages,         \
	  "at_version")                                                                            \
	X(FORK, "POST", "/v1/conversations/{id}/fork", CS_ROLE_APPEND, cs_h_fork, "")              \
	X(FORKS, "GET", "/v1/conversations/{id}/forks", CS_ROLE_READ, cs_h_forks, "")              \
	X(CONV_STREAM, "GET", "/v1/conversations/{id}/events/stream", CS_ROLE_READ,                \
	  cs_h_conv_stream, "after_position types")                                                \
	X(FEED, "GET", "/v1/events", CS_ROLE_READ, cs_h_feed, "after_position limit wait_ms")      \
	X(FEED_STREAM, "GET", "/v1/events/stream", CS_ROLE_READ, cs_h_feed_stream,                 \
	  "after_position types")                                                                  \
	X(USAGE, "GET", "/v1/usage", CS_ROLE_READ, cs_h_usage, "group_by from to")                 \
	X(OPENAPI, "GET", "/v1/openapi.json", CS_ROLE_NONE, cs_h_openapi, "")                      \
	X(HEALTHZ, "GET", "/healthz", CS_ROLE_NONE, cs_h_healthz, "")                              \
	X(READYZ, "GET", "/readyz", CS_ROLE_NONE, cs_h_readyz, "")                                 \
	X(METRICS, "GET", "/metrics", CS_ROLE_OPERATOR, cs_h_metrics, "")

enum cs_route_id {
#define CS_ROUTE_ENUM(name, method, path, role, handler, params) CS_ROUTE_##name,
	CS_ROUTES(CS_ROUTE_ENUM)
#undef CS_ROUTE_ENUM
	    CS_ROUTE_COUNT,
	CS_ROUTE_NONE = CS_ROUTE_COUNT, /* no route matched: metrics label "unmatched" */
};

#endif
