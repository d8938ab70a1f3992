/*
 * json.c - the proto3 JSON mapping for any protobuf-c message, driven only by its descriptors.
 *
 * The rules are listed in convstore/pbjson.h. How this file keeps them:
 *
 *   - Presence on encode mirrors protobuf-c's packer field by field (field_present()), so the
 *     JSON says exactly what the binary form would: a proto3 scalar is written unless it is
 *     zero, a oneof member whenever its case is set, except a selected string or message that
 *     still points at the descriptor default (the packer drops that too).
 *   - Decode builds messages the way protobuf_c_message_unpack() does: every message, string,
 *     byte buffer and repeated array comes from malloc, strings that are set are always fresh
 *     copies (never protobuf_c_empty_string, which the packer would drop from a oneof), and a
 *     repeated array is attached to its message, zero-filled, before its elements are decoded.
 *     So at every moment the partial message is one that protobuf_c_message_free_unpacked()
 *     can free, and every error path is that one call.
 *   - Depth: each JSON object or array, whether a message, a list, a map or inside a
 *     JsonValue, is one level; decode refuses more than CS_JSON_MAX_DEPTH, which also bounds
 *     the recursion here. Jansson's own parser stops at 2048.
 *   - Error messages are one line and name the field path ("events[2].message.content").
 *     Anything copied from the input into a message (keys, bad values, Jansson's parse error)
 *     is cut short and reduced to printable ASCII so that the line stays valid UTF-8 whatever
 *     the input was.
 *
 * It does not: keep unknown fields, print reals in shortest form (Jansson prints 17 digits),
 * or accept a JSON number above INT64_MAX (Jansson rejects it while parsing).
 */
#include "convstore/pbjson.h"
#include "path.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range of a proto3 Timestamp. */
#define TS_MIN		  (-62135596800LL)
#define TS_MAX		  253402300799LL
#define DAYS_0001_TO_1970 719162
#define TIMESTAMP_NAME	  "convstore.v1.Timestamp"
#define JSON_VALUE_NAME	  "convstore.v1.JsonValue"
#define TWO_POW_64	  18446744073709551616.0
#define TWO_POW_53	  9007199254740992.0

/* ==== errors ================================================================================ */

