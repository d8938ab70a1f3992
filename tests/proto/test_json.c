/*
 * tests/proto/test_json.c - the proto3 JSON codec (proto/json.c) and the UTF-8 walk
 * (proto/walk.c).
 *
 * Round trips build every message type of event.proto, api.proto and store.proto with every
 * field set to a non-default value, encode, decode, and compare the protobuf bytes of both. A
 * hand-written descriptor, test.Scalars, covers what convstore's schema does not use: every
 * integer width, float, enums, a proto2 optional, maps with integer and bool keys, lists of
 * every kind. The error cases each assert the code and that the message names the field. Run
 * under ASan/LSan, every failed decode also shows that it freed what it had built.
 */
#include "check.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convstore/pbjson.h"
#include "convstore/v1/api.pb-c.h"
#include "convstore/v1/event.pb-c.h"
#include "convstore/v1/store.pb-c.h"

#define S(lit) ((char *)(lit))
#define N(arr) (sizeof(arr) / sizeof((arr)[0]))

/* ==== test.Scalars ==========================================================================
 *
 * message Scalars {
 *   int32 i32 = 1; int64 i64 = 2; uint32 u32 = 3; uint64 u64 = 4; sint32 s32 = 5;
 *   sint64 s64 = 6; fixed32 fx32 = 7; fixed64 fx64 = 8; sfixed32 sfx32 = 9; sfixed64 sfx64 = 10;
 *   float flt = 11; double dbl = 12; bool flag = 13; string str = 14; bytes blob = 15;
 *   Color color = 16; repeated sint64 r_i64 = 17; repeated string r_str = 18;
 *   repeated bytes r_blob = 19; repeated Color r_color = 20; repeated double r_dbl = 21;
 *   repeated bool r_flag = 22; map<int64, string> by_id = 23; map<bool, uint32> flags = 24;
 *   optional int32 p2 = 25 (proto2, with has_p2); oneof limit_opt { uint64 limit = 26; }
 *   repeated convstore.v1.Timestamp r_ts = 27; repeated convstore.v1.JsonValue r_json = 28;
 * }
 */

enum { COLOR_NEG = -3, COLOR_UNSET = 0, COLOR_RED = 1, COLOR_BLUE = 2 };

static const ProtobufCEnumValue color_values[] = {
    {"COLOR_NEG", "COLOR_NEG", COLOR_NEG},
    {"COLOR_UNSET", "COLOR_UNSET", COLOR_UNSET},
    {"COLOR_RED", "COLOR_RED", COLOR_RED},
    {"COLOR_BLUE", "COLOR_BLUE", COLOR_BLUE},
};
static const ProtobufCEnumValueIndex color_by_name[] = {
    {"COLOR_BLUE", 3}, {"COLOR_NEG", 0}, {"COLOR_RED", 2}, {"COLOR_UNSET", 1}};
static const ProtobufCIntRange color_ranges[] = {{-3, 0}, {0, 1}, {0, 4}};
static const ProtobufCEnumDescriptor color_desc = {
    .magic = PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
    .name = "test.Color",
    .short_name = "Color",
    .c_name = "Color",
    .package_name = "test",
    .n_values = N(color_values),
    .values = color_values,
    .n_value_names = N(color_by_name),
    .values_by_name = color_by_name,
    .n_value_ranges = N(color_ranges) - 1,
    .value_ranges = color_ranges,
};

typedef struct {
	ProtobufCMessage base;
	int64_t key;
	char *value;
} ById;

typedef struct {
	ProtobufCMessage base;
	protobuf_c_boolean key;
	uint32_t value;
} Flags;

typedef struct {
	ProtobufCMessage base;
	int32_t i32;
	int64_t i64;
	uint32_t u32;
	uint64_t u64;
	int32_t s32;
	int64_t s64;
	uint32_t fx32;
	uint64_t fx64;
	int32_t sfx32;
	int64_t sfx64;
	float flt;
	double dbl;
	protobuf_c_boolean flag;
	char *str;
	ProtobufCBinaryData blob;
	int color;
	size_t n_r_i64;
	int64_t *r_i64;
	size_t n_r_str;
	char **r_str;
	size_t n_r_blob;
	ProtobufCBinaryData *r_blob;
	size_t n_r_color;
	int *r_color;
	size_t n_r_dbl;
	double *r_dbl;
	size_t n_r_flag;
	protobuf_c_boolean *r_flag;
	size_t n_by_id;
	ById **by_id;
	size_t n_flags;
	Flags **flags;
	protobuf_c_boolean has_p2;
	int32_t p2;
	uint32_t limit_case;
	union {
		uint64_t limit;
	};
	size_t n_r_ts;
	Convstore__V1__Timestamp **r_ts;
	size_t n_r_json;
	Convstore__V1__JsonValue **r_json;
} Scalars;

static const ProtobufCMessageDescriptor scalars_desc;
static const ProtobufCMessageDescriptor by_id_desc;
static const ProtobufCMessageDescriptor flags_desc;

static void scalars_init(ProtobufCMessage *m)
{
	Scalars *s = (Scalars *)m;
	memset(s, 0, sizeof(*s));
	s->base.descriptor = &scalars_desc;
	s->str = (char *)protobuf_c_empty_string;
}

static void by_id_init(ProtobufCMessage *m)
{
	ById *e = (ById *)m;
	memset(e, 0, sizeof(*e));
	e->base.descriptor = &by_id_desc;
	e->value = (char *)protobuf_c_empty_string;
}

static void flags_init(ProtobufCMessage *m)
{
	memset(m, 0, sizeof(Flags));
	m->descriptor = &flags_desc;
}

#define FIELD(T, nm, id, lab, typ, q, member, desc, def, flags)                                    \
	{                                                                                          \
		nm, id, PROTOBUF_C_LABEL_##lab, PROTOBUF_C_TYPE_##typ, q, offsetof(T, member),     \
		    desc, def, flags, 0, NULL, NULL                                                \
	}
#define SCALAR(nm, id, typ) FIELD(Scalars, #nm, id, NONE, typ, 0, nm, NULL, NULL, 0)
#define LIST(nm, id, typ, d)                                                                       \
	FIELD(Scalars, #nm, id, REPEATED, typ, offsetof(Scalars, n_##nm), nm, d, NULL, 0)
#define EMPTY_STR (&protobuf_c_empty_string)

static const ProtobufCFieldDescriptor by_id_fields[] = {
    FIELD(ById, "key", 1, NONE, INT64, 0, key, NULL, NULL, 0),
    FIELD(ById, "value", 2, NONE, STRING, 0, value, NULL, EMPTY_STR, 0),
};
static const ProtobufCFieldDescriptor flags_fields[] = {
    FIELD(Flags, "key", 1, NONE, BOOL, 0, key, NULL, NULL, 0),
    FIELD(Flags, "value", 2, NONE, UINT32, 0, value, NULL, NULL, 0),
};
static const unsigned entry_by_name[] = {0, 1};
static const ProtobufCIntRange entry_ranges[] = {{1, 0}, {0, 2}};

static const ProtobufCMessageDescriptor by_id_desc = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "test.Scalars.ByIdEntry",
    .short_name = "ByIdEntry",
    .c_name = "ById",
    .package_name = "test",
    .sizeof_message = sizeof(ById),
    .n_fields = N(by_id_fields),
    .fields = by_id_fields,
    .fields_sorted_by_name = entry_by_name,
    .n_field_ranges = 1,
    .field_ranges = entry_ranges,
    .message_init = by_id_init,
};
static const ProtobufCMessageDescriptor flags_desc = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "test.Scalars.FlagsEntry",
    .short_name = "FlagsEntry",
    .c_name = "Flags",
    .package_name = "test",
    .sizeof_message = sizeof(Flags),
    .n_fields = N(flags_fields),
    .fields = flags_fields,
    .fields_sorted_by_name = entry_by_name,
    .n_field_ranges = 1,
    .field_ranges = entry_ranges,
    .message_init = flags_init,
};

static const ProtobufCFieldDescriptor scalars_fields[] = {
    SCALAR(i32, 1, INT32),
    SCALAR(i64, 2, INT64),
    SCALAR(u32, 3, UINT32),
    SCALAR(u64, 4, UINT64),
    SCALAR(s32, 5, SINT32),
    SCALAR(s64, 6, SINT64),
    SCALAR(fx32, 7, FIXED32),
    SCALAR(fx64, 8, FIXED64),
    SCALAR(sfx32, 9, SFIXED32),
    SCALAR(sfx64, 10, SFIXED64),
    SCALAR(flt, 11, FLOAT),
    SCALAR(dbl, 12, DOUBLE),
    SCALAR(flag, 13, BOOL),
    FIELD(Scalars, "str", 14, NONE, STRING, 0, str, NULL, EMPTY_STR, 0),
    SCALAR(blob, 15, BYTES),
    FIELD(Scalars, "color", 16, NONE, ENUM, 0, color, &color_desc, NULL, 0),
    LIST(r_i64, 17, SINT64, NULL),
    LIST(r_str, 18, STRING, NULL),
    LIST(r_blob, 19, BYTES, NULL),
    LIST(r_color, 20, ENUM, &color_desc),
    LIST(r_dbl, 21, DOUBLE, NULL),
    LIST(r_flag, 22, BOOL, NULL),
    LIST(by_id, 23, MESSAGE, &by_id_desc),
    LIST(flags, 24, MESSAGE, &flags_desc),
    FIELD(Scalars, "p2", 25, OPTIONAL, INT32, offsetof(Scalars, has_p2), p2, NULL, NULL, 0),
    FIELD(Scalars, "limit", 26, NONE, UINT64, offsetof(Scalars, limit_case), limit, NULL, NULL,
	  PROTOBUF_C_FIELD_FLAG_ONEOF),
    LIST(r_ts, 27, MESSAGE, &convstore__v1__timestamp__descriptor),
    LIST(r_json, 28, MESSAGE, &convstore__v1__json_value__descriptor),
};
static unsigned scalars_by_name[N(scalars_fields)];
static const ProtobufCIntRange scalars_ranges[] = {{1, 0}, {0, N(scalars_fields)}};

static const ProtobufCMessageDescriptor scalars_desc = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "test.Scalars",
    .short_name = "Scalars",
    .c_name = "Scalars",
    .package_name = "test",
    .sizeof_message = sizeof(Scalars),
    .n_fields = N(scalars_fields),
    .fields = scalars_fields,
    .fields_sorted_by_name = scalars_by_name,
    .n_field_ranges = 1,
    .field_ranges = scalars_ranges,
    .message_init = scalars_init,
};

static int by_field_name(const void *a, const void *b)
{
	return strcmp(scalars_fields[*(const unsigned *)a].name,
		      scalars_fields[*(const unsigned *)b].name);
}

static void scalars_setup(void)
{
	for (unsigned i = 0; i < N(scalars_fields); i++)
		scalars_by_name[i] = i;
	qsort(scalars_by_name, N(scalars_fields), sizeof(unsigned), by_field_name);
}

/* ==== helpers ============================================================================== */

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len ? *len : 1);
	if (buf)
		protobuf_c_message_pack(m, buf);
	return buf;
}

/* The protobuf bytes of @a and @b are the same. */
static bool same_bytes(const ProtobufCMessage *a, const ProtobufCMessage *b, const char *what,
		       int line)
{
	size_t alen, blen;
	uint8_t *pa = pack(a, &alen), *pb = pack(b, &blen);
	bool ok =
	    check_mem(pa, alen, pb, blen, "packed original", "packed decoded", __FILE__, line);
	if (!ok)
		fprintf(stderr, "  (%s)\n", what);
	free(pa);
	free(pb);
	return ok;
}

/* Every non-oneof field of @desc appears in @j: the builder really set everything. */
static void all_fields_present(const json_t *j, const ProtobufCMessageDescriptor *desc,
			       const char *what, int line)
{
	if (!json_is_object(j))
		return;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			continue;
		if (!check_true(json_object_get(j, f->name) != NULL, "field present", __FILE__,
				line))
			fprintf(stderr, "  %s.%s missing from the json\n", what, f->name);
	}
}

/*
 * encode -> decode (from the json_t and again from its text) -> the same protobuf bytes, and
 * the decoded message encodes to the same text.
 */
