/*
 * tests/store/events.h - builders for the events the store tests append.
 *
 * Every builder allocates from an ev_arena: a list of calloc'd blocks that ev_arena_free()
 * releases at once, so a test builds as many events as it likes and frees them in one call.
 * Strings handed to the builders are NOT copied (literals, or buffers the test keeps alive);
 * ev_strf() makes an arena-owned string when a test needs a formatted one. Passing NULL for an
 * optional string leaves the field at its protobuf default (the empty string); ev_message() etc.
 * take the event id as their first string and NULL means "no id" (the store generates one).
 *
 * Allocation failure in a test is fatal: ev_alloc() prints and exits 1.
 */
#ifndef CONVSTORE_TESTS_STORE_EVENTS_H
#define CONVSTORE_TESTS_STORE_EVENTS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convstore/store.h"
#include "convstore/v1/event.pb-c.h"

typedef struct ev_arena {
	void **blocks;
	size_t n, cap;
} ev_arena;

#define EV_ARENA_INIT                                                                              \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

static inline void *ev_alloc(ev_arena *a, size_t size)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		void **b = realloc(a->blocks, cap * sizeof *b);
		if (!b) {
			fprintf(stderr, "ev_alloc: out of memory\n");
			exit(1);
		}
		a->blocks = b;
		a->cap = cap;
	}
	void *p = calloc(1, size ? size : 1);
	if (!p) {
		fprintf(stderr, "ev_alloc: out of memory\n");
		exit(1);
	}
	a->blocks[a->n++] = p;
	return p;
}

static inline void ev_arena_free(ev_arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->blocks[i]);
	free(a->blocks);
	a->blocks = NULL;
	a->n = a->cap = 0;
}