static int fail(cs_error *err, int code, const cs_path *p, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_in(cs_error *err, const cs_path *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<path>: <what>", or just "<what>" at the top level. */
static int fail(cs_error *err, int code, const cs_path *p, const char *fmt, ...)
{
	char what[192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (p->len)
		return cs_error_set(err, code, "%s: %s", p->buf, what);
	return cs_error_set(err, code, "%s", what);
}

/* "<what> in <path>" for errors about a message rather than one of its values. */
static int fail_in(cs_error *err, const cs_path *p, const char *fmt, ...)
{
	char what[192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (p->len)
		return cs_error_set(err, CS_EINVAL, "%s in %s", what, p->buf);
	return cs_error_set(err, CS_EINVAL, "%s", what);
}

static int nomem(cs_error *err)
{
	return cs_error_set(err, CS_ENOMEM, "out of memory");
}

/* ==== descriptor helpers ==================================================================== */

static const void *field_at(const ProtobufCMessage *m, unsigned offset)
{
	return (const char *)m + offset;
}

static void *field_at_mut(ProtobufCMessage *m, unsigned offset)
{
	return (char *)m + offset;
}

static bool is_pointer_type(ProtobufCType t)
{
	return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

static bool is_timestamp(const ProtobufCMessageDescriptor *d)
{
	return strcmp(d->name, TIMESTAMP_NAME) == 0 && d->n_fields == 2 &&
	       d->fields[0].type == PROTOBUF_C_TYPE_INT64 &&
	       d->fields[0].label == PROTOBUF_C_LABEL_NONE &&
	       d->fields[1].type == PROTOBUF_C_TYPE_INT32 &&
	       d->fields[1].label == PROTOBUF_C_LABEL_NONE;
}

static bool is_json_value(const ProtobufCMessageDescriptor *d)
{
	return strcmp(d->name, JSON_VALUE_NAME) == 0 && d->n_fields == 1 &&
	       d->fields[0].type == PROTOBUF_C_TYPE_STRING &&
	       d->fields[0].label == PROTOBUF_C_LABEL_NONE;
}

static bool is_json_value_field(const ProtobufCFieldDescriptor *f)
{
	return f->type == PROTOBUF_C_TYPE_MESSAGE && is_json_value(f->descriptor);
}

/* The size of one element of a repeated field, as protobuf-c lays the array out. */
static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE: return 8;
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	default: return 4;
	}
}

static const char *type_name(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32: return "int32";
	case PROTOBUF_C_TYPE_SINT32: return "sint32";
	case PROTOBUF_C_TYPE_SFIXED32: return "sfixed32";
	case PROTOBUF_C_TYPE_INT64: return "int64";
	case PROTOBUF_C_TYPE_SINT64: return "sint64";
	case PROTOBUF_C_TYPE_SFIXED64: return "sfixed64";
	case PROTOBUF_C_TYPE_UINT32: return "uint32";
	case PROTOBUF_C_TYPE_FIXED32: return "fixed32";
	case PROTOBUF_C_TYPE_UINT64: return "uint64";
	case PROTOBUF_C_TYPE_FIXED64: return "fixed64";
	case PROTOBUF_C_TYPE_FLOAT: return "float";
	case PROTOBUF_C_TYPE_DOUBLE: return "double";
	case PROTOBUF_C_TYPE_BOOL: return "bool";
	case PROTOBUF_C_TYPE_ENUM: return "enum";
	case PROTOBUF_C_TYPE_STRING: return "string";
	case PROTOBUF_C_TYPE_BYTES: return "bytes";
	case PROTOBUF_C_TYPE_MESSAGE: return "message";
	}
	return "unknown type";
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER:
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

/* Is @key the proto name of @name or its lowerCamelCase JSON name ("call_id" / "callId")? */
static bool name_matches(const char *name, const char *key)
{
	if (strcmp(name, key) == 0)
		return true;
	bool up = false;
	for (; *name; name++) {
		if (*name == '_') {
			up = true;
			continue;
		}
		char c = *name;
		if (up && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		up = false;
		if (*key++ != c)
			return false;
	}
	return *key == '\0';
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
						  const char *key)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (name_matches(d->fields[i].name, key))
			return &d->fields[i];
	return NULL;
}

/* Serialise @v compactly into a malloc'd string (not Jansson's allocator: free_unpacked frees
 * it with free()). NULL when out of memory or when Jansson cannot serialise it. */
static char *dump_malloc(const json_t *v)
{
	size_t need = json_dumpb(v, NULL, 0, DUMP_FLAGS);
	if (need == 0 || need == SIZE_MAX)
		return NULL;
	char *text = malloc(need + 1);
	if (!text)
		return NULL;
	if (json_dumpb(v, text, need, DUMP_FLAGS) != need) {
		free(text);
		return NULL;
	}
	text[need] = '\0';
	return text;
}

/* ==== base64 ================================================================================ */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; NULL when out of memory. */
static char *b64_encode(const uint8_t *in, size_t n, size_t *outlen)
{
	if (n / 3 >= SIZE_MAX / 4 - 1)
		return NULL;
	size_t len = (n + 2) / 3 * 4;
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* Both alphabets: '+' or '-' is 62, '/' or '_' is 63. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/*
 * Decode standard or URL-safe base64, padded or not, into @out (room for len / 4 * 3 + 3
 * bytes). Padding, when present, must make the length a multiple of 4. Returns NULL or why not.
 */
static const char *b64_decode(uint8_t *out, size_t *outlen, const char *s, size_t len)
{
	size_t n = len;
	if (n && s[n - 1] == '=') {
		n--;
		if (n && s[n - 1] == '=')
			n--;
		if (len % 4)
			return "bad padding";
	}
	if (n % 4 == 1)
		return "truncated";
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)s[i]);
		if (v < 0)
			return "bad character";
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*outlen = o;
	return NULL;
}

/* ==== timestamps ============================================================================
 *
 * Proleptic Gregorian calendar, years 0001 to 9999, counted from 0001-01-01 so that every
 * quantity stays non-negative. No leap seconds, no locale, no libc time functions.
 */

static bool is_leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return dim[m - 1] + (m == 2 && is_leap(y));
}

/* Days from 1970-01-01 to y-m-d (negative before it). */
static int64_t days_from_civil(unsigned y, unsigned m, unsigned d)
{
	static const unsigned short before[12] = {0,   31,  59,	 90,  120, 151,
						  181, 212, 243, 273, 304, 334};
	int64_t py = (int64_t)y - 1;
	int64_t days = py * 365 + py / 4 - py / 100 + py / 400;
	days += before[m - 1] + (m > 2 && is_leap(y)) + (d - 1);
	return days - DAYS_0001_TO_1970;
}

/* The inverse, for 0 <= z (days since 0001-01-01) within the supported range. */
static void civil_from_days(int64_t z, unsigned *y, unsigned *m, unsigned *d)
{
	int64_t n400 = z / 146097, r = z % 146097;
	int64_t n100 = r / 36524;
	if (n100 == 4) /* the last day of a 400-year cycle */
		n100 = 3;
	r -= n100 * 36524;
	int64_t n4 = r / 1461;
	r %= 1461;
	int64_t n1 = r / 365;
	if (n1 == 4) /* the last day of a leap year */
		n1 = 3;
	r -= n1 * 365;
	*y = (unsigned)(400 * n400 + 100 * n100 + 4 * n4 + n1 + 1);
	unsigned month = 1;
	while (r >= days_in_month(*y, month))
		r -= days_in_month(*y, month++);
	*m = month;
	*d = (unsigned)r + 1;
}

/* "2026-11-26T21:00:00Z" with 0, 3, 6 or 9 fractional digits; @buf holds 32 bytes. */
static void format_rfc3339(char *buf, size_t cap, int64_t secs, int32_t nanos)
{
	int64_t t = secs - TS_MIN;
	int64_t sod = t % 86400;
	unsigned y, m, d;
	civil_from_days(t / 86400, &y, &m, &d);
	int n = snprintf(buf, cap, "%04u-%02u-%02uT%02u:%02u:%02u", y, m, d, (unsigned)(sod / 3600),
			 (unsigned)(sod / 60 % 60), (unsigned)(sod % 60));
	if (nanos % 1000000 == 0 && nanos)
		n += snprintf(buf + n, cap - (size_t)n, ".%03" PRId32, nanos / 1000000);
	else if (nanos % 1000 == 0 && nanos)
		n += snprintf(buf + n, cap - (size_t)n, ".%06" PRId32, nanos / 1000);
	else if (nanos)
		n += snprintf(buf + n, cap - (size_t)n, ".%09" PRId32, nanos);
	snprintf(buf + n, cap - (size_t)n, "Z");
}

static bool digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* Parse the fraction and zone after "YYYY-MM-DDTHH:MM:SS"; @off is the zone's offset east. */
static const char *parse_tail(const char *s, size_t len, int32_t *nanos, int64_t *off)
{
	size_t i = 19;
	int32_t ns = 0;
	if (i < len && s[i] == '.') {
		unsigned nd = 0;
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++) {
			if (nd == 9)
				return "more than 9 fractional digits";
			ns = ns * 10 + (s[i] - '0');
		}
		if (nd == 0)
			return "no digits after '.'";
		for (; nd < 9; nd++)
			ns *= 10;
	}
	*nanos = ns;
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		*off = 0;
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		unsigned oh, om;
		if (len - i < 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
		    !digits(s + i + 4, 2, &om))
			return "bad utc offset, expected +hh:mm";
		if (oh > 23 || om > 59)
			return "utc offset out of range";
		*off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
		i += 6;
	} else {
		return "missing time zone, expected 'z' or +hh:mm";
	}
	return i == len ? NULL : "trailing characters";
}