static void round_trip_(const ProtobufCMessage *m, const char *what, bool full, int line)
{
	cs_error e = CS_ERROR_INIT;
	json_t *j = NULL;
	int rc = cs_json_encode(&j, m, &e);
	if (!check_int(rc, CS_OK, "encode", "CS_OK", __FILE__, line)) {
		fprintf(stderr, "  %s: %s\n", what, e.msg);
		return;
	}
	if (full)
		all_fields_present(j, m->descriptor, what, line);
	char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	ProtobufCMessage *back = NULL, *back_text = NULL;
	rc = cs_json_decode(&back, m->descriptor, j, &e);
	if (check_int(rc, CS_OK, "decode", "CS_OK", __FILE__, line))
		same_bytes(m, back, what, line);
	else
		fprintf(stderr, "  %s: %s\n  json: %s\n", what, e.msg, text);

	rc = cs_json_decode_text(&back_text, m->descriptor, text, strlen(text), &e);
	if (check_int(rc, CS_OK, "decode text", "CS_OK", __FILE__, line))
		same_bytes(m, back_text, what, line);
	else
		fprintf(stderr, "  %s: %s\n", what, e.msg);

	if (back) {
		char *again = cs_json_encode_text(back, 0, &e);
		check_str(again, text, "re-encoded", "encoded", __FILE__, line);
		free(again);
	}
	protobuf_c_message_free_unpacked(back, NULL);
	protobuf_c_message_free_unpacked(back_text, NULL);
	free(text);
	json_decref(j);
}
#define ROUND_TRIP(m)	   round_trip_(&(m)->base, #m, true, __LINE__)
#define ROUND_TRIP_PART(m) round_trip_(&(m)->base, #m, false, __LINE__)

/* @m encodes to exactly @want. */
static void expect_json_(const ProtobufCMessage *m, const char *want, int line)
{
	cs_error e = CS_ERROR_INIT;
	char *got = cs_json_encode_text(m, 0, &e);
	if (!check_str(got, want, "encoded", "expected", __FILE__, line) && !got)
		fprintf(stderr, "  error: %s\n", e.msg);
	free(got);
}
#define EXPECT_JSON(m, want) expect_json_(&(m)->base, (want), __LINE__)

/* Decode @text as @desc; NULL (and a failed check) when it does not decode. */
static ProtobufCMessage *decode_ok_(const ProtobufCMessageDescriptor *desc, const char *text,
				    int line)
{
	cs_error e = CS_ERROR_INIT;
	ProtobufCMessage *m = NULL;
	int rc = cs_json_decode_text(&m, desc, text, strlen(text), &e);
	if (!check_int(rc, CS_OK, "decode", "CS_OK", __FILE__, line))
		fprintf(stderr, "  input: %.300s\n  error: %s\n", text, e.msg);
	return m;
}
#define DECODE_OK(desc, text) decode_ok_((desc), (text), __LINE__)

/* Decode @text as @desc and check that it re-encodes to @want. */
static void decodes_to_(const ProtobufCMessageDescriptor *desc, const char *text, const char *want,
			int line)
{
	ProtobufCMessage *m = decode_ok_(desc, text, line);
	if (!m)
		return;
	expect_json_(m, want, line);
	protobuf_c_message_free_unpacked(m, NULL);
}
#define DECODES_TO(desc, text, want) decodes_to_((desc), (text), (want), __LINE__)

/* Decoding @len bytes of @text fails with @code, *out is NULL and the message has @needle. */
static void expect_bad_(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
			int code, const char *needle, int line)
{
	cs_error e = CS_ERROR_INIT;
	ProtobufCMessage sentinel;
	ProtobufCMessage *m = &sentinel;
	int rc = cs_json_decode_text(&m, desc, text, len, &e);
	bool ok = check_int(rc, code, "rc", "expected code", __FILE__, line);
	ok &= check_int(e.code, code, "err.code", "expected code", __FILE__, line);
	ok &= check_true(m == NULL, "*out == NULL", __FILE__, line);
	ok &= check_contains(e.msg, needle, "err.msg", __FILE__, line);
	if (!ok)
		fprintf(stderr, "  input: %.300s\n", text);
	if (m && m != &sentinel)
		protobuf_c_message_free_unpacked(m, NULL);
}
#define EXPECT_BAD(desc, text, needle)                                                             \
	expect_bad_((desc), (text), strlen(text), CS_EINVAL, (needle), __LINE__)

/* Encoding @m fails with @code and a message containing @needle. */
static void expect_encode_bad_(const ProtobufCMessage *m, int code, const char *needle, int line)
{
	cs_error e = CS_ERROR_INIT;
	json_t *j = json_true();
	int rc = cs_json_encode(&j, m, &e);
	check_int(rc, code, "encode rc", "expected code", __FILE__, line);
	check_true(j == NULL, "*out == NULL", __FILE__, line);
	check_contains(e.msg, needle, "err.msg", __FILE__, line);
	json_decref(j);
	char *text = cs_json_encode_text(m, 0, &e);
	check_true(text == NULL, "encode_text fails too", __FILE__, line);
	free(text);
}
#define EXPECT_ENCODE_BAD(m, code, needle)                                                         \
	expect_encode_bad_(&(m)->base, (code), (needle), __LINE__)

static const ProtobufCMessageDescriptor *const EVENT = &convstore__v1__event__descriptor;
static const ProtobufCMessageDescriptor *const APPEND = &convstore__v1__append_request__descriptor;
static const ProtobufCMessageDescriptor *const SCALARS = &scalars_desc;

/* ==== builders: every field set ============================================================
 *
 * Each returns a message in static storage; strings are literals. Nothing here is freed.
 */

static Convstore__V1__Timestamp *mk_ts(Convstore__V1__Timestamp *t, int64_t secs, int32_t nanos)
{
	convstore__v1__timestamp__init(t);
	t->seconds = secs;
	t->nanos = nanos;
	return t;
}

static Convstore__V1__JsonValue *mk_json(Convstore__V1__JsonValue *v, const char *text)
{
	convstore__v1__json_value__init(v);
	v->json = S(text);
	return v;
}

static Convstore__V1__ToolCallRequest *mk_call(Convstore__V1__ToolCallRequest *c, const char *id,
					       const char *name, const char *args)
{
	convstore__v1__tool_call_request__init(c);
	c->id = S(id);
	c->name = S(name);
	c->arguments = S(args);
	return c;
}

/* Two metadata entries, one with non-ASCII key and value, for any MetadataEntry type. */
#define METADATA(T, INIT, owner)                                                                   \
	do {                                                                                       \
		static T e_[2] = {INIT, INIT};                                                     \
		static T *p_[2] = {&e_[0], &e_[1]};                                                \
		e_[0].key = S("user_id");                                                          \
		e_[0].value = S("u1");                                                             \
		e_[1].key = S("k\xc3\xa9y");                                                       \
		e_[1].value = S("v\xe2\x9c\x93");                                                  \
		(owner)->n_metadata = 2;                                                           \
		(owner)->metadata = p_;                                                            \
	} while (0)

static Convstore__V1__TraceContext *full_trace(void)
{
	static Convstore__V1__TraceContext t;
	convstore__v1__trace_context__init(&t);
	t.trace_id = S("4bf92f3577b34da6a3ce929d0e0e4736");
	t.span_id = S("00f067aa0ba902b7");
	return &t;
}

static Convstore__V1__ContentPart *full_part(void)
{
	static Convstore__V1__ContentPart p;
	static Convstore__V1__JsonValue j;
	convstore__v1__content_part__init(&p);
	p.type = S("json");
	p.text = S("caption");
	p.url = S("https://example.com/a.png");
	p.json = mk_json(&j, "[1,\"two\",{\"3\":false},null,-0.25]");
	return &p;
}

static Convstore__V1__Message *full_message(void)
{
	static Convstore__V1__Message m;
	static Convstore__V1__ContentPart text;
	static Convstore__V1__ContentPart *parts[2];
	convstore__v1__content_part__init(&text);
	text.type = S("text");
	text.text = S("Book me a flight");
	parts[0] = &text;
	parts[1] = full_part();
	convstore__v1__message__init(&m);
	m.role = S("user");
	m.content = S("Book me a flight: h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x8e\x89 \"q\" \\ \n\t");
	m.name = S("mia");
	m.n_parts = 2;
	m.parts = parts;
	return &m;
}

static Convstore__V1__Usage *full_usage(void)
{
	static Convstore__V1__Usage u;
	convstore__v1__usage__init(&u);
	u.input_tokens = UINT64_MAX;
	u.output_tokens = (uint64_t)INT64_MAX + 1;
	u.cached_tokens = (uint64_t)1 << 53;
	u.reasoning_tokens = 7;
	return &u;
}

static Convstore__V1__ModelResponse *full_model_response(void)
{
	static Convstore__V1__ModelResponse r;
	static Convstore__V1__ToolCallRequest calls[2];
	static Convstore__V1__ToolCallRequest *callp[2] = {&calls[0], &calls[1]};
	mk_call(&calls[0], "call_1", "get_user", "{\"user_id\":\"u1\"}");
	mk_call(&calls[1], "call_2", "search", "not json at all");
	convstore__v1__model_response__init(&r);
	r.model = S("gpt-4o");
	r.content_opt_case = CONVSTORE__V1__MODEL_RESPONSE__CONTENT_OPT_CONTENT;
	r.content = S("Let me check.");
	r.n_tool_calls = 2;
	r.tool_calls = callp;
	r.finish_reason = S("tool_calls");
	r.usage = full_usage();
	r.cost_usd = 0.00123;
	r.latency_ms = 1234;
	r.request_id = S("req-1");
	return &r;
}

static Convstore__V1__ToolCall *full_tool_call(void)
{
	static Convstore__V1__ToolCall c;
	convstore__v1__tool_call__init(&c);
	c.id = S("call_9");
	c.name = S("lookup");
	c.arguments = S("{\"q\":[1,2]}");
	return &c;
}

static Convstore__V1__ToolResult *full_tool_result(void)
{
	static Convstore__V1__ToolResult r;
	convstore__v1__tool_result__init(&r);
	r.call_id = S("call_1");
	r.name = S("get_user");
	r.output = S("{\"name\":\"Mia\"}");
	r.is_error = 1;
	r.duration_ms = 17;
	return &r;
}

static Convstore__V1__TurnStarted *full_turn_started(void)
{
	static Convstore__V1__TurnStarted t;
	convstore__v1__turn_started__init(&t);
	t.turn_id = S("t1");
	t.reason = S("user message");
	return &t;
}

static Convstore__V1__TurnEnded *full_turn_ended(void)
{
	static Convstore__V1__TurnEnded t;
	convstore__v1__turn_ended__init(&t);
	t.turn_id = S("t1");
	t.reason = S("done");
	return &t;
}

static Convstore__V1__Extension *full_extension(void)
{
	static Convstore__V1__Extension x;
	static Convstore__V1__JsonValue data;
	static uint8_t bytes[] = {0x00, 0x01, 0xfe, 0xff, 0x7f};
	convstore__v1__extension__init(&x);
	x.type = S("com.example.thing");
	x.data = mk_json(&data, "{\"k\":[1,2,{\"n\":null}],\"s\":\"x\\u0000y\",\"e\":{}}");
	x.bytes.len = sizeof(bytes);
	x.bytes.data = bytes;
	return &x;
}

static Convstore__V1__Retention *full_retention(void)
{
	static Convstore__V1__Retention r;
	convstore__v1__retention__init(&r);
	r.max_events = 1000;
	r.max_age_seconds = 86400;
	return &r;
}

static Convstore__V1__ConversationCreated *full_created(void)
{
	static Convstore__V1__ConversationCreated c;
	convstore__v1__conversation_created__init(&c);
	c.title = S("Flights");
	METADATA(Convstore__V1__ConversationCreated__MetadataEntry,
		 CONVSTORE__V1__CONVERSATION_CREATED__METADATA_ENTRY__INIT, &c);
	c.retention = full_retention();
	return &c;
}

static Convstore__V1__ConversationForked *full_forked(void)
{
	static Convstore__V1__ConversationForked f;
	convstore__v1__conversation_forked__init(&f);
	f.parent_id = S("c0");
	f.parent_version = 7;
	f.title = S("Fork");
	METADATA(Convstore__V1__ConversationForked__MetadataEntry,
		 CONVSTORE__V1__CONVERSATION_FORKED__METADATA_ENTRY__INIT, &f);
	f.retention = full_retention();
	return &f;
}

static Convstore__V1__ConversationUpdated *full_updated(void)
{
	static Convstore__V1__ConversationUpdated u;
	convstore__v1__conversation_updated__init(&u);
	u.title_opt_case = CONVSTORE__V1__CONVERSATION_UPDATED__TITLE_OPT_TITLE;
	u.title = S("New title");
	u.status = S("archived");
	METADATA(Convstore__V1__ConversationUpdated__MetadataEntry,
		 CONVSTORE__V1__CONVERSATION_UPDATED__METADATA_ENTRY__INIT, &u);
	u.retention = full_retention();
	return &u;
}

static Convstore__V1__ConversationDeleted *full_deleted(void)
{
	static Convstore__V1__ConversationDeleted d;
	convstore__v1__conversation_deleted__init(&d);
	d.purged = 1;
	return &d;
}

