/*
 * http.c - everything about turning a request's bytes into a message and a message into a
 * response: content negotiation (JSON or binary protobuf), gzip, ETags, and the ONE error
 * replier with the ONE table from error codes to HTTP statuses.
 *
 * Invariants:
 *   - Every error goes out through cs_reply_error(): a JSON body {"error": {"code", "message",
 *     ...}} (an ErrorBody message, encoded by the generic codec), whatever the client accepts.
 *   - Response bodies are handed to libmicrohttpd as MHD_RESPMEM_MUST_FREE buffers from malloc,
 *     or copied (MHD_RESPMEM_MUST_COPY) when they are not ours: one allocator per buffer.
 *   - gzip only when the client accepts it, the body is at least CS_GZIP_MIN bytes, and the
 *     compressed form is smaller; every body says `Vary: Accept-Encoding`.
 *
 * Not here: routing (router.c), auth (auth.c), what a route does (the handlers).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "server.h"

typedef Convstore__V1__ErrorBody ErrorBody;
typedef Convstore__V1__ErrorDetail ErrorDetail;

#define JSON_TYPE     "application/json"
#define PROTOBUF_TYPE "application/x-protobuf"

/* The one table: error code -> HTTP status and the API's error code string. */
static const struct {
	int code;
	unsigned status;
	const char *name;
} error_table[] = {
    {CS_EINVAL, 400, "invalid_argument"},
    {CS_HTTP_EUNAUTHENTICATED, 401, "unauthenticated"},
    {CS_HTTP_EFORBIDDEN, 403, "permission_denied"},
    {CS_EAUTH, 403, "permission_denied"},
    {CS_ENOTFOUND, 404, "not_found"},
    {CS_HTTP_EMETHOD, 405, "method_not_allowed"},
    {CS_ECONFLICT, 409, "conflict"},
    {CS_EGONE, 410, "gone"},
    {CS_ETOOBIG, 413, "payload_too_large"},
    {CS_HTTP_EMEDIA, 415, "unsupported_media_type"},
    {CS_HTTP_ERATE, 429, "rate_limited"},
    {CS_ECORRUPT, 500, "internal"},
    {CS_ENOMEM, 503, "unavailable"},
    {CS_EIO, 503, "unavailable"},
    {CS_ECLOSED, 503, "unavailable"},
    {CS_HTTP_EBUSY, 503, "unavailable"},
    {CS_EFULL, 507, "storage_full"},
};

static size_t error_entry(int code)
{
	for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
		if (error_table[i].code == code)
			return i;
	return error_entry(CS_ECORRUPT); /* anything unexpected is internal */
}

unsigned cs_http_status(int code)
{
	return error_table[error_entry(code)].status;
}