/* RFC 3339 to seconds and nanos since the epoch. Returns NULL or why not. */
static const char *parse_rfc3339(const char *s, size_t len, int64_t *secs, int32_t *nanos)
{
	unsigned y, mo, d, h, mi, se;
	if (len < 19 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
	    s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
		return "expected yyyy-mm-ddthh:mm:ss[.fraction](z|+hh:mm)";
	if (y < 1)
		return "year out of range";
	if (mo < 1 || mo > 12)
		return "month out of range";
	if (d < 1 || d > days_in_month(y, mo))
		return "day out of range";
	if (h > 23)
		return "hour out of range";
	if (mi > 59)
		return "minute out of range";
	if (se > 59)
		return "second out of range (no leap seconds)";
	int64_t off;
	const char *why = parse_tail(s, len, nanos, &off);
	if (why)
		return why;
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
	if (t < TS_MIN || t > TS_MAX)
		return "out of range, years 0001 to 9999 utc";
	*secs = t;
	return NULL;
}

/* ==== encode ================================================================================ */

struct enc {
	cs_error *err;
	unsigned depth;
	unsigned flags; /* CS_JSON_* */
	cs_path path;
};

static int enc_message(json_t **out, struct enc *e, const ProtobufCMessage *m);

/* Jansson constructors fail only when out of memory: inputs are validated before. */
static int made(json_t **out, struct enc *e, json_t *v)
{
	if (!v)
		return nomem(e->err);
	*out = v;
	return CS_OK;
}

/* protobuf-c's field_is_zeroish(): what a proto3 packer leaves out. */
static bool is_zero(const ProtobufCFieldDescriptor *f, const void *member)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)member == 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *)member == 0;
	case PROTOBUF_C_TYPE_FLOAT: return *(const float *)member == 0;
	case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)member == 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)member;
		return !s || !*s;
	}
	case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)member)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE: return *(const void *const *)member == NULL;
	default: return *(const uint32_t *)member == 0;
	}
}

/* Is @f the only member of its oneof, i.e. an optional field `x` spelt `oneof x_opt { x }`? */
static bool is_optional(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
	if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
		return false;
	for (unsigned i = 0; i < d->n_fields; i++)
		if (&d->fields[i] != f && (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    d->fields[i].quantifier_offset == f->quantifier_offset)
			return false;
	return true;
}

/* Does protobuf-c's packer write @f of @m? The JSON carries the same fields. */
static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const void *member = field_at(m, f->offset);
	const void *ptr = is_pointer_type(f->type) ? *(const void *const *)member : NULL;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (*(const uint32_t *)field_at(m, f->quantifier_offset) != f->id)
			return false;
		return !is_pointer_type(f->type) || (ptr && ptr != f->default_value);
	}
	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED: return true;
	case PROTOBUF_C_LABEL_OPTIONAL:
		if (is_pointer_type(f->type))
			return ptr && ptr != f->default_value;
		return *(const protobuf_c_boolean *)field_at(m, f->quantifier_offset);
	case PROTOBUF_C_LABEL_REPEATED:
		return *(const size_t *)field_at(m, f->quantifier_offset) > 0;
	case PROTOBUF_C_LABEL_NONE: return !is_zero(f, member);
	}
	return false;
}

static int enc_uint64(json_t **out, struct enc *e, uint64_t v)
{
	if (v <= INT64_MAX)
		return made(out, e, json_integer((json_int_t)v));
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return made(out, e, json_string_nocheck(buf));
}

static int enc_double(json_t **out, struct enc *e, double v)
{
	if (isnan(v))
		return made(out, e, json_string_nocheck("NaN"));
	if (isinf(v))
		return made(out, e, json_string_nocheck(v > 0 ? "Infinity" : "-Infinity"));
	return made(out, e, json_real(v));
}

static int enc_string(json_t **out, struct enc *e, const char *s)
{
	if (!s)
		s = "";
	size_t len = strlen(s);
	if (!cs_utf8_valid(s, len))
		return fail(e->err, CS_EINVAL, &e->path, "invalid utf-8");
	return made(out, e, json_stringn_nocheck(s, len));
}

static int enc_bytes(json_t **out, struct enc *e, const ProtobufCBinaryData *bd)
{
	size_t len;
	char *text = b64_encode(bd->data, bd->len, &len);
	if (!text)
		return nomem(e->err);
	int rc = made(out, e, json_stringn_nocheck(text, len));
	free(text);
	return rc;
}

static int enc_enum(json_t **out, struct enc *e, const ProtobufCEnumDescriptor *ed, int32_t v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
	if (ev)
		return made(out, e, json_string(ev->name));
	return made(out, e, json_integer(v));
}

bool cs_timestamp_valid(int64_t seconds, int32_t nanos)
{
	return seconds >= TS_MIN && seconds <= TS_MAX && nanos >= 0 && nanos <= 999999999;
}

static int enc_timestamp(json_t **out, struct enc *e, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	int64_t secs = *(const int64_t *)field_at(m, d->fields[0].offset);
	int32_t nanos = *(const int32_t *)field_at(m, d->fields[1].offset);
	if (!cs_timestamp_valid(secs, nanos))
		return fail(e->err, CS_EINVAL, &e->path,
			    "timestamp out of range (seconds %" PRId64 ", nanos %" PRId32 ")", secs,
			    nanos);
	char buf[40];
	format_rfc3339(buf, sizeof(buf), secs, nanos);
	return made(out, e, json_string_nocheck(buf));
}