/* An Event with every envelope field set and the payload @which (0: none). */
static Convstore__V1__Event *full_event(Convstore__V1__Event__PayloadCase which)
{
	static Convstore__V1__Event ev;
	static Convstore__V1__Timestamp rec, occ;
	convstore__v1__event__init(&ev);
	ev.id = S("0f8c6a1e-7d3c-4e0e-9a51-2b7c1c0d9e11");
	ev.conversation_id = S("c1");
	ev.version = 12;
	ev.position = (uint64_t)1 << 40;
	ev.recorded_at = mk_ts(&rec, 1795726800, 123456789);
	ev.occurred_at = mk_ts(&occ, 1795726799, 500000000);
	ev.actor = S("billing-agent");
	ev.correlation_id = S("req-42");
	ev.causation_id = S("evt-17");
	ev.trace = full_trace();
	METADATA(Convstore__V1__Event__MetadataEntry, CONVSTORE__V1__EVENT__METADATA_ENTRY__INIT,
		 &ev);
	ev.type = S("message");
	ev.tenant = S("acme");
	ev.payload_case = which;
	switch (which) {
	case CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE: ev.message = full_message(); break;
	case CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE:
		ev.model_response = full_model_response();
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL: ev.tool_call = full_tool_call(); break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT: ev.tool_result = full_tool_result(); break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TURN_STARTED:
		ev.turn_started = full_turn_started();
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TURN_ENDED: ev.turn_ended = full_turn_ended(); break;
	case CONVSTORE__V1__EVENT__PAYLOAD_EXTENSION: ev.extension = full_extension(); break;
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_CREATED:
		ev.conversation_created = full_created();
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED:
		ev.conversation_forked = full_forked();
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_UPDATED:
		ev.conversation_updated = full_updated();
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED:
		ev.conversation_deleted = full_deleted();
		break;
	default: ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD__NOT_SET; break;
	}
	return &ev;
}

static const Convstore__V1__Event__PayloadCase all_payloads[] = {
    CONVSTORE__V1__EVENT__PAYLOAD__NOT_SET,
    CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE,
    CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE,
    CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL,
    CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT,
    CONVSTORE__V1__EVENT__PAYLOAD_TURN_STARTED,
    CONVSTORE__V1__EVENT__PAYLOAD_TURN_ENDED,
    CONVSTORE__V1__EVENT__PAYLOAD_EXTENSION,
    CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_CREATED,
    CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED,
    CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_UPDATED,
    CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED,
};

static Convstore__V1__PendingToolCall *full_pending(Convstore__V1__PendingToolCall *p,
						    const char *id)
{
	convstore__v1__pending_tool_call__init(p);
	p->id = S(id);
	p->name = S("get_user");
	p->arguments = S("{}");
	p->version = 3;
	return p;
}

static Convstore__V1__Counts *full_counts(void)
{
	static Convstore__V1__Counts c;
	convstore__v1__counts__init(&c);
	c.events = 12;
	c.messages = 9;
	c.tool_calls = 2;
	c.tool_errors = UINT64_MAX;
	return &c;
}

static Convstore__V1__UsageTotals *full_usage_totals(void)
{
	static Convstore__V1__UsageTotals u;
	convstore__v1__usage_totals__init(&u);
	u.input_tokens = 1000;
	u.output_tokens = 200;
	u.cached_tokens = 30;
	u.reasoning_tokens = (uint64_t)INT64_MAX + 5;
	u.cost_usd = -1.5e300;
	u.responses = 4;
	return &u;
}

static Convstore__V1__UsageCounter *full_usage_counter(void)
{
	static Convstore__V1__UsageCounter u;
	convstore__v1__usage_counter__init(&u);
	u.input_tokens = 1000;
	u.output_tokens = 200;
	u.cached_tokens = 30;
	u.reasoning_tokens = (uint64_t)INT64_MAX + 5;
	u.cost_nanos = INT64_MIN;
	u.responses = 4;
	return &u;
}

static Convstore__V1__ParentRef *full_parent(void)
{
	static Convstore__V1__ParentRef p;
	convstore__v1__parent_ref__init(&p);
	p.id = S("c0");
	p.version = 7;
	return &p;
}

static Convstore__V1__Head *full_head(void)
{
	static Convstore__V1__Head h;
	static Convstore__V1__Timestamp created, updated;
	static Convstore__V1__PendingToolCall pending[2];
	static Convstore__V1__PendingToolCall *pendingp[2] = {&pending[0], &pending[1]};
	convstore__v1__head__init(&h);
	h.tenant = S("acme");
	h.id = S("c1");
	h.version = 12;
	h.last_position = 99;
	h.status = S("active");
	h.title = S("Flights");
	METADATA(Convstore__V1__Head__MetadataEntry, CONVSTORE__V1__HEAD__METADATA_ENTRY__INIT, &h);
	h.created_at = mk_ts(&created, -62135596800LL, 0);
	h.updated_at = mk_ts(&updated, 253402300799LL, 999999999);
	h.parent = full_parent();
	h.n_pending_tool_calls = 2;
	h.pending_tool_calls = pendingp;
	full_pending(&pending[0], "call_1");
	full_pending(&pending[1], "call_2");
	h.usage = full_usage_counter();
	h.counts = full_counts();
	h.first_version = 3;
	h.retention = full_retention();
	return &h;
}

/* Every scalar type at an extreme, every list non-empty, both maps, the optional and oneof. */
static Scalars *full_scalars(void)
{
	static Scalars s;
	static int64_t r_i64[] = {INT64_MIN, -1, 0, INT64_MAX};
	static char *r_str[] = {S(""), S("a"), S("\xe2\x82\xac")};
	static uint8_t one[] = {0xff};
	static ProtobufCBinaryData r_blob[] = {{0, NULL}, {1, one}};
	static int r_color[] = {COLOR_RED, COLOR_UNSET, 7, COLOR_NEG};
	static double r_dbl[] = {0.5, -0.0, 1e-310, -DBL_MAX};
	static protobuf_c_boolean r_flag[] = {1, 0, 1};
	static ById ids[2];
	static ById *idp[2] = {&ids[0], &ids[1]};
	static Flags flags[2];
	static Flags *flagp[2] = {&flags[0], &flags[1]};
	static Convstore__V1__Timestamp ts[3];
	static Convstore__V1__Timestamp *tsp[3] = {&ts[0], &ts[1], &ts[2]};
	static Convstore__V1__JsonValue js[4];
	static Convstore__V1__JsonValue *jsp[4] = {&js[0], &js[1], &js[2], &js[3]};
	static uint8_t blob[] = {'h', 'i', 0, '!'};

	scalars_init(&s.base);
	s.i32 = INT32_MIN;
	s.i64 = INT64_MIN;
	s.u32 = UINT32_MAX;
	s.u64 = UINT64_MAX;
	s.s32 = INT32_MIN;
	s.s64 = INT64_MIN;
	s.fx32 = UINT32_MAX;
	s.fx64 = UINT64_MAX;
	s.sfx32 = INT32_MIN;
	s.sfx64 = INT64_MIN;
	s.flt = FLT_MAX;
	s.dbl = DBL_MIN;
	s.flag = 1;
	s.str = S("\xc3\xbcn\xc3\xaf");
	s.blob.len = sizeof(blob);
	s.blob.data = blob;
	s.color = COLOR_NEG;
	s.n_r_i64 = N(r_i64);
	s.r_i64 = r_i64;
	s.n_r_str = N(r_str);
	s.r_str = r_str;
	s.n_r_blob = N(r_blob);
	s.r_blob = r_blob;
	s.n_r_color = N(r_color);
	s.r_color = r_color;
	s.n_r_dbl = N(r_dbl);
	s.r_dbl = r_dbl;
	s.n_r_flag = N(r_flag);
	s.r_flag = r_flag;
	for (int i = 0; i < 2; i++) {
		by_id_init(&ids[i].base);
		flags_init(&flags[i].base);
	}
	ids[0].key = -5;
	ids[0].value = S("neg");
	ids[1].key = INT64_MAX;
	ids[1].value = S("max");
	flags[0].key = 1;
	flags[0].value = UINT32_MAX;
	flags[1].key = 0;
	flags[1].value = 0;
	s.n_by_id = 2;
	s.by_id = idp;
	s.n_flags = 2;
	s.flags = flagp;
	s.has_p2 = 1; /* present although zero */
	s.p2 = 0;
	s.limit_case = 26; /* set although zero */
	s.limit = 0;
	mk_ts(&ts[0], 0, 0);
	mk_ts(&ts[1], 253402300799LL, 999999999);
	mk_ts(&ts[2], -62135596800LL, 1000);
	s.n_r_ts = 3;
	s.r_ts = tsp;
	mk_json(&js[0], "null");
	mk_json(&js[1], "1");
	mk_json(&js[2], "[]");
	mk_json(&js[3], "\"s\"");
	s.n_r_json = 4;
	s.r_json = jsp;
	return &s;
}

/* ==== round trips ========================================================================== */

static void test_round_trip_event_proto(void)
{
	Convstore__V1__Timestamp t;
	Convstore__V1__JsonValue j;
	ROUND_TRIP_PART(mk_ts(&t, 1795726800, 123456789));
	ROUND_TRIP_PART(mk_json(&j, "{\"a\":[1,2.5,\"x\",null,true],\"b\":{}}"));
	ROUND_TRIP_PART(mk_json(&j, "\"just a string\""));
	ROUND_TRIP_PART(mk_json(&j, "-12.75"));
	ROUND_TRIP_PART(mk_json(&j, "[]"));
	ROUND_TRIP(full_trace());
	ROUND_TRIP(full_part());
	ROUND_TRIP(full_message());
	Convstore__V1__ToolCallRequest c;
	ROUND_TRIP(mk_call(&c, "call_1", "get_user", "{\"a\":1}"));
	ROUND_TRIP(full_usage());
	ROUND_TRIP(full_model_response());
	ROUND_TRIP(full_tool_call());
	ROUND_TRIP(full_tool_result());
	ROUND_TRIP(full_turn_started());
	ROUND_TRIP(full_turn_ended());
	ROUND_TRIP(full_extension());
	ROUND_TRIP(full_created());
	ROUND_TRIP(full_created()->metadata[1]);
	ROUND_TRIP(full_forked());
	ROUND_TRIP(full_forked()->metadata[0]);
	ROUND_TRIP(full_updated());
	ROUND_TRIP(full_updated()->metadata[1]);
	ROUND_TRIP(full_deleted());
	ROUND_TRIP(full_event(CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE));
	ROUND_TRIP(full_event(CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE)->metadata[1]);
	for (size_t i = 0; i < N(all_payloads); i++)
		ROUND_TRIP(full_event(all_payloads[i]));
}

static void test_round_trip_api_proto(void)
{
	Convstore__V1__AppendRequest req = CONVSTORE__V1__APPEND_REQUEST__INIT;
	Convstore__V1__Event *events[3];
	Convstore__V1__Event copies[3];
	copies[0] = *full_event(CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE);
	copies[1] = *full_event(CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE);
	copies[2] = *full_event(CONVSTORE__V1__EVENT__PAYLOAD_EXTENSION);
	for (int i = 0; i < 3; i++)
		events[i] = &copies[i];
	req.n_events = 3;
	req.events = events;
	req.expected_version_opt_case =
	    CONVSTORE__V1__APPEND_REQUEST__EXPECTED_VERSION_OPT_EXPECTED_VERSION;
	req.expected_version = 0;
	ROUND_TRIP(&req);
	req.expected_version = UINT64_MAX;
	ROUND_TRIP(&req);

	Convstore__V1__AppendResponse resp = CONVSTORE__V1__APPEND_RESPONSE__INIT;
	resp.conversation_id = S("c1");
	resp.first_version = 1;
	resp.last_version = 3;
	resp.first_position = (uint64_t)INT64_MAX;
	resp.last_position = UINT64_MAX;
	ROUND_TRIP(&resp);
}

static void test_round_trip_store_proto(void)
{
	Convstore__V1__PendingToolCall p;
	ROUND_TRIP(full_pending(&p, "call_1"));
	ROUND_TRIP(full_counts());
	ROUND_TRIP(full_usage_totals());
	ROUND_TRIP(full_usage_counter());
	ROUND_TRIP(full_parent());
	ROUND_TRIP(full_head());
	ROUND_TRIP(full_head()->metadata[0]);
}

/* The view messages, and CS_JSON_NULL_OPTIONAL: an unset `x_opt` member is written as null
 * (the messages view's "content": null), a set one as its value, other fields as before. */
