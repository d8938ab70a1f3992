/*
 * reduce.c - the one reducer: head' = apply(head, event), and the check that an event may be
 * applied to a head at all.
 *
 * The head (convstore.v1.Head, proto/convstore/v1/store.proto) is the small inline projection
 * of a conversation that every append reads and rewrites in the same transaction: version, last
 * position, status, title, metadata, timestamps, parent, the tool calls still waiting for a
 * result (id, name and the version that asked, not the arguments), usage totals and counts. It
 * holds nothing that grows with the conversation's length except the open tool calls (at most
 * CS_MAX_PENDING_CALLS, checked here) and the metadata (capped by validation), so rewriting it
 * per append stays cheap at any length.
 *
 * The head is a protobuf-c struct in the unpacker's layout: every string, array and
 * sub-message is malloc'd, and empty strings are protobuf_c_empty_string, so that
 * protobuf_c_message_free_unpacked(head, NULL) frees whatever this file built.
 *
 * apply() only folds; it assumes check() passed. Both are pure functions of their inputs.
 *
 * The full conversation state of API.md is (head, transcript): cs_head_apply() folds the head,
 * and cs_transcript_entry() gives the one transcript message an event adds (or none). Together
 * they are the one reducer: the inline head, snapshots, time travel, the state and messages
 * views, rebuild and verify all fold through these two functions and nothing else. The
 * transcript is not folded into the head because it grows with the conversation; the views
 * rebuild it from the events (it is a map, one event to at most one message).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef Convstore__V1__Head Head;
typedef Convstore__V1__Event Event;
typedef Convstore__V1__PendingToolCall Pending;
typedef Convstore__V1__Head__MetadataEntry MetaEntry;

/* ---- protobuf-c struct surgery (the unpacker's memory layout) ---------------------------- */

static bool str_empty(const char *s)
{
	return !s || !*s;
}

/* Replace *field with a copy of @v. */
static int str_set(char **field, const char *v)
{
	char *copy = str_empty(v) ? (char *)protobuf_c_empty_string : strdup(v);
	if (!copy)
		return CS_ENOMEM;
	if (*field && *field != protobuf_c_empty_string)
		free(*field);
	*field = copy;
	return CS_OK;
}

/* Grow a repeated field by one slot; returns the slot or NULL. */
static void **array_push(void ***arr, size_t *n)
{
	void **grown = realloc(*arr, (*n + 1) * sizeof(void *));
	if (!grown)
		return NULL;
	*arr = grown;
	return &grown[(*n)++];
}

static void array_remove(void **arr, size_t *n, size_t i)
{
	memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof(void *));
	(*n)--;
}

static int pending_find(const Head *h, const char *id)
{
	for (size_t i = 0; i < h->n_pending_tool_calls; i++)
		if (strcmp(h->pending_tool_calls[i]->id, id) == 0)
			return (int)i;
	return -1;
}

static int pending_add(Head *h, const char *id, const char *name, uint64_t version)
{
	Pending *p = malloc(sizeof(*p));
	if (!p)
		return CS_ENOMEM;
	convstore__v1__pending_tool_call__init(p);
	p->version = version;
	void **slot = array_push((void ***)&h->pending_tool_calls, &h->n_pending_tool_calls);
	if (!slot) {
		free(p);
		return CS_ENOMEM;
	}
	*slot = p;
	if (str_set(&p->id, id) || str_set(&p->name, name))
		return CS_ENOMEM; /* p is in the head: freeing the head frees it */
	return CS_OK;
}

static void pending_remove(Head *h, const char *id)
{
	int i = pending_find(h, id);
	if (i < 0)
		return;
	protobuf_c_message_free_unpacked(&h->pending_tool_calls[i]->base, NULL);
	array_remove((void **)h->pending_tool_calls, &h->n_pending_tool_calls, (size_t)i);
}

/* Merge: a key set to "" is removed; any other value replaces or adds. */
static int metadata_merge(Head *h, MetaEntry *const *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < h->n_metadata && strcmp(h->metadata[j]->key, in[i]->key) != 0)
			j++;
		if (str_empty(in[i]->value)) {
			if (j < h->n_metadata) {
				protobuf_c_message_free_unpacked(&h->metadata[j]->base, NULL);
				array_remove((void **)h->metadata, &h->n_metadata, j);
			}
			continue;
		}
		if (j == h->n_metadata) {
			MetaEntry *e = malloc(sizeof(*e));
			if (!e)
				return CS_ENOMEM;
			convstore__v1__head__metadata_entry__init(e);
			void **slot = array_push((void ***)&h->metadata, &h->n_metadata);
			if (!slot) {
				free(e);
				return CS_ENOMEM;
			}
			*slot = e;
			if (str_set(&e->key, in[i]->key))
				return CS_ENOMEM;
		}
		if (str_set(&h->metadata[j]->value, in[i]->value))
			return CS_ENOMEM;
	}
	return CS_OK;
}