static int enc_json_value(json_t **out, struct enc *e, const ProtobufCMessage *m)
{
	const char *text = *(char *const *)field_at(m, m->descriptor->fields[0].offset);
	/* No text (only binary input can send that, and cs_pb_check_text lets it through) is no
	 * value: null, as for an element that is not there at all (enc_absent). */
	if (!text || !*text)
		return made(out, e, json_null());
	json_error_t je;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (v) {
		*out = v;
		return CS_OK;
	}
	if (json_error_code(&je) == json_error_out_of_memory)
		return nomem(e->err);
	char why[100];
	cs_path_show(why, sizeof(why), je.text, strlen(je.text));
	return fail(e->err, CS_ECORRUPT, &e->path, "json value does not parse: %s", why);
}

/* A NULL element of a list or map: the type's empty value. */
static int enc_absent(json_t **out, struct enc *e, const ProtobufCMessageDescriptor *d)
{
	if (is_timestamp(d))
		return made(out, e, json_string_nocheck("1970-01-01T00:00:00Z"));
	if (is_json_value(d))
		return made(out, e, json_null());
	return made(out, e, json_object());
}

/* One value of @f's type stored at @member. */
static int enc_value(json_t **out, struct enc *e, const ProtobufCFieldDescriptor *f,
		     const void *member)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: return made(out, e, json_integer(*(const int32_t *)member));
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: return made(out, e, json_integer(*(const uint32_t *)member));
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: return made(out, e, json_integer(*(const int64_t *)member));
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return enc_uint64(out, e, *(const uint64_t *)member);
	case PROTOBUF_C_TYPE_FLOAT: return enc_double(out, e, *(const float *)member);
	case PROTOBUF_C_TYPE_DOUBLE: return enc_double(out, e, *(const double *)member);
	case PROTOBUF_C_TYPE_BOOL:
		return made(out, e, json_boolean(*(const protobuf_c_boolean *)member));
	case PROTOBUF_C_TYPE_ENUM: return enc_enum(out, e, f->descriptor, *(const int32_t *)member);
	case PROTOBUF_C_TYPE_STRING: return enc_string(out, e, *(char *const *)member);
	case PROTOBUF_C_TYPE_BYTES: return enc_bytes(out, e, member);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
		return sub ? enc_message(out, e, sub) : enc_absent(out, e, f->descriptor);
	}
	}
	return fail(e->err, CS_EINVAL, &e->path, "unsupported field type %d", (int)f->type);
}

static int enc_list(json_t **out, struct enc *e, const ProtobufCFieldDescriptor *f, const char *arr,
		    size_t n)
{
	if (e->depth >= CS_JSON_MAX_DEPTH)
		return fail(e->err, CS_EINVAL, &e->path, "too deeply nested");
	json_t *list = json_array();
	if (!list)
		return nomem(e->err);
	e->depth++;
	int rc = CS_OK;
	size_t step = elem_size(f->type);
	for (size_t i = 0; i < n && rc == CS_OK; i++) {
		size_t mark = cs_path_index(&e->path, i);
		json_t *v = NULL;
		rc = enc_value(&v, e, f, arr + i * step);
		if (rc == CS_OK && json_array_append_new(list, v))
			rc = nomem(e->err);
		cs_path_pop(&e->path, mark);
	}
	e->depth--;
	if (rc == CS_OK)
		*out = list;
	else
		json_decref(list);
	return rc;
}

/* The JSON key of one map entry: the string itself, or an integer or bool as text. */
static int map_key_text(const char **key, char *buf, size_t cap, struct enc *e,
			const ProtobufCFieldDescriptor *kf, const void *member)
{
	switch (kf->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)member;
		*key = s ? s : "";
		if (!cs_utf8_valid(*key, strlen(*key)))
			return fail(e->err, CS_EINVAL, &e->path, "invalid utf-8");
		return CS_OK;
	}
	case PROTOBUF_C_TYPE_BOOL:
		*key = *(const protobuf_c_boolean *)member ? "true" : "false";
		return CS_OK;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		snprintf(buf, cap, "%" PRIu32, *(const uint32_t *)member);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(buf, cap, "%" PRId64, *(const int64_t *)member);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)member);
		break;
	default: snprintf(buf, cap, "%" PRId32, *(const int32_t *)member); break;
	}
	*key = buf;
	return CS_OK;
}

static int enc_map(json_t **out, struct enc *e, const ProtobufCMessageDescriptor *entry,
		   ProtobufCMessage *const *arr, size_t n)
{
	if (e->depth >= CS_JSON_MAX_DEPTH)
		return fail(e->err, CS_EINVAL, &e->path, "too deeply nested");
	json_t *map = json_object();
	if (!map)
		return nomem(e->err);
	e->depth++;
	const ProtobufCFieldDescriptor *kf = &entry->fields[0], *vf = &entry->fields[1];
	int rc = CS_OK;
	for (size_t i = 0; i < n && rc == CS_OK; i++) {
		if (!arr[i])
			continue;
		char buf[24];
		const char *key;
		size_t mark = cs_path_index(&e->path, i);
		cs_path_field(&e->path, "key");
		rc = map_key_text(&key, buf, sizeof(buf), e, kf, field_at(arr[i], kf->offset));
		cs_path_pop(&e->path, mark);
		if (rc)
			break;
		cs_path_key(&e->path, key, strlen(key));
		json_t *v = NULL;
		rc = enc_value(&v, e, vf, field_at(arr[i], vf->offset));
		/* A key repeated in binary input: the last one wins, as in protobuf. */
		if (rc == CS_OK && json_object_set_new_nocheck(map, key, v))
			rc = nomem(e->err);
		cs_path_pop(&e->path, mark);
	}
	e->depth--;
	if (rc == CS_OK)
		*out = map;
	else
		json_decref(map);
	return rc;
}