static void test_round_trip_view_proto(void)
{
	Convstore__V1__ChatFunction fn = CONVSTORE__V1__CHAT_FUNCTION__INIT;
	Convstore__V1__ChatToolCall call = CONVSTORE__V1__CHAT_TOOL_CALL__INIT;
	Convstore__V1__ChatToolCall *calls[] = {&call};
	Convstore__V1__ChatMessage m[2] = {CONVSTORE__V1__CHAT_MESSAGE__INIT,
					   CONVSTORE__V1__CHAT_MESSAGE__INIT};
	Convstore__V1__ChatMessage *mp[] = {&m[0], &m[1]};
	Convstore__V1__ChatTranscript t = CONVSTORE__V1__CHAT_TRANSCRIPT__INIT;
	fn.name = S("get_user");
	fn.arguments = S("{\"id\":1}");
	call.id = S("call_1");
	call.type = S("function");
	call.function = &fn;
	m[0].role = S("assistant");
	m[0].n_tool_calls = 1;
	m[0].tool_calls = calls;
	m[1].role = S("tool");
	m[1].content_opt_case = CONVSTORE__V1__CHAT_MESSAGE__CONTENT_OPT_CONTENT;
	m[1].content = S("");
	m[1].tool_call_id = S("call_1");
	t.n_messages = 2;
	t.messages = mp;
	ROUND_TRIP_PART(&t);
	char *text = cs_json_encode_text(&t.base, CS_JSON_NULL_OPTIONAL, NULL);
	CHECK_STR_EQ(text,
		     "{\"messages\":[{\"role\":\"assistant\",\"content\":null,"
		     "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
		     "\"function\":{\"name\":\"get_user\",\"arguments\":\"{\\\"id\\\":1}\"}}]},"
		     "{\"role\":\"tool\",\"content\":\"\",\"tool_call_id\":\"call_1\"}]}");
	free(text);
	EXPECT_JSON(&m[0], "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\","
			   "\"type\":\"function\",\"function\":{\"name\":\"get_user\","
			   "\"arguments\":\"{\\\"id\\\":1}\"}}]}");

	Convstore__V1__ConversationList list = CONVSTORE__V1__CONVERSATION_LIST__INIT;
	text = cs_json_encode_text(&list.base, CS_JSON_NULL_OPTIONAL, NULL);
	CHECK_STR_EQ(text, "{\"next_cursor\":null}");
	free(text);
	list.next_cursor_opt_case = CONVSTORE__V1__CONVERSATION_LIST__NEXT_CURSOR_OPT_NEXT_CURSOR;
	list.next_cursor = S("abc");
	ROUND_TRIP_PART(&list);

	Convstore__V1__ConversationState st = CONVSTORE__V1__CONVERSATION_STATE__INIT;
	Convstore__V1__TranscriptMessage tm = CONVSTORE__V1__TRANSCRIPT_MESSAGE__INIT;
	Convstore__V1__TranscriptMessage *tmp[] = {&tm};
	Convstore__V1__PendingToolCall p;
	Convstore__V1__PendingToolCall *pp[] = {full_pending(&p, "call_9")};
	tm.version = 2;
	tm.role = S("user");
	tm.content_opt_case = CONVSTORE__V1__TRANSCRIPT_MESSAGE__CONTENT_OPT_CONTENT;
	tm.content = S("hi");
	st.id = S("c1");
	st.version = 9;
	st.status = S("active");
	st.parent = full_parent();
	st.n_messages = 1;
	st.messages = tmp;
	st.n_pending_tool_calls = 1;
	st.pending_tool_calls = pp;
	st.usage = full_usage_totals();
	st.counts = full_counts();
	ROUND_TRIP_PART(&st);
}

static void test_round_trip_scalars(void)
{
	ROUND_TRIP(full_scalars());
	ROUND_TRIP(full_scalars()->by_id[0]);
	ROUND_TRIP(full_scalars()->flags[0]);
	EXPECT_JSON(full_scalars(),
		    "{\"i32\":-2147483648,\"i64\":-9223372036854775808,\"u32\":4294967295,"
		    "\"u64\":\"18446744073709551615\",\"s32\":-2147483648,"
		    "\"s64\":-9223372036854775808,\"fx32\":4294967295,"
		    "\"fx64\":\"18446744073709551615\",\"sfx32\":-2147483648,"
		    "\"sfx64\":-9223372036854775808,\"flt\":3.4028234663852886e38,"
		    "\"dbl\":2.2250738585072014e-308,\"flag\":true,\"str\":\"\xc3\xbcn\xc3\xaf\","
		    "\"blob\":\"aGkAIQ==\",\"color\":\"COLOR_NEG\","
		    "\"r_i64\":[-9223372036854775808,-1,0,9223372036854775807],"
		    "\"r_str\":[\"\",\"a\",\"\xe2\x82\xac\"],\"r_blob\":[\"\",\"/w==\"],"
		    "\"r_color\":[\"COLOR_RED\",\"COLOR_UNSET\",7,\"COLOR_NEG\"],"
		    "\"r_dbl\":[0.5,-0.0,9.9999999999999694e-311,-1.7976931348623157e308],"
		    "\"r_flag\":[true,false,true],"
		    "\"by_id\":{\"-5\":\"neg\",\"9223372036854775807\":\"max\"},"
		    "\"flags\":{\"true\":4294967295,\"false\":0},\"p2\":0,\"limit\":0,"
		    "\"r_ts\":[\"1970-01-01T00:00:00Z\",\"9999-12-31T23:59:59.999999999Z\","
		    "\"0001-01-01T00:00:00.000001Z\"],\"r_json\":[null,1,[],\"s\"]}");

	/* An empty message is {} and decodes back to the empty message. */
	Scalars empty;
	scalars_init(&empty.base);
	EXPECT_JSON(&empty, "{}");
	ROUND_TRIP_PART(&empty);
}

/* The same JSON in lowerCamelCase decodes to the same message. */
static void test_camel_case_input(void)
{
	DECODES_TO(EVENT,
		   "{\"conversationId\":\"c1\",\"occurredAt\":\"2026-11-26T21:00:00Z\","
		   "\"correlationId\":\"r\",\"causationId\":\"e\",\"trace\":{\"traceId\":\"t\","
		   "\"spanId\":\"s\"},\"toolResult\":{\"callId\":\"call_1\",\"isError\":true,"
		   "\"durationMs\":5}}",
		   "{\"conversation_id\":\"c1\",\"occurred_at\":\"2026-11-26T21:00:00Z\","
		   "\"correlation_id\":\"r\",\"causation_id\":\"e\",\"trace\":{\"trace_id\":\"t\","
		   "\"span_id\":\"s\"},\"tool_result\":{\"call_id\":\"call_1\",\"is_error\":true,"
		   "\"duration_ms\":5}}");
	DECODES_TO(EVENT,
		   "{\"modelResponse\":{\"toolCalls\":[{\"id\":\"1\",\"name\":\"f\"}],"
		   "\"finishReason\":\"stop\",\"costUsd\":0.5,\"latencyMs\":3,\"requestId\":\"r\","
		   "\"usage\":{\"inputTokens\":1,\"outputTokens\":2,\"cachedTokens\":3,"
		   "\"reasoningTokens\":4}}}",
		   "{\"model_response\":{\"tool_calls\":[{\"id\":\"1\",\"name\":\"f\"}],"
		   "\"finish_reason\":\"stop\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2,"
		   "\"cached_tokens\":3,\"reasoning_tokens\":4},\"cost_usd\":0.5,"
		   "\"latency_ms\":3,\"request_id\":\"r\"}}");
	DECODES_TO(APPEND, "{\"expectedVersion\":3,\"events\":[]}", "{\"expected_version\":3}");
	DECODES_TO(SCALARS, "{\"rI64\":[\"-1\"],\"byId\":{\"1\":\"a\"},\"rTs\":[]}",
		   "{\"r_i64\":[-1],\"by_id\":{\"1\":\"a\"}}");
	/* Both spellings of one field in one object is a repeated field. */
	EXPECT_BAD(EVENT, "{\"tool_result\":{\"call_id\":\"a\",\"callId\":\"b\"}}",
		   "field \"call_id\" given twice in tool_result");
}

/* ==== exact output ========================================================================= */

static void test_event_text(void)
{
	Convstore__V1__Event ev = CONVSTORE__V1__EVENT__INIT;
	Convstore__V1__Timestamp occ;
	Convstore__V1__Message msg = CONVSTORE__V1__MESSAGE__INIT;
	Convstore__V1__Event__MetadataEntry md = CONVSTORE__V1__EVENT__METADATA_ENTRY__INIT;
	Convstore__V1__Event__MetadataEntry *mdp[1] = {&md};
	ev.id = S("0f8c6a1e-7d3c-4e0e-9a51-2b7c1c0d9e11");
	ev.occurred_at = mk_ts(&occ, 1795726800, 0);
	ev.actor = S("billing-agent");
	ev.correlation_id = S("req-42");
	ev.causation_id = S("evt-17");
	md.key = S("user_id");
	md.value = S("u1");
	ev.n_metadata = 1;
	ev.metadata = mdp;
	msg.role = S("user");
	msg.content = S("Book me a flight");
	msg.name = S("mia");
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE;
	ev.message = &msg;
	const char *want = "{\"id\":\"0f8c6a1e-7d3c-4e0e-9a51-2b7c1c0d9e11\","
			   "\"occurred_at\":\"2026-11-26T21:00:00Z\",\"actor\":\"billing-agent\","
			   "\"correlation_id\":\"req-42\",\"causation_id\":\"evt-17\","
			   "\"metadata\":{\"user_id\":\"u1\"},"
			   "\"message\":{\"role\":\"user\",\"content\":\"Book me a flight\","
			   "\"name\":\"mia\"}}";
	EXPECT_JSON(&ev, want);
	/* The example of API.md, whitespace and all, decodes to the same event. */
	DECODES_TO(EVENT,
		   "{\n  \"id\": \"0f8c6a1e-7d3c-4e0e-9a51-2b7c1c0d9e11\",\n"
		   "  \"occurred_at\": \"2026-11-26T21:00:00Z\",\n  \"actor\": \"billing-agent\",\n"
		   "  \"correlation_id\": \"req-42\", \"causation_id\": \"evt-17\",\n"
		   "  \"metadata\": { \"user_id\": \"u1\" },\n"
		   "  \"message\": { \"role\": \"user\", \"content\": \"Book me a flight\", "
		   "\"name\": \"mia\" }\n}\n",
		   want);

	/* Defaults are left out; an empty event is {}. */
	Convstore__V1__Event empty = CONVSTORE__V1__EVENT__INIT;
	EXPECT_JSON(&empty, "{}");
	/* A selected payload that is an empty message is still written. */
	Convstore__V1__TurnEnded te = CONVSTORE__V1__TURN_ENDED__INIT;
	empty.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_TURN_ENDED;
	empty.turn_ended = &te;
	EXPECT_JSON(&empty, "{\"turn_ended\":{}}");
	/* Null is absent, for every kind of field. */
	DECODES_TO(EVENT,
		   "{\"id\":null,\"version\":null,\"recorded_at\":null,\"trace\":null,"
		   "\"metadata\":null,\"message\":null,\"tool_call\":null}",
		   "{}");
}

/* content_opt: absent, null, "" and a string are three different JSON texts, and survive. */
static void test_model_response_content(void)
{
	Convstore__V1__ModelResponse r = CONVSTORE__V1__MODEL_RESPONSE__INIT;
	Convstore__V1__ToolCallRequest call;
	Convstore__V1__ToolCallRequest *callp[1] = {&call};
	r.model = S("gpt-4o");
	EXPECT_JSON(&r, "{\"model\":\"gpt-4o\"}");
	ROUND_TRIP_PART(&r);
	r.content_opt_case = CONVSTORE__V1__MODEL_RESPONSE__CONTENT_OPT_CONTENT;
	r.content = S("");
	EXPECT_JSON(&r, "{\"model\":\"gpt-4o\",\"content\":\"\"}");
	ROUND_TRIP_PART(&r);
	r.content = S("Hi");
	r.n_tool_calls = 1;
	r.tool_calls = callp;
	mk_call(&call, "call_1", "get_user", "{\"id\":1}");
	r.cost_usd = 0.25;
	EXPECT_JSON(&r, "{\"model\":\"gpt-4o\",\"content\":\"Hi\",\"tool_calls\":[{\"id\":"
			"\"call_1\",\"name\":\"get_user\",\"arguments\":\"{\\\"id\\\":1}\"}],"
			"\"cost_usd\":0.25}");
	/* Like protobuf-c's packer, a selected string still at the shared default is not set. */
	r.content = (char *)protobuf_c_empty_string;
	r.n_tool_calls = 0;
	EXPECT_JSON(&r, "{\"model\":\"gpt-4o\",\"cost_usd\":0.25}");

	const ProtobufCMessageDescriptor *mr = &convstore__v1__model_response__descriptor;
	DECODES_TO(mr, "{\"model\":\"m\",\"content\":null}", "{\"model\":\"m\"}");
	DECODES_TO(mr, "{\"model\":\"m\",\"content\":\"\"}", "{\"model\":\"m\",\"content\":\"\"}");
	DECODES_TO(mr, "{\"model\":\"m\"}", "{\"model\":\"m\"}");
	ProtobufCMessage *m = DECODE_OK(mr, "{\"content\":\"\"}");
	if (m) {
		Convstore__V1__ModelResponse *got = (Convstore__V1__ModelResponse *)m;
		CHECK_EQ_INT(got->content_opt_case,
			     CONVSTORE__V1__MODEL_RESPONSE__CONTENT_OPT_CONTENT);
		CHECK_STR_EQ(got->content, "");
		/* A fresh "" so that the packer writes it: "" and absent differ in binary too. */
		CHECK(got->content != protobuf_c_empty_string);
		CHECK_EQ_INT(protobuf_c_message_get_packed_size(m), 2);
	}
	protobuf_c_message_free_unpacked(m, NULL);

	/* The other one-member oneofs behave the same. */
	Convstore__V1__ConversationUpdated u = CONVSTORE__V1__CONVERSATION_UPDATED__INIT;
	u.title_opt_case = CONVSTORE__V1__CONVERSATION_UPDATED__TITLE_OPT_TITLE;
	u.title = S("");
	EXPECT_JSON(&u, "{\"title\":\"\"}");
	Convstore__V1__AppendRequest req = CONVSTORE__V1__APPEND_REQUEST__INIT;
	EXPECT_JSON(&req, "{}");
	req.expected_version_opt_case =
	    CONVSTORE__V1__APPEND_REQUEST__EXPECTED_VERSION_OPT_EXPECTED_VERSION;
	EXPECT_JSON(&req, "{\"expected_version\":0}");
	DECODES_TO(APPEND, "{\"expected_version\":null}", "{}");
	DECODES_TO(APPEND, "{\"expected_version\":\"0\"}", "{\"expected_version\":0}");
}