static inline char *ev_strf(ev_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline char *ev_strf(ev_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = ev_alloc(a, (size_t)len + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* A string of @len copies of @c (for size limits and big, compressible events). */
static inline char *ev_repeat(ev_arena *a, char c, size_t len)
{
	char *s = ev_alloc(a, len + 1);
	memset(s, c, len);
	return s;
}

/* A string of @len printable pseudo-random characters from @seed (barely compressible). */
static inline char *ev_noise(ev_arena *a, unsigned long seed, size_t len)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *s = ev_alloc(a, len + 1);
	unsigned long x = seed * 2654435761ul + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		s[i] = abc[x & 63];
	}
	return s;
}

/* Compressible prose: @len bytes of a repeated sentence with a counter (deflates well). */
static inline char *ev_prose(ev_arena *a, size_t len)
{
	char *s = ev_alloc(a, len + 1);
	size_t at = 0;
	for (unsigned i = 0; at < len; i++) {
		char line[80];
		int k =
		    snprintf(line, sizeof line, "line %u: the quick brown fox jumps over it. ", i);
		for (int j = 0; j < k && at < len; j++)
			s[at++] = line[j];
	}
	return s;
}

/* Set an optional string field: NULL leaves it at its protobuf default. */
static inline void ev_str(char **field, const char *s)
{
	if (s)
		*field = (char *)s;
}

static inline Convstore__V1__Event *ev_new(ev_arena *a, const char *id)
{
	Convstore__V1__Event *ev = ev_alloc(a, sizeof *ev);
	convstore__v1__event__init(ev);
	ev_str(&ev->id, id);
	return ev;
}

/* An event with no payload at all (invalid). */
static inline Convstore__V1__Event *ev_empty(ev_arena *a, const char *id)
{
	return ev_new(a, id);
}

static inline Convstore__V1__Event *ev_message(ev_arena *a, const char *id, const char *role,
					       const char *content)
{
	Convstore__V1__Event *ev = ev_new(a, id);
	Convstore__V1__Message *m = ev_alloc(a, sizeof *m);
	convstore__v1__message__init(m);
	ev_str(&m->role, role);
	ev_str(&m->content, content);
	ev->payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE;
	ev->message = m;
	return ev;
}

/* A model response; @content NULL leaves content_opt unset (JSON null). */
static inline Convstore__V1__Event *ev_model_response(ev_arena *a, const char *id,
						      const char *model, const char *content)
{
	Convstore__V1__Event *ev = ev_new(a, id);
	Convstore__V1__ModelResponse *r = ev_alloc(a, sizeof *r);
	convstore__v1__model_response__init(r);
	ev_str(&r->model, model);
	if (content) {
		r->content_opt_case = CONVSTORE__V1__MODEL_RESPONSE__CONTENT_OPT_CONTENT;
		r->content = (char *)content;
	}
	ev->payload_case = CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE;
	ev->model_response = r;
	return ev;
}

/* Add a requested tool call to a model_response event (more than the store accepts fit). */
#define EV_MAX_TOOL_CALLS (2 * CS_MAX_TOOL_CALLS)
static inline void ev_add_tool_call(ev_arena *a, Convstore__V1__Event *ev, const char *call_id,
				    const char *name, const char *arguments)
{
	Convstore__V1__ModelResponse *r = ev->model_response;
	if (!r->tool_calls)
		r->tool_calls = ev_alloc(a, EV_MAX_TOOL_CALLS * sizeof *r->tool_calls);
	if (r->n_tool_calls == EV_MAX_TOOL_CALLS) {
		fprintf(stderr, "ev_add_tool_call: more than %d calls\n", EV_MAX_TOOL_CALLS);
		exit(1);
	}
	Convstore__V1__ToolCallRequest *c = ev_alloc(a, sizeof *c);
	convstore__v1__tool_call_request__init(c);
	ev_str(&c->id, call_id);
	ev_str(&c->name, name);
	ev_str(&c->arguments, arguments);
	r->tool_calls[r->n_tool_calls++] = c;
}

static inline void ev_set_usage(ev_arena *a, Convstore__V1__Event *ev, uint64_t input,
				uint64_t output, uint64_t cached, uint64_t reasoning,
				double cost_usd)
{
	Convstore__V1__Usage *u = ev_alloc(a, sizeof *u);
	convstore__v1__usage__init(u);
	u->input_tokens = input;
	u->output_tokens = output;
	u->cached_tokens = cached;
	u->reasoning_tokens = reasoning;
	ev->model_response->usage = u;
	ev->model_response->cost_usd = cost_usd;
}

/* A tool call made by the agent itself. */
static inline Convstore__V1__Event *ev_tool_call(ev_arena *a, const char *id, const char *call_id,
						 const char *name, const char *arguments)
{
	Convstore__V1__Event *ev = ev_new(a, id);
	Convstore__V1__ToolCall *c = ev_alloc(a, sizeof *c);
	convstore__v1__tool_call__init(c);
	ev_str(&c->id, call_id);
	ev_str(&c->name, name);
	ev_str(&c->arguments, arguments);
	ev->payload_case = CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL;
	ev->tool_call = c;
	return ev;
}

static inline Convstore__V1__Event *ev_tool_result(ev_arena *a, const char *id, const char *call_id,
						   const char *name, const char *output)
{
	Convstore__V1__Event *ev = ev_new(a, id);
	Convstore__V1__ToolResult *t = ev_alloc(a, sizeof *t);
	convstore__v1__tool_result__init(t);
	ev_str(&t->call_id, call_id);
	ev_str(&t->name, name);
	ev_str(&t->output, output);
	ev->payload_case = CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT;
	ev->tool_result = t;
	return ev;
}

static inline Convstore__V1__Event *ev_turn_started(ev_arena *a, const char *id, const char *turn)
{
	Convstore__V1__Event *ev = ev_new(a, id);
	Convstore__V1__TurnStarted *t = ev_alloc(a, sizeof *t);
	convstore__v1__turn_started__init(t);
	t->turn_id = (char *)turn;
	ev->payload_case = CONVSTORE__V1__EVENT__PAYLOAD_TURN_STARTED;
	ev->turn_started = t;
	return ev;
}

static inline Convstore__V1__Event *ev_turn_ended(ev_arena *a, const char *id, const char *turn)
{
	Convstore__V1__Event *ev = ev_new(a, id);
	Convstore__V1__TurnEnded *t = ev_alloc(a, sizeof *t);
	convstore__v1__turn_ended__init(t);
	t->turn_id = (char *)turn;
	ev->payload_case = CONVSTORE__V1__EVENT__PAYLOAD_TURN_ENDED;
	ev->turn_ended = t;
	return ev;
}

/* An extension event carrying raw bytes. */
static inline Convstore__V1__Event *ev_extension(ev_arena *a, const char *id, const char *type,
						 const void *bytes, size_t len)
{
	Convstore__V1__Event *ev = ev_new(a, id);
	Convstore__V1__Extension *x = ev_alloc(a, sizeof *x);
	convstore__v1__extension__init(x);
	x->type = (char *)type;
	x->bytes.data = (uint8_t *)bytes;
	x->bytes.len = len;
	ev->payload_case = CONVSTORE__V1__EVENT__PAYLOAD_EXTENSION;
	ev->extension = x;
	return ev;
}

/* Server-only payloads: a client append carrying one must be refused. */
static inline Convstore__V1__Event *ev_server_only(ev_arena *a, const char *id,
						   Convstore__V1__Event__PayloadCase which)
{
	Convstore__V1__Event *ev = ev_new(a, id);
	ev->payload_case = which;
	switch (which) {
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_CREATED:
		ev->conversation_created = ev_alloc(a, sizeof *ev->conversation_created);
		convstore__v1__conversation_created__init(ev->conversation_created);
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED:
		ev->conversation_forked = ev_alloc(a, sizeof *ev->conversation_forked);
		convstore__v1__conversation_forked__init(ev->conversation_forked);
		ev->conversation_forked->parent_id = "p";
		ev->conversation_forked->parent_version = 1;
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_UPDATED:
		ev->conversation_updated = ev_alloc(a, sizeof *ev->conversation_updated);
		convstore__v1__conversation_updated__init(ev->conversation_updated);
		ev->conversation_updated->status = "archived";
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED:
		ev->conversation_deleted = ev_alloc(a, sizeof *ev->conversation_deleted);
		convstore__v1__conversation_deleted__init(ev->conversation_deleted);
		break;
	default:
		fprintf(stderr, "ev_server_only: %d is not a server-only payload\n", (int)which);
		exit(1);
	}
	return ev;
}

/* Add one metadata pair to the envelope. At most 128 pairs per event. */
#define EV_MAX_METADATA 128
static inline void ev_add_metadata(ev_arena *a, Convstore__V1__Event *ev, const char *key,
				   const char *value)
{
	if (!ev->metadata)
		ev->metadata = ev_alloc(a, EV_MAX_METADATA * sizeof *ev->metadata);
	if (ev->n_metadata == EV_MAX_METADATA) {
		fprintf(stderr, "ev_add_metadata: more than %d pairs\n", EV_MAX_METADATA);
		exit(1);
	}
	Convstore__V1__Event__MetadataEntry *m = ev_alloc(a, sizeof *m);
	convstore__v1__event__metadata_entry__init(m);
	m->key = (char *)key;
	m->value = (char *)value;
	ev->metadata[ev->n_metadata++] = m;
}

static inline Convstore__V1__Timestamp *ev_timestamp(ev_arena *a, int64_t seconds, int32_t nanos)
{
	Convstore__V1__Timestamp *t = ev_alloc(a, sizeof *t);
	convstore__v1__timestamp__init(t);
	t->seconds = seconds;
	t->nanos = nanos;
	return t;
}

/* The packed bytes of @ev in the arena; *len receives their length. */
static inline uint8_t *ev_pack(ev_arena *a, const Convstore__V1__Event *ev, size_t *len)
{
	*len = convstore__v1__event__get_packed_size(ev);
	uint8_t *buf = ev_alloc(a, *len);
	convstore__v1__event__pack(ev, buf);
	return buf;
}

/*
 * The packed bytes of a stored event with every field the store sets cleared (conversation_id,
 * tenant, version, position, recorded_at, type, and the id too when @clear_id): what the client
 * sent, to compare with ev_pack() of the original. @stored is not modified (a shallow copy is
 * packed).
 */
static inline uint8_t *ev_pack_client_view(ev_arena *a, const Convstore__V1__Event *stored,
					   bool clear_id, size_t *len)
{
	Convstore__V1__Event copy = *stored;
	copy.conversation_id = (char *)protobuf_c_empty_string;
	copy.tenant = (char *)protobuf_c_empty_string;
	copy.type = (char *)protobuf_c_empty_string;
	copy.version = 0;
	copy.position = 0;
	copy.recorded_at = NULL;
	if (clear_id)
		copy.id = (char *)protobuf_c_empty_string;
	return ev_pack(a, &copy, len);
}

/* Whether the stored copy of an event carries exactly what the client sent. */
static inline bool ev_same_as_sent(ev_arena *a, const Convstore__V1__Event *stored,
				   const Convstore__V1__Event *sent, bool clear_id)
{
	size_t la, lb;
	uint8_t *pa = ev_pack_client_view(a, stored, clear_id, &la);
	uint8_t *pb = ev_pack(a, sent, &lb);
	return la == lb && memcmp(pa, pb, la) == 0;
}

#endif