static int enc_field(json_t **out, struct enc *e, const ProtobufCMessage *m,
		     const ProtobufCFieldDescriptor *f)
{
	const void *member = field_at(m, f->offset);
	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return enc_value(out, e, f, member);
	size_t n = *(const size_t *)field_at(m, f->quantifier_offset);
	const ProtobufCMessageDescriptor *entry = cs_pb_map_entry(m->descriptor, f);
	if (entry)
		return enc_map(out, e, entry, *(ProtobufCMessage *const *const *)member, n);
	return enc_list(out, e, f, *(const char *const *)member, n);
}

static int enc_message(json_t **out, struct enc *e, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		return fail(e->err, CS_EINVAL, &e->path, "not a protobuf-c message");
	if (is_timestamp(d))
		return enc_timestamp(out, e, m);
	if (is_json_value(d))
		return enc_json_value(out, e, m);
	if (e->depth >= CS_JSON_MAX_DEPTH)
		return fail(e->err, CS_EINVAL, &e->path, "too deeply nested");

	json_t *obj = json_object();
	if (!obj)
		return nomem(e->err);
	e->depth++;
	int rc = CS_OK;
	for (unsigned i = 0; i < d->n_fields && rc == CS_OK; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		bool present = field_present(m, f);
		bool as_null = !present && (e->flags & CS_JSON_NULL_OPTIONAL) && is_optional(d, f);
		if (!present && !as_null)
			continue;
		size_t mark = cs_path_field(&e->path, f->name);
		json_t *v = NULL;
		rc = as_null ? made(&v, e, json_null()) : enc_field(&v, e, m, f);
		/* json_object_set_new releases @v when it fails. */
		if (rc == CS_OK && json_object_set_new_nocheck(obj, f->name, v))
			rc = nomem(e->err);
		cs_path_pop(&e->path, mark);
	}
	e->depth--;
	if (rc == CS_OK)
		*out = obj;
	else
		json_decref(obj);
	return rc;
}

int cs_json_encode(json_t **out, const ProtobufCMessage *msg, cs_error *err)
{
	return cs_json_encode_flags(out, msg, 0, err);
}

int cs_json_encode_flags(json_t **out, const ProtobufCMessage *msg, unsigned flags, cs_error *err)
{
	struct enc e = {.err = err, .flags = flags};
	if (!out)
		return cs_error_set(err, CS_EINVAL, "cs_json_encode: no output");
	*out = NULL;
	if (!msg)
		return cs_error_set(err, CS_EINVAL, "cs_json_encode: no message");
	return enc_message(out, &e, msg);
}

char *cs_json_encode_text(const ProtobufCMessage *msg, unsigned flags, cs_error *err)
{
	json_t *v;
	if (cs_json_encode_flags(&v, msg, flags, err))
		return NULL;
	char *text = dump_malloc(v);
	json_decref(v);
	if (!text)
		nomem(err);
	return text;
}

/* ==== decode: scalars =======================================================================
 *
 * Each dec_* writes one value into @slot (a field of a message or an element of an array) only
 * once it has fully succeeded, so a failure leaves the slot as it was.
 */

struct dec {
	cs_error *err;
	unsigned depth;
	cs_path path;
};

static int dec_message(ProtobufCMessage **out, struct dec *d,
		       const ProtobufCMessageDescriptor *desc, const json_t *in);

static int bad(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct dec *d, const char *fmt, ...)
{
	char what[192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fail(d->err, CS_EINVAL, &d->path, "%s", what);
}

static int wrong_type(struct dec *d, const char *want, const json_t *got)
{
	return bad(d, "expected %s, got %s", want, json_kind(got));
}

/* An optional '-' then decimal digits, nothing else. @overflow when above UINT64_MAX. */
static bool parse_decimal(const char *s, size_t len, bool *neg, uint64_t *mag, bool *overflow)
{
	*neg = len > 0 && s[0] == '-';
	size_t i = *neg ? 1 : 0;
	if (i == len)
		return false;
	uint64_t v = 0;
	*overflow = false;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned dgt = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - dgt) / 10)
			*overflow = true;
		v = v * 10 + dgt;
	}
	*mag = v;
	return true;
}

/* Range-check the integer -@mag or +@mag for @t and store it. */
static int store_int(void *slot, struct dec *d, ProtobufCType t, bool neg, uint64_t mag)
{
	const char *tn = type_name(t);
	switch (t) {
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (neg && mag)
			return bad(d, "negative value for %s", tn);
		if (elem_size(t) == 4 && mag > UINT32_MAX)
			return bad(d, "value out of range for %s", tn);
		if (elem_size(t) == 4)
			*(uint32_t *)slot = (uint32_t)mag;
		else
			*(uint64_t *)slot = mag;
		return CS_OK;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (mag > (uint64_t)INT64_MAX + neg)
			return bad(d, "value out of range for %s", tn);
		/* -(mag - 1) - 1 reaches INT64_MIN without overflowing on the way. */
		*(int64_t *)slot = neg && mag ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
		return CS_OK;
	default: /* int32, sint32, sfixed32, enum */
		if (mag > (uint64_t)INT32_MAX + neg)
			return bad(d, "value out of range for %s", tn);
		*(int32_t *)slot = neg ? (int32_t)(0 - (int64_t)mag) : (int32_t)mag;
		return CS_OK;
	}
}

