/*
 * router.c - from a method and a raw path to a route and a checked conversation id, and from
 * the query string to checked parameters.
 *
 * Paths arrive still percent-encoded (server.c turns libmicrohttpd's own unescaping off), so
 * that "%2F" inside an id cannot become a path separator before routing: the path is split on
 * '/' first, then only the {id} segment is decoded and checked (1..128 characters of
 * A-Z a-z 0-9 . _ : -, and not "." or ".."). The check is a separate step that server.c runs
 * after auth, so that a missing token is 401 and a weak role 403 whatever the id looks like.
 * A "{file}" segment (the page's files under /ui/) is captured the same way but left as sent:
 * ui.c compares it with the embedded file names, so an escape simply names no file.
 * Query parameters are decoded here too, with the same decoder, and checked against the
 * route's list in routes.h: an unknown or repeated parameter is a 400, before any work.
 * `limit` is the one parameter that is capped rather than refused (API.md "Paging").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

const cs_route_info cs_routes[CS_ROUTE_COUNT] = {
#define CS_ROUTE_ROW(name, method, path, role, handler, params)                                    \
	[CS_ROUTE_##name] = {method, path, role, handler, params},
    CS_ROUTES(CS_ROUTE_ROW)
#undef CS_ROUTE_ROW
};

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cs_percent_decode(char *out, size_t out_size, const char *in, cs_error *err)
{
	size_t n = 0;
	for (const char *p = in; *p; p++) {
		char c = *p;
		if (c == '%') {
			int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
			if (hi < 0 || lo < 0)
				return cs_error_set(err, CS_EINVAL, "bad percent-escape in '%.64s'",
						    in);
			c = (char)(hi * 16 + lo);
			if (c == '\0')
				return cs_error_set(err, CS_EINVAL, "'%.64s' decodes to a nul byte",
						    in);
			p += 2;
		}
		if (n + 1 >= out_size)
			return cs_error_set(err, CS_EINVAL, "'%.64s' is too long", in);
		out[n++] = c;
	}
	out[n] = '\0';
	return CS_OK;
}

/* Match @path against @pattern; the {id} or {file} segment's raw text is
 * @path[*id_off, +*id_len). A {file} segment is never empty. */
static bool pattern_match(const char *pattern, const char *path, size_t *id_off, size_t *id_len)
{
	const char *p = pattern, *s = path;
	while (*p && *s) {
		size_t field = strncmp(p, "{id}", 4) == 0     ? 4
			       : strncmp(p, "{file}", 6) == 0 ? 6
							      : 0;
		if (field) {
			*id_off = (size_t)(s - path);
			*id_len = strcspn(s, "/");
			if (*id_len == 0 && field == 6)
				return false;
			s += *id_len;
			p += field;
			continue;
		}
		if (*p != *s)
			return false;
		p++, s++;
	}
	if (strncmp(p, "{id}", 4) == 0 && p[4] == '\0') { /* an empty trailing id */
		*id_off = (size_t)(s - path);
		*id_len = 0;
		return true;
	}
	return *p == '\0' && *s == '\0';
}

int cs_route_id(cs_req *r, cs_error *err)
{
	char raw[4 * CS_MAX_ID_LEN]; /* room for an id of escapes; longer is refused anyway */
	if (!strstr(cs_routes[r->route].path, "{id}"))
		return CS_OK;
	size_t n = r->id_raw_len < sizeof(raw) ? r->id_raw_len : sizeof(raw) - 1;
	memcpy(raw, r->id_raw, n);
	raw[n] = '\0';
	int rc = cs_percent_decode(r->id, sizeof(r->id), raw, err);
	if (rc)
		return cs_error_wrap(err, rc, "conversation id");
	if (!cs_id_valid(r->id) || !strcmp(r->id, ".") || !strcmp(r->id, ".."))
		return cs_error_set(err, CS_EINVAL,
				    "conversation id '%.64s' is not 1 to %d characters of "
				    "A-Z a-z 0-9 . _ : -",
				    raw, CS_MAX_ID_LEN);
	return CS_OK;
}