const char *cs_req_header(const cs_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

enum MHD_Result cs_reply_queue(cs_req *r, unsigned status, struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	r->status = status;
	r->answered = true;
	if (atomic_load(&r->srv->closing)) /* no next request on this connection */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	return MHD_queue_response(r->conn, status, resp);
}

static void add_etag(struct MHD_Response *resp, uint64_t version)
{
	char etag[32];
	if (!version)
		return;
	snprintf(etag, sizeof(etag), "\"%llu\"", (unsigned long long)version);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
}

/* Queue @buf (malloc'd; taken over in every case) as the body. */
static enum MHD_Result reply_owned(cs_req *r, unsigned status, const char *content_type, char *buf,
				   size_t len, bool gzipped, uint64_t etag_version)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	if (gzipped)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	add_etag(resp, etag_version);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED && r->allow[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->retry_after && status >= 400) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%u", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
	enum MHD_Result ret = cs_reply_queue(r, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/*
 * gzip @len bytes of @in into a new buffer when that makes it smaller; NULL when it does not
 * (or on any zlib failure: the body then goes out as it is).
 */
static char *gzip_body(size_t *out_len, const char *in, size_t len)
{
	z_stream z = {0};
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	uLong cap = deflateBound(&z, (uLong)len);
	char *out = cap < len ? malloc(cap) : malloc(len);
	if (cap >= len)
		cap = (uLong)len; /* anything that does not fit in len is not worth sending */
	if (!out) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	int zrc = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	if (zrc != Z_STREAM_END || *out_len >= len) {
		free(out);
		return NULL;
	}
	return out;
}

/* Send @buf (malloc'd, taken over), compressed when the client takes gzip and it pays. */
static enum MHD_Result reply_body(cs_req *r, unsigned status, const char *content_type, char *buf,
				  size_t len, uint64_t etag_version)
{
	if (r->gzip_ok && len >= CS_GZIP_MIN && len <= UINT32_MAX) {
		size_t zlen;
		char *z = gzip_body(&zlen, buf, len);
		if (z) {
			free(buf);
			return reply_owned(r, status, content_type, z, zlen, true, etag_version);
		}
	}
	return reply_owned(r, status, content_type, buf, len, false, etag_version);
}

enum MHD_Result cs_reply_bytes(cs_req *r, unsigned status, const char *content_type,
			       const char *buf, size_t len)
{
	char *copy = malloc(len ? len : 1);
	if (!copy)
		return MHD_NO;
	memcpy(copy, buf, len);
	return reply_body(r, status, content_type, copy, len, 0);
}

enum MHD_Result cs_reply_empty(cs_req *r, unsigned status, uint64_t etag_version)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	add_etag(resp, etag_version);
	enum MHD_Result ret = cs_reply_queue(r, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result cs_reply_message(cs_req *r, unsigned status, const ProtobufCMessage *msg,
				 uint64_t etag_version)
{
	cs_error err = CS_ERROR_INIT;
	if (r->pb_out) {
		size_t len = protobuf_c_message_get_packed_size(msg);
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf)
			return cs_reply_fail(r, CS_ENOMEM, "out of memory packing the response");
		protobuf_c_message_pack(msg, buf);
		return reply_body(r, status, PROTOBUF_TYPE, (char *)buf, len, etag_version);
	}
	char *text = cs_json_text(msg, &err);
	if (!text)
		return cs_reply_error(r, &err);
	return reply_body(r, status, JSON_TYPE, text, strlen(text), etag_version);
}

enum MHD_Result cs_reply_view(cs_req *r, int rc, const cs_error *err, unsigned status,
			      ProtobufCMessage *view, uint64_t etag_version)
{
	enum MHD_Result ret =
	    rc ? cs_reply_error(r, err) : cs_reply_message(r, status, view, etag_version);
	if (view)
		protobuf_c_message_free_unpacked(view, NULL);
	return ret;
}

enum MHD_Result cs_reply_error(cs_req *r, const cs_error *e)
{
	size_t row = error_entry(e->code);
	ErrorDetail detail = CONVSTORE__V1__ERROR_DETAIL__INIT;
	ErrorBody body = CONVSTORE__V1__ERROR_BODY__INIT;
	detail.code = (char *)error_table[row].name;
	detail.message = (char *)(e->msg[0] ? e->msg : cs_strerror(e->code));
	/* A 409 on an append is about versions: it says the current one, 0 included. */
	if (e->code == CS_ECONFLICT && (e->current_version || r->route == CS_ROUTE_APPEND)) {
		detail.current_version_opt_case =
		    CONVSTORE__V1__ERROR_DETAIL__CURRENT_VERSION_OPT_CURRENT_VERSION;
		detail.current_version = e->current_version;
	}
	if (e->index != CS_NO_INDEX && e->index >= 0) {
		detail.index_opt_case = CONVSTORE__V1__ERROR_DETAIL__INDEX_OPT_INDEX;
		detail.index = (uint64_t)e->index;
	}
	body.error = &detail;
	snprintf(r->error, sizeof(r->error), "%s", detail.message);
	char *text = cs_json_encode_text(&body.base, 0, NULL);
	if (!text) {
		/* The message itself was not encodable (it quotes bad input): say less. */
		detail.message = (char *)cs_strerror(e->code);
		text = cs_json_encode_text(&body.base, 0, NULL);
	}
	if (!text)
		return MHD_NO;
	bool gzip_ok = r->gzip_ok;
	r->gzip_ok = false; /* errors are small; keep them readable by anything */
	enum MHD_Result ret =
	    reply_owned(r, error_table[row].status, JSON_TYPE, text, strlen(text), false, 0);
	r->gzip_ok = gzip_ok;
	return ret;
}

enum MHD_Result cs_reply_fail(cs_req *r, int code, const char *fmt, ...)
{
	cs_error e = CS_ERROR_INIT;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	e.code = code;
	return cs_reply_error(r, &e);
}

/* Whether a comma-separated header value lists @token (case-insensitive, parameters ignored),
 * with a q value other than 0. */
static bool header_lists(const char *value, const char *token)
{
	size_t tlen = strlen(token);
	for (const char *p = value; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *end = p + strcspn(p, ",");
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *name_end = semi ? semi : end;
		while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
			name_end--;
		if ((size_t)(name_end - p) == tlen && strncasecmp(p, token, tlen) == 0) {
			const char *q = semi ? strstr(semi, "q=") : NULL;
			if (!q || q >= end || strtod(q + 2, NULL) > 0)
				return true;
		}
		p = end;
	}
	return false;
}

/* The media type of a Content-Type value without parameters, compared case-insensitively. */
static bool media_is(const char *value, const char *type)
{
	size_t n = strlen(type);
	if (strncasecmp(value, type, n) != 0)
		return false;
	return value[n] == '\0' || value[n] == ';' || value[n] == ' ';
}

static bool hex_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * traceparent: "<version>-<32 hex>-<16 hex>-<2 hex flags>", lower-case hex; anything else is
 * ignored, as W3C Trace Context says. Version ff is invalid; version 00 has nothing after the
 * flags, a later version may (its extra fields are ignored).
 */
static void read_traceparent(cs_req *r)
{
	const char *tp = cs_req_header(r, "traceparent");
	size_t n = tp ? strlen(tp) : 0;
	if (n < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
		return;
	if (!hex_lower(tp, 2) || !hex_lower(tp + 3, 32) || !hex_lower(tp + 36, 16) ||
	    !hex_lower(tp + 53, 2) || !strncmp(tp, "ff", 2))
		return;
	if (n > 55 && (!strncmp(tp, "00", 2) || tp[55] != '-'))
		return;
	if (strspn(tp + 3, "0") >= 32 || strspn(tp + 36, "0") >= 16)
		return; /* all-zero ids are invalid */
	memcpy(r->trace_id, tp + 3, 32);
	r->trace_id[32] = '\0';
	memcpy(r->span_id, tp + 36, 16);
	r->span_id[16] = '\0';
}

int cs_req_negotiate(cs_req *r, bool has_body, cs_error *err)
{
	const char *accept = cs_req_header(r, MHD_HTTP_HEADER_ACCEPT);
	const char *encoding = cs_req_header(r, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	r->pb_out = accept && header_lists(accept, PROTOBUF_TYPE);
	r->gzip_ok = encoding && header_lists(encoding, "gzip");
	read_traceparent(r);
	if (!has_body)
		return CS_OK;
	const char *ctype = cs_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ctype || media_is(ctype, JSON_TYPE))
		return CS_OK;
	if (media_is(ctype, PROTOBUF_TYPE)) {
		r->pb_in = true;
		return CS_OK;
	}
	return cs_error_set(err, CS_HTTP_EMEDIA,
			    "content type '%.100s' is not application/json or " PROTOBUF_TYPE,
			    ctype);
}

int cs_body_decode(ProtobufCMessage **out, cs_req *r, const ProtobufCMessageDescriptor *desc,
		   cs_error *err)
{
	*out = NULL;
	if (!r->pb_in) {
		if (r->body_len == 0)
			return cs_json_decode_text(out, desc, "{}", 2, err);
		return cs_json_decode_text(out, desc, r->body, r->body_len, err);
	}
	*out = protobuf_c_message_unpack(desc, NULL, r->body_len, (const uint8_t *)r->body);
	if (!*out)
		return cs_error_set(err, CS_EINVAL, "body is not a valid %s protobuf", desc->name);
	int rc = cs_pb_check_text(*out, err);
	if (rc) {
		protobuf_c_message_free_unpacked(*out, NULL);
		*out = NULL;
	}
	return rc;
}

/* One entity tag of If-None-Match: "N" or W/"N". */
static bool etag_is(const char *p, size_t n, const char *want)
{
	if (n >= 2 && p[0] == 'W' && p[1] == '/')
		p += 2, n -= 2;
	return n == strlen(want) && memcmp(p, want, n) == 0;
}

bool cs_req_not_modified(const cs_req *r, uint64_t version)
{
	const char *inm = cs_req_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
	char want[32];
	if (!inm || !version)
		return false;
	snprintf(want, sizeof(want), "\"%llu\"", (unsigned long long)version);
	for (const char *p = inm; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ", ");
		if ((n == 1 && *p == '*') || etag_is(p, n, want))
			return true;
		p += n;
	}
	return false;
}