/* proto3 JSON integers: a number without a fraction, or a decimal string. */
static int dec_int(void *slot, struct dec *d, ProtobufCType t, const json_t *v)
{
	bool neg = false, overflow = false;
	uint64_t mag = 0;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		neg = i < 0;
		mag = neg ? (uint64_t)(-(i + 1)) + 1 : (uint64_t)i;
	} else if (json_is_real(v)) {
		double x = json_real_value(v);
		double ax = x < 0 ? -x : x;
		if (ax >= TWO_POW_64)
			return bad(d, "value out of range for %s", type_name(t));
		/* Every double of 2^53 or more is a whole number. */
		if (ax < TWO_POW_53 && ax != (double)(uint64_t)ax)
			return bad(d, "fractional value for %s", type_name(t));
		neg = x < 0;
		mag = (uint64_t)ax;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		if (!parse_decimal(s, len, &neg, &mag, &overflow)) {
			char shown[CS_SHOWN_CAP];
			return bad(d, "expected %s, got string \"%s\"", type_name(t),
				   cs_path_show(shown, sizeof(shown), s, len));
		}
		if (overflow)
			return bad(d, "value out of range for %s", type_name(t));
	} else {
		return wrong_type(d, type_name(t), v);
	}
	return store_int(slot, d, t, neg, mag);
}

static int dec_double(void *slot, struct dec *d, ProtobufCType t, const json_t *v)
{
	double x;
	if (json_is_number(v)) {
		x = json_number_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (strcmp(s, "NaN") == 0) {
			x = NAN;
		} else if (strcmp(s, "Infinity") == 0) {
			x = INFINITY;
		} else if (strcmp(s, "-Infinity") == 0) {
			x = -INFINITY;
		} else {
			char shown[CS_SHOWN_CAP];
			return bad(d, "expected number, got string \"%s\"",
				   cs_path_show(shown, sizeof(shown), s, json_string_length(v)));
		}
		if (strlen(s) != json_string_length(v))
			return bad(d, "string contains a nul byte");
	} else {
		return wrong_type(d, "number", v);
	}
	if (t == PROTOBUF_C_TYPE_FLOAT) {
		if (isfinite(x) && (x > FLT_MAX || x < -FLT_MAX))
			return bad(d, "value out of range for float");
		*(float *)slot = (float)x;
	} else {
		*(double *)slot = x;
	}
	return CS_OK;
}

static int dec_bool(void *slot, struct dec *d, const json_t *v)
{
	if (!json_is_boolean(v))
		return wrong_type(d, "boolean", v);
	*(protobuf_c_boolean *)slot = json_is_true(v);
	return CS_OK;
}

static int dec_enum(void *slot, struct dec *d, const ProtobufCEnumDescriptor *ed, const json_t *v)
{
	if (!json_is_string(v))
		return dec_int(slot, d, PROTOBUF_C_TYPE_ENUM, v);
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	const ProtobufCEnumValue *ev =
	    strlen(s) == len ? protobuf_c_enum_descriptor_get_value_by_name(ed, s) : NULL;
	if (!ev) {
		char shown[CS_SHOWN_CAP];
		return bad(d, "unknown %s value \"%s\"", ed->name,
			   cs_path_show(shown, sizeof(shown), s, len));
	}
	*(int32_t *)slot = ev->value;
	return CS_OK;
}

/* A string that protobuf-c can hold: no NUL inside, valid UTF-8. */
static int dec_string(void *slot, struct dec *d, const json_t *v)
{
	if (!json_is_string(v))
		return wrong_type(d, "string", v);
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (memchr(s, '\0', len))
		return bad(d, "string contains a nul byte");
	/* Jansson checked text it parsed; a json_t built with *_nocheck was not. */
	if (!cs_utf8_valid(s, len))
		return bad(d, "invalid utf-8");
	char *copy = malloc(len + 1);
	if (!copy)
		return nomem(d->err);
	memcpy(copy, s, len + 1);
	*(char **)slot = copy;
	return CS_OK;
}

static int dec_bytes(void *slot, struct dec *d, const json_t *v)
{
	if (!json_is_string(v))
		return wrong_type(d, "base64 string", v);
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	ProtobufCBinaryData *bd = slot;
	if (len == 0) {
		bd->len = 0;
		bd->data = NULL;
		return CS_OK;
	}
	uint8_t *buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return nomem(d->err);
	size_t n;
	const char *why = b64_decode(buf, &n, s, len);
	if (why) {
		free(buf);
		return bad(d, "invalid base64: %s", why);
	}
	bd->len = n;
	bd->data = buf;
	return CS_OK;
}

/* One value of @f's type into @slot; JSON null has been dealt with by the caller. */
static int dec_value(void *slot, struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *v)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: return dec_double(slot, d, f->type, v);
	case PROTOBUF_C_TYPE_BOOL: return dec_bool(slot, d, v);
	case PROTOBUF_C_TYPE_ENUM: return dec_enum(slot, d, f->descriptor, v);
	case PROTOBUF_C_TYPE_STRING: return dec_string(slot, d, v);
	case PROTOBUF_C_TYPE_BYTES: return dec_bytes(slot, d, v);
	case PROTOBUF_C_TYPE_MESSAGE:
		return dec_message((ProtobufCMessage **)slot, d, f->descriptor, v);
	default: return dec_int(slot, d, f->type, v);
	}
}

/* ==== decode: messages, lists, maps ========================================================= */

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = malloc(desc->sizeof_message);
	if (m)
		desc->message_init(m);
	return m;
}

/* The containers below @v, counting @v itself; stops counting once past @limit. */
static unsigned json_depth(const json_t *v, unsigned limit)
{
	if (!json_is_object(v) && !json_is_array(v))
		return 0;
	if (limit == 0)
		return 1;
	unsigned most = 0;
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v) && most < limit; i++) {
			unsigned k = json_depth(json_array_get(v, i), limit - 1);
			most = k > most ? k : most;
		}
	} else {
		for (void *it = json_object_iter((json_t *)v); it && most < limit;
		     it = json_object_iter_next((json_t *)v, it)) {
			unsigned k = json_depth(json_object_iter_value(it), limit - 1);
			most = k > most ? k : most;
		}
	}
	return 1 + most;
}