static void test_numbers(void)
{
	Convstore__V1__Usage u = CONVSTORE__V1__USAGE__INIT;
	u.input_tokens = UINT64_MAX;
	u.output_tokens = INT64_MAX;
	u.cached_tokens = (uint64_t)INT64_MAX + 1;
	EXPECT_JSON(&u, "{\"input_tokens\":\"18446744073709551615\","
			"\"output_tokens\":9223372036854775807,"
			"\"cached_tokens\":\"9223372036854775808\"}");
	const ProtobufCMessageDescriptor *usage = &convstore__v1__usage__descriptor;
	DECODES_TO(usage,
		   "{\"input_tokens\":\"18446744073709551615\",\"output_tokens\":1.0,"
		   "\"cached_tokens\":1e3,\"reasoning_tokens\":\"007\"}",
		   "{\"input_tokens\":\"18446744073709551615\",\"output_tokens\":1,"
		   "\"cached_tokens\":1000,\"reasoning_tokens\":7}");
	/* Integral reals up to 2^64 (exclusive) are integers. */
	DECODES_TO(usage, "{\"input_tokens\":1.8446744073709550e19}",
		   "{\"input_tokens\":\"18446744073709549568\"}");
	DECODES_TO(SCALARS,
		   "{\"i32\":\"-2147483648\",\"i64\":\"-9223372036854775808\",\"u32\":4294967295,"
		   "\"s64\":-9223372036854775808,\"sfx32\":2147483647,\"fx32\":\"4294967295\"}",
		   "{\"i32\":-2147483648,\"i64\":-9223372036854775808,\"u32\":4294967295,"
		   "\"s64\":-9223372036854775808,\"fx32\":4294967295,\"sfx32\":2147483647}");

	/* Doubles: numbers and the three named values. */
	const ProtobufCMessageDescriptor *mr = &convstore__v1__model_response__descriptor;
	DECODES_TO(mr, "{\"cost_usd\":\"Infinity\"}", "{\"cost_usd\":\"Infinity\"}");
	DECODES_TO(mr, "{\"cost_usd\":\"-Infinity\"}", "{\"cost_usd\":\"-Infinity\"}");
	DECODES_TO(mr, "{\"cost_usd\":\"NaN\"}", "{\"cost_usd\":\"NaN\"}");
	DECODES_TO(mr, "{\"cost_usd\":2}", "{\"cost_usd\":2.0}");
	DECODES_TO(mr, "{\"cost_usd\":-0.0}", "{}");
	DECODES_TO(SCALARS, "{\"flt\":1.5,\"dbl\":\"NaN\",\"r_dbl\":[\"Infinity\",-1]}",
		   "{\"flt\":1.5,\"dbl\":\"NaN\",\"r_dbl\":[\"Infinity\",-1.0]}");
	ProtobufCMessage *m = DECODE_OK(mr, "{\"cost_usd\":\"NaN\"}");
	if (m)
		CHECK(isnan(((Convstore__V1__ModelResponse *)m)->cost_usd));
	protobuf_c_message_free_unpacked(m, NULL);

	/* Enums: by name or number; unknown numbers stay numbers. */
	DECODES_TO(SCALARS, "{\"color\":2,\"r_color\":[\"COLOR_BLUE\",-3,99]}",
		   "{\"color\":\"COLOR_BLUE\",\"r_color\":[\"COLOR_BLUE\",\"COLOR_NEG\",99]}");
	/* A proto2 optional is written when set, even at zero. */
	DECODES_TO(SCALARS, "{\"p2\":0,\"limit\":\"0\"}", "{\"p2\":0,\"limit\":0}");
}

static void test_bytes(void)
{
	const char *want = "{\"bytes\":\"AAH+/38=\"}";
	const ProtobufCMessageDescriptor *x = &convstore__v1__extension__descriptor;
	DECODES_TO(x, "{\"bytes\":\"AAH+/38=\"}", want);
	DECODES_TO(x, "{\"bytes\":\"AAH+/38\"}", want);
	DECODES_TO(x, "{\"bytes\":\"AAH-_38=\"}", want);
	DECODES_TO(x, "{\"bytes\":\"AAH-_38\"}", want);
	DECODES_TO(x, "{\"bytes\":\"\"}", "{}");
	DECODES_TO(x, "{\"bytes\":\"QQ==\"}", "{\"bytes\":\"QQ==\"}");
	DECODES_TO(x, "{\"bytes\":\"QUI\"}", "{\"bytes\":\"QUI=\"}");
	DECODES_TO(x, "{\"bytes\":\"QUJD\"}", "{\"bytes\":\"QUJD\"}");
	EXPECT_BAD(x, "{\"bytes\":\"ab$d\"}", "bytes: invalid base64: bad character");
	EXPECT_BAD(x, "{\"bytes\":\"ab d\"}", "bytes: invalid base64");
	EXPECT_BAD(x, "{\"bytes\":\"abcde\"}", "bytes: invalid base64: truncated");
	EXPECT_BAD(x, "{\"bytes\":\"QQ=\"}", "bytes: invalid base64: bad padding");
	EXPECT_BAD(x, "{\"bytes\":\"Q===\"}", "bytes: invalid base64");
	EXPECT_BAD(x, "{\"bytes\":\"QQ==QQ==\"}", "bytes: invalid base64");
	EXPECT_BAD(x, "{\"bytes\":\"=\"}", "bytes: invalid base64");
	EXPECT_BAD(x, "{\"bytes\":[1,2]}", "bytes: expected base64 string, got array");
	EXPECT_BAD(SCALARS, "{\"r_blob\":[\"QQ==\",\"*\"]}", "r_blob[1]: invalid base64");
}

/* ==== timestamps =========================================================================== */

static void ts_text(int64_t secs, int32_t nanos, const char *want, int line)
{
	Convstore__V1__Timestamp t;
	char quoted[64];
	snprintf(quoted, sizeof(quoted), "\"%s\"", want);
	expect_json_(&mk_ts(&t, secs, nanos)->base, quoted, line);
}

static void ts_parse(const char *text, int64_t secs, int32_t nanos, int line)
{
	char json[128];
	snprintf(json, sizeof(json), "{\"occurred_at\":\"%s\"}", text);
	ProtobufCMessage *m = decode_ok_(EVENT, json, line);
	if (!m)
		return;
	Convstore__V1__Event *ev = (Convstore__V1__Event *)m;
	if (check_true(ev->occurred_at != NULL, "occurred_at set", __FILE__, line)) {
		check_int(ev->occurred_at->seconds, secs, "seconds", "expected", __FILE__, line);
		check_int(ev->occurred_at->nanos, nanos, "nanos", "expected", __FILE__, line);
	}
	protobuf_c_message_free_unpacked(m, NULL);
}

static void ts_bad(const char *text, const char *why, int line)
{
	char json[128];
	snprintf(json, sizeof(json), "{\"occurred_at\":\"%s\"}", text);
	expect_bad_(EVENT, json, strlen(json), CS_EINVAL, "occurred_at: bad timestamp", line);
	expect_bad_(EVENT, json, strlen(json), CS_EINVAL, why, line);
}

static void test_timestamps(void)
{
	ts_text(1795726800, 0, "2026-11-26T21:00:00Z", __LINE__);
	ts_text(1795726800, 500000000, "2026-11-26T21:00:00.500Z", __LINE__);
	ts_text(1795726800, 123456000, "2026-11-26T21:00:00.123456Z", __LINE__);
	ts_text(1795726800, 123456789, "2026-11-26T21:00:00.123456789Z", __LINE__);
	ts_text(1795726800, 1, "2026-11-26T21:00:00.000000001Z", __LINE__);
	ts_text(0, 0, "1970-01-01T00:00:00Z", __LINE__);
	ts_text(-1, 999000000, "1969-12-31T23:59:59.999Z", __LINE__);
	ts_text(1709210096, 0, "2024-02-29T12:34:56Z", __LINE__);
	ts_text(951782400, 0, "2000-02-29T00:00:00Z", __LINE__);
	ts_text(-62135596800LL, 0, "0001-01-01T00:00:00Z", __LINE__);
	ts_text(253402300799LL, 999999999, "9999-12-31T23:59:59.999999999Z", __LINE__);

	ts_parse("2026-11-26T21:00:00Z", 1795726800, 0, __LINE__);
	ts_parse("2026-11-26T22:30:00+01:30", 1795726800, 0, __LINE__);
	ts_parse("2026-11-26T19:00:00-02:00", 1795726800, 0, __LINE__);
	ts_parse("2026-11-27T05:00:00+08:00", 1795726800, 0, __LINE__);
	ts_parse("2026-11-26t21:00:00.5z", 1795726800, 500000000, __LINE__);
	ts_parse("2026-11-26T21:00:00.123456789Z", 1795726800, 123456789, __LINE__);
	ts_parse("2026-11-26T21:00:00.000000001-00:00", 1795726800, 1, __LINE__);
	ts_parse("2024-02-29T12:34:56Z", 1709210096, 0, __LINE__);
	ts_parse("2000-02-29T00:00:00Z", 951782400, 0, __LINE__);
	ts_parse("1969-12-31T23:59:59Z", -1, 0, __LINE__);
	ts_parse("0001-01-01T00:00:00Z", -62135596800LL, 0, __LINE__);
	ts_parse("9999-12-31T23:59:59.999999999Z", 253402300799LL, 999999999, __LINE__);
	ts_parse("9999-12-31T23:59:59+23:59", 253402300799LL - 86340, 0, __LINE__);

	ts_bad("2026-13-01T00:00:00Z", "month out of range", __LINE__);
	ts_bad("2026-00-10T00:00:00Z", "month out of range", __LINE__);
	ts_bad("2026-02-30T00:00:00Z", "day out of range", __LINE__);
	ts_bad("2023-02-29T00:00:00Z", "day out of range", __LINE__);
	ts_bad("1900-02-29T00:00:00Z", "day out of range", __LINE__);
	ts_bad("2026-04-31T00:00:00Z", "day out of range", __LINE__);
	ts_bad("2026-04-00T00:00:00Z", "day out of range", __LINE__);
	ts_bad("2026-11-26T25:00:00Z", "hour out of range", __LINE__);
	ts_bad("2026-11-26T24:00:00Z", "hour out of range", __LINE__);
	ts_bad("2026-11-26T21:60:00Z", "minute out of range", __LINE__);
	ts_bad("2026-11-26T23:59:60Z", "second out of range", __LINE__);
	ts_bad("2026-11-26T21:00:00", "missing time zone", __LINE__);
	ts_bad("2026-11-26T21:00:00.5", "missing time zone", __LINE__);
	ts_bad("2026-11-26T21:00:00+0100", "bad utc offset", __LINE__);
	ts_bad("2026-11-26T21:00:00+24:00", "utc offset out of range", __LINE__);
	ts_bad("2026-11-26T21:00:00.Z", "no digits after", __LINE__);
	ts_bad("2026-11-26T21:00:00.1234567891Z", "more than 9 fractional digits", __LINE__);
	ts_bad("2026-11-26T21:00:00Zjunk", "trailing characters", __LINE__);
	ts_bad("2026-11-26 21:00:00Z", "expected yyyy-mm-dd", __LINE__);
	ts_bad("2026-1-26T21:00:00Z", "expected yyyy-mm-dd", __LINE__);
	ts_bad("26-11-26T21:00:00Z", "expected yyyy-mm-dd", __LINE__);
	ts_bad("", "expected yyyy-mm-dd", __LINE__);
	ts_bad("0000-01-01T00:00:00Z", "year out of range", __LINE__);
	ts_bad("0001-01-01T00:00:00+00:01", "out of range", __LINE__);
	ts_bad("9999-12-31T23:59:59-00:01", "out of range", __LINE__);
	EXPECT_BAD(EVENT, "{\"occurred_at\":1795726800}",
		   "occurred_at: expected rfc 3339 timestamp string, got number");
	EXPECT_BAD(EVENT, "{\"occurred_at\":{\"seconds\":1}}", "occurred_at: expected rfc 3339");
	EXPECT_BAD(EVENT, "{\"recorded_at\":\"2026-11-26T21:00:00Z\\u0000\"}",
		   "recorded_at: bad timestamp");

	/* A top-level Timestamp is its string. */
	ProtobufCMessage *m =
	    DECODE_OK(&convstore__v1__timestamp__descriptor, "\"2026-11-26T21:00:00.25Z\"");
	if (m)
		CHECK_EQ_INT(((Convstore__V1__Timestamp *)m)->nanos, 250000000);
	protobuf_c_message_free_unpacked(m, NULL);

	/* Out of range on the way out is refused, naming the field. */
	Convstore__V1__Event ev = CONVSTORE__V1__EVENT__INIT;
	Convstore__V1__Timestamp t;
	ev.occurred_at = mk_ts(&t, 253402300800LL, 0);
	EXPECT_ENCODE_BAD(&ev, CS_EINVAL, "occurred_at: timestamp out of range");
	mk_ts(&t, -62135596801LL, 0);
	EXPECT_ENCODE_BAD(&ev, CS_EINVAL, "occurred_at: timestamp out of range");
	mk_ts(&t, 0, 1000000000);
	EXPECT_ENCODE_BAD(&ev, CS_EINVAL, "occurred_at: timestamp out of range");
	mk_ts(&t, 0, -1);
	EXPECT_ENCODE_BAD(&ev, CS_EINVAL, "occurred_at: timestamp out of range");
}