/* Sub-messages of the head are created on first use. */
#define ENSURE_SUB(field, type, init)                                                              \
	do {                                                                                       \
		if (!(field)) {                                                                    \
			(field) = malloc(sizeof(type));                                            \
			if (!(field))                                                              \
				return CS_ENOMEM;                                                  \
			init(field);                                                               \
		}                                                                                  \
	} while (0)

/* The policy is replaced whole; all zero means none (the field is dropped). */
static int retention_set(Head *h, const Convstore__V1__Retention *r)
{
	if (!r || (!r->max_events && !r->max_age_seconds)) {
		if (h->retention)
			protobuf_c_message_free_unpacked(&h->retention->base, NULL);
		h->retention = NULL;
		return CS_OK;
	}
	ENSURE_SUB(h->retention, Convstore__V1__Retention, convstore__v1__retention__init);
	h->retention->max_events = r->max_events;
	h->retention->max_age_seconds = r->max_age_seconds;
	return CS_OK;
}

static int set_time(Convstore__V1__Timestamp **field, const Convstore__V1__Timestamp *t)
{
	ENSURE_SUB(*field, Convstore__V1__Timestamp, convstore__v1__timestamp__init);
	if (t) {
		(*field)->seconds = t->seconds;
		(*field)->nanos = t->nanos;
	}
	return CS_OK;
}

int64_t cs_cost_nanos(double cost_usd)
{
	return llround(cost_usd * 1e9);
}

void cs_counter_add(Convstore__V1__UsageCounter *c, const Convstore__V1__ModelResponse *mr,
		    int sign)
{
	uint64_t in = 0, out = 0, cached = 0, reasoning = 0;
	if (mr->usage) {
		in = mr->usage->input_tokens;
		out = mr->usage->output_tokens;
		cached = mr->usage->cached_tokens;
		reasoning = mr->usage->reasoning_tokens;
	}
	/* Unsigned wrap-around makes subtraction exact for any value that was added. */
	uint64_t m = sign < 0 ? (uint64_t)-1 : 1;
	c->input_tokens += m * in;
	c->output_tokens += m * out;
	c->cached_tokens += m * cached;
	c->reasoning_tokens += m * reasoning;
	/* Saturates instead of overflowing (a billion dollars of responses in one counter): the
	 * subtraction of erase is then no longer exact, but nothing is undefined. */
	int64_t d = sign < 0 ? -cs_cost_nanos(mr->cost_usd) : cs_cost_nanos(mr->cost_usd);
	if (__builtin_add_overflow(c->cost_nanos, d, &c->cost_nanos))
		c->cost_nanos = d < 0 ? INT64_MIN : INT64_MAX;
	c->responses += m;
}

/* ---- the head's lifecycle ---------------------------------------------------------------- */

int cs_head_new(Head **out, const char *tenant, const char *conversation_id, cs_error *err)
{
	*out = malloc(sizeof(Head));
	if (!*out)
		return cs_error_set(err, CS_ENOMEM, "out of memory for a head");
	convstore__v1__head__init(*out);
	if (str_set(&(*out)->tenant, tenant) || str_set(&(*out)->id, conversation_id) ||
	    str_set(&(*out)->status, "active")) {
		cs_head_free(*out);
		*out = NULL;
		return cs_error_set(err, CS_ENOMEM, "out of memory for a head");
	}
	return CS_OK;
}

int cs_head_rename(Head *head, const char *id, cs_error *err)
{
	if (str_set(&head->id, id))
		return cs_error_set(err, CS_ENOMEM, "out of memory renaming a state");
	return CS_OK;
}

void cs_head_free(Head *head)
{
	if (head)
		protobuf_c_message_free_unpacked(&head->base, NULL);
}

/* ---- check ------------------------------------------------------------------------------- */

/* A new call id must not name a call that is still waiting for its result (ids may be reused
 * once answered: tau-bench does). */
static int check_new_calls(const Head *h, size_t n, const char *id, cs_error *err)
{
	if (pending_find(h, id) >= 0)
		return cs_error_set(err, CS_EINVAL, "tool call id \"%s\" is already pending", id);
	if (h->n_pending_tool_calls + n > CS_MAX_PENDING_CALLS)
		return cs_error_set(err, CS_EINVAL,
				    "more than %d tool calls would be waiting for results",
				    CS_MAX_PENDING_CALLS);
	return CS_OK;
}