static int dec_timestamp(ProtobufCMessage **out, struct dec *d,
			 const ProtobufCMessageDescriptor *desc, const json_t *in)
{
	if (!json_is_string(in))
		return wrong_type(d, "rfc 3339 timestamp string", in);
	const char *s = json_string_value(in);
	size_t len = json_string_length(in);
	int64_t secs = 0;
	int32_t nanos = 0;
	const char *why = parse_rfc3339(s, len, &secs, &nanos);
	if (why) {
		char shown[CS_SHOWN_CAP];
		return bad(d, "bad timestamp \"%s\": %s",
			   cs_path_show(shown, sizeof(shown), s, len), why);
	}
	ProtobufCMessage *m = new_message(desc);
	if (!m)
		return nomem(d->err);
	*(int64_t *)field_at_mut(m, desc->fields[0].offset) = secs;
	*(int32_t *)field_at_mut(m, desc->fields[1].offset) = nanos;
	*out = m;
	return CS_OK;
}

static int dec_json_value(ProtobufCMessage **out, struct dec *d,
			  const ProtobufCMessageDescriptor *desc, const json_t *in)
{
	if (d->depth + json_depth(in, CS_JSON_MAX_DEPTH - d->depth) > CS_JSON_MAX_DEPTH)
		return bad(d, "too deeply nested (more than %d levels)", CS_JSON_MAX_DEPTH);
	char *text = dump_malloc(in);
	if (!text)
		return nomem(d->err);
	ProtobufCMessage *m = new_message(desc);
	if (!m) {
		free(text);
		return nomem(d->err);
	}
	*(char **)field_at_mut(m, desc->fields[0].offset) = text;
	*out = m;
	return CS_OK;
}

/* Null in a list or map: only a JsonValue can hold it (as the text "null"). */
static int dec_element(void *slot, struct dec *d, const ProtobufCFieldDescriptor *f,
		       const json_t *v, const char *where)
{
	if (json_is_null(v) && !is_json_value_field(f))
		return bad(d, "null is not allowed %s", where);
	return dec_value(slot, d, f, v);
}

static int dec_list(ProtobufCMessage *m, struct dec *d, const ProtobufCFieldDescriptor *f,
		    const json_t *v)
{
	if (!json_is_array(v))
		return wrong_type(d, "array", v);
	if (d->depth >= CS_JSON_MAX_DEPTH)
		return bad(d, "too deeply nested (more than %d levels)", CS_JSON_MAX_DEPTH);
	size_t n = json_array_size(v), step = elem_size(f->type);
	if (n == 0)
		return CS_OK;
	char *arr = n <= SIZE_MAX / step ? calloc(n, step) : NULL;
	if (!arr)
		return nomem(d->err);
	/* Attached before it is filled, so freeing the message on error frees what was made. */
	*(size_t *)field_at_mut(m, f->quantifier_offset) = n;
	*(void **)field_at_mut(m, f->offset) = arr;
	d->depth++;
	int rc = CS_OK;
	for (size_t i = 0; i < n && rc == CS_OK; i++) {
		size_t mark = cs_path_index(&d->path, i);
		rc = dec_element(arr + i * step, d, f, json_array_get(v, i), "in a list");
		cs_path_pop(&d->path, mark);
	}
	d->depth--;
	return rc;
}

/* A map key arrives as a JSON object key: a string, or an integer or bool spelled out. */
static int dec_map_key(void *slot, struct dec *d, const ProtobufCFieldDescriptor *kf,
		       const char *key)
{
	size_t len = strlen(key);
	if (kf->type == PROTOBUF_C_TYPE_STRING) {
		if (!cs_utf8_valid(key, len))
			return bad(d, "invalid utf-8 in map key");
		char *copy = malloc(len + 1);
		if (!copy)
			return nomem(d->err);
		memcpy(copy, key, len + 1);
		*(char **)slot = copy;
		return CS_OK;
	}
	if (kf->type == PROTOBUF_C_TYPE_BOOL) {
		if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
			return bad(d, "map key must be \"true\" or \"false\"");
		*(protobuf_c_boolean *)slot = key[0] == 't';
		return CS_OK;
	}
	bool neg, overflow;
	uint64_t mag;
	if (!parse_decimal(key, len, &neg, &mag, &overflow))
		return bad(d, "map key is not a decimal %s", type_name(kf->type));
	if (overflow)
		return bad(d, "value out of range for %s", type_name(kf->type));
	return store_int(slot, d, kf->type, neg, mag);
}

/* Set the has_ flag of a proto2-style optional scalar; proto3 fields have none. */
static void mark_has(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !is_pointer_type(f->type) &&
	    !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
		*(protobuf_c_boolean *)field_at_mut(m, f->quantifier_offset) = 1;
}

static int dec_map_entry(ProtobufCMessage *em, struct dec *d, const char *key, const json_t *v)
{
	const ProtobufCFieldDescriptor *kf = &em->descriptor->fields[0];
	const ProtobufCFieldDescriptor *vf = &em->descriptor->fields[1];
	int rc = dec_map_key(field_at_mut(em, kf->offset), d, kf, key);
	if (rc == CS_OK) {
		mark_has(em, kf);
		rc = dec_element(field_at_mut(em, vf->offset), d, vf, v, "as a map value");
	}
	if (rc == CS_OK)
		mark_has(em, vf);
	return rc;
}