/* Against the C library's calendar over the whole range, at varying times of day. */
static void test_timestamp_calendar(void)
{
	int bad = 0;
	for (int64_t t = -62135596800LL; t <= 253402300799LL && bad < 5; t += 86400LL * 37 + 3607) {
		time_t tt = (time_t)t;
		struct tm tm;
		if (!gmtime_r(&tt, &tm))
			continue;
		char want[40], got_json[64];
		snprintf(want, sizeof(want), "\"%04d-%02d-%02dT%02d:%02d:%02dZ\"",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
		Convstore__V1__Timestamp ts;
		char *got = cs_json_encode_text(&mk_ts(&ts, t, 0)->base, 0, NULL);
		snprintf(got_json, sizeof(got_json), "%s", got ? got : "(null)");
		free(got);
		ProtobufCMessage *back = NULL;
		int rc = cs_json_decode_text(&back, &convstore__v1__timestamp__descriptor, want,
					     strlen(want), NULL);
		bool ok = strcmp(got_json, want) == 0 && rc == CS_OK && back &&
			  ((Convstore__V1__Timestamp *)back)->seconds == t;
		if (!CHECK(ok)) {
			fprintf(stderr, "  t=%" PRId64 " want %s got %s\n", t, want, got_json);
			bad++;
		}
		protobuf_c_message_free_unpacked(back, NULL);
	}
}

/* ==== JsonValue ============================================================================ */

static void test_json_value(void)
{
	const ProtobufCMessageDescriptor *x = &convstore__v1__extension__descriptor;
	const char *forms[][2] = {
	    {"{\"a\": [1, 2.5, \"x\", null, true, false], \"b\": {}}",
	     "{\"a\":[1,2.5,\"x\",null,true,false],\"b\":{}}"},
	    {"[ ]", "[]"},
	    {"\"text \\u00e9\"", "\"text \xc3\xa9\""},
	    {"42", "42"},
	    {"-1.5e3", "-1500.0"},
	    {"true", "true"},
	    {"{\"nul\":\"a\\u0000b\"}", "{\"nul\":\"a\\u0000b\"}"},
	};
	for (size_t i = 0; i < N(forms); i++) {
		char in[256], want[256];
		snprintf(in, sizeof(in), "{\"data\":%s}", forms[i][0]);
		snprintf(want, sizeof(want), "{\"data\":%s}", forms[i][1]);
		ProtobufCMessage *m = DECODE_OK(x, in);
		if (!m)
			continue;
		Convstore__V1__Extension *ext = (Convstore__V1__Extension *)m;
		if (CHECK(ext->data != NULL))
			CHECK_STR_EQ(ext->data->json, forms[i][1]);
		expect_json_(m, want, __LINE__);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	/* null is an absent field. */
	DECODES_TO(x, "{\"data\":null}", "{}");

	/* Stored text that is not JSON is corruption, named by its field. */
	Convstore__V1__Event ev = CONVSTORE__V1__EVENT__INIT;
	Convstore__V1__Extension ext = CONVSTORE__V1__EXTENSION__INIT;
	Convstore__V1__JsonValue jv;
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_EXTENSION;
	ev.extension = &ext;
	ext.data = mk_json(&jv, "{\"a\":");
	EXPECT_ENCODE_BAD(&ev, CS_ECORRUPT, "extension.data: json value does not parse");
	mk_json(&jv, "[1] trailing");
	EXPECT_ENCODE_BAD(&ev, CS_ECORRUPT, "extension.data: json value does not parse");
	/* A JsonValue with no text passes cs_pb_check_text (binary input can send one), so it must
	 * encode: as null, no value. It was CS_ECORRUPT, which made such an event, once accepted,
	 * unreadable as JSON (found by tests/fuzz/fuzz_event). */
	mk_json(&jv, "");
	CHECK_EQ_INT(cs_pb_check_text(&ev.base, NULL), CS_OK);
	EXPECT_JSON(&ev, "{\"extension\":{\"data\":null}}");
	jv.json = NULL;
	EXPECT_JSON(&ev, "{\"extension\":{\"data\":null}}");
	Convstore__V1__ContentPart part = CONVSTORE__V1__CONTENT_PART__INIT;
	Convstore__V1__ContentPart *partp[1] = {&part};
	Convstore__V1__Message msg = CONVSTORE__V1__MESSAGE__INIT;
	msg.n_parts = 1;
	msg.parts = partp;
	part.json = mk_json(&jv, "nope");
	ev.payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE;
	ev.message = &msg;
	EXPECT_ENCODE_BAD(&ev, CS_ECORRUPT, "message.parts[0].json: json value does not parse");
}

/* ==== malformed input ====================================================================== */

/* Every proper prefix of a valid event is invalid JSON; none leaks. */
static void test_truncated(void)
{
	char *text = cs_json_encode_text(
	    &full_event(CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE)->base, 0, NULL);
	if (!CHECK(text != NULL))
		return;
	size_t len = strlen(text);
	int bad = 0;
	for (size_t n = 0; n < len && bad < 3; n++) {
		cs_error e = CS_ERROR_INIT;
		ProtobufCMessage *m = NULL;
		int rc = cs_json_decode_text(&m, EVENT, text, n, &e);
		if (!CHECK_EQ_INT(rc, CS_EINVAL) || !CHECK_STR_CONTAINS(e.msg, "invalid json")) {
			fprintf(stderr, "  prefix of %zu bytes: %s\n", n, e.msg);
			bad++;
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	ProtobufCMessage *m = DECODE_OK(EVENT, text);
	protobuf_c_message_free_unpacked(m, NULL);
	EXPECT_BAD(EVENT, "{\"id\":\"a\"", "invalid json at line 1, column 9");
	EXPECT_BAD(EVENT, "", "invalid json");
	EXPECT_BAD(EVENT, "{\"id\":\"a\"} {}", "invalid json");
	free(text);
}

/* Every byte replaced by JSON punctuation: decode either fails cleanly or the result encodes. */
static void test_garbage(void)
{
	char *text = cs_json_encode_text(&full_event(CONVSTORE__V1__EVENT__PAYLOAD_EXTENSION)->base,
					 0, NULL);
	if (!CHECK(text != NULL))
		return;
	size_t len = strlen(text);
	static const char subst[] = "\"{}[],:0-x\\ \x01\xff";
	int bad = 0, decoded = 0, rejected = 0;
	for (size_t i = 0; i < len && bad < 5; i++) {
		for (size_t k = 0; k < sizeof(subst) - 1; k++) {
			char *mutant = malloc(len + 1);
			if (!CHECK(mutant != NULL))
				return;
			memcpy(mutant, text, len + 1);
			mutant[i] = subst[k];
			cs_error e = CS_ERROR_INIT;
			ProtobufCMessage *m = NULL;
			int rc = cs_json_decode_text(&m, EVENT, mutant, len, &e);
			if (rc == CS_OK) {
				decoded++;
				char *again = cs_json_encode_text(m, 0, &e);
				if (!CHECK(again != NULL)) {
					fprintf(stderr, "  %s\n  %s\n", mutant, e.msg);
					bad++;
				}
				free(again);
			} else {
				rejected++;
				bool ok = rc == CS_EINVAL && m == NULL && e.msg[0] &&
					  !strchr(e.msg, '\n') &&
					  cs_utf8_valid(e.msg, strlen(e.msg));
				if (!CHECK(ok)) {
					fprintf(stderr, "  rc %d: %s\n", rc, e.msg);
					bad++;
				}
			}
			protobuf_c_message_free_unpacked(m, NULL);
			free(mutant);
		}
	}
	CHECK(decoded > 0);
	CHECK(rejected > 0);
	free(text);
}

static void test_wrong_types(void)
{
	EXPECT_BAD(EVENT, "{\"version\":\"abc\"}", "version: expected uint64, got string \"abc\"");
	EXPECT_BAD(EVENT, "{\"version\":true}", "version: expected uint64, got boolean");
	EXPECT_BAD(EVENT, "{\"version\":{}}", "version: expected uint64, got object");
	EXPECT_BAD(EVENT, "{\"actor\":{}}", "actor: expected string, got object");
	EXPECT_BAD(EVENT, "{\"actor\":42}", "actor: expected string, got number");
	EXPECT_BAD(EVENT, "{\"actor\":[\"a\"]}", "actor: expected string, got array");
	EXPECT_BAD(EVENT, "{\"trace\":[]}", "trace: expected object, got array");
	EXPECT_BAD(EVENT, "{\"trace\":\"t\"}", "trace: expected object, got string");
	EXPECT_BAD(EVENT, "{\"message\":[{\"role\":\"user\"}]}",
		   "message: expected object, got array");
	EXPECT_BAD(EVENT, "{\"tool_result\":{\"is_error\":1}}",
		   "tool_result.is_error: expected boolean, got number");
	EXPECT_BAD(EVENT, "{\"tool_result\":{\"is_error\":\"true\"}}",
		   "tool_result.is_error: expected boolean, got string");
	EXPECT_BAD(EVENT, "{\"metadata\":[]}", "metadata: expected object, got array");
	EXPECT_BAD(EVENT, "{\"metadata\":{\"a\":1}}",
		   "metadata[\"a\"]: expected string, got number");
	EXPECT_BAD(EVENT, "{\"metadata\":{\"a\":null}}",
		   "metadata[\"a\"]: null is not allowed as a map value");
	EXPECT_BAD(APPEND, "{\"events\":{}}", "events: expected array, got object");
	EXPECT_BAD(APPEND, "{\"events\":[{},5]}", "events[1]: expected object, got number");
	EXPECT_BAD(APPEND, "{\"events\":[null]}", "events[0]: null is not allowed in a list");
	EXPECT_BAD(APPEND, "{\"events\":[{\"model_response\":{\"tool_calls\":[{\"id\":1}]}}]}",
		   "events[0].model_response.tool_calls[0].id: expected string, got number");
	EXPECT_BAD(APPEND, "{\"expected_version\":[1]}",
		   "expected_version: expected uint64, got array");
	const ProtobufCMessageDescriptor *mr = &convstore__v1__model_response__descriptor;
	EXPECT_BAD(mr, "{\"cost_usd\":\"1.5\"}", "cost_usd: expected number, got string \"1.5\"");
	EXPECT_BAD(mr, "{\"cost_usd\":\"nan\"}", "cost_usd: expected number");
	EXPECT_BAD(mr, "{\"cost_usd\":true}", "cost_usd: expected number, got boolean");
	EXPECT_BAD(SCALARS, "{\"color\":\"PURPLE\"}", "color: unknown test.Color value \"PURPLE\"");
	EXPECT_BAD(SCALARS, "{\"color\":true}", "color: expected enum, got boolean");
	EXPECT_BAD(SCALARS, "{\"r_flag\":[true,1]}", "r_flag[1]: expected boolean, got number");
	EXPECT_BAD(SCALARS, "{\"by_id\":{\"x\":\"a\"}}",
		   "by_id[\"x\"]: map key is not a decimal int64");
	EXPECT_BAD(SCALARS, "{\"flags\":{\"yes\":1}}",
		   "flags[\"yes\"]: map key must be \"true\" or \"false\"");
	EXPECT_BAD(SCALARS, "{\"r_ts\":[\"2026-11-26T21:00:00Z\",null]}",
		   "r_ts[1]: null is not allowed in a list");
	/* Only a JsonValue can be null inside a list. */
	DECODES_TO(SCALARS, "{\"r_json\":[null,{}]}", "{\"r_json\":[null,{}]}");
}

static void test_integer_ranges(void)
{
	EXPECT_BAD(EVENT, "{\"version\":\"18446744073709551616\"}",
		   "version: value out of range for uint64");
	EXPECT_BAD(EVENT, "{\"version\":\"99999999999999999999999\"}",
		   "version: value out of range for uint64");
	EXPECT_BAD(EVENT, "{\"version\":18446744073709551616}", "invalid json");
	EXPECT_BAD(EVENT, "{\"version\":1.8446744073709552e19}",
		   "version: value out of range for uint64");
	EXPECT_BAD(EVENT, "{\"version\":-1}", "version: negative value for uint64");
	EXPECT_BAD(EVENT, "{\"version\":\"-1\"}", "version: negative value for uint64");
	EXPECT_BAD(EVENT, "{\"version\":-1.0}", "version: negative value for uint64");
	EXPECT_BAD(EVENT, "{\"version\":1.5}", "version: fractional value for uint64");
	EXPECT_BAD(EVENT, "{\"version\":0.000001}", "version: fractional value for uint64");
	EXPECT_BAD(EVENT, "{\"version\":\"1.0\"}", "version: expected uint64, got string");
	EXPECT_BAD(EVENT, "{\"version\":\"1e3\"}", "version: expected uint64, got string");
	EXPECT_BAD(EVENT, "{\"version\":\" 1\"}", "version: expected uint64, got string");
	EXPECT_BAD(EVENT, "{\"version\":\"+1\"}", "version: expected uint64, got string");
	EXPECT_BAD(EVENT, "{\"version\":\"\"}", "version: expected uint64, got string");
	EXPECT_BAD(EVENT, "{\"version\":\"-\"}", "version: expected uint64, got string");
	EXPECT_BAD(EVENT, "{\"version\":\"1\\u0000\"}", "version: expected uint64, got string");
	EXPECT_BAD(SCALARS, "{\"i32\":2147483648}", "i32: value out of range for int32");
	EXPECT_BAD(SCALARS, "{\"i32\":-2147483649}", "i32: value out of range for int32");
	EXPECT_BAD(SCALARS, "{\"s32\":\"-2147483649\"}", "s32: value out of range for sint32");
	EXPECT_BAD(SCALARS, "{\"sfx32\":2147483648}", "sfx32: value out of range for sfixed32");
	EXPECT_BAD(SCALARS, "{\"u32\":4294967296}", "u32: value out of range for uint32");
	EXPECT_BAD(SCALARS, "{\"fx32\":\"4294967296\"}", "fx32: value out of range for fixed32");
	EXPECT_BAD(SCALARS, "{\"u32\":-1}", "u32: negative value for uint32");
	EXPECT_BAD(SCALARS, "{\"fx64\":\"-5\"}", "fx64: negative value for fixed64");
	EXPECT_BAD(SCALARS, "{\"i64\":\"9223372036854775808\"}",
		   "i64: value out of range for int64");
	EXPECT_BAD(SCALARS, "{\"i64\":\"-9223372036854775809\"}",
		   "i64: value out of range for int64");
	EXPECT_BAD(SCALARS, "{\"sfx64\":9.3e18}", "sfx64: value out of range for sfixed64");
	EXPECT_BAD(SCALARS, "{\"i64\":1.5}", "i64: fractional value for int64");
	EXPECT_BAD(SCALARS, "{\"color\":2147483648}", "color: value out of range for enum");
	EXPECT_BAD(SCALARS, "{\"r_i64\":[1,\"x\"]}", "r_i64[1]: expected sint64, got string \"x\"");
	EXPECT_BAD(SCALARS, "{\"flags\":{\"true\":-1}}",
		   "flags[\"true\"]: negative value for uint32");
	EXPECT_BAD(SCALARS, "{\"by_id\":{\"9223372036854775808\":\"a\"}}",
		   "by_id[\"9223372036854775808\"]: value out of range for int64");
	EXPECT_BAD(SCALARS, "{\"flt\":1e39}", "flt: value out of range for float");
	EXPECT_BAD(SCALARS, "{\"flt\":-1e39}", "flt: value out of range for float");
	DECODES_TO(SCALARS, "{\"flt\":\"-Infinity\"}", "{\"flt\":\"-Infinity\"}");
}

static void test_unknown_fields(void)
{
	EXPECT_BAD(EVENT, "{\"foo\":1}", "unknown field \"foo\"");
	EXPECT_BAD(EVENT, "{\"id\":\"a\",\"foo\":null}", "unknown field \"foo\"");
	EXPECT_BAD(EVENT, "{\"Id\":\"a\"}", "unknown field \"Id\"");
	EXPECT_BAD(EVENT, "{\"occurred_At\":\"a\"}", "unknown field \"occurred_At\"");
	EXPECT_BAD(EVENT, "{\"message\":{\"role\":\"user\",\"foo\":1}}",
		   "unknown field \"foo\" in message");
	EXPECT_BAD(APPEND, "{\"events\":[{},{\"message\":{\"role\":\"user\",\"foo\":1}}]}",
		   "unknown field \"foo\" in events[1].message");
	EXPECT_BAD(APPEND, "{\"events\":[{\"trace\":{\"trace_id\":\"t\",\"x\\ny\":1}}]}",
		   "unknown field \"x?y\" in events[0].trace");
	/* Keys are shown cut short and as printable ASCII. */
	char key[400], text[512];
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(text, sizeof(text), "{\"%s\":1}", key);
	EXPECT_BAD(EVENT, text, "kkkk...\"");
	EXPECT_BAD(EVENT, "{\"\xc3\xa9t\xc3\xa9\":1}", "unknown field \"??t??\"");
}

static void test_oneof_conflict(void)
{
	EXPECT_BAD(EVENT, "{\"message\":{\"role\":\"user\"},\"tool_call\":{\"id\":\"c\"}}",
		   "oneof conflict: both \"message\" and \"tool_call\" set");
	EXPECT_BAD(APPEND, "{\"events\":[{},{\"turnStarted\":{},\"extension\":{\"type\":\"x\"}}]}",
		   "oneof conflict: both \"turn_started\" and \"extension\" set in events[1]");
	/* A null member is absent, so it does not conflict. */
	DECODES_TO(EVENT, "{\"message\":null,\"tool_call\":{\"id\":\"c\"},\"extension\":null}",
		   "{\"tool_call\":{\"id\":\"c\"}}");
	EXPECT_BAD(EVENT, "{\"message\":{},\"message\":{}}", "duplicate object key");
}

static void test_strings(void)
{
	EXPECT_BAD(EVENT, "{\"message\":{\"content\":\"a\\u0000b\"}}",
		   "message.content: string contains a nul byte");
	EXPECT_BAD(EVENT, "{\"metadata\":{\"k\":\"\\u0000\"}}",
		   "metadata[\"k\"]: string contains a nul byte");
	EXPECT_BAD(EVENT, "{\"metadata\":{\"k\\u0000\":\"v\"}}", "invalid json");
	/* Raw bytes that are not UTF-8, and escapes that are not characters: Jansson says no. */
	EXPECT_BAD(EVENT, "{\"actor\":\"\xc3\x28\"}", "invalid json");
	EXPECT_BAD(EVENT, "{\"actor\":\"\xed\xa0\x80\"}", "invalid json");
	EXPECT_BAD(EVENT, "{\"actor\":\"\xff\"}", "invalid json");
	EXPECT_BAD(EVENT, "{\"actor\":\"\\ud800\"}", "invalid json");
	EXPECT_BAD(EVENT, "{\"\xc3\":1}", "invalid json");
	/* A json_t built without Jansson's check is checked by the decoder. */
	json_t *obj = json_object();
	json_object_set_new(obj, "actor", json_stringn_nocheck("\xc3\x28", 2));
	cs_error e = CS_ERROR_INIT;
	ProtobufCMessage *m = NULL;
	CHECK_EQ_INT(cs_json_decode(&m, EVENT, obj, &e), CS_EINVAL);
	CHECK_STR_CONTAINS(e.msg, "actor: invalid utf-8");
	CHECK(m == NULL);
	json_decref(obj);
	/* Escapes, astral characters and a quote survive. */
	DECODES_TO(EVENT, "{\"actor\":\"\\ud83c\\udf89 \\\"q\\\" \\/ \\u00e9\"}",
		   "{\"actor\":\"\xf0\x9f\x8e\x89 \\\"q\\\" / \xc3\xa9\"}");
}

static void test_not_an_object(void)
{
	EXPECT_BAD(EVENT, "[]", "top level must be a json object, got array");
	EXPECT_BAD(EVENT, "\"event\"", "top level must be a json object, got string");
	EXPECT_BAD(EVENT, "42", "top level must be a json object, got number");
	EXPECT_BAD(EVENT, "null", "top level must be a json object, got null");
	EXPECT_BAD(APPEND, "true", "top level must be a json object, got boolean");
	EXPECT_BAD(EVENT, "{\"a\":1,\"a\":2}", "duplicate object key");
	EXPECT_BAD(EVENT, "{\"id\":\"x\",\"id\":\"x\"}", "duplicate object key");
	cs_error e = CS_ERROR_INIT;
	ProtobufCMessage *m = NULL;
	CHECK_EQ_INT(cs_json_decode(&m, EVENT, NULL, &e), CS_EINVAL);
	CHECK_EQ_INT(cs_json_decode_text(&m, EVENT, NULL, 5, &e), CS_EINVAL);
	CHECK_EQ_INT(cs_json_decode_text(&m, EVENT, "{}", 2, NULL), CS_OK);
	protobuf_c_message_free_unpacked(m, NULL);
}

/* "{"a":" k times, then 1, then k braces. */
static char *nested_objects(const char *prefix, size_t k, const char *suffix)
{
	size_t plen = strlen(prefix), slen = strlen(suffix);
	char *s = malloc(plen + k * 6 + 2 + slen + 1);
	if (!s)
		abort();
	char *p = s;
	memcpy(p, prefix, plen);
	p += plen;
	for (size_t i = 0; i < k; i++) {
		memcpy(p, "{\"a\":", 5);
		p += 5;
	}
	*p++ = '1';
	memset(p, '}', k);
	p += k;
	memcpy(p, suffix, slen + 1);
	return s;
}

static void test_depth(void)
{
	/* The event is level 1 and the extension 2: 62 more make 64, 63 more 65. */
	char *ok = nested_objects("{\"extension\":{\"type\":\"x\",\"data\":", 62, "}}");
	ProtobufCMessage *m = DECODE_OK(EVENT, ok);
	protobuf_c_message_free_unpacked(m, NULL);
	free(ok);
	char *deep = nested_objects("{\"extension\":{\"type\":\"x\",\"data\":", 63, "}}");
	EXPECT_BAD(EVENT, deep, "extension.data: too deeply nested");
	free(deep);
	/* In a request the list and the event are levels too. */
	ok = nested_objects("{\"events\":[{\"extension\":{\"data\":", 60, "}}]}");
	m = DECODE_OK(APPEND, ok);
	protobuf_c_message_free_unpacked(m, NULL);
	free(ok);
	deep = nested_objects("{\"events\":[{\"extension\":{\"data\":", 61, "}}]}");
	EXPECT_BAD(APPEND, deep, "events[0].extension.data: too deeply nested");
	free(deep);

	/* 10,000 brackets: Jansson's parser refuses them before we see them. */
	static const char pre[] = "{\"extension\":{\"data\":";
	const size_t plen = sizeof(pre) - 1, n = 10000;
	char *brackets = calloc(plen + 2 * n + 3, 1);
	if (!CHECK(brackets != NULL))
		return;
	memcpy(brackets, pre, plen);
	for (size_t i = 0; i < n; i++) {
		brackets[plen + i] = '[';
		brackets[plen + n + i] = ']';
	}
	memcpy(brackets + plen + 2 * n, "}}", 3);
	EXPECT_BAD(EVENT, brackets, "invalid json");
	EXPECT_BAD(EVENT, brackets, "depth");
	free(brackets);

	/* A json_t built in memory is checked by the decoder itself. */
	json_t *inner = json_integer(1);
	for (int i = 0; i < 200; i++) {
		json_t *a = json_array();
		json_array_append_new(a, inner);
		inner = a;
	}
	json_t *root = json_pack("{s:{s:o}}", "extension", "data", inner);
	cs_error e = CS_ERROR_INIT;
	m = NULL;
	CHECK_EQ_INT(cs_json_decode(&m, EVENT, root, &e), CS_EINVAL);
	CHECK_STR_CONTAINS(e.msg, "extension.data: too deeply nested");
	CHECK(m == NULL);
	json_decref(root);
}

/* ==== UTF-8 ================================================================================ */

static void test_utf8_validator(void)
{
	static const struct {
		const char *s;
		size_t len;
		bool ok;
	} cases[] = {
	    {"", 0, true},
	    {"plain ascii", 11, true},
	    {"a\0b", 3, true},
	    {"\xc3\xa9", 2, true},
	    {"\xe2\x82\xac", 3, true},
	    {"\xf0\x9f\x98\x80", 4, true},
	    {"\xf4\x8f\xbf\xbf", 4, true}, /* U+10FFFF */
	    {"\xed\x9f\xbf", 3, true},	   /* U+D7FF */
	    {"\xee\x80\x80", 3, true},	   /* U+E000 */
	    {"\xef\xbf\xbf", 3, true},	   /* U+FFFF */
	    {"\x80", 1, false},		   /* lone continuation */
	    {"\xbf", 1, false},
	    {"\xc0\xaf", 2, false},	    /* overlong '/' */
	    {"\xc1\xbf", 2, false},	    /* overlong */
	    {"\xe0\x80\xaf", 3, false},	    /* overlong '/' */
	    {"\xe0\x9f\xbf", 3, false},	    /* overlong U+07FF */
	    {"\xf0\x80\x80\xaf", 4, false}, /* overlong '/' */
	    {"\xf0\x8f\xbf\xbf", 4, false}, /* overlong U+FFFF */
	    {"\xed\xa0\x80", 3, false},	    /* U+D800 */
	    {"\xed\xbf\xbf", 3, false},	    /* U+DFFF */
	    {"\xf4\x90\x80\x80", 4, false}, /* U+110000 */
	    {"\xf5\x80\x80\x80", 4, false},
	    {"\xff", 1, false},
	    {"\xfe", 1, false},
	    {"\xc3", 1, false}, /* truncated */
	    {"\xe2\x82", 2, false},
	    {"\xf0\x9f\x98", 3, false},
	    {"\xe2\x28\xa1", 3, false}, /* bad continuation */
	    {"\xc3\xa9\xc3", 3, false},
	    {"ok \xf0\x9f\x98\x80 \xc3", 9, false},
	};
	for (size_t i = 0; i < N(cases); i++)
		if (!CHECK(cs_utf8_valid(cases[i].s, cases[i].len) == cases[i].ok))
			fprintf(stderr, "  case %zu\n", i);
}

/* Bad UTF-8 in a protobuf-c struct: the walk and the encoder both name the path. */
static void test_utf8_in_structs(void)
{
	Convstore__V1__AppendRequest req = CONVSTORE__V1__APPEND_REQUEST__INIT;
	Convstore__V1__Event evs[3] = {CONVSTORE__V1__EVENT__INIT, CONVSTORE__V1__EVENT__INIT,
				       CONVSTORE__V1__EVENT__INIT};
	Convstore__V1__Event *evp[3] = {&evs[0], &evs[1], &evs[2]};
	Convstore__V1__Message msg = CONVSTORE__V1__MESSAGE__INIT;
	req.n_events = 3;
	req.events = evp;
	evs[2].payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE;
	evs[2].message = &msg;
	msg.role = S("user");
	msg.content = S("bad \xc3\x28 byte");
	cs_error e = CS_ERROR_INIT;
	CHECK_EQ_INT(cs_pb_check_text(&req.base, &e), CS_EINVAL);
	CHECK_STR_EQ(e.msg, "events[2].message.content: invalid utf-8");
	EXPECT_ENCODE_BAD(&req, CS_EINVAL, "events[2].message.content: invalid utf-8");

	/* A repeated message's string. */
	msg.content = S("fine");
	Convstore__V1__ContentPart part = CONVSTORE__V1__CONTENT_PART__INIT;
	Convstore__V1__ContentPart *partp[2] = {&part, &part};
	msg.n_parts = 2;
	msg.parts = partp;
	part.text = S("\xed\xa0\x80");
	CHECK_EQ_INT(cs_pb_check_text(&req.base, &e), CS_EINVAL);
	CHECK_STR_EQ(e.msg, "events[2].message.parts[0].text: invalid utf-8");
	EXPECT_ENCODE_BAD(&req, CS_EINVAL, "events[2].message.parts[0].text: invalid utf-8");
	part.text = S("ok");

	/* A map value, then a map key. */
	Convstore__V1__Event__MetadataEntry md[2] = {CONVSTORE__V1__EVENT__METADATA_ENTRY__INIT,
						     CONVSTORE__V1__EVENT__METADATA_ENTRY__INIT};
	Convstore__V1__Event__MetadataEntry *mdp[2] = {&md[0], &md[1]};
	md[0].key = S("fine");
	md[0].value = S("fine");
	md[1].key = S("user_id");
	md[1].value = S("\xf4\x90\x80\x80");
	evs[0].n_metadata = 2;
	evs[0].metadata = mdp;
	CHECK_EQ_INT(cs_pb_check_text(&req.base, &e), CS_EINVAL);
	CHECK_STR_EQ(e.msg, "events[0].metadata[\"user_id\"]: invalid utf-8");
	EXPECT_ENCODE_BAD(&req, CS_EINVAL, "events[0].metadata[\"user_id\"]: invalid utf-8");
	md[1].value = S("ok");
	md[1].key = S("k\xc0\xafy");
	CHECK_EQ_INT(cs_pb_check_text(&req.base, &e), CS_EINVAL);
	CHECK_STR_EQ(e.msg, "events[0].metadata[1].key: invalid utf-8");
	EXPECT_ENCODE_BAD(&req, CS_EINVAL, "events[0].metadata[1].key: invalid utf-8");
	md[1].key = S("ok");

	/* A oneof string member; a member that is not selected is never read. */
	Convstore__V1__ModelResponse mr = CONVSTORE__V1__MODEL_RESPONSE__INIT;
	evs[1].payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE;
	evs[1].model_response = &mr;
	mr.content_opt_case = CONVSTORE__V1__MODEL_RESPONSE__CONTENT_OPT_CONTENT;
	mr.content = S("\xe2\x82");
	CHECK_EQ_INT(cs_pb_check_text(&req.base, &e), CS_EINVAL);
	CHECK_STR_EQ(e.msg, "events[1].model_response.content: invalid utf-8");
	EXPECT_ENCODE_BAD(&req, CS_EINVAL, "events[1].model_response.content: invalid utf-8");
	mr.content_opt_case = CONVSTORE__V1__MODEL_RESPONSE__CONTENT_OPT__NOT_SET;
	CHECK_EQ_INT(cs_pb_check_text(&req.base, &e), CS_OK);

	/* A repeated string field, and a string at the top level. */
	Scalars s;
	scalars_init(&s.base);
	char *strs[2] = {S("ok"), S("\xff")};
	s.n_r_str = 2;
	s.r_str = strs;
	CHECK_EQ_INT(cs_pb_check_text(&s.base, &e), CS_EINVAL);
	CHECK_STR_EQ(e.msg, "r_str[1]: invalid utf-8");
	EXPECT_ENCODE_BAD(&s, CS_EINVAL, "r_str[1]: invalid utf-8");
	Convstore__V1__TraceContext t = CONVSTORE__V1__TRACE_CONTEXT__INIT;
	t.span_id = S("\xc3");
	CHECK_EQ_INT(cs_pb_check_text(&t.base, &e), CS_EINVAL);
	CHECK_STR_EQ(e.msg, "span_id: invalid utf-8");

	/* JsonValue text must be one JSON value within the depth cap (binary input skips the
	 * decoder, so nothing else would catch it). */
	Convstore__V1__Extension x = CONVSTORE__V1__EXTENSION__INIT;
	Convstore__V1__JsonValue jv = CONVSTORE__V1__JSON_VALUE__INIT;
	x.type = S("t");
	x.data = &jv;
	const char *good_json[] = {"", "1", "\"s\"", "null", "[1,{\"a\":[]}]"};
	for (size_t i = 0; i < N(good_json); i++) {
		jv.json = S(good_json[i]);
		CHECK_EQ_INT(cs_pb_check_text(&x.base, &e), CS_OK);
	}
	const char *bad_json[] = {"{", "1 2", "[1,]", "{\"a\":1,\"a\":2}", "nul"};
	for (size_t i = 0; i < N(bad_json); i++) {
		jv.json = S(bad_json[i]);
		CHECK_EQ_INT(cs_pb_check_text(&x.base, &e), CS_EINVAL);
		CHECK_STR_EQ(e.msg, "data: invalid json");
	}
	char deep[2 * CS_JSON_MAX_DEPTH + 3];
	memset(deep, '[', CS_JSON_MAX_DEPTH + 1);
	memset(deep + CS_JSON_MAX_DEPTH + 1, ']', CS_JSON_MAX_DEPTH + 1);
	deep[2 * CS_JSON_MAX_DEPTH + 2] = '\0';
	jv.json = deep;
	CHECK_EQ_INT(cs_pb_check_text(&x.base, &e), CS_EINVAL);
	CHECK_STR_EQ(e.msg, "data: too deeply nested");
	jv.json = S("\"\xff\"");
	CHECK_EQ_INT(cs_pb_check_text(&x.base, &e), CS_EINVAL);
	CHECK_STR_EQ(e.msg, "data.json: invalid utf-8");

	/* A Timestamp the JSON form cannot write: binary input could store an occurred_at that no
	 * read could show (found by tests/fuzz/fuzz_event). The edges of the range pass. */
	Convstore__V1__Event tev = CONVSTORE__V1__EVENT__INIT;
	Convstore__V1__Timestamp ts;
	const int64_t bad_ts[][2] = {
	    {253402300800LL, 0}, {-62135596801LL, 0}, {0, -1}, {0, 1000000000}};
	for (size_t i = 0; i < N(bad_ts); i++) {
		tev.occurred_at = mk_ts(&ts, bad_ts[i][0], (int32_t)bad_ts[i][1]);
		CHECK_EQ_INT(cs_pb_check_text(&tev.base, &e), CS_EINVAL);
		CHECK_STR_EQ(e.msg, "occurred_at: timestamp out of range");
	}
	mk_ts(&ts, 253402300799LL, 999999999);
	CHECK_EQ_INT(cs_pb_check_text(&tev.base, &e), CS_OK);
	mk_ts(&ts, -62135596800LL, 0);
	CHECK_EQ_INT(cs_pb_check_text(&tev.base, &e), CS_OK);

	/* Everything the builders make is clean. */
	for (size_t i = 0; i < N(all_payloads); i++)
		CHECK_EQ_INT(cs_pb_check_text(&full_event(all_payloads[i])->base, &e), CS_OK);
	CHECK_EQ_INT(cs_pb_check_text(&full_head()->base, &e), CS_OK);
	CHECK_EQ_INT(cs_pb_check_text(&full_scalars()->base, &e), CS_OK);
}

/* The map rule, and that a look-alike that breaks it is a plain list. */
static void test_map_detection(void)
{
	const ProtobufCMessageDescriptor *ev = EVENT;
	const ProtobufCFieldDescriptor *md =
	    protobuf_c_message_descriptor_get_field_by_name(ev, "metadata");
	CHECK(cs_pb_map_entry(ev, md) == &convstore__v1__event__metadata_entry__descriptor);
	const ProtobufCFieldDescriptor *calls = protobuf_c_message_descriptor_get_field_by_name(
	    &convstore__v1__model_response__descriptor, "tool_calls");
	CHECK(cs_pb_map_entry(&convstore__v1__model_response__descriptor, calls) == NULL);
	CHECK(cs_pb_map_entry(SCALARS, &scalars_fields[22]) == &by_id_desc);
	CHECK(cs_pb_map_entry(SCALARS, &scalars_fields[23]) == &flags_desc);
	/* The right entry type under another field name, or another parent, is not a map. */
	CHECK(cs_pb_map_entry(SCALARS, &scalars_fields[26]) == NULL);
	CHECK(cs_pb_map_entry(ev, &scalars_fields[22]) == NULL);
	ProtobufCFieldDescriptor renamed = scalars_fields[22];
	renamed.name = "by_ids";
	CHECK(cs_pb_map_entry(SCALARS, &renamed) == NULL);
	renamed.name = "byId";
	CHECK(cs_pb_map_entry(SCALARS, &renamed) == &by_id_desc);
}

int main(void)
{
	scalars_setup();
	CHECK_RUN(test_round_trip_event_proto);
	CHECK_RUN(test_round_trip_api_proto);
	CHECK_RUN(test_round_trip_store_proto);
	CHECK_RUN(test_round_trip_view_proto);
	CHECK_RUN(test_round_trip_scalars);
	CHECK_RUN(test_camel_case_input);
	CHECK_RUN(test_event_text);
	CHECK_RUN(test_model_response_content);
	CHECK_RUN(test_numbers);
	CHECK_RUN(test_bytes);
	CHECK_RUN(test_timestamps);
	CHECK_RUN(test_timestamp_calendar);
	CHECK_RUN(test_json_value);
	CHECK_RUN(test_truncated);
	CHECK_RUN(test_garbage);
	CHECK_RUN(test_wrong_types);
	CHECK_RUN(test_integer_ranges);
	CHECK_RUN(test_unknown_fields);
	CHECK_RUN(test_oneof_conflict);
	CHECK_RUN(test_strings);
	CHECK_RUN(test_not_an_object);
	CHECK_RUN(test_depth);
	CHECK_RUN(test_utf8_validator);
	CHECK_RUN(test_utf8_in_structs);
	CHECK_RUN(test_map_detection);
	return check_finish();
}