int cs_route_match(cs_req *r, const char *method, const char *path, cs_error *err)
{
	bool path_known = false;
	size_t id_off = 0, id_len = 0;
	r->allow[0] = '\0';
	/* HEAD is GET without the body (libmicrohttpd drops it). */
	const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
	for (int i = 0; i < CS_ROUTE_COUNT; i++) {
		if (!pattern_match(cs_routes[i].path, path, &id_off, &id_len))
			continue;
		path_known = true;
		if (strcmp(cs_routes[i].method, m) == 0) {
			r->route = (enum cs_route_id)i;
			r->id_raw = path + id_off;
			r->id_raw_len = id_len;
			return CS_OK;
		}
		size_t used = strlen(r->allow);
		snprintf(r->allow + used, sizeof(r->allow) - used, "%s%s", used ? ", " : "",
			 cs_routes[i].method);
	}
	if (path_known)
		return cs_error_set(err, CS_HTTP_EMETHOD,
				    "%.16s is not allowed on %.128s (allow: %s)", method, path,
				    r->allow);
	return cs_error_set(err, CS_ENOTFOUND, "no route %.200s", path);
}

/* Whether the route's space-separated list admits @key. */
static bool param_allowed(const char *list, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, " ");
		if (n && p[n - 1] == '.' && klen > n && strncmp(key, p, n) == 0)
			return true; /* a prefix entry: metadata.KEY */
		if (n == klen && strncmp(key, p, n) == 0)
			return true;
		p += n;
		p += strspn(p, " ");
	}
	return false;
}

typedef struct query_walk {
	cs_req *r;
	cs_error *err;
	int rc;
} query_walk;

static char *decode_dup(const char *in, const char *what, cs_error *err, int *rc)
{
	size_t cap = strlen(in) + 1;
	char *out = malloc(cap);
	if (!out) {
		*rc = cs_error_set(err, CS_ENOMEM, "out of memory decoding %s", what);
		return NULL;
	}
	if ((*rc = cs_percent_decode(out, cap, in, err))) {
		cs_error_wrap(err, *rc, what);
		free(out);
		return NULL;
	}
	return out;
}

static enum MHD_Result query_one(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	query_walk *w = cls;
	(void)kind;
	cs_req *r = w->r;
	if (r->n_params == CS_MAX_PARAMS) {
		w->rc =
		    cs_error_set(w->err, CS_EINVAL, "more than %d query parameters", CS_MAX_PARAMS);
		return MHD_NO;
	}
	char *k = decode_dup(key, "query parameter name", w->err, &w->rc);
	char *v =
	    k ? decode_dup(value ? value : "", "query parameter value", w->err, &w->rc) : NULL;
	if (!v) {
		free(k);
		return MHD_NO;
	}
	r->params[r->n_params].key = k;
	r->params[r->n_params].value = v;
	r->n_params++;
	if (!param_allowed(cs_routes[r->route].params, k)) {
		w->rc = cs_error_set(w->err, CS_EINVAL, "unknown query parameter '%.64s'", k);
		return MHD_NO;
	}
	for (size_t i = 0; i + 1 < r->n_params; i++)
		if (strcmp(r->params[i].key, k) == 0) {
			w->rc =
			    cs_error_set(w->err, CS_EINVAL, "query parameter '%.64s' repeated", k);
			return MHD_NO;
		}
	return MHD_YES;
}

int cs_query_parse(cs_req *r, cs_error *err)
{
	query_walk w = {r, err, CS_OK};
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_one, &w);
	return w.rc;
}

const char *cs_query_get(const cs_req *r, const char *name)
{
	for (size_t i = 0; i < r->n_params; i++)
		if (strcmp(r->params[i].key, name) == 0)
			return r->params[i].value;
	return NULL;
}

bool cs_parse_u64(uint64_t *out, const char *s)
{
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

int cs_query_u64(uint64_t *out, const cs_req *r, const char *name, uint64_t def, uint64_t min,
		 uint64_t max, cs_error *err)
{
	const char *s = cs_query_get(r, name);
	*out = def;
	if (!s)
		return CS_OK;
	if (!cs_parse_u64(out, s) || *out < min || *out > max)
		return cs_error_set(err, CS_EINVAL,
				    "%s: '%.32s' is not a whole number from %llu to %llu", name, s,
				    (unsigned long long)min, (unsigned long long)max);
	return CS_OK;
}

int cs_query_limit(size_t *out, const cs_req *r, cs_error *err)
{
	uint64_t limit;
	int rc = cs_query_u64(&limit, r, "limit", CS_PAGE_LIMIT_DEFAULT, 1, UINT64_MAX, err);
	*out = limit > CS_PAGE_LIMIT_MAX ? CS_PAGE_LIMIT_MAX : (size_t)limit;
	return rc;
}