static int dec_map(ProtobufCMessage *m, struct dec *d, const ProtobufCFieldDescriptor *f,
		   const ProtobufCMessageDescriptor *entry, const json_t *v)
{
	if (!json_is_object(v))
		return wrong_type(d, "object", v);
	if (d->depth >= CS_JSON_MAX_DEPTH)
		return bad(d, "too deeply nested (more than %d levels)", CS_JSON_MAX_DEPTH);
	size_t n = json_object_size(v);
	if (n == 0)
		return CS_OK;
	ProtobufCMessage **arr = n <= SIZE_MAX / sizeof(*arr) ? calloc(n, sizeof(*arr)) : NULL;
	if (!arr)
		return nomem(d->err);
	*(size_t *)field_at_mut(m, f->quantifier_offset) = n;
	*(void **)field_at_mut(m, f->offset) = arr;
	d->depth++;
	int rc = CS_OK;
	size_t i = 0;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)v, key, val)
	{
		if (i == n)
			break;
		size_t mark = cs_path_key(&d->path, key, strlen(key));
		arr[i] = new_message(entry);
		rc = arr[i] ? dec_map_entry(arr[i], d, key, val) : nomem(d->err);
		i++;
		cs_path_pop(&d->path, mark);
		if (rc)
			break;
	}
	d->depth--;
	return rc;
}

static int dec_field(ProtobufCMessage *m, struct dec *d, const ProtobufCFieldDescriptor *f,
		     const json_t *v)
{
	uint32_t *which = NULL;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		which = field_at_mut(m, f->quantifier_offset);
		if (*which && *which != f->id) {
			const ProtobufCFieldDescriptor *other =
			    protobuf_c_message_descriptor_get_field(m->descriptor, *which);
			return fail_in(d->err, &d->path,
				       "oneof conflict: both \"%s\" and \"%s\" set",
				       other ? other->name : "?", f->name);
		}
	}
	size_t mark = cs_path_field(&d->path, f->name);
	int rc;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		const ProtobufCMessageDescriptor *entry = cs_pb_map_entry(m->descriptor, f);
		rc = entry ? dec_map(m, d, f, entry, v) : dec_list(m, d, f, v);
	} else {
		rc = dec_value(field_at_mut(m, f->offset), d, f, v);
		if (rc == CS_OK && which)
			*which = f->id;
		if (rc == CS_OK)
			mark_has(m, f);
	}
	cs_path_pop(&d->path, mark);
	return rc;
}

static int dec_fields(ProtobufCMessage *m, struct dec *d, const json_t *in)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;
	unsigned char seen_small[64];
	unsigned char *seen = seen_small;
	if (desc->n_fields > sizeof(seen_small))
		seen = calloc(desc->n_fields, 1);
	else
		memset(seen_small, 0, sizeof(seen_small));
	if (!seen)
		return nomem(d->err);

	int rc = CS_OK;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)in, key, val)
	{
		const ProtobufCFieldDescriptor *f = find_field(desc, key);
		if (!f) {
			char shown[CS_SHOWN_CAP];
			rc = fail_in(d->err, &d->path, "unknown field \"%s\"",
				     cs_path_show(shown, sizeof(shown), key, strlen(key)));
			break;
		}
		size_t idx = (size_t)(f - desc->fields);
		/* "call_id" and "callId" name the same field. */
		if (seen[idx]) {
			rc = fail_in(d->err, &d->path, "field \"%s\" given twice", f->name);
			break;
		}
		seen[idx] = 1;
		if (json_is_null(val))
			continue;
		rc = dec_field(m, d, f, val);
		if (rc)
			break;
	}
	if (seen != seen_small)
		free(seen);
	return rc;
}

static int dec_message(ProtobufCMessage **out, struct dec *d,
		       const ProtobufCMessageDescriptor *desc, const json_t *in)
{
	*out = NULL;
	if (is_timestamp(desc))
		return dec_timestamp(out, d, desc, in);
	if (is_json_value(desc))
		return dec_json_value(out, d, desc, in);
	if (!json_is_object(in)) {
		if (!d->path.len)
			return bad(d, "top level must be a json object, got %s", json_kind(in));
		return wrong_type(d, "object", in);
	}
	if (d->depth >= CS_JSON_MAX_DEPTH)
		return bad(d, "too deeply nested (more than %d levels)", CS_JSON_MAX_DEPTH);
	ProtobufCMessage *m = new_message(desc);
	if (!m)
		return nomem(d->err);
	d->depth++;
	int rc = dec_fields(m, d, in);
	d->depth--;
	if (rc) {
		protobuf_c_message_free_unpacked(m, NULL);
		return rc;
	}
	*out = m;
	return CS_OK;
}

int cs_json_decode(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc, const json_t *in,
		   cs_error *err)
{
	struct dec d = {.err = err};
	if (out)
		*out = NULL;
	if (!out || !desc || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !in)
		return cs_error_set(err, CS_EINVAL, "cs_json_decode: bad arguments");
	return dec_message(out, &d, desc, in);
}

int cs_json_decode_text(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc,
			const char *text, size_t len, cs_error *err)
{
	if (out)
		*out = NULL;
	if (!text && len)
		return cs_error_set(err, CS_EINVAL, "cs_json_decode_text: no text");
	/*
	 * NUL is allowed through the parser so that the decoder can name the field holding it;
	 * any top-level value is parsed so that the error can say what came instead of an object.
	 */
	json_error_t je;
	json_t *root = json_loadb(text ? text : "", len,
				  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!root) {
		if (json_error_code(&je) == json_error_out_of_memory)
			return nomem(err);
		char why[100];
		cs_path_show(why, sizeof(why), je.text, strlen(je.text));
		return cs_error_set(err, CS_EINVAL, "invalid json at line %d, column %d: %s",
				    je.line, je.column, why);
	}
	int rc = cs_json_decode(out, desc, root, err);
	json_decref(root);
	return rc;
}