int cs_head_check(const Head *h, const Event *ev, cs_error *err)
{
	switch (ev->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE: {
		const Convstore__V1__ModelResponse *mr = ev->model_response;
		for (size_t i = 0; i < mr->n_tool_calls; i++) {
			int rc = check_new_calls(h, mr->n_tool_calls, mr->tool_calls[i]->id, err);
			if (rc)
				return rc;
		}
		return CS_OK;
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL:
		return check_new_calls(h, 1, ev->tool_call->id, err);
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT:
		if (pending_find(h, ev->tool_result->call_id) < 0)
			return cs_error_set(
			    err, CS_EINVAL,
			    "tool_result answers \"%s\", which is not a pending call",
			    ev->tool_result->call_id);
		return CS_OK;
	default: return CS_OK;
	}
}

/* ---- apply ------------------------------------------------------------------------------- */

static int apply_model_response(Head *h, const Event *ev)
{
	const Convstore__V1__ModelResponse *mr = ev->model_response;
	for (size_t i = 0; i < mr->n_tool_calls; i++) {
		const Convstore__V1__ToolCallRequest *tc = mr->tool_calls[i];
		if (pending_add(h, tc->id, tc->name, ev->version))
			return CS_ENOMEM;
	}
	ENSURE_SUB(h->usage, Convstore__V1__UsageCounter, convstore__v1__usage_counter__init);
	cs_counter_add(h->usage, mr, 1);
	h->counts->messages++;
	h->counts->tool_calls += mr->n_tool_calls;
	return CS_OK;
}

static int apply_conversation(Head *h, const Event *ev)
{
	switch (ev->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_CREATED: {
		const Convstore__V1__ConversationCreated *c = ev->conversation_created;
		if (str_set(&h->title, c->title) || retention_set(h, c->retention))
			return CS_ENOMEM;
		return metadata_merge(h, (MetaEntry *const *)c->metadata, c->n_metadata);
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_FORKED: {
		const Convstore__V1__ConversationForked *f = ev->conversation_forked;
		ENSURE_SUB(h->parent, Convstore__V1__ParentRef, convstore__v1__parent_ref__init);
		h->parent->version = f->parent_version;
		/* The fork's own life starts now, with the parent's state up to the fork point. */
		if (set_time(&h->created_at, ev->recorded_at))
			return CS_ENOMEM;
		/* A fork inherits the parent's title, metadata and policy unless it names its own.
		 */
		if (str_set(&h->parent->id, f->parent_id) ||
		    (!str_empty(f->title) && str_set(&h->title, f->title)) ||
		    (f->retention && retention_set(h, f->retention)))
			return CS_ENOMEM;
		return metadata_merge(h, (MetaEntry *const *)f->metadata, f->n_metadata);
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_UPDATED: {
		const Convstore__V1__ConversationUpdated *u = ev->conversation_updated;
		if (u->title_opt_case == CONVSTORE__V1__CONVERSATION_UPDATED__TITLE_OPT_TITLE &&
		    str_set(&h->title, u->title))
			return CS_ENOMEM;
		if ((!str_empty(u->status) && str_set(&h->status, u->status)) ||
		    (u->retention && retention_set(h, u->retention)))
			return CS_ENOMEM;
		return metadata_merge(h, (MetaEntry *const *)u->metadata, u->n_metadata);
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED:
		return str_set(&h->status, "deleted");
	default: return CS_OK;
	}
}

int cs_head_apply(Head *h, const Event *ev, cs_error *err)
{
	int rc = CS_OK;
	if (!h->counts) {
		h->counts = malloc(sizeof(*h->counts));
		if (!h->counts)
			return cs_error_set(err, CS_ENOMEM, "out of memory applying an event");
		convstore__v1__counts__init(h->counts);
	}
	h->version = ev->version;
	h->last_position = ev->position;
	h->counts->events++;
	if (!h->created_at)
		rc = set_time(&h->created_at, ev->recorded_at);
	if (!rc)
		rc = set_time(&h->updated_at, ev->recorded_at);

	switch (ev->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE: h->counts->messages++; break;
	case CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE:
		rc = rc ? rc : apply_model_response(h, ev);
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL:
		h->counts->messages++;
		h->counts->tool_calls++;
		rc = rc ? rc : pending_add(h, ev->tool_call->id, ev->tool_call->name, ev->version);
		break;
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT:
		h->counts->messages++;
		if (ev->tool_result->is_error)
			h->counts->tool_errors++;
		pending_remove(h, ev->tool_result->call_id);
		break;
	default: rc = rc ? rc : apply_conversation(h, ev); break;
	}
	if (rc)
		return cs_error_set(err, CS_ENOMEM, "out of memory applying event %llu",
				    (unsigned long long)ev->version);
	return CS_OK;
}

/* ---- the transcript: one event -> at most one message ------------------------------------ */

typedef Convstore__V1__TranscriptMessage Entry;

static int calls_copy(Entry *t, Convstore__V1__ToolCallRequest *const *calls, size_t n)
{
	if (n == 0)
		return CS_OK;
	t->tool_calls = calloc(n, sizeof(*t->tool_calls));
	if (!t->tool_calls)
		return CS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Convstore__V1__ToolCallRequest *c = malloc(sizeof(*c));
		if (!c)
			return CS_ENOMEM;
		convstore__v1__tool_call_request__init(c);
		t->tool_calls[t->n_tool_calls++] = c;
		if (str_set(&c->id, calls[i]->id) || str_set(&c->name, calls[i]->name) ||
		    str_set(&c->arguments, calls[i]->arguments))
			return CS_ENOMEM;
	}
	return CS_OK;
}

/* A set optional string must not be protobuf-c's shared "" (which reads as unset): an empty
 * content is its own "". */
static int content_set(Entry *t, const char *content)
{
	t->content = strdup(content ? content : "");
	if (!t->content)
		return CS_ENOMEM;
	t->content_opt_case = CONVSTORE__V1__TRANSCRIPT_MESSAGE__CONTENT_OPT_CONTENT;
	return CS_OK;
}

/* Deep copies of content parts, through protobuf-c's own packer and unpacker. */
static int parts_copy(Entry *t, Convstore__V1__ContentPart *const *parts, size_t n)
{
	if (n == 0)
		return CS_OK;
	t->parts = calloc(n, sizeof(*t->parts));
	if (!t->parts)
		return CS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = protobuf_c_message_get_packed_size(&parts[i]->base);
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf)
			return CS_ENOMEM;
		protobuf_c_message_pack(&parts[i]->base, buf);
		t->parts[i] = convstore__v1__content_part__unpack(NULL, len, buf);
		free(buf);
		if (!t->parts[i])
			return CS_ENOMEM;
		t->n_parts++;
	}
	return CS_OK;
}

static int entry_fill(Entry *t, const Event *ev)
{
	switch (ev->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE: {
		const Convstore__V1__Message *m = ev->message;
		if (str_set(&t->role, m->role) || content_set(t, m->content) ||
		    str_set(&t->name, m->name))
			return CS_ENOMEM;
		return parts_copy(t, m->parts, m->n_parts);
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE: {
		const Convstore__V1__ModelResponse *mr = ev->model_response;
		if (str_set(&t->role, "assistant") || str_set(&t->model, mr->model) ||
		    (mr->content_opt_case && content_set(t, mr->content)))
			return CS_ENOMEM;
		return calls_copy(t, mr->tool_calls, mr->n_tool_calls);
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL: {
		/* ToolCall and ToolCallRequest have the same fields: id, name, arguments. */
		Convstore__V1__ToolCallRequest call = CONVSTORE__V1__TOOL_CALL_REQUEST__INIT;
		Convstore__V1__ToolCallRequest *one = &call;
		call.id = ev->tool_call->id;
		call.name = ev->tool_call->name;
		call.arguments = ev->tool_call->arguments;
		return str_set(&t->role, "assistant") ? CS_ENOMEM : calls_copy(t, &one, 1);
	}
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT: {
		const Convstore__V1__ToolResult *r = ev->tool_result;
		t->is_error = r->is_error;
		if (str_set(&t->role, "tool") || str_set(&t->tool_call_id, r->call_id) ||
		    str_set(&t->name, r->name) || content_set(t, r->output))
			return CS_ENOMEM;
		return CS_OK;
	}
	default: return CS_OK;
	}
}

const char *cs_call_arguments(const Event *ev, const char *id)
{
	if (ev->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL)
		return ev->tool_call->arguments;
	if (ev->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE)
		for (size_t i = 0; i < ev->model_response->n_tool_calls; i++)
			if (strcmp(ev->model_response->tool_calls[i]->id, id) == 0)
				return ev->model_response->tool_calls[i]->arguments;
	return "";
}

bool cs_event_in_transcript(const Event *ev)
{
	switch (ev->payload_case) {
	case CONVSTORE__V1__EVENT__PAYLOAD_MESSAGE:
	case CONVSTORE__V1__EVENT__PAYLOAD_MODEL_RESPONSE:
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_CALL:
	case CONVSTORE__V1__EVENT__PAYLOAD_TOOL_RESULT: return true;
	default: return false;
	}
}

int cs_transcript_entry(Entry **out, const Event *ev, cs_error *err)
{
	*out = NULL;
	if (!cs_event_in_transcript(ev))
		return CS_OK;
	Entry *t = malloc(sizeof(*t));
	if (!t)
		return cs_error_set(err, CS_ENOMEM, "out of memory for a transcript message");
	convstore__v1__transcript_message__init(t);
	t->version = ev->version;
	if (entry_fill(t, ev)) {
		protobuf_c_message_free_unpacked(&t->base, NULL);
		return cs_error_set(err, CS_ENOMEM, "out of memory for a transcript message");
	}
	*out = t;
	return CS_OK;
}
